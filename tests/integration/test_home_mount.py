"""Session homes sit on a nosuid,nodev mount (SPEC 14, issue 11): root in a
session container can write a setuid-root program or a device node into
its home, which is a host directory; neither may take effect on the host.
`convocate-agent install` bind-mounts <root>/home/claude on itself with
nosuid,nodev now and writes the systemd mount unit that does it at boot."""
import os
import shutil
import stat
import subprocess

from lib.agent_helpers import NAME_PREFIX, create_ok, home, restart_ok
from lib.common import AGENT_BIN, docker
from lib.wait import wait_until

CLAUDE_UID = 1337
UNIT = "etc/systemd/system/home-claude.mount"
LINK = "etc/systemd/system/convocate-agent.service.requires/home-claude.mount"


def install(root, *extra):
    r = subprocess.run([AGENT_BIN, "install", "--root", root, "--no-docker-check", *extra],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def homes(root):
    return os.path.realpath(os.path.join(root, "home", "claude"))


def options_of(point):
    r = subprocess.run(["findmnt", "-n", "-o", "OPTIONS", "--mountpoint", point],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"nothing mounted on {point}: {r.stderr}"
    return r.stdout.strip().splitlines()[-1].split(",")


def mount_count(point):
    """Mounts sitting exactly on point: a second bind would make it 2."""
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if line.split(" ")[4] == point)


def test_install_mounts_homes_once_and_writes_the_unit(tmp_root):
    out = install(tmp_root)
    point = homes(tmp_root)
    assert "mount /home/claude nosuid,nodev: created" in out, out
    assert {"nosuid", "nodev"} <= set(options_of(point))
    assert mount_count(point) == 1
    with open(os.path.join(tmp_root, UNIT)) as f:
        unit = f.read()
    for line in ("What=/home/claude", "Where=/home/claude", "Options=bind,nosuid,nodev",
                 "Before=convocate-agent.service", "RequiredBy=convocate-agent.service"):
        assert line + "\n" in unit, unit
    assert os.readlink(os.path.join(tmp_root, LINK)) == "/etc/systemd/system/home-claude.mount"

    # Idempotent: the second run finds the mount and binds nothing again.
    out = install(tmp_root)
    assert "mount /home/claude nosuid,nodev: unchanged" in out, out
    assert out.rstrip().endswith("nothing changed"), out
    assert mount_count(point) == 1

    # Gone (an operator unmounted it): a dry run says so and mounts nothing;
    # the next install mounts it again.
    subprocess.run(["umount", point], check=True)
    out = install(tmp_root, "--dry-run")
    assert "mount /home/claude nosuid,nodev: would create" in out, out
    assert mount_count(point) == 0
    out = install(tmp_root)
    assert "mount /home/claude nosuid,nodev: created" in out, out
    assert mount_count(point) == 1


def run_as_claude(path):
    return subprocess.run(["setpriv", "--reuid", str(CLAUDE_UID), "--regid", str(CLAUDE_UID),
                           "--clear-groups", path, "-u"],
                          capture_output=True, text=True, timeout=30)


def container_root(uuid, script):
    r = docker("exec", "-u", "root", NAME_PREFIX + uuid, "sh", "-c", script, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_setuid_file_and_device_from_a_session_stay_inert_on_the_host(agent):
    point = homes(agent.root)
    assert {"nosuid", "nodev"} <= set(options_of(point))
    uuid = create_ok(agent)["uuid"]
    restart_ok(agent, uuid)
    wait_until(lambda: docker("inspect", "-f", "{{.State.Running}}", NAME_PREFIX + uuid,
                              check=False).stdout.strip() == "true", 60, "the session to run")
    # uid 1337 must reach the home from the host: open the test's own root.
    os.chmod(agent.root, 0o755)
    session_home = home(agent, uuid)
    shutil.copy("/usr/bin/id", os.path.join(session_home, "id-plain"))

    # Container root makes a setuid-root program in the home.
    container_root(uuid, "cp /home/claude/id-plain /home/claude/suid-id && "
                         "chown 0:0 /home/claude/suid-id && chmod 4755 /home/claude/suid-id")
    suid = os.path.join(session_home, "suid-id")
    st = os.stat(suid)
    assert st.st_uid == 0 and st.st_mode & stat.S_ISUID, oct(st.st_mode)

    # The same file off the mount (the control: this host honours setuid
    # for uid 1337, so the check below can fail) runs as root ...
    control = os.path.join(agent.root, "suid-id-control")
    shutil.copy2(suid, control)
    os.chmod(control, 0o4755)
    r = run_as_claude(control)
    assert r.stdout.strip() == "0", f"control did not gain euid 0: {r.stdout}{r.stderr}"
    # ... but in the session home it runs as claude.
    r = run_as_claude(suid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(CLAUDE_UID), f"setuid took effect in a home: {r.stdout}"

    # nodev: a device node in the home cannot be opened; off the mount it can.
    node, control_node = os.path.join(session_home, "null-dev"), os.path.join(agent.root, "null")
    for p in (node, control_node):
        os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with open(control_node, "rb"):
        pass
    try:
        with open(node, "rb"):
            opened = True
    except PermissionError:
        opened = False
    assert not opened, "a device node in a session home could be opened"
