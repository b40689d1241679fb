"""Faults (issue 11): an agent killed with SIGKILL in the middle of a stream
of mixed ops from several clients, and an agent whose disk is full (SPEC 4:
atomic state files; 6.4; 7).

Everything is judged by what an operator can observe: RPC answers (over
paramiko, one persistent connection per client and a fresh channel per call,
as the shell does; lib/mixed_ops.py) and, where a file must be looked at,
the state files found through lib/agent_state.py, which knows both homes of
session metadata (SPEC 6.1's /var/lib/convocate-agent/sessions/<uuid>.json
first, then the older <home>/session.json)."""
import contextlib
import logging
import os
import random
import shutil
import tempfile
import threading
import time
import uuid as uuidlib

from lib.agent import Agent
from lib.agent_helpers import snapshot_tree
from lib.agent_state import check_state_files, etc_dir, fields_of, home_root, leftovers, \
    metadata_path
from lib.mixed_ops import Client, Conductor, Worker, call_admitted, verify_after_restart
from lib.tiny_disk import fill, free_blocks, remove_filler, tiny_disk

# Each kill resets every client's connection: expected, so not logged.
logging.getLogger("paramiko.transport").setLevel(logging.CRITICAL)

DISK_FULL = "no space left on the agent's disk"


# ---- 1. SIGKILL during 1,000 mixed ops ----

TOTAL_OPS = 1000
WORKERS = 6
# Where the kills land: one random op count in each window.
KILL_WINDOWS = tuple((60 + 110 * i, 150 + 110 * i) for i in range(8))


def test_kill9_during_mixed_ops_keeps_every_answered_op(agent):
    seed = int(os.environ.get("CONVOCATE_FAULTS_SEED", time.time_ns() % 1_000_000))
    print(f"seed {seed} (CONVOCATE_FAULTS_SEED reruns it)")
    rng = random.Random(seed)
    kill_points = [rng.randrange(lo, hi) for lo, hi in KILL_WINDOWS]
    conductor = Conductor(TOTAL_OPS)
    workers = [Worker(w, agent, conductor, seed) for w in range(WORKERS)]
    workers[0].settings = agent.ok("settings-set", {"admission_threshold_pct": 95})
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        for point in kill_points:
            conductor.wait(lambda: conductor.sent >= point or conductor.finished == WORKERS, 300,
                           f"op {point}")
            assert conductor.finished < WORKERS, "the workers ended before the kill"
            agent.kill9()
            conductor.wait(lambda: conductor.parked + conductor.finished == WORKERS, 300,
                           "every worker to notice the kill")
            agent.start()
            n, lost = verify_after_restart(agent, workers)
            print(f"killed at op {conductor.sent}: {n} sessions as answered; lost answers: {lost}")
            conductor.resume()
        conductor.wait(lambda: conductor.finished == WORKERS, 600, "the last ops")
    finally:
        conductor.resume()
        for t in threads:
            t.join(timeout=60)
    problems = [p for w in workers for p in w.problems]
    assert problems == []
    counts = {}
    for w in workers:
        for op, c in w.counts.items():
            counts[op] = counts.get(op, 0) + c
    print(f"{sum(counts.values())} ops answered in {time.monotonic() - started:.0f} s: {counts}")
    # Only the few in flight at each kill, and ops the host stayed too busy
    # to admit, may lack an ok; enough of each kind must have had one.
    assert sum(counts.values()) >= TOTAL_OPS - len(KILL_WINDOWS) * WORKERS
    assert sum(counts.values()) - counts.get("busy", 0) >= TOTAL_OPS // 2, counts
    assert all(counts.get(op, 0) >= 30 for op in ("create", "clone", "edit", "delete")), counts
    verify_after_restart(agent, workers)


# ---- crash leftovers ----


def test_start_removes_what_a_crash_left(agent):
    """The state SIGKILL leaves at the worst instants of each write: a
    temporary beside a metadata file, settings.json and a lock, a staged
    home, a half-deleted one. The next start removes all of it and keeps
    what was committed."""
    client = Client(agent)
    try:
        kept = call_admitted(client, "create", {"name": "kept"})["result"]
        settings = call_admitted(client, "settings-set", {"heartbeat_s": 42})["result"]
    finally:
        client.close()
    agent.kill9()
    uuid = kept["uuid"]
    meta = metadata_path(agent.root, uuid)
    planted = {meta + ".tmp-Ab3dEf7h": '{"uuid":"' + uuid[:10],
               os.path.join(etc_dir(agent.root), "settings.json.tmp-Zz9yX8w7"): '{"heartb',
               os.path.join(home_root(agent.root), uuid + ".lock.tmp-Qq1wE2r3"): ""}
    for path, text in planted.items():
        with open(path, "w") as f:
            f.write(text)
    for prefix in (".new-", ".del-"):
        d = os.path.join(home_root(agent.root), prefix + str(uuidlib.uuid4()))
        os.makedirs(os.path.join(d, "sub"))
        with open(os.path.join(d, "sub", "CLAUDE.md"), "w") as f:
            f.write("half\n")
    assert len(leftovers(agent.root)) == 5

    agent.start()
    assert leftovers(agent.root) == []
    assert check_state_files(agent.root) == settings
    got = agent.ok("get", {"id": uuid})
    assert fields_of(got) == fields_of(kept) and "error" not in got
    assert [s["uuid"] for s in agent.ok("list")] == [uuid]


# ---- 2. a full disk ----

