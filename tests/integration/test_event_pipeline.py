"""The event pipeline under load (SPEC 8.3, 8.4; issue 13): a real agent
streams to a real status-serve, and a subscriber reads the feed socket.

Load comes from the agent's test-only op test-emit, which exists only when
the agent runs with --test-hooks (no real op publishes thousands of events
a second); the real-op checks use settings-set and edit."""
import re
import time
import uuid

import pytest

from lib.pipeline_pair import PipelinePair

DROP_LINE = re.compile(r"status events: queue full .*: dropped (\d+) events since the last "
                       r"report, (\d+) in all")


@pytest.fixture
def pair():
    p = PipelinePair(agent_args=["--test-hooks"])
    yield p
    p.cleanup()


@pytest.fixture
def connected(pair):
    """The pair with a subscriber already reading and the agent streaming."""
    reader = pair.subscribe()
    pair.agent.start()
    pair.wait_connected(reader)
    yield pair, reader
    reader.close()


def is_load(tag):
    return lambda e: e.get("type") == "test.load" and (e.get("data") or {}).get("tag") == tag


def test_burst_of_5000_events_all_reach_the_feed(connected):
    pair, reader = connected
    res = pair.agent.ok("test-emit", {"count": 5000, "tag": "burst"})
    assert res["published"] == 5000 and res["dropped"] == 0
    got = reader.wait_for(is_load("burst"), count=5000, timeout=60)
    seqs = [e["data"]["seq"] for _, e in got]
    assert len(seqs) == 5000, f"{len(seqs)} of 5000 reached the feed"
    assert seqs == list(range(5000))  # each once, in order
    assert all(e["agent_id"] == pair.agent.agent_id for _, e in got)
    assert "queue full" not in pair.agent.log()
    assert "too slow" not in pair.status_text()  # the subscriber kept up


def test_coalescing_keeps_the_last_value(connected):
    pair, reader = connected
    sid = str(uuid.uuid4())
    res = pair.agent.ok("test-emit", {"count": 5000, "tag": "act", "type": "session.activity",
                                      "session_id": sid})
    assert res["dropped"] == 0
    assert res["coalesced"] > 0  # the burst outran the sender: older activities were replaced
    last = reader.wait_for(lambda e: e.get("type") == "session.activity"
                           and e["data"]["seq"] == 4999, timeout=60)
    assert last, "the last activity never reached the feed"
    seqs = [e["data"]["seq"] for _, e in reader.matching(
        lambda e: e.get("type") == "session.activity" and e["data"]["tag"] == "act")]
    assert seqs == sorted(set(seqs)) and seqs[-1] == 4999  # in order, none twice
    # Every event was either delivered or replaced by a newer one.
    assert len(seqs) + res["coalesced"] == 5000, (len(seqs), res["coalesced"])


def test_real_op_edits_end_with_the_last_name(test_image):
    """container.edited coalesces per session: whatever was merged, the feed
    ends with the session's final name, after its container.created."""
    pair = PipelinePair(image=test_image)
    try:
        reader = pair.subscribe()
        pair.agent.start()
        pair.wait_connected(reader)
        sid = pair.agent.ok("create", {"name": "pipe-0"})["uuid"]
        for i in range(1, 21):
            pair.agent.ok("edit", {"id": sid, "name": f"pipe-{i}"})
        got = reader.wait_for(lambda e: e.get("session_id") == sid
                              and e["type"] == "container.edited"
                              and e["data"]["name"] == "pipe-20", timeout=30)
        assert got, "the last edit never reached the feed"
        mine = [e for _, e in reader.matching(lambda e: e.get("session_id") == sid)]
        assert mine[0]["type"] == "container.created"
        names = [e["data"]["name"] for e in mine[1:]]
        assert names == sorted(names, key=lambda n: int(n.split("-")[1]))
        reader.close()
    finally:
        pair.cleanup()


def test_drops_are_summarised_at_most_once_per_10_s():
    """No shell to send to: the queue (8192 events) fills and the rest drop.
    The first drop is reported at once; the others wait for the next report,
    10 s later, as one line with their count."""
    pair = PipelinePair(agent_args=["--test-hooks"], start_shell=False)
    try:
        pair.agent.start()
        res = pair.agent.ok("test-emit", {"count": 20000, "tag": "flood"})
        assert res["dropped"] >= 20000 - 8192
        first = [m.groups() for m in DROP_LINE.finditer(pair.agent.log())]
        assert first == [("1", "1")], first
        time.sleep(4)
        pair.agent.ok("test-emit", {"count": 100, "tag": "more"})
        assert len(DROP_LINE.findall(pair.agent.log())) == 1  # still within the 10 s
        time.sleep(7)
        res = pair.agent.ok("test-emit", {"count": 1, "tag": "late"})
        lines = [tuple(map(int, m.groups())) for m in DROP_LINE.finditer(pair.agent.log())]
        assert len(lines) == 2, lines
        assert lines[1][1] == res["dropped"]  # the summary counts them all
        assert lines[1][0] == res["dropped"] - 1
    finally:
        pair.cleanup()


def test_settings_set_reaches_the_feed(connected):
    """The real op path: settings-set publishes agent.settings; each change
    arrives on the feed, in order."""
    pair, reader = connected
    for pct in (80, 81, 82, 83, 84):
        pair.agent.ok("settings-set", {"admission_threshold_pct": pct})
    got = reader.wait_for(lambda e: e.get("type") == "agent.settings", count=5, timeout=30)
    assert [e["data"]["admission_threshold_pct"] for _, e in got] == [80, 81, 82, 83, 84]


def test_test_emit_is_unknown_without_the_flag():
    pair = PipelinePair(start_shell=False)
    try:
        pair.agent.start()
        resp = pair.agent.rpc("test-emit", {"count": 1})
        assert resp == {"ok": False, "error": 'unknown op "test-emit"'}
    finally:
        pair.cleanup()
