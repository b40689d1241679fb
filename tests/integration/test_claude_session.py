"""Issue 10 end to end, through the product only (SPEC 15): a shell and an
agent paired by convocate-host on this machine, the agent's status channel
to a real status-serve, the real engine and session image, and the real
Claude CLI from npm (lib/claude_cli) as the agent's /usr/local/bin/claude,
talking to the Messages API stand-in (lib/model_standin) through
ANTHROPIC_BASE_URL. Every action is a `convocate` command; the terminal is
a pty (pexpect) running `convocate attach`.

One pair, one stand-in and one feed subscriber serve the whole module
(module-scoped fixtures); each test makes its own sessions. The leak test
runs last, over everything the earlier tests made."""
import json
import os
import re
import socket
import stat
import statistics
import subprocess
import tempfile
import threading
import time
import uuid as uuidlib

import pexpect
import pytest

from conftest import (BUILD, SHELL_BIN, Agent, convocate, docker, free_port,
                      register_agent, stop_process, wait_for_port)
from lib import claude_cli
from lib.common import remove_tree
from lib.model_standin import ModelStandin, texts_of
from lib.wait import wait_until

HOST_BIN = os.path.join(BUILD, "src", "convocate-host")
CLAUDE_UID = 1337
# Long and unique, so finding it anywhere is never a coincidence.
API_KEY = "sk-ant-api03-" + uuidlib.uuid4().hex + "-e2eQ"
MODEL = "standin-e2e-model"
EXIT_LINE = re.compile(r"claude exited \(status (\d+)\) at \d\d:\d\d:\d\d — Enter: start Claude "
                       r"again \(resumes\) · Ctrl-b d: detach")
# On the screen (escape sequences read as spaces, runs of spaces as one):
# Claude's input prompt with its footer, or one of the dialogs it must not show.
# Claude's footer: its own hint, or the image's statusLine ("model · $cost · ...").
FOOTER = re.compile(r"\? for shortcuts|bypass permissions on|\S+ · \$\d")
DIALOG = re.compile(r"Do you want to use this API key|trust the files|Yes, I accept|"
                    r"Select login method|Choose the text style")
ESCAPE = re.compile(r"\x1b(\[[0-9;?<=>]*[ -/]*[@-~]"  # CSI
                    r"|\][^\x07\x1b]*(\x07|\x1b\\)"  # OSC
                    r"|[()][0-9A-B]|[=>78DEHMc])")
CLI_PATTERN = "^/usr/local/bin/claude( |$)"  # the CLI, not its helper (argv[0] "rg")
ASKED = re.compile(r"\bask-([0-9a-f]{8})\b")


def answer(req):
    """The stand-in's reply to a conversation turn: names the newest question."""
    turns = [m for m in req.messages if isinstance(m, dict) and m.get("role") == "user"]
    found = ASKED.findall(texts_of(turns[-1])) if turns else []
    return f"answer-{found[-1]}" if found else "answer-none"


# ---- the module's shell, agent, status-serve, stand-in and feed ----


