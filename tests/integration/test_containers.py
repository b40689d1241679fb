"""Session containers through the agent's RPC ops (SPEC 6.4, 7, 10): the run
contract read back from the engine, the lifecycle ops, the entrypoint's
lifetime rule, and an agent whose engine is unreachable."""
import json
import os
import socket
import subprocess
import uuid as uuidlib

import pytest

from lib.common import docker, free_port
from lib.wait import wait_until

NAME_PREFIX = "convocate-session-"


def container(uuid):
    return NAME_PREFIX + uuid


def inspect(uuid):
    """docker inspect of the session's container, or None when it does not exist."""
    r = docker("inspect", container(uuid), check=False)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)[0]


def in_container(uuid, *argv, user="claude"):
    return docker("exec", "-u", user, container(uuid), *argv, check=False)


def unique_name(prefix):
    return f"{prefix}-{uuidlib.uuid4().hex[:8]}"


def create(agent, prefix="ct", **params):
    name = unique_name(prefix)
    session = agent.ok("create", {"name": name, **params})
    assert session["name"] == name
    return session


def started(agent, prefix="ct", **params):
    session = create(agent, prefix, **params)
    assert agent.ok("restart", {"id": session["uuid"]}) is None
    return session


def by_uuid(agent, uuid):
    return {s["uuid"]: s for s in agent.ok("list")}.get(uuid)


def syslog_listening():
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        try:
            with socket.socket(socket.AF_UNIX, kind) as s:
                s.connect("/dev/log")
                return True
        except OSError:
            continue
    return False


def test_started_container_follows_the_run_contract(agent):
    port = free_port()
    session = started(agent, port=port, protocol="tcp")
    uuid = session["uuid"]
    c = inspect(uuid)
    assert c is not None, agent.log()
    cfg, host = c["Config"], c["HostConfig"]

    assert c["Name"] == "/" + container(uuid)
    assert cfg["Hostname"] == "convocate-" + uuid[:8]
    assert cfg["WorkingDir"] == "/home/claude"
    assert cfg["Image"] == agent.image
    assert cfg["Labels"]["convocate.session"] == uuid
    assert cfg["Labels"]["convocate.agent"] == agent.agent_id
    assert "CLAUDE_UID=1337" in cfg["Env"] and "CLAUDE_GID=1337" in cfg["Env"]
    assert cfg["Tty"] is True and cfg["OpenStdin"] is True

    assert host["AutoRemove"] is True
    assert host["Privileged"] is False
    assert host["CgroupParent"] == "convocate-sessions.slice"
    assert host["PortBindings"] == {f"{port}/tcp": [{"HostIp": "", "HostPort": str(port)}]}

    mounts = {m["Destination"]: m for m in c["Mounts"]}
    home = mounts["/home/claude"]
    assert home["Source"] == os.path.join(agent.root, "home", "claude", uuid)
    assert home["RW"] is True
    # The activity spool (SPEC 16) is always there, read-write.
    spool = mounts["/run/convocate/activity"]
    assert spool["Source"] == os.path.join(agent.root, "var/lib/convocate-agent/activity", uuid)
    assert spool["RW"] is True
    # No shared Claude dir, SSH dir, gitconfig, CLI or engine socket was set
    # up on this agent: none of them may appear.
    assert set(mounts) == {"/home/claude", "/run/convocate/activity"}

    if syslog_listening():
        assert host["LogConfig"] == {"Type": "syslog",
                                     "Config": {"tag": container(uuid)}}
    else:
        assert host["LogConfig"]["Type"] != "syslog"
        assert "syslog" in agent.log()

    assert c["State"]["Running"] is True
    assert by_uuid(agent, uuid)["running"] is True


