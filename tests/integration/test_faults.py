"""Faults (issue 11): an agent killed with SIGKILL in the middle of a stream
of mixed ops from several clients, and an agent whose disk is full (SPEC 4:
atomic state files; 6.4; 7).

Everything is judged by what an operator can observe: RPC answers (over
paramiko, one persistent connection per client and a fresh channel per call,
as the shell does) and, where a file must be looked at, the state files
found through metadata_path(), which knows both homes of session metadata
(SPEC 6.1's /var/lib/convocate-agent/sessions/<uuid>.json first, then the
older <home>/session.json)."""
import collections
import contextlib
import errno
import json
import logging
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import uuid as uuidlib

import paramiko

from lib.agent import Agent
from lib.agent_helpers import snapshot_tree
from lib.wait import wait_until

# Each kill resets every client's connection: expected, so not logged.
logging.getLogger("paramiko.transport").setLevel(logging.CRITICAL)

DISK_FULL = "no space left on the agent's disk"
FIELDS = ("name", "port", "protocol", "dns_name")

# ---- where state lives (both layouts) ----


def home_root(root):
    return os.path.join(root, "home", "claude")


def sessions_dir(root):
    return os.path.join(root, "var", "lib", "convocate-agent", "sessions")


def etc_dir(root):
    return os.path.join(root, "etc", "convocate-agent")


def is_uuid(name):
    try:
        return str(uuidlib.UUID(name)) == name
    except ValueError:
        return False


def metadata_path(root, uuid):
    """The session's metadata file: the SPEC 6.1 place when it is there,
    else session.json in the home (agents before the move)."""
    new = os.path.join(sessions_dir(root), uuid + ".json")
    return new if os.path.exists(new) else os.path.join(home_root(root), uuid, "session.json")


def metadata_files(root):
    """{uuid: path} of every session metadata file in either place."""
    found = {}
    home = home_root(root)
    for n in os.listdir(home):
        p = os.path.join(home, n, "session.json")
        if is_uuid(n) and os.path.isdir(os.path.join(home, n)) and os.path.exists(p):
            found[n] = p
    if os.path.isdir(sessions_dir(root)):
        for n in os.listdir(sessions_dir(root)):
            if n.endswith(".json") and is_uuid(n[:-5]):
                found[n[:-5]] = os.path.join(sessions_dir(root), n)
    return found


def leftovers(root):
    """What an interrupted operation may leave: staged (.new-) and half-deleted
    (.del-) homes, and temporaries of atomic writes (.tmp-) beside any state
    file or in a session home's top level."""
    home = home_root(root)
    dirs = [home, sessions_dir(root), etc_dir(root)]
    dirs += [os.path.join(home, n) for n in os.listdir(home)
             if is_uuid(n) and os.path.isdir(os.path.join(home, n))]
    found = []
    for d in dirs:
        if os.path.isdir(d):
            found += [os.path.join(d, n) for n in os.listdir(d)
                      if n.startswith((".new-", ".del-")) or ".tmp-" in n]
    return found


def check_state_files(root, listed=None):
    """Every metadata file and settings.json parses (and, given the agent's
    list, says what the list says); returns the settings."""
    files = metadata_files(root)
    for uuid, path in files.items():
        with open(path) as f:
            meta = json.load(f)
        assert meta["uuid"] == uuid, path
        if listed is not None:
            assert fields_of(meta) == fields_of(listed[uuid]), f"{path} is not what list says"
    if listed is not None:
        assert sorted(files) == sorted(listed), "sessions on disk are not those listed"
    settings = os.path.join(etc_dir(root), "settings.json")
    if not os.path.exists(settings):
        return None
    with open(settings) as f:
        return json.load(f)


def fields_of(obj):
    return {k: obj[k] for k in FIELDS}


# ---- RPC over paramiko ----


class Client:
    """One operator's persistent SSH connection to the agent; redials when
    it has dropped (the agent was killed and started again)."""

    def __init__(self, agent):
        self.agent = agent
        self.transport = None

    def _connect(self):
        self.close()
        t = paramiko.Transport(("127.0.0.1", self.agent.port))
        t.start_client(timeout=15)
        t.auth_publickey("claude",
                         paramiko.Ed25519Key.from_private_key_file(self.agent.client_key))
        self.transport = t

    def call(self, op, params=None, timeout=60):
        """The answer; raises when the agent did not give a whole one."""
        if self.transport is None or not self.transport.is_active():
            self._connect()
        chan = self.transport.open_session(timeout=15)
        try:
            chan.settimeout(timeout)
            chan.invoke_subsystem("convocate-agent-rpc")
            chan.sendall(json.dumps({"op": op, "params": params}).encode() + b"\n")
            chan.shutdown_write()
            out = b""
            while not out.endswith(b"\n"):
                chunk = chan.recv(65536)
                if not chunk:
                    raise ConnectionError(f"{op}: answer cut short: {out!r}")
                out += chunk
            return json.loads(out)
        finally:
            chan.close()

    def close(self):
        if self.transport is not None:
            self.transport.close()
            self.transport = None


