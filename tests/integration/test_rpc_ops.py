"""The 13 ops of convocate-agent-rpc (SPEC 7) through OpenSSH's client:
results, session objects, error texts, collisions, unknown fields, corrupt
session metadata, settings, locks and the events log."""
import json
import os
import re
import socket
import subprocess
import time
import uuid as uuidlib

from lib.agent_helpers import (by_uuid, create, create_ok, error_of, home, inspect,
                               read_meta, restart_ok, meta_path, unique_name)
from lib.wait import wait_until

SESSION_KEYS = {"uuid", "name", "port", "protocol", "dns_name", "created_at", "last_accessed",
                "running", "attached", "locked", "state"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_ping_reports_identity_and_capacity(agent, test_image):
    r = agent.ok("ping")
    assert r["agent_id"] == agent.agent_id
    assert re.match(r"^v\d+\.\d+\.\d+$", r["version"])
    assert RFC3339.match(r["server_time"])
    assert r["image_tag"] == test_image
    cap = r["capacity"]
    assert set(cap) == {"cpu_pct", "mem_pct", "threshold_pct", "sessions"}
    assert 0 <= cap["cpu_pct"] <= 100 and 0 < cap["mem_pct"] < 100
    assert cap["threshold_pct"] == 90
    assert cap["sessions"] == 0


def test_unknown_op_and_bad_params(agent):
    assert error_of(agent, "frobnicate") == 'unknown op "frobnicate"'
    assert error_of(agent, "create", "web").startswith("decode params: ")
    assert error_of(agent, "create", {}).startswith("decode params: ")
    assert error_of(agent, "create", {"name": "x", "port": "80"}).startswith("decode params: ")
    assert error_of(agent, "create", {"name": "x", "port": 65536}).startswith("decode params: ")
    assert error_of(agent, "create", {"name": "x", "colour": 1}).startswith("decode params: ")
    assert error_of(agent, "get", {"id": 5}).startswith("decode params: ")
    assert error_of(agent, "ping", [1]).startswith("decode params: ")
    assert error_of(agent, "create", {"name": "a b"}).startswith('invalid name "a b"')
    assert error_of(agent, "create", {"name": "x" * 65}).startswith("invalid name ")
    assert error_of(agent, "create", {"name": "x", "protocol": "sctp"}).startswith(
        'invalid protocol "sctp"')
    assert error_of(agent, "create", {"name": "x", "dns_name": "Web"}).startswith(
        'invalid dns name "Web"')
    # A line that is not JSON at all still gets one JSON error line back.
    r = agent.rpc_raw(b"not json\n")
    assert json.loads(r.stdout)["ok"] is False
    assert agent.ok("list") == []


def test_create_get_list_delete(agent):
    name = unique_name("web")
    s = create_ok(agent, name=name, port=8080, dns_name="web")
    assert SESSION_KEYS <= set(s)
    assert (s["name"], s["port"], s["protocol"], s["dns_name"]) == (name, 8080, "tcp", "web")
    assert (s["running"], s["attached"], s["locked"], s["state"]) == (False, 0, False, "-")
    assert RFC3339.match(s["created_at"]) and RFC3339.match(s["last_accessed"])
    st = os.stat(home(agent, s["uuid"]))
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o700, 1337, 1337)
    assert os.path.exists(os.path.join(home(agent, s["uuid"]), "CLAUDE.md"))  # the skel
    disk = read_meta(agent, s["uuid"])
    assert disk["uuid"] == s["uuid"] and disk["name"] == name and disk["port"] == 8080
    assert agent.ok("get", {"id": s["uuid"]})["name"] == name
    assert by_uuid(agent.ok("list"), s["uuid"])["dns_name"] == "web"
    assert agent.ok("delete", {"id": s["uuid"]}) is None
    assert not os.path.exists(home(agent, s["uuid"]))
    assert error_of(agent, "get", {"id": s["uuid"]}) == f'session "{s["uuid"]}" not found'
    missing = str(uuidlib.uuid4())
    for op in ("get", "edit", "delete", "kill", "background", "restart", "override"):
        assert error_of(agent, op, {"id": missing}) == f'session "{missing}" not found'
    assert error_of(agent, "clone", {"source_id": missing, "name": "c"}) == \
        f'session "{missing}" not found'


