"""Helpers shared by the agent ops tests (test_rpc_ops, test_admission,
test_crash, test_bad_ids, test_attach, test_update): thin wrappers over
lib.agent.Agent and the session containers it runs."""
import json
import os
import time
import uuid as uuidlib

from lib.common import docker

NAME_PREFIX = "convocate-session-"


def unique_name(prefix="s"):
    return f"{prefix}-{uuidlib.uuid4().hex[:8]}"


def error_of(agent, op, params=None):
    """The error text of a call that must fail."""
    resp = agent.rpc(op, params)
    assert resp.get("ok") is False, f"{op} {params} unexpectedly succeeded: {resp}"
    return resp["error"]


def create(agent, retries=20, **params):
    """create, retried while a busy test machine trips CPU admission (this is
    not what these tests are about; test_admission tests that)."""
    for _ in range(retries):
        resp = agent.rpc("create", params)
        if resp.get("ok") or not resp.get("error", "").startswith("admission denied: cpu"):
            return resp
        time.sleep(1)
    return resp


def create_ok(agent, **params):
    params.setdefault("name", unique_name())
    resp = create(agent, **params)
    assert resp.get("ok") is True, f"create {params} -> {resp}"
    return resp["result"]


def restart_ok(agent, uuid, retries=20):
    for _ in range(retries):
        resp = agent.rpc("restart", {"id": uuid})
        if resp.get("ok") or not resp.get("error", "").startswith("admission denied: cpu"):
            break
        time.sleep(1)
    assert resp.get("ok") is True, f"restart {uuid} -> {resp}"


def home(agent, uuid=""):
    return os.path.join(agent.root, "home", "claude", uuid)


def meta_dir(agent):
    """Where the agent keeps session metadata (SPEC 6.1), out of the homes."""
    return os.path.join(agent.root, "var", "lib", "convocate-agent", "sessions")


def meta_path(agent, uuid):
    return os.path.join(meta_dir(agent), f"{uuid}.json")


def read_meta(agent, uuid):
    with open(meta_path(agent, uuid)) as f:
        return json.load(f)


def by_uuid(sessions, uuid):
    found = [s for s in sessions if s["uuid"] == uuid]
    return found[0] if found else None


def inspect(uuid):
    r = docker("inspect", NAME_PREFIX + uuid, check=False)
    return json.loads(r.stdout)[0] if r.returncode == 0 else None


def pane_columns(uuid):
    """The width of the terminal of the session's tmux pane, as the kernel
    has it (what the shell in it reads with tput); None while it cannot be
    asked. tmux changes a window's width at once but its pane's terminal a
    moment later."""
    r = docker("exec", "-u", "claude", NAME_PREFIX + uuid, "sh", "-c",
               'stty -F "$(tmux display-message -p -t claude "#{pane_tty}")" size', check=False)
    size = r.stdout.split()
    return int(size[1]) if r.returncode == 0 and len(size) == 2 and size[1].isdigit() else None


def snapshot_tree(top, skip=()):
    """Every path under top (relative), for "nothing was created" checks."""
    paths = set()
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), top)
            if not any(rel == s or rel.startswith(s + os.sep) for s in skip):
                paths.add(rel)
    return paths
