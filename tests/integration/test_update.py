"""convocate-host update and the image transfer (SPEC 11).

Local mode (--agent-root, an agent made by `convocate-agent install --root`,
the image loaded into this machine's engine): the agent binary is deployed
byte for byte, the test image is saved, uploaded, verified and loaded, and
current-image is stamped; a second run changes nothing; --dry-run touches
nothing; a transfer corrupted in flight (the CONVOCATE_TEST_CORRUPT_TRANSFER
hook) is caught by the SHA-256 check on the target, stamps nothing and keeps
the file; a missing local tag is refused before anything is copied; a
running session keeps its container and tag while a new one gets the new tag.

Remote mode: the same against the sshd target container of lib/remote.py,
given the libraries convocate-agent links and this machine's docker CLI and
socket, so `convocate-agent install` and `docker load` really run there
(the load goes to this machine's engine through that socket); and
init-agent --host deploys the binary before pairing, then transfers the image
named by --image and stamps current-image, converging on a second run; --image
with --agent-root is a usage error, and a missing local tag is refused before
any connection."""
import hashlib
import os
import pty
import subprocess
import tempfile
import uuid

import pytest

from lib.agent_helpers import inspect, unique_name
from lib.common import remove_tree, AGENT_BIN, HOST_BIN, docker, runs_build_on_target
from lib.remote import engine_target, ok

