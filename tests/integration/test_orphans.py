"""Orphan sessions (SPEC 6.5): a session directory under the shell host's own
/home/claude/<uuid>/ that no registered agent lists is shown with state O by
`convocate ls` and the TUI, and every action on it is refused with a pointer
to `convocate-host migrate-session`. Real agents on loopback; the TUI runs in
tmux through lib/tui.py's Tui."""
import json
import os
import uuid as uuidlib

import pytest

from lib.shell_cli import convocate

MIGRATE = "convocate-host migrate-session --agent ID --session"


def make_orphan(shell_root, name="relic", text=None, uuid=None):
    """Writes <shell_root>/home/claude/<uuid>/session.json; returns the uuid."""
    uuid = uuid or str(uuidlib.uuid4())
    home = os.path.join(shell_root, "home", "claude", uuid)
    os.makedirs(home, exist_ok=True)
    if text is None:
        text = json.dumps({"uuid": uuid, "name": name, "port": 0, "protocol": "tcp",
                           "dns_name": name, "created_at": "2025-01-01T00:00:00Z",
                           "last_accessed": "2025-01-02T00:00:00Z"})
    with open(os.path.join(home, "session.json"), "w") as f:
        f.write(text)
    return uuid


def ls_json(root):
    r = convocate(root, "ls", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_ls_shows_an_orphan_with_state_O(single):
    root, a = single
    u = make_orphan(root)
    rows = [s for s in ls_json(root) if s["uuid"] == u]
    assert len(rows) == 1
    o = rows[0]
    assert o["state"] == "O" and o["name"] == "relic" and o["agent"] == ""
    assert o["running"] is False and o["attached"] == 0 and o["locked"] is False
    assert "error" not in o
    r = convocate(root, "ls")
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stdout.splitlines() if "relic" in ln][0]
    assert line.split()[0] == "O" and line.split()[1] == u[:8]


def test_broken_session_json_is_listed_with_an_error(single):
    root, a = single
    u = make_orphan(root, text="{\"name\": \"half")
    o = [s for s in ls_json(root) if s["uuid"] == u][0]
    assert o["state"] == "O" and "session.json" in o["error"]


def test_names_that_are_not_uuids_and_symlinks_are_not_orphans(single, tmp_root):
    root, a = single
    make_orphan(root, uuid="not-a-uuid")
    real = make_orphan(tmp_root, name="elsewhere")
    os.symlink(os.path.join(tmp_root, "home", "claude", real),
               os.path.join(root, "home", "claude", str(uuidlib.uuid4())))
    assert ls_json(root) == []


@pytest.mark.parametrize("args", [
    ["kill"], ["restart"], ["bg"], ["override"], ["delete", "--yes"], ["edit", "--name", "x"],
    ["attach"], ["clone", "copy"],
])
def test_every_action_on_an_orphan_is_refused(single, args):
    root, a = single
    u = make_orphan(root)
    argv = [args[0], "relic", *args[1:]]
    r = convocate(root, *argv)
    assert r.returncode == 1, (argv, r.stdout, r.stderr)
    assert f"{MIGRATE} {u}" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert a.ok("list") == []  # nothing reached the agent
    assert os.path.exists(os.path.join(root, "home", "claude", u, "session.json"))


def test_a_session_an_agent_lists_is_not_an_orphan(single):
    root, a = single
    r = convocate(root, "new", "mine", "--agent", a.agent_id)
    assert r.returncode == 0, r.stderr
    u = a.ok("list")[0]["uuid"]
    make_orphan(root, name="mine", uuid=u)  # the same uuid on the shell too
    rows = [s for s in ls_json(root) if s["uuid"] == u]
    assert len(rows) == 1
    assert rows[0]["agent"] == a.agent_id and rows[0]["state"] != "O"
    assert convocate(root, "kill", "mine").returncode == 0


def test_orphan_listed_while_an_agent_is_down_says_it_may_be_owned(single):
    root, a = single
    u = make_orphan(root)
    a.stop()
    r = convocate(root, "ls", "--json")
    assert r.returncode == 0
    assert [s["uuid"] for s in json.loads(r.stdout)] == [u]
    assert "unreachable" in r.stderr and "may own it" in r.stderr


def test_tui_shows_O_greyed_and_refuses_actions(single, tui_factory):
    root, a = single
    make_orphan(root)
    assert convocate(root, "new", "live", "--agent", a.agent_id).returncode == 0
    make_orphan(root, name="live", uuid=a.ok("list")[0]["uuid"])  # claimed: not an orphan
    t = tui_factory(root)
    line = t.wait_row("relic", "O")
    assert line.split()[3] == "-"  # no agent
    assert t.wait_row("live", "-").split()[3] == a.agent_id
    names = [ln.split()[2] for ln in t.lines()[2:-3] if len(ln.split()) >= 3]
    assert sorted(names) == ["live", "relic"], t.screen()
    # greyed like an unreachable agent's rows: bright black, or dim without 16 colours
    coloured = t.tmux("capture-pane", "-e", "-p").stdout
    relic = [ln for ln in coloured.splitlines() if "relic" in ln][0]
    live = [ln for ln in coloured.splitlines() if "live" in ln and "relic" not in ln][0]
    assert "\x1b[90m" in relic or "\x1b[2m" in relic, repr(relic)
    assert "\x1b[90m" not in live and "\x1b[2m" not in live, repr(live)
    t.select("relic")
    t.keys("k")
    t.wait(lambda s: MIGRATE in s.splitlines()[-1], 10, "the refusal of k")
    for key in ("Enter", "d", "c", "e", "R", "b", "o", "K"):
        # What must not happen (a question, a form, an attach) has no sign of
        # its own. So first O on the live session puts another line on the
        # status line; the refusal coming back after the key is then the
        # proof that the TUI has handled that key.
        t.select("live")
        t.keys("o")
        t.wait(lambda s: "only applies to a locked session" in s.splitlines()[-1], 10,
               "the override refusal on the live session")
        t.select("relic")
        t.keys(key)
        t.wait(lambda s: MIGRATE in s.splitlines()[-1], 10, f"the refusal of {key}")
        lines = t.lines()
        # still the table (no question, form or attach), the refusal on the status line
        assert "attach" in lines[-2] and MIGRATE in lines[-1], (key, t.screen())
    assert t.alive()
    assert [s["name"] for s in a.ok("list")] == ["live"]