class FeedReader:
    """Reads status-serve's local feed on a thread of its own, keeping every
    line, from before the first event to the end of the module."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        wait_until(lambda: os.path.exists(path), 15, "the feed socket")
        self.sock.connect(path)
        self.data = b""
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.data += chunk

    def text(self):
        with self.lock:
            return self.data.decode(errors="replace")

    def events(self):
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]

    def close(self):
        self.sock.close()


class Pair:
    """convocate-host init-shell + init-agent on two roots of this machine,
    the agent serving on a loopback port with its events log, status-serve
    on another with its feed; the agent's /usr/local/bin/claude is the real
    CLI."""

    def __init__(self, image, claude_bin):
        self.base = tempfile.mkdtemp(prefix="convocate-e2e-")
        self.shell = os.path.join(self.base, "shell")
        self.agent_root = os.path.join(self.base, "agent")
        self.status_port = free_port()
        self.feed_path = os.path.join(self.base, "status.sock")
        self.status_log = os.path.join(self.base, "status-serve.log")
        self.status_proc = None
        self.agent = None
        self.feed = None
        os.makedirs(self.shell)
        os.makedirs(self.agent_root)
        self._host("init-shell", "--root", self.shell)
        self._host("init-agent", "--root", self.shell, "--agent-root", self.agent_root,
                   "--agent-addr", "127.0.0.1:1", "--shell-host",
                   f"127.0.0.1:{self.status_port}")
        # The test's Agent: OpenSSH access for RPCs, events log, its own port;
        # the shell is pointed at that port and pins the agent's host key.
        self.agent = Agent(self.agent_root, image)
        register_agent(self.shell, self.agent)
        bin_dir = os.path.join(self.agent_root, "usr", "local", "bin")
        os.makedirs(bin_dir, exist_ok=True)
        os.symlink(claude_bin, os.path.join(bin_dir, "claude"))

    @staticmethod
    def _host(*args):
        r = subprocess.run([HOST_BIN, *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{args}: {r.stdout}{r.stderr}"

    def start(self):
        log = open(self.status_log, "a")
        self.status_proc = subprocess.Popen(
            [SHELL_BIN, "--root", self.shell, "status-serve", "--listen",
             f"127.0.0.1:{self.status_port}", "--feed", self.feed_path, "-v"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        assert wait_for_port(self.status_port, self.status_proc), self.status_log_text()
        self.feed = FeedReader(self.feed_path)
        self.agent.start()
        wait_until(lambda: "status: connected to the shell" in self.agent.log(), 30, "the agent's status connection")

    def status_log_text(self):
        try:
            with open(self.status_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def cli(self, *args, input=None):
        return convocate(self.shell, *args, input=input)

    def ok(self, *args, input=None):
        r = self.cli(*args, input=input)
        assert r.returncode == 0, f"convocate {args}: rc={r.returncode}\n{r.stdout}{r.stderr}"
        return r

    def ls(self):
        return json.loads(self.ok("ls", "--json").stdout)

    def session(self, name):
        [s] = [s for s in self.ls() if s["name"] == name]
        return s

    def home(self, uuid):
        return os.path.join(self.agent_root, "home", "claude", uuid)

    def env_file(self):
        return os.path.join(self.agent.etc, "claude.env")

    def cleanup(self):
        if self.feed:
            self.feed.close()
        if self.agent:
            self.agent.cleanup()
        stop_process(self.status_proc)
        remove_tree(self.base)


@pytest.fixture(scope="module")
def claude_bin():
    return claude_cli.executable()


@pytest.fixture(scope="module")
def standin():
    api = ModelStandin(reply=answer).start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def pair(test_image, claude_bin, standin, tmp_path_factory):
    p = Pair(test_image, claude_bin)
    try:
        p.start()
        key = tmp_path_factory.mktemp("key") / "anthropic.key"
        key.write_text(API_KEY + "\n")
        key.chmod(0o600)
        r = p.ok("auth", "set", "--all", "--api-key-file", str(key), "--base-url", standin.url,
                 "--model", MODEL)
        assert API_KEY not in r.stdout + r.stderr
        yield p
    finally:
        p.cleanup()


# ---- the operator's terminal ----


class Terminal:
    """`convocate attach NAME` on a pty of 40x120; what it drew, with escape
    sequences read as spaces, for matching words on the screen."""

    def __init__(self, pair, name):
        self.child = pexpect.spawn(SHELL_BIN, ["--root", pair.shell, "attach", name],
                                   dimensions=(40, 120), timeout=5, encoding="utf-8",
                                   codec_errors="replace")
        self.raw = ""

    def _pump(self, wait):
        try:
            self.raw += self.child.read_nonblocking(65536, timeout=wait)
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF:
            return False
        return True

    def text(self, since=0):
        flat = ESCAPE.sub(" ", self.raw[since:]).replace("\r", " ")
        return re.sub(r"[ \t]+", " ", flat)

    def mark(self):
        return len(self.raw)

    def wait(self, what, predicate, timeout=90, since=0):
        deadline = time.monotonic() + timeout
        while True:
            found = predicate(self.text(since))
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; screen "
                                     f"text: {self.text(since)[-3000:]!r}")
            if not self._pump(0.2):
                found = predicate(self.text(since))
                if found:
                    return found
                raise AssertionError(f"attach ended while waiting for {what}: "
                                     f"{self.text(since)[-3000:]!r}")

    def prompt(self, timeout=90, since=0):
        """Claude's prompt, failing at once on a dialog instead."""
        def seen(text):
            if DIALOG.search(text):
                return "dialog"
            return "prompt" if "❯" in text and FOOTER.search(text) else None
        got = self.wait("Claude's prompt (or a dialog)", seen, timeout, since)
        assert got == "prompt", self.text(since)[-3000:]

    def type(self, text):
        """Types text, and Enter once the text is on the screen: Enter in
        the same burst would be taken as part of a paste."""
        mark = self.mark()
        self.child.send(text)
        self.wait(f"{text!r} typed", lambda t: text in t, 30, since=mark)
        self.child.send("\r")

    def detach(self):
        self.child.sendcontrol("b")
        self.child.send("d")
        self.child.expect(pexpect.EOF, timeout=30)
        self.child.close()
        return self.child.exitstatus

    def close(self):
        if self.child.isalive():
            self.child.close(force=True)


