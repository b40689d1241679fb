"""The session image's side of Claude (SPEC 15, docs/claude-env-contract.md):
the entrypoint's claude.env, first-run merge and shared-login fallback, and
Claude's supervisor in the tmux pane.

Containers are run straight from the test image with the contract's mounts
and environment, the way the agent runs them. The tests that need Claude
itself run the real CLI from npm (lib/claude_cli) against a stand-in for the
Messages API (lib/model_standin) on the Docker bridge's gateway; they are
skipped when npm cannot provide the CLI. The tests of the entrypoint's own
file handling mount a small script as /usr/local/bin/claude instead: it
records how the supervisor started it, and keeps the real CLI (which rewrites
~/.claude.json itself) out of what they assert."""
import json
import os
import re
import shutil
import stat
import subprocess
import time
import uuid

import pytest

from lib.common import docker
from lib.model_standin import ModelStandin
from lib.wait import wait_until

CLAUDE_UID = 1337
API_KEY = "sk-ant-api03-standin-" + "K" * 40 + "-tail-0123456789ab"
MODEL = "standin-model-7"
EXIT_LINE = re.compile(r"claude exited \(status (\d+)\) at \d\d:\d\d:\d\d — Enter: start Claude "
                       r"again \(resumes\) · Ctrl-b d: detach")
# Claude's input line: the ❯ prompt in column 0 with its footer under it. A
# dialog's choice is indented ("  ❯ 1. Yes"), never in column 0.
PROMPT = re.compile(r"^❯", re.M)
# The footer is the image's statusLine ("model · $cost", SPEC 16) or, in
# bypass mode, Claude's own warning.
FOOTER = re.compile(r"\? for shortcuts|bypass permissions on|^  \S+ · \$\d", re.M)
DIALOG = re.compile(r"^\s+❯ \d\.|API key|trust the files|Yes, I accept", re.M)
# Records its argv, one line a start, then waits like Claude at its prompt;
# a number N in the file /tmp/fake-exit makes it exit N at once instead.
FAKE_CLAUDE = """#!/bin/sh
echo "$*" >>/tmp/claude-starts
if [ -f /tmp/fake-exit ]; then exit "$(cat /tmp/fake-exit)"; fi
while :; do sleep 3600; done
"""


class Session:
    """One session container, run as the agent runs one (SPEC 4, 10)."""

    def __init__(self, image, root, claude_bin=None, claude_env=None, shared=None, model="",
                 autonomous="0", home=None, network=None):
        self.image = image
        self.root = root
        self.home = home or make_home(root)
        self.claude_bin = claude_bin
        self.claude_env = claude_env
        self.shared = shared
        self.model = model
        self.autonomous = autonomous
        self.network = network
        self.uuid = str(uuid.uuid4())
        self.name = f"convocate-test-claude-{self.uuid[:12]}"
        self.cid = None
        self.started_at = None

    def run_argv(self):
        argv = ["run", "-d", "--name", self.name, "--label", "convocate.test=1",
                "--hostname", f"convocate-{self.uuid[:8]}", "-w", "/home/claude",
                "-e", f"CLAUDE_UID={CLAUDE_UID}", "-e", f"CLAUDE_GID={CLAUDE_UID}",
                "-e", f"CONVOCATE_SESSION_ID={self.uuid}",
                "-e", f"CONVOCATE_MODEL={self.model}",
                "-e", f"CONVOCATE_AUTONOMOUS={self.autonomous}",
                "-v", f"{self.home}:/home/claude"]
        if self.network:
            argv += ["--network", self.network]
        if self.shared:
            argv += ["-v", f"{self.shared}:/home/claude/.claude-shared:ro"]
        if self.claude_env:
            argv += ["-v", f"{self.claude_env}:/run/convocate/claude.env:ro"]
        if self.claude_bin:
            argv += ["-v", f"{self.claude_bin}:/usr/local/bin/claude:ro"]
        return argv + [self.image]

    def run(self):
        self.started_at = time.monotonic()
        r = docker(*self.run_argv(), check=False)
        assert r.returncode == 0, r.stderr
        self.cid = r.stdout.strip()
        return self

    def exec(self, *args, user=None, check=False):
        u = ["-u", user] if user else []
        return docker("exec", *u, self.cid, *args, check=check)

    def tmux(self, *args):
        return self.exec("tmux", *args, user="claude")

    def pane(self):
        r = self.tmux("capture-pane", "-p", "-J", "-t", "claude")
        return r.stdout if r.returncode == 0 else ""

    def wait_pane(self, what, predicate, timeout=60):
        try:
            return wait_until(lambda: predicate(self.pane()), timeout, what)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- pane ---\n{self.pane()}\n--- log ---\n{self.logs()}")

    def wait_tmux(self, timeout=60):
        """The entrypoint has prepared the home and started tmux."""
        wait_until(lambda: self.tmux("has-session", "-t", "claude").returncode == 0, timeout,
                   "tmux session claude")

    def send(self, text, enter=True):
        if text:
            assert self.tmux("send-keys", "-t", "claude", "-l", text).returncode == 0
        if enter:
            assert self.tmux("send-keys", "-t", "claude", "Enter").returncode == 0

    def claude_cmdlines(self):
        """Command lines of the CLI's processes. Not by name: the CLI runs
        its built-in ripgrep as a child named claude too (argv[0] "rg")."""
        r = self.exec("pgrep", "-a", "-f", "^/usr/local/bin/claude( |$)")
        return r.stdout.splitlines() if r.returncode == 0 else []

    def fake_starts(self):
        r = self.exec("cat", "/tmp/claude-starts")
        return r.stdout.splitlines() if r.returncode == 0 else []

    def running(self):
        r = docker("inspect", "-f", "{{.State.Running}}", self.cid, check=False)
        return r.stdout.strip() == "true"

    def logs(self):
        r = docker("logs", self.cid, check=False) if self.cid else None
        return (r.stdout + r.stderr) if r else ""

    def stop(self):
        docker("stop", "-t", "10", self.cid, check=False)

    def remove(self):
        # By name: a run that failed to start leaves a created container
        # without handing back its id.
        docker("rm", "-f", self.cid or self.name, check=False)


