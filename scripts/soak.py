#!/usr/bin/env python3
"""make soak: one agent under steady mixed load for SOAK_MINUTES (default 30),
and whether its memory and descriptors stay flat.

Load: SOAK_RPS (default 50) RPC calls a second, a fresh channel per call on
two persistent connections as the shell makes them (ping, list, get, edit,
create, delete in a fixed mix), plus SOAK_ATTACHES_PER_MIN (default 20)
attach/detach cycles a minute through OpenSSH's client
(`-s convocate-agent-attach`, the header line, wait for the terminal's first
bytes, then close the connection).

The load first runs for a warm-up of SOAK_WARMUP_S (default 60) seconds, which
is not counted: the agent's connections, threads and caches come up in it.
Then the agent's RSS, USS (from /proc/PID/smaps_rollup) and open descriptor
count (/proc/PID/fd) are read, SOAK_MINUTES of measured load follow, and they
are read again; each reading is taken with the load paused and every attach
closed, so both see the agent at rest. A line a minute shows them under load.
RSS and the descriptor count must grow by at most 1 % (USS is shown too, not
judged: it moves when other processes that share a library page come and
go). Prints one summary line starting with "soak:" that names the warm-up
and the measured minutes; exits 1 when growth is over 1 % or the load saw
transport errors. To look for what grows,
SOAK_SMAPS_DIR=DIR keeps /proc/PID/smaps at each reading (start.smaps,
load-MM.Mmin.smaps, end.smaps) to compare mapping by mapping,
SOAK_AGENT_PREFIX puts a tool in front of the agent (e.g. "valgrind
--leak-check=full") and SOAK_AGENT_LOG=PATH keeps the agent's stderr, where
such a tool reports at exit. It stops and removes only what it
started (its agent, status-serve, ssh clients and the containers labelled with
its agent's id)."""
import itertools
import json
import os
import select
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid as uuidlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("CONVOCATE_BUILD", os.path.join(REPO, "build"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "bench"))

import clients  # noqa: E402
from lib import paramiko_rpc, procfs  # noqa: E402
from lib.pipeline_pair import PipelinePair  # noqa: E402

GROWTH_LIMIT_PCT = 1.0
# What must stay within the limit: the measures. USS is shown beside
# them but not judged: a page stops counting as shared, and so adds to USS,
# whenever another process that mapped the same library page exits.
JUDGED = ("RSS", "fds")
REST_S = 4  # quiet before a reading: two of the agent's 1 s sampler ticks, and room
# One round of the mix: reads dominate, as an operator's TUI makes them.
MIX = ["ping", "list", "get", "ping", "edit", "get", "create", "list", "ping", "delete"]
POOL_MAX = 8  # sessions the load keeps alive; delete trims the oldest


def env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"soak: {name} must be a number, got {os.environ[name]!r}")