def busy(resp):
    return str(resp.get("error", "")).startswith("admission denied: cpu")


def call_admitted(client, op, params=None, within=60):
    """call(), repeated while this busy machine trips CPU admission (tested
    in test_admission.py, not here)."""
    deadline = time.monotonic() + within
    while True:
        resp = client.call(op, params)
        if not busy(resp) or time.monotonic() > deadline:
            return resp
        time.sleep(1)


# ---- 1. SIGKILL during 1,000 mixed ops ----

TOTAL_OPS = 1000
WORKERS = 6
# Where the kills land: one random op count in each window.
KILL_WINDOWS = tuple((60 + 110 * i, 150 + 110 * i) for i in range(8))
MAX_OWNED = 10


class Owned:
    """A session one worker made; only that worker changes it, so its ops
    on it are ordered and the last answered one is the truth."""

    def __init__(self, fields):
        self.fields = fields
        self.pending = None  # ("edit", fields) or ("delete",): sent, answer lost


class Conductor:
    """Hands out op tickets and parks the workers while the agent is down."""

    def __init__(self, total):
        self.total = total
        self.sent = 0
        self.parked = 0
        self.finished = 0
        self.generation = 0
        self.cond = threading.Condition()

    def ticket(self):
        with self.cond:
            if self.sent >= self.total:
                return False
            self.sent += 1
            self.cond.notify_all()
            return True

    def park(self):
        """A worker whose call failed waits here for the agent's restart."""
        with self.cond:
            gen = self.generation
            self.parked += 1
            self.cond.notify_all()
            ok = self.cond.wait_for(lambda: self.generation != gen, timeout=600)
            self.parked -= 1
            return ok

    def done(self):
        with self.cond:
            self.finished += 1
            self.cond.notify_all()

    def wait(self, predicate, timeout, what):
        with self.cond:
            assert self.cond.wait_for(predicate, timeout=timeout), f"timed out waiting for {what}"

    def resume(self):
        with self.cond:
            self.generation += 1
            self.cond.notify_all()


