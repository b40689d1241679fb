"""Where an agent keeps its state under --root, in both layouts of session
metadata: SPEC 6.1's /var/lib/convocate-agent/sessions/<uuid>.json (looked
at first) and the older /home/claude/<uuid>/session.json, so tests that
inspect files hold across that move. Also what an interrupted operation
may leave behind, and the session fields an operator sets."""
import json
import os
import uuid as uuidlib

FIELDS = ("name", "port", "protocol", "dns_name")


def home_root(root):
    return os.path.join(root, "home", "claude")


def sessions_dir(root):
    return os.path.join(root, "var", "lib", "convocate-agent", "sessions")


def etc_dir(root):
    return os.path.join(root, "etc", "convocate-agent")


def is_uuid(name):
    try:
        return str(uuidlib.UUID(name)) == name
    except ValueError:
        return False


def metadata_path(root, uuid):
    """The session's metadata file: the SPEC 6.1 place when it is there,
    else session.json in the home (agents before the move)."""
    new = os.path.join(sessions_dir(root), uuid + ".json")
    return new if os.path.exists(new) else os.path.join(home_root(root), uuid, "session.json")


def metadata_files(root):
    """{uuid: path} of every session metadata file in either place."""
    found = {}
    home = home_root(root)
    for n in os.listdir(home):
        p = os.path.join(home, n, "session.json")
        if is_uuid(n) and os.path.isdir(os.path.join(home, n)) and os.path.exists(p):
            found[n] = p
    if os.path.isdir(sessions_dir(root)):
        for n in os.listdir(sessions_dir(root)):
            if n.endswith(".json") and is_uuid(n[:-5]):
                found[n[:-5]] = os.path.join(sessions_dir(root), n)
    return found


def leftovers(root):
    """What an interrupted operation may leave: staged (.new-) and half-deleted
    (.del-) homes, and temporaries of atomic writes (.tmp-) beside any state
    file or in a session home's top level."""
    home = home_root(root)
    dirs = [home, sessions_dir(root), etc_dir(root)]
    dirs += [os.path.join(home, n) for n in os.listdir(home)
             if is_uuid(n) and os.path.isdir(os.path.join(home, n))]
    found = []
    for d in dirs:
        if os.path.isdir(d):
            found += [os.path.join(d, n) for n in os.listdir(d)
                      if n.startswith((".new-", ".del-")) or ".tmp-" in n]
    return found


def check_state_files(root, listed=None):
    """Every metadata file and settings.json parses (and, given the agent's
    list, says what the list says); returns the settings."""
    files = metadata_files(root)
    for uuid, path in files.items():
        with open(path) as f:
            meta = json.load(f)
        assert meta["uuid"] == uuid, path
        if listed is not None:
            assert fields_of(meta) == fields_of(listed[uuid]), f"{path} is not what list says"
    if listed is not None:
        assert sorted(files) == sorted(listed), "sessions on disk are not those listed"
    settings = os.path.join(etc_dir(root), "settings.json")
    if not os.path.exists(settings):
        return None
    with open(settings) as f:
        return json.load(f)


def fields_of(obj):
    return {k: obj[k] for k in FIELDS}
