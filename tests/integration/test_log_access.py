"""Who may read the log channel's TLS files (SPEC 4, 13). Ubuntu's rsyslogd
drops privileges to user syslog, so where a group syslog exists init-shell
and init-agent make rsyslog's directories and the files it reads readable by
that group, and the configuration directory above them searchable; Debian's
rsyslogd runs as root, so without the group everything stays root's. The CA
key is root's alone either way.

The local runner asks this machine for the group, so the Ubuntu case runs
the commands in a private mount namespace whose /etc/group has a syslog
line: the host's own /etc/group is never touched."""
import grp
import os
import stat
import subprocess

import pytest

from lib.common import HOST_BIN
from lib.pairing import AGENT_ETC, SHELL_ETC, claude_gid, p

CA_DIR = f"{SHELL_ETC}/rsyslog-ca"
TLS_DIR = f"{AGENT_ETC}/rsyslog-tls"
SHELL_READ = ("ca.crt", "server.crt", "server.key")  # what the shell's rsyslog opens
AGENT_READ = ("ca.crt", "client.crt", "client.key")  # what the agent's rsyslog opens

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="owners and a mount namespace need root")


def owner_mode(root, rel):
    st = os.lstat(p(root, rel))
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def free_gid():
    used = {g.gr_gid for g in grp.getgrall()}
    return next(g for g in range(4242, 60000) if g not in used)


@pytest.fixture
def syslog_group(tmp_path):
    """A copy of /etc/group with a syslog line, and its gid."""
    assert "syslog" not in {g.gr_name for g in grp.getgrall()}, \
        "this machine has a syslog group: the root-only case cannot be shown here"
    gid = free_gid()
    path = tmp_path / "group"
    with open("/etc/group") as f:
        text = f.read()
    path.write_text(text + ("" if text.endswith("\n") else "\n") + f"syslog:x:{gid}:\n")
    return str(path), gid


def run(group_file, *args):
    """convocate-host, seeing group_file as /etc/group when given."""
    argv = [HOST_BIN, *args]
    if group_file is not None:
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /etc/group && exec "$@"', group_file, *argv]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{args}: rc={r.returncode}\n{r.stdout}{r.stderr}"
    return r


def readable_by(gid, path):
    """Whether a process that is not root, whose only group is gid (as
    rsyslogd after $PrivDropToUser syslog), can open path for reading."""
    r = subprocess.run(["setpriv", "--reuid=65534", f"--regid={gid}", "--clear-groups",
                        "--inh-caps=-all", "--", "head", "-c", "1", path],
                       capture_output=True, text=True, timeout=30)
    return r.returncode == 0


def open_up(*roots):
    """The temporary roots stand for / of a host: searchable by everyone,
    as / is, so that only the modes under test decide."""
    for root in roots:
        os.chmod(root, 0o755)


def provision(group_file, shell, agent):
    return (run(group_file, "init-shell", "--root", shell),
            run(group_file, "init-agent", "--root", shell, "--agent-root", agent))


def assert_root_only(shell, agent):
    assert owner_mode(shell, SHELL_ETC) == (0, claude_gid(), 0o750)
    assert owner_mode(shell, CA_DIR) == (0, 0, 0o750)
    assert owner_mode(agent, AGENT_ETC) == (0, 0, 0o750)
    assert owner_mode(agent, TLS_DIR) == (0, 0, 0o750)
    for root, d, names in ((shell, CA_DIR, SHELL_READ), (agent, TLS_DIR, AGENT_READ)):
        for name in names:
            want = 0o600 if name.endswith(".key") else 0o644
            assert owner_mode(root, f"{d}/{name}") == (0, 0, want), name
    assert owner_mode(shell, f"{CA_DIR}/ca.key") == (0, 0, 0o600)


def assert_shared(shell, agent, gid):
    assert owner_mode(shell, SHELL_ETC) == (0, claude_gid(), 0o751)
    assert owner_mode(shell, CA_DIR) == (0, gid, 0o750)
    assert owner_mode(agent, AGENT_ETC) == (0, 0, 0o751)
    assert owner_mode(agent, TLS_DIR) == (0, gid, 0o750)
    for root, d, names in ((shell, CA_DIR, SHELL_READ), (agent, TLS_DIR, AGENT_READ)):
        for name in names:
            assert owner_mode(root, f"{d}/{name}") == (0, gid, 0o640), name
    # The CA key signs every agent's certificate: never the group's.
    assert owner_mode(shell, f"{CA_DIR}/ca.key") == (0, 0, 0o600)


def rsyslog_files(shell, agent):
    return [p(shell, f"{CA_DIR}/{n}") for n in SHELL_READ] + \
        [p(agent, f"{TLS_DIR}/{n}") for n in AGENT_READ]


def test_without_a_syslog_group_the_files_stay_roots(roots, syslog_group):
    shell, agent, _ = roots
    _, gid = syslog_group
    provision(None, shell, agent)
    assert_root_only(shell, agent)
    open_up(shell, agent)
    for path in rsyslog_files(shell, agent):
        assert not readable_by(gid, path), path


def test_with_a_syslog_group_rsyslog_can_read_them(roots, syslog_group):
    shell, agent, _ = roots
    group_file, gid = syslog_group
    provision(group_file, shell, agent)
    assert_shared(shell, agent, gid)
    for r in provision(group_file, shell, agent):
        assert r.stdout.splitlines()[-1] == "nothing changed", r.stdout
    # What a dropped rsyslogd can and cannot open, through every directory.
    open_up(shell, agent)
    for path in rsyslog_files(shell, agent):
        assert readable_by(gid, path), path
    assert not readable_by(gid, p(shell, f"{CA_DIR}/ca.key"))
    assert not readable_by(0, p(shell, f"{CA_DIR}/ca.key"))  # not even with root's group


