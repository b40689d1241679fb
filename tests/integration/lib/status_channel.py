"""status-serve on a shell root, with the agent's side of its status channel
spoken by OpenSSH under a key registered for a real agent: the TUI tests use
it to put events on the channel exactly as an agent sends them."""
import json
import os
import subprocess
import time
from datetime import datetime, timezone

from lib.common import HOST_BIN, SHELL_BIN, free_port, make_client_key, stop_process, \
    wait_for_port


def now_rfc3339(ago=0):
    t = datetime.fromtimestamp(time.time() - ago, timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class StatusChannel:
    """status-serve on the shell root (feed at <root>/run/convocate/status.sock,
    where the TUI looks) and the agent's side of its status channel: a key of
    its own in agent-keys/<id>/ and status_authorized_keys, as init-agent pairs
    it, and OpenSSH to speak with it."""

    def __init__(self, root, agent, base):
        r = subprocess.run([HOST_BIN, "init-shell", "--root", root], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        self.agent_id = agent.agent_id
        self.key = make_client_key(base, "agent_to_shell_ed25519_key")
        with open(self.key + ".pub") as f:
            pub = f.read()
        keys = os.path.join(root, "etc/convocate/agent-keys", agent.agent_id)
        with open(os.path.join(keys, "agent_to_shell_ed25519_key.pub"), "w") as f:
            f.write(pub)
        with open(os.path.join(root, "etc/convocate/status_authorized_keys"), "a") as f:
            f.write(pub)
        with open(os.path.join(root, "etc/convocate/status_host_ed25519_key.pub")) as f:
            kind, blob = f.read().split()[:2]
        self.port = free_port()
        self.known_hosts = os.path.join(base, "status_known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        self.log_path = os.path.join(base, "status-serve.log")
        env = {k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", "JOURNAL_STREAM")}
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [SHELL_BIN, "--root", root, "status-serve", "--listen",
                 f"127.0.0.1:{self.port}", "-v"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        assert wait_for_port(self.port, self.proc), self.log()
        self.feed = os.path.join(root, "run/convocate/status.sock")
        deadline = time.monotonic() + 10
        while not os.path.exists(self.feed):
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.1)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def send(self, *events):
        data = b"".join((json.dumps(e) + "\n").encode() for e in events)
        argv = ["ssh", "-p", str(self.port), "-i", self.key, "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
                "claude@127.0.0.1", "-s", "convocate-status"]
        r = subprocess.run(argv, input=data, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr

    def event(self, type_, data=None, session_id=None):
        ev = {"type": type_, "agent_id": self.agent_id, "timestamp": now_rfc3339(),
              "data": data}
        if session_id:
            ev["session_id"] = session_id
        return ev

    def activity_event(self, session_id, state, ago=0, cost=None, context=None, detail=""):
        data = {"state": state, "since": now_rfc3339(ago), "detail": detail, "cost_usd": cost,
                "context_pct": context, "model": None}
        return self.event("session.activity", data, session_id)

    def activity(self, session_id, state, **kw):
        self.send(self.activity_event(session_id, state, **kw))

    def stop(self):
        stop_process(self.proc)
