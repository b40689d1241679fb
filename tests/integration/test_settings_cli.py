"""`convocate settings` (SPEC 7, 16) against two real agents through the
shell's pinned SSH: each agent's settings shown (settings-get), changes
typed as JSON and sent with settings-set, the agent's refusals printed as
they are, and what changed seen by settings-get over OpenSSH."""
import json

import pytest

from conftest import convocate, register_agent

DEFAULTS = {"admission_threshold_pct": 90, "heartbeat_s": 30, "docker_socket": False,
            "session_cpus": 0.0, "session_memory_mb": 0, "dns_server": "",
            "default_autonomous": False}


@pytest.fixture
def cluster(start_agent, shell_root):
    a, b = start_agent(), start_agent()
    register_agent(shell_root, a)
    register_agent(shell_root, b)
    return shell_root, a, b


def shown(root, *args):
    r = convocate(root, "settings", *args, "--json")
    assert r.returncode == 0, r.stderr
    return {row["agent_id"]: row for row in json.loads(r.stdout)}


def test_out_of_range_is_refused_with_the_agents_message(cluster):
    root, a, b = cluster
    r = convocate(root, "settings", "--agent", a.agent_id, "admission_threshold_pct=101")
    assert r.returncode == 1
    assert r.stderr == (f'convocate: agent {a.agent_id}: settings: "admission_threshold_pct" '
                        "must be an integer from 50 to 95\n")
    assert a.ok("settings-get") == DEFAULTS
    # A string that looks like a number stays a string when quoted: refused too.
    r = convocate(root, "settings", "--agent", a.agent_id, 'heartbeat_s="60"')
    assert r.returncode == 1 and '"heartbeat_s" must be an integer from 5 to 300' in r.stderr
    r = convocate(root, "settings", "--agent", a.agent_id, "docker_socket=yes")
    assert r.returncode == 1 and '"docker_socket" must be true or false' in r.stderr
    r = convocate(root, "settings", "--agent", a.agent_id, "dns_server=300.1.1.1")
    assert r.returncode == 1 and '"dns_server" must be an IPv4 address' in r.stderr
    assert a.ok("settings-get") == DEFAULTS


def test_a_valid_set_is_seen_by_settings_get_and_by_settings_json(cluster):
    root, a, b = cluster
    r = convocate(root, "settings", "--agent", a.agent_id, "admission_threshold_pct=75",
                  "heartbeat_s=60", "default_autonomous=true", "session_cpus=1.5",
                  "session_memory_mb=2048", "dns_server=10.0.0.53")
    assert r.returncode == 0, r.stderr
    want = {"admission_threshold_pct": 75, "heartbeat_s": 60, "docker_socket": False,
            "session_cpus": 1.5, "session_memory_mb": 2048, "dns_server": "10.0.0.53",
            "default_autonomous": True}
    assert a.ok("settings-get") == want  # over OpenSSH
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["AGENT", "KEY", "VALUE"]
    assert f"{a.agent_id}  admission_threshold_pct  75" in r.stdout
    assert f'{a.agent_id}  dns_server               "10.0.0.53"' in r.stdout
    assert not any(b.agent_id in line for line in lines)
    rows = shown(root)
    assert rows[a.agent_id] == {"agent_id": a.agent_id, "reachable": True, "settings": want}
    assert rows[b.agent_id]["settings"] == DEFAULTS  # the other agent is untouched
    assert shown(root, "--agent", a.agent_id).keys() == {a.agent_id}
    # An empty VALUE is the empty string: the engine's resolver again.
    r = convocate(root, "settings", "--agent", a.agent_id, "dns_server=", "session_cpus=0")
    assert r.returncode == 0, r.stderr
    got = a.ok("settings-get")
    assert (got["dns_server"], got["session_cpus"]) == ("", 0)
    a.restart()
    assert a.ok("settings-get")["admission_threshold_pct"] == 75  # persisted


def test_an_unknown_key_is_refused_and_nothing_changes(cluster):
    root, a, b = cluster
    r = convocate(root, "settings", "--agent", a.agent_id, "heartbeat_s=45", "colour=red")
    assert r.returncode == 1
    assert r.stderr == f'convocate: agent {a.agent_id}: settings: unknown key "colour"\n'
    assert a.ok("settings-get") == DEFAULTS


def test_all_shows_and_sets_every_agent(cluster):
    root, a, b = cluster
    rows = shown(root, "--all")
    assert set(rows) == {a.agent_id, b.agent_id}
    assert all(row["reachable"] and row["settings"] == DEFAULTS for row in rows.values())
    assert shown(root) == rows  # showing defaults to every agent
    r = convocate(root, "settings")
    assert r.returncode == 0
    for agent in (a, b):
        assert sum(line.startswith(agent.agent_id) for line in r.stdout.splitlines()) == 7
    # Changing wants a choice when several agents are registered.
    r = convocate(root, "settings", "heartbeat_s=40")
    assert r.returncode == 2 and "--agent" in r.stderr and "--all" in r.stderr
    r = convocate(root, "settings", "--all", "heartbeat_s=40")
    assert r.returncode == 0, r.stderr
    assert a.ok("settings-get")["heartbeat_s"] == b.ok("settings-get")["heartbeat_s"] == 40
    # One agent down: it is named on stderr, the other still shown, exit 1.
    b.stop()
    r = convocate(root, "settings", "--json")
    assert r.returncode == 1
    rows = {row["agent_id"]: row for row in json.loads(r.stdout)}
    assert rows[a.agent_id]["settings"]["heartbeat_s"] == 40
    assert rows[b.agent_id]["reachable"] is False and "settings" not in rows[b.agent_id]
    assert b.agent_id in r.stderr and "unreachable" in r.stderr


def test_usage_errors(cluster):
    root, a, b = cluster
    for args in (("--agent", a.agent_id, "heartbeat_s"),
                 ("--agent", a.agent_id, "=5"),
                 ("--agent", a.agent_id, "Heartbeat=5"),
                 ("--agent", a.agent_id, "heartbeat_s=5", "heartbeat_s=6"),
                 ("--agent", a.agent_id, 'dns_server="unterminated\\"'),
                 ("--agent", a.agent_id, "--all"),
                 ("--frob",),
                 ("--agent",)):
        r = convocate(root, "settings", *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    r = convocate(root, "settings", "--agent", "zzzzzzzz", "heartbeat_s=5")
    assert r.returncode == 1 and "zzzzzzzz" in r.stderr
    assert a.ok("settings-get") == DEFAULTS and b.ok("settings-get") == DEFAULTS
    r = convocate(root, "settings", "--help")
    assert r.returncode == 0 and "KEY=VALUE" in r.stdout
