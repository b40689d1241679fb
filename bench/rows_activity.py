"""Activity end to end (SPEC 16): a hook's spool line in a session of an
agent in its own network namespace (lib.netcluster, prefix 10.89.0) until
the TUI's row shows the new state. The line is written by the image's own
activity-hook, run in the session as claude with `docker exec` (as Claude
would run it); the clock starts inside the container just before the hook
(CLOCK_REALTIME in the container is the host's), and stops when tmux's
capture-pane of the TUI first shows the row's new word. A feed subscriber
on the same status-serve splits the way into hook → event on the feed and
the rest (status-serve's fan-out to the TUI, its redraw, tmux)."""
import os
import subprocess
import threading
import time

from registry import Result, Skip, dist, pct, row

from lib.common import DOCKER

NET = "10.89.0"  # this row's own /24: the integration tests use theirs
STATES = ["working", "waiting", "idle"]  # each differs from the one before
HOOK = "/usr/local/lib/convocate/activity-hook"
POLL_GAP_S = 0.002


def _netcluster():
    """lib.netcluster on this row's prefix: the environment for anything it
    starts, the module's globals for the addresses it hands out."""
    os.environ["CONVOCATE_TEST_NET"] = NET
    from lib import netcluster
    netcluster.NET, netcluster.SHELL_IP = NET, f"{NET}.1"
    return netcluster


def _admitted(c, *args, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        r = c.convocate(*args)
        if r.returncode == 0 or "admission denied: cpu" not in r.stderr \
                or time.monotonic() > deadline:
            assert r.returncode == 0, f"{args}: {r.stderr}"
            return r.stdout
        time.sleep(1)


def _word(tui, name):
    line = tui.row(name) or ""
    for w in line.split()[3:]:
        if w in STATES or w in ("shell", "exited", "unknown"):
            return w
    return ""


def _fire(container, state, detail):
    """Runs the hook in the session; returns the process, whose stdout will
    be the container's clock (ns) just before the hook and just after."""
    script = f'date +%s%N; {HOOK} "$1" "$2" </dev/null; date +%s%N'
    return subprocess.Popen([DOCKER, "exec", "-u", "claude", container, "sh", "-c", script,
                             "sh", state, detail], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _sample(tui, name, container, state, detail, reader, seen):
    """One hook → cell change, in seconds from the hook's start, when Claude
    fires it (timed from its exit instead, an event could reach the feed
    before the exit was read: the append is the hook's last act, and the
    exit's timestamp comes after the process ends): (to the cell, to the
    feed, the hook's own run)."""
    proc = _fire(container, state, detail)
    deadline = time.monotonic() + 30
    while True:
        shown = _word(tui, name) == state
        t_cell = time.time()
        if shown:
            break
        assert time.monotonic() < deadline and proc.poll() in (None, 0), \
            f"{name} never showed {state}: {tui.screen()} {proc.poll()}"
        time.sleep(POLL_GAP_S)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    before, after = (int(x) / 1e9 for x in out.split())
    hits = reader.wait_for(lambda e: e.get("type") == "session.activity"
                           and (e.get("data") or {}).get("detail") == detail, timeout=10)
    assert hits, f"no session.activity for {detail} on the feed"
    t_feed = hits[0][0] + seen["wall_offset"]
    return t_cell - before, t_feed - before, after - before


@row("hook fired → TUI cell changed", order=90)
def hook_to_tui_cell(ctx):
    image = os.environ.get("CONVOCATE_TEST_IMAGE", "")
    if not image:
        raise Skip("no session image (CONVOCATE_TEST_IMAGE)")
    if os.geteuid() != 0:
        raise Skip("network namespaces need root")
    netcluster = _netcluster()
    from lib.pipeline_pair import FeedReader
    from lib.tui import Tui
    c = netcluster.NetCluster(1, image)
    tui = reader = None
    try:
        c.start_status()
        c.agents[0].start()
        c.wait_connected()
        reader = FeedReader(c.feed)
        uuid = _admitted(c, "new", "bench-act").split()[0]
        _admitted(c, "restart", "bench-act")
        container = f"convocate-session-{uuid}"
        tui = Tui(c.shell_root, width=130, height=30,
                  env={"XDG_CONFIG_HOME": os.path.join(c.base, "config")})
        deadline = time.monotonic() + 60
        while tui.row("bench-act") is None:
            assert time.monotonic() < deadline, tui.screen()
            time.sleep(0.1)
        seen = {"wall_offset": time.time() - time.monotonic()}
        n, warmup = ctx.n(30, 100), 3
        to_cell, to_feed, hook_run = [], [], []
        for i in range(n + warmup):
            got = _sample(tui, "bench-act", container, STATES[i % 3], f"bench {i}", reader, seen)
            if i >= warmup:
                to_cell.append(got[0])
                to_feed.append(got[1])
                hook_run.append(got[2])
    finally:
        if tui:
            tui.close()
        if reader:
            reader.close()
        c.cleanup()
    ms = lambda xs: f"{pct(xs, 50) * 1000:.1f} ms"  # noqa: E731
    ctx.note("Where hook → TUI time goes",
             f"- The hook itself (bash, head, date, jq, flock; its last act is the spool "
             f"append) ran p50 {ms(hook_run)}, start to exit as `date` saw it: Claude waits "
             f"for it. Hook start → event on the feed (the hook, then the agent's inotify "
             f"watcher, the status channel over SSH across the namespace, status-serve): p50 "
             f"{ms(to_feed)}. When that is no more than the hook's run, the event was on the "
             f"feed before the hook's exit was timed: the pipeline after the append is within "
             f"the hook's own exit. Feed → TUI redraw → tmux → capture-pane (polled every "
             f"~{POLL_GAP_S * 1000:.0f} ms, plus a tmux client's start): the rest, p50 "
             f"{(pct(to_cell, 50) - pct(to_feed, 50)) * 1000:.1f} ms.")
    return [Result("hook fired → TUI cell changed", dist(to_cell), None,
                   "goal: p50 ≤ 200 ms",
                   note="agent in a network namespace; from the start of the image's "
                        "activity-hook in the session (Claude fires it; container and host share "
                        "the clock) until capture-pane first shows the row's new word; the "
                        "hook's own run is the third row"),
            Result("hook fired → session.activity on the feed", dist(to_feed), None,
                   "— (the same events, the hook's run included)",
                   note="a feed subscriber next to the TUI, on the same status-serve"),
            Result("activity-hook run (Claude waits for it)", dist(hook_run), None,
                   "— (start to exit, in the container)",
                   note="bash, head, date, jq, flock, per hook event")]
