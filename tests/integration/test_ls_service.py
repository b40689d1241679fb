"""`convocate ls --json` through status-serve's ls service (shell/ls_service.h):
the same bytes as the CLI dialling the agents itself, over connections that
status-serve keeps open between calls, and the CLI dialling the agents when
no service answers."""
import json
import os
import re
import signal
import socket
import subprocess
import threading

import pytest

from lib.agent import register_agent
from lib.common import SHELL_BIN, clean_env, free_port, stop_process
from lib.netns import wait_feed
from lib.shell_cli import convocate


class StatusServe:
    """status-serve on a shell root, its feed (and so its ls socket) in the
    root's run directory, where the CLI looks."""

    def __init__(self, root, tmp_path):
        self.root = root
        key = tmp_path / "status_host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True, capture_output=True)
        auth = tmp_path / "status_authorized_keys"
        auth.write_text("")
        self.feed = os.path.join(root, "run/convocate/status.sock")
        self.ls_sock = os.path.join(root, "run/convocate/ls.sock")
        self.log_path = tmp_path / "status-serve.log"
        self.cache = tmp_path / "status-serve-cache"  # where a names cache would go
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [SHELL_BIN, "--root", root, "status-serve", "--listen",
                 f"127.0.0.1:{free_port()}", "--host-key", str(key), "--auth-keys", str(auth),
                 "-v"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                env=dict(clean_env(), XDG_CACHE_HOME=str(self.cache)))
        wait_feed(self.proc, self.feed, 15, self.log)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def agent_connections(self, agents):
        """The local ports of status-serve's TCP connections to the agents."""
        ports = {str(a.port) for a in agents}
        out = subprocess.run(["ss", "-Htnp", "state", "established"], capture_output=True,
                             text=True, check=True).stdout
        held = set()
        for line in out.splitlines():
            if f"pid={self.proc.pid}," not in line:
                continue
            local, peer = line.split()[2:4]
            if peer.rsplit(":", 1)[1] in ports:
                held.add(local)
        return held

    def stop(self):
        stop_process(self.proc)


@pytest.fixture
def served(two_agents, tmp_path):
    root, a, b = two_agents
    s = StatusServe(root, tmp_path)
    yield root, a, b, s
    s.stop()


def ls_via(root, tmp_path, direct=False):
    """ls --json; returns (process, "status-serve" or "agents")."""
    log = tmp_path / "ls-timing.log"
    env = dict(os.environ, CONVOCATE_LS_TIMING=str(log))
    if direct:
        env["CONVOCATE_LS_DIRECT"] = "1"
    r = convocate(root, "ls", "--json", env=env)
    return r, log.read_text().splitlines()[-1].split()[-1]


def make_sessions(root, agent, names):
    for name in names:
        r = convocate(root, "new", name, "--agent", agent.agent_id)
        assert r.returncode == 0, r.stderr


def test_the_service_prints_the_agents_own_list_byte_for_byte(served, tmp_path):
    root, a, b, s = served
    make_sessions(root, a, ["svc-a1", "svc-a2"])
    make_sessions(root, b, ["svc-b1"])
    via_service, who = ls_via(root, tmp_path)
    assert via_service.returncode == 0, via_service.stderr
    assert who == "status-serve"
    direct, who = ls_via(root, tmp_path, direct=True)
    assert who == "agents"
    assert via_service.stdout == direct.stdout
    assert sorted(x["name"] for x in json.loads(via_service.stdout)) == \
        ["svc-a1", "svc-a2", "svc-b1"]
    assert not s.cache.exists(), "status-serve wrote a names cache of its own"


def test_the_service_keeps_its_agent_connections_between_calls(served, tmp_path):
    root, a, b, s = served
    assert ls_via(root, tmp_path)[1] == "status-serve"
    first = s.agent_connections([a, b])
    assert len(first) == 2, first
    for _ in range(3):
        assert ls_via(root, tmp_path)[1] == "status-serve"
    assert s.agent_connections([a, b]) == first


