"""Bash completion (completion/) and the names cache behind it (SPEC 2's
`ls`, shell/names_cache.c): a real bash driven through pexpect completes
`convocate attach <TAB>` with the session names of a paired local agent,
and does so with the agent stopped: a tab press reads the cache and never
dials. `ls --names` drops agents no longer registered, and a stale cache
starts one background refresh without waiting for it."""
import json
import os
import shutil
import tempfile
import time
import uuid

import pexpect
import pytest

from conftest import BUILD, REPO, Agent, convocate, register_agent
from lib.wait import wait_until

COMPLETION = os.path.join(REPO, "completion", "convocate")


def plant_session(agent_root, name):
    """A session as the agent keeps it (a home, and SPEC 6.1's metadata file
    out of it, which the agent loads at start). Made on disk before the agent
    starts rather than through create, which admission control refuses
    while this 2-core machine is busy with other tests."""
    sid = str(uuid.uuid4())
    home = os.path.join(agent_root, "home", "claude", sid)
    os.makedirs(home, mode=0o700)
    meta = os.path.join(agent_root, "var", "lib", "convocate-agent", "sessions")
    os.makedirs(meta, mode=0o700, exist_ok=True)
    with open(os.path.join(meta, f"{sid}.json"), "w") as f:
        json.dump({"uuid": sid, "name": name, "port": 0, "protocol": "tcp", "dns_name": "",
                   "created_at": "2026-01-02T03:04:05Z",
                   "last_accessed": "2026-01-02T03:04:05Z"}, f)
    return sid


@pytest.fixture
def paired(test_image, shell_root, tmp_path, monkeypatch):
    """Factory: an agent holding sessions of the given names, started and
    registered with a shell root; the cache home is empty."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    agents = []

    def make(*session_names):
        root = tempfile.mkdtemp(prefix="convocate-agent-")
        a = Agent(root, test_image)
        agents.append(a)
        for name in session_names:
            plant_session(root, name)
        a.start()
        register_agent(shell_root, a)
        return shell_root, a

    yield make
    for a in agents:
        a.cleanup()
        shutil.rmtree(a.root, ignore_errors=True)


def names(root):
    r = convocate(root, "ls", "--names")
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def cache_file(tmp_path, root, agent_id):
    base = tmp_path / "cache" / "convocate"
    dirs = [d for d in os.listdir(base) if d.startswith("names")]
    assert len(dirs) == 1, dirs
    return base / dirs[0] / agent_id


def bash(root):
    env = dict(os.environ, PS1="$ ", TERM="dumb", CONVOCATE_ROOT=root,
               PATH=os.path.join(BUILD, "src") + ":" + os.environ["PATH"])
    child = pexpect.spawn("bash", ["--norc", "--noprofile", "-i"], env=env, encoding="utf-8",
                          timeout=20, dimensions=(24, 200))
    child.expect_exact("$ ")
    return child


def test_complete_is_set_after_sourcing():
    child = pexpect.spawn("bash", ["--norc", "--noprofile", "-c",
                                   f"source {COMPLETION}; complete -p convocate"],
                          encoding="utf-8", timeout=20)
    child.expect(pexpect.EOF)
    assert "complete -F _convocate convocate" in child.before


def test_attach_tab_offers_the_session_names_without_the_network(paired, tmp_path):
    root, agent = paired("alpha-one", "beta_two")
    assert names(root) == []  # nothing listed yet
    assert convocate(root, "ls").returncode == 0  # the listing fills the cache
    assert names(root) == ["alpha-one", "beta_two"]
    agent.stop()  # from here on, nothing answers on the agent's port

    child = bash(root)
    try:
        child.sendline(f"source {COMPLETION}; bind 'set show-all-if-ambiguous on'")
        child.expect_exact("$ ")
        started = time.monotonic()
        child.send("convocate attach \t")
        child.expect("alpha-one")
        child.expect("beta_two")
        elapsed = time.monotonic() - started
        child.send("\x15")  # Ctrl-U: drop the line
        # One candidate: the word is completed in place.
        child.send("convocate kill be\t")
        child.expect_exact("convocate kill beta_two ")
        child.send("\x15")
        # Options and commands come from the script itself.
        child.send("convocate new --pr\t")
        child.expect_exact("--proto ")
        child.send("\x15")
        child.send("convocate atta\t")
        child.expect_exact("convocate attach ")
        child.send("\x15")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    # An SSH dial to a dead port would fail, not hang; the point is that
    # none is tried: the agent is down and the names still came.
    assert elapsed < 10, elapsed


def test_names_of_an_agent_no_longer_registered_are_dropped(paired, tmp_path):
    root, agent = paired("gamma")
    assert convocate(root, "ls").returncode == 0
    assert names(root) == ["gamma"]
    os.rename(os.path.join(root, "etc", "convocate", "agent-keys", agent.agent_id),
              os.path.join(root, "etc", "convocate", "gone"))
    assert names(root) == []


def test_a_stale_cache_is_refreshed_in_the_background(paired, tmp_path):
    root, agent = paired("delta", "epsilon")
    assert convocate(root, "ls").returncode == 0
    path = cache_file(tmp_path, root, agent.agent_id)
    # An hour-old cache that has not seen epsilon yet.
    path.write_text("delta\n")
    old = time.time() - 3600
    os.utime(path, (old, old))
    started = time.monotonic()
    assert names(root) == ["delta"]  # what it had, at once
    assert time.monotonic() - started < 5
    wait_until(lambda: os.stat(path).st_mtime > old + 60, 30, "a background refresh of the cache")
    wait_until(lambda: names(root) == ["delta", "epsilon"], 30, "both names in the cache",
               detail=lambda: names(root))


def test_names_flag_takes_nothing_else(shell_root):
    r = convocate(shell_root, "ls", "--names", "--json")
    assert r.returncode == 2
    assert "--names" in r.stderr
