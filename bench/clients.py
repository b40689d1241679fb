"""Clients the rows drive both servers with: paramiko (one connection, a
fresh channel per call, as the shell does), a C client on libssh
(bench/rpcclient.c: the same, timed in C) and OpenSSH's ssh through a
ControlMaster. The same client code runs against convocate and the
reference, so client costs cancel out in the ratios."""
import json
import os
import subprocess
import time

from lib import paramiko_rpc

PING = json.dumps({"op": "ping", "params": None}).encode() + b"\n"


def connect(port, key, user, known_hosts):
    """One persistent paramiko connection to loopback, TCP_NODELAY on
    (without it both servers would wait for delayed ACKs)."""
    return paramiko_rpc.connect("127.0.0.1", port, key, known_hosts, user=user, timeout=None)


def call(client, line, subsystem=paramiko_rpc.RPC_SUBSYSTEM):
    """One request on a fresh channel; returns the response bytes."""
    return paramiko_rpc.raw_call(client, line, subsystem=subsystem)


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def side_by_side(fns, n, warmup=20, gap_s=0.0):
    """Calls each fn in turn, n rounds, and returns one list of seconds per
    fn: interleaving keeps a noisy machine's bad moments from landing on one
    side only. gap_s: idle time before every call."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples = [[] for _ in fns]
    for _ in range(n):
        for i, fn in enumerate(fns):
            if gap_s:
                time.sleep(gap_s)
            samples[i].append(timed(fn))
    return samples


class Mux:
    """An OpenSSH ControlMaster to one server; call() runs `ssh -s` through it."""

    def __init__(self, port, key, user, known_hosts, ctl):
        self.dest = f"{user}@127.0.0.1"
        self.base = ["ssh", "-p", str(port), "-i", key, "-o", "IdentitiesOnly=yes",
                     "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known_hosts}",
                     "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR", "-S", ctl]
        self.master = subprocess.Popen(self.base + ["-M", "-N", self.dest])
        deadline = time.monotonic() + 10
        while not os.path.exists(ctl) and time.monotonic() < deadline:
            time.sleep(0.05)

    def call(self, data=PING, subsystem="convocate-agent-rpc"):
        r = subprocess.run(self.base + [self.dest, "-s", subsystem], input=data,
                           capture_output=True)
        assert r.returncode == 0 and r.stdout, r.stderr
        return r.stdout

    def close(self):
        subprocess.run(self.base + ["-O", "exit", self.dest], capture_output=True)
        self.master.wait(timeout=10)


class CClient:
    """bench/rpcclient.c on one persistent connection: call() sends a
    request on a fresh channel and returns the answer's first line;
    last_s is that call's time as the C client measured it, without the
    pipe to this Python or its pauses."""

    def __init__(self, prog, port, key, user, known_hosts):
        self.proc = subprocess.Popen([prog, str(port), user, key, known_hosts],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.last_s = None

    def call(self, line):
        self.proc.stdin.write(line)
        self.proc.stdin.flush()
        out = self.proc.stdout.readline()
        assert b"\t" in out, f"rpcclient ended (exit {self.proc.poll()})"
        us, answer = out.split(b"\t", 1)
        self.last_s = int(us) / 1e6
        return answer

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
