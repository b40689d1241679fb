"""Claude credentials and per-session Claude settings (SPEC 7, 14, 15) against
a real agent through OpenSSH and a real engine: claude.env written 0600 with
exactly the contract's lines, refused with its line number when wrong,
mounted read-only into each container it starts and never seen in an RPC
answer, a log line, an event or a container's config; model and autonomy
on create/edit/clone with the agent's default_autonomous; and the shell's
`convocate auth` and new/edit options against paired agents."""
import json
import os
import stat
import uuid as uuidlib

import pytest

from lib.agent_helpers import create_ok, error_of, inspect, read_meta, restart_ok
from conftest import convocate, docker, register_agent

# Long and unique, so finding it anywhere is never a coincidence.
SECRET = "sk-ant-api03-" + uuidlib.uuid4().hex + "-Zq9T"
TOKEN = "sk-ant-oat01-" + uuidlib.uuid4().hex + "-Wm4K"
ELLIPSIS = "\u2026"
MOUNT = "/run/convocate/claude.env"


def env_path(agent):
    return os.path.join(agent.etc, "claude.env")


def read_env(agent):
    with open(env_path(agent)) as f:
        return f.read()


def rpc_text(agent, op, params=None):
    """The raw answer line, to search for the secret in all of it."""
    line = json.dumps({"op": op, "params": params}).encode() + b"\n"
    return agent.rpc_raw(line).stdout.decode(errors="replace")


def assert_nowhere(agent, *texts):
    """Neither secret in the agent's log, its events or any text given."""
    with open(agent.events_path) if os.path.exists(agent.events_path) else open(os.devnull) as f:
        events = f.read()
    for secret in (SECRET, TOKEN):
        assert secret not in agent.log()
        assert secret not in events
        for text in texts:
            assert secret not in text


def container_env(cfg):
    return dict(item.split("=", 1) for item in cfg["Env"])


# ---- auth-set / auth-get over RPC ----


def test_auth_set_get_clear_and_the_file(agent):
    answers = [rpc_text(agent, "auth-get")]
    assert agent.ok("auth-get") == {"kind": "none", "hint": "", "base_url": "", "model": ""}
    got = agent.ok("auth-set", {"api_key": SECRET, "base_url": "http://127.0.0.1:9/v1",
                                "model": "claude-sonnet-4"})
    assert got == {"kind": "api-key", "hint": ELLIPSIS + SECRET[-4:],
                   "base_url": "http://127.0.0.1:9/v1", "model": "claude-sonnet-4"}
    assert agent.ok("auth-get") == got
    st = os.lstat(env_path(agent))
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()
    assert read_env(agent) == (f"ANTHROPIC_API_KEY={SECRET}\n"
                               "ANTHROPIC_BASE_URL=http://127.0.0.1:9/v1\n"
                               "ANTHROPIC_MODEL=claude-sonnet-4\n")
    # A new set replaces everything; the other kind of secret.
    answers.append(rpc_text(agent, "auth-set", {"oauth_token": TOKEN}))
    assert read_env(agent) == f"CLAUDE_CODE_OAUTH_TOKEN={TOKEN}\n"
    answers.append(rpc_text(agent, "auth-get"))
    assert agent.ok("auth-get")["kind"] == "oauth-token"
    assert [n for n in os.listdir(agent.etc) if ".tmp-" in n] == []  # no temporary left
    assert agent.ok("auth-set", {"clear": True}) == \
        {"kind": "none", "hint": "", "base_url": "", "model": ""}
    assert not os.path.exists(env_path(agent))
    assert agent.ok("auth-set", {"clear": True})["kind"] == "none"  # clearing twice is fine
    assert_nowhere(agent, *answers)


def test_auth_set_refusals_write_nothing_and_echo_nothing(agent):
    cases = [
        ({"api_key": SECRET, "oauth_token": TOKEN}, "decode params: give exactly one of"),
        ({"model": "m"}, "decode params: give exactly one of"),
        ({"api_key": SECRET, "colour": "red"}, 'decode params: unknown field "colour"'),
        ({"api_key": SECRET + " x"}, 'decode params: "api_key" must be 1 to 4096'),
        ({"api_key": ""}, 'decode params: "api_key" must be 1 to 4096'),
        ({"oauth_token": "x" * 4097}, 'decode params: "oauth_token" is too long'),
        ({"api_key": 5}, 'decode params: "api_key" must be a string'),
        ({"api_key": SECRET, "model": "bad model"}, "invalid model"),
        ({"api_key": SECRET, "model": "m" * 65}, 'decode params: "model" is too long'),
        ({"api_key": SECRET, "base_url": "ftp://h"}, "invalid base_url"),
        ({"api_key": SECRET, "base_url": "http://"}, "invalid base_url"),
        ({"api_key": SECRET, "base_url": "https://h x"}, "invalid base_url"),
        ({"api_key": SECRET, "base_url": SECRET}, "invalid base_url"),
        ({"clear": True, "api_key": SECRET}, 'decode params: "clear" takes no other field'),
        ({"clear": False}, 'decode params: "clear" must be true'),
        (None, "decode params: expected a JSON object"),
    ]
    texts = []
    for params, prefix in cases:
        text = rpc_text(agent, "auth-set", params)
        texts.append(text)
        resp = json.loads(text)
        assert resp["ok"] is False and resp["error"].startswith(prefix), (params, resp)
    # A line that is not JSON does not hand back what surrounds the error.
    bad = ('{"op":"auth-set","params":{"api_key":"' + SECRET + '\x01"}}\n').encode()
    out = agent.rpc_raw(bad).stdout.decode(errors="replace")
    assert json.loads(out)["error"].startswith("decode request: ")
    texts.append(out)
    assert not os.path.exists(env_path(agent))
    assert agent.ok("auth-get")["kind"] == "none"
    assert_nowhere(agent, *texts)


