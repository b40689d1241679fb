"""The agent's activity watcher (SPEC 16) against a real session container:
the spool is mounted at /run/convocate/activity, lines appended to its
events file become the session's activity in list/get and session.activity
events, and hostile spool content (long lines, garbage, a symlink, a FIFO,
a hard link) is dropped and counted without blocking or crashing the agent
and without the agent ever following the link."""
import json
import os
import time

import pytest

from lib.agent_helpers import by_uuid, create_ok, restart_ok, unique_name
from lib.wait import wait_for
from lib.common import docker


def running_session(a):
    s = create_ok(a, name=unique_name("act"))
    restart_ok(a, s["uuid"])
    return s


def spool(a, uuid):
    return os.path.join(a.root, "var", "lib", "convocate-agent", "activity", uuid)


def activity_of(a, uuid):
    return by_uuid(a.ok("list"), uuid)["activity"]


def activity_events(a, uuid):
    return [e for e in a.events()
            if e["type"] == "session.activity" and e.get("session_id") == uuid]


def now_ms():
    return int(time.time() * 1000)


def append(path, *lines):
    with open(path, "a") as f:
        for line in lines:
            f.write(line + "\n")


def state_line(state, detail=""):
    return json.dumps({"ts": now_ms(), "state": state, "detail": detail})


def test_lines_written_in_the_container_become_the_activity(start_agent):
    a = start_agent()
    s = running_session(a)
    uuid = s["uuid"]
    d = spool(a, uuid)
    st = os.stat(d)
    assert oct(st.st_mode & 0o777) == "0o700"
    # The test image has no Claude: its entrypoint says so.
    assert wait_for(lambda: (activity_of(a, uuid) or {}).get("state") == "shell", timeout=5)
    # Written from inside the container, as claude, through the mount.
    line = '{"ts":%d,"state":"working","detail":"from inside"}' % now_ms()
    r = docker("exec", "-u", "claude", f"convocate-session-{uuid}", "sh", "-c",
               f"printf '%s\\n' '{line}' >> /run/convocate/activity/events", check=False)
    assert r.returncode == 0, r.stderr
    ev = wait_for(lambda: [e for e in activity_events(a, uuid) if e["data"]["state"] == "working"],
                  timeout=1.0, interval=0.02)
    assert ev, a.log()
    data = ev[-1]["data"]
    assert data["state"] == "working" and data["detail"] == "from inside"
    assert data["cost_usd"] is None and data["context_pct"] is None and data["model"] is None
    assert data["since"].endswith("Z")
    append(os.path.join(d, "events"),
           json.dumps({"ts": now_ms(), "cost_usd": 0.25, "context_pct": 12.5, "model": "m-1"}))
    got = wait_for(lambda: (lambda x: x if x and x.get("cost_usd") == 0.25 else None)(
        activity_of(a, uuid)), timeout=2)
    assert got == {**got, "state": "working", "context_pct": 12.5, "model": "m-1"}
    assert a.ok("get", {"id": uuid})["activity"]["cost_usd"] == 0.25
    # A stopped session has no activity; a new start begins with none.
    a.ok("kill", {"id": uuid})
    assert activity_of(a, uuid) is None
    restart_ok(a, uuid)
    assert wait_for(lambda: (activity_of(a, uuid) or {}).get("state") == "shell", timeout=5)
    with open(os.path.join(d, "events")) as f:
        assert [json.loads(l)["state"] for l in f] == ["shell"], "the previous run's lines stayed"


def test_adopted_session_is_watched(start_agent):
    a = start_agent()
    s = running_session(a)
    uuid = s["uuid"]
    append(os.path.join(spool(a, uuid), "events"), state_line("idle"))
    assert wait_for(lambda: activity_of(a, uuid), timeout=2)
    a.restart()
    assert activity_of(a, uuid)["state"] == "idle"
    append(os.path.join(spool(a, uuid), "events"), state_line("waiting", "Bash"))
    assert wait_for(lambda: (activity_of(a, uuid) or {}).get("state") == "waiting", timeout=2)


def dropped_count(a):
    return a.ok("ping")["activity_dropped"]


