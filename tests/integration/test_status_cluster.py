"""The status channel across hosts (SPEC 8): a shell in the root network
namespace and two agents in namespaces of their own, paired by convocate-host.
Real agents stream their events over SSH to the real status-serve, whose feed
a subscriber reads: per-session order, reconnection after the listener was
gone, a stalled listener that never slows an RPC, and silence when a link is
cut."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from lib.netcluster import Feed, NetCluster
from lib.wait import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def fingerprint(pub):
    r = subprocess.run(["ssh-keygen", "-l", "-f", pub], capture_output=True, text=True,
                       check=True)
    return r.stdout.split()[1]


def new_session(c, agent, name, *extra):
    r = c.convocate("new", name, "--agent", agent.agent_id, *extra)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()[0]  # "<uuid> <name> on <agent>"


def test_events_of_both_agents_arrive_in_order_per_session(net):
    feed = Feed(net.feed)
    uuids = {}
    for i, a in enumerate(net.agents):
        name = f"ord{i}"
        uuids[new_session(net, a, name, "--dns", f"ord{i}")] = a.agent_id
        net.convocate_ok("edit", name, "--port", str(7000 + i))
        net.convocate_ok("restart", name)
        net.convocate_ok("kill", name)
        net.convocate_ok("delete", name, "--yes")
    want = ["container.created", "container.edited", "container.started", "container.stopped",
            "container.deleted"]
    got = {u: [] for u in uuids}
    deadline = time.monotonic() + 60
    while any(len(v) < len(want) for v in got.values()):
        ev, _ = feed.until(lambda e: e["type"].startswith("container."),
                           max(1, deadline - time.monotonic()), "the container events")
        if ev.get("session_id") in got:
            assert ev["agent_id"] == uuids[ev["session_id"]]
            got[ev["session_id"]].append(ev["type"])
    for u, types in got.items():
        assert types == want, f"session {u}: {types}"


def test_agents_reconnect_after_the_listener_was_gone(net):
    net.status_proc.kill()  # gone without a goodbye
    net.status_proc.wait()
    down_since = time.monotonic()
    a, b = net.agents
    queued = new_session(net, a, "while-down")  # its event waits in a's queue
    # The queue (8192 events) keeps every one of these while the shell is away.
    for i in range(270):
        a.rpc("settings-set", {"heartbeat_s": 30 + i % 2})
    # The listener stays away 20 s in all: the outage is what this test puts
    # the agents through (long enough for their redial backoff, 1 s and
    # doubling, to fail several times), a length of time rather than an event
    # to wait for, so it stays a bounded sleep.
    time.sleep(max(0.0, 20 - (time.monotonic() - down_since)))
    net.start_status()
    feed = Feed(net.feed)
    ev, _ = feed.until(lambda e: e.get("session_id") == queued, 60, "the queued event")
    assert ev["type"] == "container.created"
    for i in range(270):  # then all of them, in order (drops: test_event_pipeline.py)
        ev, _ = feed.until(lambda e: e["type"] == "agent.settings"
                           and e["agent_id"] == a.agent_id, 60, f"queued settings event {i}")
        assert ev["data"]["heartbeat_s"] == 30 + i % 2
    assert "queue full" not in a.log()
    # b reconnects too, and what is published now arrives at once.
    after = new_session(net, b, "after-return")
    ev, _ = feed.until(lambda e: e.get("session_id") == after, 60, "an event after reconnection")
    assert ev["agent_id"] == b.agent_id
    for agent in (a, b):  # nobody was restarted
        assert agent.proc.poll() is None and agent.log().count("listening on") == 1


def test_a_stalled_listener_never_slows_an_rpc(net):
    a = net.agents[0]
    t0 = time.monotonic()
    a.rpc("ping")
    normal = time.monotonic() - t0
    os.kill(net.status_proc.pid, signal.SIGSTOP)
    try:
        slowest = 0.0
        for i in range(300):  # far more than the channel window takes
            t0 = time.monotonic()
            a.rpc("settings-set", {"heartbeat_s": 30 + i % 2})
            slowest = max(slowest, time.monotonic() - t0)
        # An emitter that blocked on the stopped listener would hang here
        # for good; a generous bound keeps this about blocking, not speed.
        assert slowest < max(5.0, 20 * normal), (slowest, normal)
    finally:
        os.kill(net.status_proc.pid, signal.SIGCONT)


def test_a_cut_link_turns_the_agent_silent_then_live(net):
    feed = Feed(net.feed)
    a, b = net.agents
    b.rpc("settings-set", {"heartbeat_s": 5})
    feed.until(lambda e: e["type"] == "agent.settings" and e["agent_id"] == b.agent_id, 30,
               "b's new settings")
    b.link(False)
    t0 = time.monotonic()
    ev, seen = feed.until(lambda e: e["type"] == "shell.agent" and e["agent_id"] == b.agent_id,
                          40, "b turning silent")
    assert ev["data"]["live"] is False
    assert 12 <= time.monotonic() - t0 <= 25
    assert not [e for e in seen if e["type"] == "shell.agent" and e["agent_id"] == a.agent_id]
    b.link(True)
    ev, _ = feed.until(lambda e: e["type"] == "shell.agent" and e["agent_id"] == b.agent_id,
                       90, "b live again")
    assert ev["data"]["live"] is True


def test_agent_refuses_a_shell_with_another_host_key(test_image):
    """The agent pins the shell's 223 host key: a listener with another key
    gets nothing, and the agent's log names both fingerprints."""
    c = NetCluster(1, test_image)
    try:
        a = c.agents[0]
        pin = os.path.join(a.root, "etc/convocate-agent/shell_host_key.pub")
        expected = fingerprint(pin)
        other = os.path.join(c.base, "other_host_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
        key = os.path.join(c.shell_root, "etc/convocate/status_host_ed25519_key")
        shutil.copyfile(other, key)
        shutil.copyfile(other + ".pub", key + ".pub")
        offered = fingerprint(key + ".pub")
        c.start_status()
        feed = Feed(c.feed)
        a.start()
        wait_until(lambda: "host key mismatch" in a.log(), 30, "the agent to see the other key",
                   detail=a.log)
        line = [x for x in a.log().splitlines() if "host key mismatch" in x][0]
        assert expected in line and offered in line
        assert "authenticated with" not in c.log()  # nothing was sent, not even our key
        assert feed.next(3) is not None  # the greeting ...
        assert feed.next(2) is None  # ... and nothing from the agent
    finally:
        c.cleanup()
