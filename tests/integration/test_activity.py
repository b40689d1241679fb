"""Activity, peek and send end to end (SPEC 16): the real Claude CLI in a
session the agent runs, against the model stand-in, with the image's hooks
and statusLine writing the activity spool, the agent's watcher publishing
session.activity, and the real status-serve's local feed carrying it to a
subscriber. One prompt makes Claude ask permission for Bash (the stand-in
answers a tool_use for the marker [[bash: CMD]]; Claude runs with
--permission-mode default through a wrapper mounted as
/usr/local/bin/claude); `convocate send` approves it."""
import json
import os
import re
import subprocess
import time

import pytest

from lib.common import SHELL_BIN, docker
from lib.claude_session import claude_cluster, convocate_ok, new_claude_session, \
    set_credentials, wait_prompt
from lib.netcluster import Feed

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

STEP_S = 1.0  # hook line written -> event on the feed


@pytest.fixture
def net(test_image, claude_bin):
    with claude_cluster(test_image) as c:
        yield c, claude_bin


def spool_lines(agent, uuid):
    path = os.path.join(agent.root, "var/lib/convocate-agent/activity", uuid, "events")
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


class Activity:
    """The session's session.activity events as the feed delivers them,
    each checked to arrive within STEP_S of its spool line's time."""

    def __init__(self, feed, agent, uuid):
        self.feed, self.agent, self.uuid = feed, agent, uuid
        self.seen = []

    def until(self, pred, timeout, what):
        def match(ev):
            return (ev["type"] == "session.activity" and ev.get("session_id") == self.uuid
                    and pred(ev["data"]))
        ev, _ = self.feed.until(match, timeout, what)
        received_ms = time.time() * 1000
        data = ev["data"]
        self.seen.append(data)
        # The newest line that says this: its hook wrote it at ts.
        key = (data["state"], data["detail"])
        lines = [l for l in spool_lines(self.agent, self.uuid)
                 if (l.get("state"), l.get("detail")) == key]
        if lines and "state" in lines[-1]:
            lag = (received_ms - lines[-1]["ts"]) / 1000
            assert lag <= STEP_S, f"{what}: on the feed {lag:.2f} s after its hook wrote it"
        return data


def test_one_prompt_through_working_waiting_working_idle(net, standin):
    c, claude_bin = net
    a = c.agents[0]
    set_credentials(a, standin)
    feed = Feed(c.feed)
    # The watchers start before the session exists: they learn its name
    # from its container events, so its lines are by name from the first.
    watchers = [subprocess.Popen([SHELL_BIN, "--root", c.shell_root, "watch", *extra],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for extra in ([], ["--json"])]
    uuid = new_claude_session(c, "act1", claude_bin)
    act = Activity(feed, a, uuid)
    act.until(lambda d: d["state"] == "idle", 120, "idle at Claude's start")
    wait_prompt(c, "act1")  # (the footer is our statusLine's)

    prompt = "please run [[bash: echo activity-$((6*7)) >/tmp/activity-proof]]"
    convocate_ok(c, "send", "act1", prompt)
    act.until(lambda d: d["state"] == "working", 30, "working after the prompt")
    standin.wait_for(lambda r: r.is_conversation() and prompt in r.text(), 30)
    waiting = act.until(lambda d: d["state"] == "waiting", 60, "waiting for permission")
    assert "Bash" in waiting["detail"], waiting
    screen = convocate_ok(c, "peek", "act1")
    assert "activity-" in screen, screen
    # Option 1 of Claude's permission dialog, "Yes", is selected by its digit.
    convocate_ok(c, "send", "act1", "1", "--no-enter")
    act.until(lambda d: d["state"] == "working", 30, "working after the approval")
    act.until(lambda d: d["state"] == "idle", 60, "idle after the reply")
    assert a.rpc("list")[0]["activity"]["state"] == "idle"
    deadline = time.monotonic() + 30
    while True:
        got = a.rpc("get", {"id": uuid})["activity"]
        if (got["cost_usd"] or 0) > 0 and got["context_pct"] is not None:
            break
        assert time.monotonic() < deadline, got
        time.sleep(0.2)
    assert any(d["cost_usd"] and d["cost_usd"] > 0 for d in act.seen) or got["cost_usd"] > 0
    # The tool ran, and the stand-in's reply after it is on the screen.
    r = c.convocate("peek", "act1")
    deadline = time.monotonic() + 30
    while "● reply-" not in r.stdout:
        assert time.monotonic() < deadline, r.stdout
        time.sleep(0.3)
        r = c.convocate("peek", "act1")
    proof = docker("exec", f"convocate-session-{uuid}", "cat", "/tmp/activity-proof", check=False)
    assert proof.stdout == "activity-42\n", "the approved tool did not run"
    print("activity seen:", act.seen)
    # convocate watch printed the same changes, by name; --json the events.
    outs = []
    for w in watchers:
        w.terminate()
        outs.append(w.communicate(timeout=10)[0])
    plain, raw = outs
    print("convocate watch:\n" + plain)
    assert re.search(rf"^\d\d:\d\d:\d\d act1 {a.agent_id} waiting \$[0-9.]+ .*Bash$", plain,
                     re.M), plain
    assert re.search(rf"^\d\d:\d\d:\d\d act1 {a.agent_id} idle \$[0-9.]+ ctx \d+%$", plain,
                     re.M), plain
    events = [json.loads(l) for l in raw.splitlines()]
    assert events and all(e["type"] == "session.activity" for e in events)
    assert [e["data"]["state"] for e in events if e["session_id"] == uuid][-1] == "idle"