def test_hostile_spool_is_dropped_counted_and_never_followed(start_agent, tmp_root):
    a = start_agent()
    s = running_session(a)
    uuid = s["uuid"]
    events = os.path.join(spool(a, uuid), "events")
    append(events, state_line("idle", "before"))
    assert wait_for(lambda: activity_of(a, uuid), timeout=2)
    # Long lines, garbage and unknown states: dropped, counted, and the
    # good line after them still counts.
    append(events, "x" * 5000, "{not json", '{"ts":1,"state":"dancing"}', "\x00\x01\x02",
           json.dumps({"ts": now_ms(), "state": "working", "detail": "d" * 201}),
           state_line("working", "after"))
    assert wait_for(lambda: (activity_of(a, uuid) or {}).get("detail") == "after", timeout=2)
    assert "dropped: a line longer than 1 KiB" in a.log()
    assert dropped_count(a) == 5
    # A symlink to a host file holding a valid line: never followed.
    secret = os.path.join(tmp_root, "host-file")
    with open(secret, "w") as f:
        f.write(state_line("waiting", "FOLLOWED") + "\n")
    os.unlink(events)
    os.symlink(secret, events)
    assert wait_for(lambda: dropped_count(a) > 5, timeout=2), a.log()
    assert activity_of(a, uuid)["detail"] == "after"
    # A FIFO in its place: refused, and the agent still answers.
    before = dropped_count(a)
    os.unlink(events)
    os.mkfifo(events)
    assert wait_for(lambda: dropped_count(a) > before, timeout=2), a.log()
    start = time.monotonic()
    a.ok("ping")
    assert time.monotonic() - start < 5
    assert activity_of(a, uuid)["detail"] == "after"
    # A hard link to a host file: refused too (two links).
    before = dropped_count(a)
    os.unlink(events)
    os.link(secret, events)
    assert wait_for(lambda: dropped_count(a) > before, timeout=2), a.log()
    assert activity_of(a, uuid)["detail"] == "after"
    assert a.proc.poll() is None


def test_spool_file_is_truncated_once_read_past_its_bound(start_agent):
    a = start_agent()
    s = running_session(a)
    uuid = s["uuid"]
    events = os.path.join(spool(a, uuid), "events")
    filler = json.dumps({"ts": now_ms(), "cost_usd": 0.5, "context_pct": 1, "model": "m"})
    with open(events, "a") as f:
        for _ in range(300 * 1024 // len(filler) + 1):
            f.write(filler + "\n")
    assert wait_for(lambda: os.path.getsize(events) == 0, timeout=5), os.path.getsize(events)
    append(events, state_line("working", "after truncation"))
    assert wait_for(lambda: (activity_of(a, uuid) or {}).get("detail") == "after truncation",
                    timeout=2)
    assert activity_of(a, uuid)["cost_usd"] == 0.5


def agent_cpu_ticks(a):
    """utime + stime of the whole agent, in clock ticks."""
    with open(f"/proc/{a.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_an_idle_running_session_costs_the_agent_no_cpu(start_agent):
    """The watcher reads the spool without writing to it: opening the events
    file for writing made each pass's close an inotify event that woke the
    next pass, and the thread spun at a core per running session."""
    a = start_agent()
    s = running_session(a)
    path = os.path.join(spool(a, s["uuid"]), "events")
    append(path, state_line("idle"))
    assert wait_for(lambda: (activity_of(a, s["uuid"]) or {}).get("state") == "idle", 15), \
        activity_of(a, s["uuid"])
    ticks = os.sysconf("SC_CLK_TCK")
    before, t0 = agent_cpu_ticks(a), time.monotonic()
    time.sleep(3)  # a window to measure over, not a wait for a condition
    used = (agent_cpu_ticks(a) - before) / ticks
    wall = time.monotonic() - t0
    # Idle, the agent wakes about once a second (capacity, heartbeat): a
    # few ms. A spinning thread shows as a large share of the window even
    # on a busy machine.
    assert used < 0.1 * wall, f"the agent used {used:.2f} s of CPU in {wall:.1f} s while idle"
