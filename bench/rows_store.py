"""Session store rows (issue 13): list with 1,000 sessions, answered from
memory, and create.

Both run on an agent of their own (its root under the bench's work dir),
not the shared pair's, so 1,000 sessions do not slow the other rows. The
1,000 sessions are laid down on disk before that agent starts, as the agent
itself writes them (a home and a metadata file each): the agent loads them
once at start, and list never reads the directory again.

References, side by side, interleaved, on the OpenSSH reference sshd (user
with /bin/sh; bench/reference.py):
- list: responder --cat, a C program that sends the very bytes of our
  1,000-session answer: the floor for moving that answer through OpenSSH.
- create: a /bin/sh script doing what create does on disk the crash-safe
  way (mkdir the staging home, cp the skel, write the metadata to a
  temporary, sync it, mv it, sync the directory, mv the home, sync), with no
  validation, claims, lock, admission or event."""
import json
import os
import pwd
import shutil
import time
import uuid as uuidlib

import clients
import reference
from registry import Result, Skip, dist, row

from lib.agent import Agent

SESSIONS = 1000
META = os.path.join("var", "lib", "convocate-agent", "sessions")

CREATE_SCRIPT = """#!/bin/sh
# One create as a shell script would do it, crash-safe (bench/rows_store.py).
set -e
read -r line
u=$(cat /proc/sys/kernel/random/uuid)
r={root}
mkdir -m 700 "$r/home/.new-$u"
cp -R "$r/home/.skel/." "$r/home/.new-$u/"
printf '%s\\n' "$line" > "$r/meta/$u.json.tmp"
sync "$r/meta/$u.json.tmp"
mv "$r/meta/$u.json.tmp" "$r/meta/$u.json"
sync "$r/meta"
mv "$r/home/.new-$u" "$r/home/$u"
sync "$r/home"
printf '{{"ok":true,"result":{{"uuid":"%s"}}}}\\n' "$u"
"""


def plant_sessions(root, n):
    """n sessions as the agent lays them out: a claude 0700 home each and
    root 0600 metadata in the 0700 sessions directory."""
    meta = os.path.join(root, META)
    os.makedirs(meta, mode=0o700, exist_ok=True)
    for i in range(n):
        u = str(uuidlib.uuid4())
        home = os.path.join(root, "home", "claude", u)
        os.makedirs(home, mode=0o700)
        os.chown(home, 1337, 1337)
        doc = {"uuid": u, "name": f"bench-{i:04d}", "port": 2000 + i, "protocol": "tcp",
               "dns_name": f"bench-{i:04d}", "model": "",
               "created_at": "2026-11-24T10:00:00Z", "last_accessed": "2026-11-24T11:00:00Z"}
        path = os.path.join(meta, f"{u}.json")
        with open(path, "w") as f:
            f.write(json.dumps(doc) + "\n")
        os.chmod(path, 0o600)


class StoreAgent:
    """An agent with SESSIONS sessions, and a paramiko client to it."""

    def __init__(self, ctx):
        self.root = os.path.join(ctx.work, "store-agent")
        os.makedirs(self.root)
        self.agent = Agent(self.root, os.environ.get("CONVOCATE_TEST_IMAGE", ""))
        plant_sessions(self.root, SESSIONS)
        self.agent.start()
        self.client = clients.connect(self.agent.port, self.agent.client_key, "claude",
                                      self.agent.known_hosts)

    def call(self, op, params=None):
        line = json.dumps({"op": op, "params": params}).encode() + b"\n"
        return clients.call(self.client, line)

    def close(self):
        self.client.close()
        self.agent.cleanup()


def _store_agent(ctx):
    if getattr(ctx, "store_agent", None) is None:
        ctx.store_agent = StoreAgent(ctx)
        ctx.on_close(ctx.store_agent.close)
    return ctx.store_agent


