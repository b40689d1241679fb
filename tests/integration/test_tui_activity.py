"""Issue 12 in the TUI (SPEC 16) against a real agent and a real
`convocate status-serve`: session.activity events reach the TUI through the
status channel exactly as an agent sends them (OpenSSH, `-s convocate-status`,
with a key registered for that real agent), and the TUI answers with its
activity column, the waiting count, W, the bell and OSC 9 (seen in the raw
bytes the pane wrote, through tmux pipe-pane, and in tmux's bell flag), the
saved notify setting, `unknown` for a silent agent, the capacity gauges, the
preview pane by peek and the > prompt by send."""
import os
import re
import time

import pytest

from lib.shell_cli import convocate_ok as cli
from lib.tui import Raw

OSC9 = "\x1b]9;convocate: {name} on {agent} is waiting\x07"


@pytest.fixture
def rig(single, status_channel):
    """One registered agent and its status channel."""
    shell_root, a = single
    return shell_root, a, status_channel(shell_root, a)


def start_tui(root, tui_factory, tmp_root, **kw):
    """A TUI whose notify setting lives in a private XDG_CONFIG_HOME; the
    path of its tui.conf."""
    conf = os.path.join(tmp_root, "config")
    t = tui_factory(root, env={"XDG_CONFIG_HOME": conf}, **kw)
    return t, os.path.join(conf, "convocate", "tui.conf")


def uuid_of(agent, name):
    return {s["name"]: s["uuid"] for s in agent.ok("list")}[name]


def test_activity_cells_one_bell_per_turn_and_notify_setting(rig, tui_factory, tmp_root):
    """Injected events, for what Claude cannot be made to produce on cue
    (test_tui_claude.py drives the real Claude through waiting, the title
    count, the bell, OSC 9 and W): a state entered minutes ago with a given
    cost and context (the cells' format), the same waiting state repeated
    (no second bell), and two sessions turning waiting in one batch with the
    notify setting off."""
    root, a, status = rig
    cli(root, "new", "web")
    cli(root, "new", "api")
    web, api = uuid_of(a, "web"), uuid_of(a, "api")
    t, conf = start_tui(root, tui_factory, tmp_root, width=130, height=30)
    t.wait_row("web")
    t.wait_row("api")
    raw = Raw(t, os.path.join(tmp_root, "raw.out"))
    assert "ACTIVITY" in t.lines()[1] and "COST" in t.lines()[1]  # 130 columns: wide
    status.activity(api, "working", ago=12, cost=0.42, context=37)
    t.wait(lambda _: "working" in (t.row("api") or ""), 10, "api working")
    assert re.search(r"working 1\ds\s+\$0\.42\s+37%", t.row("api")), t.row("api")
    assert "waiting" not in t.lines()[0]
    t.keys("w")
    t.wait(lambda s: s.splitlines()[-1].startswith("no session is waiting"), 10, "W refusal")

    assert t.bell_flag() == "0"
    t0 = time.monotonic()
    status.activity(web, "waiting", ago=190)
    t.wait(lambda _: "waiting 3m" in (t.row("web") or ""), 10, "web waiting")
    # from the event, not a list (15 s away, and this agent's list has no activity)
    print(f"event sent to row shown: {time.monotonic() - t0:.2f}s")
    assert time.monotonic() - t0 < 5
    t.wait(lambda s: "1 waiting" in s.splitlines()[0], 5, "the title count")
    raw.wait(OSC9.format(name="web", agent=a.agent_id).encode())
    osc = OSC9.format(name="web", agent=a.agent_id).encode()
    assert raw.bytes().replace(osc, b"").count(b"\x07") == 1  # the bell, once
    assert t.bell_flag() == "1"
    # the same state again (a repeated event, a refresh) is no new transition
    status.activity(web, "waiting", ago=191)
    time.sleep(2)
    assert raw.bytes().count(osc) == 1

    # S, B: notify off, saved; a new waiting session makes no sound
    t.keys("S")
    t.wait_text("bell + notification when a session waits: on")
    t.keys("b")
    t.wait_text("bell + notification when a session waits: off")
    with open(conf) as f:
        assert f.read() == "notify=off\n"
    t.keys("Escape")
    before = len(raw.bytes())
    # both in one connection: the agent's own list (every 15 s) cannot come between
    status.send(status.activity_event(api, "waiting"), status.activity_event(web, "waiting"))
    t.wait(lambda s: "2 waiting" in s.splitlines()[0], 10, "two waiting")
    time.sleep(2)
    assert b"\x07" not in raw.bytes()[before:]
    # a new TUI reads the setting back
    t2, _ = start_tui(root, tui_factory, tmp_root, width=130, height=30)
    t2.wait_row("web")
    t2.keys("S")
    t2.wait_text("bell + notification when a session waits: off")


def test_silent_agent_makes_activity_unknown(rig, tui_factory, tmp_root):
    """Injected: an agent's own shutdown and heartbeat, which no Claude sends."""
    root, a, status = rig
    cli(root, "new", "web")
    web = uuid_of(a, "web")
    t, _ = start_tui(root, tui_factory, tmp_root, width=80, height=24)
    t.wait_row("web")
    status.activity(web, "waiting")
    t.wait(lambda _: "waiting" in (t.row("web") or ""), 10, "web waiting")
    # agent.shutdown: status-serve reports the agent silent at once (shell.agent live=false)
    status.send(status.event("agent.shutdown", {"reason": "SIGTERM"}))
    t.wait(lambda _: "unknown" in (t.row("web") or ""), 10, "web unknown")
    assert f"{a.agent_id} SILENT" in t.screen()
    assert "waiting" not in t.lines()[0]
    lines = t.lines()
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    status.send(status.event("agent.heartbeat"))
    # Live again: the row shows what is known (the event's state, or the
    # agent's own list, in which a stopped session has no activity).
    t.wait(lambda _: "unknown" not in (t.row("web") or "unknown"), 10, "web known again")
    assert f"{a.agent_id} SILENT" not in t.screen()