@pytest.fixture
def terminals():
    made = []

    def attach(pair, name):
        t = Terminal(pair, name)
        made.append(t)
        return t

    yield attach
    for t in made:
        t.close()


def ask(term, api, tag=None):
    """Types a question; waits for its answer on the screen; the request
    that carried it to the stand-in."""
    tag = tag or uuidlib.uuid4().hex[:8]
    before = len(api.snapshot())
    mark = term.mark()
    term.type(f"please answer ask-{tag}")
    req = api.wait_for(lambda r: r.seq >= before and r.is_conversation()
                       and f"ask-{tag}" in r.text(), 90)
    term.wait(f"the answer to ask-{tag}", lambda t: f"● answer-{tag}" in t, 90, since=mark)
    return req


def new_session(pair, *extra):
    name = "e2e-" + uuidlib.uuid4().hex[:6]
    r = pair.ok("new", name, *extra)
    return name, r.stdout.split()[0]


def container(uuid):
    return "convocate-session-" + uuid


def claude_cmdlines(uuid):
    r = docker("exec", container(uuid), "pgrep", "-a", "-f", CLI_PATTERN, check=False)
    return r.stdout.splitlines() if r.returncode == 0 else []


def transcript_holds(pair, uuid, text):
    convs = os.path.join(pair.home(uuid), ".claude", "projects", "-home-claude")
    try:
        names = [n for n in os.listdir(convs) if n.endswith(".jsonl")]
    except FileNotFoundError:
        return False
    for name in names:
        with open(os.path.join(convs, name), errors="replace") as f:
            if text in f.read():
                return True
    return False


# ---- the tests ----


def test_auth_new_attach_opens_at_the_prompt_and_talks_to_the_configured_model(
        pair, standin, terminals):
    st = os.lstat(pair.env_file())
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    name, uuid = new_session(pair)
    before = len(standin.snapshot())
    term = terminals(pair, name)
    term.prompt()
    req = ask(term, standin)
    assert req.model == MODEL
    posts = [r for r in standin.snapshot()[before:] if r.method == "POST"]
    assert posts and {r.headers.get("x-api-key") for r in posts} == {API_KEY}
    assert not any("authorization" in r.headers for r in posts)
    # The conversation runs on the configured model; Claude's side requests
    # (a quota check, the title) use its small model, which the contract
    # (SPEC 15: ANTHROPIC_MODEL only) does not set.
    assert {r.model for r in posts if r.is_conversation()} == {MODEL}
    assert term.detach() == 0
    assert pair.session(name)["state"] == "R"


