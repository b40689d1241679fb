"""RPC rows: ping round trips next to the OpenSSH reference, and where the
reference's time goes."""
import json
import os
import random
import statistics
import time

import clients
import reference
from registry import Result, dist, row

REF = "OpenSSH sshd + C responder, user with /bin/sh"


def _pings(ctx):
    ours, theirs = ctx.ours_client(), ctx.reference_client()
    return (lambda: clients.call(ours, clients.PING),
            lambda: clients.call(theirs, clients.PING))


@row("ping, paramiko, fresh channel per call", order=20)
def ping_paramiko(ctx):
    a, b = clients.side_by_side(_pings(ctx), ctx.n(500, 2000))
    return Result("ping, paramiko, fresh channel per call", dist(a), dist(b), REF,
                  note="one persistent connection per server, calls interleaved ours/theirs")


@row("ping after >= 1 s idle", order=30)
def ping_after_idle(ctx):
    a, b = clients.side_by_side(_pings(ctx), ctx.n(10, 60), warmup=2, gap_s=1.05)
    return Result("ping after ≥ 1 s idle", dist(a), dist(b), REF,
                  note="1.05 s of quiet before every call (the capacity sample's age passes 1 s)")


def _line(op, params=None):
    return json.dumps({"op": op, "params": params}).encode() + b"\n"


class _Paramiko:
    """A paramiko connection as the mixed load drives it: call() returns the
    answer, and ping() the ping's seconds as timed here."""

    def __init__(self, client):
        self.client = client

    def call(self, line):
        return clients.call(self.client, line)

    def ping(self):
        return clients.timed(lambda: self.call(clients.PING))


class _C:
    """The same over bench/rpcclient.c, the ping timed by the C client."""

    def __init__(self, client):
        self.client = client

    def call(self, line):
        return self.client.call(line)

    def ping(self):
        self.client.call(clients.PING)
        return self.client.last_s


def _mixed_load(ctx, ours, theirs):
    """Pings interleaved with list, get and create on the same connection,
    each call 10-50 ms after the one before: a modest rate, not saturation.
    The reference gets the same lines at the same spacing (its responder
    answers every line as it answers a ping). Returns both sides' ping
    seconds."""
    rng = random.Random(13)
    made = [json.loads(ours.call(_line("create", {"name": "bench-mix-0"})))]
    uuid = made[0].get("result", {}).get("uuid") if made[0].get("ok") else None
    a, b = [], []
    for i in range(ctx.n(200, 1000)):
        if i % 20 == 19:
            other = _line("create", {"name": f"bench-mix-{i}"})
        elif i % 2 == 0 or uuid is None:
            other = _line("list")
        else:
            other = _line("get", {"id": uuid})
        for client, samples in ((ours, a), (theirs, b)):
            time.sleep(rng.uniform(0.010, 0.050))
            samples.append(client.ping())
            time.sleep(rng.uniform(0.010, 0.050))
            out = client.call(other)
            if client is ours and other.startswith(b'{"op": "create"'):
                made.append(json.loads(out))
    for resp in made:
        if resp.get("ok"):
            ours.call(_line("delete", {"id": resp["result"]["uuid"]}))
    return a, b


@row("ping in a mixed, spaced load", order=35)
def ping_mixed(ctx):
    a, b = _mixed_load(ctx, _Paramiko(ctx.ours_client()), _Paramiko(ctx.reference_client()))
    return Result("ping in a mixed load (list/get/create between, 10–50 ms apart)", dist(a),
                  dist(b), REF, note="goal p99 ≤ 3 ms; one paramiko connection per server; "
                                     "a create every 20th call on ours")


@row("ping in a mixed, spaced load, C client", order=36)
def ping_mixed_c(ctx):
    """The same load from a C client on libssh (bench/rpcclient.c), as the
    shell's own client calls: each ping timed in C, so the figures hold no
    pauses of the Python that drives the load."""
    prog = reference.build(ctx.work, "rpcclient", libs=("-lssh",))
    a, r = ctx.agent, ctx.reference
    ours = clients.CClient(prog, a.port, a.client_key, "claude", a.known_hosts)
    theirs = clients.CClient(prog, r.port, a.client_key, r.user, r.known_hosts)
    ctx.on_close(ours.close)
    ctx.on_close(theirs.close)
    x, y = _mixed_load(ctx, _C(ours), _C(theirs))
    return Result("ping in a mixed load, C client (libssh, timed in C)", dist(x), dist(y), REF,
                  note="goal p99 ≤ 3 ms; the row above's load and spacing from "
                       "bench/rpcclient.c, one connection per server, a fresh channel per "
                       "call; a create every 20th call on ours")