class Worker:
    """One client driving a random mix of ops on its own sessions; worker 0
    also owns the settings."""

    def __init__(self, w, agent, conductor, seed):
        self.w = w
        self.client = Client(agent)
        self.conductor = conductor
        self.rng = random.Random(seed * 100 + w)
        self.sessions = {}  # uuid -> Owned
        self.deleted = set()
        self.pending_new = set()  # names of creates/clones whose answer was lost
        self.settings = None  # (worker 0) what the last ok'd settings-set answered
        self.pending_settings = None
        self.problems = []  # answers no correct agent gives
        self.counts = {}  # op -> answered ok
        self.k = 0
        self.ports_used = 0

    # -- choosing and building ops --

    def choose(self):
        r, n = self.rng.random(), len(self.sessions)
        if n == 0 or (r < 0.25 and n < MAX_OWNED):
            return "create"
        if r < 0.45:
            return "edit"
        if r < 0.60:
            return "clone" if n < MAX_OWNED else "delete"
        if r < 0.78:
            return "delete"
        if r < 0.85 and self.w == 0:
            return "settings-set"
        return "get" if r < 0.93 else "list"

    def fresh(self, tag):
        self.k += 1
        return f"w{self.w}-{tag}{self.k}"

    def explicit_port(self):
        """A port no other session of this run ever held: each worker counts
        up through its own thousand, so a refusal as "in use" is a bug."""
        self.ports_used += 1
        return 30000 + self.w * 1000 + self.ports_used

    def create_params(self):
        p = {"name": self.fresh("c"), "protocol": self.rng.choice(["tcp", "udp"])}
        p["port"] = self.rng.choice([-1, 0, self.explicit_port()])
        if self.rng.random() < 0.5:
            p["dns_name"] = self.fresh("d")
        return p

    def edit_params(self, uuid):
        p = {"id": uuid, "name": self.rng.choice(["", self.fresh("e")])}
        if self.rng.random() < 0.5:
            p["port"] = self.rng.choice([0, self.explicit_port()])
        if self.rng.random() < 0.5:
            p["dns_name"] = self.rng.choice(["", self.fresh("d")])
        return p

    # -- running them --

    def run(self):
        try:
            while self.conductor.ticket():
                op = self.choose()
                try:
                    self.step(op)
                except (OSError, EOFError, ValueError, paramiko.SSHException):
                    self.client.close()  # the agent died under us: expected
                    if not self.conductor.park():
                        self.problems.append("never resumed after the agent's restart")
                        return
        except Exception as e:  # noqa: BLE001 - a bug in the test: report it, not hang
            self.problems.append(f"worker {self.w} crashed: {e!r}")
        finally:
            self.client.close()
            self.conductor.done()

    def step(self, op):
        uuid = self.rng.choice(sorted(self.sessions)) if self.sessions else None
        if op == "create":
            self.do_new("create", self.create_params())
        elif op == "clone":
            self.do_new("clone", {"source_id": uuid, "name": self.fresh("k")})
        elif op == "edit":
            self.do_edit(uuid)
        elif op == "delete":
            self.do_delete(uuid)
        elif op == "settings-set":
            self.do_settings()
        elif op == "get":
            resp = self.call("get", {"id": uuid})
            if not resp.get("ok") or fields_of(resp["result"]) != self.sessions[uuid].fields:
                self.problems.append(f"get {uuid}: {resp} != {self.sessions[uuid].fields}")
        else:
            resp = self.call("list", None)
            broken = [s for s in resp.get("result") or [] if "error" in s]
            if not resp.get("ok") or broken:
                self.problems.append(f"list: {resp.get('error')} {broken}")

    def call(self, op, params):
        """One op's answer. A CPU admission refusal (this machine is shared,
        and these clients load it too) is asked again a moment later, as an
        operator would; it is not what this test is about."""
        deadline = time.monotonic() + 120
        while True:
            resp = self.client.call(op, params)
            if not busy(resp) or time.monotonic() > deadline:
                break
            time.sleep(self.rng.uniform(0.2, 1.0))
        if resp.get("ok"):
            self.counts[op] = self.counts.get(op, 0) + 1
        return resp

    def refused(self, op, params, resp):
        self.problems.append(f"{op} {params} -> {resp}")

    def do_new(self, op, params):
        self.pending_new.add(params["name"])
        resp = self.call(op, params)
        self.pending_new.discard(params["name"])
        if not resp.get("ok"):
            return self.refused(op, params, resp)
        got = resp["result"]
        if op == "clone" and (got["port"], got["dns_name"]) != (0, ""):
            self.problems.append(f"clone kept a claim: {got}")
        if got["name"] != params["name"]:
            self.problems.append(f"{op} {params} -> {got}")
        self.sessions[got["uuid"]] = Owned(fields_of(got))

    def do_edit(self, uuid):
        params = self.edit_params(uuid)
        owned = self.sessions[uuid]
        want = dict(owned.fields)
        want.update({k: v for k, v in params.items() if k in FIELDS})
        if not params["name"]:
            want["name"] = owned.fields["name"]  # an empty name keeps the old one
        owned.pending = ("edit", want)
        resp = self.call("edit", params)
        owned.pending = None
        if not resp.get("ok"):
            return self.refused("edit", params, resp)
        if fields_of(resp["result"]) != want:
            self.problems.append(f"edit {params} -> {resp['result']}, wanted {want}")
        owned.fields = fields_of(resp["result"])

    def do_delete(self, uuid):
        owned = self.sessions[uuid]
        owned.pending = ("delete",)
        resp = self.call("delete", {"id": uuid})
        owned.pending = None
        if not resp.get("ok"):
            return self.refused("delete", {"id": uuid}, resp)
        del self.sessions[uuid]
        self.deleted.add(uuid)

    def do_settings(self):
        params = {"heartbeat_s": self.rng.randrange(5, 301), "admission_threshold_pct": 95}
        self.pending_settings = params
        resp = self.call("settings-set", params)
        self.pending_settings = None
        if not resp.get("ok"):
            return self.refused("settings-set", params, resp)
        self.settings = resp["result"]

    # -- after a restart --

    def reconcile(self, listed, lost):
        """Checks this worker's sessions against the restarted agent's list
        (popping them from it) and takes each lost answer's outcome as the
        new truth; counts those outcomes in lost."""
        for uuid in self.deleted:
            assert uuid not in listed, f"{uuid} was deleted (answered ok) but is back"
            root = self.client.agent.root
            assert not os.path.exists(os.path.join(home_root(root), uuid))
            assert not os.path.exists(metadata_path(root, uuid))
        for uuid, owned in list(self.sessions.items()):
            got = listed.pop(uuid, None)
            if owned.pending == ("delete",) and got is None:
                del self.sessions[uuid]
                self.deleted.add(uuid)
                lost["delete done"] += 1
                continue
            assert got is not None, f"{uuid} answered ok ({owned.fields}) but is gone"
            edited = owned.pending and owned.pending[0] == "edit"
            allowed = [owned.fields] + ([owned.pending[1]] if edited else [])
            assert fields_of(got) in allowed, f"{uuid}: {got} is none of {allowed}"
            if owned.pending:
                took = fields_of(got) != owned.fields or (edited and allowed[0] == allowed[1])
                lost[f"{owned.pending[0]} {'done' if took else 'not done'}"] += 1
            owned.fields, owned.pending = fields_of(got), None

    def adopt(self, uuid, got):
        """A session whose create or clone lost its answer but took place."""
        self.pending_new.discard(got["name"])
        self.sessions[uuid] = Owned(fields_of(got))


