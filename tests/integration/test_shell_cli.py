"""The shell's one-shot CLI against two real agents (SPEC 2, 12): agent
registry, parallel listing, target resolution, cluster-wide DNS uniqueness,
pinned host keys and attach through a real terminal."""
import json
import os

from lib.agent import register_agent
from lib.common import SHELL_BIN, make_client_key
from lib.shell_cli import attach_type_detach, convocate


def ls_json(root):
    r = convocate(root, "ls", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_agents_lists_both_with_health(two_agents):
    root, a, b = two_agents
    r = convocate(root, "agents", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["agent_id"]: row for row in json.loads(r.stdout)}
    assert set(rows) == {a.agent_id, b.agent_id}
    for row in rows.values():
        assert row["reachable"] is True
        assert row["ping"]["agent_id"] == row["agent_id"]
        assert "capacity" in row["ping"]


def test_no_agents_registered_says_how_to_add_one(shell_root):
    r = convocate(shell_root, "agents")
    assert r.returncode == 0
    assert "init-agent" in r.stdout
    r = convocate(shell_root, "new", "x")
    assert r.returncode == 1
    assert "init-agent" in r.stderr


def test_new_needs_agent_choice_when_several(two_agents):
    root, a, b = two_agents
    r = convocate(root, "new", "web")
    assert r.returncode == 2
    assert "--agent" in r.stderr
    r = convocate(root, "new", "web", "--agent", "zzzzzzzz")
    assert r.returncode == 1
    assert "zzzzzzzz" in r.stderr


def test_ls_json_matches_each_agents_own_list(two_agents):
    root, a, b = two_agents
    assert convocate(root, "new", "alpha", "--agent", a.agent_id, "--port", "8080").returncode == 0
    assert convocate(root, "new", "beta", "--agent", b.agent_id, "--proto", "udp",
                     "--port", "53").returncode == 0
    merged = ls_json(root)
    by_uuid = {s["uuid"]: s for s in merged}
    for agent in (a, b):
        own = agent.ok("list")
        assert len(own) == 1
        got = by_uuid[own[0]["uuid"]]
        assert got["agent"] == agent.agent_id
        for key, value in own[0].items():
            if key != "last_accessed":
                assert got[key] == value, key
    table = convocate(root, "ls").stdout
    assert "alpha" in table and "8080/tcp" in table and "53/udp" in table


def test_ls_timing_logs_each_runs_phases_only_when_asked(two_agents, tmp_path):
    """CONVOCATE_LS_TIMING (for the fleet bench): one line per ls, phases in
    order, the agents and sessions it listed; nothing without the variable."""
    root, a, b = two_agents
    for agent, name in ((a, "t-one"), (b, "t-two")):
        assert convocate(root, "new", name, "--agent", agent.agent_id).returncode == 0
    log = tmp_path / "ls-timing.log"
    env = dict(os.environ, CONVOCATE_LS_TIMING=str(log))
    for args in (("ls", "--json"), ("ls",)):
        r = convocate(root, *args, env=env)
        assert r.returncode == 0, r.stderr
    assert len(ls_json(root)) == 2  # without the variable: no third line
    lines = log.read_text().splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        f = line.split()
        assert f[0] == "ls" and f[1::2] == ["answers", "merged", "printed", "freed", "cpu",
                                            "agents", "sessions", "via"], line
        phases = [float(f[i]) for i in (2, 4, 6, 8)]
        assert phases == sorted(phases) and phases[0] > 0, line
        assert float(f[10]) > 0 and f[12] == "2" and f[14] == "2", line
        assert f[16] == "agents", line  # no status-serve here: the CLI asked them


def test_dns_name_unique_across_the_cluster(two_agents):
    root, a, b = two_agents
    assert convocate(root, "new", "one", "--agent", a.agent_id, "--dns", "shared").returncode == 0
    r = convocate(root, "new", "two", "--agent", b.agent_id, "--dns", "shared")
    assert r.returncode == 1
    assert 'dns name "shared" already in use' in r.stderr
    assert not b.ok("list")
    assert convocate(root, "new", "two", "--agent", b.agent_id).returncode == 0
    r = convocate(root, "edit", "two", "--dns", "shared")
    assert r.returncode == 1 and "already in use" in r.stderr


def test_targets_resolve_by_name_or_prefix_and_ambiguity_is_explained(two_agents):
    root, a, b = two_agents
    convocate(root, "new", "same", "--agent", a.agent_id)
    convocate(root, "new", "same", "--agent", b.agent_id)
    r = convocate(root, "kill", "same")
    assert r.returncode == 1
    assert "matches several sessions" in r.stderr
    uuid = a.ok("list")[0]["uuid"]
    r = convocate(root, "override", uuid[:8])
    assert r.returncode == 0, r.stderr
    r = convocate(root, "kill", "nothing-like-this")
    assert r.returncode == 1 and "no session matches" in r.stderr


def test_lifecycle_through_the_cli(two_agents):
    root, a, b = two_agents
    assert convocate(root, "new", "life", "--agent", a.agent_id).returncode == 0
    assert convocate(root, "restart", "life").returncode == 0
    life = [s for s in ls_json(root) if s["name"] == "life"][0]
    assert life["state"] == "R"
    r = convocate(root, "restart", "life")
    assert r.returncode == 1 and 'session "life" already running' in r.stderr
    assert convocate(root, "clone", "life", "life2").returncode == 0
    clone = [s for s in ls_json(root) if s["name"] == "life2"][0]
    assert clone["port"] == 0 and clone["agent"] == a.agent_id
    assert convocate(root, "edit", "life2", "--name", "renamed").returncode == 0
    assert convocate(root, "kill", "life").returncode == 0
    r = convocate(root, "delete", "life")
    assert r.returncode == 2 and "--yes" in r.stderr  # not a terminal: must confirm
    assert convocate(root, "delete", "life", "--yes").returncode == 0
    names = {s["name"] for s in ls_json(root)}
    assert names == {"renamed"}
    assert not os.path.exists(os.path.join(a.root, "home", "claude", life["uuid"]))


def test_unreachable_agent_costs_only_its_own_sessions(two_agents):
    root, a, b = two_agents
    convocate(root, "new", "stays", "--agent", a.agent_id)
    convocate(root, "new", "goes", "--agent", b.agent_id)
    b.stop()
    r = convocate(root, "ls", "--json")
    assert r.returncode == 0
    assert [s["name"] for s in json.loads(r.stdout)] == ["stays"]
    assert b.agent_id in r.stderr and "unreachable" in r.stderr
    r = convocate(root, "agents", "--json")
    rows = {row["agent_id"]: row for row in json.loads(r.stdout)}
    assert rows[a.agent_id]["reachable"] and not rows[b.agent_id]["reachable"]


def test_wrong_pinned_host_key_is_refused_with_both_fingerprints(start_agent, shell_root, tmp_root):
    a = start_agent()
    other = make_client_key(tmp_root, "impostor")
    register_agent(shell_root, a, host_key_pub=other + ".pub")
    r = convocate(shell_root, "agents", "--json")
    row = json.loads(r.stdout)[0]
    assert row["reachable"] is False
    assert "host key mismatch" in row["error"]
    assert row["error"].count("SHA256:") == 2
    # Nothing reached the agent: no session was created by a refused call.
    assert convocate(shell_root, "new", "x").returncode == 1
    assert a.ok("list") == []


def test_attach_through_a_terminal(two_agents):
    root, a, b = two_agents
    assert convocate(root, "new", "term", "--agent", a.agent_id).returncode == 0
    assert attach_type_detach(SHELL_BIN, ["--root", root, "attach", "term"],
                              "echo conv-$((6*7))", "conv-42") == 0
    s = [s for s in ls_json(root) if s["name"] == "term"][0]
    assert s["state"] == "R"  # detaching leaves the container running
