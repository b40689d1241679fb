"""convocate-host init-shell and init-agent on directories of this machine
(SPEC 4, 11): the files each side gets and their modes, idempotency, dry runs,
host-key pins that change only with --repin, and a pairing that really works:
the shell's CLI reaches a convocate-agent serve started on the paired root."""
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile

import pytest

from lib.common import AGENT_BIN, SHELL_BIN, free_port, wait_for_port
from lib.pairing import (AGENT_ETC, SHELL_ETC, agent_id, claude_gid, host, init_agent, init_shell,
                         p, read, snapshot)


def mode(root, rel):
    return stat.S_IMODE(os.lstat(p(root, rel)).st_mode)


def blob(text):
    """The base64 key blob of the first ssh-ed25519 line."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "ssh-ed25519":
            return fields[1]
    raise AssertionError(f"no ssh-ed25519 key in {text!r}")


def blobs(text):
    return {line.split()[1] for line in text.splitlines() if line.startswith("ssh-ed25519 ")}


def public_of_private(path):
    """What OpenSSH itself derives from the private key: proves the format.
    A 0600 copy, since ssh-keygen refuses the group-readable mode SPEC 4 gives
    the TUI's key."""
    with tempfile.TemporaryDirectory() as d:
        copy = os.path.join(d, "key")
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o600)
        r = subprocess.run(["ssh-keygen", "-y", "-f", copy], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return blob(r.stdout)


def fingerprint(path):
    r = subprocess.run(["ssh-keygen", "-l", "-f", path], capture_output=True, text=True,
                       check=True)
    return r.stdout.split()[1]


@pytest.fixture
def paired(roots):
    shell, a1, a2 = roots
    init_shell(shell)
    init_agent(shell, a1)
    init_agent(shell, a2)
    return shell, a1, a2


def test_usage_and_version():
    assert host().returncode == 2
    r = host("help")
    assert r.returncode == 0 and "init-agent" in r.stdout
    r = host("version")
    assert r.returncode == 0 and r.stdout.startswith("convocate-host version v")
    assert host("init-agent", "--root", "/tmp").returncode == 2  # no --agent-root
    assert host("init-shell", "--bogus").returncode == 2
    assert host("init-shell", "--repin").returncode == 2  # an init-agent option
    assert host("frobnicate").returncode == 2


def test_init_shell_files_and_modes(roots):
    shell = roots[0]
    r = init_shell(shell)
    assert "  status_host_ed25519_key: created" in r.stdout
    assert mode(shell, SHELL_ETC) == 0o750
    if os.geteuid() == 0:
        st = os.stat(p(shell, SHELL_ETC))
        assert (st.st_uid, st.st_gid) == (0, claude_gid())
    key = f"{SHELL_ETC}/status_host_ed25519_key"
    assert mode(shell, key) == 0o600 and mode(shell, key + ".pub") == 0o644
    assert public_of_private(p(shell, key)) == blob(read(shell, key + ".pub"))
    assert mode(shell, f"{SHELL_ETC}/status_authorized_keys") == 0o644
    assert read(shell, f"{SHELL_ETC}/domain") == "convocate.internal\n"
    assert mode(shell, f"{SHELL_ETC}/agent-keys") == 0o750
    hosts = "var/lib/convocate/dnsmasq-hosts"
    assert read(shell, hosts) == "" and mode(shell, hosts) == 0o644
    unit = read(shell, "etc/systemd/system/convocate-status.service")
    assert "ExecStart=/usr/local/bin/convocate status-serve\n" in unit
    assert "Restart=on-failure" in unit
    dropin = p(shell, "etc/dnsmasq.d/10-convocate.conf")
    if shutil.which("dnsmasq") or os.path.exists("/usr/sbin/dnsmasq"):
        assert f"addn-hosts={os.path.realpath(p(shell, hosts))}\n" in read(shell, dropin)
    else:
        assert not os.path.exists(dropin)


def test_init_agent_places_each_half(paired):
    shell, a1, a2 = paired
    status_pub = read(shell, f"{SHELL_ETC}/status_host_ed25519_key.pub")
    status_auth = blobs(read(shell, f"{SHELL_ETC}/status_authorized_keys"))
    ids = set()
    for agent in (a1, a2):
        aid = agent_id(agent)
        ids.add(aid)
        d = f"{SHELL_ETC}/agent-keys/{aid}"
        assert mode(shell, d) == 0o750
        assert read(shell, f"{d}/agent-host") == "127.0.0.1\n"
        # shell_to_agent: private on the shell (claude may read), public on the agent
        s2a = f"{d}/shell_to_agent_ed25519_key"
        assert mode(shell, s2a) == 0o640
        if os.geteuid() == 0:
            assert os.stat(p(shell, s2a)).st_gid == claude_gid()
        s2a_blob = public_of_private(p(shell, s2a))
        assert blob(read(shell, s2a + ".pub")) == s2a_blob
        assert s2a_blob in blobs(read(agent, f"{AGENT_ETC}/authorized_keys"))
        # agent_to_shell: private on the agent, public on the shell, authorized for 223
        a2s = f"{AGENT_ETC}/agent_to_shell_ed25519_key"
        assert mode(agent, a2s) == 0o600
        a2s_blob = public_of_private(p(agent, a2s))
        assert blob(read(agent, a2s + ".pub")) == a2s_blob
        assert blob(read(shell, f"{d}/agent_to_shell_ed25519_key.pub")) == a2s_blob
        assert a2s_blob in status_auth
        assert not os.path.exists(p(shell, f"{d}/agent_to_shell_ed25519_key"))
        # both host keys pinned
        assert blob(read(shell, f"{d}/host_key.pub")) == \
            blob(read(agent, f"{AGENT_ETC}/ssh_host_ed25519_key.pub"))
        assert blob(read(agent, f"{AGENT_ETC}/shell_host_key.pub")) == blob(status_pub)
        assert read(agent, f"{AGENT_ETC}/shell-host") == "127.0.0.1\n"
    assert len(ids) == 2
    assert len(status_auth) == 2
    # the two pairings share no key
    assert read(shell, f"{SHELL_ETC}/agent-keys/{agent_id(a1)}/shell_to_agent_ed25519_key.pub") \
        != read(shell, f"{SHELL_ETC}/agent-keys/{agent_id(a2)}/shell_to_agent_ed25519_key.pub")


def test_second_run_changes_nothing(paired):
    shell, a1, a2 = paired
    before = snapshot(shell, a1, a2)
    for r in (init_shell(shell), init_agent(shell, a1), init_agent(shell, a2)):
        lines = r.stdout.splitlines()
        assert lines[-1] == "nothing changed", r.stdout
        steps = [line for line in lines if line.startswith("  ") and ": " in line]
        assert steps and all(line.endswith(": unchanged") or "agent id:" in line
                             or "skipped" in line for line in steps), r.stdout
    assert snapshot(shell, a1, a2) == before


def test_dry_run_touches_nothing(roots):
    shell, a1, _ = roots
    r = init_shell(shell, "--dry-run")
    assert "  status_host_ed25519_key: would create" in r.stdout
    assert "nothing changed" not in r.stdout
    assert os.listdir(shell) == []
    init_shell(shell)
    before = snapshot(shell, a1)
    r = init_agent(shell, a1, "--dry-run")
    assert "agent install: would create" in r.stdout
    assert snapshot(shell, a1) == before
    init_agent(shell, a1)
    before = snapshot(shell, a1)
    r = init_agent(shell, a1, "--agent-addr", "10.77.0.2:2222", "--dry-run")
    assert "  agent-host: would update" in r.stdout
    assert "1 step would change" in r.stdout
    assert snapshot(shell, a1) == before
    r = init_agent(shell, a1, "--agent-addr", "10.77.0.2:2222")
    assert "  agent-host: updated" in r.stdout
    aid = agent_id(a1)
    assert read(shell, f"{SHELL_ETC}/agent-keys/{aid}/agent-host") == "10.77.0.2:2222\n"


def test_init_agent_needs_init_shell(roots):
    shell, a1, _ = roots
    r = host("init-agent", "--root", shell, "--agent-root", a1)
    assert r.returncode == 1
    assert "init-shell" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_agent_addr_is_refused(paired):
    shell, a1, _ = paired
    before = snapshot(shell, a1)
    r = host("init-agent", "--root", shell, "--agent-root", a1, "--agent-addr", "a b\nc")
    assert r.returncode == 1 and "agent-host" in r.stderr
    assert snapshot(shell, a1) == before


def test_changed_agent_host_key_needs_repin(paired):
    shell, a1, a2 = paired
    key = p(a1, f"{AGENT_ETC}/ssh_host_ed25519_key")
    old_fp = fingerprint(key + ".pub")
    os.unlink(key)
    os.unlink(key + ".pub")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "new", "-f", key],
                   check=True)
    new_fp = fingerprint(key + ".pub")
    before = snapshot(shell, a1, a2)
    r = host("init-agent", "--root", shell, "--agent-root", a1)
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert old_fp in err[0] and new_fp in err[0] and "--repin" in err[0]
    assert "agent host key pin" in err[0]
    assert snapshot(shell, a1, a2) == before  # refused before anything was written
    r = init_agent(shell, a1, "--repin")
    assert "  agent host key pin: updated" in r.stdout
    pinned = read(shell, f"{SHELL_ETC}/agent-keys/{agent_id(a1)}/host_key.pub")
    assert blob(pinned) == blob(read(a1, f"{AGENT_ETC}/ssh_host_ed25519_key.pub"))
    assert init_agent(shell, a1).stdout.splitlines()[-1] == "nothing changed"