def agent_figures(pid):
    """RSS and USS in KiB, and the open descriptor count, from /proc."""
    fields = procfs.smaps_rollup_kib(pid)
    return {"RSS": fields.get("Rss", 0),
            "USS": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def paced(gate, period, action, catch_up_s=None):
    """Calls action() every period seconds, by schedule, while the gate lets
    the worker on. Once late, the missed calls are made back to back, but
    at most catch_up_s seconds' worth (None: all of them)."""
    due = time.monotonic()
    while gate.checkpoint():
        now = time.monotonic()
        if now < due:
            time.sleep(min(due - now, 0.5))
            continue
        due += period
        if catch_up_s is not None:
            due = max(due, now - catch_up_s)
        action()


class Tally:
    """Counts per outcome, shared by the load threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.last_error = ""

    def add(self, key, error=""):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if error:
                self.last_error = error

    def reset(self):
        """Forgets the warm-up's counts: the summary covers the measured load."""
        with self.lock:
            self.counts = {}
            self.last_error = ""

    def get(self, key):
        with self.lock:
            return self.counts.get(key, 0)


class Gate:
    """Lets the main thread pause the load and know that every worker has
    finished its call in flight."""

    def __init__(self, workers):
        self.cond = threading.Condition()
        self.paused = False
        self.stopped = False
        self.idle = 0
        self.workers = workers

    def checkpoint(self):
        """Called by a worker between calls; blocks while paused. Returns
        False once the load is over."""
        with self.cond:
            if self.paused:
                self.idle += 1
                self.cond.notify_all()
                while self.paused and not self.stopped:
                    self.cond.wait()
                self.idle -= 1
            return not self.stopped

    def pause(self, timeout=120):
        with self.cond:
            self.paused = True
            deadline = time.monotonic() + timeout
            while self.idle < self.workers and time.monotonic() < deadline:
                self.cond.wait(1)
            return self.idle >= self.workers

    def resume(self):
        with self.cond:
            self.paused = False
            self.cond.notify_all()

    def stop(self):
        with self.cond:
            self.stopped = True
            self.paused = False
            self.cond.notify_all()


class RpcWorker(threading.Thread):
    """rate calls a second on one persistent connection, paced by schedule
    (a late call does not make the next ones burst)."""

    def __init__(self, agent, rate, gate, tally):
        super().__init__(daemon=True)
        self.agent, self.rate, self.gate, self.tally = agent, rate, gate, tally
        # Each worker its own sessions: two edits of one session at once
        # would be refused as locked, which is right but not this load.
        self.pool, self.pool_lock = [], threading.Lock()
        self.client = clients.connect(agent.port, agent.client_key, "claude", agent.known_hosts)

    def request(self, op):
        with self.pool_lock:
            oldest = self.pool[0] if self.pool else None
            newest = self.pool[-1] if self.pool else None
            full = len(self.pool) >= POOL_MAX
        if op == "get" and newest:
            return op, {"id": newest}
        if op == "edit" and newest:
            return op, {"id": newest, "name": "soak-" + uuidlib.uuid4().hex[:8]}
        if op == "create" and not full:
            return op, {"name": "soak-" + uuidlib.uuid4().hex[:8]}
        if op == "delete" and oldest and full:
            with self.pool_lock:
                if self.pool and self.pool[0] == oldest:
                    self.pool.pop(0)
            return op, {"id": oldest}
        return ("list", None) if op in ("create", "delete") else ("ping", None)

    def call(self, op, params):
        try:
            out = clients.call(self.client, paramiko_rpc.request_line(op, params))
            resp = json.loads(out)
        except Exception as e:  # noqa: BLE001 (every failure is counted and reported)
            self.tally.add("transport error", f"{op}: {e!r}")
            return
        if resp.get("ok"):
            self.tally.add("ok")
            if op == "create":
                with self.pool_lock:
                    self.pool.append(resp["result"]["uuid"])
        elif str(resp.get("error", "")).startswith("admission denied"):
            self.tally.add("refused by admission")
        else:
            self.tally.add("error answer", f"{op}: {resp.get('error')}")

    def run(self):
        ops = itertools.cycle(MIX)
        paced(self.gate, 1.0 / self.rate, lambda: self.call(*self.request(next(ops))),
              catch_up_s=1.0)

    def close(self):
        self.client.close()


class AttachWorker(threading.Thread):
    """per_min attach/detach cycles a minute on one session through OpenSSH."""

    def __init__(self, agent, session, per_min, gate, tally):
        super().__init__(daemon=True)
        self.agent, self.session, self.gate, self.tally = agent, session, gate, tally
        self.period = 60.0 / per_min

    def cycle(self):
        header = json.dumps({"id": self.session, "cols": 100, "rows": 30}).encode() + b"\n"
        proc = subprocess.Popen(self.agent.ssh_args("convocate-agent-attach", extra=["-T"]),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        try:
            proc.stdin.write(header)
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            first = os.read(proc.stdout.fileno(), 65536) if ready else b""
            if first and not first.startswith(b'{"ok":false'):
                self.tally.add("attach cycle")
            elif b"admission denied" in first:  # a busy machine: the session could not start
                self.tally.add("attach refused by admission")
            else:
                self.tally.add("attach failed", first[:200].decode(errors="replace"))
        finally:
            proc.stdin.close()  # detach: the client closes its connection
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()

    def run(self):
        paced(self.gate, self.period, self.cycle)


def wait_attached_zero(agent, session, timeout=30):
    """Waits until the agent counts no operator on session: every relay of
    the last cycle has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = agent.rpc("get", {"id": session})
        if s.get("ok") and s["result"].get("attached") == 0:
            return True
        time.sleep(0.5)
    return False


def keep_smaps(pid, label):
    """SOAK_SMAPS_DIR=DIR: /proc/PID/smaps is copied to DIR/LABEL.smaps, to
    compare mapping by mapping ([heap], malloc arenas, thread stacks)."""
    folder = os.environ.get("SOAK_SMAPS_DIR", "")
    if folder:
        os.makedirs(folder, exist_ok=True)
        shutil.copyfile(f"/proc/{pid}/smaps", os.path.join(folder, f"{label}.smaps"))


def at_rest(pair, gate, session, label):
    """The agent's figures with the load paused and no attach open."""
    if not gate.pause():
        print("soak: warning: a worker did not pause in time", file=sys.stderr)
    wait_attached_zero(pair.agent, session)
    # Channels closing in the agent's loops finish, and the agent's trim at
    # rest runs: its 1 s sampler trims on the second tick after the last
    # call (memory_rest.c), so 2 s could read before it on a busy machine.
    time.sleep(REST_S)
    figures = agent_figures(pair.agent.proc.pid)
    keep_smaps(pair.agent.proc.pid, label)
    return figures


def growth(start, end):
    return {k: (end[k] - start[k]) * 100.0 / start[k] if start[k] else 0.0 for k in start}


def summary(minutes, warmup, took, tally, start, end):
    g = growth(start, end)
    ok = all(g[k] <= GROWTH_LIMIT_PCT for k in JUDGED)
    calls = sum(tally.get(k) for k in ("ok", "refused by admission", "error answer",
                                       "transport error"))
    mem = ", ".join(f"{k} {start[k] / 1024:.2f} -> {end[k] / 1024:.2f} MB ({g[k]:+.2f} %)"
                    for k in ("RSS", "USS"))
    return ok, (f"soak: {minutes:g} min ({took / 60:.1f} min of measured load after a "
                f"{warmup:g} s warm-up), {calls} rpc "
                f"({calls / took:.1f}/s; {tally.get('refused by admission')} refused by admission, "
                f"{tally.get('error answer')} error answers, {tally.get('transport error')} "
                f"transport errors), {tally.get('attach cycle')} attach cycles "
                f"({tally.get('attach refused by admission')} refused by admission, "
                f"{tally.get('attach failed')} failed); {mem}; fds {start['fds']} -> "
                f"{end['fds']} ({g['fds']:+.2f} %); growth of {' and '.join(JUDGED)} "
                f"<= {GROWTH_LIMIT_PCT:g} %: {'yes' if ok else 'NO'}")


def create_attach_session(agent, timeout=300):
    """The session the attach cycles use. A machine whose CPU is full (other
    work, niced or not) makes admission refuse; that is retried for up to
    five minutes rather than ending a 30-minute run before it starts."""
    deadline = time.monotonic() + timeout
    while True:
        resp = agent.rpc("create", {"name": "soak-attach"})
        if resp.get("ok"):
            return resp["result"]["uuid"]
        busy = str(resp.get("error", "")).startswith("admission denied: cpu")
        if not busy or time.monotonic() > deadline:
            sys.exit(f"soak: cannot create the attach session: {resp.get('error')}")
        time.sleep(1)


def run_load(pair, minutes, rps, attaches_per_min):
    agent = pair.agent
    session = create_attach_session(agent)
    tally = Tally()
    gate = Gate(workers=3)
    workers = [RpcWorker(agent, rps / 2, gate, tally) for _ in range(2)]
    workers.append(AttachWorker(agent, session, attaches_per_min, gate, tally))
    for w in workers:
        w.start()
    warmup = env_float("SOAK_WARMUP_S", 60)
    print(f"soak: warming up for {warmup:.0f} s", file=sys.stderr, flush=True)
    time.sleep(warmup)
    start = at_rest(pair, gate, session, "start")
    print(f"soak: start {start}", file=sys.stderr, flush=True)
    tally.reset()
    gate.resume()
    t0, end_at = time.monotonic(), time.monotonic() + minutes * 60
    while time.monotonic() < end_at:
        time.sleep(min(60.0, max(0.0, end_at - time.monotonic())))
        now = agent_figures(agent.proc.pid)
        keep_smaps(agent.proc.pid, f"load-{(time.monotonic() - t0) / 60:04.1f}min")
        print(f"soak: {(time.monotonic() - t0) / 60:.1f} min: {now}, ok {tally.get('ok')}, "
              f"attaches {tally.get('attach cycle')}", file=sys.stderr, flush=True)
    took = time.monotonic() - t0
    end = at_rest(pair, gate, session, "end")
    gate.stop()
    for w in workers:
        w.join(timeout=30)
        if isinstance(w, RpcWorker):
            w.close()
    if tally.last_error:
        print(f"soak: last error: {tally.last_error}", file=sys.stderr)
    return tally, took, start, end


def keep_agent_log(pair):
    """SOAK_AGENT_LOG=PATH: the agent's stderr is copied there before its
    root is removed (what a SOAK_AGENT_PREFIX tool reported at exit)."""
    dest = os.environ.get("SOAK_AGENT_LOG", "")
    if dest:
        shutil.copyfile(pair.agent.log_path, dest)


def main():
    minutes = env_float("SOAK_MINUTES", 30)
    rps = env_float("SOAK_RPS", 50)
    attaches = env_float("SOAK_ATTACHES_PER_MIN", 20)
    image = os.environ.get("CONVOCATE_TEST_IMAGE", "")
    if not image:
        sys.exit("soak: set CONVOCATE_TEST_IMAGE (make soak does: scripts/build-image.sh test)")
    print(f"soak: {minutes:g} min, {rps:g} rpc/s, {attaches:g} attaches/min; load average "
          f"{os.getloadavg()[0]:.2f} at start (other work on this machine counts)",
          file=sys.stderr, flush=True)
    pair = PipelinePair(verbose=False, image=image)
    wrap = shlex.split(os.environ.get("SOAK_AGENT_PREFIX", ""))
    if wrap:  # e.g. valgrind --leak-check=full: to find what grows, not to measure
        argv = pair.agent.serve_argv
        pair.agent.serve_argv = lambda: wrap + argv()
    reader = pair.subscribe(keep=False)
    try:
        pair.agent.start()
        pair.wait_connected(reader)
        tally, took, start, end = run_load(pair, minutes, rps, attaches)
    finally:
        reader.close()
        pair.agent.stop(timeout=120)
        keep_agent_log(pair)
        pair.cleanup()
    ok, line = summary(minutes, env_float("SOAK_WARMUP_S", 60), took, tally, start, end)
    print(line, flush=True)
    return 0 if ok and tally.get("transport error") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
