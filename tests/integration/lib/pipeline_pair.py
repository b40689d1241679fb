"""A shell's status-serve and one real agent paired by convocate-host, with
a feed subscriber that reads on its own thread: the whole event pipeline
(emitter -> sender -> tcp/223 -> status-serve -> feed socket) on loopback.
Used by test_event_pipeline.py and bench/."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from lib.agent import Agent
from lib.common import BUILD, SHELL_BIN, free_port, stop_process, wait_for_port

HOST_BIN = os.path.join(BUILD, "src", "convocate-host")


def _run_ok(*argv):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{argv}: {r.stdout}{r.stderr}"


def tally_key(event):
    """(type, data.tag): what FeedReader counts events by."""
    data = event.get("data")
    return event.get("type"), data.get("tag") if isinstance(data, dict) else None


class FeedReader:
    """A feed subscriber that keeps up: a thread reads every line as it
    comes and stamps it with its arrival time (time.monotonic()). It keeps
    the events (keep=True) and, always, a tally per tally_key: count, first
    and last arrival, so a load of 100,000 events costs no list scans."""

    def __init__(self, path, keep=True):
        self.keep = keep
        self.tally = {}
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.settimeout(0.2)
        self.events = []  # (arrival, parsed event)
        self.cond = threading.Condition()
        self.closed = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        buf = b""
        while not self._stop:
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            now = time.monotonic()
            buf += chunk
            *lines, buf = buf.split(b"\n")
            parsed = [(now, json.loads(line)) for line in lines if line.strip()]
            with self.cond:
                for t, e in parsed:
                    entry = self.tally.setdefault(tally_key(e), [0, t, t])
                    entry[0] += 1
                    entry[2] = t
                if self.keep:
                    self.events.extend(parsed)
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, pred, count=1, timeout=30.0):
        """Waits until count events satisfy pred; returns them (arrival, event)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hits = [(t, e) for t, e in self.events if pred(e)]
                left = deadline - time.monotonic()
                if len(hits) >= count or left <= 0 or self.closed:
                    return hits
                self.cond.wait(min(left, 0.5))

    def wait_tally(self, key, count, timeout=60.0):
        """Waits until count events of key arrived (or timeout); returns
        (count, first arrival, last arrival)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                n, first, last = self.tally.get(key, (0, None, None))
                left = deadline - time.monotonic()
                if n >= count or left <= 0 or self.closed:
                    return n, first, last
                self.cond.wait(min(left, 0.5))

    def matching(self, pred):
        with self.cond:
            return [(t, e) for t, e in self.events if pred(e)]

    def close(self):
        self._stop = True
        self._thread.join(timeout=5)
        self.sock.close()


class PipelinePair:
    """status-serve on a free port and an agent that streams to it.
    verbose: the agent logs at -v (debug lines cost time per event)."""

    def __init__(self, agent_args=(), verbose=True, image="", start_shell=True):
        self.base = tempfile.mkdtemp(prefix="cvp-")  # short: the feed is a unix socket
        self.shell_root = os.path.join(self.base, "shell")
        agent_root = os.path.join(self.base, "agent")
        os.makedirs(self.shell_root)
        os.makedirs(agent_root)
        self.port = free_port()
        self.feed = os.path.join(self.base, "feed.sock")
        self.status_log = os.path.join(self.base, "status-serve.log")
        self.status_proc = None
        self.agent = Agent(agent_root, image,
                           extra_args=["--shell-host", f"127.0.0.1:{self.port}", *agent_args])
        if not verbose:
            self.agent.serve_argv = self._quiet(self.agent.serve_argv)
        _run_ok(HOST_BIN, "init-shell", "--root", self.shell_root)
        _run_ok(HOST_BIN, "init-agent", "--root", self.shell_root, "--agent-root", agent_root,
                "--shell-host", f"127.0.0.1:{self.port}")
        with open(os.path.join(self.agent.etc, "agent-id")) as f:
            self.agent.agent_id = f.read().strip()
        if start_shell:
            self.start_shell()

    @staticmethod
    def _quiet(argv_fn):
        return lambda: [a for a in argv_fn() if a != "-v"]

    def start_shell(self):
        log = open(self.status_log, "a")
        env = {k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", "JOURNAL_STREAM")}
        self.status_proc = subprocess.Popen(
            [SHELL_BIN, "--root", self.shell_root, "status-serve", "--listen",
             f"127.0.0.1:{self.port}", "--feed", self.feed, "-v"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        log.close()
        assert wait_for_port(self.port, self.status_proc), self.status_text()

    def subscribe(self, keep=True):
        return FeedReader(self.feed, keep=keep)

    def wait_connected(self, reader, timeout=30.0):
        """Waits for agent.started on the feed (this pair's only agent): the
        sender is connected and streaming."""
        n, _, _ = reader.wait_tally(("agent.started", None), 1, timeout=timeout)
        assert n, f"agent never reached the feed:\n{self.agent.log()[-3000:]}"

    def status_text(self):
        try:
            with open(self.status_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def cleanup(self):
        self.agent.cleanup()
        stop_process(self.status_proc)
        shutil.rmtree(self.base, ignore_errors=True)