@row("list, 1,000 sessions", order=60)
def list_thousand(ctx):
    s = _store_agent(ctx)
    answer = s.call("list")
    listed = json.loads(answer)["result"]
    if len(listed) != SESSIONS:
        raise Skip(f"the agent listed {len(listed)} sessions, not {SESSIONS}")
    ref = ctx.reference
    with open(ref.list_file, "wb") as f:
        f.write(answer)
    os.chmod(ref.list_file, 0o644)
    scans = json.loads(s.call("ping"))["result"]["store_scans"]
    theirs_client = ctx.reference_client()
    line = json.dumps({"op": "list", "params": None}).encode() + b"\n"
    a, b, p = clients.side_by_side(
        [lambda: s.call("list"),
         lambda: clients.call(theirs_client, line, subsystem="convocate-list"),
         lambda: s.call("ping")],
        ctx.n(50, 300), warmup=5)
    after = json.loads(s.call("ping"))["result"]["store_scans"]
    ping = dist(p)
    return Result("list, 1,000 sessions (paramiko, fresh channel)", dist(a), dist(b),
                  "the same answer's bytes from a C program under OpenSSH",
                  note=f"goal p50 ≤ 10 ms; answer {len(answer) / 1024:.0f} KiB; the same "
                       f"agent's ping, interleaved: p50 {ping.p50:.2f} ms; store directory "
                       f"scans during the row: {after - scans} (list answers from memory)")


def _reference_create_root(ctx):
    """The script's own tree, owned by the reference user."""
    ref = ctx.reference
    root = os.path.join(ref.dir, "create-root")
    pw = pwd.getpwnam(reference.USER)
    for d in ("home", os.path.join("home", ".skel"), "meta"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
        os.chown(os.path.join(root, d), pw.pw_uid, pw.pw_gid)
    skel = os.path.join(ctx.agent.root, "home", "claude", ".skel")
    for name in os.listdir(skel):
        src = os.path.join(skel, name)
        if os.path.isfile(src):
            shutil.copy(src, os.path.join(root, "home", ".skel", name))
            os.chown(os.path.join(root, "home", ".skel", name), pw.pw_uid, pw.pw_gid)
    with open(ref.create_script, "w") as f:
        f.write(CREATE_SCRIPT.format(root=root))
    os.chmod(ref.create_script, 0o755)
    return root


def _create_ours(s, i):
    """One create; an admission refusal (a busy machine) is retried and not
    counted, since admission is not what this row measures."""
    for _ in range(100):
        t0 = time.perf_counter()
        resp = json.loads(s.call("create", {"name": f"new-{i}"}))
        took = time.perf_counter() - t0
        if resp.get("ok"):
            return took
        if not resp.get("error", "").startswith("admission denied: cpu"):
            raise RuntimeError(resp)
        time.sleep(0.2)
    raise Skip("admission refused every create: the machine is too busy")


@row("create", order=61)
def create_row(ctx):
    s = _store_agent(ctx)
    s.call("settings-set", {"admission_threshold_pct": 95})
    _reference_create_root(ctx)
    theirs_client = ctx.reference_client()
    line = json.dumps({"op": "create", "params": {"name": "ref"}}).encode() + b"\n"
    counter = iter(range(10 ** 6))
    ours, theirs = [], []

    def ref_create():
        out = clients.call(theirs_client, line, subsystem="convocate-create")
        if b'"ok":true' not in out:
            raise RuntimeError(f"reference create: {out[:200]!r}")

    n = ctx.n(50, 300)
    for _ in range(5):
        _create_ours(s, next(counter))
        ref_create()
    for _ in range(n):
        ours.append(_create_ours(s, next(counter)))
        theirs.append(clients.timed(ref_create))
    return Result("create (paramiko, fresh channel)", dist(ours), dist(theirs),
                  "mkdir + cp skel + metadata write with sync and mv, /bin/sh under OpenSSH",
                  note="goal p50 ≤ 5 ms; ours also validates, checks claims, takes the "
                       "session lock, runs admission (the host sample, no engine query without "
                       "per-session limits) and publishes container.created; 3 fsyncs each "
                       "side; admission refusals retried, not counted")