DEPLOYED = os.path.join("usr", "local", "bin", "convocate-agent")
CURRENT_IMAGE = os.path.join("etc", "convocate-agent", "current-image")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot(top):
    """Every path under top with its mode and, for files, a digest."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, top)] = (st.st_mode, sha256(p) if os.path.isfile(p) else None)
    return out


def update(*args, env_extra=None, timeout=600):
    env = dict(os.environ)
    env.pop("CONVOCATE_TEST_CORRUPT_TRANSFER", None)
    env.update(env_extra or {})
    return subprocess.run([HOST_BIN, "update", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture
def agent_dir():
    d = tempfile.mkdtemp(prefix="convocate-update-")
    r = subprocess.run([AGENT_BIN, "install", "--root", d], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    yield d
    remove_tree(d)


def kept_archives(root):
    tmp = os.path.join(root, "tmp")
    return sorted(f for f in os.listdir(tmp) if f.startswith("convocate-image-")) \
        if os.path.isdir(tmp) else []


# ---- (a) local mode ------------------------------------------------------

def test_local_update_deploys_loads_stamps_and_converges(agent_dir, test_image):
    before = snapshot(agent_dir)
    dry = ok(update("--agent-root", agent_dir, "--image", test_image, "--dry-run"))
    assert "/usr/local/bin/convocate-agent: would create" in dry.stdout
    assert "dry run: nothing was touched" in dry.stdout
    assert snapshot(agent_dir) == before

    first = ok(update("--agent-root", agent_dir, "--image", test_image))
    out = first.stdout
    assert "/usr/local/bin/convocate-agent: created" in out
    assert "agent install: unchanged" in out  # the deployed binary ran its own install
    assert f"Loaded image: {test_image}" in out
    assert "matches on the target" in out
    assert "/etc/convocate-agent/current-image: created" in out
    assert "restart 'convocate-agent serve' there by hand" in out
    deployed = os.path.join(agent_dir, DEPLOYED)
    with open(deployed, "rb") as f, open(AGENT_BIN, "rb") as g:
        assert f.read() == g.read()
    assert os.stat(deployed).st_mode & 0o7777 == 0o755
    with open(os.path.join(agent_dir, CURRENT_IMAGE)) as f:
        assert f.read() == test_image + "\n"
    assert kept_archives(agent_dir) == []  # removed after the load
    # the progress went to stderr; without a terminal, a line per tenth
    lines = [l for l in first.stderr.splitlines() if "upload:" in l]
    assert 2 <= len(lines) <= 12, first.stderr
    assert "100%" in lines[-1] and "MiB/s" in lines[-1] and "ETA" in lines[-1]
    assert "\r" not in first.stderr

    converged = snapshot(agent_dir)
    second = ok(update("--agent-root", agent_dir, "--image", test_image))
    assert second.stdout.rstrip().endswith("nothing changed"), second.stdout
    assert f"image {test_image}: unchanged" in second.stdout
    assert "image save" not in second.stdout and "upload" not in second.stderr
    assert "created" not in second.stdout and "updated" not in second.stdout
    assert snapshot(agent_dir) == converged
    again = ok(update("--agent-root", agent_dir, "--image", test_image, "--dry-run"))
    assert again.stdout.rstrip().endswith("nothing changed")
    assert snapshot(agent_dir) == converged

    # a different binary on the target is replaced, found by its digest
    with open(deployed, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    third = ok(update("--agent-root", agent_dir, "--image", test_image))
    assert "/usr/local/bin/convocate-agent: updated" in third.stdout
    assert sha256(deployed) == sha256(AGENT_BIN)
    assert f"image {test_image}: unchanged" in third.stdout


# ---- (b) corrupted in flight -------------------------------------------------

def update_on_a_terminal(*args, env_extra=None):
    """update with stderr on a pseudo-terminal; returns (rc, stdout, stderr)."""
    master, slave = pty.openpty()
    env = dict(os.environ)
    env.update(env_extra or {})
    p = subprocess.Popen([HOST_BIN, "update", *args], stdout=subprocess.PIPE, stderr=slave,
                         stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = p.stdout.read().decode()
    p.stdout.close()
    return p.wait(timeout=600), out, b"".join(chunks).decode(errors="replace")


def test_corrupt_transfer_is_caught_and_stamps_nothing(agent_dir, test_image):
    rc, out, err = update_on_a_terminal("--agent-root", agent_dir, "--image", test_image,
                                        env_extra={"CONVOCATE_TEST_CORRUPT_TRANSFER": "1"})
    r = subprocess.CompletedProcess([], rc, out, err)
    assert r.returncode == 1, r.stdout + r.stderr
    # on a terminal the bar is redrawn in place
    assert "\r  upload:" in r.stderr and "MiB/s" in r.stderr and "ETA" in r.stderr
    assert "image verify: SHA-256 mismatch" in r.stderr, r.stderr
    assert "Loaded image" not in r.stdout
    assert not os.path.exists(os.path.join(agent_dir, CURRENT_IMAGE))
    kept = kept_archives(agent_dir)
    assert len(kept) == 1, kept
    path = os.path.join(agent_dir, "tmp", kept[0])
    assert path in r.stderr and "kept" in r.stderr
    # the file holds what arrived: its digest is the one the error names
    # as the target's, and it is not the one in its name (what was sent)
    assert sha256(path) in r.stderr.replace("\r\n", "")
    assert sha256(path) not in kept[0]


# ---- (c) a missing local tag -------------------------------------------------

def test_missing_local_tag_is_refused_before_anything_is_copied(agent_dir):
    before = snapshot(agent_dir)
    tag = f"convocate-test:missing-{uuid.uuid4().hex[:8]}"
    r = update("--agent-root", agent_dir, "--image", tag)
    assert r.returncode == 1
    assert tag in r.stderr and "not in this machine's docker engine" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert snapshot(agent_dir) == before
    assert not os.path.exists(os.path.join(agent_dir, DEPLOYED))


def test_usage_errors(agent_dir):
    for argv in (["--agent-root", agent_dir, "--image", "-rf"],
                 ["--agent-root", agent_dir, "--image", "a b"],
                 ["--agent-root", agent_dir, "--host", "127.0.0.1"],
                 ["--image", "x"],
                 ["--agent-root", agent_dir, "--user", "op"]):
        r = update(*argv)
        assert r.returncode == 2 and r.stderr.strip(), (argv, r.stderr)


# ---- (d) over SSH --------------------------------------------------------------

@pytest.fixture
def agent_target(libs_target_image):
    """The sshd target given the libraries convocate-agent links and this
    machine's engine socket and docker CLI (lib.remote.engine_target)."""
    t = engine_target(libs_target_image)
    yield t
    t.cleanup()


