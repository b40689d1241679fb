"""The terminal UI (SPEC 12) driven for real inside a private tmux server:
keys go in with send-keys, the screen comes back with capture-pane, and every
action lands on real agents whose own answers are checked too."""
import json
import os
import re

from lib.common import docker
from lib.shell_cli import SESSION_PROMPT, convocate_ok as cli
from lib.tui import until_admitted


def sessions_of(agent):
    return {s["name"]: s for s in agent.ok("list")}


def wait_agents_up(tui, *agents):
    for a in agents:
        tui.wait_text(f"{a.agent_id} up")


def test_no_agents_says_how_to_add_one(shell_root, tui_factory):
    t = tui_factory(shell_root, width=80, height=24)
    t.wait_text("convocate")
    t.keys("n")
    t.wait(lambda s: "No agents registered" in s.splitlines()[-1], what="no-agents hint")
    assert "convocate-host init-agent" in t.status_line()
    t.keys("q")
    t.wait(lambda _: not t.alive(), 10, "the TUI to quit")


def test_new_on_each_of_two_agents_through_the_picker(two_agents, tui_factory):
    root, a, b = two_agents
    t = tui_factory(root)
    wait_agents_up(t, a, b)
    order = sorted((a.agent_id, b.agent_id))  # the picker lists agents by id
    for agent, name in ((a, "web"), (b, "db")):
        t.keys("N")
        shot = t.wait_text("which agent?")
        assert a.agent_id in shot and b.agent_id in shot
        for _ in range(order.index(agent.agent_id)):
            t.keys("Down")
        t.keys("Enter")
        t.wait_text(f"New session on {agent.agent_id}")
        t.type(name)
        until_admitted(t, lambda: t.keys("Enter"), lambda _: t.row(name) is not None, name)
        line = t.wait_row(name, "-")
        assert agent.agent_id in line.split()
    assert set(sessions_of(a)) == {"web"}
    assert set(sessions_of(b)) == {"db"}


def test_attach_runs_a_command_and_detach_restores_the_menu(single, tui_factory):
    root, a = single
    cli(root, "new", "older")
    cli(root, "new", "shell")
    t = tui_factory(root)
    t.wait_row("shell", "-")
    t.wait_row("older", "-")
    t.select("older")
    until_admitted(t, lambda: t.keys("Enter"), lambda s: "[claude]" in s, "attach", timeout=180)
    # the container starts and tmux draws inside it, down to the shell's prompt
    t.wait(lambda s: re.search(SESSION_PROMPT, s), 60, "the session's shell prompt")
    t.type("echo conv-$((6*7))")
    t.keys("Enter")
    t.wait_text("conv-42", timeout=60)
    assert "LAST ACCESSED" not in t.screen()  # the session's screen, not the menu
    t.keys("C-b")
    t.keys("d")
    t.wait_text("LAST ACCESSED")
    t.wait_row("older", "R")
    assert "Detached from older" in t.status_line()
    # the selection stayed on the session: K asks about it, not about another
    t.keys("k")
    t.wait(lambda s: "Kill session older" in s.splitlines()[-1], what="the kill question")
    t.keys("Escape")
    assert sessions_of(a)["older"]["state"] == "R"


def test_kill_restart_background_delete_and_clone(single, tui_factory):
    root, a = single
    cli(root, "new", "web", "--port", "8080")
    t = tui_factory(root)
    t.wait_row("web", "-")
    def restart():
        t.keys("r")
        t.wait(lambda s: "Restart session web" in s.splitlines()[-1], what="restart question")
        t.keys("y")
    until_admitted(t, restart, lambda _: (t.row("web") or " ").split()[0] == "R", "web in R")
    assert a.ok("list")[0]["running"] is True

    t.keys("b")
    t.wait_text("Background session web")
    t.keys("Y")
    t.wait(lambda s: "web is running in the background" in s.splitlines()[-1], 60,
           "background done")

    t.keys("K")
    t.wait_text("Kill session web")
    t.keys("n")
    t.wait_text("Nothing done.")
    assert sessions_of(a)["web"]["running"] is True
    t.keys("K")
    t.wait_text("Kill session web")
    t.keys("y")
    t.wait(lambda s: "killing web..." in s or "web stopped." in s, 10, "kill progress")
    t.wait_row("web", "-", timeout=60)
    assert "web stopped." in t.status_line()
    assert sessions_of(a)["web"]["running"] is False

    t.keys("c")
    t.wait_text("Clone web")
    t.type("web-copy")
    until_admitted(t, lambda: t.keys("Enter"), lambda _: t.row("web-copy") is not None,
                   "the clone")
    line = t.wait_row("web-copy")
    assert line.split()[4] == "-"  # port 0 shows as "-"
    assert sessions_of(a)["web-copy"]["port"] == 0

    t.select("web-copy")
    t.keys("d")
    t.wait_text("Delete session web-copy")
    t.keys("y")
    t.wait(lambda _: t.row("web-copy") is None, 60, "web-copy to go")
    assert "web-copy deleted." in t.status_line()
    assert set(sessions_of(a)) == {"web"}


