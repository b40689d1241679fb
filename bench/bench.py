#!/usr/bin/env python3
"""make bench: every registered row (bench/rows_*.py), side by side with its
reference in one run, printed and written to bench/results.md.

Benchmarks report; they never pass or fail on a number. Quick by default;
BENCH_FULL=1 (or --full) runs the long versions (e.g. 60 s of sustained
load). --only NAME[,NAME] runs the rows whose names contain one of them."""
import argparse
import glob
import importlib
import os
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import clients  # noqa: E402
import reference  # noqa: E402
from lib.common import remove_tree  # noqa: E402
from lib.pipeline_pair import PipelinePair  # noqa: E402
from registry import ROWS, Skip  # noqa: E402


class Context:
    """What rows share, started on first use and stopped at the end."""

    def __init__(self, full):
        self.full = full
        self.work = tempfile.mkdtemp(prefix="cvb-")
        self.sections = {}  # title -> lines, written after the table
        self._pair = self._reader = self._ref = None
        self._clients = []
        self._closers = []  # a row's own resources, stopped at the end

    def on_close(self, fn):
        self._closers.append(fn)

    def n(self, quick, full):
        return full if self.full else quick

    def note(self, section, line):
        self.sections.setdefault(section, []).append(line)

    @property
    def pair(self):
        """An agent (--test-hooks, no -v: deployed logging) streaming to a
        status-serve, with a feed reader connected before the agent started."""
        if self._pair is None:
            self._pair = PipelinePair(agent_args=["--test-hooks"], verbose=False,
                                      image=os.environ.get("CONVOCATE_TEST_IMAGE", ""))
            self._reader = self._pair.subscribe()
            self._pair.agent.start()
            self._pair.wait_connected(self._reader)
        return self._pair

    @property
    def reader(self):
        self.pair  # noqa: B018 (starts the pair and its reader)
        return self._reader

    @property
    def agent(self):
        return self.pair.agent

    @property
    def reference(self):
        if self._ref is None:
            self._ref = reference.ReferenceSshd(self.work, self.agent.client_key + ".pub")
        return self._ref

    def ours_client(self):
        a = self.agent
        c = clients.connect(a.port, a.client_key, "claude", a.known_hosts)
        self._clients.append(c)
        return c

    def reference_client(self, user=None):
        r = self.reference
        c = clients.connect(r.port, self.agent.client_key, user or r.user, r.known_hosts)
        self._clients.append(c)
        return c

    def close(self):
        for fn in self._closers:
            fn()
        for c in self._clients:
            c.close()
        if self._reader:
            self._reader.close()
        if self._ref:
            self._ref.stop()
        if self._pair:
            self._pair.cleanup()
        remove_tree(self.work)


def load_rows():
    for path in sorted(glob.glob(os.path.join(HERE, "rows_*.py"))):
        importlib.import_module(os.path.basename(path)[:-3])
    return [(name, fn) for _, _, name, fn in sorted(ROWS)]


def run_rows(ctx, rows):
    results, skipped = [], []
    for name, fn in rows:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            out = fn(ctx)
        except Skip as e:
            skipped.append((name, str(e)))
            continue
        except Exception:  # a broken row is reported, the others still run
            skipped.append((name, "failed: " + traceback.format_exc(limit=3).strip()[-400:]))
            continue
        results += out if isinstance(out, list) else [out]
        print(f"bench: {name} done in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return results, skipped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--full", action="store_true", default=os.environ.get("BENCH_FULL") == "1")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    rows = load_rows()
    if args.only:
        wanted = args.only.split(",")
        rows = [(n, f) for n, f in rows if any(w in n for w in wanted)]
        if not rows:
            sys.exit(f"bench: no row matches --only {args.only!r}; rows: "
                     + "; ".join(n for n, _ in load_rows()))
    started = time.time()
    load = os.getloadavg()[0]
    ctx = Context(args.full)
    try:
        results, skipped = run_rows(ctx, rows)
    finally:
        ctx.close()
    import report  # noqa: E402  (late: keeps the import list above readable)
    text = report.render(results, skipped, ctx.sections, started=started, load=load,
                         full=args.full, took=time.time() - started,
                         sshd=reference.version(), nproc=nproc())
    print(text)
    with open(args.out, "w") as f:
        f.write(text)


def nproc():
    r = subprocess.run(["nproc"], capture_output=True, text=True)
    return r.stdout.strip() or str(os.cpu_count())


if __name__ == "__main__":
    main()
