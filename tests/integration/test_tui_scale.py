"""The TUI with many sessions (issue 13): the `/` filter (by name, agent and
state word; Enter keeps it, Esc clears it; the selection stays on its
session), paging (PgUp/PgDn/Home/End), partial redraw (the bytes the TUI
writes to its terminal, seen through tmux pipe-pane, for one row's change
and one key against a whole repaint) and a few thousand real sessions on a
real agent, created through its `create` RPC."""
import os
import re
import threading
import time

import pytest

from lib.agent import register_agent
from lib.bulk import create_many
from lib.tui import Raw, Tui
from lib.wait import wait_until

HEIGHT = 30
TABLE_ROWS = HEIGHT - 5  # title, column names; agents line, key menu, status line


@pytest.fixture
def rig(two_agents, status_channel):
    """One agent with a status channel (for activity events) and a second
    one without, both registered with the shell."""
    shell_root, a, b = two_agents
    return shell_root, a, b, status_channel(shell_root, a)


def shown_names(t):
    return [line.split()[2] for line in t.lines()[2:-3] if Tui._is_row(line)]


def tui_order(agent_lists):
    """The TUI's order: last accessed, newest first, then by name."""
    rows = [s for lst in agent_lists for s in lst]
    rows.sort(key=lambda s: s["name"])
    rows.sort(key=lambda s: s["last_accessed"], reverse=True)
    return [s["name"] for s in rows]


def filter_to(t, text):
    """Opens the prompt, types text; the title says the filter as typed."""
    t.type("/")
    t.wait(lambda s: s.splitlines()[-1].startswith("/"), 10, "the filter prompt")
    t.type(text)
    t.wait(lambda s: f"filter: {text} " in s.splitlines()[0], 10, f"the filter {text!r}")


def wait_selected(t, name):
    wait_until(lambda: t.selected() == name, 10, f"the selection on {name}", interval=0.05,
               detail=lambda: f"screen:\n{t.screen()}")


def test_filter_narrows_by_name_agent_and_state_and_clears(rig, tui_factory):
    root, a, b, status = rig
    uuids = create_many(a, ["web-1", "web-2", "db"], workers=1)
    create_many(b, ["api"], workers=1)
    t = tui_factory(root)
    for name in ("web-1", "web-2", "db", "api"):
        t.wait_row(name)
    t.select("web-2")

    filter_to(t, "WEB")  # case-insensitive, narrowing as typed
    t.wait(lambda _: sorted(shown_names(t)) == ["web-1", "web-2"], 10, "web rows only")
    assert "filter: WEB  2/4" in t.lines()[0]
    wait_selected(t, "web-2")  # still on its session
    t.keys("Enter")
    t.wait(lambda s: "2 of 4 sessions match" in s.splitlines()[-1], 10, "filter kept")
    assert sorted(shown_names(t)) == ["web-1", "web-2"]
    assert "filter: WEB  2/4" in t.lines()[0]

    t.type("/")  # the prompt edits the filter kept
    t.wait(lambda s: s.splitlines()[-1].startswith("/WEB"), 10, "the prompt with WEB")
    t.keys("Escape")
    t.wait(lambda _: len(shown_names(t)) == 4, 10, "every row again")
    assert "filter:" not in t.lines()[0]
    wait_selected(t, "web-2")

    filter_to(t, b.agent_id)  # by agent id
    t.wait(lambda _: shown_names(t) == ["api"], 10, "agent b's row only")
    wait_selected(t, "api")  # web-2 is hidden: the selection is on what is shown
    t.keys("Escape")
    t.wait(lambda _: len(shown_names(t)) == 4, 10, "every row again")

    # by state word: the activity an event reports, and the session state
    # (a heartbeat first: this stand-in agent sends none of its own, and a
    # silent agent's activity is "unknown")
    status.send(status.event("agent.heartbeat"))
    status.activity(uuids["db"], "waiting")
    t.wait(lambda _: "waiting" in (t.row("db") or ""), 10, "db waiting")
    filter_to(t, "waiting")
    t.wait(lambda _: shown_names(t) == ["db"], 10, "the waiting row only")
    status.activity(uuids["web-1"], "waiting")  # an event brings a row into the filter
    t.wait(lambda _: sorted(shown_names(t)) == ["db", "web-1"], 10, "web-1 joins")
    assert "filter: waiting  2/4" in t.lines()[0]
    status.activity(uuids["db"], "working")  # and takes one out of it
    t.wait(lambda _: shown_names(t) == ["web-1"], 10, "db leaves")
    for _ in "waiting":
        t.keys("BSpace")
    t.wait(lambda _: len(shown_names(t)) == 4, 10, "the prompt emptied: every row")
    t.type("stopped")  # no session has a container: all stopped
    t.wait(lambda s: "filter: stopped  4/4" in s.splitlines()[0], 10, "every stopped row")
    t.type("x")
    t.wait(lambda s: "No session matches the filter" in s, 10, "the empty-filter hint")
    t.keys("Escape")
    t.wait(lambda _: len(shown_names(t)) == 4, 10, "every row again")