def make_home(root):
    for i in range(100):
        home = os.path.join(root, f"home{i}")
        if not os.path.exists(home):
            break
    os.makedirs(home)
    os.chown(home, CLAUDE_UID, CLAUDE_UID)
    os.chmod(home, 0o700)
    return home


def mkdir_owned(path):
    """A directory as the session would have made it: claude's, 0700."""
    os.mkdir(path, 0o700)
    os.chown(path, CLAUDE_UID, CLAUDE_UID)


def write_owned(path, content, mode=0o600, uid=CLAUDE_UID):
    with open(path, "w") as f:
        f.write(content)
    os.chown(path, uid, uid)
    os.chmod(path, mode)


def write_claude_env(root, lines):
    path = os.path.join(root, "claude.env")
    write_owned(path, "".join(line + "\n" for line in lines), 0o600, 0)
    return path


def transcript_holds(home, text):
    """Some conversation Claude keeps for /home/claude holds text."""
    convs = os.path.join(home, ".claude", "projects", "-home-claude")
    try:
        names = [n for n in os.listdir(convs) if n.endswith(".jsonl")]
    except FileNotFoundError:
        return False
    for name in names:
        with open(os.path.join(convs, name), errors="replace") as f:
            if text in f.read():
                return True
    return False


def at_prompt(text):
    return bool(PROMPT.search(text) and FOOTER.search(text))


def first_prompt(session, timeout=90):
    """Waits for Claude's prompt, failing at once on a dialog instead; the
    screen."""
    screen = session.wait_pane("Claude's prompt (or a dialog)",
                               lambda t: t if at_prompt(t) or DIALOG.search(t) else None,
                               timeout)
    assert not DIALOG.search(screen), screen
    return screen


def after_last(text, first, then):
    """then matches on a line below the last match of first."""
    lines = text.splitlines()
    last_first = max((i for i, line in enumerate(lines) if first.search(line)), default=-1)
    return any(then.search(line) for line in lines[last_first + 1:])


@pytest.fixture
def sessions(test_image, tmp_path):
    made = []

    def factory(**kw):
        s = Session(test_image, str(tmp_path), **kw)
        made.append(s)
        return s

    yield factory
    for s in made:
        s.remove()


@pytest.fixture
def fake_claude(tmp_path):
    path = tmp_path / "fake-claude"
    path.write_text(FAKE_CLAUDE)
    path.chmod(0o755)
    return str(path)


def standin_env(tmp_path, api):
    return write_claude_env(str(tmp_path), [
        "# written as auth-set writes it", f"ANTHROPIC_API_KEY={API_KEY}",
        f"ANTHROPIC_BASE_URL={api.url}", f"ANTHROPIC_MODEL={MODEL}"])


