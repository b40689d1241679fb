"""convocate-agent install (SPEC 11) under a temporary --root: what it lays
down, with which modes and content, and that a second run changes nothing."""
import os
import re
import stat
import subprocess

import pytest

from lib.common import AGENT_BIN, REPO

ETC = "etc/convocate-agent"


def install(root, *extra, docker_host=None):
    argv = [AGENT_BIN, "install", "--root", root, *extra]
    if docker_host:
        argv += ["--docker-host", docker_host]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def installed(root):
    r = install(root)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def path(root, rel):
    return os.path.join(root, rel)


def mode(root, rel):
    return stat.S_IMODE(os.lstat(path(root, rel)).st_mode)


def read(root, rel):
    with open(path(root, rel), "rb") as f:
        return f.read()


def snapshot(root):
    """Every entry under root: kind, mode, owner, content, mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            content = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    content = f.read()
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, content,
                                             st.st_mtime_ns)
    return out


def step_lines(stdout):
    return [line.strip() for line in stdout.splitlines() if re.match(r"^  [^ ].*: ", line)]


def meminfo_total_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal")


def test_install_lays_down_the_agent_files(tmp_root):
    r = installed(tmp_root)
    assert "nothing changed" not in r.stdout

    assert mode(tmp_root, ETC) == 0o750
    agent_id = read(tmp_root, f"{ETC}/agent-id").decode()
    assert re.fullmatch(r"[a-z0-9]{8}\n", agent_id)
    assert mode(tmp_root, f"{ETC}/agent-id") == 0o644

    assert mode(tmp_root, f"{ETC}/ssh_host_ed25519_key") == 0o600
    assert mode(tmp_root, f"{ETC}/ssh_host_ed25519_key.pub") == 0o644
    assert read(tmp_root, f"{ETC}/authorized_keys") == b""
    assert mode(tmp_root, f"{ETC}/authorized_keys") == 0o600
    # Settings belong to the agent's own code, not to install.
    assert not os.path.exists(path(tmp_root, f"{ETC}/settings.json"))

    unit = read(tmp_root, "etc/systemd/system/convocate-agent.service").decode()
    assert "ExecStart=/usr/local/bin/convocate-agent serve\n" in unit
    assert "Restart=on-failure\n" in unit

    prune = "etc/cron.daily/convocate-image-prune"
    assert mode(tmp_root, prune) == 0o755
    assert read(tmp_root, prune).startswith(b"#!/bin/sh\n")
    assert subprocess.run(["sh", "-n", path(tmp_root, prune)]).returncode == 0
    assert b"current-image" in read(tmp_root, prune)

    rotate = read(tmp_root, "etc/logrotate.d/convocate-agent-logs").decode()
    assert "/var/log/convocate-agent/" in rotate

    home = os.lstat(path(tmp_root, "home/claude"))
    assert (home.st_uid, home.st_gid) == (1337, 1337)
    skel = os.lstat(path(tmp_root, "home/claude/.skel/CLAUDE.md"))
    assert (skel.st_uid, skel.st_gid) == (1337, 1337)
    with open(os.path.join(REPO, "data", "skel", "CLAUDE.md"), "rb") as f:
        assert read(tmp_root, "home/claude/.skel/CLAUDE.md") == f.read()

    # Parents made on the way keep ordinary modes.
    assert mode(tmp_root, "etc") == 0o755


def test_host_key_is_an_openssh_ed25519_pair(tmp_root):
    installed(tmp_root)
    key = path(tmp_root, f"{ETC}/ssh_host_ed25519_key")
    assert read(tmp_root, f"{ETC}/ssh_host_ed25519_key").startswith(
        b"-----BEGIN OPENSSH PRIVATE KEY-----")
    fp_priv = subprocess.run(["ssh-keygen", "-l", "-f", key], capture_output=True, text=True)
    fp_pub = subprocess.run(["ssh-keygen", "-l", "-f", key + ".pub"], capture_output=True,
                            text=True)
    assert fp_priv.returncode == 0 and fp_pub.returncode == 0, fp_priv.stderr + fp_pub.stderr
    assert fp_priv.stdout.split()[1] == fp_pub.stdout.split()[1]
    assert fp_pub.stdout.rstrip().endswith("(ED25519)")
    assert read(tmp_root, f"{ETC}/ssh_host_ed25519_key.pub").startswith(b"ssh-ed25519 AAAA")
    # The public half is what ssh-keygen derives from the private one.
    derived = subprocess.run(["ssh-keygen", "-y", "-f", key], capture_output=True, text=True)
    assert derived.stdout.split()[:2] == \
        read(tmp_root, f"{ETC}/ssh_host_ed25519_key.pub").decode().split()[:2]


def test_slice_is_sized_from_this_host(tmp_root):
    installed(tmp_root)
    unit = read(tmp_root, "etc/systemd/system/convocate-sessions.slice").decode()
    ncpu = os.sysconf("SC_NPROCESSORS_ONLN")
    assert "[Slice]\n" in unit
    assert "CPUAccounting=yes\n" in unit
    assert "MemoryAccounting=yes\n" in unit
    assert f"CPUQuota={ncpu * 90}%\n" in unit
    assert f"MemoryMax={meminfo_total_bytes() * 9 // 10}\n" in unit


def test_second_run_changes_nothing(tmp_root):
    installed(tmp_root)
    before = snapshot(tmp_root)
    r = installed(tmp_root)
    assert snapshot(tmp_root) == before
    steps = step_lines(r.stdout)
    changing = [s for s in steps if s.endswith((": created", ": updated"))]
    assert changing == []
    assert sum(s.endswith(": unchanged") for s in steps) >= 10
    assert r.stdout.rstrip().endswith("nothing changed")


def test_identity_is_minted_once(tmp_root):
    installed(tmp_root)
    agent_id = read(tmp_root, f"{ETC}/agent-id")
    key = read(tmp_root, f"{ETC}/ssh_host_ed25519_key")
    # A lost public half is rebuilt from the same private key, never a new key.
    pub = read(tmp_root, f"{ETC}/ssh_host_ed25519_key.pub")
    os.unlink(path(tmp_root, f"{ETC}/ssh_host_ed25519_key.pub"))
    r = installed(tmp_root)
    assert "host key: updated" in r.stdout
    assert read(tmp_root, f"{ETC}/agent-id") == agent_id
    assert read(tmp_root, f"{ETC}/ssh_host_ed25519_key") == key
    assert read(tmp_root, f"{ETC}/ssh_host_ed25519_key.pub").split()[:2] == pub.split()[:2]


def test_drift_is_repaired_and_reported(tmp_root):
    installed(tmp_root)
    unit = "etc/systemd/system/convocate-agent.service"
    good = read(tmp_root, unit)
    with open(path(tmp_root, unit), "ab") as f:
        f.write(b"# local edit\n")
    os.chmod(path(tmp_root, "etc/cron.daily/convocate-image-prune"), 0o644)
    r = installed(tmp_root)
    assert "convocate-agent.service: updated" in r.stdout
    assert "image prune cron: updated" in r.stdout
    assert read(tmp_root, unit) == good
    assert mode(tmp_root, "etc/cron.daily/convocate-image-prune") == 0o755
    assert "nothing changed" not in r.stdout


def test_dry_run_touches_nothing(tmp_root):
    r = install(tmp_root, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert os.listdir(tmp_root) == []
    assert any("would create" in s for s in step_lines(r.stdout))

    installed(tmp_root)
    os.unlink(path(tmp_root, "etc/logrotate.d/convocate-agent-logs"))
    before = snapshot(tmp_root)
    r = install(tmp_root, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "logrotate: would create" in r.stdout
    assert snapshot(tmp_root) == before


def test_existing_session_dirs_are_adopted(tmp_root):
    installed(tmp_root)
    home = path(tmp_root, "home/claude")
    uuids = ["0b7c5e8e-3f55-4c1a-9d2e-6f0a1b2c3d4e", "9f1e2d3c-4b5a-4697-8a8b-7c6d5e4f3a2b"]
    for u in uuids:
        os.mkdir(os.path.join(home, u))
    os.mkdir(os.path.join(home, "not-a-session"))
    r = installed(tmp_root)
    assert "2 existing session dirs adopted" in r.stdout
    for u in uuids:
        assert os.path.isdir(os.path.join(home, u))


def test_unreachable_engine_fails_naming_the_step(tmp_root):
    r = install(tmp_root, docker_host="unix:///nonexistent.sock")
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert "docker" in err[0] and "/nonexistent.sock" in err[0]
    assert os.listdir(tmp_root) == []


@pytest.mark.parametrize("args", [["--bogus"], ["extra"], ["--root"]])
def test_usage_errors_exit_2(tmp_root, args):
    argv = [AGENT_BIN, "install"] + (args if args == ["--root"] else ["--root", tmp_root, *args])
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stdout + r.stderr
    assert os.listdir(tmp_root) == []