def test_claude_killed_in_the_container_leaves_the_session_running_and_enter_resumes(
        pair, standin, terminals):
    name, uuid = new_session(pair)
    term = terminals(pair, name)
    term.prompt()
    ask(term, standin)
    assert term.detach() == 0
    [cmd] = claude_cmdlines(uuid)
    assert docker("exec", container(uuid), "pkill", "-f", CLI_PATTERN,
                  check=False).returncode == 0
    wait_until(lambda: claude_cmdlines(uuid) == [], 30, "Claude gone")
    assert pair.session(name)["state"] == "R"

    term = terminals(pair, name)
    m = term.wait("the supervisor's exit line", EXIT_LINE.search, 60)
    assert m.group(1) == "143", m.group(0)  # SIGTERM
    assert claude_cmdlines(uuid) == []  # it waits for Enter
    mark = term.mark()
    term.child.send("\r")
    term.prompt(since=mark)
    [cmd] = wait_until(lambda: claude_cmdlines(uuid), 60, "Claude started again")
    assert "--continue" in cmd.split()
    assert pair.session(name)["state"] == "C"  # up, with an operator attached
    assert term.detach() == 0
    assert pair.session(name)["state"] == "R"


def test_kill_and_restart_resume_the_conversation_and_time_to_prompt(pair, standin, terminals):
    name, uuid = new_session(pair)
    term = terminals(pair, name)
    term.prompt()
    first = uuidlib.uuid4().hex[:8]
    ask(term, standin, first)
    assert term.detach() == 0
    # Claude writes its transcript a moment after it draws the answer.
    wait_until(lambda: transcript_holds(pair, uuid, f"answer-{first}"), 60, "the answer in Claude's transcript")
    times = []
    for run in range(3):
        pair.ok("kill", name)
        assert pair.session(name)["state"] != "R"
        t0 = time.monotonic()
        pair.ok("restart", name)
        term = terminals(pair, name)
        term.prompt(120)
        times.append(time.monotonic() - t0)
        if run == 0:
            req = ask(term, standin)
            assert len(req.messages) > 1, req.messages
            assert f"ask-{first}" in req.text() and f"answer-{first}" in json.dumps(req.messages)
        assert term.detach() == 0
    print(f"\nrestart -> Claude's prompt on the screen: runs {[f'{t:.2f}' for t in times]} s, "
          f"p50 {statistics.median(times):.2f} s")


def test_autonomous_session_skips_permissions_and_the_default_does_not(pair):
    auto, auto_uuid = new_session(pair, "--autonomous")
    plain, plain_uuid = new_session(pair)
    pair.ok("restart", auto)
    pair.ok("restart", plain)
    [auto_cmd] = wait_until(lambda: claude_cmdlines(auto_uuid), 60, "Claude in the autonomous session")
    [plain_cmd] = wait_until(lambda: claude_cmdlines(plain_uuid), 60, "Claude in the default session")
    assert "--dangerously-skip-permissions" in auto_cmd.split(), auto_cmd
    assert "--dangerously-skip-permissions" not in plain_cmd.split(), plain_cmd
    assert pair.session(auto)["autonomous"] is True
    assert pair.session(plain)["autonomous"] is False


def test_claude_env_with_an_unknown_key_is_refused_with_its_line(pair, standin, terminals,
                                                                 tmp_path):
    name, uuid = new_session(pair)
    with open(pair.env_file()) as f:
        good = f.read()
    try:
        with open(pair.env_file(), "w") as f:
            f.write(f"# edited by hand\n{good}NOT_A_CLAUDE_KEY=1\n")
        bad_line = 2 + good.count("\n")
        want = f'claude.env line {bad_line}: unknown key "NOT_A_CLAUDE_KEY"'
        r = pair.cli("restart", name)
        assert r.returncode == 1 and want in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert pair.session(name)["state"] != "R"
        term = terminals(pair, name)
        term.wait("the refusal on the operator's terminal", lambda t: want in t, 60)
        term.child.expect(pexpect.EOF, timeout=30)
        term.child.close()
        assert term.child.exitstatus == 1
    finally:
        key = tmp_path / "k"
        key.write_text(API_KEY)
        pair.ok("auth", "set", "--all", "--api-key-file", str(key), "--base-url", standin.url,
                "--model", MODEL)
    st = os.lstat(pair.env_file())
    assert stat.S_IMODE(st.st_mode) == 0o600
    with open(pair.env_file()) as f:
        assert f.read() == good
    pair.ok("restart", name)
    assert pair.session(name)["state"] == "R"


