"""The `convocate` terminal UI (SPEC 12) driven inside a private tmux server:
keys go in with send-keys, the screen comes back with capture-pane. The
fixture tui_factory (conftest.py) starts them and kills their servers."""
import itertools
import os
import re
import subprocess
import time

from lib.common import SHELL_BIN

WIDTH, HEIGHT = 100, 30
_counter = itertools.count()


class Tui:
    """One `convocate` TUI in its own tmux server (tmux -L <unique>)."""

    def __init__(self, shell_root, width=WIDTH, height=HEIGHT):
        self.socket = f"convocate-tui-{os.getpid()}-{next(_counter)}"
        self.tmux("new-session", "-d", "-x", str(width), "-y", str(height),
                  "-e", "LANG=C.UTF-8", SHELL_BIN, "--root", shell_root)

    def tmux(self, *args, check=True):
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                              capture_output=True, text=True, check=check, timeout=30)

    def alive(self):
        return self.tmux("has-session", check=False).returncode == 0

    def screen(self):
        r = self.tmux("capture-pane", "-p", check=False)
        return r.stdout if r.returncode == 0 else ""

    def lines(self):
        return self.screen().splitlines()

    def keys(self, *keys):
        self.tmux("send-keys", *keys)

    def type(self, text):
        self.tmux("send-keys", "-l", "--", text)

    def wait(self, predicate, timeout=30, what="the screen to change"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shot = self.screen()
            if predicate(shot):
                return shot
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{self.screen()}")

    def wait_text(self, text, timeout=30):
        return self.wait(lambda s: text in s, timeout, repr(text))

    def status_line(self):
        lines = self.lines()
        return lines[-1] if lines else ""

    def row(self, name):
        """The table line of the session called name, or None. A table line
        starts with a state character and a short UUID, which keeps a form's
        "Name  <name>" line from counting as the row."""
        for line in self.lines()[2:-3]:
            cells = line.split()
            if len(cells) >= 3 and cells[2] == name and len(cells[0]) == 1 \
                    and cells[0] in "-LRCO?" and re.fullmatch(r"[0-9a-f]{8}", cells[1]):
                return line
        return None

    def wait_row(self, name, state=None, timeout=30):
        def ok(_):
            line = self.row(name)
            return line is not None and (state is None or line.split()[0] == state)
        self.wait(ok, timeout, f"row {name} in state {state}")
        return self.row(name)

    def select(self, name):
        """Moves the selection to the row called name (Home, then Down)."""
        names = [line.split()[2] for line in self.lines()[2:-3] if len(line.split()) >= 3]
        assert name in names, f"{name} not on screen:\n{self.screen()}"
        self.keys("Home")
        for _ in range(names.index(name)):
            self.keys("Down")
        time.sleep(0.3)

    def close(self):
        self.tmux("kill-server", check=False)


BUSY = "admission denied: cpu"  # a loaded test machine; not what these tests are about



def until_admitted(tui, act, done, what, timeout=120):
    """Runs act() (keys), then waits for done(screen); when the agent's answer
    on the status line is a CPU admission refusal, waits and does it again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        act()
        shot = tui.wait(lambda s: done(s) or BUSY in s.splitlines()[-1], timeout, what)
        if done(shot):
            return shot
        time.sleep(2)
    raise AssertionError(f"still refused admission waiting for {what}:\n{tui.screen()}")
