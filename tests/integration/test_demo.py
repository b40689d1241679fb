"""`make demo` (README's first command) without its TUI: the set-up part runs
for real on this machine under a temporary demo root, the daemons come up,
a session is created and attached through the CLI, `make demo-stop` ends
exactly the daemons the demo started, and a second `make demo` finds the
session again."""
import json
import os
import subprocess
import tempfile

import pytest

from lib.common import remove_tree, BUILD, REPO, SHELL_BIN, docker, free_port
from lib.shell_cli import attach_type_detach, convocate
from lib.wait import wait_until


@pytest.fixture
def demo(test_image):
    root = tempfile.mkdtemp(prefix="convocate-demo-")
    # DEMO_CLAUDE=none: the same result whether or not this machine has claude.
    env = {**os.environ, "DEMO_ROOT": root, "DEMO_IMAGE": test_image, "DEMO_NO_TUI": "1",
           "DEMO_AGENT_PORT": str(free_port()), "DEMO_STATUS_PORT": str(free_port()),
           "DEMO_CLAUDE": "none"}
    for key in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL",
                "ANTHROPIC_MODEL"):
        env.pop(key, None)

    def make(target, **extra):
        return subprocess.run(["make", "-C", REPO, target, f"BUILD={BUILD}"],
                              env={**env, **extra}, capture_output=True, text=True, timeout=600)

    yield root, make
    make("demo-stop")
    agent_id = open(os.path.join(root, "agent/etc/convocate-agent/agent-id")).read().strip()
    ids = docker("ps", "-aq", "--filter", f"label=convocate.agent={agent_id}",
                 check=False).stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False)
    remove_tree(root)


def pids(root):
    out = {}
    for name in ("convocate-agent", "status-serve"):
        with open(os.path.join(root, "run", f"{name}.pid")) as f:
            out[name] = int(f.read())
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_demo_sets_up_a_shell_and_an_agent_that_work(demo):
    root, make = demo
    r = make("demo")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "demo: up" in r.stderr
    assert not os.path.lexists(os.path.join(root, "agent/usr/local/bin/claude"))
    assert not os.path.exists(os.path.join(root, "agent/etc/convocate-agent/claude.env"))
    shell = os.path.join(root, "shell")
    started = pids(root)
    assert all(alive(p) for p in started.values())

    r = convocate(shell, "agents", "--json")
    assert r.returncode == 0, r.stderr
    [agent] = json.loads(r.stdout)
    assert agent["reachable"] is True

    r = convocate(shell, "new", "demo-one")
    assert r.returncode == 0, r.stderr
    assert attach_type_detach(SHELL_BIN, ["--root", shell, "attach", "demo-one"],
                              "echo demo-$((6*7))", "demo-42") == 0

    # The demo paired the status channel too: the agent dialled status-serve.
    status_log = os.path.join(root, "log/status-serve.log")
    wait_until(lambda: "authenticated with" in open(status_log).read(), 10,
               "the agent's status channel in status-serve's log",
               detail=lambda: open(status_log).read())
    r = make("demo-stop")
    assert r.returncode == 0
    wait_until(lambda: not any(alive(p) for p in started.values()), 10,
               "the demo's daemons to exit")
    assert not any(alive(p) for p in started.values())
    running = docker("ps", "-q", "--filter", f"label=convocate.agent={agent['agent_id']}").stdout
    assert running.split(), "stopping the demo must leave the session container running"

    r = make("demo")  # again: same agent, the session is found
    assert r.returncode == 0, r.stdout + r.stderr
    r = convocate(shell, "ls", "--json")
    assert r.returncode == 0, r.stderr
    [session] = json.loads(r.stdout)
    assert session["name"] == "demo-one" and session["state"] == "R"


def test_demo_claude_and_credentials(demo, tmp_path):
    """DEMO_CLAUDE=PATH becomes the agent's /usr/local/bin/claude; the
    credentials in make demo's environment become the agent's claude.env in
    the contract's format (docs/claude-env-contract.md), never its log."""
    root, make = demo
    cli = tmp_path / "some-claude"
    cli.write_text("#!/bin/sh\nexit 0\n")
    cli.chmod(0o755)
    key = "sk-ant-demo-" + "d" * 30
    r = make("demo", DEMO_CLAUDE=str(cli), ANTHROPIC_API_KEY=key,
             ANTHROPIC_BASE_URL="http://127.0.0.1:9", ANTHROPIC_MODEL="demo-model")
    assert r.returncode == 0, r.stdout + r.stderr
    assert key not in r.stdout + r.stderr
    link = os.path.join(root, "agent/usr/local/bin/claude")
    assert os.path.realpath(link) == str(cli)
    env_file = os.path.join(root, "agent/etc/convocate-agent/claude.env")
    st = os.stat(env_file)
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600)
    with open(env_file) as f:
        lines = [line for line in f.read().splitlines() if not line.startswith("#")]
    assert lines == [f"ANTHROPIC_API_KEY={key}", "ANTHROPIC_BASE_URL=http://127.0.0.1:9",
                     "ANTHROPIC_MODEL=demo-model"]
    assert [n for n in os.listdir(os.path.dirname(env_file)) if "claude.env" in n] == \
        ["claude.env"]

    # none: the link goes; credentials left out of the environment keep the file.
    r = make("demo")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.lexists(link)
    assert os.path.exists(env_file)