def test_changed_shell_host_key_needs_repin(paired):
    shell, a1, _ = paired
    key = p(shell, f"{SHELL_ETC}/status_host_ed25519_key")
    os.unlink(key)
    os.unlink(key + ".pub")
    init_shell(shell)  # mints a new status host key
    r = host("init-agent", "--root", shell, "--agent-root", a1)
    assert r.returncode == 1 and "shell host key pin" in r.stderr and "--repin" in r.stderr
    init_agent(shell, a1, "--repin")
    assert blob(read(a1, f"{AGENT_ETC}/shell_host_key.pub")) == blob(read(shell, key + ".pub"))


def test_pairing_reaches_a_real_agent(roots):
    """The shell's CLI dials convocate-agent serve with the minted key and the
    pinned host key: the pairing works end to end."""
    shell, a1, a2 = roots
    port = free_port()
    init_shell(shell)
    init_agent(shell, a1, "--agent-addr", f"127.0.0.1:{port}")
    init_agent(shell, a2, "--agent-addr", f"127.0.0.1:{free_port()}")  # never started
    log = open(p(a1, "agent.stderr"), "w")
    env = {k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", "JOURNAL_STREAM")}
    proc = subprocess.Popen([AGENT_BIN, "serve", "--root", a1, "--listen", f"127.0.0.1:{port}",
                             "-v"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
    log.close()
    try:
        assert wait_for_port(port, proc), read(a1, "agent.stderr")
        r = subprocess.run([SHELL_BIN, "--root", shell, "agents", "--json"],
                           capture_output=True, text=True, timeout=90)
        assert r.returncode == 0, r.stderr
        rows = {row["agent_id"]: row for row in json.loads(r.stdout)}
        assert rows[agent_id(a1)]["reachable"] is True, rows
        assert rows[agent_id(a1)]["ping"]["agent_id"] == agent_id(a1)
        assert rows[agent_id(a2)]["reachable"] is False
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def convocate_install(root, *extra):
    return subprocess.run([SHELL_BIN, "--root", root, "install", *extra], capture_output=True,
                          text=True, timeout=120)


def test_convocate_install_shell_host(roots):
    """convocate install under a test root: Docker checked, the hosts file and
    dnsmasq drop-in laid down, no host users touched; idempotent; dry run."""
    root = roots[0]
    r = convocate_install(root, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "dnsmasq-hosts: would create" in r.stdout and os.listdir(root) == []
    r = convocate_install(root)
    assert r.returncode == 0, r.stderr
    assert "docker: reachable" in r.stdout
    assert "user claude" not in r.stdout  # only on the real root
    assert read(root, "var/lib/convocate/dnsmasq-hosts") == ""
    before = snapshot(root)
    r = convocate_install(root)
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "nothing changed", r.stdout
    assert snapshot(root) == before
    r = subprocess.run([SHELL_BIN, "--root", root, "install"], capture_output=True, text=True,
                       env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"})
    assert r.returncode == 1
    assert r.stderr.startswith("convocate install: docker:") and len(r.stderr.splitlines()) == 1
    assert convocate_install(root, "--bogus").returncode == 2
