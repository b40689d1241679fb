"""Issue 11, engine truth: attach through the Engine API (no docker CLI
process per attach, the terminal at the header's size every time) and the
agent following the engine's event stream (container.stopped/started for
what happens outside the agent, with the right `by` and `oom`)."""
import json
import os
import random
import re
import subprocess
import time

import pexpect

from lib.agent_helpers import create_ok, restart_ok
from lib.agent import register_agent
from lib.common import SHELL_BIN, docker
from lib.paramiko_attach import Attached, agent_transport
from lib.procfs import children_of
from lib.wait import wait_until

# tput inside tmux, then the tmux client's own size (what the header set),
# behind a nonce: tmux redraws earlier attaches' output on attach.
SIZE_PROBE = ('echo "SZ-{nonce}=$(tput cols)x$(tput lines)/'
              '$(tmux display -p \'#{{client_width}}x#{{client_height}}\')=ZS"')
SIZE_RE = r"SZ-{nonce}=(\d+)x(\d+)/(\d+)x(\d+)=ZS"


def attach_at(shell_root, name, cols, rows, agent_pid):
    """Attaches with the shell's CLI under a cols x rows terminal, reads the
    sizes seen inside, checks the agent has no child process meanwhile,
    detaches. Returns (tput cols, tput lines, client w, client h, children)."""
    child = pexpect.spawn(SHELL_BIN, ["--root", shell_root, "attach", name],
                          dimensions=(rows, cols), timeout=60, encoding="utf-8")
    try:
        child.expect(r"claude@convocate-")  # the shell's prompt inside tmux
        children = children_of(agent_pid)  # while the relay is live
        nonce = random.randrange(10**8)
        child.send(SIZE_PROBE.format(nonce=nonce) + "\r")
        child.expect(SIZE_RE.format(nonce=nonce))
        got = tuple(int(g) for g in child.match.groups())
        # Detach from inside (Ctrl-b d right after output can fall under
        # tmux's paste detection; test_attach.py covers the keys).
        child.send("tmux detach-client\r")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    return got + (children,)


def test_twenty_attaches_at_random_sizes_without_a_docker_process(start_agent, shell_root):
    agent = start_agent()
    register_agent(shell_root, agent)
    s = create_ok(agent, name="sizes")
    restart_ok(agent, s["uuid"])
    seed = int(time.time())
    rng = random.Random(seed)
    for i in range(20):
        cols, rows = rng.randint(40, 200), rng.randint(10, 60)
        tcols, tlines, cw, ch, children = attach_at(shell_root, "sizes", cols, rows,
                                                    agent.proc.pid)
        where = f"attach {i} (seed {seed}) at {cols}x{rows}"
        print(where, tcols, tlines, cw, ch, children)
        assert (cw, ch) == (cols, rows), f"{where}: tmux client is {cw}x{ch}"
        # tmux keeps its status line: the shell inside has one row less.
        assert (tcols, tlines) == (cols, rows - 1), f"{where}: tput says {tcols}x{tlines}"
        assert not [c for c in children if "docker" in c[1]], f"{where}: {children}"
        assert children == [], f"{where}: the agent has child processes {children}"
    # Every relay ended and no tmux client was left behind in the container.
    deadline = time.monotonic() + 15
    while agent.ok("get", {"id": s["uuid"]})["attached"] != 0:
        assert time.monotonic() < deadline, "the attach count never dropped to 0"
        time.sleep(0.2)
    clients = docker("exec", "-u", "claude", f"convocate-session-{s['uuid']}", "tmux",
                     "list-clients").stdout
    assert clients.strip() == "", clients


# ---- engine truth: events for what happens outside the agent ----

