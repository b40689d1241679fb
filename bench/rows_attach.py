"""Attach rows: the memory 100 concurrent attaches cost, next to 100
`docker exec -it -u claude C tmux attach-session -t claude` under ptys (what
an operator would otherwise run), and whether 100 attach/detach cycles leave
the agent any bigger.

Counted on our side: the agent and every process it spawned (it spawns none
for an attach: the exec goes through the Engine API); on the reference's:
the 100 docker CLI processes and their descendants. Counted on neither side:
the tmux clients inside the container (one per attach on both sides), and
dockerd's and the container shim's own growth (both sides drive the same
engine exec and stream copy). USS and PSS from /proc/PID/smaps_rollup."""
import fcntl
import json
import os
import pty
import struct
import subprocess
import termios
import time

from lib import paramiko_rpc
from lib.procfs import descendants
from registry import Result, Skip, row, value
from rows_memory import smaps_rollup
from rows_start import rpc, rpc_ok

REF = "100 × `docker exec -it … tmux attach` under ptys"
N_ATTACH = 100
# Quiet before each reading of the cycles row, as make soak reads: two of the
# agent's 1 s sampler ticks, after which it has trimmed its heap at rest
# (agent/memory_rest.c), so both readings see the agent as it stays.
REST_S = 4


def memory_of(pids):
    """Summed USS and PSS (MB) over pids and their descendants."""
    total = {"USS": 0.0, "PSS": 0.0, "n": 0}
    for top in pids:
        for p in descendants(top):
            try:
                m = smaps_rollup(p)
            except OSError:
                continue  # gone meanwhile
            total["USS"] += m["USS"]
            total["PSS"] += m["PSS"]
            total["n"] += 1
    return total


