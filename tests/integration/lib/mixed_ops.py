"""Many operators at once against one agent, for crash tests: each Worker
drives a random mix of ops over its own persistent paramiko connection (a
fresh channel per call, as the shell does) on sessions it alone owns, and
remembers what was answered, and which ops lost their answer to a crash,
so verify_after_restart() can tell what the restarted agent must hold."""
import collections
import json
import os
import random
import threading
import time

import paramiko

from lib.agent_state import FIELDS, check_state_files, fields_of, home_root, leftovers, \
    metadata_path
from lib.paramiko_rpc import open_transport, raw_call, request_line

class Client:
    """One operator's persistent SSH connection to the agent; redials when
    it has dropped (the agent was killed and started again)."""

    def __init__(self, agent):
        self.agent = agent
        self.transport = None

    def _connect(self):
        self.close()
        self.transport = open_transport("127.0.0.1", self.agent.port, self.agent.client_key,
                                        timeout=15)

    def call(self, op, params=None, timeout=60):
        """The answer; raises when the agent did not give a whole one."""
        if self.transport is None or not self.transport.is_active():
            self._connect()
        out = raw_call(self.transport, request_line(op, params), timeout=timeout,
                       open_timeout=15, until_newline=True)
        if not out.endswith(b"\n"):
            raise ConnectionError(f"{op}: answer cut short: {out!r}")
        return json.loads(out)

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
        """A refusal is a bug, but for a host that stayed busy for minutes:
        that one only counts against the run's coverage."""
        if busy(resp):
            self.counts["busy"] = self.counts.get("busy", 0) + 1
        else:
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