@row("ping, OpenSSH client via ControlMaster", order=40)
def ping_mux(ctx):
    a, r = ctx.agent, ctx.reference
    ours = clients.Mux(a.port, a.client_key, "claude", a.known_hosts,
                       os.path.join(ctx.work, "mux-ours"))
    theirs = clients.Mux(r.port, a.client_key, r.user, r.known_hosts,
                         os.path.join(ctx.work, "mux-ref"))
    try:
        x, y = clients.side_by_side([ours.call, theirs.call], ctx.n(50, 200), warmup=5)
    finally:
        ours.close()
        theirs.close()
    return Result("ping, OpenSSH `ssh -s` via ControlMaster", dist(x), dist(y), REF,
                  note="includes starting the ssh client process per call, on both sides")


@row("reference diagnosis", order=90)
def reference_diagnosis(ctx):
    """Where one reference channel's time goes: the processes it runs
    (counted with strace on sshd), what spawning them costs without sshd,
    and the same reference logged in as root (the old, misleading setup)."""
    r = ctx.reference
    mine = ctx.reference_client()
    honest = clients.side_by_side([lambda: clients.call(mine, clients.PING)], ctx.n(200, 500))[0]
    spawn = reference.spawn_cost(ctx.work, r.responder, ctx.n(200, 500))
    sec = "Where the reference's time goes"
    p50 = statistics.median(honest) * 1000
    sp50 = statistics.median(spawn) * 1000
    ctx.note(sec, f"- Honest reference, one ping on a fresh channel: p50 {p50:.2f} ms "
                  f"(n={len(honest)}).")
    ctx.note(sec, f"- Of that, the processes (`/bin/sh -c responder` spawned, request written, "
                  f"answer read, reaped; bench/spawncost.c, no sshd): p50 {sp50:.2f} ms. The rest, "
                  f"~{max(p50 - sp50, 0):.2f} ms, is sshd's own work per channel and the channel's "
                  f"SSH round trips (open, subsystem request, data, EOF, close), which convocate "
                  f"pays too; not broken down further.")
    execs = reference.count_execs(reference.descendants(r.pid()), 20,
                                  lambda: clients.call(mine, clients.PING),
                                  os.path.join(ctx.work, "strace.out"))
    if execs:
        forks, per, top = execs
        ctx.note(sec, f"- Per channel as `{r.user}` (strace -f on sshd, 20 channels): "
                      f"{forks:.1f} processes created, {per:.1f} programs exec'd ("
                      + ", ".join(f"{p} ×{c:.1f}" for p, c in top) + ").")
    ours = ctx.ours_client()
    execs = reference.count_execs(reference.threads(ctx.agent.proc.pid), 20,
                                  lambda: clients.call(ours, clients.PING),
                                  os.path.join(ctx.work, "strace-ours.out"))
    if execs:
        forks, per, _ = execs
        ctx.note(sec, f"- convocate, the same 20 channels (strace -f on every agent thread): "
                      f"{forks:.1f} threads or processes created, {per:.1f} programs exec'd per "
                      f"channel; the op runs in the agent already running.")
    _root_comparison(ctx, sec, p50)
    return []  # no table row: the section below the table


def _root_comparison(ctx, sec, honest_p50):
    """The setup the old bench used: the same sshd, logged in as root, whose
    shell (bash) sources ~/.bashrc for a command sshd starts."""
    if not os.path.exists("/root/.bashrc"):
        return
    try:
        root = ctx.reference_client(user="root")
    except Exception as e:  # root login may be disabled on a machine
        ctx.note(sec, f"- As root: not measured ({e}).")
        return
    n = ctx.n(10, 30)
    slow = clients.side_by_side([lambda: clients.call(root, clients.PING)], n, warmup=2)[0]
    rp50 = statistics.median(slow) * 1000
    execs = reference.count_execs(reference.descendants(ctx.reference.pid()), 3,
                                  lambda: clients.call(root, clients.PING),
                                  os.path.join(ctx.work, "strace-root.out"))
    what = ""
    if execs:
        forks, per, top = execs
        what = f"; per channel {forks:.0f} processes created, {per:.0f} programs exec'd (" + \
            ", ".join(f"{p} ×{c:.0f}" for p, c in top) + ", ...)"
    ctx.note(sec, f"- The same sshd logged in as root (login shell bash, which sources "
                  f"/root/.bashrc for every command sshd starts): p50 {rp50:.1f} ms (n={n}), "
                  f"{rp50 / honest_p50:.0f}× the honest reference{what}. The old bench measured "
                  f"this; its ratios said nothing about convocate.")