@runs_build_on_target
def test_remote_update_verifies_the_transfer_and_converges(agent_target, test_image):
    t = agent_target
    t.pin()
    args = ("--image", test_image)

    # a corrupted transfer first: caught there, nothing stamped, file kept
    env_run = _host_with_env(t, {"CONVOCATE_TEST_CORRUPT_TRANSFER": "1"}, *args)
    assert env_run.returncode == 1, env_run.stdout + env_run.stderr
    assert "SHA-256 mismatch" in env_run.stderr and "kept" in env_run.stderr
    assert not t.exists("/etc/convocate-agent/current-image")
    kept = t.sh("ls /tmp | grep '^convocate-image-' || true").split()
    assert len(kept) == 1 and f"/tmp/{kept[0]}" in env_run.stderr
    t.sh(f"rm -f /tmp/{kept[0]}")

    first = ok(t.host("update", *args))
    out = first.stdout
    assert "host 127.0.0.1" in out
    assert "/usr/local/bin/convocate-agent: unchanged" in out  # deployed by the failed run
    assert "convocate-agent install (root /)" in out
    assert "matches on the target" in out
    assert f"Loaded image: {test_image}" in out
    assert "/etc/convocate-agent/current-image: created" in out
    assert "systemd is not running" in out
    remote_sum = t.sh("sha256sum /usr/local/bin/convocate-agent").split()[0]
    assert remote_sum == sha256(AGENT_BIN)
    assert t.sh("stat -c '%a %u %g' /usr/local/bin/convocate-agent").split() == ["755", "0", "0"]
    assert t.sh("cat /etc/convocate-agent/current-image") == test_image + "\n"
    assert t.sh("ls /tmp | grep '^convocate-image-' || true").strip() == ""
    local_id = docker("image", "inspect", "--format", "{{.Id}}", test_image).stdout.strip()
    assert t.sh(f"docker image inspect --format '{{{{.Id}}}}' {test_image}").strip() == local_id

    second = ok(t.host("update", *args))
    assert second.stdout.rstrip().endswith("nothing changed"), second.stdout
    assert "created" not in second.stdout and "updated" not in second.stdout


def _host_with_env(t, extra, *args):
    """Target.host with extra environment (the test hook)."""
    argv = [HOST_BIN, "update", "--host", f"127.0.0.1:{t.port}", "--user", "op",
            "--identity", t.key, "--known-hosts", t.known_hosts, *args]
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env.update(extra, HOME=t.dir)
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)


@runs_build_on_target
def test_init_agent_host_deploys_pairs_transfers_and_stamps(agent_target, tmp_path, test_image):
    """init-agent --host on a target without convocate-agent: the binary is
    deployed first, its install runs there, the pairing completes, then the
    image is transferred (the load goes to this machine's engine through the
    shared socket) and current-image is stamped."""
    t = agent_target
    t.pin()
    shell = str(tmp_path / "shell")
    os.mkdir(shell)
    ok(subprocess.run([HOST_BIN, "init-shell", "--root", shell], capture_output=True, text=True,
                      timeout=120))
    assert not t.exists("/usr/local/bin/convocate-agent")
    dry = ok(t.host("init-agent", "--root", shell, "--image", test_image, "--dry-run"))
    assert "/usr/local/bin/convocate-agent: would create" in dry.stdout, dry.stdout
    assert f"image {test_image}: would" in dry.stdout
    assert "current-image: would be stamped" in dry.stdout
    assert not t.exists("/usr/local/bin/convocate-agent") and not t.exists("/etc/convocate-agent")
    r = ok(t.host("init-agent", "--root", shell, "--image", test_image))
    out = r.stdout
    assert "/usr/local/bin/convocate-agent: created" in out
    assert t.sh("sha256sum /usr/local/bin/convocate-agent").split()[0] == sha256(AGENT_BIN)
    agent_id = t.sh("cat /etc/convocate-agent/agent-id").strip()
    assert os.path.isdir(os.path.join(shell, "etc", "convocate", "agent-keys", agent_id))
    # the image after the pairing and log channel, before the restarts
    assert "matches on the target" in out and f"Loaded image: {test_image}" in out
    assert "/etc/convocate-agent/current-image: created" in out
    assert out.index("rsyslog client drop-in") < out.index(f"Loaded image: {test_image}") \
        < out.index("/etc/convocate-agent/current-image: created") < out.index("by hand")
    assert t.sh("cat /etc/convocate-agent/current-image") == test_image + "\n"
    assert t.sh("ls /tmp | grep '^convocate-image-' || true").strip() == ""
    again = ok(t.host("init-agent", "--root", shell, "--image", test_image))
    assert again.stdout.rstrip().endswith("nothing changed"), again.stdout
    assert f"image {test_image}: unchanged" in again.stdout
    assert "Loaded image" not in again.stdout
    assert "created" not in again.stdout and "updated" not in again.stdout