def parse_ts(ts):
    """RFC 3339 UTC with milliseconds -> unix seconds."""
    from datetime import datetime, timezone
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def wait_event(agent, uuid, etype, skip=0, timeout=10):
    """The (skip+1)th event of etype for uuid in the events log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = [e for e in agent.events() if e.get("session_id") == uuid and e["type"] == etype]
        if len(hits) > skip:
            return hits[skip]
        time.sleep(0.05)
    raise AssertionError(f"no {etype} for {uuid} within {timeout}s: {agent.events()[-5:]}\n"
                         f"{agent.log()[-3000:]}")


def engine_die_time(name, since):
    """When the engine itself reported the container's last die (unix s)."""
    r = docker("events", "--since", f"{since:.3f}", "--until", f"{time.time() + 1:.3f}",
               "--filter", f"container={name}", "--filter", "event=die",
               "--format", "{{.TimeNano}}")
    return int(r.stdout.split()[-1]) / 1e9


def count_events(agent, uuid, etype):
    return len([e for e in agent.events() if e.get("session_id") == uuid and e["type"] == etype])


def running_session(agent, name):
    s = create_ok(agent, name=name)
    restart_ok(agent, s["uuid"])
    return s["uuid"], f"convocate-session-{s['uuid']}"


def assert_stopped_within_a_second(agent, uuid, name, command, by, oom=False):
    """Runs the docker command that stops the container from outside and
    checks the one container.stopped that follows."""
    before = count_events(agent, uuid, "container.stopped")
    began = time.time()
    subprocess.run(command, check=True, capture_output=True)
    returned = time.time()
    ev = wait_event(agent, uuid, "container.stopped", skip=before, timeout=10)
    published = parse_ts(ev["timestamp"])
    lag = published - engine_die_time(name, began)
    print(f"{' '.join(command[:2])}: container.stopped {lag:+.3f}s after the engine's die, "
          f"{published - returned:+.3f}s after the command returned")
    assert lag < 1.0, f"container.stopped {lag:.3f}s after the engine's die ({command})"
    assert ev["data"]["by"] == by and ev["data"]["oom"] is oom, ev
    assert isinstance(ev["data"]["exit_code"], int), ev
    got = agent.ok("get", {"id": uuid})
    assert got["running"] is False and got["attached"] == 0 and got["state"] == "-", got
    time.sleep(0.5)  # a second event would come right behind the first
    assert count_events(agent, uuid, "container.stopped") == before + 1, agent.events()
    return ev


def test_docker_stop_and_kill_from_outside_are_the_engines(agent):
    uuid, name = running_session(agent, "outside-stop")
    ev = assert_stopped_within_a_second(agent, uuid, name, ["docker", "stop", name], "engine")
    assert ev["data"]["exit_code"] == 0  # the entrypoint ends cleanly on SIGTERM
    restart_ok(agent, uuid)
    ev = assert_stopped_within_a_second(agent, uuid, name, ["docker", "kill", name], "engine")
    assert ev["data"]["exit_code"] == 137


def test_the_session_ending_by_itself_is_the_sessions(agent):
    uuid, name = running_session(agent, "own-end")
    assert_stopped_within_a_second(
        agent, uuid, name, ["docker", "exec", "-u", "claude", name, "tmux", "kill-server"], "session")


def test_the_agents_own_kill_is_one_event_by_the_operator(agent):
    uuid, _ = running_session(agent, "own-kill")
    agent.ok("kill", {"id": uuid})
    ev = wait_event(agent, uuid, "container.stopped")
    assert ev["data"]["by"] == "operator", ev
    time.sleep(1)
    assert count_events(agent, uuid, "container.stopped") == 1, agent.events()


def test_an_oom_kill_is_the_engines_with_oom(agent):
    agent.ok("settings-set", {"session_memory_mb": 16})
    uuid, name = running_session(agent, "oom")
    # The pane's shell becomes a process that only grows (tail looks for a
    # newline in /dev/zero): the OOM killer takes it, the pane and with it
    # the tmux session end, and so does the container.
    subprocess.run(["docker", "exec", "-u", "claude", name, "tmux", "send-keys", "-t", "claude",
                    "exec tail /dev/zero", "Enter"], check=True, capture_output=True)
    sent = time.time()
    ev = wait_event(agent, uuid, "container.stopped", timeout=30)
    lag = parse_ts(ev["timestamp"]) - engine_die_time(name, sent - 1)
    print(f"oom: container.stopped {lag:+.3f}s after the engine's die")
    assert lag < 1.0
    assert ev["data"]["oom"] is True and ev["data"]["by"] == "engine", ev