def test_edit_shows_the_agents_error_and_keeps_what_was_typed(single, tui_factory):
    root, a = single
    cli(root, "new", "web", "--port", "8080")
    cli(root, "new", "api", "--port", "9090")
    t = tui_factory(root)
    t.wait_row("web")
    t.wait_row("api")
    t.select("api")
    t.keys("e")
    t.wait_text("Edit api")
    t.type("-v2")  # the name field starts with "api"
    t.keys("Tab", "Tab")  # Name -> Protocol -> Port
    for _ in range(4):
        t.keys("BSpace")
    t.type("8080")
    t.keys("Enter")
    shot = t.wait(lambda s: "already in use" in s.splitlines()[-1], 30, "the agent's error")
    assert 'port 8080/tcp already in use by session "web"' in shot.splitlines()[-1]
    assert "Edit api" in shot  # the form is still open ...
    assert "api-v2" in shot and "8080" in shot  # ... with what was typed
    t.keys("Tab", "BTab")  # Port -> DNS name -> Port
    for _ in range(4):
        t.keys("BSpace")
    t.type("8081")
    t.keys("BTab")  # Port -> Protocol
    t.keys("u")
    # The open form shows "Name  api-v2" too: wait for the form to close.
    until_admitted(t, lambda: t.keys("Enter"),
                   lambda shot: "Edit api" not in shot and t.row("api-v2") is not None,
                   "the edited row")
    s = sessions_of(a)["api-v2"]
    assert (s["port"], s["protocol"]) == (8081, "udp")
    assert "8081/udp" in t.row("api-v2")


def test_settings_shows_each_agent_with_health_and_image(two_agents, tui_factory, test_image):
    root, a, b = two_agents
    t = tui_factory(root)
    wait_agents_up(t, a, b)
    t.keys("S")
    shot = t.wait(lambda s: s.count("admission at") == 2, 30, "both agents' capacity")
    assert "convocate v" in shot
    for agent in (a, b):
        assert re.search(rf"{agent.agent_id}\s+127\.0\.0\.1:{agent.port}\s+up", shot), shot
    assert shot.count(f"image {test_image}") == 2
    t.keys("Escape")
    t.wait(lambda s: "Settings" not in s, 10, "the dialog to close")


def test_settings_dialog_changes_an_agents_settings(single, tui_factory):
    root, a = single
    t = tui_factory(root, width=200)
    wait_agents_up(t, a)
    t.keys("S")
    t.wait(lambda s: "settings: admission_threshold_pct=90" in s, 30, "the agent's settings")
    # Out of range: the agent's own refusal (SPEC 7), and nothing changes.
    t.keys("E")
    t.type("admission_threshold_pct=101")
    t.keys("Enter")
    t.wait(lambda s: '"admission_threshold_pct" must be an integer from 50 to 95'
           in s.splitlines()[-1], 30, "the agent's refusal on the status line")
    assert a.ok("settings-get")["admission_threshold_pct"] == 90
    # A valid change: settings-get has it, and the dialog shows it.
    t.keys("E")
    t.type("heartbeat_s=45 default_autonomous=true")
    t.keys("Enter")
    def saved_and_shown(s):
        *dialog, status = s.splitlines()  # the status line echoes what was typed
        shown = "\n".join(dialog)
        return (f"Saved on {a.agent_id}" in status and "heartbeat_s=45" in shown
                and "default_autonomous=true" in shown)
    t.wait(saved_and_shown, 30, "the dialog showing the new settings")
    got = a.ok("settings-get")
    assert (got["heartbeat_s"], got["default_autonomous"]) == (45, True)
    # Esc on the line goes back to the dialog, changing nothing.
    t.keys("E")
    t.type("heartbeat_s=99")
    t.keys("Escape")
    t.wait(lambda s: "Nothing changed." in s.splitlines()[-1], 10, "the line to close")
    assert a.ok("settings-get")["heartbeat_s"] == 45


def test_override_only_for_a_locked_session(single, tui_factory):
    root, a = single
    cli(root, "new", "web")
    t = tui_factory(root)
    t.wait_row("web", "-")
    t.keys("o")
    t.wait(lambda s: "only applies to a locked session" in s.splitlines()[-1], 10,
           "the override refusal")


def test_quit_leaves_the_containers_running(single, tui_factory):
    root, a = single
    cli(root, "new", "web")
    cli(root, "restart", "web")
    t = tui_factory(root)
    t.wait_row("web", "R")
    t.keys("q")
    t.wait(lambda _: not t.alive(), 10, "the TUI to quit")
    assert sessions_of(a)["web"]["running"] is True
    ids = a.containers()
    assert ids
    r = docker("inspect", "-f", "{{.State.Running}}", *ids)
    assert r.stdout.split() == ["true"] * len(ids)


