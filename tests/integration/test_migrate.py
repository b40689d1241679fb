"""convocate-host migrate-session (SPEC 6.5) against real processes: a shell
root and an agent root paired by init-shell / init-agent --agent-root, a real
convocate-agent serve on 127.0.0.1, and an orphan home under the shell root.
The move must land the tree on the agent intact (content, symlinks as
symlinks, modes, owner claude 1337:1337), its session.json adopted by the
agent as the session's metadata (SPEC 6.1: out of the home, root 0600), be
listed by the agent over the pinned RPC, and only then remove the source; every refusal and the dry run
must leave both sides exactly as they were."""
import json
import re
import os
import shutil
import stat
import subprocess
import tempfile
import uuid as uuidlib

import pytest

from lib.common import remove_tree, AGENT_BIN, HOST_BIN, SHELL_BIN, docker, free_port, stop_process, \
    wait_for_port
from lib.pairing import agent_id, init_agent, init_shell
from lib.pairing import snapshot as full_snapshot
from lib.remote import Target

DEPTH = 200  # directory levels in the orphan's deep chain
CLAUDE = 1337


class Cluster:
    """One shell root and one paired agent root with its agent serving."""

    def __init__(self):
        self.shell = tempfile.mkdtemp(prefix="convocate-mig-shell-")
        self.agent = tempfile.mkdtemp(prefix="convocate-mig-agent-")
        self.tmp = tempfile.mkdtemp(prefix="convocate-mig-tmp-")
        self.port = free_port()
        self.proc = None
        init_shell(self.shell)
        init_agent(self.shell, self.agent, "--agent-addr", f"127.0.0.1:{self.port}")
        self.agent_id = agent_id(self.agent)

    def start(self):
        log = open(os.path.join(self.tmp, "agent.stderr"), "w")
        env = {k: v for k, v in os.environ.items()
               if k not in ("INVOCATION_ID", "JOURNAL_STREAM")}
        self.proc = subprocess.Popen(
            [AGENT_BIN, "serve", "--root", self.agent, "--listen", f"127.0.0.1:{self.port}"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        log.close()
        assert wait_for_port(self.port, self.proc), self.agent_log()

    def agent_log(self):
        with open(os.path.join(self.tmp, "agent.stderr")) as f:
            return f.read()

    def stop(self):
        stop_process(self.proc)

    def restart(self):
        self.stop()
        self.start()

    def meta_path(self, u):
        return os.path.join(self.agent, "var", "lib", "convocate-agent", "sessions", f"{u}.json")

    def orphan_path(self, u):
        return os.path.join(self.shell, "home", "claude", u)

    def agent_home(self, u):
        return os.path.join(self.agent, "home", "claude", u)

    def migrate(self, *args, agent=None, session=None, path_prefix=None, extra_env=None):
        argv = [HOST_BIN, "migrate-session", "--root", self.shell, "--agent-root", self.agent,
                "--agent", agent or self.agent_id]
        if session is not None:
            argv += ["--session", session]
        env = dict(os.environ, TMPDIR=self.tmp)
        if path_prefix:
            env["PATH"] = path_prefix + os.pathsep + env["PATH"]
        env.update(extra_env or {})
        return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=180,
                              env=env)

    def ls(self):
        r = subprocess.run([SHELL_BIN, "--root", self.shell, "ls", "--json"],
                           capture_output=True, text=True, timeout=90)
        assert r.returncode == 0, r.stderr
        return {s["uuid"]: s for s in json.loads(r.stdout)}

    def cleanup(self):
        self.stop()
        for d in (self.shell, self.agent, self.tmp):
            remove_tree(d)


@pytest.fixture
def cluster():
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.cleanup()


def make_orphan(c, u=None):
    """A pre-agent session home: session.json, nested files with several
    modes, a symlink pointing out of the tree, a deep directory chain."""
    u = u or str(uuidlib.uuid4())
    top = c.orphan_path(u)
    os.makedirs(os.path.join(top, "src", "pkg"))
    meta = {"uuid": u, "name": "legacy", "port": 0, "protocol": "tcp", "dns_name": "",
            "created_at": "2026-11-24T10:00:00Z", "last_accessed": "2026-11-24T11:00:00Z",
            "custom": "kept"}
    with open(os.path.join(top, "session.json"), "w") as f:
        json.dump(meta, f)
    with open(os.path.join(top, "src", "pkg", "main.py"), "w") as f:
        f.write("print('hello')\n" * 100)
    with open(os.path.join(top, "src", "run.sh"), "w") as f:
        f.write("#!/bin/sh\necho run\n")
    os.chmod(os.path.join(top, "src", "run.sh"), 0o755)
    with open(os.path.join(top, "secret"), "wb") as f:
        f.write(os.urandom(4096))
    os.chmod(os.path.join(top, "secret"), 0o600)
    os.symlink("/etc/passwd", os.path.join(top, "outside-link"))
    os.symlink("src/pkg/main.py", os.path.join(top, "inside-link"))
    deep = os.path.join(top, *["d"] * DEPTH)
    os.makedirs(deep)
    with open(os.path.join(deep, "bottom.txt"), "w") as f:
        f.write("the bottom\n")
    # Names tar or a shell could misread.
    for odd in ("-C", "--to-command=id", "new\nline", "sp ace"):
        with open(os.path.join(top, odd), "w") as f:
            f.write(odd)
    return u


def add_specials(c, u):
    """What must not reach the agent as it is: a FIFO and a device node
    (dropped, as the agent's clone drops them) and a set-uid file (its
    set-id bits dropped). Returns the tree expected on the agent."""
    top = c.orphan_path(u)
    os.mkfifo(os.path.join(top, "fifo"))
    os.mknod(os.path.join(top, "null-dev"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    with open(os.path.join(top, "src", "suid"), "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(os.path.join(top, "src", "suid"), 0o6755)
    expected = tree(top)
    del expected["fifo"], expected["null-dev"]
    kind, data, mode = expected[os.path.join("src", "suid")]
    expected[os.path.join("src", "suid")] = (kind, data, 0o755)
    return expected


def tree(top):
    """Everything under top, relative: kind, content or link target, mode."""
    out = {}
    for d, dirs, files in os.walk(top):
        for name in dirs + files:
            full = os.path.join(d, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, top)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            elif not stat.S_ISREG(st.st_mode):
                out[rel] = ("special", stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode))
            else:
                with open(full, "rb") as f:
                    out[rel] = ("file", f.read(), stat.S_IMODE(st.st_mode))
    return out


def test_migrate_moves_an_orphan_to_the_agent(cluster):
    c = cluster
    u = make_orphan(c)
    before = add_specials(c, u)
    assert c.ls()[u]["state"] == "O"  # on the shell only: an orphan

    r = c.migrate(session=u)
    assert r.returncode == 0, r.stdout + r.stderr
    for step in ("source:", "local container:", "agent sessions:", "archive:", "sha256:",
                 "copy:", "verify:", "untar:", "adopt:", "listed:", "remove source:"):
        assert f"  {step}" in r.stdout, r.stdout
    assert f"session {u} moved to agent {c.agent_id}" in r.stdout
    # The archive is streamed with the progress bar of every long copy.
    assert re.search(r"copy: [0-9.]+ / [0-9.]+ MiB +100%", r.stderr), r.stderr

    # The source is gone, the agent holds the same tree, but for the
    # session.json that became its metadata, out of the home.
    assert not os.path.lexists(c.orphan_path(u))
    home = c.agent_home(u)
    meta = before.pop("session.json")[1]
    assert tree(home) == before
    st = os.lstat(c.meta_path(u))
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    with open(c.meta_path(u)) as f:
        on_agent = json.load(f)
    assert on_agent["name"] == "legacy" and on_agent["custom"] == "kept"
    assert on_agent == dict(json.loads(meta), model="")
    assert os.path.islink(os.path.join(home, "outside-link"))
    assert os.readlink(os.path.join(home, "outside-link")) == "/etc/passwd"
    assert stat.S_IMODE(os.lstat(home).st_mode) == 0o700
    for d, dirs, files in os.walk(home):
        for name in [""] + dirs + files:
            st = os.lstat(os.path.join(d, name))
            assert (st.st_uid, st.st_gid) == (CLAUDE, CLAUDE), os.path.join(d, name)

    # The cluster sees it through the agent's RPC, with its metadata.
    listed = c.ls()
    assert listed[u]["agent"] == c.agent_id
    assert listed[u]["name"] == "legacy" and "error" not in listed[u]
    assert listed[u]["custom"] == "kept"

    # No temporaries left on either side.
    assert os.listdir(c.tmp) == ["agent.stderr"]
    leftovers = [n for n in os.listdir(os.path.join(c.agent, "home", "claude"))
                 if n.startswith(".new-")]
    assert leftovers == []


def test_dry_run_changes_nothing(cluster):
    c = cluster
    u = make_orphan(c)
    snap = full_snapshot(c.shell, c.agent)
    r = c.migrate("--dry-run", session=u)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "would archive" in r.stdout and "would then remove" in r.stdout
    assert full_snapshot(c.shell, c.agent) == snap
    assert os.listdir(c.tmp) == ["agent.stderr"]
    assert c.ls()[u]["state"] == "O"  # on the shell only: an orphan


def assert_refused(c, r, text, snap):
    assert r.returncode != 0, r.stdout + r.stderr
    assert text in r.stderr, r.stderr
    assert full_snapshot(c.shell, c.agent) == snap
    assert os.listdir(c.tmp) == ["agent.stderr"]


def test_refuses_when_the_agent_already_has_it(cluster):
    """As after a migrate that died between untar and the source's removal:
    both copies exist; the command names both and deletes neither."""
    c = cluster
    u = make_orphan(c)
    shutil.copytree(c.orphan_path(u), c.agent_home(u), symlinks=True)
    c.restart()  # its start takes the copy's session.json in, as adopt would have
    assert c.ls()[u]["agent"] == c.agent_id
    snap = full_snapshot(c.shell, c.agent)
    r = c.migrate(session=u)
    assert_refused(c, r, f"agent {c.agent_id} already lists session {u}", snap)
    assert c.orphan_path(u) in r.stderr and c.agent_home(u) in r.stderr


def test_refuses_when_its_container_runs_locally(cluster, test_image):
    c = cluster
    u = make_orphan(c)
    name = f"convocate-session-{u}"
    docker("run", "-d", "--name", name, "--label", "convocate.test=migrate",
           "--entrypoint", "sleep", test_image, "300")
    try:
        snap = full_snapshot(c.shell, c.agent)
        r = c.migrate(session=u)
        assert_refused(c, r, f"{name} is running on this host", snap)
    finally:
        docker("rm", "-f", name, check=False)


def test_refuses_an_unknown_agent(cluster):
    c = cluster
    u = make_orphan(c)
    snap = full_snapshot(c.shell, c.agent)
    r = c.migrate(session=u, agent="zzzzzzzz")
    assert_refused(c, r, "agent zzzzzzzz is not registered", snap)
    r = c.migrate(session=u, agent="../../etc")
    assert_refused(c, r, "is not an agent id", snap)


@pytest.mark.parametrize("bad", ["not-a-uuid", "../../../etc",
                                 "6F9619FF-8B86-4011-B42D-00C04FC964FF",
                                 "6f9619ff-8b86-1011-b42d-00c04fc964ff", ""])
def test_refuses_a_bad_uuid(cluster, bad):
    c = cluster
    make_orphan(c)
    snap = full_snapshot(c.shell, c.agent)
    r = c.migrate(session=bad)
    assert_refused(c, r, "is not a canonical lowercase UUIDv4", snap)


def test_refuses_a_missing_or_odd_source(cluster):
    c = cluster
    make_orphan(c)
    snap = full_snapshot(c.shell, c.agent)
    r = c.migrate(session=str(uuidlib.uuid4()))
    assert_refused(c, r, "No such file or directory", snap)

    # A symlink where the home should be is never followed.
    target = make_orphan(c)
    link = str(uuidlib.uuid4())
    os.symlink(c.orphan_path(target), c.orphan_path(link))
    snap = full_snapshot(c.shell, c.agent)
    r = c.migrate(session=link)
    assert_refused(c, r, "is a symlink", snap)

    plain = str(uuidlib.uuid4())
    with open(c.orphan_path(plain), "w") as f:
        f.write("not a dir\n")
    snap = full_snapshot(c.shell, c.agent)
    r = c.migrate(session=plain)
    assert_refused(c, r, "is not a directory", snap)


def test_refuses_when_the_agent_does_not_answer(cluster):
    """Without the agent's word that it does not hold the session, nothing moves."""
    c = cluster
    u = make_orphan(c)
    c.stop()
    snap = full_snapshot(c.shell, c.agent)
    r = c.migrate(session=u)
    assert_refused(c, r, f"cannot ask agent {c.agent_id}", snap)


# A step that fails on the agent side, injected by a tool earlier in PATH
# (the local runner runs the agent's tools on this machine): sha256sum that
# reports another digest, mv that cannot publish the untarred home.
FAILING_TOOLS = {
    "sha256sum": ("verify", "#!/bin/sh\necho '" + "0" * 64 + "  '\"$2\"\n"),
    "mv": ("untar", "#!/bin/sh\necho 'mv: injected failure' >&2\nexit 1\n"),
}


@pytest.mark.parametrize("tool", sorted(FAILING_TOOLS))
def test_a_failing_step_is_named_and_leaves_the_source(cluster, tool):
    c = cluster
    u = make_orphan(c)
    step, script = FAILING_TOOLS[tool]
    bindir = os.path.join(c.tmp, "bin")
    os.makedirs(bindir)
    with open(os.path.join(bindir, tool), "w") as f:
        f.write(script)
    os.chmod(os.path.join(bindir, tool), 0o755)
    snap = full_snapshot(c.shell, c.agent)
    r = c.migrate(session=u, path_prefix=bindir)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"migrate-session: {step}: " in r.stderr, r.stderr
    assert "not moved, the source is intact" in r.stdout
    shutil.rmtree(bindir)
    # Source byte for byte as it was; the agent side back to what it was
    # (the staged archive and untarred staging directory removed).
    assert full_snapshot(c.shell, c.agent) == snap
    assert os.listdir(c.tmp) == ["agent.stderr"]
    assert c.ls()[u]["state"] == "O"  # on the shell only: an orphan


def test_damage_in_flight_is_caught_on_the_agent(cluster):
    """The archive is hashed here and checked there: a bit flipped after
    hashing (the upload's test hook) fails the verify step, and nothing
    moves."""
    c = cluster
    u = make_orphan(c)
    snap = full_snapshot(c.shell, c.agent)
    r = c.migrate(session=u, extra_env={"CONVOCATE_TEST_CORRUPT_TRANSFER": "1"})
    assert r.returncode == 1, r.stdout + r.stderr
    assert "migrate-session: verify: the copy on the agent has another SHA-256" in r.stderr
    assert "not moved, the source is intact" in r.stdout
    assert full_snapshot(c.shell, c.agent) == snap
    assert os.listdir(c.tmp) == ["agent.stderr"]
    assert c.ls()[u]["state"] == "O"


# ---- the agent's files on another host, over SSH (--host) -------------------

def test_migrate_to_an_agent_host_over_ssh(cluster, target_image):
    """The file steps run over SSH on a real sshd target (as op, through
    sudo): its /home/claude is the served agent's home directory, bind-mounted,
    so the agent's RPC sees what the remote untar published. The dry run names
    the host; the move itself gives no --host, so the SSH target is the host
    of the agent's registered address (127.0.0.1), on the target's port."""
    c = cluster
    claude_home = os.path.join(c.agent, "home", "claude")
    t = Target(target_image, extra_run_args=("-v", f"{claude_home}:/home/claude"))
    try:
        t.pin()
        u = make_orphan(c)
        before = tree(c.orphan_path(u))
        r = t.host("migrate-session", "--root", c.shell, "--agent", c.agent_id, "--session", u,
                   "--dry-run")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "would copy it to /home/claude/.new-" in r.stdout
        assert "on host 127.0.0.1" in r.stdout
        assert os.path.isdir(c.orphan_path(u)) and not os.path.lexists(c.agent_home(u))

        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        env["HOME"] = t.dir
        r = subprocess.run([HOST_BIN, "migrate-session", "--root", c.shell, "--port", str(t.port),
                            "--user", "op", "--identity", t.key, "--known-hosts", t.known_hosts,
                            "--agent", c.agent_id, "--session", u],
                           capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "on host 127.0.0.1" in r.stdout
        assert f"session {u} moved to agent {c.agent_id}" in r.stdout
        assert not os.path.lexists(c.orphan_path(u))
        home = c.agent_home(u)
        del before["session.json"]  # now the agent's metadata
        assert tree(home) == before
        assert os.path.isfile(c.meta_path(u))
        assert stat.S_IMODE(os.lstat(home).st_mode) == 0o700
        for d, dirs, files in os.walk(home):
            for name in [""] + dirs + files:
                st = os.lstat(os.path.join(d, name))
                assert (st.st_uid, st.st_gid) == (CLAUDE, CLAUDE), os.path.join(d, name)
        assert c.ls()[u]["agent"] == c.agent_id
        assert [n for n in os.listdir(claude_home) if n.startswith(".new-")] == []
        archive = r.stdout.split("  archive: ", 1)[1].split(" (", 1)[0]
        assert not os.path.exists(archive)
    finally:
        t.cleanup()


def test_leftovers_of_an_interrupted_run_are_swept(cluster):
    """A run killed between copy and rename leaves the staged archive and a
    half-untarred staging directory on the agent; the source is still here,
    so the next run removes them (saying so) and moves the home."""
    c = cluster
    u = make_orphan(c)
    before = tree(c.orphan_path(u))
    claude_home = os.path.join(c.agent, "home", "claude")
    os.makedirs(os.path.join(claude_home, f".new-{u}", "half"))
    with open(os.path.join(claude_home, f".new-{u}.tar"), "wb") as f:
        f.write(b"truncated")

    snap = full_snapshot(c.shell, c.agent)
    r = c.migrate("--dry-run", session=u)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("would remove") == 2
    assert full_snapshot(c.shell, c.agent) == snap

    r = c.migrate(session=u)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("left by an interrupted run") == 2
    del before["session.json"]  # now the agent's metadata
    assert tree(c.agent_home(u)) == before
    assert [n for n in os.listdir(claude_home) if n.startswith(".new-")] == []
    assert not os.path.lexists(c.orphan_path(u))


def test_one_move_of_a_home_at_a_time(cluster):
    """While another process holds the source's lock (as a running
    migrate-session does), a second run refuses and touches nothing."""
    import fcntl
    c = cluster
    u = make_orphan(c)
    fd = os.open(c.orphan_path(u), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        snap = full_snapshot(c.shell, c.agent)
        r = c.migrate(session=u)
        assert_refused(c, r, "another migrate-session is moving it", snap)
    finally:
        os.close(fd)
    assert c.migrate(session=u).returncode == 0


def test_option_misuse_is_a_usage_error(cluster):
    c = cluster
    u = make_orphan(c)
    snap = full_snapshot(c.shell, c.agent)

    def run(*argv):
        return subprocess.run([HOST_BIN, *argv], capture_output=True, text=True, timeout=60)

    r = run("migrate-session", "--root", c.shell, "--agent-root", c.agent, "--host", "127.0.0.1",
            "--agent", c.agent_id, "--session", u)
    assert r.returncode == 2 and "at most one of --agent-root DIR and --host H" in r.stderr
    r = run("migrate-session", "--root", c.shell, "--agent-root", c.agent, "--user", "op",
            "--agent", c.agent_id, "--session", u)
    assert r.returncode == 2 and "need --host" in r.stderr
    # Without either, the agent's registered host is the SSH target: an
    # unregistered agent is refused before any connection is tried.
    r = run("migrate-session", "--root", c.shell, "--agent", "zzzzzzzz", "--session", u)
    assert r.returncode == 1 and "agent zzzzzzzz is not registered" in r.stderr
    r = run("migrate-session", "--root", c.shell, "--agent-root", c.agent, "--agent", c.agent_id)
    assert r.returncode == 1 and "--session" in r.stderr
    r = run("init-shell", "--root", c.shell, "--session", u)
    assert r.returncode == 2 and "belongs to migrate-session" in r.stderr
    assert full_snapshot(c.shell, c.agent) == snap
