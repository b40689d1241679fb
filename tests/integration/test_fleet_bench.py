"""The fleet benchmark's own code (bench/fleet.py, bench/rows_fleet.py) at a
size that fits in a test, 3 agents x 5 sessions, so that it cannot rot
between the rare full runs: the row runs end to end and reports every
figure, and its clean-up leaves no namespace, veth, bridge, process or
directory behind, also when the set-up fails half way.

Root only (network namespaces); the /24 is CONVOCATE_TEST_NET's (the bench's
default 10.82.0 when unset)."""
import glob
import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")
sys.path.insert(0, BENCH)
os.environ.setdefault("CONVOCATE_TEST_NET", "10.82.0")

import fleet as fleet_mod  # noqa: E402
import rows_fleet  # noqa: E402
from registry import Skip  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


class QuickContext:
    """What a row gets from bench.py's Context, in its quick form."""

    full = False

    def __init__(self):
        self.sections = {}

    def n(self, quick, full):
        return quick

    def note(self, section, line):
        self.sections.setdefault(section, []).append(line)


def ours(tag):
    """This process's fleet namespaces and links still on the machine."""
    names = [line.split()[0] for line in
             subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
             .stdout.splitlines() if line.split()]
    links = [line.split(":")[1].strip().split("@")[0] for line in
             subprocess.run(["ip", "-o", "link"], capture_output=True, text=True)
             .stdout.splitlines()]
    return [n for n in names + links if n.startswith(tag)]


def test_the_row_reports_every_figure_and_leaves_nothing(monkeypatch, test_image):
    monkeypatch.setenv("BENCH_FLEET", "1")
    monkeypatch.setenv("BENCH_FLEET_AGENTS", "3")
    monkeypatch.setenv("BENCH_FLEET_SESSIONS", "5")
    tag = f"cvf{os.getpid() % 100000}"
    dirs_before = set(glob.glob("/tmp/cvf-*"))
    ctx = QuickContext()
    results = rows_fleet.fleet(ctx)
    names = [r.name for r in results]
    assert len(names) == 6, names
    held = results[0]
    assert held.ours.p50 == 3, f"status-serve holds {held.ours.p50} agent connections, not 3"
    notes = " ".join(ctx.sections["Fleet"])
    assert "3 of 3 agents live" in notes, notes
    assert "nothing of the fleet left" in notes, notes
    served, direct = [r for r in results if "convocate ls" in r.name]
    assert "15 sessions" in served.name and served.ours.n == 20 and served.theirs.n == 20
    assert "ControlMaster" in served.reference
    assert "the CLI's own figures (median of 20)" in served.note, served.note
    assert "dialling every agent itself" in direct.name
    assert direct.ours.n == 20 and direct.theirs.n == 5
    assert "median of 20, ms since it began): every answer in" in direct.note, direct.note
    for r in results[2:]:
        assert r.ours.n > 0 and r.ours.p50 > 0, r.name
    assert ours(tag) == [], "the row left namespaces or links behind"
    assert set(glob.glob("/tmp/cvf-*")) == dirs_before, "the row left its temp dir behind"


def test_the_row_skips_without_bench_fleet(monkeypatch):
    monkeypatch.delenv("BENCH_FLEET", raising=False)
    with pytest.raises(Skip, match="BENCH_FLEET=1"):
        rows_fleet.fleet(QuickContext())


def test_a_set_up_that_fails_half_way_is_cleaned_up(monkeypatch, test_image):
    """Agents paired, started and connected, then the sessions' step fails:
    the with block removes the processes, namespaces, veths, bridge and dir."""
    def broken(self):
        raise RuntimeError("create failed (on purpose)")
    monkeypatch.setattr(fleet_mod.Fleet, "_create_sessions", broken)
    f = fleet_mod.Fleet(3, 5, image=test_image)
    with pytest.raises(RuntimeError, match="on purpose"):
        with f:
            f.setup()
    pids = [a.proc.pid for a in f.agents] + [f.status_proc.pid]
    assert len(pids) == 4 and all(a.proc.returncode is not None for a in f.agents)
    assert f.leftovers() == [], f.leftovers()
    assert ours(f.tag) == []


def test_the_fleet_refuses_a_prefix_already_in_use(monkeypatch, test_image):
    """Two fleets on one /24 would answer for each other's addresses."""
    with fleet_mod.Fleet(1, 1, image=test_image) as first:
        first._make_bridge()
        second = fleet_mod.Fleet(1, 1, image=test_image)
        second.tag = first.tag + "x"  # same process: its own names
        with pytest.raises(RuntimeError, match="already on this machine"):
            with second:
                second.setup()
        assert second.leftovers() == []
    assert first.leftovers() == []
    assert ours(first.tag) == []
