#!/usr/bin/env python3
"""RPC latency of convocate-agent next to OpenSSH.

1. ping round trip over one persistent SSH connection, a fresh channel per
   call, measured two ways with the same client against both servers:
     - paramiko: one Transport, open_session() + invoke_subsystem per call;
     - OpenSSH: `ssh -S <ControlMaster socket> -s <subsystem>` per call.
   The reference server is OpenSSH's sshd whose Subsystem is a trivial
   responder (reads the line, prints one fixed response line).
2. `list` latency with 1, 100 and 1000 sessions on disk (paramiko client).

Prints a table and writes it as Markdown. Ratios are convocate / reference:
below 1 means convocate is faster."""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import paramiko  # noqa: E402

from conftest import Agent, free_port, wait_for_port  # noqa: E402

PING = json.dumps({"op": "ping", "params": None}).encode() + b"\n"
LIST = json.dumps({"op": "list", "params": None}).encode() + b"\n"


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def summary(values):
    return {"p50": pct(values, 50) * 1000, "p99": pct(values, 99) * 1000, "n": len(values)}


class ReferenceSshd:
    """OpenSSH's sshd on loopback with a Subsystem that answers one line."""

    def __init__(self, workdir, client_pub):
        self.dir = workdir
        self.port = free_port()
        host_key = os.path.join(workdir, "ref_host_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
        responder = os.path.join(workdir, "responder.sh")
        with open(responder, "w") as f:
            f.write("#!/bin/sh\nread -r line\n"
                    "echo '{\"ok\":true,\"result\":{\"agent_id\":\"reference\"}}'\n")
        os.chmod(responder, 0o755)
        auth = os.path.join(workdir, "ref_authorized_keys")
        shutil.copy(client_pub, auth)
        os.chmod(auth, 0o600)
        conf = os.path.join(workdir, "sshd_config")
        with open(conf, "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {workdir}/sshd.pid
AuthorizedKeysFile {auth}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem convocate-agent-rpc {responder}
""")
        os.makedirs("/run/sshd", exist_ok=True)
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf],
                                     stderr=open(os.path.join(workdir, "sshd.log"), "w"))
        if not wait_for_port(self.port, self.proc):
            raise RuntimeError("reference sshd did not start; see " + workdir + "/sshd.log")
        with open(host_key + ".pub") as f:
            kind, blob = f.read().split()[:2]
        self.known_hosts = os.path.join(workdir, "ref_known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        self.user = os.environ.get("USER") or "root"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def paramiko_client(port, key, user, known_hosts, nodelay=False):
    """paramiko leaves Nagle on by default; nodelay turns it off, which
    shows each server without the client's own wait for delayed ACKs."""
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", port=port, username=user,
                   pkey=paramiko.Ed25519Key.from_private_key_file(key),
                   allow_agent=False, look_for_keys=False)
    if nodelay:
        client.get_transport().sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


def call(transport, line):
    ch = transport.open_session()
    ch.invoke_subsystem("convocate-agent-rpc")
    ch.sendall(line)
    ch.shutdown_write()
    out = b""
    while True:
        chunk = ch.recv(65536)
        if not chunk:
            break
        out += chunk
    ch.close()
    return out


def time_calls(fn, n, warmup=20):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def openssh_mux_calls(port, key, user, known_hosts, workdir, n, tag):
    ctl = os.path.join(workdir, f"mux-{tag}")
    base = ["ssh", "-p", str(port), "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "LogLevel=ERROR", "-S", ctl]
    master = subprocess.Popen(base + ["-M", "-N", f"{user}@127.0.0.1"])
    deadline = time.monotonic() + 10
    while not os.path.exists(ctl) and time.monotonic() < deadline:
        time.sleep(0.05)

    def one():
        r = subprocess.run(base + [f"{user}@127.0.0.1", "-s", "convocate-agent-rpc"], input=PING,
                           capture_output=True)
        assert r.returncode == 0 and r.stdout, r.stderr

    try:
        return time_calls(one, n)
    finally:
        subprocess.run(base + ["-O", "exit", f"{user}@127.0.0.1"], capture_output=True)
        master.wait(timeout=10)


def create_one(transport, name):
    """One create through the RPC, waited out while CPU admission refuses
    (a busy 2-core machine)."""
    line = json.dumps({"op": "create", "params": {"name": name}}).encode() + b"\n"
    for _ in range(120):
        resp = json.loads(call(transport, line))
        if resp["ok"] or not resp["error"].startswith("admission denied: cpu"):
            break
        time.sleep(1)
    assert resp["ok"], resp
    return resp["result"]


def add_sessions(agent, model, count):
    """More sessions on disk, shaped like one the agent made: list reads the
    disk, and 1000 creates (each with its 200 ms admission sample) would
    measure admission, not list."""
    homes = os.path.join(agent.root, "home", "claude")
    with open(os.path.join(homes, model["uuid"], "session.json")) as f:
        template = json.load(f)
    for i in range(count):
        sid = str(uuid.uuid4())
        os.makedirs(os.path.join(homes, sid), mode=0o700)
        with open(os.path.join(homes, sid, "session.json"), "w") as f:
            json.dump({**template, "uuid": sid, "name": f"bench-{i}"}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results.md")
    ap.add_argument("--pings", type=int, default=500)
    ap.add_argument("--lists", type=int, default=50)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="convocate-bench-")
    root = os.path.join(work, "agent")
    os.makedirs(root)
    agent = Agent(root, os.environ.get("CONVOCATE_TEST_IMAGE", ""))
    agent.start()
    ref = ReferenceSshd(work, agent.client_key + ".pub")
    rows = []
    try:
        for nodelay in (False, True):
            ours = paramiko_client(agent.port, agent.client_key, "claude", agent.known_hosts,
                                   nodelay)
            theirs = paramiko_client(ref.port, agent.client_key, ref.user, ref.known_hosts,
                                     nodelay)
            a = summary(time_calls(lambda: call(ours.get_transport(), PING), args.pings))
            b = summary(time_calls(lambda: call(theirs.get_transport(), PING), args.pings))
            rows.append((f"ping, paramiko{', TCP_NODELAY' if nodelay else ''}, channel per call",
                         a, b))
            if not nodelay:
                ours.close()
                theirs.close()
        n_mux = max(50, args.pings // 5)
        a = summary(openssh_mux_calls(agent.port, agent.client_key, "claude", agent.known_hosts,
                                      work, n_mux, "ours"))
        b = summary(openssh_mux_calls(ref.port, agent.client_key, ref.user, ref.known_hosts,
                                      work, n_mux, "ref"))
        rows.append(("ping, OpenSSH ControlMaster", a, b))

        t = ours.get_transport()
        model = create_one(t, "bench-model")
        have = 1
        list_rows = []
        for target in (1, 100, 1000):
            add_sessions(agent, model, target - have)
            have = target
            s = summary(time_calls(lambda: call(t, LIST), args.lists, warmup=3))
            list_rows.append((target, s))
        ours.close()
        theirs.close()
    finally:
        ref.stop()
        agent.cleanup()
        shutil.rmtree(work, ignore_errors=True)

    lines = ["# Benchmarks", "", f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{os.cpu_count()} cores. Ratio = convocate / reference (below 1: convocate faster).",
             "", "## RPC ping round trip (ms)", "",
             "| client | convocate p50 | p99 | OpenSSH sshd+subsystem p50 | p99 | ratio p50 | ratio p99 |",
             "|---|---|---|---|---|---|---|"]
    for name, a, b in rows:
        lines.append(f"| {name} (n={a['n']}) | {a['p50']:.2f} | {a['p99']:.2f} | {b['p50']:.2f} | "
                     f"{b['p99']:.2f} | {a['p50'] / b['p50']:.3g} | {a['p99'] / b['p99']:.3g} |")
    lines += ["", "## `list` latency by sessions on disk (ms, paramiko, channel per call)", "",
              "| sessions | p50 | p99 |", "|---|---|---|"]
    for count, s in list_rows:
        lines.append(f"| {count} | {s['p50']:.2f} | {s['p99']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