# ---- claude.env at container start ----


def test_started_container_gets_the_mount_and_env_but_never_the_key(agent):
    agent.ok("auth-set", {"api_key": SECRET, "model": "claude-sonnet-4"})
    session = create_ok(agent, model="claude-opus-4")
    uuid = session["uuid"]
    restart_ok(agent, uuid)
    c = inspect(uuid)
    assert c is not None, agent.log()
    mounts = {m["Destination"]: m for m in c["Mounts"]}
    assert mounts[MOUNT]["Source"] == env_path(agent)
    assert mounts[MOUNT]["RW"] is False
    env = container_env(c["Config"])
    assert env["CONVOCATE_SESSION_ID"] == uuid
    assert env["CONVOCATE_MODEL"] == "claude-opus-4"
    assert env["CONVOCATE_AUTONOMOUS"] == "0"
    assert env["CLAUDE_UID"] == "1337" and env["CLAUDE_GID"] == "1337"
    assert not any(k.startswith(("ANTHROPIC_", "CLAUDE_CODE_")) for k in env)
    whole = json.dumps(c)
    # Inside, the file is there and read-only for everyone, root included.
    r = docker("exec", "-u", "root", "convocate-session-" + uuid, "cat", MOUNT, check=False)
    assert r.returncode == 0 and r.stdout == read_env(agent)
    r = docker("exec", "-u", "root", "convocate-session-" + uuid, "sh", "-c",
               f"echo x >> {MOUNT}", check=False)
    assert r.returncode != 0
    answers = [rpc_text(agent, "get", {"id": uuid}), rpc_text(agent, "list")]
    assert_nowhere(agent, whole, *answers)


def test_no_claude_env_means_no_mount(agent):
    session = create_ok(agent)
    restart_ok(agent, session["uuid"])
    c = inspect(session["uuid"])
    assert MOUNT not in {m["Destination"] for m in c["Mounts"]}
    env = container_env(c["Config"])
    assert env["CONVOCATE_MODEL"] == "" and env["CONVOCATE_AUTONOMOUS"] == "0"


def test_invalid_claude_env_refuses_the_start_with_its_line(agent):
    session = create_ok(agent)
    with open(env_path(agent), "w") as f:
        f.write(f"# by hand\nANTHROPIC_API_KEY={SECRET}\nFOO=bar\n")
    os.chmod(env_path(agent), 0o600)
    err = error_of(agent, "restart", {"id": session["uuid"]})
    assert f'start session "{session["name"]}": claude.env line 3: unknown key "FOO"' in err
    assert "convocate auth set" in err
    assert inspect(session["uuid"]) is None
    err = error_of(agent, "auth-get")
    assert 'claude.env line 3: unknown key "FOO"' in err
    with open(env_path(agent), "w") as f:
        f.write(f"ANTHROPIC_API_KEY={SECRET}\nCLAUDE_CODE_OAUTH_TOKEN={TOKEN}\n")
    err = error_of(agent, "restart", {"id": session["uuid"]})
    assert "claude.env line 2: ANTHROPIC_API_KEY and CLAUDE_CODE_OAUTH_TOKEN" in err
    # Replacing it through auth-set is the way out.
    agent.ok("auth-set", {"api_key": SECRET})
    restart_ok(agent, session["uuid"])
    assert inspect(session["uuid"])["State"]["Running"] is True
    assert_nowhere(agent, err)


# ---- model and autonomy per session ----


