"""paramiko as the shell speaks to an agent: one persistent SSH connection,
one request on a fresh channel per call. Shared by the tests and the bench
(bench/ puts tests/integration on sys.path), so both measure and exercise
the same client code.

Callers pass either a paramiko.SSHClient or a bare paramiko.Transport as
`conn`; timeouts default to none, as paramiko's do, and each caller keeps
its own."""
import json
import socket

import paramiko

RPC_SUBSYSTEM = "convocate-agent-rpc"
ATTACH_SUBSYSTEM = "convocate-agent-attach"


def connect(host, port, key_path, known_hosts, user="claude", timeout=30):
    """An SSHClient pinned to the host keys in known_hosts, TCP_NODELAY on
    (paramiko leaves Nagle on; a small request would then wait for the
    peer's delayed ACK)."""
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(host, port=port, username=user,
                   pkey=paramiko.Ed25519Key.from_private_key_file(key_path),
                   allow_agent=False, look_for_keys=False, timeout=timeout)
    client.get_transport().sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


def open_transport(host, port, key_path, user="claude", timeout=15):
    """A bare authenticated Transport, host key unchecked: for tests that
    open many short-lived connections to an agent they started themselves."""
    t = paramiko.Transport((host, port))
    t.start_client(timeout=timeout)
    t.auth_publickey(user, paramiko.Ed25519Key.from_private_key_file(key_path))
    return t


def request_line(op, params=None):
    """One RPC request as the wire carries it: a JSON object and a newline."""
    return json.dumps({"op": op, "params": params}).encode() + b"\n"


def exchange(chan, line, subsystem=RPC_SUBSYSTEM, until_newline=False):
    """Starts subsystem on an open channel, sends line, ends the write side
    and reads the answer: to EOF, or (until_newline) to the first complete
    line, for callers that must not wait for the channel to close. The
    channel stays open (a caller may still want its exit status)."""
    chan.invoke_subsystem(subsystem)
    chan.sendall(line)
    chan.shutdown_write()
    out = b""
    while not (until_newline and out.endswith(b"\n")):
        chunk = chan.recv(65536)
        if not chunk:
            break
        out += chunk
    return out


def _transport_of(conn):
    return conn.get_transport() if isinstance(conn, paramiko.SSHClient) else conn


def raw_call(conn, line, subsystem=RPC_SUBSYSTEM, timeout=None, open_timeout=None,
             until_newline=False):
    """One request on a fresh channel; returns the answer's bytes as read
    (possibly cut short: callers that care check the trailing newline).
    timeout bounds each read, open_timeout the channel's opening."""
    chan = _transport_of(conn).open_session(timeout=open_timeout)
    try:
        if timeout is not None:
            chan.settimeout(timeout)
        return exchange(chan, line, subsystem, until_newline)
    finally:
        chan.close()


def rpc(conn, op, params=None, timeout=None, open_timeout=None, until_newline=False):
    """One RPC on a fresh channel; the decoded response object, whether
    ok or not (json.JSONDecodeError when the answer was no JSON)."""
    out = raw_call(conn, request_line(op, params), timeout=timeout,
                   open_timeout=open_timeout, until_newline=until_newline)
    return json.loads(out)