def test_an_unreachable_agent_is_named_on_stderr_as_without_the_service(served, tmp_path):
    root, a, b, s = served
    make_sessions(root, a, ["stays"])
    make_sessions(root, b, ["goes"])
    assert ls_via(root, tmp_path)[1] == "status-serve"  # b's connection is held now
    b.stop()
    r, who = ls_via(root, tmp_path)
    assert who == "status-serve" and r.returncode == 0
    assert [x["name"] for x in json.loads(r.stdout)] == ["stays"]
    assert re.search(rf"agent {b.agent_id} \(127\.0\.0\.1:{b.port}\) unreachable", r.stderr), \
        r.stderr
    direct, _ = ls_via(root, tmp_path, direct=True)
    assert direct.stdout == r.stdout


def test_an_agent_registered_later_is_listed_by_the_running_service(served, tmp_path,
                                                                   start_agent):
    root, a, b, s = served
    assert ls_via(root, tmp_path)[1] == "status-serve"
    c = start_agent()
    register_agent(root, c)
    make_sessions(root, c, ["newcomer"])
    r, who = ls_via(root, tmp_path)
    assert who == "status-serve"
    assert [x["agent"] for x in json.loads(r.stdout)] == [c.agent_id]


def test_without_a_live_service_the_cli_asks_the_agents(served, tmp_path):
    root, a, b, s = served
    make_sessions(root, a, ["alone"])
    s.proc.send_signal(signal.SIGKILL)  # leaves its sockets behind: nobody listens
    s.proc.wait()
    assert os.path.exists(s.ls_sock)
    r, who = ls_via(root, tmp_path)
    assert r.returncode == 0 and who == "agents", r.stderr
    assert [x["name"] for x in json.loads(r.stdout)] == ["alone"]
    assert "status-serve" not in r.stderr


def test_a_request_it_does_not_serve_gets_an_error_line(served, tmp_path):
    root, a, b, s = served
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect(s.ls_sock)
        c.sendall(b'{"op":"rm","format":"json"}\n')
        answer = c.makefile("rb").readline()
    got = json.loads(answer)
    assert got["ok"] is False and "unknown request" in got["error"]
    assert ls_via(root, tmp_path)[1] == "status-serve"  # and it still serves


class FakeService:
    """Something at the ls socket that answers every client with answer, or
    with nothing while it stays connected (answer None)."""

    def __init__(self, path, answer):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.answer = answer
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return  # closed
            with c:
                c.recv(256)
                if self.answer is None:
                    self.closing.wait(60)
                else:
                    c.sendall(self.answer)

    def close(self):
        self.closing.set()
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=10)


ACK = b'{"ok":true,"listing":true}\n'


@pytest.mark.parametrize("answer, says", [
    (ACK + b'{"ok":true,"bytes":5000,"agents":2,"sessions":1,"stderr":""}\n[\n  {',
     "announced"),
    (ACK + b'{"ok":false,"error":"out of memory"}\n', "out of memory"),
    (b'{"ok":false,"error":"unknown request"}\n', "unknown request"),
    (ACK + b'not a header\n', "header"),
    (b'not an acknowledgement\n', "header"),
    (b'', "without an answer"),
    (None, "within 2000 ms"),
])
def test_a_broken_answer_is_never_printed_and_the_agents_are_asked(two_agents, tmp_path,
                                                                    answer, says):
    root, a, b = two_agents
    make_sessions(root, a, ["kept"])
    fake = FakeService(os.path.join(root, "run/convocate/ls.sock"), answer)
    try:
        r, who = ls_via(root, tmp_path)
    finally:
        fake.close()
    assert r.returncode == 0 and who == "agents", r.stderr
    assert [x["name"] for x in json.loads(r.stdout)] == ["kept"]
    assert "status-serve's list failed" in r.stderr and says in r.stderr, r.stderr
