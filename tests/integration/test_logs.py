"""The log channel of SPEC 13 with real rsyslogd daemons started from the
drop-ins that convocate-host init-shell and init-agent generate: a session's
line logged on the agent arrives in <shell>/var/log/convocate-agent/<id>.log
over mutual TLS; a client whose certificate comes from another CA is refused;
lines logged while the shell is down (even across a restart of the agent's
rsyslog) arrive once it is back.

Each daemon runs in the foreground (-n) with a private main configuration
that includes a copy of the generated drop-in; the copy differs only in the
port (a free one above 1024) and the listener's address (127.0.0.1). Nothing
here touches the system's rsyslog or /dev/log."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import uuid

import pytest

from lib.common import remove_tree, DOCKER, HOST_BIN, free_port, wait_for_port
from lib.pairing import snapshot
from lib.wait import wait_until

RSYSLOGD = "/usr/sbin/rsyslogd"
OSSL_MODULE = "/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so"
SERVER_DROPIN = "etc/rsyslog.d/10-convocate-server.conf"
CLIENT_DROPIN = "etc/rsyslog.d/10-convocate-client.conf"
TLS_DIR = "etc/convocate-agent/rsyslog-tls"

needs_rsyslog = pytest.mark.skipif(
    not (os.path.exists(RSYSLOGD) and os.path.exists(OSSL_MODULE)),
    reason="rsyslog and rsyslog-openssl are needed")


def run_host(*args):
    return subprocess.run([HOST_BIN, *args], capture_output=True, text=True, timeout=120)


def host(*args):
    r = run_host(*args)
    assert r.returncode == 0, f"{args}: rc={r.returncode}\n{r.stdout}{r.stderr}"
    return r


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_logged(what, predicate, timeout=60.0, daemons=()):
    """lib.wait.wait_until, with what the daemons said when it times out."""
    return wait_until(predicate, timeout, what, interval=0.2,
                      detail=lambda: "\n".join(d.diagnostics() for d in daemons))


class AgentFile:
    """A file shown with the daemons' diagnostics when a wait fails."""

    def __init__(self, path):
        self.path = path

    def diagnostics(self):
        return f"--- {self.path}:\n{read(self.path)}"


def session_tag():
    return f"convocate-session-{uuid.uuid4()}"