def verify_after_restart(agent, workers):
    assert leftovers(agent.root) == [], "left by the crash, not cleaned at start"
    client = Client(agent)
    try:
        listed = call_admitted(client, "list")["result"]
        settings = call_admitted(client, "settings-get")["result"]
    finally:
        client.close()
    on_disk = check_state_files(agent.root, {s["uuid"]: s for s in listed})
    broken = [s for s in listed if "error" in s or s["locked"]]
    assert broken == [], "sessions broken or still locked after the restart"
    ports = [(s["port"], s["protocol"]) for s in listed if s["port"]]
    dns = [s["dns_name"] for s in listed if s["dns_name"]]
    assert len(ports) == len(set(ports)) and len(dns) == len(set(dns)), "a claim is shared"
    by_uuid = {s["uuid"]: s for s in listed}
    lost = collections.Counter()
    for w in workers:
        w.reconcile(by_uuid, lost)
    for uuid, got in by_uuid.items():  # made by an op whose answer was lost
        owner = [w for w in workers if got["name"] in w.pending_new]
        assert owner, f"{uuid} ({got['name']}) was never asked for"
        owner[0].adopt(uuid, got)
        lost["create/clone done"] += 1
    for w in workers:
        lost["create/clone not done"] += len(w.pending_new)
        w.pending_new.clear()
    settings_owner = workers[0]
    allowed = [settings_owner.settings]
    if settings_owner.pending_settings:
        allowed.append(dict(settings, **settings_owner.pending_settings))
    if settings_owner.settings is not None or settings_owner.pending_settings:
        assert settings in allowed, f"settings {settings} are none of {allowed}"
    assert on_disk == settings, "settings.json says other than settings-get"
    settings_owner.settings, settings_owner.pending_settings = settings, None
    return len(listed), dict(lost)


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
    print(f"{sum(counts.values())} ops answered ok in {time.monotonic() - started:.0f} s: {counts}")
    # Only the few in flight at each kill may lack an answer.
    assert sum(counts.values()) >= TOTAL_OPS - len(KILL_WINDOWS) * WORKERS
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


@contextlib.contextmanager
def tiny_disk(parent, mib=8):
    """A fresh ext4 of mib MiB on a loop device, mounted at parent/disk;
    unmounted and its loop device detached afterwards, whatever happened."""
    img, mnt = os.path.join(parent, "disk.img"), os.path.join(parent, "disk")
    os.makedirs(mnt)
    with open(img, "wb") as f:
        f.truncate(mib << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "loop,nosuid,nodev", img, mnt], check=True,
                   capture_output=True)
    try:
        yield mnt
    finally:
        r = subprocess.run(["umount", mnt], capture_output=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        loops = subprocess.run(["losetup", "-j", img], capture_output=True, text=True).stdout
        for line in loops.splitlines():
            subprocess.run(["losetup", "-d", line.split(":")[0]], capture_output=True)


def fill(path):
    """Writes path until the disk refuses, then tiny files beside it until
    not even one more block is left."""
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 64 << 10, 4096, 1024):
            chunk = os.urandom(size)
            try:
                while True:
                    f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    i = 0
    try:
        while True:
            i += 1
            with open(f"{path}.{i}", "wb") as f:
                f.write(b"x")
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    os.sync()


def free_blocks(path):
    return os.statvfs(path).f_bfree


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


def remove_filler(mnt):
    for n in os.listdir(mnt):
        if n.startswith("filler"):
            os.remove(os.path.join(mnt, n))


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
