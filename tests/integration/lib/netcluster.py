"""A shell and several agents as separate hosts on one machine: each agent
runs in its own network namespace behind a veth pair on a private bridge
(shell NET.1, agents .2, .3, ...; NET is 10.77.0 unless
CONVOCATE_TEST_NET names another /24 prefix, so that two runs on one machine
can each have their own), all paired by the real
`convocate-host init-shell` / `init-agent` under their own roots. Traffic only
ever goes to these addresses, which this module creates and removes. The
fixture net (conftest.py) makes one with two agents, all connected."""
import json
import os
import shutil
import subprocess
import tempfile
import time

from lib.common import remove_tree, AGENT_BIN, HOST_BIN, SHELL_BIN, clean_env, docker, free_port, stop_process
from lib.feed_lines import FeedLines
from lib.netns import add_bridge, add_namespace, wait_feed, wait_listening
from lib.shell_cli import convocate
from lib.wait import wait_until

NET = os.environ.get("CONVOCATE_TEST_NET", "10.77.0")
SHELL_IP = f"{NET}.1"


def sh(*argv, check=True):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"{argv}: rc={r.returncode}\n{r.stdout}{r.stderr}")
    return r


class NetAgent:
    """One agent host: a namespace, a root, a convocate-agent serve in it."""

    def __init__(self, cluster, index, image):
        self.cluster = cluster
        self.ip = f"{NET}.{index + 2}"
        self.ns = f"{cluster.tag}a{index}"
        self.veth = f"{cluster.tag}v{index}"  # the shell-side end, on the bridge
        self.root = os.path.join(cluster.base, f"agent{index}")
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.root, "agent.stderr")
        os.makedirs(self.root)
        add_namespace(self.ns, self.veth, cluster.bridge, self.ip)
        sh(HOST_BIN, "init-agent", "--root", cluster.shell_root, "--agent-root", self.root,
           "--agent-addr", f"{self.ip}:{self.port}",
           "--shell-host", f"{SHELL_IP}:{cluster.status_port}")
        with open(os.path.join(self.root, "etc/convocate-agent/agent-id")) as f:
            self.agent_id = f.read().strip()
        with open(os.path.join(self.root, "etc/convocate-agent/current-image"), "w") as f:
            f.write(image + "\n")
        # OpenSSH wants a 0600 key; SPEC 4 gives the shell's copy 0640.
        self.key = os.path.join(cluster.base, f"key-{self.agent_id}")
        shutil.copyfile(os.path.join(cluster.shell_root, "etc/convocate/agent-keys",
                                     self.agent_id, "shell_to_agent_ed25519_key"), self.key)
        os.chmod(self.key, 0o600)
        self.known_hosts = os.path.join(cluster.base, f"known-{self.agent_id}")
        with open(os.path.join(self.root, "etc/convocate-agent/ssh_host_ed25519_key.pub")) as f:
            kind, blob = f.read().split()[:2]
        with open(self.known_hosts, "w") as f:
            f.write(f"[{self.ip}]:{self.port} {kind} {blob}\n")

    def start(self):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, AGENT_BIN, "serve", "--root", self.root,
             "--listen", f"{self.ip}:{self.port}", "-v"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=clean_env())
        log.close()
        wait_listening(self.proc, self.ip, self.port, 15, f"the agent in {self.ns} to listen",
                       self.log)

    def stop(self):
        stop_process(self.proc)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def link(self, up):
        sh("ip", "link", "set", self.veth, "up" if up else "down")

    def rpc(self, op, params=None, timeout=60):
        """One request through OpenSSH with the key init-agent minted for the shell."""
        argv = ["ssh", "-p", str(self.port), "-i", self.key, "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=10", f"claude@{self.ip}", "-s", "convocate-agent-rpc"]
        line = json.dumps({"op": op, "params": params}).encode() + b"\n"
        r = subprocess.run(argv, input=line, capture_output=True, timeout=timeout)
        assert r.returncode == 0, f"rpc {op}: {r.stderr!r}\n{self.log()}"
        resp = json.loads(r.stdout)
        assert resp["ok"] is True, f"rpc {op} {params}: {resp}"
        return resp["result"]

    def cleanup(self):
        self.stop()
        ids = docker("ps", "-aq", "--filter", f"label=convocate.agent={self.agent_id}",
                     check=False).stdout.split()
        if ids:
            docker("rm", "-f", *ids, check=False)
        sh("ip", "link", "del", self.veth, check=False)
        sh("ip", "netns", "del", self.ns, check=False)


class NetCluster:
    """The shell (root namespace, on the bridge) with its status-serve."""

    def __init__(self, n_agents, image):
        self.tag = f"cv{os.getpid() % 10000}{int(time.monotonic() * 1000) % 1000}"
        self.base = tempfile.mkdtemp(prefix="cvn-")  # short: the feed is a unix socket
        self.shell_root = os.path.join(self.base, "shell")
        # The default place under the shell's root, where the TUI looks for it.
        self.feed = os.path.join(self.shell_root, "run/convocate/status.sock")
        self.bridge = f"{self.tag}br"
        self.status_port = free_port()
        self.status_proc = None
        self.status_log = os.path.join(self.base, "status-serve.log")
        self.agents = []
        os.makedirs(self.shell_root)
        add_bridge(self.bridge, SHELL_IP)
        sh(HOST_BIN, "init-shell", "--root", self.shell_root)
        for i in range(n_agents):
            self.agents.append(NetAgent(self, i, image))

    def start_status(self):
        log = open(self.status_log, "a")
        self.status_proc = subprocess.Popen(
            [SHELL_BIN, "--root", self.shell_root, "status-serve",
             "--listen", f"{SHELL_IP}:{self.status_port}", "-v"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=clean_env())
        log.close()
        wait_feed(self.status_proc, self.feed, 15, self.log)

    def stop_status(self):
        stop_process(self.status_proc)

    def wait_connected(self, timeout=30):
        """Until every agent says it holds its connection to the shell."""
        for a in self.agents:
            wait_until(lambda: "status: connected to the shell" in a.log(), timeout,
                       f"the agent in {a.ns} to connect to the shell", detail=a.log)

    def log(self):
        with open(self.status_log, errors="replace") as f:
            return f.read()

    def convocate(self, *args, timeout=90):
        return convocate(self.shell_root, *args, timeout=timeout)

    def convocate_ok(self, *args):
        """convocate(...) that must succeed."""
        r = self.convocate(*args)
        assert r.returncode == 0, f"{args}: {r.stderr}"
        return r

    def cleanup(self):
        self.stop_status()
        for a in self.agents:
            a.cleanup()
        sh("ip", "link", "del", self.bridge, check=False)
        remove_tree(self.base)


class Feed(FeedLines):
    """A subscriber of status-serve's local feed."""

    def next(self, timeout):
        """The next event; None when none came within timeout s."""
        try:
            line = self.line(timeout)
        except EOFError:
            raise AssertionError("the feed closed") from None
        return None if line is None else json.loads(line)

    def until(self, pred, timeout=30, what="an event"):
        """Reads events until pred(event); returns (event, every event read)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            ev = self.next(max(0.0, deadline - time.monotonic()))
            if ev is None:
                raise AssertionError(f"no {what} within {timeout}s; saw {len(seen)}: {seen[:3]} ... {seen[-3:]}")
            seen.append(ev)
            if pred(ev):
                return ev, seen