def test_quiet_agent_turns_unknown_after_three_heartbeats(rig, tui_factory, tmp_root):
    """Injected: an agent that goes quiet on its status channel while it
    still answers list, which a real agent does not do on cue."""
    root, a, status = rig
    cli(root, "new", "web")
    web = uuid_of(a, "web")
    t, _ = start_tui(root, tui_factory, tmp_root)
    t.wait_row("web")
    # the agent says it beats every 5 s, says what web does, then says nothing
    status.send(status.event("agent.settings", {"heartbeat_s": 5}))
    status.activity(web, "working")
    t.wait(lambda _: "working" in (t.row("web") or ""), 10, "web working")
    t0 = time.monotonic()
    t.wait(lambda _: "unknown" in (t.row("web") or ""), 40, "web unknown")
    assert time.monotonic() - t0 >= 10, "unknown before 3 heartbeats of 5 s passed"
    assert f"{a.agent_id} SILENT" in t.screen()
    assert t.row("web").split()[0] == "-"  # the agent still answers list: only the feed is quiet


def test_capacity_gauge_in_the_agents_line(rig, tui_factory, tmp_root):
    root, a, _ = rig
    t, _ = start_tui(root, tui_factory, tmp_root)
    shot = t.wait(lambda s: re.search(rf"{a.agent_id} up \[cpu \d+/\d+% mem \d+/\d+% \d+ sess\]",
                                      s), 30, "the gauge")
    cap = a.ok("ping")["capacity"]
    assert f"/{cap['threshold_pct']}%" in shot


def wait_running(t, name):
    return t.wait(lambda _: (t.row(name) or "?").split()[0] in ("R", "C"), 120, f"{name} running")


def test_preview_pane_and_send(rig, tui_factory, tmp_root):
    root, a, _ = rig
    cli(root, "new", "idle")
    cli(root, "new", "web")
    cli(root, "restart", "web")
    t, _ = start_tui(root, tui_factory, tmp_root, width=100, height=30)
    wait_running(t, "web")
    assert "preview:" not in t.screen()  # 100 columns: not by itself
    t.select("idle")
    t.keys("P")
    t.wait_text("preview: idle")
    t.wait_text("not running")
    t.select("web")
    t.wait_text("preview: web")
    # the agent's screen, or (before the agent knows peek) its error verbatim
    shot = t.wait(lambda s: "asking..." not in s, 20, "the peek's answer")
    peek = a.rpc("peek", {"id": uuid_of(a, "web")})
    if peek.get("ok") is False:
        assert peek["error"] in shot, shot
    else:  # some line of the session's screen, its escapes gone, is in the pane
        text = re.sub(r"\x1b\[[0-9;:]*m", "", peek["result"]["screen"])
        wanted = [ln.strip()[:20] for ln in text.splitlines() if len(ln.strip()) >= 4]
        t.wait(lambda s: any(w in s for w in wanted), 10, f"one of {wanted[-3:]}")
    t.keys("P")
    t.wait(lambda s: "preview:" not in s, 10, "the pane to close")

    t.keys(">")
    t.wait_text("send to web>")
    t.type("echo conv-$((6*7))")
    t.keys("Escape")
    t.wait(lambda s: "Nothing sent." in s.splitlines()[-1], 10, "Esc")
    t.keys(">")
    t.type("echo conv-$((6*7))")
    t.keys("Enter")
    pending = ("Nothing sent.", "sending to", "send to web>")  # what the line said before
    shot = t.wait(lambda s: not any(p in s.splitlines()[-1] for p in pending), 20,
                  "send's answer")
    if "Sent to web." in shot.splitlines()[-1]:
        t.keys("P")
        t.wait_text("conv-42", timeout=30)  # what was typed ran in the session
    else:  # before the agent side: its refusal, verbatim
        assert shot.splitlines()[-1].strip() == 'unknown op "send"', shot


def test_preview_opens_by_itself_when_wide(rig, tui_factory, tmp_root):
    root, a, _ = rig
    cli(root, "new", "web")
    t, _ = start_tui(root, tui_factory, tmp_root, width=170, height=40)
    t.wait_row("web")
    shot = t.wait_text("preview: web")
    assert "not running" in shot
    lines = t.lines()
    assert all(len(line) <= 170 for line in lines)
    t.tmux("resize-window", "-x", "100", "-y", "30")
    t.wait(lambda s: "preview:" not in s and len(s.splitlines()) == 30, 10, "narrower")
    t.tmux("resize-window", "-x", "80", "-y", "24")
    t.wait(lambda s: len(s.splitlines()) == 24 and "S UUID" in s, 10, "80x24")
    t.keys("P")  # below the table at 80x24
    t.wait(lambda s: "preview: web" in s and t.row("web") is not None
           and all(len(line) <= 80 for line in s.splitlines()), 10, "the pane below the table")