def test_page_keys_home_and_end(single, tui_factory):
    root, a = single
    create_many(a, [f"s{i:03d}" for i in range(70)])
    order = tui_order([a.ok("list")])
    t = tui_factory(root, height=HEIGHT)
    t.wait(lambda s: "70 sessions" in s.splitlines()[0], 30, "70 sessions")
    t.keys("Home")
    wait_selected(t, order[0])
    assert shown_names(t) == order[:TABLE_ROWS]
    page = TABLE_ROWS - 1
    t.keys("NPage")  # to the bottom row of this screen: nothing scrolls
    wait_selected(t, order[page])
    assert shown_names(t) == order[:TABLE_ROWS]
    t.keys("NPage")  # a screen further: the list scrolls, the selection at its bottom
    wait_selected(t, order[2 * page])
    assert shown_names(t)[-1] == order[2 * page]
    t.keys("End")
    wait_selected(t, order[-1])
    assert shown_names(t) == order[-TABLE_ROWS:]
    t.keys("PPage")
    wait_selected(t, order[-1 - page])
    t.keys("NPage")
    t.keys("NPage")  # past the end stays on the last row
    wait_selected(t, order[-1])
    t.keys("PPage")
    t.keys("PPage")
    t.keys("PPage")
    t.keys("PPage")  # past the start stays on the first
    wait_selected(t, order[0])
    assert shown_names(t) == order[:TABLE_ROWS]
    t.keys("End")
    t.keys("Home")
    wait_selected(t, order[0])


class Output:
    """The bytes the TUI writes from now on, and once they have settled."""

    def __init__(self, raw):
        self.raw = raw
        self.start = len(raw.bytes())

    def settled(self, needle=None, timeout=10):
        """The bytes written since start, once needle is among them and two
        reads 0.3 s apart agree (curses has finished that refresh)."""
        last = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.raw.bytes()[self.start:]
            if (needle is None or needle in now) and now == last:
                return now
            last = now
            time.sleep(0.3)
        raise AssertionError(f"output never settled on {needle!r}: {self.raw.bytes()[-300:]!r}")


