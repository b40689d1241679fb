"""Session metadata out of the session home (SPEC 6.1, issues 11 and 13),
against a real convocate-agent reached through OpenSSH.

The metadata lives in <root>/var/lib/convocate-agent/sessions/<uuid>.json,
root 0600 in a 0700 directory; the home holds user data only. What a
session can write in its home (a FIFO, a symlink, a huge file, or a forged
session.json claiming another session's name, port and DNS name) never
hangs the agent and never becomes anyone's metadata. Old-style homes are
moved over once at start. list answers from memory: no directory scan per
call."""
import json
import os
import shutil
import signal
import stat
import subprocess
import time
import uuid as uuidlib

import pytest

from lib.agent_helpers import by_uuid, create_ok, error_of, home, meta_dir, meta_path, \
    read_meta, restart_ok, unique_name

ANSWER_S = 2.0  # the brief's bound for ping/list/get next to a hostile home


def legacy_meta(u, name, port=0, dns_name=""):
    return {"uuid": u, "name": name, "port": port, "protocol": "tcp", "dns_name": dns_name,
            "created_at": "2026-11-24T10:00:00Z", "last_accessed": "2026-11-24T11:00:00Z"}


def old_style_home(agent, u, content=None):
    """A home as agents before SPEC 6.1 left it: session.json inside."""
    d = home(agent, u)
    os.makedirs(d, mode=0o700)
    if content is not None:
        with open(os.path.join(d, "session.json"), "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
    return d


def plant(agent, name, **fields):
    """A session laid down as the agent keeps it (a home, and its metadata
    out of it), for an agent that is stopped: tests that are not about
    create need not wait out CPU admission on this busy 2-core machine."""
    u = str(uuidlib.uuid4())
    os.makedirs(home(agent, u), mode=0o700)
    os.makedirs(meta_dir(agent), mode=0o700, exist_ok=True)
    with open(meta_path(agent, u), "w") as f:
        json.dump(dict(legacy_meta(u, name), **fields), f)
    os.chmod(meta_path(agent, u), 0o600)
    return dict(legacy_meta(u, name), **fields)


def timed_rpc(agent, op, params=None):
    """The call's answer and how long it took; a hung agent fails here."""
    t0 = time.monotonic()
    resp = agent.rpc(op, params, timeout=30)
    return resp, time.monotonic() - t0


def answers_quickly(agent, op, params=None):
    resp, took = timed_rpc(agent, op, params)
    assert took < ANSWER_S, f"{op} took {took:.2f} s"
    assert resp.get("ok") is True, f"{op} -> {resp}"
    return resp["result"]


def test_metadata_is_root_0600_in_a_0700_dir_and_out_of_the_home(agent):
    s = create_ok(agent, name=unique_name("meta"), port=-1, dns_name=f"m{os.getpid()}")
    st = os.lstat(meta_dir(agent))
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 0
    st = os.lstat(meta_path(agent, s["uuid"]))
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    disk = read_meta(agent, s["uuid"])
    assert (disk["uuid"], disk["name"], disk["port"], disk["dns_name"]) == \
        (s["uuid"], s["name"], s["port"], s["dns_name"])
    assert not os.path.lexists(os.path.join(home(agent, s["uuid"]), "session.json"))
    # No temporary of the atomic write is left beside it.
    assert sorted(os.listdir(meta_dir(agent))) == [f"{s['uuid']}.json"]
    agent.ok("delete", {"id": s["uuid"]})
    assert not os.path.lexists(meta_path(agent, s["uuid"]))
    assert not os.path.lexists(home(agent, s["uuid"]))


def test_hostile_old_session_json_never_hangs_the_agent(agent, tmp_root):
    """A FIFO, a symlink to a host file and a 10 MB file where an old home's
    session.json was: the agent starts, ping/list/get answer at once, those
    three are broken with the reason and the good old home is moved over."""
    agent.stop()
    good, fifo, link, huge = (str(uuidlib.uuid4()) for _ in range(4))
    old_style_home(agent, good, legacy_meta(good, "good-old", port=7001))
    os.mkfifo(os.path.join(old_style_home(agent, fifo), "session.json"))
    host_file = os.path.join(tmp_root, "host-secret.json")
    with open(host_file, "w") as f:  # valid metadata: only following the link would take it
        json.dump(legacy_meta(link, "via-link"), f)
    os.symlink(host_file, os.path.join(old_style_home(agent, link), "session.json"))
    with open(os.path.join(old_style_home(agent, huge), "session.json"), "w") as f:
        f.write(" " * (10 * 1024 * 1024))
    agent.start()

    answers_quickly(agent, "ping")
    listed = {s["uuid"]: s for s in answers_quickly(agent, "list")}
    reasons = {fifo: "not a regular file", link: "symlink", huge: "too large"}
    for u, why in reasons.items():
        assert listed[u]["state"] == "!" and why in listed[u]["error"], listed[u]
        got = answers_quickly(agent, "get", {"id": u})
        assert got["state"] == "!" and why in got["error"], got
        assert not os.path.lexists(meta_path(agent, u))
    assert listed[good]["name"] == "good-old" and "error" not in listed[good]
    assert read_meta(agent, good)["port"] == 7001
    assert not os.path.lexists(os.path.join(home(agent, good), "session.json"))
    with open(host_file) as f:
        assert json.load(f)["name"] == "via-link"  # the host file is untouched
    # Others are unaffected: a new session is made and listed.
    s = create_ok(agent, name=unique_name("fine"))
    assert by_uuid(answers_quickly(agent, "list"), s["uuid"])["state"] == "-"


def test_adopt_reads_a_fifo_without_hanging(agent):
    """adopt reads the home's file with no store lock held and never waits
    on a FIFO: it fails at once and list keeps answering."""
    u = str(uuidlib.uuid4())
    os.mkfifo(os.path.join(old_style_home(agent, u), "session.json"))
    resp, took = timed_rpc(agent, "adopt", {"id": u})
    assert took < ANSWER_S and resp["ok"] is False and "not a regular file" in resp["error"], resp
    answers_quickly(agent, "list")


def test_forged_session_json_in_a_home_is_ignored(agent):
    """A session writes session.json into its own home claiming another's
    name, port and DNS name: list, get, adopt and a restart all ignore it,
    and the restart removes it unread."""
    dns = f"victim{os.getpid()}"
    agent.stop()
    victim = plant(agent, unique_name("victim"), port=8080, dns_name=dns)
    thief = plant(agent, unique_name("thief"))
    agent.start()
    forged = legacy_meta(thief["uuid"], victim["name"], port=8080, dns_name=dns)
    forged_path = os.path.join(home(agent, thief["uuid"]), "session.json")
    with open(forged_path, "w") as f:
        json.dump(forged, f)

    def unchanged():
        got = agent.ok("get", {"id": thief["uuid"]})
        assert (got["name"], got["port"], got["dns_name"]) == (thief["name"], 0, "")
        listed = by_uuid(agent.ok("list"), thief["uuid"])
        assert (listed["name"], listed["port"]) == (thief["name"], 0)

    unchanged()
    assert "already has metadata" in error_of(agent, "adopt", {"id": thief["uuid"]})
    unchanged()
    agent.restart()
    unchanged()
    assert not os.path.lexists(forged_path)
    assert read_meta(agent, thief["uuid"])["name"] == thief["name"]
    # The victim keeps its claims: nobody else may take them.
    assert "already in use" in error_of(agent, "edit", {"id": thief["uuid"], "dns_name": dns})


def test_old_style_homes_migrate_once_at_start(agent):
    """Sessions made by the agent, turned back into old-style homes (the
    metadata file moved into the home as session.json), and one home
    caught mid-migration (both files, the home's one stale): one start moves
    them, the next finds nothing to move."""
    agent.stop()
    a = plant(agent, unique_name("olda"), port=4242)
    b = plant(agent, unique_name("oldb"))
    agent.start()
    assert {a["uuid"], b["uuid"]} <= {s["uuid"] for s in agent.ok("list")}
    agent.stop()
    # A move, not a rename: the homes are their own (nosuid,nodev) mount.
    shutil.move(meta_path(agent, a["uuid"]), os.path.join(home(agent, a["uuid"]), "session.json"))
    stale = dict(read_meta(agent, b["uuid"]), name="stale-copy")
    with open(os.path.join(home(agent, b["uuid"]), "session.json"), "w") as f:
        json.dump(stale, f)
    agent.start()

    listed = {s["uuid"]: s for s in agent.ok("list")}
    assert listed[a["uuid"]]["name"] == a["name"] and listed[a["uuid"]]["port"] == a["port"]
    assert listed[b["uuid"]]["name"] == b["name"]  # the metadata won, unread copy dropped
    for s in (a, b):
        assert os.path.isfile(meta_path(agent, s["uuid"]))
        assert not os.path.lexists(os.path.join(home(agent, s["uuid"]), "session.json"))
    assert agent.log().count(f"moved the metadata of session {a['uuid']}") == 1
    agent.restart()
    assert agent.log().count(f"moved the metadata of session {a['uuid']}") == 1
    assert by_uuid(agent.ok("list"), a["uuid"])["name"] == a["name"]


def test_clone_writes_metadata_for_the_new_uuid(agent):
    src = create_ok(agent, name=unique_name("src"), port=-1, dns_name=f"src{os.getpid()}",
                    model="m.1")
    with open(os.path.join(home(agent, src["uuid"]), "work.txt"), "w") as f:
        f.write("kept\n")
    c = agent.ok("clone", {"source_id": src["uuid"], "name": unique_name("copy")})
    disk = read_meta(agent, c["uuid"])
    assert (disk["uuid"], disk["name"], disk["port"], disk["dns_name"], disk["model"]) == \
        (c["uuid"], c["name"], 0, "", "m.1")
    assert stat.S_IMODE(os.lstat(meta_path(agent, c["uuid"])).st_mode) == 0o600
    assert read_meta(agent, src["uuid"])["name"] == src["name"]
    with open(os.path.join(home(agent, c["uuid"]), "work.txt")) as f:
        assert f.read() == "kept\n"
    agent.restart()  # and it was on disk, not only in memory
    assert by_uuid(agent.ok("list"), c["uuid"])["name"] == c["name"]


def getdents_on(trace_path, root):
    """getdents64 calls strace -y saw on a directory under root."""
    with open(trace_path, errors="replace") as f:
        return [line for line in f if "getdents64(" in line and root in line]


def test_list_does_not_scan_the_sessions_per_call(agent, tmp_root):
    """50 lists: the store's scan counter does not move, and strace on the
    agent sees no getdents64 on any directory of its root. A metadata file
    written behind the agent's back is not listed until the next start,
    since list answers from memory."""
    agent.stop()
    for _ in range(3):
        plant(agent, unique_name("scan"))
    agent.start()
    before = agent.ok("ping")["store_scans"]
    trace = os.path.join(tmp_root, "strace.out")
    tracer = subprocess.Popen(["strace", "-f", "-y", "-e", "trace=getdents64", "-o", trace,
                               "-p", str(agent.proc.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # "Process N attached with M threads" comes once every thread is traced.
        attached = tracer.stderr.readline().decode(errors="replace")
        assert "attached" in attached, attached
        for _ in range(50):
            assert len(agent.ok("list")) == 3
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
    assert agent.ok("ping")["store_scans"] == before
    assert getdents_on(trace, agent.root) == []

    # Proof that the check above can see a scan: a restart scans.
    hidden = plant(agent, "behind-the-back")["uuid"]
    assert by_uuid(agent.ok("list"), hidden) is None
    agent.restart()
    assert agent.ok("ping")["store_scans"] > 0
    assert by_uuid(agent.ok("list"), hidden)["name"] == "behind-the-back"


@pytest.mark.parametrize("bad", [
    {"name": "bad name!"}, {"port": 70000}, {"protocol": "sctp"}, {"dns_name": "Not_A_Label"},
    {"uuid": "00000000-0000-4000-8000-000000000000"},
])
def test_a_bad_metadata_file_breaks_only_its_session(agent, bad):
    agent.stop()
    ok = plant(agent, unique_name("ok"))
    s = plant(agent, unique_name("bad"))
    with open(meta_path(agent, s["uuid"]), "w") as f:
        json.dump(dict(s, **bad), f)
    agent.start()
    listed = {x["uuid"]: x for x in agent.ok("list")}
    assert listed[s["uuid"]]["state"] == "!" and listed[s["uuid"]]["error"], listed[s["uuid"]]
    assert listed[ok["uuid"]]["state"] == "-" and "error" not in listed[ok["uuid"]]
    assert "cannot be changed" in error_of(agent, "edit", {"id": s["uuid"], "name": "x"})
    agent.ok("delete", {"id": s["uuid"]})  # the operator's way out
    assert not os.path.lexists(meta_path(agent, s["uuid"]))


OK_OPEN, OK_CLOSE = b'{"ok":true,"result":', b"}\n"


def raw_result(agent, op, params=None):
    """The bytes of a call's result, as the agent encoded them."""
    r = agent.rpc_raw(json.dumps({"op": op, "params": params}).encode() + b"\n")
    assert r.returncode == 0 and r.stdout.startswith(OK_OPEN) and r.stdout.endswith(OK_CLOSE), \
        f"{op}: {r.stdout[:300]!r} {r.stderr!r}"
    return r.stdout[len(OK_OPEN):-len(OK_CLOSE)]


def listed_as_get_says(agent, uuid):
    """The session as the very next list shows it. list joins texts cached
    in memory (issue 13): its bytes for the session must be exactly those
    get encodes from scratch, so a stale cache fails here."""
    listing = raw_result(agent, "list")
    assert raw_result(agent, "get", {"id": uuid}) in listing
    return by_uuid(json.loads(listing), uuid)


def test_list_shows_each_change_to_a_session_at_once(agent, test_image):
    agent.stop()
    a, b = plant(agent, unique_name("a")), plant(agent, unique_name("b"))
    agent.start()
    renamed = unique_name("renamed")
    agent.ok("edit", {"id": a["uuid"], "name": renamed, "port": 4242})
    got = listed_as_get_says(agent, a["uuid"])
    assert (got["name"], got["port"]) == (renamed, 4242)

    # A lock another process holds, then gives up (SPEC 6.3).
    lock = os.path.join(home(agent), b["uuid"] + ".lock")
    owner = subprocess.Popen(["sleep", "120"])
    try:
        with open(lock, "w") as f:
            f.write(f"{owner.pid}\n")
        got = listed_as_get_says(agent, b["uuid"])
        assert (got["locked"], got["state"]) == (True, "L")
        os.unlink(lock)
        got = listed_as_get_says(agent, b["uuid"])
        assert (got["locked"], got["state"]) == (False, "-")
    finally:
        owner.kill()
        owner.wait()

    # The agent's default autonomy reaches a session that sets none, at once.
    agent.ok("settings-set", {"default_autonomous": True})
    assert listed_as_get_says(agent, a["uuid"])["autonomous"] is True

    # Started and stopped in the engine.
    restart_ok(agent, b["uuid"])
    got = listed_as_get_says(agent, b["uuid"])
    assert (got["running"], got["state"]) == (True, "R")
    agent.ok("kill", {"id": b["uuid"]})
    got = listed_as_get_says(agent, b["uuid"])
    assert (got["running"], got["state"]) == (False, "-")

    agent.ok("delete", {"id": a["uuid"]})
    assert by_uuid(agent.ok("list"), a["uuid"]) is None
