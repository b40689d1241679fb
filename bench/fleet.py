"""A fleet on one machine for the fleet row (rows_fleet.py): one shell and
many agents, each `convocate-agent serve` in its own network namespace behind
a veth on a private bridge, all paired by the real `convocate-host
init-shell` / `init-agent` and dialling the shell's `convocate status-serve`
on the bridge. Every agent gets sessions through the `create` RPC (metadata
only, no container); the agents share the machine's dockerd over its unix
socket for their engine watch.

The /24 comes from CONVOCATE_TEST_NET (default 10.82.0, never the tests'
10.77.0): the shell is NET.1, agents NET.2 and up, so at most 250 agents.
Every resource is recorded before it is made, and cleanup() removes all of
them (processes by PID, namespaces, veths, the bridge, the temp dir) on any
path out, Ctrl-C and SIGTERM included; leftovers() says what is still
there, for the test that keeps this code honest."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from lib import paramiko_rpc
from lib.common import AGENT_BIN, HOST_BIN, SHELL_BIN, clean_env, free_port, remove_tree
from lib.netns import add_bridge, add_namespace, ip_batch, wait_feed, wait_listening
from lib.wait import wait_until

AGENT_PORT = 222  # each agent has a namespace of its own: the default port for all
MAX_AGENTS = 250
CREATE_THREADS = 4
BUSY = "admission denied: cpu"


def net_prefix():
    net = os.environ.get("CONVOCATE_TEST_NET", "10.82.0")
    parts = net.split(".")
    if len(parts) != 3 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"CONVOCATE_TEST_NET={net!r} is not a /24 prefix like 10.82.0")
    return net


def sh(*argv, check=True, timeout=120):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: rc={r.returncode}\n{r.stdout}{r.stderr}")
    return r


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class FleetAgent:
    """What the fleet knows of one agent host."""

    def __init__(self, fleet, index):
        self.index = index
        self.ip = f"{fleet.net}.{index + 2}"
        self.ns = f"{fleet.tag}a{index}"
        self.veth = f"{fleet.tag}v{index}"
        self.root = os.path.join(fleet.base, f"agent{index}")
        self.log_path = os.path.join(fleet.base, f"agent{index}.log")
        self.agent_id = None
        self.key = None  # the shell's key for this agent, 0600 for OpenSSH
        self.proc = None
        self.sessions = {}  # uuid -> (name, last_accessed), as created

    def log(self):
        return read(self.log_path)


class Fleet:
    """Fleet(n_agents, sessions_per_agent).setup() ... cleanup()."""

    def __init__(self, n_agents, sessions, image="", heartbeat_s=5):
        if not 1 <= n_agents <= MAX_AGENTS:
            raise ValueError(f"{n_agents} agents: the /24 holds 1 to {MAX_AGENTS}")
        self.net = net_prefix()
        self.shell_ip = f"{self.net}.1"
        self.n_agents, self.per_agent = n_agents, sessions
        self.image = image or "convocate:fleet-bench"  # create only records it
        self.heartbeat_s = heartbeat_s
        self.tag = f"cvf{os.getpid() % 100000}"
        self.base = tempfile.mkdtemp(prefix="cvf-")  # short: the feed is a unix socket
        self.shell_root = os.path.join(self.base, "shell")
        self.feed = os.path.join(self.shell_root, "run/convocate/status.sock")
        self.bridge = f"{self.tag}br"
        self.status_port = free_port()
        self.status_proc = None
        self.status_log = os.path.join(self.base, "status-serve.log")
        self.known_hosts = os.path.join(self.base, "known_hosts")
        self.agents = []
        self.tuis = []  # tmux server sockets started by the row
        self.bridge_made = False
        self.timings = {}
        self.refusals = 0  # admission refusals met while creating

    # ---- set-up ----------------------------------------------------------

    def setup(self):
        t0 = time.monotonic()
        self._make_bridge()
        os.makedirs(self.shell_root)
        sh(HOST_BIN, "init-shell", "--root", self.shell_root)
        for i in range(self.n_agents):
            self._make_agent(FleetAgent(self, i))
        self._write_known_hosts()
        self.timings["pair"] = time.monotonic() - t0
        self._start_status()
        t1 = time.monotonic()
        for a in self.agents:
            self._start_agent(a)
        for a in self.agents:
            self._wait_listening(a)
        self.wait_connected()
        self.timings["start"] = time.monotonic() - t1
        t2 = time.monotonic()
        self._create_sessions()
        self.timings["create"] = time.monotonic() - t2
        return self

    def _make_bridge(self):
        used = sh("ip", "-o", "-4", "addr", "show", "to", f"{self.net}.0/24").stdout.strip()
        if used:
            raise RuntimeError(f"{self.net}.0/24 is already on this machine ({used.split()[1]}); "
                               "give the fleet another prefix with CONVOCATE_TEST_NET")
        self.bridge_made = True  # recorded first: a half-made bridge is removed too
        add_bridge(self.bridge, self.shell_ip)

    def _make_agent(self, a):
        self.agents.append(a)  # recorded first, for cleanup
        os.makedirs(a.root)
        add_namespace(a.ns, a.veth, self.bridge, a.ip)
        sh(HOST_BIN, "init-agent", "--root", self.shell_root, "--agent-root", a.root,
           "--agent-addr", f"{a.ip}:{AGENT_PORT}",
           "--shell-host", f"{self.shell_ip}:{self.status_port}")
        etc = os.path.join(a.root, "etc/convocate-agent")
        with open(os.path.join(etc, "agent-id")) as f:
            a.agent_id = f.read().strip()
        with open(os.path.join(etc, "current-image"), "w") as f:
            f.write(self.image + "\n")
        with open(os.path.join(etc, "settings.json"), "w") as f:
            # The highest admission threshold there is: creates are admitted
            # on CPU like starts, and this machine is shared.
            json.dump({"heartbeat_s": self.heartbeat_s, "admission_threshold_pct": 95}, f)
        a.key = os.path.join(self.base, f"key-{a.agent_id}")
        shutil.copyfile(os.path.join(self.shell_root, "etc/convocate/agent-keys", a.agent_id,
                                     "shell_to_agent_ed25519_key"), a.key)
        os.chmod(a.key, 0o600)

    def _write_known_hosts(self):
        with open(self.known_hosts, "w") as out:
            for a in self.agents:
                pub = os.path.join(a.root, "etc/convocate-agent/ssh_host_ed25519_key.pub")
                kind, blob = read(pub).split()[:2]
                out.write(f"[{a.ip}]:{AGENT_PORT} {kind} {blob}\n")

    def _start_status(self):
        with open(self.status_log, "a") as log:
            self.status_proc = subprocess.Popen(
                [SHELL_BIN, "--root", self.shell_root, "status-serve",
                 "--listen", f"{self.shell_ip}:{self.status_port}", "-v"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=clean_env())
        wait_feed(self.status_proc, self.feed, 30, lambda: read(self.status_log))

    def _start_agent(self, a):
        # ip netns exec execs the agent: the PID is the agent's own.
        with open(a.log_path, "a") as log:
            a.proc = subprocess.Popen(
                ["ip", "netns", "exec", a.ns, AGENT_BIN, "serve", "--root", a.root,
                 "--listen", f"{a.ip}:{AGENT_PORT}", "-v"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=clean_env())

    def _wait_listening(self, a):
        wait_listening(a.proc, a.ip, AGENT_PORT, 60, f"the agent in {a.ns} to listen", a.log)

    def wait_connected(self, timeout=120):
        """Until every agent says it holds its connection to the shell."""
        def all_connected():
            return all("status: connected to the shell" in a.log() for a in self.agents)
        wait_until(all_connected, timeout, "every agent to connect to status-serve", interval=0.2,
                   detail=lambda: "\n".join(a.log()[-300:] for a in self.agents
                                            if "connected to the shell" not in a.log()))

    # ---- sessions ---------------------------------------------------------

    def connect(self, a):
        """A paramiko connection to one agent, pinned to its host key."""
        return paramiko_rpc.connect(a.ip, AGENT_PORT, a.key, self.known_hosts)

    @staticmethod
    def call(client, op, params):
        """One RPC on a fresh channel; returns the result or raises."""
        resp = paramiko_rpc.rpc(client, op, params, timeout=60, open_timeout=30)
        if resp.get("ok") is not True:
            raise RuntimeError(f"{op} {params}: {resp}")
        return resp["result"]

    def admitted(self, client, op, params, timeout=900):
        """call() again while the agent refuses admission on a busy host
        (a create is admitted on CPU like a start); the refusals are
        counted for the report."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.call(client, op, params)
            except RuntimeError as e:
                if BUSY not in str(e) or time.monotonic() > deadline:
                    raise
                self.refusals += 1
                time.sleep(0.2)

    def _create_some(self, a, count):
        """count sessions on one agent over one connection of its own."""
        client = self.connect(a)
        try:
            for _ in range(count):
                name = f"a{a.index}-s{len(a.sessions)}"
                s = self.admitted(client, "create", {"name": name})
                a.sessions[s["uuid"]] = (name, s["last_accessed"])
        finally:
            client.close()

    def _create_on(self, agents, last_round):
        """All but one session per agent, an agent at a time (paramiko
        slows to a crawl with a hundred connections open in one process);
        then, once every thread is there, one more each: the newest
        sessions, the top of the TUI's table, come from every agent."""
        for a in agents:
            self._create_some(a, self.per_agent - 1)
        last_round.wait()
        # last_accessed has whole seconds: a second's pause puts every last
        # session strictly after every earlier one.
        time.sleep(1.05)
        for a in agents:
            self._create_some(a, 1)

    def _create_sessions(self):
        groups = [g for g in (self.agents[i::CREATE_THREADS] for i in range(CREATE_THREADS)) if g]
        last_round = threading.Barrier(len(groups))
        errors = []

        def work(group):
            try:
                self._create_on(group, last_round)
            except threading.BrokenBarrierError:
                pass  # another thread failed: its error is the one to report
            except Exception as e:  # reported below, on the caller's thread
                errors.append(e)
                last_round.abort()
        threads = [threading.Thread(target=work, args=(g,), daemon=True) for g in groups]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def total_sessions(self):
        return sum(len(a.sessions) for a in self.agents)

    def convocate(self, *args, timeout=120, env_extra=None):
        """The shell's CLI on the fleet's shell root; its names cache (for
        completion) goes under the fleet's temp dir, not the user's home."""
        env = clean_env()
        env["XDG_CACHE_HOME"] = os.path.join(self.base, "cache")
        env.update(env_extra or {})
        return subprocess.run([SHELL_BIN, "--root", self.shell_root, *args], capture_output=True,
                              text=True, timeout=timeout, env=env)

    # ---- clean-up ----------------------------------------------------------

    def cleanup(self):
        for sock in self.tuis:
            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        procs = [a.proc for a in self.agents if a.proc] + [self.status_proc]
        for p in procs:  # all at once: a hundred agents stop in parallel
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in procs:
            if p is None:
                continue
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        batch = [c for a in self.agents for c in (f"link del {a.veth}", f"netns del {a.ns}")]
        if self.bridge_made:
            batch.append(f"link del {self.bridge}")
        # force: go on past a line whose link or namespace was never made.
        ip_batch(batch, force=True)
        remove_tree(self.base)  # unmounts first: each agent binds its home/claude

    def leftovers(self):
        """What of this fleet is still on the machine: [] after cleanup()."""
        left = []
        for line in sh("ip", "netns", "list").stdout.splitlines():
            if line.split() and line.split()[0].startswith(self.tag):
                left.append("netns " + line.split()[0])
        for line in sh("ip", "-o", "link").stdout.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            if name.startswith(self.tag):
                left.append("link " + name)
        for p in [a.proc for a in self.agents if a.proc] + [self.status_proc]:
            if p is not None and p.poll() is None:
                left.append(f"process {p.pid}")
        for sock in self.tuis:
            if subprocess.run(["tmux", "-L", sock, "has-session"],
                              capture_output=True).returncode == 0:
                left.append(f"tmux server {sock}")
        if os.path.exists(self.base):
            left.append("dir " + self.base)
        return left

    def __enter__(self):
        self._old_term = signal.signal(signal.SIGTERM, _term_as_interrupt)
        return self

    def __exit__(self, *exc):
        try:
            self.cleanup()
        finally:
            signal.signal(signal.SIGTERM, self._old_term)
        return False


def _term_as_interrupt(signum, frame):
    """SIGTERM unwinds like Ctrl-C, so the with block's cleanup runs."""
    raise KeyboardInterrupt(f"signal {signum}")