def test_model_and_autonomous_on_create_edit_get_list_clone(agent):
    assert agent.ok("settings-get")["default_autonomous"] is False
    plain = create_ok(agent)
    assert plain["model"] == "" and plain["autonomous"] is False
    auto = create_ok(agent, model="claude-opus-4.1", autonomous=True)
    assert auto["model"] == "claude-opus-4.1" and auto["autonomous"] is True
    disk = read_meta(agent, auto["uuid"])
    assert disk["model"] == "claude-opus-4.1" and disk["autonomous"] is True
    assert "autonomous" not in read_meta(agent, plain["uuid"])  # the default
    listed = {s["uuid"]: s for s in agent.ok("list")}
    assert listed[auto["uuid"]]["autonomous"] is True
    assert listed[plain["uuid"]]["autonomous"] is False
    # The default reaches every session that sets none, and only those.
    s = agent.ok("settings-set", {"default_autonomous": True})
    assert s["default_autonomous"] is True
    assert agent.ok("get", {"id": plain["uuid"]})["autonomous"] is True
    edited = agent.ok("edit", {"id": auto["uuid"], "autonomous": False, "model": "m2"})
    assert (edited["model"], edited["autonomous"]) == ("m2", False)
    clone = agent.ok("clone", {"source_id": auto["uuid"], "name": "copy-" + uuidlib.uuid4().hex[:6]})
    assert (clone["model"], clone["autonomous"]) == ("m2", False)
    back = agent.ok("edit", {"id": auto["uuid"], "autonomous": None, "model": ""})
    assert (back["model"], back["autonomous"]) == ("", True)
    assert "autonomous" not in read_meta(agent, auto["uuid"])
    for params, prefix in (({"model": "a b"}, 'invalid model "a b"'),
                           ({"model": "x/y"}, 'invalid model "x/y"'),
                           ({"model": "m" * 65}, "invalid model"),
                           ({"autonomous": "yes"}, 'decode params: "autonomous" must be')):
        assert error_of(agent, "create", {"name": "bad", **params}).startswith(prefix), params
        assert error_of(agent, "edit", {"id": plain["uuid"], **params}).startswith(prefix), params
    agent.restart()
    assert agent.ok("settings-get")["default_autonomous"] is True  # persisted


def test_autonomous_session_container_env(agent):
    session = create_ok(agent, model="claude-haiku-4", autonomous=True)
    restart_ok(agent, session["uuid"])
    env = container_env(inspect(session["uuid"])["Config"])
    assert env["CONVOCATE_AUTONOMOUS"] == "1"
    assert env["CONVOCATE_MODEL"] == "claude-haiku-4"
    # Through the agent's default: a session that sets nothing.
    agent.ok("settings-set", {"default_autonomous": True})
    other = create_ok(agent)
    restart_ok(agent, other["uuid"])
    assert container_env(inspect(other["uuid"])["Config"])["CONVOCATE_AUTONOMOUS"] == "1"


# ---- the shell's CLI ----


@pytest.fixture
def paired(start_agent, shell_root):
    a = start_agent()
    register_agent(shell_root, a)
    return shell_root, a


@pytest.fixture
def pair_of_agents(start_agent, shell_root):
    a, b = start_agent(), start_agent()
    register_agent(shell_root, a)
    register_agent(shell_root, b)
    return shell_root, a, b


def write_secret(directory, text, name="key"):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


def status_json(root):
    r = convocate(root, "auth", "status", "--json")
    assert r.returncode == 0, r.stderr
    return {row["agent_id"]: row for row in json.loads(r.stdout)}


def test_cli_auth_set_status_clear(paired, tmp_root):
    root, a = paired
    key = write_secret(tmp_root, SECRET + "\n")
    r = convocate(root, "auth", "set", "--all", "--api-key-file", key, "--model", "claude-x")
    assert r.returncode == 0, r.stderr
    assert f"{a.agent_id}: api-key {ELLIPSIS}{SECRET[-4:]}" in r.stdout
    assert read_env(a) == f"ANTHROPIC_API_KEY={SECRET}\nANTHROPIC_MODEL=claude-x\n"
    rows = status_json(root)
    assert rows[a.agent_id] == {"agent_id": a.agent_id, "reachable": True, "kind": "api-key",
                                "hint": ELLIPSIS + SECRET[-4:], "base_url": "",
                                "model": "claude-x"}
    table = convocate(root, "auth", "status")
    assert table.returncode == 0
    line = [ln for ln in table.stdout.splitlines() if ln.startswith(a.agent_id)][0]
    assert line.split()[:3] == [a.agent_id, "api-key", ELLIPSIS + SECRET[-4:]]
    # From stdin, the one agent chosen without --agent; the other kind.
    r = convocate(root, "auth", "set", "--oauth-token-file", "-", "--base-url",
                  "https://llm.internal:8443", input=TOKEN + "\n")
    assert r.returncode == 0, r.stderr
    assert read_env(a) == (f"CLAUDE_CODE_OAUTH_TOKEN={TOKEN}\n"
                           "ANTHROPIC_BASE_URL=https://llm.internal:8443\n")
    assert status_json(root)[a.agent_id]["kind"] == "oauth-token"
    r2 = convocate(root, "auth", "clear")
    assert r2.returncode == 0 and "no credentials" in r2.stdout
    assert not os.path.exists(env_path(a))
    assert status_json(root)[a.agent_id]["kind"] == "none"
    assert_nowhere(a, r.stdout, r.stderr, table.stdout, r2.stdout)


