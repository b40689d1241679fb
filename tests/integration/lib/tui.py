"""The `convocate` terminal UI (SPEC 12) driven inside a private tmux server:
keys go in with send-keys, the screen comes back with capture-pane. The
fixture tui_factory (conftest.py) starts them and kills their servers."""
import itertools
import os
import re
import subprocess
import time

from lib.common import SHELL_BIN
from lib.wait import wait_until

WIDTH, HEIGHT = 100, 30
_counter = itertools.count()
_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _reverse_after(reverse, params):
    """Whether reverse video is on after an SGR sequence with these
    parameters (0 or none resets, 7 sets, 27 clears; the colour arguments
    of 38, 48 and 58 are skipped)."""
    codes = [int(c) if c else 0 for c in params.split(";")]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c in (38, 48, 58) and i + 1 < len(codes):
            i += 3 if codes[i + 1] == 5 else 5 if codes[i + 1] == 2 else 2
            continue
        if c == 0:
            reverse = False
        elif c == 7:
            reverse = True
        elif c == 27:
            reverse = False
        i += 1
    return reverse


class Tui:
    """One `convocate` TUI in its own tmux server (tmux -L <unique>)."""

    def __init__(self, shell_root, width=WIDTH, height=HEIGHT, env=None):
        self.socket = f"convocate-tui-{os.getpid()}-{next(_counter)}"
        extra = [arg for k, v in (env or {}).items() for arg in ("-e", f"{k}={v}")]
        self.tmux("new-session", "-d", "-x", str(width), "-y", str(height),
                  "-e", "LANG=C.UTF-8", *extra, SHELL_BIN, "--root", shell_root)

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
        """The screen, once predicate(screen) is true; fails after timeout s
        showing the screen."""
        def shot_if_done():
            shot = self.screen()
            return [shot] if predicate(shot) else None  # a list: "" is a screen too
        return wait_until(shot_if_done, timeout, what, interval=0.2,
                          detail=lambda: f"screen:\n{self.screen()}")[0]

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
            if self._is_row(line) and line.split()[2] == name:
                return line
        return None

    @staticmethod
    def _is_row(line):
        cells = line.split()
        return len(cells) >= 3 and len(cells[0]) == 1 and cells[0] in "-LRCO?" \
            and re.fullmatch(r"[0-9a-f]{8}", cells[1]) is not None

    def wait_row(self, name, state=None, timeout=30):
        def ok(_):
            line = self.row(name)
            return line is not None and (state is None or line.split()[0] == state)
        self.wait(ok, timeout, f"row {name} in state {state}")
        return self.row(name)

    def selected(self):
        """The name in the highlighted (reverse video) table row, or None.
        capture-pane -e gives each change of attributes as an SGR sequence,
        and a line without one goes on in the attributes the line before
        ended in."""
        r = self.tmux("capture-pane", "-e", "-p", check=False)
        reverse = False
        lines = []  # (the line's text, reverse video at its first visible character)
        for line in r.stdout.splitlines():
            first = None
            for i, piece in enumerate(_SGR.split(line)):
                if i % 2 == 1:  # the parameters of an SGR sequence
                    reverse = _reverse_after(reverse, piece)
                elif first is None and piece.strip():
                    first = reverse
            lines.append((_SGR.sub("", line), bool(first)))
        for text, highlighted in lines[2:-3]:
            if highlighted and self._is_row(text):
                return text.split()[2]
        return None

    def select(self, name):
        """Moves the selection to the row called name (Home, then Down) and
        waits until that row is the highlighted one."""
        names = [line.split()[2] for line in self.lines()[2:-3] if len(line.split()) >= 3]
        assert name in names, f"{name} not on screen:\n{self.screen()}"
        self.keys("Home")
        for _ in range(names.index(name)):
            self.keys("Down")
        wait_until(lambda: self.selected() == name, 10, f"the selection on {name}",
                   interval=0.05, detail=lambda: f"screen:\n{self.screen()}")

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
