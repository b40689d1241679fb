"""The benchmark rows and how a row reports.

A row is a function registered with @row; bench.py runs every registered row
in order and writes one line of bench/results.md per Result it returns. To
add rows (restart -> running, attach memory, fleet, ...), add a module
bench/rows_<topic>.py with functions like:

    from registry import Result, dist, row

    @row("restart -> running", order=50)
    def restart_to_running(ctx):
        ours = dist([...seconds...])           # a distribution, or value(x, unit)
        theirs = dist([...])                   # the reference, measured in the same run
        return Result("restart -> running", ours, theirs,
                      reference="docker restart (raw CLI)")

ctx (bench.Context) starts what rows share on first use (ctx.pair: agent +
status-serve + feed, ctx.reference: the OpenSSH reference) and stops it at
the end. A row that cannot run here raises Skip("why"); the table says so."""
import statistics

ROWS = []


class Skip(Exception):
    """Raised by a row that cannot run on this machine; the message says why."""


def row(name, order=100):
    """Registers a row function; lower order runs first."""
    def register(fn):
        ROWS.append((order, len(ROWS), name, fn))
        return fn
    return register


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


class Figure:
    """A distribution (p50, p99 over n samples) or a single value."""

    def __init__(self, p50, p99, n, unit):
        self.p50, self.p99, self.n, self.unit = p50, p99, n, unit


def dist(seconds, unit="ms"):
    """A latency distribution from samples in seconds, shown in ms."""
    ms = [s * 1000.0 for s in seconds]
    return Figure(pct(ms, 50), pct(ms, 99), len(ms), unit)


def value(x, unit, n=1):
    return Figure(x, None, n, unit)


class Result:
    """One line of the table: ours next to the reference (None: no reference;
    then reference says what the figure is compared with, e.g. a goal)."""

    def __init__(self, name, ours, theirs=None, reference="", note="", higher_is_better=False):
        self.name, self.ours, self.theirs = name, ours, theirs
        self.reference, self.note = reference, note
        self.higher_is_better = higher_is_better

    def ratio(self, which):
        if self.theirs is None:
            return None
        a, b = getattr(self.ours, which), getattr(self.theirs, which)
        if a is None or b is None or b == 0:
            return None
        return a / b


def median(values):
    return statistics.median(values) if values else None