def test_stopped_agent_is_shown_unreachable_and_the_other_stays_usable(two_agents, tui_factory):
    root, a, b = two_agents
    cli(root, "new", "alpha", "--agent", a.agent_id)
    cli(root, "new", "bravo", "--agent", b.agent_id)
    t = tui_factory(root)
    t.wait_row("alpha")
    t.wait_row("bravo")
    b.stop()
    shot = t.wait_text(f"{b.agent_id} UNREACHABLE", timeout=40)  # the 15 s refresh finds it
    assert f"{a.agent_id} up" in shot
    assert t.row("bravo") is not None  # still listed, greyed, as last seen
    t.select("alpha")

    def restart():
        t.keys("r")
        t.wait_text("Restart session alpha")
        t.keys("y")
    until_admitted(t, restart, lambda _: (t.row("alpha") or " ").split()[0] == "R", "alpha in R")
    assert "alpha started." in t.status_line()
    assert sessions_of(a)["alpha"]["running"] is True


def test_usable_at_80x24_and_on_resize(single, tui_factory):
    root, a = single
    long_name = "a-rather-long-session-name-that-cannot-fit-its-column-" + "x" * 10
    cli(root, "new", long_name)
    cli(root, "new", "short")
    t = tui_factory(root, width=80, height=24)
    t.wait_row("short", "-")
    lines = t.lines()
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    assert "Q:quit" in lines[-2]
    t.tmux("resize-window", "-x", "120", "-y", "40")
    t.wait(lambda s: len(s.splitlines()) == 40 and "S settings" in s, 10, "the resize")
    assert t.row("short") is not None


def test_form_sets_model_and_autonomy_and_the_table_marks_it(single, tui_factory):
    root, a = single
    t = tui_factory(root)
    wait_agents_up(t, a)
    t.keys("n")
    t.wait_text(f"New session on {a.agent_id}")
    t.type("auto")
    t.keys("Tab", "Tab", "Tab", "Tab")  # Name -> Protocol -> Port -> DNS name -> Model
    t.type("claude-opus-4")
    t.keys("Tab")  # -> Autonomous, on the agent's default until changed
    t.wait_text("default  (the agent's setting; space/y/n/d)")
    t.keys("Space")
    t.wait_text("yes  (space/y/n/d)")
    until_admitted(t, lambda: t.keys("Enter"), lambda _: t.row("auto") is not None, "auto")
    s = sessions_of(a)["auto"]
    assert (s["model"], s["autonomous"]) == ("claude-opus-4", True)
    line = t.wait_row("auto")
    assert line.split()[3] == "[A]", line
    assert "NAME ([A] = autonomous)" in t.lines()[1]

    # Edit: the field shows the effective value; d returns to the default.
    t.select("auto")
    t.keys("e")
    t.wait_text("Edit auto")
    shot = t.wait_text("yes  (space/y/n/d)")
    assert "claude-opus-4" in shot
    t.keys("Tab", "Tab", "Tab", "Tab")  # -> Model
    for _ in range(len("claude-opus-4")):
        t.keys("BSpace")
    t.keys("Tab", "d")
    until_admitted(t, lambda: t.keys("Enter"),
                   lambda shot: "Edit auto" not in shot and "[A]" not in (t.row("auto") or "[A]"),
                   "the edited row")
    s = sessions_of(a)["auto"]
    assert (s["model"], s["autonomous"]) == ("", False)  # the agent's default is off
    with open(os.path.join(a.root, "var", "lib", "convocate-agent", "sessions",
                           f"{s['uuid']}.json")) as f:
        assert "autonomous" not in json.load(f)
    assert "= autonomous" not in t.lines()[1]

    # A session on the default follows it: the marker appears with the setting.
    a.ok("settings-set", {"default_autonomous": True})
    t.wait(lambda _: "[A]" in (t.row("auto") or ""), 40, "the marker from the default")


def test_settings_shows_each_agents_claude_auth(two_agents, tui_factory):
    root, a, b = two_agents
    secret = "sk-ant-api03-tui-" + "q" * 30 + "K7pX"
    a.ok("auth-set", {"api_key": secret, "model": "claude-sonnet-4"})
    t = tui_factory(root)
    wait_agents_up(t, a, b)
    t.keys("S")
    shot = t.wait(lambda s: s.count("claude auth:") == 2, 30, "both agents' credentials")
    assert "claude auth: api-key \u2026K7pX  base_url -  model claude-sonnet-4" in shot
    assert "claude auth: none  base_url -  model -" in shot
    assert secret not in shot and "qqqq" not in shot
    t.keys("Escape")
    b.stop()
    t.wait_text(f"{b.agent_id} UNREACHABLE", timeout=40)
    t.keys("S")
    shot = t.wait(lambda s: "claude auth: unreachable" in s, 60, "the unreachable agent")
    assert "claude auth: api-key \u2026K7pX" in shot
