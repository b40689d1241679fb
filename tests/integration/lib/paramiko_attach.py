"""An operator on a session's terminal through the agent's attach
subsystem, spoken by paramiko (a second SSH implementation next to
OpenSSH): for test_attach.py and test_engine_truth.py."""
import json
import time

from lib.paramiko_rpc import ATTACH_SUBSYSTEM, open_transport


def agent_transport(agent, timeout=15):
    """An authenticated Transport to a loopback lib.agent.Agent."""
    return open_transport("127.0.0.1", agent.port, agent.client_key, timeout=timeout)


class Attached:
    """One operator on a session's terminal through convocate-agent-attach."""

    def __init__(self, transport, uuid, cols=100, rows=30):
        self.chan = transport.open_session(timeout=15)
        self.chan.settimeout(1.0)
        self.chan.invoke_subsystem(ATTACH_SUBSYSTEM)
        self.chan.sendall(json.dumps({"id": uuid, "cols": cols, "rows": rows}).encode() + b"\n")
        self.screen = b""

    def read_until(self, needle, timeout=60):
        deadline = time.monotonic() + timeout
        while needle not in self.screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {needle!r} within {timeout}s: {self.screen[-500:]!r}")
            try:
                chunk = self.chan.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # paramiko's socket.timeout on older Pythons
                continue
            if not chunk:
                raise AssertionError(f"attach closed: {self.screen[-500:]!r}")
            self.screen += chunk
        return self.screen

    def type(self, text):
        self.chan.sendall(text.encode())

    def closed_within(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.chan.exit_status_ready() or self.chan.closed or self.chan.eof_received:
                return True
            try:
                if self.chan.recv(65536) == b"":
                    return True
            except (TimeoutError, OSError):
                pass
        return False
