"""The TUI on a shell whose two agents are hosts of their own (network
namespaces, paired by convocate-host, status events flowing to status-serve):
live updates come from the status feed rather than the 15 s refresh, a cut
link marks only that agent, and an attached operator's window size reaches
the session."""
import os
import re
import time

import pytest

from lib.agent_helpers import pane_columns
from lib.shell_cli import SESSION_PROMPT
from lib.tui import until_admitted
from lib.wait import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def test_cli_session_shows_up_within_two_seconds(net, tui_factory):
    a, b = net.agents
    t = tui_factory(net.shell_root)
    # Both up: the first full refresh is over (each agent has been listed once)
    # and the TUI subscribed to the feed before it drew its first screen, so
    # what follows comes from the feed.
    t.wait_text(f"{a.agent_id} up")
    t.wait_text(f"{b.agent_id} up")
    for agent, name in ((a, "feed-a"), (b, "feed-b")):
        net.convocate_ok("new", name, "--agent", agent.agent_id)
        t0 = time.monotonic()
        line = t.wait_row(name, "-", timeout=10)
        assert time.monotonic() - t0 <= 2.0, "the row came from the 15 s tick, not the feed"
        assert agent.agent_id in line


def test_cut_link_marks_only_that_agent(net, tui_factory):
    a, b = net.agents
    net.convocate_ok("new", "stays", "--agent", a.agent_id)
    net.convocate_ok("new", "cut-off", "--agent", b.agent_id)
    b.rpc("settings-set", {"heartbeat_s": 5})
    t = tui_factory(net.shell_root)
    t.wait_row("stays", "-")
    t.wait_row("cut-off", "-")
    b.link(False)
    try:
        t.wait(lambda s: re.search(rf"{b.agent_id} (SILENT|UNREACHABLE|NOT ANSWERING)", s),
               60, "b marked as down")
        assert f"{a.agent_id} up" in t.screen()
        # a's session still answers: restart it from the TUI
        t.select("stays")
        t.keys("r")
        t.wait(lambda s: "Restart" in s.splitlines()[-1], what="the restart question")
        until_admitted(t, lambda: t.keys("y"), lambda _: (t.row("stays") or "?").split()[0] == "R",
                       "stays running")
    finally:
        b.link(True)
    t.wait_text(f"{b.agent_id} up", timeout=90)


def tput_cols(t, home):
    """Asks the session's shell for its width; the answer comes back through
    a file in the session's home (the screen would still show older ones)."""
    answer = os.path.join(home, "cols.txt")
    if os.path.exists(answer):
        os.unlink(answer)
    t.type("tput cols > cols.txt.tmp && mv cols.txt.tmp cols.txt")
    t.keys("Enter")
    wait_until(lambda: os.path.exists(answer), 30, "an answer from tput", interval=0.2,
               detail=t.screen)
    with open(answer) as f:
        return int(f.read())


def test_attached_window_size_follows_the_terminal_and_a_second_tui_sees_c(net, tui_factory):
    a, _ = net.agents
    uuid = net.convocate_ok("new", "sized", "--agent", a.agent_id).stdout.split()[0]
    home = os.path.join(a.root, "home/claude", uuid)
    t = tui_factory(net.shell_root, width=100, height=30)
    t.wait_row("sized", "-")
    t.select("sized")
    until_admitted(t, lambda: t.keys("Enter"), lambda s: "[claude]" in s, "attach", timeout=180)
    # The shell inside has drawn its prompt, and its pane has taken the
    # attached terminal's size (`docker exec -it` sizes the exec's terminal
    # only once it runs: it starts at 80 columns).
    t.wait(lambda s: re.search(SESSION_PROMPT, s), 60, "the session's shell prompt")
    wait_until(lambda: pane_columns(uuid) == 100, 30, "the session's pane to be 100 wide",
               detail=lambda: f"{pane_columns(uuid)} columns")
    assert tput_cols(t, home) == 100
    t.tmux("resize-window", "-x", "132", "-y", "40")
    wait_until(lambda: pane_columns(uuid) == 132, 30, "the resize to reach the session's pane",
               detail=lambda: f"{pane_columns(uuid)} columns")
    assert tput_cols(t, home) == 132
    other = tui_factory(net.shell_root)
    other.wait_row("sized", "C", timeout=30)
    t.keys("C-b")
    t.keys("d")
    t.wait_text("LAST ACCESSED")
    other.wait_row("sized", "R", timeout=30)