class Rsyslogd:
    """One rsyslogd in the foreground with a private main configuration that
    includes a drop-in; everything it writes lives under its own directory."""

    def __init__(self, base, name, dropin_text, client_socket=None, listen_port=None):
        self.dir = os.path.join(base, name)
        os.makedirs(os.path.join(self.dir, "work"), exist_ok=True)
        self.dropin = os.path.join(self.dir, "dropin.conf")
        self.conf = os.path.join(self.dir, "rsyslog.conf")
        self.pidfile = os.path.join(self.dir, "rsyslogd.pid")
        self.internal = os.path.join(self.dir, "local.log")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.socket = client_socket
        self.port = listen_port
        self.proc = None
        with open(self.dropin, "w") as f:
            f.write(dropin_text)
        lines = [f'global(workDirectory="{self.dir}/work")']
        if client_socket:
            lines += ['module(load="imuxsock" SysSock.Use="off")',
                      f'input(type="imuxsock" Socket="{client_socket}")']
        lines += [f'include(file="{self.dropin}")',
                  # what the drop-in does not stop: rsyslogd's own messages
                  # (TLS errors among them) and lines that are not forwarded
                  f'action(type="omfile" file="{self.internal}")']
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def check_config(self):
        r = subprocess.run([RSYSLOGD, "-N1", "-f", self.conf], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr

    def start(self):
        if self.socket and os.path.exists(self.socket):
            os.unlink(self.socket)
        err = open(self.stderr_path, "a")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", self.conf, "-i", self.pidfile],
                                     stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        err.close()
        if self.port:
            assert wait_for_port(self.port, self.proc), self.diagnostics()
        if self.socket:
            wait_logged(f"{self.socket}", lambda: os.path.exists(self.socket) or
                       self.proc.poll() is not None, timeout=30)
            assert self.proc.poll() is None, self.diagnostics()

    def stop(self):
        """SIGTERM to the process this object started, and wait for it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        """rsyslogd's own messages (it writes its errors to stderr when in the
        foreground) and the lines it kept locally."""
        return read(self.stderr_path) + read(self.internal)

    def diagnostics(self):
        return f"--- {self.dir} stderr:\n{read(self.stderr_path)}\n--- local log:\n{self.log()}"


def port_variant(text, port, listen=False):
    """The generated drop-in with a test port (and, for the listener, the
    loopback address): the only changes the tests make."""
    assert text.count('port="514"') == 1, text
    new = f'port="{port}" address="127.0.0.1"' if listen else f'port="{port}"'
    return text.replace('port="514"', new)


def logger(sock, tag, message):
    subprocess.run(["logger", "--socket", sock, "--socket-errors=on", "-t", tag, message],
                   check=True, timeout=30)


class Cluster:
    def __init__(self, base):
        self.base = base
        self.shell = os.path.join(base, "shell")
        self.agent = os.path.join(base, "agent")
        self.daemons = []
        os.makedirs(self.shell)
        os.makedirs(self.agent)
        host("init-shell", "--root", self.shell)
        host("init-agent", "--root", self.shell, "--agent-root", self.agent)
        self.agent_id = read(os.path.join(self.agent, "etc/convocate-agent/agent-id")).strip()
        self.port = free_port()

    def agent_log(self, agent_id=None):
        name = f"{agent_id or self.agent_id}.log"
        return os.path.join(self.shell, "var/log/convocate-agent", name)

    def server(self):
        text = read(os.path.join(self.shell, SERVER_DROPIN))
        d = Rsyslogd(self.base, "server", port_variant(text, self.port, listen=True),
                     listen_port=self.port)
        self.daemons.append(d)
        return d

    def client(self, name, agent_root, edit=None):
        text = port_variant(read(os.path.join(agent_root, CLIENT_DROPIN)), self.port)
        if edit:
            text = edit(text)
        sock = os.path.join(self.base, f"{name}.sock")
        d = Rsyslogd(self.base, name, text, client_socket=sock)
        self.daemons.append(d)
        return d

    def stop_all(self):
        for d in self.daemons:
            d.stop()


@pytest.fixture
def cluster():
    base = tempfile.mkdtemp(prefix="convocate-logs-")
    c = Cluster(base)
    yield c
    c.stop_all()
    remove_tree(base)


def test_generated_configs(cluster):
    """What init-shell and init-agent wrote is what the daemons below run:
    TLS with the ossl driver, certificates that chain, files under the roots."""
    server = read(os.path.join(cluster.shell, SERVER_DROPIN))
    client = read(os.path.join(cluster.agent, CLIENT_DROPIN))
    assert 'streamDriver.name="ossl"' in server
    assert 'streamDriver.authMode="x509/certvalid"' in server
    assert f'string="{os.path.realpath(cluster.shell)}/var/log/convocate-agent/%hostname%.log"' \
        in server
    assert 'target="127.0.0.1" port="514"' in client
    assert 'StreamDriverAuthMode="x509/name"' in client
    assert f" {cluster.agent_id} %APP-NAME%" in client
    for word in ('queue.type="LinkedList"', 'queue.filename=', 'queue.saveOnShutdown="on"',
                 'action.resumeRetryCount="-1"'):
        assert word in client
    tls = os.path.join(cluster.agent, TLS_DIR)
    r = subprocess.run(["openssl", "verify", "-purpose", "sslclient", "-CAfile",
                        os.path.join(tls, "ca.crt"), os.path.join(tls, "client.crt")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in",
                        os.path.join(tls, "client.crt")], capture_output=True, text=True)
    assert f"CN = {cluster.agent_id}" in r.stdout
    assert oct(os.stat(os.path.join(tls, "client.key")).st_mode & 0o777) == "0o600"
    ca = os.path.join(cluster.shell, "etc/convocate/rsyslog-ca")
    for key in ("ca.key", "server.key"):
        assert oct(os.stat(os.path.join(ca, key)).st_mode & 0o777) == "0o600"
    with open(os.path.join(ca, "ca.crt")) as a, open(os.path.join(tls, "ca.crt")) as b:
        assert a.read() == b.read()


def verifies(ca_file, cert_file, purpose="sslclient"):
    return subprocess.run(["openssl", "verify", "-purpose", purpose, "-CAfile", ca_file,
                           cert_file], capture_output=True, text=True).returncode == 0


def test_certificates_are_kept_and_repaired(cluster):
    """The CA is never re-minted by a run; leaves are re-issued only when
    they no longer fit; a dry run touches nothing."""
    ca_dir = os.path.join(cluster.shell, "etc/convocate/rsyslog-ca")
    tls = os.path.join(cluster.agent, TLS_DIR)
    agent_args = ("init-agent", "--root", cluster.shell, "--agent-root", cluster.agent)
    # a lost client certificate: a dry run says so and writes nothing ...
    os.unlink(os.path.join(tls, "client.crt"))
    before = snapshot(cluster.shell, cluster.agent)
    r = host(*agent_args, "--dry-run")
    assert "  rsyslog client certificate: would create" in r.stdout
    assert snapshot(cluster.shell, cluster.agent) == before
    # ... and a run issues a new pair from the same CA
    r = host(*agent_args)
    assert "  rsyslog client certificate: created" in r.stdout
    assert "  rsyslog client key: updated" in r.stdout
    assert verifies(os.path.join(ca_dir, "ca.crt"), os.path.join(tls, "client.crt"))
    assert host(*agent_args).stdout.splitlines()[-1] == "nothing changed"
    # a client pair that does not chain to the CA is replaced
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={cluster.agent_id}",
                    "-days", "30", "-keyout", os.path.join(tls, "client.key"),
                    "-out", os.path.join(tls, "client.crt")], check=True, capture_output=True)
    r = host(*agent_args)
    assert "  rsyslog client: re-issuing:" in r.stdout
    assert verifies(os.path.join(ca_dir, "ca.crt"), os.path.join(tls, "client.crt"))
    # a CA certificate lost after its key was written is made again from the
    # key, and what the CA issued before still verifies under it
    with open(os.path.join(ca_dir, "ca.key"), "rb") as f:
        ca_key = f.read()
    os.unlink(os.path.join(ca_dir, "ca.crt"))
    r = host("init-shell", "--root", cluster.shell)
    assert "  rsyslog CA certificate: created" in r.stdout
    assert "  rsyslog CA key: unchanged" in r.stdout
    assert "  rsyslog server certificate: unchanged" in r.stdout
    with open(os.path.join(ca_dir, "ca.key"), "rb") as f:
        assert f.read() == ca_key
    assert verifies(os.path.join(ca_dir, "ca.crt"), os.path.join(tls, "client.crt"))
    r = host(*agent_args)
    assert "  rsyslog-tls/ca.crt: updated" in r.stdout
    assert "  rsyslog client certificate: unchanged" in r.stdout
    # a CA certificate without its key is refused, not replaced
    os.unlink(os.path.join(ca_dir, "ca.key"))
    before = snapshot(cluster.shell)
    r = run_host("init-shell", "--root", cluster.shell)
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "ca.key is missing" in err[0], r.stderr
    assert snapshot(cluster.shell) == before


def test_ca_options(cluster, tmp_path):
    """--ca-cert/--ca-key: both or neither; a file that is not a CA is
    refused before anything is written."""
    agent2 = str(tmp_path / "agent2")
    os.makedirs(agent2)
    args = ("init-agent", "--root", cluster.shell, "--agent-root", agent2)
    ca_dir = os.path.join(cluster.shell, "etc/convocate/rsyslog-ca")
    r = run_host(*args, "--ca-cert", os.path.join(ca_dir, "ca.crt"))
    assert r.returncode == 2 and "--ca-key" in r.stderr
    assert run_host("init-shell", "--root", cluster.shell, "--ca-cert", "x", "--ca-key",
                    "y").returncode == 2
    host("init-agent", "--root", cluster.shell, "--agent-root", agent2, "--dry-run")
    host(*args)  # paired with the shell's CA
    before = snapshot(cluster.shell, agent2)
    r = run_host(*args, "--ca-cert", os.path.join(ca_dir, "server.crt"),
                 "--ca-key", os.path.join(ca_dir, "server.key"))
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "rsyslog CA" in err[0] and "not a CA" in err[0], r.stderr
    assert snapshot(cluster.shell, agent2) == before
    r = run_host(*args, "--ca-cert", "/nonexistent/ca.crt", "--ca-key", "/nonexistent/ca.key")
    assert r.returncode == 1 and "--ca-cert /nonexistent/ca.crt" in r.stderr
    assert snapshot(cluster.shell, agent2) == before


@needs_rsyslog
def test_line_arrives_over_tls(cluster):
    """(a) A session's line logged on the agent lands in <agent-id>.log on the
    shell; a line of another program stays on the agent."""
    server = cluster.server()
    server.check_config()
    server.start()
    client = cluster.client("client", cluster.agent)
    client.check_config()
    client.start()
    tag, nonce = session_tag(), uuid.uuid4().hex
    # The listener speaks only TLS: a well-formed line in clear text, even
    # one that names the agent, is not taken.
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=10) as s:
        frame = f"<14>1 - {cluster.agent_id} {tag} - - - cleartext {nonce}\n".encode()
        s.sendall(str(len(frame)).encode() + b" " + frame)
    logger(client.socket, "sshd", f"not a session {nonce}")
    logger(client.socket, tag, f"hello over tls {nonce}")
    path = cluster.agent_log()
    wait_logged("the line in the agent's file on the shell",
               lambda: f"hello over tls {nonce}" in read(path), timeout=60,
               daemons=(server, client))
    line = next(line for line in read(path).splitlines() if nonce in line)
    assert tag in line
    assert os.listdir(os.path.dirname(path)) == [f"{cluster.agent_id}.log"]
    # the other program's line was kept on the agent, not forwarded
    wait_logged("the local line on the agent", lambda: f"not a session {nonce}" in client.log())
    assert f"not a session {nonce}" not in read(path)
    assert f"cleartext {nonce}" not in read(path)


@needs_rsyslog
def test_foreign_ca_is_refused(cluster, tmp_path):
    """(b) A client whose certificate was issued by another CA is refused by
    the listener: its line never arrives and the listener logs a TLS error,
    while a legitimate client keeps working."""
    other_shell, intruder = str(tmp_path / "other-shell"), str(tmp_path / "intruder")
    os.makedirs(other_shell)
    os.makedirs(intruder)
    host("init-shell", "--root", other_shell)  # a second, unrelated CA
    other_ca = os.path.join(other_shell, "etc/convocate/rsyslog-ca")
    # Paired with our shell, but its log certificate comes from the other CA
    # (--ca-cert/--ca-key). It still trusts our shell's CA, so that the
    # refusal is the listener's, not its own.
    r = host("init-agent", "--root", cluster.shell, "--agent-root", intruder,
             "--ca-cert", os.path.join(other_ca, "ca.crt"),
             "--ca-key", os.path.join(other_ca, "ca.key"))
    assert "rsyslog client certificate: created" in r.stdout
    intruder_id = read(os.path.join(intruder, "etc/convocate-agent/agent-id")).strip()
    our_ca = os.path.join(cluster.shell, "etc/convocate/rsyslog-ca/ca.crt")
    foreign_ca_file = os.path.join(os.path.realpath(intruder), TLS_DIR, "ca.crt")

    def trust_our_shell(text):
        assert foreign_ca_file in text
        return text.replace(foreign_ca_file, our_ca)

    server = cluster.server()
    server.start()
    bad = cluster.client("intruder", intruder, edit=trust_our_shell)
    bad.start()
    nonce = uuid.uuid4().hex
    logger(bad.socket, session_tag(), f"from the intruder {nonce}")
    wait_logged("the listener's refusal of the intruder's certificate",
               lambda: re.search(r"Certificate error .*CN=" + intruder_id + r".*unable to get "
                                 r"local issuer certificate", server.log()) is not None and
               "certificate verify failed" in server.log(),
               timeout=60, daemons=(server, bad))
    # a legitimate client is still served, after the refusal
    good = cluster.client("client", cluster.agent)
    good.start()
    ok_nonce = uuid.uuid4().hex
    logger(good.socket, session_tag(), f"legitimate {ok_nonce}")
    wait_logged("the legitimate line", lambda: ok_nonce in read(cluster.agent_log()), timeout=60,
               daemons=(server, good))
    logs = os.path.dirname(cluster.agent_log())
    assert not os.path.exists(cluster.agent_log(intruder_id))
    for name in os.listdir(logs):
        assert nonce not in read(os.path.join(logs, name))
    assert nonce not in server.log()


@needs_rsyslog
def test_lines_survive_a_shell_outage(cluster):
    """(c) Lines logged while the shell's listener is down, across a restart
    of the agent's rsyslog in between, arrive once the listener is back: the
    disk-assisted queue saved them on shutdown and retries forever."""
    server = cluster.server()
    server.start()
    client = cluster.client("client", cluster.agent)
    client.start()
    first = uuid.uuid4().hex
    logger(client.socket, session_tag(), f"before {first}")
    wait_logged("the first line", lambda: first in read(cluster.agent_log()), timeout=60,
               daemons=(server, client))

    server.stop()
    # TCP syslog has no acknowledgement: what is in flight when the shell
    # goes away can be lost (RELP would close that gap). The claim is about
    # what is logged once the agent knows the shell is down, so probe until
    # its rsyslog has seen the connection fail.
    tag = session_tag()
    noticed = re.compile(r"cannot connect to 127\.0\.0\.1:%d|destruct TCP Connection"
                         % cluster.port)

    def agent_noticed():
        if noticed.search(client.log()):
            return True
        logger(client.socket, tag, "probe while the shell is down")
        return False

    wait_logged("the agent's rsyslog to notice the outage", agent_noticed, timeout=60,
               daemons=(client,))
    nonces = [uuid.uuid4().hex for _ in range(5)]
    for n in nonces:
        logger(client.socket, tag, f"during the outage {n}")
    # The agent's rsyslog restarts while the shell is away: what it could not
    # send is saved in the spool directory and read back at start.
    spool = os.path.join(cluster.agent, "var/spool/rsyslog")
    client.stop()
    saved = [n for n in os.listdir(spool) if n.startswith("convocate-forward")]
    assert saved, f"nothing saved in {spool}:\n{client.diagnostics()}"
    client.start()
    server.start()
    wait_logged("every line logged during the outage",
               lambda: all(n in read(cluster.agent_log()) for n in nonces), timeout=120,
               daemons=(server, client, AgentFile(cluster.agent_log())))
    # Delivery is at least once: a line the agent had sent when the shell
    # went away may come again from the queue; none may be missing.


@needs_rsyslog
@pytest.mark.skipif(not os.environ.get("CONVOCATE_TEST_IMAGE"),
                    reason="set CONVOCATE_TEST_IMAGE to a local image")
def test_container_log_arrives(cluster):
    """A real container with Docker's syslog driver pointed at the agent's
    rsyslog socket: its output reaches the agent's file on the shell."""
    server = cluster.server()
    server.start()
    client = cluster.client("client", cluster.agent)
    client.start()
    tag, nonce = session_tag(), uuid.uuid4().hex
    r = subprocess.run([DOCKER, "run", "--rm", "--label", "convocate-test-logs=1",
                        "--log-driver", "syslog",
                        "--log-opt", f"syslog-address=unixgram://{client.socket}",
                        "--log-opt", f"tag={tag}",
                        "--entrypoint", "/bin/echo", os.environ["CONVOCATE_TEST_IMAGE"],
                        f"from a container {nonce}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    wait_logged("the container's line on the shell",
               lambda: f"from a container {nonce}" in read(cluster.agent_log()), timeout=60)
    line = next(line for line in read(cluster.agent_log()).splitlines() if nonce in line)
    assert tag in line