def write_owned(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, CLAUDE_UID, CLAUDE_UID)
    os.chmod(path, 0o600)


def test_shared_login_is_copied_into_a_new_session_never_over_its_own(pair):
    shared_dir = os.path.join(pair.agent_root, "home", "claude", ".claude")
    os.makedirs(shared_dir, exist_ok=True)
    os.chown(shared_dir, CLAUDE_UID, CLAUDE_UID)
    shared = '{"claudeAiOauth": {"e2e": "shared-' + uuidlib.uuid4().hex + '"}}'
    write_owned(os.path.join(shared_dir, ".credentials.json"), shared)
    try:
        fresh, fresh_uuid = new_session(pair)
        own, own_uuid = new_session(pair)
        mine = '{"claudeAiOauth": {"e2e": "own-' + uuidlib.uuid4().hex + '"}}'
        own_dir = os.path.join(pair.home(own_uuid), ".claude")
        os.makedirs(own_dir, exist_ok=True)
        os.chown(own_dir, CLAUDE_UID, CLAUDE_UID)
        write_owned(os.path.join(own_dir, ".credentials.json"), mine)
        pair.ok("restart", fresh)
        pair.ok("restart", own)
        copied = os.path.join(pair.home(fresh_uuid), ".claude", ".credentials.json")
        wait_until(lambda: os.path.exists(copied), 60, "the shared login copied")
        st = os.lstat(copied)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert (st.st_uid, st.st_gid) == (CLAUDE_UID, CLAUDE_UID)
        with open(copied) as f:
            assert f.read() == shared
        # The session's own login survives its start and a restart.
        wait_until(lambda: claude_cmdlines(own_uuid), 60, "Claude in the session with its own login")
        for _ in range(2):
            with open(os.path.join(own_dir, ".credentials.json")) as f:
                assert f.read() == mine
            pair.ok("kill", own)
            pair.ok("restart", own)
            wait_until(lambda: claude_cmdlines(own_uuid), 60, "Claude again")
    finally:
        os.remove(os.path.join(shared_dir, ".credentials.json"))


def tree_holding(top, needle, skip):
    """Files under top (no link followed) whose bytes hold needle."""
    found = []
    for d, dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(d, name)
            if path in skip or os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                if needle in f.read():
                    found.append(path)
    return found


def test_the_key_is_nowhere_but_claude_env(pair, standin):
    """Last: over everything the module's tests did (sessions made, started,
    killed, restarted, refused, attached)."""
    a = pair.agent
    secret = API_KEY.encode()
    # What would make this test vacuous: nothing happened.
    events = a.events()
    assert any(e["type"] == "container.started" for e in events)
    feed_events = pair.feed.events()
    assert any(e["type"] == "container.started" for e in feed_events)
    assert sum(1 for r in standin.snapshot() if r.headers.get("x-api-key") == API_KEY) > 3

    ids = a.containers()
    assert ids
    inspected = docker("inspect", *ids).stdout
    assert API_KEY not in inspected
    assert tree_holding(pair.shell, secret, set()) == []
    assert tree_holding(pair.agent_root, secret, {pair.env_file()}) == []
    with open(pair.env_file(), "rb") as f:
        assert secret in f.read()  # where it is meant to be
    assert API_KEY not in a.log()
    assert API_KEY not in pair.status_log_text()
    assert API_KEY not in pair.feed.text()
    with open(a.events_path) as f:
        assert API_KEY not in f.read()
    answers = []
    for op, params in [("ping", None), ("list", None), ("auth-get", None),
                       ("settings-get", None)] + [("get", {"id": s["uuid"]})
                                                  for s in a.ok("list")]:
        line = json.dumps({"op": op, "params": params}).encode() + b"\n"
        answers.append(a.rpc_raw(line).stdout.decode(errors="replace"))
    assert all('"ok":true' in t.replace(" ", "") for t in answers), answers
    for text in answers:
        assert API_KEY not in text
    for args in (("ls", "--json"), ("ls",), ("agents", "--json"), ("auth", "status", "--json")):
        r = pair.ok(*args)
        assert API_KEY not in r.stdout + r.stderr