def test_port_and_dns_collisions(agent):
    create_ok(agent, name="web", port=8080, dns_name="x")
    assert error_of(agent, "create", {"name": "web2", "port": 8080}) == \
        'port 8080/tcp already in use by session "web"'
    assert error_of(agent, "create", {"name": "web3", "dns_name": "x"}) == \
        'dns name "x" already in use'
    # Collisions are per (port, protocol): tcp/53 and udp/53 coexist.
    t = create_ok(agent, name="dns-tcp", port=53, protocol="tcp")
    u = create_ok(agent, name="dns-udp", port=53, protocol="udp")
    assert (t["port"], t["protocol"], u["port"], u["protocol"]) == (53, "tcp", 53, "udp")
    assert error_of(agent, "create", {"name": "again", "port": 53, "protocol": "udp"}) == \
        'port 53/udp already in use by session "dns-udp"'
    # edit is checked the same way, and never against the session itself.
    assert error_of(agent, "edit", {"id": t["uuid"], "port": 8080}) == \
        'port 8080/tcp already in use by session "web"'
    assert error_of(agent, "edit", {"id": t["uuid"], "dns_name": "x"}) == \
        'dns name "x" already in use'
    assert agent.ok("edit", {"id": t["uuid"], "port": 53, "name": "dns2"})["name"] == "dns2"
    # Port 0 is "none": any number of sessions may have it.
    create_ok(agent, port=0)
    create_ok(agent, port=0)


def test_port_auto_pick(agent):
    # Hold the lowest candidate on the host: the pick must skip it.
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("0.0.0.0", 1001))
        holder.listen(1)
    except OSError:
        pass  # already busy on this host: it must be skipped all the same
    try:
        a = create_ok(agent, port=-1)
        b = create_ok(agent, port=-1)
        c = create_ok(agent, port=-1, protocol="udp")
    finally:
        holder.close()
    assert a["port"] >= 1001 and b["port"] >= 1001 and a["port"] != b["port"]
    assert a["port"] != 1001 and b["port"] != 1001
    assert c["port"] >= 1001 and c["protocol"] == "udp"
    assert read_meta(agent, a["uuid"])["port"] == a["port"]
    e = agent.ok("edit", {"id": c["uuid"], "port": -1, "protocol": "tcp"})
    assert e["port"] >= 1001 and e["port"] not in (a["port"], b["port"])


def test_unknown_fields_are_preserved(agent):
    s = create_ok(agent, name="keep")
    path = meta_path(agent, s["uuid"])
    disk = read_meta(agent, s["uuid"])
    disk["owner"] = "alice"
    disk["tags"] = ["a", {"b": None}]
    with open(path, "w") as f:
        json.dump(disk, f)
    agent.restart()  # metadata is read at start, then held in memory
    e = agent.ok("edit", {"id": s["uuid"], "name": "kept", "port": 9001})
    assert e["owner"] == "alice" and e["name"] == "kept"
    after = read_meta(agent, s["uuid"])
    assert after["owner"] == "alice" and after["tags"] == ["a", {"b": None}]
    assert after["name"] == "kept" and after["port"] == 9001
    assert agent.ok("get", {"id": s["uuid"]})["tags"] == ["a", {"b": None}]
    # An empty name keeps the old one.
    assert agent.ok("edit", {"id": s["uuid"], "name": ""})["name"] == "kept"