def test_cli_auth_refuses_bad_secrets_and_usage(paired, tmp_root):
    root, a = paired
    key = write_secret(tmp_root, SECRET)
    for text, why in (("", "is empty"), ("\n", "is empty"), (SECRET + " x\n", "holds a space"),
                      (SECRET + "\r\n", "control character"), ("k" * 4097, "longer than 4096")):
        r = convocate(root, "auth", "set", "--api-key-file", "-", input=text)
        assert r.returncode == 1 and why in r.stderr, (text[:20], r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    r = convocate(root, "auth", "set", "--api-key-file", os.path.join(tmp_root, "missing"))
    assert r.returncode == 1 and "missing" in r.stderr
    usage = [
        ("auth",),
        ("auth", "frob"),
        ("auth", "set"),
        ("auth", "set", "--api-key-file", key, "--oauth-token-file", key),
        ("auth", "set", "--api-key-file", key, "--agent", a.agent_id, "--all"),
        ("auth", "set", "--api-key-file", key, "--model", "no good"),
        ("auth", "set", "--api-key-file", key, "--base-url", "ftp://x"),
        ("auth", "set", "--api-key-file", key, "stray"),
        ("auth", "status", "--all"),
        ("auth", "clear", "--json"),
    ]
    for args in usage:
        r = convocate(root, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert SECRET not in r.stderr
    r = convocate(root, "auth", "set", "--agent", "zzzzzzzz", "--api-key-file", key)
    assert r.returncode == 1 and "zzzzzzzz" in r.stderr
    assert not os.path.exists(env_path(a))
    for args in (("auth", "--help"), ("auth", "set", "--help"), ("auth", "help")):
        r = convocate(root, *args)
        assert r.returncode == 0 and "--api-key-file" in r.stdout and "stdin" in r.stdout


def test_cli_auth_with_several_agents(pair_of_agents, tmp_root):
    root, a, b = pair_of_agents
    key = write_secret(tmp_root, SECRET + "\n")
    r = convocate(root, "auth", "set", "--api-key-file", key)
    assert r.returncode == 2 and "--agent" in r.stderr and "--all" in r.stderr
    r = convocate(root, "auth", "set", "--agent", b.agent_id, "--api-key-file", key)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(env_path(b)) and not os.path.exists(env_path(a))
    rows = status_json(root)
    assert rows[a.agent_id]["kind"] == "none" and rows[b.agent_id]["kind"] == "api-key"
    # One agent down: --all reports each, and fails as a whole.
    a.stop()
    r = convocate(root, "auth", "set", "--all", "--api-key-file", "-", input=SECRET)
    assert r.returncode == 1
    assert f"{b.agent_id}: api-key" in r.stdout
    assert a.agent_id in r.stderr and "unreachable" in r.stderr
    rows = status_json(root)
    assert rows[a.agent_id]["reachable"] is False and "kind" not in rows[a.agent_id]
    table = convocate(root, "auth", "status").stdout
    assert any(ln.startswith(a.agent_id) and "unreachable" in ln for ln in table.splitlines())
    r = convocate(root, "auth", "clear", "--all")
    assert r.returncode == 1 and not os.path.exists(env_path(b))


def test_cli_new_and_edit_set_model_and_autonomy(paired):
    root, a = paired
    name = "cl-" + uuidlib.uuid4().hex[:6]
    r = convocate(root, "new", name, "--model", "claude-opus-4", "--autonomous")
    assert r.returncode == 0, r.stderr
    s = [x for x in a.ok("list") if x["name"] == name][0]
    assert (s["model"], s["autonomous"]) == ("claude-opus-4", True)
    r = convocate(root, "edit", name, "--model", "", "--no-autonomous")
    assert r.returncode == 0, r.stderr
    s = a.ok("get", {"id": s["uuid"]})
    assert (s["model"], s["autonomous"]) == ("", False)
    ls = json.loads(convocate(root, "ls", "--json").stdout)
    assert [x["autonomous"] for x in ls if x["name"] == name] == [False]
    for args in (("new", "x", "--model", "a b"), ("new", "x", "--autonomous", "--no-autonomous"),
                 ("edit", name, "--model", "x/y")):
        r = convocate(root, *args)
        assert r.returncode == 2, (args, r.stderr)
    r = convocate(root, "new", "--help")
    assert r.returncode == 0 and "--no-autonomous" in r.stdout and "auth set" in r.stdout
