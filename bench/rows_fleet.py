"""The fleet row: BENCH_FLEET_AGENTS agents (default 100), each with
BENCH_FLEET_SESSIONS sessions (default 100), one shell (fleet.py builds
it). Runs only with BENCH_FLEET=1:

    BENCH_FLEET=1 bash bench/run.sh build --only fleet

Figures: `convocate ls --json` next to an operator's OpenSSH loop over the
agents; status-serve holding every agent's connection (heartbeats every
5 s), its RSS and CPU; the TUI's first full screen, a key press -> redraw
with every row loaded, and an `edit` on an agent -> the TUI row showing the
new name."""
import json
import os
import random
import resource
import subprocess
import time

os.environ.setdefault("CONVOCATE_TEST_NET", "10.82.0")  # never the tests' 10.77.0

from fleet import AGENT_PORT, Fleet, read  # noqa: E402
from lib.common import SHELL_BIN  # noqa: E402
from lib.feed_lines import FeedLines  # noqa: E402
from lib.tui import Tui  # noqa: E402
from registry import Result, Skip, dist, median, row, value  # noqa: E402

HEARTBEAT_S = 5
TUI_COLS, TUI_ROWS = 120, 110  # the table holds the newest session of 100 agents


def _size():
    return (int(os.environ.get("BENCH_FLEET_AGENTS", "100")),
            int(os.environ.get("BENCH_FLEET_SESSIONS", "100")))


@row("fleet: agents x sessions", order=200)
def fleet(ctx):
    if os.environ.get("BENCH_FLEET") != "1":
        raise Skip("the fleet runs only with BENCH_FLEET=1 (size: BENCH_FLEET_AGENTS x "
                   "BENCH_FLEET_SESSIONS, default 100 x 100; several minutes)")
    n_agents, per_agent = _size()
    image = os.environ.get("CONVOCATE_TEST_IMAGE", "")
    with Fleet(n_agents, per_agent, image=image, heartbeat_s=HEARTBEAT_S) as f:
        f.setup()
        size = f"{n_agents} × {per_agent}"
        ctx.note("Fleet", f"{size} ({f.total_sessions():,} sessions) on {f.net}.0/24: paired in "
                 f"{f.timings['pair']:.0f} s, agents up and connected in "
                 f"{f.timings['start']:.1f} s, sessions created through `create` in "
                 f"{f.timings['create']:.0f} s ({f.refusals} CPU admission refusals retried)")
        results = status_serve_figures(ctx, f)
        results += ls_figures(ctx, f)
        results += tui_figures(ctx, f)
    left = f.leftovers()  # namespaces, links, processes, tmux servers, the temp dir
    ctx.note("Fleet", "after clean-up (`ip netns list`, `ip -o link`, PIDs, tmux, temp dir): " +
             (", ".join(left) if left else "nothing of the fleet left"))
    return results


# ---- status-serve ---------------------------------------------------------


def _established(port):
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


def _proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid):
    for line in read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def feed_events(feed, seconds):
    """status-serve's feed for seconds: the greeting, then events as they
    come; ends early when the feed closes."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            line = feed.line(max(0.0, deadline - time.monotonic()))
        except EOFError:
            return
        if line is None:
            return
        yield json.loads(line)


def status_serve_figures(ctx, f):
    """Over a window of heartbeats: the connections status-serve holds, the
    agents its feed says are live, the heartbeats that reached the feed,
    and status-serve's CPU and RSS."""
    window = ctx.n(3, 6) * HEARTBEAT_S
    feed = FeedLines(f.feed)
    pid = f.status_proc.pid
    try:
        live, beats, beating = set(), 0, set()
        cpu0, t0 = _proc_cpu_s(pid), time.monotonic()
        for ev in feed_events(feed, window):
            if ev.get("type") == "shell.agent" and ev["data"].get("live"):
                live.add(ev["agent_id"])
            elif ev.get("type") == "agent.heartbeat":
                beats += 1
                beating.add(ev["agent_id"])
        cpu = (_proc_cpu_s(pid) - cpu0) / (time.monotonic() - t0)
    finally:
        feed.close()
    held = _established(f.status_port)
    rss = _rss_kib(pid)
    agent_rss = sorted(_rss_kib(a.proc.pid) for a in f.agents)
    n = len(f.agents)
    ctx.note("Fleet", f"status-serve: {held} agent connections held; feed greeting: {len(live)} "
             f"of {n} agents live; {beats} heartbeats from {len(beating)} agents in {window} s "
             f"(expected ≈ {n * window // HEARTBEAT_S}); RSS {rss / 1024:.1f} MiB, CPU "
             f"{cpu * 100:.2f}% of a core. Agents: RSS median {agent_rss[n // 2] / 1024:.1f} MiB, "
             f"total {sum(agent_rss) / 1024:.0f} MiB")
    return [Result("fleet: agent connections held by status-serve", value(held, "conns"), None,
                   f"goal: {n} (heartbeat every {HEARTBEAT_S} s)",
                   note=f"{len(beating)} agents' heartbeats reached the feed in {window} s; "
                        f"status-serve RSS {rss / 1024:.1f} MiB, CPU {cpu * 100:.2f}% of a core",
                   higher_is_better=True)]