def test_corrupt_metadata_is_listed_and_never_overwritten(agent):
    good = create_ok(agent, name="good")
    bad = create_ok(agent, name="bad")
    path = meta_path(agent, bad["uuid"])
    with open(path, "w") as f:
        f.write('{"uuid": "torn')
    agent.restart()  # metadata is read at start, then held in memory
    listed = agent.ok("list")
    assert by_uuid(listed, good["uuid"])["name"] == "good"
    entry = by_uuid(listed, bad["uuid"])
    assert entry is not None and entry["error"]
    assert entry["state"] == "!" and entry["running"] is False
    assert agent.ok("get", {"id": bad["uuid"]})["error"]
    assert error_of(agent, "edit", {"id": bad["uuid"], "name": "x"})
    assert error_of(agent, "clone", {"source_id": bad["uuid"], "name": "x"})
    with open(path) as f:
        assert f.read() == '{"uuid": "torn'
    assert f"session {bad['uuid']} is broken" in agent.log()
    # The way out: delete still works.
    assert agent.ok("delete", {"id": bad["uuid"]}) is None
    assert not os.path.exists(home(agent, bad["uuid"]))
    assert not os.path.exists(path)


def test_settings_get_set_validate_and_persist(agent):
    s = agent.ok("settings-get")
    assert s == {"admission_threshold_pct": 90, "heartbeat_s": 30, "docker_socket": False,
                 "session_cpus": 0, "session_memory_mb": 0, "dns_server": "",
                 "default_autonomous": False}
    s = agent.ok("settings-set", {"heartbeat_s": 5, "session_cpus": 1.5,
                                  "dns_server": "10.0.0.53"})
    assert (s["heartbeat_s"], s["session_cpus"], s["dns_server"]) == (5, 1.5, "10.0.0.53")
    assert s["admission_threshold_pct"] == 90  # partial: the rest stays
    for bad in ({"admission_threshold_pct": 49}, {"admission_threshold_pct": 96},
                {"heartbeat_s": 4}, {"heartbeat_s": 301}, {"docker_socket": "yes"},
                {"session_cpus": -1}, {"session_memory_mb": -1}, {"session_memory_mb": 1.5},
                {"dns_server": "example.com"}, {"dns_server": "::1"}, {"colour": "red"},
                {"default_autonomous": "yes"}, {"default_autonomous": None},
                {"heartbeat_s": 10, "bogus": 1}):
        assert error_of(agent, "settings-set", bad).startswith("settings: "), bad
    assert agent.ok("settings-get")["heartbeat_s"] == 5  # nothing half-applied
    with open(os.path.join(agent.etc, "settings.json")) as f:
        assert json.load(f)["dns_server"] == "10.0.0.53"
    agent.restart()
    assert agent.ok("settings-get")["session_cpus"] == 1.5
    # heartbeat_s 5: a heartbeat arrives within a few seconds.
    wait_until(lambda: [e for e in agent.events() if e["type"] == "agent.heartbeat"], 15,
               "a heartbeat in the events log")


def test_lock_refuses_lifecycle_ops_and_override_removes_it(agent):
    s = create_ok(agent, name="held")
    lock = os.path.join(home(agent), s["uuid"] + ".lock")
    owner = subprocess.Popen(["sleep", "120"])
    try:
        with open(lock, "w") as f:
            f.write(f"{owner.pid}\n")
        got = agent.ok("get", {"id": s["uuid"]})
        assert got["locked"] is True and got["state"] == "L"
        for op in ("restart", "kill", "delete", "edit"):
            assert error_of(agent, op, {"id": s["uuid"]}) == 'session "held" is locked', op
        assert agent.ok("override", {"id": s["uuid"]}) is None
        assert not os.path.exists(lock)
        assert owner.poll() is None  # override removes the file and nothing else
        assert agent.ok("get", {"id": s["uuid"]})["state"] == "-"
        # A lock whose PID is dead is stale: ignored and removed.
        with open(lock, "w") as f:
            f.write("999999999\n")
        assert agent.ok("edit", {"id": s["uuid"], "name": "free"})["name"] == "free"
        assert not os.path.exists(lock)
        # So is one older than 24 h, whoever holds it.
        with open(lock, "w") as f:
            f.write(f"{owner.pid}\n")
        old = time.time() - 25 * 3600
        os.utime(lock, (old, old))
        assert agent.ok("get", {"id": s["uuid"]})["locked"] is False
    finally:
        owner.kill()
        owner.wait()


