"""A convocate status-serve on a paired shell and agent root (Shell), and a
subscriber of its local event feed (Subscriber), for the tests of SPEC 8.4."""
import json
import os
import subprocess
import time

from lib.common import HOST_BIN, SHELL_BIN, free_port, stop_process, wait_for_port
from lib.feed_lines import FeedLines


def run_ok(*argv):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{argv}: {r.stdout}{r.stderr}"
    return r


class Shell:
    """A paired shell and agent root, and a running status-serve."""

    def __init__(self, base, dnsmasq_pidfile=None, default_feed=False):
        self.root = os.path.join(base, "shell")
        self.agent_root = os.path.join(base, "agent")
        os.makedirs(self.root)
        os.makedirs(self.agent_root)
        run_ok(HOST_BIN, "init-shell", "--root", self.root)
        run_ok(HOST_BIN, "init-agent", "--root", self.root, "--agent-root", self.agent_root)
        with open(os.path.join(self.agent_root, "etc/convocate-agent/agent-id")) as f:
            self.agent_id = f.read().strip()
        self.agent_key = os.path.join(self.agent_root,
                                      "etc/convocate-agent/agent_to_shell_ed25519_key")
        self.port = free_port()
        self.feed = os.path.join(self.root, "run/convocate/status.sock") if default_feed \
            else os.path.join(base, "feed.sock")
        self.hosts = os.path.join(self.root, "var/lib/convocate/dnsmasq-hosts")
        with open(os.path.join(self.root, "etc/convocate/status_host_ed25519_key.pub")) as f:
            kind, b64 = f.read().split()[:2]
        self.known_hosts = os.path.join(base, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {kind} {b64}\n")
        self.log_path = os.path.join(base, "status-serve.log")
        argv = [SHELL_BIN, "--root", self.root, "status-serve", "--listen",
                f"127.0.0.1:{self.port}", "-v"]
        if not default_feed:
            argv += ["--feed", self.feed]
        if dnsmasq_pidfile:
            argv += ["--dnsmasq-pidfile", dnsmasq_pidfile]
        env = {k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", "JOURNAL_STREAM")}
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     env=env)
        log.close()
        assert wait_for_port(self.port, self.proc), self.log()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def ssh(self, subsystem="convocate-status", key=None, data=b"", timeout=30, extra=()):
        argv = ["ssh", "-p", str(self.port), "-i", key or self.agent_key, *extra,
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
                "claude@127.0.0.1", "-s", subsystem]
        return subprocess.run(argv, input=data, capture_output=True, timeout=timeout)

    def send(self, *lines):
        data = b"".join(line if isinstance(line, bytes) else
                        (json.dumps(line) + "\n").encode() for line in lines)
        r = self.ssh(data=data)
        assert r.returncode == 0, r.stderr
        return r

    def event(self, type_, data=None, session_id=None, agent_id=None):
        ev = {"type": type_, "agent_id": agent_id or self.agent_id,
              "timestamp": "2026-11-25T06:00:00Z", "data": data}
        if session_id:
            ev["session_id"] = session_id
        return ev

    def stop(self):
        return stop_process(self.proc)


class Subscriber(FeedLines):
    """A subscriber of the local feed; rcvbuf: a small receive buffer, for a
    subscriber that falls behind."""

    def next(self, timeout=10.0):
        """The next line (bytes); fails when none came within timeout s or
        the feed closed."""
        try:
            line = self.line(timeout)
        except EOFError:
            raise AssertionError("feed closed") from None
        if line is None:
            raise AssertionError(f"no event within {timeout}s; have {self.buf[:200]!r}")
        return line

    def until(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            ev = json.loads(self.next(max(0.1, deadline - time.monotonic())))
            seen.append(ev)
            if pred(ev):
                return ev, seen
