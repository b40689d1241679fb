"""The real Claude CLI in a session an agent of a NetCluster runs, against
the model stand-in (lib.model_standin): what test_activity.py and
test_tui_claude.py share.

Claude runs with --permission-mode default through a wrapper mounted as
/usr/local/bin/claude (the agent mounts <agent root>/usr/local/bin/claude),
so a tool_use of Bash (the stand-in answers one for the marker
[[bash: CMD]]) makes it ask permission. The real CLI is copied into the
session's home, where the wrapper finds it.

    with claude_cluster(image) as c:   # one agent, wrapper in place, started
        set_credentials(c.agents[0], standin)
        uuid = new_claude_session(c, "act1", claude_bin)  # created, CLI copied, running
        wait_prompt(c, "act1")                             # Claude's input line is up

The fixtures `standin` (the stand-in, started) and `claude_bin` (the real
CLI) are in conftest.py.
"""
import os
import re
import shutil
import time
from contextlib import contextmanager

from lib.netcluster import NetCluster
from lib.wait import wait_until

API_KEY = "sk-ant-api03-standin-" + "A" * 40 + "-activity-0123456789"
MODEL = "claude-sonnet-4-5"  # a model Claude prices, so the cost is not 0
CLI_IN_HOME = ".convocate-test-claude"
WRAPPER = f"""#!/bin/sh
exec /home/claude/{CLI_IN_HOME} --permission-mode default "$@"
"""


def install_wrapper(agent):
    """The wrapper where the agent mounts Claude from; before agent.start()."""
    wrapper = os.path.join(agent.root, "usr/local/bin/claude")
    os.makedirs(os.path.dirname(wrapper), exist_ok=True)
    with open(wrapper, "w") as f:
        f.write(WRAPPER)
    os.chmod(wrapper, 0o755)


@contextmanager
def claude_cluster(image, wait_connected=False):
    """A NetCluster of one agent with the wrapper installed and status-serve
    running, removed on exit; wait_connected: until the agent's link to the
    shell is up (what the TUI needs to show its rows)."""
    c = NetCluster(1, image)
    try:
        c.start_status()
        install_wrapper(c.agents[0])
        c.agents[0].start()
        if wait_connected:
            c.wait_connected()
        yield c
    finally:
        c.cleanup()


def set_credentials(agent, standin):
    agent.rpc("auth-set", {"api_key": API_KEY, "base_url": standin.url, "model": MODEL})


def convocate_ok(c, *args):
    r = c.convocate(*args)
    assert r.returncode == 0, f"{args}: {r.stderr}"
    return r.stdout


def new_claude_session(c, name, claude_bin, agent=None):
    """Creates the session, puts the real CLI in its home and starts it;
    returns its uuid."""
    agent = agent or c.agents[0]
    uuid = convocate_ok(c, "new", name).split()[0]
    home = os.path.join(agent.root, "home/claude", uuid)
    shutil.copyfile(claude_bin, os.path.join(home, CLI_IN_HOME))
    os.chmod(os.path.join(home, CLI_IN_HOME), 0o755)
    restart_admitted(c, name)
    return uuid


def restart_admitted(c, name, timeout=120):
    """convocate restart, again while the agent refuses for CPU load (this
    2-core machine is shared; admission is tested in test_admission.py)."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.convocate("restart", name)
        if r.returncode == 0:
            return
        assert "admission denied: cpu" in r.stderr and time.monotonic() < deadline, r.stderr
        time.sleep(1)


def wait_prompt(c, name, timeout=60):
    """Until Claude's input line (❯ in column 0) is on the session's screen."""
    wait_until(lambda: re.search(r"^❯", convocate_ok(c, "peek", name), re.M), timeout,
               f"Claude's prompt in {name}", interval=0.3,
               detail=lambda: convocate_ok(c, "peek", name))