def test_restart_kill_background_clone_with_the_engine(agent, test_image):
    s = create_ok(agent, name="runner")
    uuid = s["uuid"]
    with open(os.path.join(home(agent, uuid), "work.txt"), "w") as f:
        f.write("data\n")
    restart_ok(agent, uuid)
    info = inspect(uuid)
    assert info and info["State"]["Running"]
    assert info["Config"]["Image"] == test_image
    assert info["Config"]["Labels"]["convocate.agent"] == agent.agent_id
    assert info["HostConfig"]["CgroupParent"] == "convocate-sessions.slice"
    got = agent.ok("get", {"id": uuid})
    assert (got["running"], got["state"]) == (True, "R")
    assert by_uuid(agent.ok("list"), uuid)["state"] == "R"
    assert error_of(agent, "restart", {"id": uuid}) == 'session "runner" already running'
    assert agent.ok("background", {"id": uuid}) is None
    c = agent.ok("clone", {"source_id": uuid, "name": "copy"})
    assert c["uuid"] != uuid and c["name"] == "copy" and c["port"] == 0
    assert c["running"] is False
    with open(os.path.join(home(agent, c["uuid"]), "work.txt")) as f:
        assert f.read() == "data\n"
    assert agent.ok("kill", {"id": uuid}) is None
    wait_until(lambda: inspect(uuid) is None, 30, "the killed container to go")
    assert agent.ok("get", {"id": uuid})["state"] == "-"
    assert os.path.exists(os.path.join(home(agent, uuid), "work.txt"))  # the home stays
    assert error_of(agent, "background", {"id": uuid}) == 'session "runner" is not running'
    restart_ok(agent, uuid)
    assert agent.ok("delete", {"id": uuid}) is None  # stops it, then removes the home
    wait_until(lambda: inspect(uuid) is None, 30, "the deleted session's container to go")
    assert not os.path.exists(home(agent, uuid))


def test_events_are_logged_in_order(agent):
    s = create_ok(agent, name="ev")
    uuid = s["uuid"]
    agent.ok("edit", {"id": uuid, "name": "ev2"})
    restart_ok(agent, uuid)
    agent.ok("kill", {"id": uuid})
    agent.ok("delete", {"id": uuid})
    agent.ok("settings-set", {"heartbeat_s": 60})
    want = ["container.created", "container.edited", "container.started", "container.stopped",
            "container.deleted"]

    def mine():
        # session.activity (SPEC 16) comes and goes with the container's own
        # writes; test_activity_spool.py is about those.
        return [e for e in agent.events()
                if e.get("session_id") == uuid and e["type"] != "session.activity"]

    wait_until(lambda: len(mine()) >= len(want), 10, f"the session's {len(want)} events",
               detail=lambda: str([e["type"] for e in mine()]))
    events = agent.events()
    assert events[0]["type"] == "agent.started"
    assert events[0]["data"]["image_tag"]
    assert [e["type"] for e in mine()] == want
    for e in events:
        assert e["agent_id"] == agent.agent_id and RFC3339.match(e["timestamp"])
        assert ("session_id" in e) == (e["type"].startswith("container.")
                                       or e["type"] == "session.activity")
    created = mine()[0]["data"]
    assert created["uuid"] == uuid and created["name"] == "ev"
    assert mine()[1]["data"]["name"] == "ev2"
    assert mine()[2]["data"]["running"] is True
    stopped = mine()[3]["data"]  # SPEC 8.2: the engine's own account of the stop
    assert stopped["by"] == "operator" and stopped["oom"] is False, stopped
    assert mine()[4]["data"] is None
    settings = wait_until(lambda: [e for e in agent.events() if e["type"] == "agent.settings"],
                          10, "an agent.settings event")
    assert settings[-1]["data"]["heartbeat_s"] == 60
    agent.stop()
    assert agent.events()[-1]["type"] == "agent.shutdown"


def test_create_without_engine_still_works(start_agent):
    # create needs no container; list treats an unreachable engine as "not running".
    a = start_agent(docker_host="unix:///nonexistent/docker.sock")
    s = create_ok(a, name="offline")
    assert by_uuid(a.ok("list"), s["uuid"])["running"] is False
    assert a.ok("get", {"id": s["uuid"]})["state"] == "-"
    assert "container engine" in a.log()
