"""peek and send (SPEC 16) against a real agent and a real session
container: the agent reads and types into the session's tmux pane through
the Engine API's exec, and the CLI drives it by name. The test image has no
Claude, so the pane runs a shell: what send types, the shell runs, and
peek shows its answer."""
import pytest

from lib.agent_helpers import create_ok, restart_ok, unique_name
from lib.wait import wait_for
from lib.agent import register_agent
from lib.shell_cli import convocate


@pytest.fixture
def cluster(start_agent, shell_root):
    a = start_agent()
    register_agent(shell_root, a)
    return shell_root, a


def running_session(a):
    s = create_ok(a, name=unique_name("peek"))
    restart_ok(a, s["uuid"])
    return s


def peek_text(root, name, *extra):
    r = convocate(root, "peek", name, *extra)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_send_types_literally_and_peek_shows_the_answer(cluster):
    root, a = cluster
    s = running_session(a)
    # Shell metacharacters reach the pane as typed: no shell on the way in.
    typed = "echo 'semi;colon' $((6*7))\"MARK\""
    r = convocate(root, "send", s["name"], typed)
    assert r.returncode == 0, r.stderr
    screen = wait_for(lambda: (lambda t: t if "semi;colon 42MARK" in t else None)(
        peek_text(root, s["name"])), timeout=10)
    assert screen, peek_text(root, s["name"])
    assert "\x1b[" not in screen, "a pipe gets the screen without escapes"
    # The RPC answers with the pane's size and the screen with its escapes.
    res = a.ok("peek", {"id": s["uuid"]})
    assert res["cols"] > 0 and res["rows"] > 0
    assert "semi;colon 42MARK" in res["screen"]
    assert len(res["screen"].splitlines()) <= res["rows"]


def test_send_without_enter_and_from_stdin(cluster):
    root, a = cluster
    s = running_session(a)
    r = convocate(root, "send", s["name"], "echo NOENTER$((1+1))", "--no-enter")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: "echo NOENTER$((1+1))" in peek_text(root, s["name"]), timeout=10)
    assert "NOENTER2" not in peek_text(root, s["name"]), "Enter was sent"
    r = convocate(root, "send", s["name"], "-", input="\x15echo STDIN$((2+2))\n")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: "STDIN4" in peek_text(root, s["name"]), timeout=10)


def test_send_keeps_a_last_semicolon(cluster):
    """tmux ends a command at an argument ending in ';' and drops that ';':
    the agent must send such a text so that tmux types it whole."""
    root, a = cluster
    s = running_session(a)
    for text in ["echo TAIL$((3+4));", "echo BS$((1+4)) \\;"]:
        r = convocate(root, "send", s["name"], text)
        assert r.returncode == 0, r.stderr
    screen = wait_for(lambda: (lambda t: t if "BS5 ;" in t else None)(
        peek_text(root, s["name"])), timeout=10)
    assert screen, peek_text(root, s["name"])
    assert "echo TAIL$((3+4));\n" in screen and "TAIL7\n" in screen, screen
    assert "echo BS$((1+4)) \\;" in screen, screen


def test_peek_lines_reaches_into_history(cluster):
    root, a = cluster
    s = running_session(a)
    a.ok("send", {"id": s["uuid"], "text": "seq 1001 1200"})
    assert wait_for(lambda: "1200" in a.ok("peek", {"id": s["uuid"]})["screen"], timeout=10)
    visible = a.ok("peek", {"id": s["uuid"]})["screen"]
    assert "1001\n" not in visible
    deep = a.ok("peek", {"id": s["uuid"], "lines": 300})["screen"]
    assert "1001\n" in deep


def test_refusals(cluster):
    root, a = cluster
    s = running_session(a)
    uuid = s["uuid"]
    for params, want in [
        ({"id": uuid, "text": ""}, '"text" is required'),
        ({"id": uuid, "text": "x" * 4097}, "text"),
        ({"id": uuid, "text": "a\u0000b"}, "u0000"),  # refused while decoding
        ({"id": uuid}, '"text" is required'),
        ({"id": uuid, "text": "x", "enter": "yes"}, "true or false"),
    ]:
        resp = a.rpc("send", params)
        assert resp["ok"] is False and want in resp["error"], (params, resp)
    for params, want in [({"id": uuid, "lines": 501}, "lines"),
                         ({"id": uuid, "lines": -1}, "lines"),
                         ({"id": "nope"}, "invalid id")]:
        resp = a.rpc("peek", params)
        assert resp["ok"] is False and want in resp["error"], (params, resp)
    a.ok("kill", {"id": uuid})
    for op, params in [("peek", {"id": uuid}), ("send", {"id": uuid, "text": "x"})]:
        resp = a.rpc(op, params)
        assert resp == {"ok": False, "error": f'session "{s["name"]}" is not running'}, resp
    r = convocate(root, "peek", s["name"])
    assert r.returncode == 1 and "is not running" in r.stderr
    r = convocate(root, "send", s["name"], "-", input="x" * 5000)
    assert r.returncode == 2 and "4096" in r.stderr



def test_watch_without_a_feed_says_so(shell_root):
    r = convocate(shell_root, "watch")
    assert r.returncode == 1
    assert "cannot reach the local feed" in r.stderr and "status.sock" in r.stderr
    r = convocate(shell_root, "watch", "--bogus")
    assert r.returncode == 2


def test_peek_and_send_usage(shell_root):
    for args in [("peek",), ("peek", "x", "--lines", "501"), ("peek", "x", "--lines", "a"),
                 ("send", "x"), ("send",), ("send", "x", "")]:
        r = convocate(shell_root, *args)
        assert r.returncode == 2, (args, r.stderr)