def test_init_agent_image_needs_host(agent_dir, tmp_path, test_image):
    r = subprocess.run([HOST_BIN, "init-agent", "--root", str(tmp_path), "--agent-root",
                        agent_dir, "--image", test_image], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "--image needs --host" in r.stderr, r.stderr
    r = subprocess.run([HOST_BIN, "init-agent", "--root", str(tmp_path), "--host", "127.0.0.1",
                        "--image", "-rf"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--image needs a tag" in r.stderr, r.stderr


def test_init_agent_missing_local_tag_is_refused_before_connecting(target, tmp_path):
    """known_hosts is left empty: had it dialled, the unknown host key would
    be the complaint. Nothing reaches the target."""
    shell = str(tmp_path / "shell")
    os.mkdir(shell)
    ok(subprocess.run([HOST_BIN, "init-shell", "--root", shell], capture_output=True, text=True,
                      timeout=120))
    tag = f"convocate-test:missing-{uuid.uuid4().hex[:8]}"
    r = target.host("init-agent", "--root", shell, "--image", tag)
    assert r.returncode == 1
    assert tag in r.stderr and "not in this machine's docker engine" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not os.path.exists(target.known_hosts)
    assert not target.exists("/usr/local/bin/convocate-agent")
    assert not target.exists("/etc/convocate-agent")


# ---- running sessions keep their tag -------------------------------------------

@pytest.fixture
def second_tag(test_image):
    """The test image under one more tag (same image ID), removed at the end."""
    tag = f"convocate-test:update-{uuid.uuid4().hex[:8]}"
    docker("tag", test_image, tag)
    yield tag
    docker("rmi", tag, check=False)  # only untags: the ID keeps its first tag


def started(agent):
    """A created and started session; Agent.ok waits out a busy machine's
    CPU admission refusals for a minute (admission is not tested here)."""
    session = agent.ok("create", {"name": unique_name("upd")})
    agent.ok("restart", {"id": session["uuid"]})
    return session


def test_running_sessions_keep_their_tag(agent, test_image, second_tag):
    old = started(agent)
    before = inspect(old["uuid"])
    assert before["State"]["Running"] and before["Config"]["Image"] == test_image

    r = ok(update("--agent-root", agent.root, "--image", second_tag))
    assert f"Loaded image: {second_tag}" in r.stdout
    with open(os.path.join(agent.etc, "current-image")) as f:
        assert f.read() == second_tag + "\n"
    after = inspect(old["uuid"])
    assert after["State"]["Running"] and after["Id"] == before["Id"]
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]
    assert after["Config"]["Image"] == test_image
    # the next start reads current-image: a new session gets the new tag
    new = started(agent)
    assert inspect(new["uuid"])["Config"]["Image"] == second_tag