def ask(session, api, prompt, timeout=90):
    """Types a prompt; returns the conversation request that carried it to
    the stand-in."""
    before = len(api.snapshot())
    session.send(prompt)
    return api.wait_for(lambda r: r.seq >= before and r.is_conversation()
                        and prompt in r.text(), timeout)


# ---- with the real CLI ----


def test_a_new_home_opens_at_claudes_prompt_and_talks_to_the_configured_model(
        sessions, standin, claude_bin, tmp_path):
    s = sessions(claude_bin=claude_bin, claude_env=standin_env(tmp_path, standin)).run()
    first_prompt(s)
    to_prompt = time.monotonic() - s.started_at
    print(f"\ndocker run -> Claude's prompt: {to_prompt:.2f} s")

    ask(s, standin, "hello stand-in")
    s.wait_pane("the stand-in's reply", lambda t: "● reply-1" in t)

    posts = [r for r in standin.snapshot() if r.method == "POST"]
    assert posts and any(r.is_conversation() for r in posts)
    assert {r.headers.get("x-api-key") for r in posts} == {API_KEY}
    assert not any("authorization" in r.headers for r in posts)
    # The conversation runs on the configured model; side requests (the
    # session's title) may use Claude's small model.
    assert {r.model for r in posts if r.is_conversation()} == {MODEL}
    print("requests seen by the stand-in:", standin.snapshot())

    # The key is nowhere in the container's config, nor on a command line.
    assert API_KEY not in docker("inspect", s.cid).stdout
    cmdlines = s.exec("sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").stdout
    assert "/usr/local/bin/claude" in cmdlines and API_KEY not in cmdlines
    # ... but in the pane's environment, where Claude reads it.
    env = s.tmux("show-environment", "-g").stdout.splitlines()
    assert f"ANTHROPIC_API_KEY={API_KEY}" in env
    assert "DISABLE_AUTOUPDATER=1" in env and "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1" in env


def test_claude_killed_leaves_the_container_running_and_enter_resumes(
        sessions, standin, claude_bin, tmp_path):
    s = sessions(claude_bin=claude_bin, claude_env=standin_env(tmp_path, standin)).run()
    first_prompt(s)
    ask(s, standin, "remember the word alpha")
    s.wait_pane("the stand-in's reply", lambda t: "● reply-1" in t)
    assert not any("--continue" in c for c in s.claude_cmdlines())

    assert s.exec("pkill", "-x", "claude").returncode == 0
    m = s.wait_pane("the supervisor's exit line", EXIT_LINE.search)
    assert m.group(1) == "143"  # SIGTERM
    assert s.running()
    assert s.claude_cmdlines() == []  # nothing restarted it: it waits for Enter

    s.send("", enter=True)
    [cmd] = wait_until(s.claude_cmdlines, 60, "Claude started again")
    assert "--continue" in cmd.split()
    s.wait_pane("Claude's prompt below the exit line",
                lambda t: after_last(t, EXIT_LINE, FOOTER), 90)
    req = ask(s, standin, "and now beta")
    assert "remember the word alpha" in req.text()
    s.wait_pane("the second reply", lambda t: "● reply-2" in t)


def test_a_new_container_on_the_same_home_continues_the_conversation(
        sessions, standin, claude_bin, tmp_path):
    env = standin_env(tmp_path, standin)
    first = sessions(claude_bin=claude_bin, claude_env=env).run()
    first_prompt(first)
    ask(first, standin, "the first question")
    first.wait_pane("the first reply", lambda t: "● reply-1" in t)
    # Claude writes its transcript a moment after it draws the reply; a stop
    # in between loses the exchange (Claude's doing, not the image's).
    wait_until(lambda: transcript_holds(first.home, "reply-1"), 60,
               "the reply in Claude's transcript")
    first.stop()
    assert not first.running()

    second = sessions(claude_bin=claude_bin, claude_env=env, home=first.home).run()
    first_prompt(second)
    [cmd] = second.claude_cmdlines()
    assert "--continue" in cmd.split()
    req = ask(second, standin, "the second question")
    roles = [m.get("role") for m in req.messages]
    assert len(req.messages) > 2 and "assistant" in roles, req.messages
    said = [m for m in req.messages if m.get("role") == "assistant"]
    assert any("reply-1" in json.dumps(m) for m in said)
    assert "the first question" in req.text()
    second.wait_pane("the second reply", lambda t: "● reply-2" in t)