# ---- convocate ls --------------------------------------------------------


def _ssh_argv(f, a):
    return ["ssh", "-p", str(AGENT_PORT), "-i", a.key, "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={f.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
            f"claude@{a.ip}", "-s", "convocate-agent-rpc"]


LIST = json.dumps({"op": "list", "params": None}).encode() + b"\n"


def _openssh_sequential(f):
    """What an operator would script: one `ssh -s` list per agent, in turn."""
    got = 0
    for a in f.agents:
        r = subprocess.run(_ssh_argv(f, a), input=LIST, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        got += len(json.loads(r.stdout)["result"])
    return got


def _openssh_parallel(f):
    """The same calls all started at once (xargs -P): the best a script gets."""
    procs = [subprocess.Popen(_ssh_argv(f, a), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL) for a in f.agents]
    got = 0
    for p in procs:
        out, _ = p.communicate(LIST, timeout=60)
        got += len(json.loads(out)["result"])
    return got


class _Masters:
    """An OpenSSH ControlMaster held to every agent: the reference for the
    ls service, which holds a connection to every agent too."""

    def __init__(self, f):
        self.f = f
        self.ctl = {a.ip: os.path.join(f.base, f"mux-{i}") for i, a in enumerate(f.agents)}
        self.masters = []
        for a in f.agents:
            self.masters.append(subprocess.Popen(
                self._argv(a) + ["-M", "-N"], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while not all(os.path.exists(c) for c in self.ctl.values()):
            assert time.monotonic() < deadline, "the ControlMasters did not come up in 60 s"
            time.sleep(0.05)

    def _argv(self, a):
        argv = _ssh_argv(self.f, a)
        return argv[:-3] + ["-S", self.ctl[a.ip], argv[-3]]  # before "-s convocate-agent-rpc"

    def list_all(self):
        """Every agent's list through its master, all started at once."""
        procs = [subprocess.Popen(self._argv(a) + ["-s", "convocate-agent-rpc"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL) for a in self.f.agents]
        got = 0
        for p in procs:
            out, _ = p.communicate(LIST, timeout=60)
            got += len(json.loads(out)["result"])
        return got

    def close(self):
        for m in self.masters:
            m.terminate()
        for m in self.masters:
            try:
                m.wait(timeout=10)
            except subprocess.TimeoutExpired:
                m.kill()
                m.wait()


def _timing_path(f):
    return os.path.join(f.base, "ls-timing.log")


def _ls(f, direct=False):
    env = {"CONVOCATE_LS_TIMING": _timing_path(f)}
    if direct:
        env["CONVOCATE_LS_DIRECT"] = "1"
    r = f.convocate("ls", "--json", env_extra=env)
    assert r.returncode == 0, r.stderr
    return len(json.loads(r.stdout))


def _ls_phases(f, via, runs):
    """Median of the CLI's own phases over its last runs by one path
    (CONVOCATE_LS_TIMING: ms since the command began, and its CPU)."""
    lines = [ln.split() for ln in read(_timing_path(f)).splitlines()
             if ln.startswith("ls ") and ln.split()[-1] == via][-runs:]
    if not lines:
        return "no phase timings"
    def med(key):
        return median([float(ln[ln.index(key) + 1]) for ln in lines])
    if via == "status-serve":
        return (f"the CLI's own figures (median of {len(lines)}): the list printed "
                f"{med('printed'):.0f} ms after it began; CPU {med('cpu'):.0f} ms")
    return (f"the CLI's own phases (median of {len(lines)}, ms since it began): every answer in "
            f"and prepared {med('answers'):.0f}, merged and sorted {med('merged'):.0f}, printed "
            f"{med('printed'):.0f}, freed {med('freed'):.0f}; CPU {med('cpu'):.0f} ms")


def _timed(fn, want):
    t0 = time.perf_counter()
    got = fn()
    took = time.perf_counter() - t0
    assert got == want, f"{got} sessions listed, {want} created"
    return took


def _agents_cpu_s(f):
    return sum(_proc_cpu_s(a.proc.pid) for a in f.agents)


def _children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class _CpuMeter:
    """CPU seconds a call cost: the CLI (a child of ours), status-serve and
    every agent (their background, heartbeats, included)."""

    def __init__(self, f):
        self.f, self.cli, self.status, self.agents = f, [], [], []

    def timed(self, fn, want):
        c0, s0, a0 = _children_cpu_s(), _proc_cpu_s(self.f.status_proc.pid), _agents_cpu_s(self.f)
        took = _timed(fn, want)
        self.cli.append(_children_cpu_s() - c0)
        self.status.append(_proc_cpu_s(self.f.status_proc.pid) - s0)
        self.agents.append(_agents_cpu_s(self.f) - a0)
        return took

    def text(self):
        ms = lambda xs: median(xs) * 1000  # noqa: E731
        return (f"CPU per ls (median): the CLI {ms(self.cli):.0f} ms, status-serve "
                f"{ms(self.status):.0f} ms, all agents together {ms(self.agents):.0f} ms, on "
                f"this machine's {os.cpu_count()} cores")


def ls_figures(ctx, f):
    """ls --json through status-serve's ls service next to OpenSSH
    ControlMasters held to every agent (both keep their connections), and
    the CLI dialling every agent itself next to an operator's OpenSSH loop
    (neither keeps any); interleaved."""
    n, every = ctx.n(20, 50), 4  # a reference round after every 4 ls runs
    want = f.total_sessions()
    masters = _Masters(f)
    try:
        _ls(f), _ls(f, direct=True), masters.list_all()  # warm-up: connections, page cache
        served, direct, mux, seq, par = [], [], [], [], []
        served_cpu, direct_cpu = _CpuMeter(f), _CpuMeter(f)
        for i in range(n):
            served.append(served_cpu.timed(lambda: _ls(f), want))
            mux.append(_timed(masters.list_all, want))
            direct.append(direct_cpu.timed(lambda: _ls(f, direct=True), want))
            if i % every == 0:
                seq.append(_timed(lambda: _openssh_sequential(f), want))
                par.append(_timed(lambda: _openssh_parallel(f), want))
    finally:
        masters.close()
    p50 = sorted(par)[len(par) // 2] * 1000
    agents, size = len(f.agents), f"{len(f.agents)} agents, {want:,} sessions"
    return [Result(f"fleet: `convocate ls --json`, {size}", dist(served), dist(mux),
                   f"OpenSSH: a ControlMaster held to each agent, {agents} `ssh -s` lists at once",
                   note=f"goal p50 ≤ 300 ms. Ours: the CLI asks status-serve's ls service, which "
                        f"lists every agent over the connection it keeps, merges, sorts and "
                        f"renders {want:,} objects. {served_cpu.text()}; "
                        f"{_ls_phases(f, 'status-serve', n)}"),
            Result(f"fleet: `convocate ls --json` dialling every agent itself, {size}",
                   dist(direct), dist(seq),
                   "OpenSSH: one `ssh -s convocate-agent-rpc` list per agent, in turn",
                   note=f"CONVOCATE_LS_DIRECT=1 (no status-serve, or a host without it). The same "
                        f"OpenSSH calls started all at once (xargs -P): p50 {p50:.0f} ms over "
                        f"{len(par)}. {direct_cpu.text()}; {_ls_phases(f, 'agents', n)}")]


# ---- the TUI ------------------------------------------------------------


class FleetTui(Tui):
    """lib.tui's Tui with its names cache under the fleet's temp dir, a
    size of our own, and its tmux server recorded for the fleet's cleanup."""

    def __init__(self, f):  # noqa: super().__init__ would start another TUI
        self.socket = f"cvf-tui-{os.getpid()}-{len(f.tuis)}"
        f.tuis.append(self.socket)
        self.tmux("new-session", "-d", "-x", str(TUI_COLS), "-y", str(TUI_ROWS),
                  "-e", "LANG=C.UTF-8", "-e", f"XDG_CACHE_HOME={f.base}/cache",
                  SHELL_BIN, "--root", f.shell_root)

    def row_count(self):
        return sum(1 for line in self.lines()[2:-3] if self._is_row(line))


def _poll(fn, timeout, what, detail=None):
    """fn()'s first true value, polled as fast as tmux answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
    # The runner keeps a failure's last lines: what was seen, then what was not.
    seen = f"{detail()[-300:]}\n" if detail else ""
    raise AssertionError(f"{seen}no {what} within {timeout} s")


def _first_screen(f):
    """Seconds from starting the TUI to a screen whose title counts every
    session on every agent and whose table shows rows."""
    want = f"{f.total_sessions()} sessions on {len(f.agents)} agents"
    t0 = time.perf_counter()
    tui = FleetTui(f)
    _poll(lambda: want in tui.screen() and tui.row_count() > 0, 60, f"screen with {want!r}",
          tui.screen)
    return time.perf_counter() - t0, tui


def _key_redraw(tui, key):
    before = tui.selected()
    t0 = time.perf_counter()
    tui.keys(key)
    _poll(lambda: (tui.selected() or before) != before, 10, "moved selection", tui.screen)
    return time.perf_counter() - t0


def _capture_floor(tui):
    """The measuring loop's own cost: one send-keys of a key the TUI ignores
    and one capture-pane -e (what every poll of _key_redraw does)."""
    t0 = time.perf_counter()
    tui.keys("F12")
    tui.selected()
    return time.perf_counter() - t0


def _newest(f):
    """(agent, uuid) of each agent's newest session: the set-up's last
    round, all of them in the top rows of the TUI's table."""
    return [(a, max(a.sessions, key=lambda u: a.sessions[u][1])) for a in f.agents]


def _rename_shows(f, tui, a, uuid, new):
    """Seconds from the edit's request to the TUI row showing the new name,
    and the edit's own response time."""
    client = f.connect(a)
    try:
        t0 = time.perf_counter()
        f.admitted(client, "edit", {"id": uuid, "name": new})
        answered = time.perf_counter() - t0
        _poll(lambda: tui.row(new), 30, f"row {new}", tui.screen)
        shown = time.perf_counter() - t0
    finally:
        client.close()
    a.sessions[uuid] = (new, a.sessions[uuid][1])
    return shown, answered


def tui_figures(ctx, f):
    starts = []
    tuis = []
    try:
        for _ in range(ctx.n(3, 5)):
            took, tui = _first_screen(f)
            starts.append(took)
            tuis.append(tui)
            if len(tuis) > 1:
                tuis.pop(0).close()
        tui = tuis[-1]
        keys, floor = [], []
        for i in range(ctx.n(30, 100)):  # Down and Up in turn: the selection always moves
            keys.append(_key_redraw(tui, "Up" if i % 2 else "Down"))
            floor.append(_capture_floor(tui))
        shown, answered = [], []
        newest = _newest(f)
        for k in range(ctx.n(10, 20)):
            a, uuid = random.choice(newest)
            s, r = _rename_shows(f, tui, a, uuid, f"ev{k}-{random.randrange(1 << 30):x}")
            shown.append(s)
            answered.append(r)
    finally:
        for t in tuis:
            t.close()
    rows = f.total_sessions()
    return [
        Result(f"fleet: TUI start → first full screen ({rows:,} rows)", dist(starts), None,
               "goal: ≤ 1 s",
               note="from `tmux new-session` to a capture-pane whose title counts every session "
                    "on every agent and whose table shows rows (capture-pane polling)"),
        Result(f"fleet: TUI key press → redraw ({rows:,} rows)", dist(keys), dist(floor),
               "the measuring loop alone (send-keys of an ignored key + one capture-pane -e)",
               note="goal ≤ 50 ms; Down or Up, until capture-pane shows the highlight moved"),
        Result("fleet: edit on an agent → TUI row renamed", dist(shown), dist(answered),
               "the edit's own RPC response (paramiko)",
               note="goal ≤ 200 ms; a random agent's session in the top rows, renamed; the event "
                    "goes agent → status-serve → feed → TUI, which lists that agent again"),
    ]
