"""A real convocate-agent under a temporary --root, reached through
OpenSSH's client: its own free port on 127.0.0.1, its own client key and a
pinned known_hosts file; its containers carry its random agent id as label
and are removed by cleanup(). The fixtures start_agent and agent (conftest.py)
make them."""
import json
import os
import shutil
import subprocess
import time

from lib.common import AGENT_BIN, clean_env, docker, free_port, make_client_key, stop_process, \
    unmount_under, wait_for_port


class Agent:
    """One running convocate-agent serve and the means to talk to it."""

    def __init__(self, root, image, docker_host=None, extra_args=()):
        self.root = root
        self.image = image
        self.docker_host = docker_host
        self.extra_args = list(extra_args)
        self.etc = os.path.join(root, "etc", "convocate-agent")
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(root, "agent.stderr")
        self.events_path = os.path.join(root, "events.log")
        self._install()
        with open(os.path.join(self.etc, "agent-id")) as f:
            self.agent_id = f.read().strip()
        self.client_key = make_client_key(root)
        with open(self.client_key + ".pub") as f, \
                open(os.path.join(self.etc, "authorized_keys"), "a") as out:
            out.write(f.read())
        if image:
            with open(os.path.join(self.etc, "current-image"), "w") as f:
                f.write(image + "\n")
        self.known_hosts = os.path.join(root, "known_hosts")
        self._pin_host_key()

    def _install(self):
        r = subprocess.run([AGENT_BIN, "install", "--root", self.root],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"install failed: {r.stdout}{r.stderr}"

    def _pin_host_key(self):
        with open(os.path.join(self.etc, "ssh_host_ed25519_key.pub")) as f:
            kind, blob = f.read().split()[:2]
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {kind} {blob}\n")

    def serve_argv(self):
        argv = [AGENT_BIN, "serve", "--root", self.root, "--listen", f"127.0.0.1:{self.port}",
                "--events-log", self.events_path, "-v"]
        if self.docker_host:
            argv += ["--docker-host", self.docker_host]
        return argv + self.extra_args

    def start(self):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.serve_argv(), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, env=clean_env())
        log.close()
        if not wait_for_port(self.port, self.proc):
            raise AssertionError(f"agent did not start listening:\n{self.log()}")

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code."""
        return stop_process(self.proc, timeout)

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        self.stop()
        self.start()

    def ssh_args(self, subsystem, key=None, extra=()):
        return ["ssh", "-p", str(self.port), "-i", key or self.client_key,
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=10", *extra,
                "claude@127.0.0.1", "-s", subsystem]

    def rpc_raw(self, line, timeout=60, key=None):
        """Sends raw bytes on a convocate-agent-rpc channel; returns the CompletedProcess."""
        return subprocess.run(self.ssh_args("convocate-agent-rpc", key=key), input=line,
                              capture_output=True, timeout=timeout)

    def rpc(self, op, params=None, timeout=60):
        line = json.dumps({"op": op, "params": params}).encode() + b"\n"
        r = self.rpc_raw(line, timeout=timeout)
        out = r.stdout.decode(errors="replace").strip()
        assert r.returncode == 0 and out, \
            f"rpc {op} transport failed rc={r.returncode} out={out!r} err={r.stderr!r}\n{self.log()}"
        return json.loads(out)

    def ok(self, op, params=None, timeout=60):
        """rpc() that must succeed; returns the result. A CPU admission refusal
        (this 2-core machine busy with other tests) is retried for a minute:
        admission itself is tested in test_admission.py."""
        deadline = time.monotonic() + 60
        while True:
            resp = self.rpc(op, params, timeout=timeout)
            busy = str(resp.get("error", "")).startswith("admission denied: cpu")
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert resp.get("ok") is True, f"{op} {params} -> {resp}"
        return resp.get("result")

    def events(self):
        try:
            with open(self.events_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def containers(self):
        """IDs of every container (running or not) labelled with this agent's id."""
        r = docker("ps", "-aq", "--filter", f"label=convocate.agent={self.agent_id}", check=False)
        return r.stdout.split()

    def cleanup(self):
        self.stop()
        ids = self.containers()
        if ids:
            docker("rm", "-f", *ids, check=False)
        unmount_under(self.root)  # install's nosuid,nodev home mount


def register_agent(shell_root, agent, host_key_pub=None):
    """Writes agent-keys/<id>/ under shell_root the way init-agent lays it out
    (SPEC 4): the shell dials the agent with the agent's test client key and
    pins the agent's host key."""
    d = os.path.join(shell_root, "etc", "convocate", "agent-keys", agent.agent_id)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "agent-host"), "w") as f:
        f.write(f"127.0.0.1:{agent.port}\n")
    shutil.copy(agent.client_key, os.path.join(d, "shell_to_agent_ed25519_key"))
    shutil.copy(agent.client_key + ".pub", os.path.join(d, "shell_to_agent_ed25519_key.pub"))
    shutil.copy(host_key_pub or os.path.join(agent.etc, "ssh_host_ed25519_key.pub"),
                os.path.join(d, "host_key.pub"))
    return d