def test_old_modes_are_corrected_on_the_next_run(roots, syslog_group):
    """A target provisioned before (root-only files) that has the group:
    the next run updates modes and owners, keeps the keys, and the one
    after says unchanged."""
    shell, agent, _ = roots
    group_file, gid = syslog_group
    provision(None, shell, agent)
    with open(p(shell, f"{CA_DIR}/ca.key")) as f:
        ca_key = f.read()
    with open(p(agent, f"{TLS_DIR}/client.key")) as f:
        client_key = f.read()

    r_shell, r_agent = provision(group_file, shell, agent)
    for step in ("/etc/convocate/", "rsyslog-ca/", "rsyslog CA certificate", "rsyslog server key",
                 "rsyslog server certificate"):
        assert f"  {step}: updated" in r_shell.stdout, r_shell.stdout
    assert "  rsyslog CA key: unchanged" in r_shell.stdout, r_shell.stdout
    for step in ("/etc/convocate-agent/", "rsyslog-tls/", "rsyslog-tls/ca.crt", "rsyslog client key",
                 "rsyslog client certificate"):
        assert f"  {step}: updated" in r_agent.stdout, r_agent.stdout
    assert_shared(shell, agent, gid)
    with open(p(shell, f"{CA_DIR}/ca.key")) as f:
        assert f.read() == ca_key
    with open(p(agent, f"{TLS_DIR}/client.key")) as f:
        assert f.read() == client_key
    for r in provision(group_file, shell, agent):
        assert r.stdout.splitlines()[-1] == "nothing changed", r.stdout

    # The group gone again (rsyslog back to root): root's alone again.
    provision(None, shell, agent)
    assert_root_only(shell, agent)
    for r in provision(None, shell, agent):
        assert r.stdout.splitlines()[-1] == "nothing changed", r.stdout


# ---- Ubuntu's AppArmor profile for rsyslogd ---------------------------------

PROFILE = "etc/apparmor.d/usr.sbin.rsyslogd"
LOCAL = "etc/apparmor.d/local/usr.sbin.rsyslogd"

# A profile shaped like Ubuntu's: it pulls in the site-local file.
PROFILE_TEXT = """abi <abi/3.0>,
include <tunables/global>
profile rsyslogd /usr/sbin/rsyslogd {
  include <abstractions/base>
  include if exists <local/usr.sbin.rsyslogd>
}
"""


def parse_profile(root):
    """The real apparmor_parser, without loading anything into the kernel,
    resolving <local/...> under root first; returns the preprocessed text."""
    r = subprocess.run(["apparmor_parser", "-Q", "-K", "-p", "-I", p(root, "etc/apparmor.d"),
                        "-I", "/etc/apparmor.d", p(root, PROFILE)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"apparmor_parser refused the profile:\n{r.stderr}"
    return r.stdout


def block_of(text):
    start = text.index("# BEGIN convocate")
    return text[start:text.index("# END convocate", start)]


def test_apparmor_local_block_is_added_kept_and_parses(roots):
    shell, agent, plain = roots
    for root in (shell, agent):
        os.makedirs(p(root, "etc/apparmor.d/local"))
        with open(p(root, PROFILE), "w") as f:
            f.write(PROFILE_TEXT)
    with open(p(shell, LOCAL), "w") as f:
        f.write("  /srv/site-logs/ r,\n")  # the operator's own rule

    r_shell, r_agent = provision(None, shell, agent)
    assert "  rsyslog AppArmor: updated" in r_shell.stdout, r_shell.stdout
    assert "  rsyslog AppArmor: created" in r_agent.stdout, r_agent.stdout
    with open(p(shell, LOCAL)) as f:
        text = f.read()
    assert text.startswith("  /srv/site-logs/ r,\n# BEGIN convocate"), text
    block = block_of(text)
    for path in ("/etc/convocate/rsyslog-ca/server.key", "/etc/convocate/rsyslog-ca/ca.crt",
                 "/etc/convocate-agent/rsyslog-tls/client.key", "/var/log/convocate-agent/"):
        assert f"  {path} r" in block, block
    assert "ca.key" not in block  # the CA key stays out of rsyslog's reach
    # The real parser takes the profile with our block included in it.
    for root in (shell, agent):
        assert "/etc/convocate/rsyslog-ca/server.key" in parse_profile(root)
    for r in provision(None, shell, agent):
        assert r.stdout.splitlines()[-1] == "nothing changed", r.stdout

    # A host without the profile (Debian) gets no AppArmor file at all.
    provision(None, plain, plain)
    assert not os.path.exists(p(plain, "etc/apparmor.d"))


def test_apparmor_block_cut_by_hand_is_refused_and_left_alone(roots):
    shell, agent, _ = roots
    os.makedirs(p(shell, "etc/apparmor.d/local"))
    with open(p(shell, PROFILE), "w") as f:
        f.write(PROFILE_TEXT)
    broken = "# BEGIN convocate\n  /etc/convocate/rsyslog-ca/ca.crt r,\n"
    with open(p(shell, LOCAL), "w") as f:
        f.write(broken)
    r = subprocess.run([HOST_BIN, "init-shell", "--root", shell], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "rsyslog AppArmor" in r.stderr and "# END convocate" in r.stderr, r.stderr
    with open(p(shell, LOCAL)) as f:
        assert f.read() == broken