@pytest.mark.parametrize("autonomous", ["1", "0"])
def test_autonomous_runs_claude_with_skip_permissions(sessions, standin, claude_bin, tmp_path,
                                                      autonomous):
    s = sessions(claude_bin=claude_bin, claude_env=standin_env(tmp_path, standin),
                 autonomous=autonomous).run()
    screen = first_prompt(s)  # no bypass-mode disclaimer either
    [cmd] = s.claude_cmdlines()
    assert ("--dangerously-skip-permissions" in cmd.split()) == (autonomous == "1"), cmd
    assert "--settings /usr/local/share/convocate/claude-settings.json" in cmd
    assert ("bypass permissions on" in screen) == (autonomous == "1")


def test_the_standins_tool_marker_makes_claude_run_bash(sessions, standin, claude_bin,
                                                        tmp_path):
    s = sessions(claude_bin=claude_bin, claude_env=standin_env(tmp_path, standin),
                 autonomous="1").run()
    first_prompt(s)
    ask(s, standin, "please run [[bash: echo tool-ran-$((6*7)) >/tmp/tool-proof]]")
    back = standin.wait_for(lambda r: r.is_conversation() and "toolu_standin000001" in
                            json.dumps([m for m in r.messages if m.get("role") == "user"]))
    assert "tool_result" in json.dumps(back.messages)
    assert s.exec("cat", "/tmp/tool-proof").stdout == "tool-ran-42\n"
    s.wait_pane("the reply after the tool", lambda t: "● reply-1" in t)


@pytest.fixture
def counted_network():
    """A bridge network of the test's own, and a counter of the packets its
    containers send to any address but its gateway (iptables' mangle table,
    which Docker leaves alone): (name, gateway, count())."""
    if not shutil.which("iptables"):
        pytest.skip("iptables is not installed")
    name = f"convocate-test-net-{uuid.uuid4().hex[:8]}"
    net_id = docker("network", "create", "--label", "convocate.test=1", name).stdout.strip()
    rule = None
    try:
        ifname = "br-" + net_id[:12]
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", ifname],
                             capture_output=True, text=True, check=True).stdout
        gateway = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out).group(1)
        rule = ["PREROUTING", "-i", ifname, "!", "-d", gateway, "-m", "comment",
                "--comment", name]
        subprocess.run(["iptables", "-t", "mangle", "-I", *rule], check=True)

        def count():
            out = subprocess.run(["iptables", "-t", "mangle", "-L", "PREROUTING", "-v", "-x",
                                  "-n"], capture_output=True, text=True, check=True).stdout
            [line] = [line for line in out.splitlines() if f"/* {name} */" in line]
            return int(line.split()[0])

        yield name, gateway, count
    finally:
        attached = docker("ps", "-aq", "--filter", f"network={name}", check=False).stdout.split()
        if attached:
            docker("rm", "-f", *attached, check=False)
        if rule:
            subprocess.run(["iptables", "-t", "mangle", "-D", *rule], check=False)
        docker("network", "rm", name, check=False)


def test_claude_in_a_session_dials_nothing_but_its_model_service(
        sessions, claude_bin, tmp_path, counted_network):
    network, gateway, sent_elsewhere = counted_network
    with ModelStandin(host=gateway) as api:
        s = sessions(claude_bin=claude_bin, claude_env=standin_env(tmp_path, api),
                     autonomous="1", network=network).run()
        first_prompt(s)
        ask(s, api, "a first run, with a tool: [[bash: echo tool-ran]]")
        s.wait_pane("the reply after the tool", lambda t: "● reply-1" in t)
        s.send("/exit")
        s.wait_pane("Claude's exit", EXIT_LINE.search)
        assert len(api.conversation()) == 2
    assert sent_elsewhere() == 0


# ---- the entrypoint and the supervisor, with a placeholder claude ----


