"""The TUI driven by the real Claude (SPEC 16): Claude in a session of an
agent in its own network namespace, against the model stand-in, asks
permission for a Bash tool_use (--permission-mode default); its hook's spool
line becomes the agent's session.activity, status-serve passes it on, and
the TUI in tmux shows `waiting` on that row and in its title, rings the bell
(tmux's bell flag, and one BEL in the bytes the pane wrote) with its OSC 9
notification, and W moves the selection to that row. Approving the tool in
Claude (`convocate send`) takes the row out of waiting. Nothing here is
injected: every activity the TUI shows came from Claude's hooks."""
import os
import re

import pytest

from lib.claude_session import claude_cluster, convocate_ok, new_claude_session, \
    set_credentials, wait_prompt
from lib.tui import Raw, Tui

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

OSC9 = "\x1b]9;convocate: {name} on {agent} is waiting\x07"


@pytest.fixture
def net(test_image, claude_bin):
    with claude_cluster(test_image, wait_connected=True) as c:
        yield c, claude_bin


@pytest.fixture
def tui(net, tmp_root):
    c, _ = net
    t = Tui(c.shell_root, width=130, height=30,
            env={"XDG_CONFIG_HOME": os.path.join(tmp_root, "config")})
    yield t
    t.close()


def activity_of(t, name):
    """The activity word of name's row ('' when the row is not shown)."""
    m = re.search(r"\b(idle|working|waiting|exited|shell|unknown)\b", t.row(name) or "")
    return m.group(1) if m else ""


def test_claude_asking_permission_shows_waiting_rings_and_w_selects(net, standin, tui, tmp_root):
    c, claude_bin = net
    a = c.agents[0]
    t = tui
    set_credentials(a, standin)
    convocate_ok(c, "new", "other")  # a second row, for W to move away from
    new_claude_session(c, "claude1", claude_bin)
    raw = Raw(t, os.path.join(tmp_root, "raw.out"))
    t.wait(lambda _: activity_of(t, "claude1") == "idle", 120, "claude1 idle (SessionStart)")
    wait_prompt(c, "claude1")
    t.select("other")
    assert t.bell_flag() == "0"
    assert "waiting" not in t.lines()[0]
    osc = OSC9.format(name="claude1", agent=a.agent_id).encode()
    assert osc not in raw.bytes()

    prompt = "please run [[bash: echo tui-$((6*7)) >/tmp/tui-proof]]"
    convocate_ok(c, "send", "claude1", prompt)
    standin.wait_for(lambda r: r.is_conversation() and prompt in r.text(), 60)
    t.wait(lambda _: activity_of(t, "claude1") == "waiting", 60, "claude1 waiting")
    t.wait(lambda s: "1 waiting" in s.splitlines()[0], 10, "the title's count")
    raw.wait(osc)
    # One bell for the one turn to waiting: every BEL the pane wrote, less
    # the one that ends the OSC 9 sequence.
    assert raw.bytes().replace(osc, b"").count(b"\x07") == 1, raw.bytes()[-600:]
    assert t.bell_flag() == "1"
    assert t.selected() == "other"

    t.keys("W")
    t.wait(lambda s: f"claude1 on {a.agent_id} is waiting." in s.splitlines()[-1], 10,
           "W's answer")
    assert t.selected() == "claude1"
    # What it waits for titles the preview pane, and the pane shows Claude's
    # question (the command it wants to run) by peek.
    t.keys("P")
    t.wait(lambda s: re.search(r"preview: claude1 \(waiting: .*Bash", s), 10,
           "the preview's title")
    t.wait_text("tui-$((6*7))", timeout=10)

    # Option 1 of Claude's permission dialog, "Yes": the tool runs, the turn
    # ends, and the row and the title leave waiting.
    convocate_ok(c, "send", "claude1", "1", "--no-enter")
    t.wait(lambda _: activity_of(t, "claude1") in ("working", "idle"), 60, "claude1 past waiting")
    t.wait(lambda s: "waiting" not in s.splitlines()[0], 10, "the title without a count")
    t.wait(lambda _: activity_of(t, "claude1") == "idle", 60, "claude1 idle after the reply")
    assert raw.bytes().replace(osc, b"").count(b"\x07") == 1, "a bell for leaving waiting"
