"""convocate status-serve (SPEC 8.4) on a shell paired with an agent by
convocate-host: only the agent's key gets in and only on convocate-status;
garbage and oversized lines are skipped while the stream goes on; the local
feed greets each subscriber with the agents it knows, forwards every event,
reports agents turning live and silent, drops a slow subscriber without
stalling the others; the dnsmasq hosts file follows session DNS names and a
real dnsmasq answers for them."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time

import pytest

from lib.common import remove_tree, SHELL_BIN, free_port, make_client_key
from lib.status_serve import Shell, Subscriber
from lib.wait import wait_until

UUID = "0b5a0a3e-4b5c-4d6e-8f70-8192a3b4c5d6"
UUID2 = "1c6b1b4f-5c6d-4e7f-9a81-92a3b4c5d6e7"


@pytest.fixture
def base():
    d = tempfile.mkdtemp(prefix="cvs-")  # short: the feed is a unix socket path
    yield d
    remove_tree(d)


@pytest.fixture
def shell(base):
    s = Shell(base)
    yield s
    s.stop()


def test_feed_greets_forwards_and_survives_garbage(shell):
    sub = Subscriber(shell.feed)
    greeting = json.loads(sub.next())
    assert greeting["type"] == "shell.agent" and greeting["agent_id"] == shell.agent_id
    # known from init-agent, not heard from yet: live until 3 heartbeats pass
    assert greeting["data"] == {"live": True, "last_seen": None}
    shutdown = json.dumps(shell.event("agent.shutdown", {"reason": "SIGTERM"}))
    started = json.dumps(shell.event("agent.started", {"version": "v0.1.0", "image_tag": ""}))
    created = json.dumps(shell.event("container.created", {"name": "web", "dns_name": ""},
                                     session_id=UUID))
    shell.send(b"garbage that is not json\n", b"[1,2,3]\n", b"{\"type\":\"x\"}\n",
               (shutdown + "\n").encode(), b"x" * (2 * 1024 * 1024) + b"\n",
               (started + "\n").encode(), b"{\"unterminated\n", (created + "\n").encode())
    got = [sub.next() for _ in range(5)]
    assert got[0] == shutdown.encode()  # the same bytes, forwarded
    gone = json.loads(got[1])
    assert gone["type"] == "shell.agent" and gone["data"]["live"] is False
    assert gone["data"]["last_seen"].endswith("Z")
    assert got[2] == started.encode()  # after the 2 MiB line, the stream went on
    back = json.loads(got[3])
    assert back["type"] == "shell.agent" and back["data"]["live"] is True
    assert got[4] == created.encode()
    log = shell.log()
    assert "does not parse" in log and "over the 65536 byte limit" in log
    # a new subscriber is greeted with what is known now
    late = Subscriber(shell.feed)
    ev = json.loads(late.next())
    assert ev["type"] == "shell.agent" and ev["data"]["live"] is True
    sub.close()
    late.close()
    assert shell.proc.poll() is None


def test_unknown_key_and_other_requests_refused(shell, base):
    sub = Subscriber(shell.feed)
    sub.next()  # greeting
    stranger = make_client_key(base, "stranger")
    line = (json.dumps(shell.event("agent.started", {})) + "\n").encode()
    r = shell.ssh(key=stranger, data=line)
    assert r.returncode == 255 and b"Permission denied" in r.stderr
    r = shell.ssh(subsystem="convocate-agent-rpc", data=line)
    assert r.returncode != 0
    rsa = make_client_key(base, "rsa", kind="rsa")
    with open(os.path.join(shell.root, "etc/convocate/status_authorized_keys"), "a") as f, \
            open(rsa + ".pub") as pub:
        f.write(pub.read())
    assert shell.ssh(key=rsa, data=line).returncode == 255  # ed25519 only
    sub.sock.settimeout(1.5)
    with pytest.raises(socket.timeout):
        sub.sock.recv(100)  # nothing was forwarded


def test_from_option_in_status_authorized_keys(shell):
    """The 223 listener reads status_authorized_keys with the agent's
    parser: from= binds the agent's key to its address."""
    path = os.path.join(shell.root, "etc/convocate/status_authorized_keys")
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        for ln in lines:
            f.write(ln if not ln.strip() or ln.startswith("#") else f'from="127.0.0.2" {ln}')
            f.write("\n")
    sub = Subscriber(shell.feed)
    sub.next()  # greeting
    started = json.dumps(shell.event("agent.started", {"version": "v0.1.0", "image_tag": ""}))
    r = shell.ssh(data=(started + "\n").encode(), extra=("-b", "127.0.0.3"))
    assert r.returncode == 255 and b"Permission denied" in r.stderr
    assert "is not allowed from 127.0.0.3 (its from= option)" in shell.log()
    r = shell.ssh(data=(started + "\n").encode(), extra=("-b", "127.0.0.2"))
    assert r.returncode == 0, r.stderr
    assert sub.next() == started.encode()  # only the allowed one was forwarded
    sub.close()


def test_agent_turns_silent_after_three_heartbeats(shell):
    sub = Subscriber(shell.feed)
    greeting = json.loads(sub.next())
    # A paired agent counts as live from the listener's start (not yet silent).
    assert greeting["type"] == "shell.agent" and greeting["data"]["live"] is True
    shell.send(shell.event("agent.settings", {"heartbeat_s": 5}))
    t0 = time.monotonic()
    ev, _ = sub.until(lambda e: e["type"] == "shell.agent", timeout=25)
    assert ev["data"]["live"] is False
    assert 13 <= time.monotonic() - t0 <= 20
    shell.send(shell.event("agent.heartbeat"))
    ev, _ = sub.until(lambda e: e["type"] == "shell.agent")
    assert ev["data"]["live"] is True


