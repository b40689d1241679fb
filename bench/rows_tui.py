"""The TUI at scale (issue 13): 10,000 real sessions on ten real agents
(created through their `create` RPC: metadata only, no containers), the
`convocate` TUI in a private tmux server, and

- first screen: from starting the TUI to a screen holding the 10,000 rows
  (capture-pane polling; the TUI's own "first-rows" figure in the notes);
- key -> redraw: Down pressed, one key at a time, timed by the TUI itself
  (CONVOCATE_TUI_TIMING: from the key read to the screen written), and from
  `tmux send-keys` to the highlight moving on capture-pane (which adds tmux
  and two process starts per sample).

Reference: `convocate ls`, which asks the same agents for the same rows and
prints them (no screen, no sort by the TUI): what one full list costs."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from registry import Result, Skip, dist, row

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from lib.agent import Agent, register_agent  # noqa: E402
from lib.bulk import create_many  # noqa: E402
from lib.common import SHELL_BIN, remove_tree  # noqa: E402
from lib.tui import Tui  # noqa: E402

ROWS = 10000
AGENTS = 10
REF = "convocate ls (the same 10,000 rows, printed)"


def _first_screen(root, timing):
    """Starts a TUI; returns it and the seconds until its title counts ROWS
    and the table is drawn."""
    t0 = time.monotonic()
    t = Tui(root, env={"CONVOCATE_TUI_TIMING": timing})
    want = f"{ROWS} sessions"
    deadline = t0 + 120
    while time.monotonic() < deadline:
        lines = t.lines()
        if lines and want in lines[0] and len(lines) > 3 and Tui._is_row(lines[2]):
            return t, time.monotonic() - t0
        time.sleep(0.01)
    t.close()
    raise AssertionError(f"the TUI never showed {ROWS} rows")


def _key_samples(t, n):
    """Seconds from send-keys Down to the highlight moving, n times."""
    samples = []
    for _ in range(n):
        before = t.selected()
        t0 = time.monotonic()
        t.keys("Down")
        while t.selected() == before:
            if time.monotonic() - t0 > 10:
                raise AssertionError("the selection did not move")
        samples.append(time.monotonic() - t0)
    return samples


def _timing_lines(path, kind):
    with open(path) as f:
        return [line.split() for line in f if line.startswith(kind)]


def _agents_with_sessions(work, image, ctx):
    """AGENTS real agents holding ROWS sessions between them, made through
    their create RPC, every agent at once (an agent's create checks names
    against all its sessions, so ten agents of 1,000 fill faster than one
    of 10,000)."""
    agents = []
    for i in range(AGENTS):
        agents.append(Agent(tempfile.mkdtemp(prefix="convocate-agent-", dir=work), image))
        agents[-1].start()
    per = ROWS // AGENTS
    t0 = time.monotonic()
    errors = []

    def fill(i):
        try:
            create_many(agents[i], [f"a{i}-s{k:05d}" for k in range(per)], workers=1,
                        timeout=3600)
        except Exception as e:  # reported below, with the others still running
            errors.append(e)

    threads = [threading.Thread(target=fill, args=(i,)) for i in range(AGENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    ctx.note("TUI at scale", f"- {ROWS} creates on {AGENTS} agents at once: "
                             f"{time.monotonic() - t0:.0f} s")
    return agents


@row("TUI at 10,000 rows", order=90)
def tui_at_scale(ctx):
    image = os.environ.get("CONVOCATE_TEST_IMAGE", "")
    if not shutil.which("tmux"):
        raise Skip("tmux is not installed")
    work = tempfile.mkdtemp(prefix="cvb-tui-")
    shell_root = tempfile.mkdtemp(prefix="convocate-shell-", dir=work)
    agents, t = [], None
    try:
        agents = _agents_with_sessions(work, image, ctx)
        for agent in agents:
            register_agent(shell_root, agent)
        timing = os.path.join(work, "timing.log")
        firsts = []
        for _ in range(ctx.n(3, 5)):
            t, first = _first_screen(shell_root, timing)
            firsts.append(first)
            t.close()
        t, _ = _first_screen(shell_root, timing)
        tmux_keys = _key_samples(t, ctx.n(50, 200))
        own_keys = [float(f[2]) / 1000.0 for f in _timing_lines(timing, "draw key")]
        own_first = [float(f[1]) / 1000.0 for f in _timing_lines(timing, "first-rows")]
        ls = []
        for _ in range(ctx.n(3, 5)):
            t1 = time.monotonic()
            r = subprocess.run([SHELL_BIN, "--root", shell_root, "ls"], capture_output=True,
                               timeout=120)
            ls.append(time.monotonic() - t1)
            assert r.returncode == 0 and r.stdout.count(b"\n") >= ROWS, r.stderr[-300:]
        ctx.note("TUI at scale", f"- the TUI's own first screen (start to rows drawn): "
                                 f"p50 {sorted(own_first)[len(own_first) // 2] * 1000:.0f} ms")
        ctx.note("TUI at scale", "- key -> redraw by the TUI's timing: the key read to the "
                                 "screen written; by tmux: send-keys to capture-pane seeing it")
        return [
            Result("TUI key -> redraw, own timing (10,000 rows)", dist(own_keys), None,
                   "goal ≤ 50 ms", note="Down, one row"),
            Result("TUI key -> redraw, through tmux (10,000 rows)", dist(tmux_keys), None,
                   "goal ≤ 50 ms", note="send-keys to capture-pane"),
            Result("TUI first screen (10,000 rows)", dist(firsts), dist(ls), REF,
                   note="goal ≤ 1 s"),
        ]
    finally:
        if t:
            t.close()
        for agent in agents:
            agent.cleanup()
        remove_tree(work)