def ping_sessions(agent):
    return agent.ok("ping")["capacity"]["sessions"]


def test_ping_counts_what_the_engine_runs_from_its_event_stream(agent):
    """ping answers its session count from the engine watch's table (no
    engine call per ping): it must follow starts by the agent and stops and
    kills from outside, as the engine says."""
    wait_until(lambda: ping_sessions(agent) == 0, 10, "ping: 0 sessions at start")
    uuid, name = running_session(agent, "ping-count")
    assert ping_sessions(agent) == 1  # the op's own start counts at once
    subprocess.run(["docker", "stop", "-t", "2", name], check=True, capture_output=True)
    wait_until(lambda: ping_sessions(agent) == 0, 10, "ping: 0 sessions after docker stop")
    restart_ok(agent, uuid)
    assert ping_sessions(agent) == 1
    subprocess.run(["docker", "kill", name], check=True, capture_output=True)
    wait_until(lambda: ping_sessions(agent) == 0, 10, "ping: 0 sessions after docker kill")
    restart_ok(agent, uuid)
    agent.ok("kill", {"id": uuid})
    assert ping_sessions(agent) == 0  # the agent's own stop, at once
    running = docker("ps", "-q", "--filter", f"label=convocate.agent={agent.agent_id}").stdout
    assert running.strip() == "", running


def test_a_restart_outside_the_agent_is_stopped_then_started(agent):
    """Session containers are auto-removed, so `docker start` has nothing to
    start; what starts one outside the agent is `docker restart` (the engine
    keeps an auto-removed container through its own restart)."""
    uuid, name = running_session(agent, "outside-restart")
    n_started = count_events(agent, uuid, "container.started")
    n_stopped = count_events(agent, uuid, "container.stopped")
    subprocess.run(["docker", "restart", "-t", "2", name], check=True, capture_output=True)
    returned = time.time()
    stopped = wait_event(agent, uuid, "container.stopped", skip=n_stopped)
    assert stopped["data"]["by"] == "engine", stopped
    deadline = time.monotonic() + 10
    while count_events(agent, uuid, "container.started") == n_started:
        assert time.monotonic() < deadline, agent.events()[-5:]
        time.sleep(0.05)
    started = [e for e in agent.events()
               if e.get("session_id") == uuid and e["type"] == "container.started"][-1]
    assert parse_ts(started["timestamp"]) - returned < 1.0
    assert started["data"]["uuid"] == uuid and started["data"]["running"] is True
    assert agent.ok("get", {"id": uuid})["state"] == "R"


# ---- a dockerd going away under a running agent ----