def test_one_change_writes_a_few_bytes_not_the_screen(rig, tui_factory, tmp_root):
    root, a, _, status = rig
    uuids = create_many(a, [f"row{i:02d}" for i in range(40)])
    t = tui_factory(root, height=HEIGHT)
    t.wait(lambda s: "40 sessions" in s.splitlines()[0], 30, "40 sessions")
    t.wait(lambda _: len(shown_names(t)) == TABLE_ROWS, 10, "a full table")
    raw = Raw(t, os.path.join(tmp_root, "raw.out"))

    whole = Output(raw)
    t.keys("C-l")  # Ctrl-L: a whole repaint, as a full redraw would send
    full = whole.settled(b"LAST ACCESSED")

    target = shown_names(t)[5]
    event = Output(raw)
    status.activity(uuids[target], "working")
    t.wait(lambda _: "working" in (t.row(target) or ""), 10, f"{target} working")
    one_row = event.settled(b"working")

    key = Output(raw)
    before = t.selected()
    t.keys("Down")
    wait_until(lambda: t.selected() not in (None, before), 10, "the selection to move",
               interval=0.05)
    one_key = key.settled()

    print(f"bytes: full repaint {len(full)}, one row's event {len(one_row)}, "
          f"one Down key {len(one_key)}")
    assert len(full) > 2000, full[:200]  # 25 rows of text at least
    # One row's activity cell (and the clock) change, not the table.
    assert len(one_row) < len(full) / 8, one_row
    assert len(one_row) < 400, one_row
    assert not any(re.fullmatch(r"row\d\d", n) and n.encode() in one_row
                   for n in shown_names(t)), one_row  # no row's name written again
    # Two rows change their highlight; the rest stays.
    assert len(one_key) < len(full) / 4, one_key


def test_thousands_of_rows_stay_usable(rig, start_agent, tui_factory, tmp_root):
    root, a, b, status = rig
    more = [start_agent(), start_agent()]
    for agent in more:
        register_agent(root, agent)
    n, per = 2000, 500  # four agents of 500 fill faster than one of 2,000
    uuids, errors = {}, []

    def fill(i, agent):
        try:
            uuids.update(create_many(agent, [f"bulk{i * per + k:04d}" for k in range(per)],
                                     workers=1, timeout=1200))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    t0 = time.monotonic()
    threads = [threading.Thread(target=fill, args=(i, agent))
               for i, agent in enumerate([a, b, *more])]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    a_names = {f"bulk{k:04d}" for k in range(per)}  # the agent with the status channel
    print(f"{n} creates in {time.monotonic() - t0:.1f}s")
    timing = os.path.join(tmp_root, "timing.log")
    t = tui_factory(root, height=HEIGHT, env={"CONVOCATE_TUI_TIMING": timing})
    t.wait(lambda s: f"{n} sessions" in s.splitlines()[0], 120, f"{n} sessions")
    t.keys("End")
    order = tui_order([x.ok("list") for x in (a, b, *more)])
    wait_selected(t, order[-1])
    t.keys("Home")
    wait_selected(t, order[0])
    for _ in range(5):
        t.keys("NPage")
    wait_selected(t, order[5 * (TABLE_ROWS - 1)])

    # an event for a row far off screen is applied and found by the filter
    far = next(x for x in order[n // 2:] if x in a_names)
    status.send(status.event("agent.heartbeat"))
    status.activity(uuids[far], "waiting")
    t.wait(lambda s: "1 waiting" in s.splitlines()[0], 10, "the waiting count")
    filter_to(t, "waiting")
    t.wait(lambda _: shown_names(t) == [far], 10, f"{far} alone")
    assert "filter: waiting  1/2,000" in t.lines()[0]
    t.keys("Escape")
    filter_to(t, "bulk19")
    t.wait(lambda _: len(shown_names(t)) == min(100, TABLE_ROWS), 10, "bulk19xx rows")
    assert "filter: bulk19  100/2,000" in t.lines()[0]
    t.keys("Enter")
    t.keys("End")
    wait_selected(t, [x for x in order if x.startswith("bulk19")][-1])
    with open(timing) as f:
        lines = f.read().splitlines()
    keys = [float(line.split()[2]) for line in lines if line.startswith("draw key")]
    first = [line for line in lines if line.startswith("first-rows")]
    assert keys and first, lines[:5]
    keys.sort()
    print(f"{n} rows: key -> redraw p50 {keys[len(keys) // 2]:.2f} ms, max {keys[-1]:.2f} ms; "
          f"{first[0]}")
