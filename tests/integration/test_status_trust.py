"""What status-serve trusts an agent with (SPEC 8.4, 14), driven through
OpenSSH with the agents' real keys: the key that authenticated decides the
agent, so an event naming another agent is dropped, counted and logged, and
touches neither the other agent's DNS records nor its live state; a key in
status_authorized_keys that belongs to no registered agent gets no channel;
the DNS table follows thousands of sessions being created, renamed and
deleted, caps each agent, and a real dnsmasq still answers afterwards."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import free_port, make_client_key
from lib.common import remove_tree, HOST_BIN
from lib.status_serve import Shell, Subscriber, run_ok

DOMAIN = "convocate.internal"
FOREIGN = "10.1.2.3 vm1.convocate.internal vm1\n"  # a line somebody else owns
CAP = 4096  # DNS_NAMES_PER_AGENT


def uuid_of(i):
    return f"{i:08x}-0000-4000-8000-{i:012x}"


class Agent2:
    """A second agent paired with the same shell, whose sessions' names point
    to another address (10.9.9.9)."""

    def __init__(self, shell, base):
        self.root = os.path.join(base, "agent2")
        os.makedirs(self.root)
        run_ok(HOST_BIN, "init-agent", "--root", shell.root, "--agent-root", self.root,
               "--agent-addr", "10.9.9.9")
        with open(os.path.join(self.root, "etc/convocate-agent/agent-id")) as f:
            self.agent_id = f.read().strip()
        self.key = os.path.join(self.root, "etc/convocate-agent/agent_to_shell_ed25519_key")


def send_as(shell, key, *events, timeout=60):
    data = b"".join((json.dumps(e) + "\n").encode() for e in events)
    r = shell.ssh(key=key, data=data, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r


def hosts_text(shell):
    try:
        with open(shell.hosts) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_for_log(shell, pattern, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, shell.log())
        if m:
            return m
        time.sleep(0.1)
    raise AssertionError(f"no log line matching {pattern!r}:\n{shell.log()[-3000:]}")


@pytest.fixture
def base():
    d = tempfile.mkdtemp(prefix="cvt-")  # short: the feed is a unix socket path
    yield d
    remove_tree(d)


def start_shell(base, **kw):
    """Shell() pairs one agent itself; the second one joins while it runs
    (status-serve reads agent-keys afresh for each connection)."""
    s = Shell(base, **kw)
    return s, Agent2(s, base)


def test_spoofed_agent_id_is_dropped_counted_and_harmless(base):
    shell, other = start_shell(base)
    try:
        sub = Subscriber(shell.feed)
        sub.next()  # greeting: the agent Shell() paired
        me, them = shell.agent_id, other.agent_id
        # agent 2 has a session with a name; agent 1 will try to take it over
        send_as(shell, other.key, shell.event("container.created", {"dns_name": "theirs"},
                                              session_id=uuid_of(2), agent_id=them))
        sub.until(lambda e: e.get("session_id") == uuid_of(2))
        sub.until(lambda e: e["type"] == "shell.agent" and e["agent_id"] == them)  # first seen
        spoofed = [
            shell.event("container.created", {"dns_name": "evil"}, session_id=uuid_of(3),
                        agent_id=them),
            shell.event("container.deleted", None, session_id=uuid_of(2), agent_id=them),
            shell.event("agent.shutdown", {"reason": "SIGTERM"}, agent_id=them),
        ]
        mine = [
            # its own events may not touch agent 2's session or name either
            shell.event("container.edited", {"dns_name": "grab"}, session_id=uuid_of(2)),
            shell.event("container.deleted", None, session_id=uuid_of(2)),
            shell.event("container.created", {"dns_name": "theirs"}, session_id=uuid_of(4)),
            shell.event("container.created", {"dns_name": "mine"}, session_id=uuid_of(1)),
        ]
        send_as(shell, shell.agent_key, *spoofed, *mine)
        _, seen = sub.until(lambda e: e.get("session_id") == uuid_of(1)
                            and e["type"] == "container.created")
        # nothing in agent 2's name reached the feed, and it was not marked gone
        assert all(e["agent_id"] == me for e in seen), seen
        assert not any(e["type"] == "shell.agent" for e in seen), seen
        text = hosts_text(shell)
        assert sorted(text.splitlines()) == [
            f"10.9.9.9 theirs.{DOMAIN} theirs", f"127.0.0.1 mine.{DOMAIN} mine"], text
        assert "evil" not in text and "grab" not in text
        # the first spoof is logged at once, naming both; the total at the close
        wait_for_log(shell, rf"agent {me} sent an event naming agent {them}; dropped "
                            rf"\(1 such events")
        wait_for_log(shell, rf"agent {me}: 3 events naming another agent were dropped")
        log = shell.log()
        assert len(re.findall(r"sent an event naming agent", log)) == 1  # rate-limited
        assert f"is held by session {uuid_of(2)} of agent {them}" in log or \
            f"session {uuid_of(2)} belongs to agent {them}" in log
        # a new subscriber still sees agent 2 live
        late = Subscriber(shell.feed)
        greet = {}
        for _ in range(2):
            ev = json.loads(late.next())
            greet[ev["agent_id"]] = ev["data"]["live"]
        assert greet == {me: True, them: True}
        late.close()
        sub.close()
        assert shell.proc.poll() is None
    finally:
        shell.stop()


def test_authorized_key_of_no_agent_gets_no_channel(base):
    shell = Shell(base)
    try:
        sub = Subscriber(shell.feed)
        sub.next()
        stranger = make_client_key(base, "stranger")
        with open(os.path.join(shell.root, "etc/convocate/status_authorized_keys"), "a") as f, \
                open(stranger + ".pub") as pub:
            f.write(pub.read())
        line = (json.dumps(shell.event("container.created", {"dns_name": "x"},
                                       session_id=uuid_of(1))) + "\n").encode()
        r = shell.ssh(key=stranger, data=line)
        assert r.returncode != 0  # authenticated, but the subsystem is refused
        assert b"Permission denied" not in r.stderr
        wait_for_log(shell, r"is authorized but names no single agent")
        sub.sock.settimeout(1.5)
        with pytest.raises(socket.timeout):
            sub.sock.recv(100)
        assert hosts_text(shell) == ""
    finally:
        shell.stop()


def start_dnsmasq(base, hosts, pidfile):
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    port = free_port()
    log = open(os.path.join(base, "dnsmasq.log"), "w")
    proc = subprocess.Popen([dnsmasq, "-k", "--conf-file=/dev/null", f"--port={port}",
                             "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                             "--no-hosts", f"--addn-hosts={hosts}", f"--pid-file={pidfile}",
                             "--user=root", "--log-facility=-"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + 10
    while not os.path.exists(pidfile) and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc, port


def resolve(port, name):
    r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+short", "+time=2", "+tries=1",
                        name], capture_output=True, text=True, timeout=10)
    return r.stdout.strip()


def wait_resolves(port, name, want, timeout=15):
    deadline = time.monotonic() + timeout
    while resolve(port, name) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    return resolve(port, name)


def names_in(text):
    return sorted(line.split()[2] for line in text.splitlines() if line != FOREIGN.strip())


def test_five_thousand_sessions_come_and_go_and_dns_still_works(base):
    if not (shutil.which("dnsmasq") or os.path.exists("/usr/sbin/dnsmasq")) or \
            not shutil.which("dig"):
        pytest.skip("dnsmasq and dig are needed")
    pidfile = os.path.join(base, "dnsmasq.pid")
    shell = Shell(base, dnsmasq_pidfile=pidfile)
    with open(shell.hosts, "a") as f:
        f.write(FOREIGN)
    dns, port = start_dnsmasq(base, shell.hosts, pidfile)
    n = 5000
    ev = shell.event
    try:
        # 1000 sessions without a name first: they must not use up the cap
        nameless = [ev("container.created", {"dns_name": ""}, session_id=uuid_of(100000 + i))
                    for i in range(1000)]
        created = [ev("container.created", {"dns_name": f"s{i}"}, session_id=uuid_of(i))
                   for i in range(n)]
        send_as(shell, shell.agent_key, *nameless, *created, timeout=600)
        assert names_in(hosts_text(shell)) == sorted(f"s{i}" for i in range(CAP))
        # over the cap: refused, and logged a few times, not 904 times
        refusals = re.findall(r"DNS record refused: agent \S+ already has 4096 DNS names",
                              shell.log())
        assert 1 <= len(refusals) <= 10, len(refusals)
        assert wait_resolves(port, f"s4095.{DOMAIN}", "127.0.0.1") == "127.0.0.1"
        assert resolve(port, f"s4096.{DOMAIN}") == ""

        # renamed (0..999) and cleared (1000..1999): the old names go
        edits = [ev("container.edited", {"dns_name": f"r{i}"}, session_id=uuid_of(i))
                 for i in range(1000)]
        edits += [ev("container.edited", {"dns_name": ""}, session_id=uuid_of(i))
                  for i in range(1000, 2000)]
        send_as(shell, shell.agent_key, *edits, timeout=600)
        want = sorted([f"r{i}" for i in range(1000)] + [f"s{i}" for i in range(2000, CAP)])
        assert names_in(hosts_text(shell)) == want

        deleted = [ev("container.deleted", None, session_id=uuid_of(i)) for i in range(n)]
        deleted += [ev("container.deleted", None, session_id=uuid_of(100000 + i))
                    for i in range(1000)]
        send_as(shell, shell.agent_key, *deleted, timeout=600)
        assert hosts_text(shell) == FOREIGN  # exactly the live names: none but the VM's
        assert wait_resolves(port, f"r5.{DOMAIN}", "") == ""

        # the table emptied with the file: a new name is published and answered
        send_as(shell, shell.agent_key,
                ev("container.created", {"dns_name": "fresh"}, session_id=uuid_of(n + 1)))
        assert hosts_text(shell) == FOREIGN + f"127.0.0.1 fresh.{DOMAIN} fresh\n"
        assert wait_resolves(port, f"fresh.{DOMAIN}", "127.0.0.1") == "127.0.0.1"
        assert resolve(port, f"vm1.{DOMAIN}") == "10.1.2.3"
        assert shell.proc.poll() is None
    finally:
        dns.send_signal(signal.SIGTERM)
        dns.wait(timeout=10)
        shell.stop()