def test_container_really_runs_in_the_sessions_cgroup(agent):
    session = started(agent)
    pid = inspect(session["uuid"])["State"]["Pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    assert any("/convocate-sessions.slice/" in line for line in lines), lines


def test_optional_mounts_are_read_only_when_present(agent):
    home = os.path.join(agent.root, "home", "claude")
    os.makedirs(os.path.join(home, ".claude"), exist_ok=True)
    os.makedirs(os.path.join(home, ".ssh"), exist_ok=True)
    with open(os.path.join(home, ".gitconfig"), "w") as f:
        f.write("[user]\n\tname = convocate test\n")
    session = started(agent)
    mounts = {m["Destination"]: m for m in inspect(session["uuid"])["Mounts"]}
    expected = {
        "/home/claude/.claude-shared": os.path.join(home, ".claude"),
        "/home/claude/.ssh": os.path.join(home, ".ssh"),
        "/home/claude/.gitconfig": os.path.join(home, ".gitconfig"),
    }
    for target, source in expected.items():
        assert target in mounts, f"{target} not mounted: {sorted(mounts)}"
        assert mounts[target]["Source"] == source
        assert mounts[target]["RW"] is False
    assert "/var/run/docker.sock" not in mounts
    r = in_container(session["uuid"], "cat", "/home/claude/.gitconfig")
    assert "convocate test" in r.stdout


def test_settings_limits_and_dns_reach_the_container(agent):
    agent.ok("settings-set", {"session_cpus": 0.5, "session_memory_mb": 256,
                              "dns_server": "10.77.0.53"})
    session = started(agent)
    host = inspect(session["uuid"])["HostConfig"]
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 256 * 1024 * 1024
    assert host["Dns"] == ["10.77.0.53"]


def test_entrypoint_makes_claude_and_the_tmux_session(agent):
    session = started(agent)
    uuid = session["uuid"]
    assert in_container(uuid, "id", "-u").stdout.strip() == "1337"
    assert in_container(uuid, "id", "-g").stdout.strip() == "1337"
    assert in_container(uuid, "tmux", "has-session", "-t", "claude").returncode == 0
    assert in_container(uuid, "sudo", "-n", "true").returncode == 0
    # The session's home is the bind-mounted directory, writable by claude.
    assert in_container(uuid, "touch", "/home/claude/written-inside").returncode == 0
    host_file = os.path.join(agent.root, "home", "claude", uuid, "written-inside")
    assert os.stat(host_file).st_uid == 1337


def test_a_session_keeps_only_the_capabilities_it_needs(agent):
    session = started(agent)
    uuid = session["uuid"]
    host = inspect(uuid)["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert set(host["CapAdd"]) == {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID",
                                   "AUDIT_WRITE", "KILL", "NET_BIND_SERVICE"}
    # Root in the container (claude's sudo, or docker exec as root) cannot
    # make a device node: the home is on the host, where one would be real.
    r = in_container(uuid, "mknod", "/home/claude/null-dev", "c", "1", "3", user="root")
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r.stdout + r.stderr
    r = in_container(uuid, "sudo", "-n", "mknod", "/home/claude/null-dev", "c", "1", "3")
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r.stdout + r.stderr
    assert not os.path.exists(os.path.join(agent.root, "home", "claude", uuid, "null-dev"))
    # What the session needs still works: sudo, and the claude user's files.
    assert in_container(uuid, "sudo", "-n", "chown", "root", "/home/claude").returncode == 0
    assert in_container(uuid, "sudo", "-n", "chown", "claude", "/home/claude").returncode == 0


def test_container_lives_exactly_as_long_as_tmux(agent):
    session = started(agent)
    uuid = session["uuid"]
    # The entrypoint is in its watch loop (its `sleep 1` between two
    # has-session checks is running), past everything that could end it
    # early: from here only the end of the tmux session ends it.
    wait_until(lambda: in_container(uuid, "pgrep", "-P", "1", "-x", "sleep",
                                    user="root").returncode == 0,
               15, "the entrypoint's has-session loop", interval=0.2)
    assert inspect(uuid)["State"]["Running"] is True
    r = in_container(uuid, "tmux", "kill-session", "-t", "claude")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: inspect(uuid) is None, 15,
               "the container to end with its tmux session (it outlived it)", interval=0.2)
    assert by_uuid(agent, uuid)["running"] is False


def test_restart_refuses_a_running_session(agent):
    session = started(agent)
    first = inspect(session["uuid"])["Id"]
    resp = agent.rpc("restart", {"id": session["uuid"]})
    assert resp == {"ok": False, "error": f'session "{session["name"]}" already running'}
    assert inspect(session["uuid"])["Id"] == first


def test_kill_stops_the_container_and_keeps_the_home(agent):
    session = started(agent)
    uuid = session["uuid"]
    assert agent.ok("kill", {"id": uuid}) is None
    assert inspect(uuid) is None, "kill returned before the container was gone"
    assert os.path.isdir(os.path.join(agent.root, "home", "claude", uuid))
    listed = by_uuid(agent, uuid)
    assert listed["running"] is False and listed["state"] == "-"
    # Killed sessions start again.
    assert agent.ok("restart", {"id": uuid}) is None
    assert inspect(uuid)["State"]["Running"] is True


def test_background_keeps_the_container_running(agent):
    session = started(agent)
    uuid = session["uuid"]
    # One real tmux client attached through a pseudo-terminal in the container.
    docker("exec", "-d", "-t", "-u", "claude", container(uuid), "tmux", "attach", "-t", "claude")
    wait_until(lambda: in_container(uuid, "tmux", "list-clients").stdout.strip(), 10,
               "a tmux client attached", interval=0.2)
    assert in_container(uuid, "tmux", "list-clients").stdout.strip()
    assert agent.ok("background", {"id": uuid}) is None
    assert in_container(uuid, "tmux", "list-clients").stdout.strip() == ""
    assert inspect(uuid)["State"]["Running"] is True
    # Nobody attached: background is still fine.
    assert agent.ok("background", {"id": uuid}) is None


def test_delete_leaves_nothing_behind(agent):
    session = started(agent)
    uuid = session["uuid"]
    home = os.path.join(agent.root, "home", "claude")
    assert agent.ok("delete", {"id": uuid}) is None
    assert inspect(uuid) is None
    assert not os.path.lexists(os.path.join(home, uuid))
    assert not os.path.lexists(os.path.join(home, uuid + ".lock"))
    assert by_uuid(agent, uuid) is None
    r = docker("ps", "-aq", "--filter", f"label=convocate.session={uuid}")
    assert r.stdout.strip() == ""


def test_serve_restart_adopts_running_containers(agent):
    session = started(agent)
    uuid = session["uuid"]
    before = inspect(uuid)["Id"]
    agent.restart()
    listed = by_uuid(agent, uuid)
    assert listed["running"] is True and listed["state"] in ("R", "C")
    assert inspect(uuid)["Id"] == before


def test_unreachable_engine_keeps_the_agent_up(start_agent):
    agent = start_agent(docker_host="unix:///nonexistent.sock")
    session = create(agent)
    listed = by_uuid(agent, session["uuid"])
    assert listed is not None and listed["running"] is False
    resp = agent.rpc("restart", {"id": session["uuid"]})
    assert resp["ok"] is False
    assert "docker engine unreachable at /nonexistent.sock" in resp["error"], resp
    assert agent.ok("ping")["agent_id"] == agent.agent_id
    assert agent.proc.poll() is None, agent.log()
