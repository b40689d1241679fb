"""bench/results.md: one table, every row side by side with its reference
from the same run, then the notes rows left (where the time goes)."""
import time


def fmt(x, unit=""):
    if x is None:
        return "—"
    if unit in ("events/s",):
        return f"{x:,.0f}"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 100):
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}"


def ratio(r, which):
    v = r.ratio(which)
    if v is None:
        return "—"
    return f"{v:.3g}" + (" ↑" if r.higher_is_better else "")


def table(results):
    lines = ["| row | unit | convocate p50 | p99 | reference | ref p50 | p99 | "
             "ratio p50 | ratio p99 | n (ours / ref) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        o, t = r.ours, r.theirs
        unit = o.unit
        n = f"{o.n}" + (f" / {t.n}" if t is not None else "")
        lines.append(
            f"| {r.name} | {unit} | {fmt(o.p50, unit)} | {fmt(o.p99, unit)} | {r.reference} | "
            f"{fmt(t.p50, unit) if t else '—'} | {fmt(t.p99, unit) if t else '—'} | "
            f"{ratio(r, 'p50')} | {ratio(r, 'p99')} | {n} |")
    return lines


def render(results, skipped, sections, started, load, full, took, sshd, nproc):
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    mode = "full run (BENCH_FULL=1)" if full else "quick run (BENCH_FULL=1 for full durations)"
    out = ["# Benchmarks", "",
           f"Run {when}; {nproc} cores; load average {load:.2f} at the start; {mode}; "
           f"took {took:.0f} s; reference {sshd}.", "",
           "Ratio = convocate / reference. For times and memory below 1 means convocate "
           "is better; for rates (↑) above 1 does. Single values show in the p50 column. "
           "Both sides of a row ran in this run, interleaved where the row says so; these "
           "machines are shared and noisy, so compare ratios, not absolute figures "
           "across runs.", ""]
    out += table(results)
    notes = [r for r in results if r.note]
    if notes:
        out += ["", "Row notes:", ""]
        out += [f"- **{r.name}**: {r.note}" for r in notes]
    for title, lines in sections.items():
        out += ["", f"## {title}", ""] + lines
    if skipped:
        out += ["", "## Rows that did not run", ""]
        out += [f"- {name}: {why}" for name, why in skipped]
    return "\n".join(out) + "\n"