def fd_count(pid):
    """Sockets, pipes and event fds: what a relay holds. Files are left out:
    the activity watcher opens session spools for a moment, often."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith(("socket:", "pipe:", "anon_inode:"))
        except OSError:
            pass
    return n


def connect(agent):
    return paramiko_rpc.open_transport("127.0.0.1", agent.port, agent.client_key, timeout=30)


def attach(transport, uuid, cols=120, rows=40):
    """One operator on the session: the channel once the tmux screen came."""
    ch = transport.open_session(timeout=30)
    ch.settimeout(30)
    ch.invoke_subsystem(paramiko_rpc.ATTACH_SUBSYSTEM)
    ch.sendall(json.dumps({"id": uuid, "cols": cols, "rows": rows}).encode() + b"\n")
    got = b""
    while b"\x1b[" not in got:  # tmux's first frame
        chunk = ch.recv(65536)
        if not chunk:
            raise AssertionError(f"attach closed early: {got[-300:]!r}")
        got += chunk
    ch.settimeout(0.0)
    return ch


def drain(chans):
    """Reads what tmux sent meanwhile, so no relay waits on a full window."""
    for ch in chans:
        try:
            while ch.recv(65536):
                pass
        except (OSError, TimeoutError):
            pass


def wait_attached(ctx_client, uuid, n, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = rpc_ok(ctx_client, "get", {"id": uuid})["attached"]
        if got == n:
            return
        time.sleep(0.2)
    raise AssertionError(f"attached never reached {n}")


def steady_fds(pid, timeout=10):
    """The fd count once two reads half a second apart agree."""
    deadline = time.monotonic() + timeout
    n = fd_count(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        m = fd_count(pid)
        if m == n:
            break
        n = m
    return n


def settle_fds(pid, want, timeout=30):
    """The fd count once the ending workers closed their streams."""
    deadline = time.monotonic() + timeout
    n = fd_count(pid)
    while n != want and time.monotonic() < deadline:
        time.sleep(0.1)
        n = fd_count(pid)
    return n


def ours_concurrent(ctx, client, uuid):
    pid = ctx.agent.proc.pid
    transports, chans = [], []
    try:
        for _ in range(N_ATTACH):
            t = connect(ctx.agent)
            transports.append(t)
            chans.append(attach(t, uuid))
            drain(chans[-1:])
        wait_attached(client, uuid, N_ATTACH)
        drain(chans)
        time.sleep(1)  # the last relays' first frames settle
        drain(chans)
        mem = memory_of([pid])
        mem["threads"] = len(os.listdir(f"/proc/{pid}/task"))
        mem["fds"] = fd_count(pid)
    finally:
        for t in transports:
            t.close()
    wait_attached(client, uuid, 0)
    return mem


def ref_concurrent(container):
    procs, masters = [], []
    try:
        for _ in range(N_ATTACH):
            master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
            p = subprocess.Popen(["docker", "exec", "-it", "-u", "claude", container, "tmux",
                                  "attach-session", "-t", "claude"],
                                 stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
            os.close(slave)
            os.set_blocking(master, False)
            procs.append(p)
            masters.append(master)
            _read_until_frame(master, p)
        time.sleep(1)
        for m in masters:
            _drain_fd(m)
        return memory_of([p.pid for p in procs])
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for m in masters:
            os.close(m)


def _read_until_frame(master, proc, timeout=60):
    got = b""
    deadline = time.monotonic() + timeout
    while b"\x1b[" not in got:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"docker exec -it: no tmux frame: {got[-300:]!r}")
        try:
            got += os.read(master, 65536)
        except BlockingIOError:
            time.sleep(0.01)


def _drain_fd(fd):
    try:
        while os.read(fd, 65536):
            pass
    except (BlockingIOError, OSError):
        pass


def _session(ctx):
    if not ctx.pair.agent.image:
        raise Skip("no session image (CONVOCATE_TEST_IMAGE)")
    client = ctx.ours_client()
    uuid = rpc_ok(client, "create", {"name": "bench-attach"})["uuid"]
    rpc_ok(client, "restart", {"id": uuid})
    return client, uuid


@row("100 concurrent attaches: memory", order=60)
def attach_memory(ctx):
    client, uuid = _session(ctx)
    try:
        before = memory_of([ctx.agent.proc.pid])
        ours = ours_concurrent(ctx, client, uuid)
        theirs = ref_concurrent(f"convocate-session-{uuid}")
    finally:
        rpc(client, "delete", {"id": uuid})  # best effort: the row has its figures
    note = (f"agent + descendants ({ours['n']} process, {ours['threads']} threads, "
            f"{ours['fds']} fds; {before['USS']:.1f} MB USS before) vs the 100 docker CLI "
            f"processes; the container's tmux clients and dockerd counted on neither side")
    return [Result(f"100 attaches: {k}", value(ours[k], "MB"), value(theirs[k], "MB"), REF,
                   note=note if k == "USS" else "goal ≤ 60 MB" if k == "PSS" else "")
            for k in ("USS", "PSS")]


def _at_rest(client, uuid, pid):
    """The agent's USS (MB) once no operator is attached and it has been
    quiet for REST_S."""
    wait_attached(client, uuid, 0)
    time.sleep(REST_S)
    return memory_of([pid])["USS"]


@row("100 attach/detach cycles: growth", order=61)
def attach_cycles(ctx):
    """Two batches of cycles after three warm ones: the first batch after
    the agent started, and the next, which shows whether the growth goes
    on. Half end by Ctrl-b d, half by the operator's connection closing."""
    client, uuid = _session(ctx)
    pid = ctx.agent.proc.pid
    n = ctx.n(100, 300)
    try:
        for _ in range(3):  # the first attaches: the engine client, the first threads
            _cycle(ctx, uuid)
        mem = [_at_rest(client, uuid, pid)]
        fds0 = steady_fds(pid)
        for _ in range(2):
            for i in range(n):
                _cycle(ctx, uuid, detach=i % 2 == 0)
            mem.append(_at_rest(client, uuid, pid))
        fds1 = settle_fds(pid, fds0)
    finally:
        rpc(client, "delete", {"id": uuid})  # best effort: the row has its figures
    rest = f"each read after {REST_S} s at rest"
    return [Result(f"{n} attach/detach cycles after start: USS growth",
                   value(mem[1] - mem[0], "MB"), None, "goal: none",
                   note=f"{mem[0]:.2f} → {mem[1]:.2f} MB, {rest}; the heap and the thread "
                        f"stacks reach their working size in these"),
            Result(f"the next {n} attach/detach cycles: USS growth",
                   value(mem[2] - mem[1], "MB"), None, "goal: none",
                   note=f"{mem[1]:.2f} → {mem[2]:.2f} MB, {rest}"),
            Result(f"{2 * n} attach/detach cycles: fd growth", value(fds1 - fds0, "fds"), None,
                   "goal: none", note=f"{fds0} → {fds1} open fds")]


def _cycle(ctx, uuid, detach=True):
    t = connect(ctx.agent)
    try:
        ch = attach(t, uuid)
        if detach:
            ch.sendall(b"\x02d")  # Ctrl-b d
            ch.settimeout(30)
            try:
                while ch.recv(65536):
                    pass
            except (OSError, TimeoutError):
                pass
    finally:
        t.close()
