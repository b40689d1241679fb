"""Many sessions on one real agent, fast: `create` RPCs (metadata only, no
container) over a few persistent SSH connections (paramiko, a fresh
channel per call as the shell does), in parallel. For the TUI at scale
(test_tui_scale.py) and its bench row (bench/rows_tui.py)."""
import json
import socket
import threading
import time

import paramiko

BUSY = "admission denied: cpu"


def _connect(agent):
    client = paramiko.SSHClient()
    client.load_host_keys(agent.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", port=agent.port, username="claude",
                   pkey=paramiko.Ed25519Key.from_private_key_file(agent.client_key),
                   allow_agent=False, look_for_keys=False, timeout=30)
    client.get_transport().sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


def _call(client, op, params):
    ch = client.get_transport().open_session(timeout=30)
    ch.settimeout(120)
    ch.invoke_subsystem("convocate-agent-rpc")
    ch.sendall(json.dumps({"op": op, "params": params}).encode() + b"\n")
    ch.shutdown_write()
    out = b""
    while True:
        chunk = ch.recv(65536)
        if not chunk:
            break
        out += chunk
    ch.close()
    return json.loads(out)


def create_many(agent, names, workers=4, timeout=600):
    """Creates a session per name on agent; returns their UUIDs by name.
    A CPU admission refusal (a busy machine) is retried; any other error
    fails."""
    uuids, errors = {}, []
    lock = threading.Lock()
    deadline = time.monotonic() + timeout

    def work(part):
        client = _connect(agent)
        try:
            for name in part:
                while True:
                    resp = _call(client, "create", {"name": name})
                    if resp.get("ok") or not str(resp.get("error", "")).startswith(BUSY):
                        break
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                with lock:
                    if resp.get("ok"):
                        uuids[name] = resp["result"]["uuid"]
                    else:
                        errors.append(f"{name}: {resp}")
                if errors:
                    return
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(names[i::workers],)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    return uuids
