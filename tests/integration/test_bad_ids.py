"""Ids that are not canonical UUIDv4 are refused with `invalid id "<id>"`
before anything touches the filesystem (SPEC 3, 14). The ids chosen name
paths that exist under the agent's root, so an id used as a path would be
seen to act; nothing may change."""
import os
import uuid as uuidlib

from lib.agent_helpers import create_ok, error_of, snapshot_tree

ID_OPS = ("get", "edit", "delete", "kill", "background", "restart", "override")

BAD_IDS = [
    "../x",
    ".skel",                                  # <root>/home/claude/.skel exists
    "../../etc/convocate-agent",              # exists, and holds the agent's keys
    "../../../../../../../../tmp",
    "6ba7b810-9dad-11d1-80b4-00c04fd430c8",   # version 1
    "6ba7b810-9dad-31d1-80b4-00c04fd430c8",   # version 3
    "6BA7B810-9DAD-41D1-80B4-00C04FD430C8",   # upper case
    "6ba7b810-9dad-41d1-c0b4-00c04fd430c8",   # wrong variant
    "6ba7b8109dad41d180b400c04fd430c8",       # no dashes
    "{6ba7b810-9dad-41d1-80b4-00c04fd430c8}",
    " 6ba7b810-9dad-41d1-80b4-00c04fd430c8",
    "6ba7b810-9dad-41d1-80b4-00c04fd430c8/",
    "6ba7b810-9dad-41d1-80b4-00c04fd430c8/../x",
    "",
    "a" * 10 * 1024,
]


def shown(bad):
    return bad if len(bad) <= 64 else bad[:64] + "..."


def test_bad_ids_are_refused_before_any_filesystem_access(agent):
    keep = create_ok(agent, name="keep")
    skip = ("agent.stderr", "events.log")
    before = snapshot_tree(agent.root, skip)
    for op in ID_OPS:
        for bad in BAD_IDS:
            params = {"id": bad}
            if op == "edit":
                params["name"] = "renamed"
            assert error_of(agent, op, params) == f'invalid id "{shown(bad)}"', (op, bad[:80])
        for bad in BAD_IDS:
            assert error_of(agent, "clone", {"source_id": bad, "name": "c"}) == \
                f'invalid id "{shown(bad)}"'
    assert snapshot_tree(agent.root, skip) == before
    assert os.path.isdir(os.path.join(agent.root, "home", "claude", ".skel"))
    assert os.path.exists(os.path.join(agent.etc, "agent-id"))
    assert agent.ok("get", {"id": keep["uuid"]})["name"] == "keep"
    assert [s["uuid"] for s in agent.ok("list")] == [keep["uuid"]]
    log = agent.log()
    assert "stale lock" not in log and "session.json" not in log


def test_id_must_be_a_string(agent):
    for bad in (5, None, ["x"], {"a": 1}, True):
        assert error_of(agent, "get", {"id": bad}).startswith("decode params: ")
    assert error_of(agent, "delete", {}).startswith("decode params: ")
    # A NUL inside a string is refused while the request line is decoded.
    assert error_of(agent, "get", {"id": "a\u0000b"}).startswith("decode ")


def test_a_valid_id_that_does_not_exist_is_not_found(agent):
    missing = str(uuidlib.uuid4())
    assert error_of(agent, "delete", {"id": missing}) == f'session "{missing}" not found'