class PrivateDockerd:
    """A second dockerd of this test's own (other tests share the main one):
    its own data, exec root, pidfile and socket, no bridge, no iptables, and
    its own network namespace: a dockerd with --bridge=none deletes the
    docker0 of the namespace it starts in, which is the main engine's.
    (nsenter, not `ip netns exec`: that remounts /sys without the cgroups.)"""

    def __init__(self, image):
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="convocate-dockerd-", dir="/tmp")
        self.netns = "convocate-dd-" + os.path.basename(self.dir)[-8:]
        subprocess.run(["ip", "netns", "add", self.netns], check=True, capture_output=True)
        self.sock = os.path.join(self.dir, "docker.sock")
        self.host = f"unix://{self.sock}"
        self.proc = None
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", self.host, "load"], stdin=save.stdout, check=True,
                       capture_output=True, timeout=300)
        save.wait(60)

    def start(self):
        log = open(os.path.join(self.dir, "dockerd.log"), "a")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{self.netns}", "dockerd", "--data-root", os.path.join(self.dir, "data"),
             "--exec-root", os.path.join(self.dir, "exec"),
             "--pidfile", os.path.join(self.dir, "dockerd.pid"), "-H", self.host,
             "--bridge=none", "--iptables=false"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "-H", self.host, "info"],
                             capture_output=True).returncode != 0:
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, "private dockerd did not come up"
            time.sleep(0.2)

    def stop(self):
        """SIGTERM to this dockerd's own pid, and wait for it to exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)

    def docker(self, *args, check=True):
        return subprocess.run(["docker", "-H", self.host, *args], capture_output=True, text=True,
                              check=check)

    def log(self):
        with open(os.path.join(self.dir, "dockerd.log"), errors="replace") as f:
            return f.read()[-3000:]

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
        self.stop()
        subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", self.dir], capture_output=True)


def host_docker0():
    r = subprocess.run(["ip", "-o", "link", "show", "docker0"], capture_output=True, text=True)
    return r.stdout.split(":")[0] if r.returncode == 0 else None


def test_dockerd_restart_under_an_attached_operator(start_agent, test_image):
    docker0 = host_docker0()
    engine = PrivateDockerd(test_image)
    try:
        assert host_docker0() == docker0, "the private dockerd touched the host's docker0"
        agent = start_agent(docker_host=engine.host)
        one, name_one = running_session(agent, "dd-one")
        two, _ = running_session(agent, "dd-two")
        t = agent_transport(agent)
        try:
            op = Attached(t, one)
            op.read_until(b"claude@convocate-")
            assert agent.ok("get", {"id": one})["attached"] == 1

            engine.stop()  # its shutdown stops every container it ran
            op.read_until(b"the container engine went away; session dd-one ended", timeout=30)
            assert op.closed_within(15), "the attach channel stayed open"
        finally:
            t.close()
        for uuid in (one, two):
            ev = wait_event(agent, uuid, "container.stopped", timeout=40)
            assert ev["data"]["by"] == "engine", ev
        assert agent.proc.poll() is None, "the agent died with the engine"

        engine.start()
        # The stream is back (backoff at most 30 s) and the states are right.
        deadline = time.monotonic() + 45
        while "following the engine's events again" not in agent.log():
            assert time.monotonic() < deadline, agent.log()[-3000:]
            time.sleep(0.2)
        for uuid in (one, two):
            got = agent.ok("get", {"id": uuid})
            assert got["running"] is False and got["attached"] == 0 and got["state"] == "-", got
        # ...and followed: a stop outside the agent is seen again.
        restart_ok(agent, one)
        before = count_events(agent, one, "container.stopped")
        engine.docker("kill", name_one)
        ev = wait_event(agent, one, "container.stopped", skip=before, timeout=10)
        assert ev["data"]["by"] == "engine" and ev["data"]["exit_code"] == 137, ev
        assert count_events(agent, one, "container.stopped") == before + 1
    finally:
        engine.cleanup()
    assert host_docker0() == docker0, "the private dockerd touched the host's docker0"


def test_an_operator_who_vanishes_leaves_no_tmux_client(agent):
    """The engine keeps an exec running when its stream closes; the agent
    hangs up the tmux client of a relay whose operator went away."""
    uuid, name = running_session(agent, "vanish")
    t = agent_transport(agent)
    op = Attached(t, uuid)
    op.read_until(b"claude@convocate-")
    listed = docker("exec", "-u", "claude", name, "tmux", "list-clients").stdout
    assert listed.strip() != "", "no tmux client while attached: nothing to prove"
    t.close()  # no detach: the connection just drops
    deadline = time.monotonic() + 15
    while docker("exec", "-u", "claude", name, "tmux", "list-clients").stdout.strip():
        assert time.monotonic() < deadline, "the tmux client outlived its operator"
        time.sleep(0.2)
    assert agent.ok("get", {"id": uuid})["attached"] == 0
    assert agent.ok("get", {"id": uuid})["running"] is True  # the container stays