def test_slow_subscriber_is_dropped_others_get_everything(shell):
    slow = Subscriber(shell.feed, rcvbuf=4096)  # never reads
    fast = Subscriber(shell.feed)
    fast.next()
    filler = "y" * 60000
    n = 60  # ~3.6 MB: more than a subscriber may have queued
    events = [shell.event("agent.heartbeat", {"pad": filler, "n": i}) for i in range(n)]
    received = []

    def read_fast():  # a subscriber that keeps up, reading while the agent sends
        while len(received) < n:
            ev = json.loads(fast.next(timeout=30))
            if ev["type"] == "agent.heartbeat":
                received.append(ev["data"]["n"])

    reader = threading.Thread(target=read_fast)
    reader.start()
    shell.send(*events)
    reader.join(timeout=60)
    assert received == list(range(n))
    # the slow one was cut off: after what was buffered, its stream ends
    slow.sock.settimeout(10)
    total = 0
    while True:
        chunk = slow.sock.recv(1 << 20)
        if not chunk:
            break
        total += len(chunk)
    assert total < n * 60000
    assert "too slow" in shell.log()
    assert shell.proc.poll() is None


def test_dnsmasq_hosts_follow_dns_names(shell):
    with open(shell.hosts, "a") as f:
        f.write("10.1.2.3 vm1.convocate.internal vm1\n")  # a line somebody else owns
    sub = Subscriber(shell.feed)
    sub.next()

    def hosts_after(*events):
        shell.send(*events)
        sub.until(lambda e: e["type"] == events[-1]["type"] and
                  e.get("session_id") == events[-1].get("session_id"))
        with open(shell.hosts) as f:
            return f.read()

    text = hosts_after(shell.event("container.created", {"name": "w", "dns_name": "web"},
                                   session_id=UUID))
    assert text == "10.1.2.3 vm1.convocate.internal vm1\n127.0.0.1 web.convocate.internal web\n"
    assert oct(os.stat(shell.hosts).st_mode & 0o777) == "0o644"
    text = hosts_after(shell.event("container.created", {"name": "a", "dns_name": "api"},
                                   session_id=UUID2),
                       shell.event("container.edited", {"name": "w", "dns_name": "www"},
                                   session_id=UUID))
    assert sorted(text.splitlines()) == ["10.1.2.3 vm1.convocate.internal vm1",
                                         "127.0.0.1 api.convocate.internal api",
                                         "127.0.0.1 www.convocate.internal www"]
    text = hosts_after(shell.event("container.deleted", None, session_id=UUID2))
    assert "api" not in text and "www.convocate.internal" in text
    text = hosts_after(shell.event("container.created", {"dns_name": "BAD NAME"},
                                   session_id=UUID2))
    assert "BAD" not in text


def test_real_dnsmasq_answers_after_reload(base):
    if not (shutil.which("dnsmasq") or os.path.exists("/usr/sbin/dnsmasq")) or \
            not shutil.which("dig"):
        pytest.skip("dnsmasq and dig are needed")
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    pidfile = os.path.join(base, "dnsmasq.pid")
    s = Shell(base, dnsmasq_pidfile=pidfile)
    dns_port = free_port()
    log = open(os.path.join(base, "dnsmasq.log"), "w")
    dns = subprocess.Popen([dnsmasq, "-k", "--conf-file=/dev/null", f"--port={dns_port}",
                            "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                            "--no-hosts", f"--addn-hosts={s.hosts}", f"--pid-file={pidfile}",
                            "--user=root", "--log-facility=-"],
                           stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    log.close()
    try:
        wait_until(lambda: os.path.exists(pidfile), 10, "dnsmasq's pid file", interval=0.05)

        def resolve(name):
            r = subprocess.run(["dig", "@127.0.0.1", "-p", str(dns_port), "+short", "+time=2",
                                "+tries=1", name], capture_output=True, text=True, timeout=10)
            return r.stdout.strip()

        assert resolve("web.convocate.internal") == ""
        sub = Subscriber(s.feed)
        sub.next()
        s.send(s.event("container.created", {"dns_name": "web"}, session_id=UUID))
        sub.until(lambda e: e["type"] == "container.created")
        wait_until(lambda: resolve("web.convocate.internal") == "127.0.0.1", 10,
                   "dnsmasq to answer for web.convocate.internal", interval=0.2)
        assert resolve("web.convocate.internal") == "127.0.0.1"
    finally:
        dns.send_signal(signal.SIGTERM)
        dns.wait(timeout=10)
        s.stop()


def test_sigterm_stops_cleanly(shell):
    assert shell.stop() == 0
    assert not os.path.exists(shell.feed)


def test_default_feed_socket_under_root(base):
    s = Shell(base, default_feed=True)
    try:
        st = os.stat(s.feed)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
        sub = Subscriber(s.feed)
        assert json.loads(sub.next())["type"] == "shell.agent"
    finally:
        s.stop()


def test_usage_errors(base):
    r = subprocess.run([SHELL_BIN, "status-serve", "--listen", "nonsense:99999"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--listen" in r.stderr
    r = subprocess.run([SHELL_BIN, "status-serve", "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2
    # no host key under this root: a runtime failure naming the key
    r = subprocess.run([SHELL_BIN, "--root", base, "status-serve", "--listen",
                        f"127.0.0.1:{free_port()}", "--feed", os.path.join(base, "f.sock")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "status_host_ed25519_key" in r.stderr