def disk_full_agent(parent, image, mnt):
    """An agent whose whole --root is on the tiny disk; its log and event
    log stay outside, so they can tell what happened."""
    a = Agent(os.path.join(mnt, "root"), image)
    a.log_path = os.path.join(parent, "agent.stderr")
    a.events_path = os.path.join(parent, "events.log")
    return a


@contextlib.contextmanager
def agent_on_tiny_disk(image, prepare=None):
    parent = tempfile.mkdtemp(prefix="convocate-faults-")
    a = None
    try:
        with tiny_disk(parent) as mnt:
            try:
                a = disk_full_agent(parent, image, mnt)
                if prepare:
                    prepare(a)
                a.start()
                yield a, mnt
            finally:
                if a is not None:
                    a.cleanup()
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def refused_for_space(client, op, params):
    resp = call_admitted(client, op, params)
    assert resp.get("ok") is False, f"{op} {params} succeeded on a full disk: {resp}"
    assert DISK_FULL in resp["error"] and "no space" in resp["error"].lower(), resp
    return resp["error"]


def listing(client):
    return sorted((s["uuid"], s["name"], s["port"]) for s in call_admitted(client, "list")["result"])


def test_full_disk_refuses_cleanly_and_recovers(test_image):
    with agent_on_tiny_disk(test_image) as (a, mnt):
        client = Client(a)
        try:
            src = call_admitted(client, "create", {"name": "src", "port": 8080})["result"]
            doomed = call_admitted(client, "create", {"name": "doomed"})["result"]
            with open(os.path.join(home_root(a.root), doomed["uuid"], "data.bin"), "wb") as f:
                f.write(os.urandom(1 << 20))
            settings = call_admitted(client, "settings-set", {"heartbeat_s": 45})["result"]
            settings_file = os.path.join(etc_dir(a.root), "settings.json")
            with open(settings_file, "rb") as f:
                settings_bytes = f.read()
            before_list, before_tree = listing(client), snapshot_tree(a.root)

            filler = os.path.join(mnt, "filler")
            fill(filler)
            print("free blocks when full:", free_blocks(mnt))
            print(refused_for_space(client, "create", {"name": "nope", "port": -1}))
            print(refused_for_space(client, "clone", {"source_id": src["uuid"], "name": "nope2"}))
            print(refused_for_space(client, "settings-set", {"heartbeat_s": 99}))
            print(refused_for_space(client, "edit", {"id": src["uuid"], "name": "renamed"}))

            assert listing(client) == before_list
            assert snapshot_tree(a.root) == before_tree, "a refused op left something"
            assert leftovers(a.root) == []
            with open(settings_file, "rb") as f:
                assert f.read() == settings_bytes
            assert call_admitted(client, "settings-get")["result"] == settings
            got = call_admitted(client, "get", {"id": src["uuid"]})["result"]
            assert fields_of(got) == fields_of(src)

            # What an operator does about it: delete a session. Its lock
            # cannot be written as a file now, yet the delete goes through
            # and gives the space back.
            full = free_blocks(mnt)
            for op in ("kill", "delete"):
                resp = client.call(op, {"id": doomed["uuid"]})
                assert resp.get("ok"), f"{op} on a full disk: {resp}"
            assert free_blocks(mnt) >= full + 1024, (full, free_blocks(mnt))
            assert not os.path.lexists(os.path.join(home_root(a.root), doomed["uuid"] + ".lock"))
            again = call_admitted(client, "create", {"name": "again", "port": -1})
            assert again.get("ok"), again

            remove_filler(mnt)
            copy = call_admitted(client, "clone", {"source_id": src["uuid"], "name": "copy"})
            assert copy.get("ok"), copy
            assert call_admitted(client, "settings-set", {"heartbeat_s": 99})["ok"]
            assert check_state_files(a.root)["heartbeat_s"] == 99
            assert sorted(s["name"] for s in call_admitted(client, "list")["result"]) == \
                ["again", "copy", "src"]
        finally:
            client.close()


def big_skel(a):
    """Two MiB of starter files, so a copy of the skel (or of a home made
    from it) can run out of space between its first and second file."""
    skel = os.path.join(home_root(a.root), ".skel")
    for name in ("first.bin", "second.bin"):
        with open(os.path.join(skel, name), "wb") as f:
            f.write(os.urandom(1 << 20))


def test_copy_that_runs_out_of_space_halfway_leaves_nothing(test_image):
    with agent_on_tiny_disk(test_image, prepare=big_skel) as (a, mnt):
        client = Client(a)
        try:
            big = call_admitted(client, "create", {"name": "big"})["result"]
            before_list, before_tree = listing(client), snapshot_tree(a.root)
            filler = os.path.join(mnt, "filler")
            fill(filler)
            # Room for about one of the two files: the copy fails in the middle.
            with open(filler, "r+b") as f:
                f.truncate(os.path.getsize(filler) - (1536 << 10))
            os.sync()
            free_before = free_blocks(mnt)

            for op, params in (("clone", {"source_id": big["uuid"], "name": "half"}),
                               ("create", {"name": "half2"})):
                print(refused_for_space(client, op, params))
                assert listing(client) == before_list
                assert snapshot_tree(a.root) == before_tree, f"{op} left part of a copy"
                # The partial copy's blocks came back, not just its names.
                assert free_blocks(mnt) >= free_before - 8, (free_blocks(mnt), free_before)

            remove_filler(mnt)
            whole = call_admitted(client, "create", {"name": "whole"})
            assert whole.get("ok"), whole
            made = os.path.join(home_root(a.root), whole["result"]["uuid"])
            assert os.path.getsize(os.path.join(made, "second.bin")) == 1 << 20
        finally:
            client.close()
