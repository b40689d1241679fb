"""Admission control (SPEC 10, layer 1): create and every container start
are refused with a quantitative message when the host, or the sum of the
per-session limits, would pass admission_threshold_pct. Made deterministic
by limits larger than the host, or by CPU burners this test starts and ends
by PID."""
import os
import re
import subprocess
import time

from agent_helpers import create_ok, error_of, home, inspect, restart_ok, unique_name

DENIED = re.compile(r"^admission denied: (.+) (\d+\.\d)% of host \(cap (\d+)%\); "
                    r"(\d+) sessions? running$")


def host_memory_mb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no MemTotal")


def session_dirs(agent):
    return {n for n in os.listdir(home(agent)) if not n.startswith(".")}


def test_limits_passing_the_cap_refuse_create(agent):
    before = session_dirs(agent)
    # One session's memory limit alone is 60% of the host: over a 50% cap.
    limit = host_memory_mb() * 6 // 10
    agent.ok("settings-set", {"admission_threshold_pct": 50, "session_memory_mb": limit})
    assert agent.ok("ping")["capacity"]["threshold_pct"] == 50
    err = error_of(agent, "create", {"name": unique_name()})
    m = DENIED.match(err)
    assert m, err
    assert m.group(3) == "50" and float(m.group(2)) >= 50
    assert session_dirs(agent) == before  # nothing was made
    assert not [e for e in agent.events() if e["type"] == "container.created"]
    # clone is a create too.
    agent.ok("settings-set", {"session_memory_mb": 0})
    src = create_ok(agent)
    agent.ok("settings-set", {"session_memory_mb": limit})
    assert DENIED.match(error_of(agent, "clone", {"source_id": src["uuid"], "name": "c"}))


def test_limits_passing_the_cap_refuse_start(agent):
    s = create_ok(agent)
    agent.ok("settings-set", {"admission_threshold_pct": 50,
                              "session_memory_mb": host_memory_mb() * 6 // 10})
    err = error_of(agent, "restart", {"id": s["uuid"]})
    m = DENIED.match(err)
    assert m, err
    assert "memory" in m.group(1) and m.group(4) == "0"
    assert inspect(s["uuid"]) is None  # no container was started
    assert agent.ok("get", {"id": s["uuid"]})["state"] == "-"
    # Back under the cap, the same start goes through.
    agent.ok("settings-set", {"session_memory_mb": 0})
    restart_ok(agent, s["uuid"])
    assert inspect(s["uuid"])["State"]["Running"]


def test_cpu_limit_sum_counts_running_sessions(agent):
    ncpu = os.cpu_count()
    s = create_ok(agent)
    restart_ok(agent, s["uuid"])
    # Each session may use 40% of the host's CPUs: one runs, a second would
    # bring the sum to 80%, over a 50% cap.
    agent.ok("settings-set", {"admission_threshold_pct": 50, "session_cpus": ncpu * 0.4})
    err = error_of(agent, "create", {"name": unique_name()})
    m = DENIED.match(err)
    assert m, err
    assert "cpu" in m.group(1) and m.group(4) == "1"
    assert m.group(0).endswith("; 1 session running")


def test_busy_cpu_refuses_create(agent):
    agent.ok("settings-set", {"admission_threshold_pct": 50})
    burners = [subprocess.Popen(["/usr/bin/python3", "-c", "while True: pass"])
               for _ in range(os.cpu_count())]
    try:
        time.sleep(1.5)  # past the agent's 1 s measurement cache
        err = error_of(agent, "create", {"name": unique_name()})
    finally:
        for p in burners:
            p.kill()
        for p in burners:
            p.wait()
    m = DENIED.match(err)
    assert m, err
    assert m.group(1) == "cpu" and float(m.group(2)) >= 50 and m.group(3) == "50"