def test_shared_login_is_copied_once_and_never_over_the_sessions_own(sessions, fake_claude,
                                                                     tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chown(shared, CLAUDE_UID, CLAUDE_UID)
    write_owned(str(shared / ".credentials.json"), '{"shared": 1}')

    s = sessions(claude_bin=fake_claude, shared=str(shared)).run()
    s.wait_tmux()
    dot_claude = os.path.join(s.home, ".claude")
    copied = os.path.join(dot_claude, ".credentials.json")
    st = os.lstat(copied)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert (st.st_uid, st.st_gid) == (CLAUDE_UID, CLAUDE_UID)
    d = os.lstat(dot_claude)
    assert stat.S_IMODE(d.st_mode) == 0o700 and d.st_uid == CLAUDE_UID
    with open(copied) as f:
        assert f.read() == '{"shared": 1}'
    assert [n for n in os.listdir(dot_claude) if n != ".credentials.json"] == []

    # The agent's login changes; the session keeps the copy it has.
    s.stop()
    write_owned(str(shared / ".credentials.json"), '{"shared": 2}')
    again = sessions(claude_bin=fake_claude, shared=str(shared), home=s.home).run()
    again.wait_tmux()
    with open(copied) as f:
        assert f.read() == '{"shared": 1}'

    # A session's own credentials, and even a dangling symlink, stay as they are.
    own = sessions(claude_bin=fake_claude, shared=str(shared))
    mkdir_owned(os.path.join(own.home, ".claude"))
    write_owned(os.path.join(own.home, ".claude", ".credentials.json"), '{"own": 1}')
    own.run().wait_tmux()
    with open(os.path.join(own.home, ".claude", ".credentials.json")) as f:
        assert f.read() == '{"own": 1}'

    trap = sessions(claude_bin=fake_claude, shared=str(shared))
    mkdir_owned(os.path.join(trap.home, ".claude"))
    link = os.path.join(trap.home, ".claude", ".credentials.json")
    os.symlink("/tmp/stolen-credentials", link)
    os.lchown(link, CLAUDE_UID, CLAUDE_UID)
    trap.run().wait_tmux()
    assert os.readlink(link) == "/tmp/stolen-credentials"
    assert trap.exec("test", "-e", "/tmp/stolen-credentials").returncode == 1


def test_first_run_merge_keeps_what_claude_json_holds(sessions, fake_claude, tmp_path):
    env = write_claude_env(str(tmp_path), [f"ANTHROPIC_API_KEY={API_KEY}"])
    s = sessions(claude_bin=fake_claude, claude_env=env)
    existing = {"numStartups": 7, "theme": "dark",
                "projects": {"/home/claude": {"allowedTools": ["Bash(ls)"]},
                             "/elsewhere": {"hasTrustDialogAccepted": False}},
                "customApiKeyResponses": {"approved": ["an-older-key-tail-xx"],
                                          "rejected": ["a-rejected-key-tail-x"]}}
    path = os.path.join(s.home, ".claude.json")
    write_owned(path, json.dumps(existing))
    s.run().wait_tmux()

    with open(path) as f:
        merged = json.load(f)
    assert merged["numStartups"] == 7 and merged["theme"] == "dark"
    assert merged["hasCompletedOnboarding"] is True
    assert merged["projects"]["/home/claude"] == {"allowedTools": ["Bash(ls)"],
                                                  "hasTrustDialogAccepted": True}
    assert merged["projects"]["/elsewhere"] == {"hasTrustDialogAccepted": False}
    assert merged["customApiKeyResponses"] == {
        "approved": ["an-older-key-tail-xx", API_KEY[-20:]],
        "rejected": ["a-rejected-key-tail-x"]}
    st = os.lstat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and (st.st_uid, st.st_gid) == (CLAUDE_UID,
                                                                             CLAUDE_UID)
    assert [n for n in os.listdir(s.home) if ".convocate." in n] == []

    # Again: nothing to add, no duplicate, the file is not even rewritten.
    s.stop()
    inode = os.lstat(path).st_ino
    again = sessions(claude_bin=fake_claude, claude_env=env, home=s.home).run()
    again.wait_tmux()
    with open(path) as f:
        assert json.load(f) == merged
    assert os.lstat(path).st_ino == inode


def test_a_new_home_gets_a_claude_json_without_an_api_key(sessions, fake_claude):
    s = sessions(claude_bin=fake_claude).run()
    s.wait_tmux()
    with open(os.path.join(s.home, ".claude.json")) as f:
        assert json.load(f) == {"hasCompletedOnboarding": True,
                                "projects": {"/home/claude": {"hasTrustDialogAccepted": True}}}


def test_an_unparseable_claude_json_is_left_alone_with_one_warning(sessions, fake_claude,
                                                                   tmp_path):
    env = write_claude_env(str(tmp_path), [f"ANTHROPIC_API_KEY={API_KEY}"])
    s = sessions(claude_bin=fake_claude, claude_env=env)
    path = os.path.join(s.home, ".claude.json")
    broken = '{"numStartups": 3, "projects": {'
    write_owned(path, broken, 0o644)
    before = os.lstat(path)
    s.run().wait_tmux()
    with open(path) as f:
        assert f.read() == broken
    after = os.lstat(path)
    assert (after.st_ino, after.st_mtime_ns, stat.S_IMODE(after.st_mode)) == \
        (before.st_ino, before.st_mtime_ns, 0o644)
    warnings = [line for line in s.logs().splitlines() if ".claude.json" in line]
    assert len(warnings) == 1 and "left alone" in warnings[0], s.logs()
    wait_until(s.fake_starts, 60, "the supervisor still starting Claude")


def test_claude_env_exports_only_the_allowed_keys(sessions, fake_claude, tmp_path):
    env = write_claude_env(str(tmp_path), [
        "# comment", "", f"ANTHROPIC_API_KEY={API_KEY}", "ANTHROPIC_BASE_URL=http://192.0.2.1:9",
        "FOO=bar", "just-a-line", "ANTHROPIC_MODEL=two words", "ANTHROPIC_API_KEY=sk-second",
        "ANTHROPIC_MODEL=standin-model-9"])
    s = sessions(claude_bin=fake_claude, claude_env=env).run()
    s.wait_tmux()
    got = {}
    for line in s.tmux("show-environment", "-g").stdout.splitlines():
        key, _, value = line.partition("=")
        if key.startswith(("ANTHROPIC_", "CLAUDE_CODE_", "FOO", "DISABLE_")):
            got[key] = value
    assert got == {"ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": "http://192.0.2.1:9",
                   "ANTHROPIC_MODEL": "standin-model-9", "DISABLE_AUTOUPDATER": "1",
                   "DISABLE_INSTALLATION_CHECKS": "1",
                   "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                   "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1"}
    log = s.logs()
    for line_no in (5, 6, 7, 8):
        assert f"claude.env line {line_no}:" in log, log
    assert 'unknown key "FOO"' in log
    assert "bar" not in log and "sk-second" not in log and "two words" not in log
    assert API_KEY not in log


@pytest.mark.parametrize("model,flag", [("claude-sonnet-4.5", ["--model", "claude-sonnet-4.5"]),
                                        ("", []), ("no spaces allowed", [])])
def test_supervisor_passes_a_valid_session_model(sessions, fake_claude, model, flag):
    s = sessions(claude_bin=fake_claude, model=model).run()
    [argv] = wait_until(s.fake_starts, 60, "Claude started")
    expected = ["--settings", "/usr/local/share/convocate/claude-settings.json"] + flag
    assert argv.split() == expected
    if model and not flag:
        s.wait_pane("the warning", lambda t: "CONVOCATE_MODEL is not a model name" in t)


def test_a_crashing_claude_waits_for_enter_each_time(sessions, fake_claude):
    s = sessions(claude_bin=fake_claude)
    for part in (".claude", ".claude/projects", ".claude/projects/-home-claude"):
        mkdir_owned(os.path.join(s.home, part))
    write_owned(os.path.join(s.home, ".claude", "projects", "-home-claude", "c.jsonl"), "{}\n")
    s.run()
    s.wait_tmux()
    s.exec("sh", "-c", "echo 1 >/tmp/fake-exit", check=True)
    # The first start predates /tmp/fake-exit: end it; later ones exit 1 at once.
    wait_until(s.fake_starts, 60, "the first start")
    s.exec("pkill", "-f", "/usr/local/bin/claude", check=True)
    s.wait_pane("the first exit line", EXIT_LINE.search)
    for n in (2, 3):
        s.send("", enter=True)
        s.wait_pane(f"exit line {n}", lambda t: len(EXIT_LINE.findall(t)) >= n)
        assert EXIT_LINE.findall(s.pane())[-1] == "1"
        assert len(s.fake_starts()) == n, s.fake_starts()
    assert s.running()
    starts = s.fake_starts()
    # Killed, it resumes again; a --continue that failed at once (status 1) is
    # followed by one fresh start, then resuming is tried again.
    assert ["--continue" in a.split() for a in starts] == [True, True, False]
    assert "could not be resumed" in s.pane()


def test_without_claude_the_pane_is_a_login_shell(sessions):
    s = sessions().run()
    s.wait_tmux()
    s.send("echo shell-$((6*7))")
    s.wait_pane("the shell's answer", lambda t: "shell-42" in t)
    assert not os.path.exists(os.path.join(s.home, ".claude.json"))
