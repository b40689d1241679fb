"""Crash safety (SPEC 4, 6.4): kill -9 in the middle of 200 concurrent
creates leaves every metadata file parseable, every home with its metadata
and every session that answered ok present after restart; running containers are adopted, not restarted."""
import json
import os
import socket
import threading

from lib.agent_helpers import by_uuid, create_ok, home, inspect, meta_dir, read_meta, \
    restart_ok, unique_name
from lib.wait import wait_until

TOTAL = 200
WORKERS = 8


def create_many(agent, answered, done, stop_after):
    """WORKERS threads, each with its own SSH connection per call, sending
    TOTAL creates between them; records the uuids that answered ok."""
    lock = threading.Lock()
    counter = iter(range(TOTAL))

    def worker():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            line = json.dumps({"op": "create",
                               "params": {"name": f"crash-{i}", "port": -1}}).encode() + b"\n"
            try:
                r = agent.rpc_raw(line, timeout=60)
                resp = json.loads(r.stdout)
            except Exception:  # the agent died under us: expected
                continue
            if resp.get("ok"):
                with lock:
                    answered.append(resp["result"]["uuid"])
                    if len(answered) >= stop_after:
                        done.set()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    return threads


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_kill9_during_creates_loses_nothing_answered(agent):
    agent.ok("settings-set", {"admission_threshold_pct": 95})
    answered = []
    done = threading.Event()
    threads = create_many(agent, answered, done, stop_after=60)
    done.wait(timeout=120)
    agent.kill9()
    for t in threads:
        t.join(timeout=120)
    ok_before_kill = list(answered)
    assert len(ok_before_kill) >= 60, "too few creates answered before the kill"
    assert len(ok_before_kill) < TOTAL, "the kill came after every create: nothing tested"

    agent.start()
    # Every home has its metadata and every metadata file its home, each
    # parses, and nothing half-made is visible.
    homes = set()
    for n in os.listdir(home(agent)):
        assert not n.startswith((".new-", ".del-")), n
        if len(n) == 36:
            homes.add(n)
            assert read_meta(agent, n)["uuid"] == n
    metas = os.listdir(meta_dir(agent))
    assert all(".tmp-" not in m for m in metas), metas
    assert {m[:-len(".json")] for m in metas} == homes
    listed = agent.ok("list")
    assert all("error" not in s for s in listed)
    for uuid in ok_before_kill:
        s = by_uuid(listed, uuid)
        assert s is not None, f"{uuid} answered ok but is gone after the restart"
        assert s["locked"] is False  # its lock died with the agent
    ports = [s["port"] for s in listed]
    assert len(ports) == len(set(ports))  # auto-picked ports never shared
    # The restarted agent carries on where it left off.
    create_ok(agent, name=unique_name("after"), port=-1)


def test_running_containers_are_adopted_not_restarted(agent):
    s = create_ok(agent, name="survivor")
    restart_ok(agent, s["uuid"])
    before = inspect(s["uuid"])
    assert before and before["State"]["Running"]

    agent.kill9()
    # Its listening socket is closed (nothing it left behind holds it), so
    # the port the new agent binds and start() waits on is the new one's.
    wait_until(lambda: not port_open(agent.port), 10, f"port {agent.port} to close")
    agent.start()
    after = inspect(s["uuid"])
    assert after["Id"] == before["Id"]
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    got = agent.ok("get", {"id": s["uuid"]})
    assert (got["running"], got["state"], got["locked"]) == (True, "R", False)
    assert "adopted 1 running session container" in agent.log()

    # A graceful stop and start leaves it alone as well.
    agent.restart()
    again = inspect(s["uuid"])
    assert again["Id"] == before["Id"]
    assert again["State"]["StartedAt"] == before["State"]["StartedAt"]
    wait_until(lambda: by_uuid(agent.ok("list"), s["uuid"])["state"] == "R", 10,
               "the session listed in state R")
