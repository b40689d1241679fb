"""convocate-host against a real OpenSSH server (SPEC 11): a Debian container
running sshd on 127.0.0.1:<free port> (--network host, so test traffic never
leaves loopback), with a user that has passwordless sudo and one that has not.

What is shown: init-shell --host deploys convocate, convocate-host and
convocate-agent byte for byte, runs `convocate install` there (on a target
given the libraries they link and this machine's docker socket and CLI, so the
install really runs and finds an engine), lays the shell files down and opens
ufw 223 and 514; a second run changes nothing; --dry-run touches nothing; a
failing `convocate install` stops the run naming that step; host keys are checked
against known_hosts (unknown refused unless --accept-new-host-key, changed
refused always); a user without passwordless sudo gets one line naming sudo;
install --dry-run changes nothing, and a real install converges."""
import hashlib
import os
import subprocess

import pytest

from lib.common import BUILD, HOST_BIN, make_client_key, runs_build_on_target
from lib.remote import cached_image, engine_target, ok

# A shell host also has ufw (inactive in a container: rules are written to
# user.rules, nothing is loaded into a kernel).
UFW_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ufw \\
 && rm -rf /var/lib/apt/lists/*
"""


@pytest.fixture(scope="session")
def shell_target_image(libs_target_image):
    return cached_image("convocate-shell-target", UFW_DOCKERFILE, libs_target_image)


@pytest.fixture
def shell_target(shell_target_image):
    t = engine_target(shell_target_image)
    yield t
    t.cleanup()


SHELL_FILES = ["/etc/convocate", "/etc/convocate/status_host_ed25519_key",
               "/etc/convocate/status_host_ed25519_key.pub", "/etc/convocate/domain",
               "/etc/convocate/status_authorized_keys", "/etc/convocate/agent-keys",
               "/var/lib/convocate/dnsmasq-hosts",
               "/etc/systemd/system/convocate-status.service"]


def state(t):
    """Everything init-shell may write, with modes, owners and checksums."""
    return t.sh("find /etc/convocate /var/lib/convocate /etc/systemd/system "
                "-printf '%p %m %u %g %s\\n' 2>/dev/null | sort; "
                "find /etc/convocate /var/lib/convocate /etc/systemd/system -type f "
                "-exec sha256sum {} + 2>/dev/null | sort", check=False)


# ---- (a) init-shell over SSH ------------------------------------------------

PROGRAMS = ("convocate", "convocate-host", "convocate-agent")


def local_sum(name):
    with open(os.path.join(BUILD, "src", name), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def programs_state(t):
    return t.sh("ls -l /usr/local/bin; sha256sum /usr/local/bin/* 2>/dev/null; "
                "getent passwd claude; cat /etc/ufw/user.rules", check=False)


UFW_RULE = "### tuple ### allow tcp {} 0.0.0.0/0 any 0.0.0.0/0 in"


@runs_build_on_target
def test_init_shell_remote_lays_down_files_and_second_run_changes_nothing(shell_target):
    target = shell_target
    target.pin()
    before, programs_before = state(target), programs_state(target)
    dry = ok(target.host("init-shell", "--dry-run"))
    for name in PROGRAMS:
        assert f"/usr/local/bin/{name}: would create" in dry.stdout, dry.stdout
    assert "convocate install: would run /usr/local/bin/convocate install once the binary " \
        "is there" in dry.stdout
    assert "would create" in dry.stdout and "dry run: nothing was touched" in dry.stdout
    assert state(target) == before and programs_state(target) == programs_before
    assert not target.exists("/etc/convocate")
    assert not target.exists("/usr/local/bin/convocate")

    first = ok(target.host("init-shell"))
    out = first.stdout
    assert "host 127.0.0.1" in out
    # the three programs, byte for byte, 0755 root:root
    for name in PROGRAMS:
        path = f"/usr/local/bin/{name}"
        assert f"{path}: created" in out, out
        assert target.sh(f"sha256sum {path}").split()[0] == local_sum(name)
        assert target.sh(f"stat -c '%a %u %g' {path}").split() == ["755", "0", "0"]
    # `convocate install` ran there, its lines indented under the step: it
    # reached this machine's engine through the socket and made user claude
    assert "    convocate install (root /)" in out, out
    assert "    docker: reachable at unix:///var/run/docker.sock" in out
    assert "convocate install: updated" in out
    assert target.sh("getent passwd claude").split(":")[6].strip() == "/usr/local/bin/convocate"
    # ufw is installed there: 223 and 514 open (rules written; a container
    # has no firewall of its own to load them into)
    assert "ufw allow 223/tcp: created" in out and "ufw allow 514/tcp: created" in out
    rules = target.sh("cat /etc/ufw/user.rules")
    assert UFW_RULE.format(223) in rules and UFW_RULE.format(514) in rules
    # No systemd in the container: the files are written, the daemon is the
    # operator's to start, and the command still succeeds.
    assert "convocate-status: systemd is not running on the target; restart " \
        "'convocate status-serve' there by hand" in out
    assert "status_host_ed25519_key: created" in out
    for path in SHELL_FILES:
        assert target.exists(path), f"{path} missing:\n{out}"
    # modes and owners as SPEC 4 gives them, set through sudo on the target
    assert target.sh("stat -c '%a %u %g' /etc/convocate").split() == ["750", "0", "1337"]
    assert target.sh("stat -c '%a %u' /etc/convocate/status_host_ed25519_key").split() == \
        ["600", "0"]
    assert target.sh("cat /etc/convocate/domain") == "convocate.internal\n"
    assert "ExecStart=/usr/local/bin/convocate status-serve" in \
        target.sh("cat /etc/systemd/system/convocate-status.service")
    # the private key is one OpenSSH reads, and matches its .pub
    derived = target.sh("ssh-keygen -y -f /etc/convocate/status_host_ed25519_key").split()[1]
    assert derived == target.sh("cat /etc/convocate/status_host_ed25519_key.pub").split()[1]
    # no temporary file is left next to what was written
    assert target.sh("find / -xdev -name '*.tmp.??????' 2>/dev/null") == ""

    after_first, programs_after = state(target), programs_state(target)
    second = ok(target.host("init-shell"))
    assert second.stdout.rstrip().endswith("nothing changed"), second.stdout
    assert "convocate install: unchanged" in second.stdout
    assert "/usr/local/bin/convocate-host: unchanged" in second.stdout
    assert "ufw allow 514/tcp: unchanged" in second.stdout
    assert "by hand" not in second.stdout  # nothing changed, nothing to restart
    assert "created" not in second.stdout and "updated" not in second.stdout
    assert state(target) == after_first and programs_state(target) == programs_after
    # a dry run now runs the deployed install's own dry run
    again = ok(target.host("init-shell", "--dry-run"))
    assert "    convocate install --dry-run (root /)" in again.stdout, again.stdout
    assert again.stdout.rstrip().endswith("nothing changed")
    assert state(target) == after_first and programs_state(target) == programs_after

    # a program changed on the target is found by its digest and replaced
    target.sh("printf x >> /usr/local/bin/convocate-host")
    third = ok(target.host("init-shell"))
    assert "/usr/local/bin/convocate-host: updated" in third.stdout
    assert target.sh("sha256sum /usr/local/bin/convocate-host").split()[0] == \
        local_sum("convocate-host")


@runs_build_on_target
def test_init_shell_remote_failing_install_names_the_step(target):
    """The plain target lacks the libraries convocate links: the programs
    are deployed, `convocate install` cannot run, and the run stops there
    with exit 1, naming the step, before any shell file is written. Without
    ufw there, the dry run says so in one line."""
    target.pin()
    dry = ok(target.host("init-shell", "--dry-run"))
    assert "ufw: not installed on host 127.0.0.1" in dry.stdout, dry.stdout
    r = target.host("init-shell")
    assert r.returncode == 1, r.stdout + r.stderr
    for name in PROGRAMS:
        assert f"/usr/local/bin/{name}: created" in r.stdout
    assert "convocate-host init-shell: convocate install: /usr/local/bin/convocate install " \
        "on host 127.0.0.1" in r.stderr, r.stderr
    assert "libssh" in r.stdout  # the loader's own complaint, echoed under the step
    assert not target.exists("/etc/convocate")


def test_verbose_logs_the_quoted_commands(target):
    target.pin()
    r = ok(target.host("init-shell", "--dry-run", "-v"))
    assert "sudo -n -- env" in r.stderr


# ---- (b) host keys -----------------------------------------------------------

@runs_build_on_target
def test_unknown_host_key_is_refused_then_accepted_with_the_flag(shell_target):
    target = shell_target
    r = target.host("init-shell")
    assert r.returncode == 1
    assert "unknown" in r.stderr and target.fingerprint() in r.stderr
    assert "--accept-new-host-key" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not target.exists("/etc/convocate")
    assert not os.path.exists(target.known_hosts)

    r = ok(target.host("init-shell", "--accept-new-host-key"))
    assert target.exists("/etc/convocate/status_host_ed25519_key")
    with open(target.known_hosts) as f:
        assert target.host_key[1] in f.read()
    # recorded: the next run needs no flag
    ok(target.host("init-shell"))


def test_changed_host_key_is_refused_even_with_accept_new(target):
    other = make_client_key(target.dir, "other_host_key")
    with open(other + ".pub") as f:
        target.pin(f.read().split()[1])
    with open(target.known_hosts) as f:
        pinned = f.read()
    for extra in ([], ["--accept-new-host-key"]):
        r = target.host("init-shell", *extra)
        assert r.returncode == 1, r.stdout
        assert "CHANGED" in r.stderr and target.fingerprint() in r.stderr
        assert "ssh-keygen -R" in r.stderr
        assert not target.exists("/etc/convocate")
        with open(target.known_hosts) as f:
            assert f.read() == pinned  # never rewritten


# ---- (c) sudo ----------------------------------------------------------------

def test_user_without_passwordless_sudo_fails_naming_sudo(target):
    target.pin()
    r = target.host("init-shell", user="nosudo")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "sudo" in lines[0] and "nosudo" in lines[0], r.stderr
    assert not target.exists("/etc/convocate")


def test_wrong_key_is_refused_with_a_clear_line(target):
    target.pin()
    stranger = make_client_key(target.dir, "stranger")
    argv = [HOST_BIN, "init-shell", "--host", "127.0.0.1", "--port", str(target.port),
            "--user", "op", "--identity", stranger, "--known-hosts", target.known_hosts]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "HOME": target.dir, "SSH_AUTH_SOCK": ""})
    assert r.returncode == 1 and "did not accept your SSH key" in r.stderr, r.stderr


def test_bad_host_and_option_misuse_are_usage_errors(tmp_path):
    for argv in (["init-shell", "--host", "a;b"], ["init-shell", "--user", "op"],
                 ["install", "--role", "web"], ["init-shell", "--no-reboot"]):
        r = subprocess.run([HOST_BIN, *argv], capture_output=True, text=True, timeout=30)
        assert r.returncode in (1, 2) and r.stderr.strip(), (argv, r.stderr)
        assert "a;b" not in r.stdout


# ---- (d) install -------------------------------------------------------------

def packages_state(t):
    return t.sh("dpkg-query -W -f='${Package} ${Version} ${Status}\\n' | sort; getent passwd; "
                "getent group; cat /etc/timezone; readlink /etc/localtime; "
                "ls -la /etc/ufw /var/lib/apt/lists 2>&1", check=False)


def test_install_dry_run_prints_the_plan_and_changes_nothing(target):
    target.pin()
    before = packages_state(target)
    r = ok(target.host("install", "--no-reboot", "--dry-run"))
    out = r.stdout
    assert "apt-get update: would run" in out
    # (jq is not named: the target is built FROM the session test image, which has it)
    assert "docker.io" in out and "dnsmasq" in out and "rsyslog-openssl" in out
    # the libraries our deployed binaries link, which this base lacks
    assert "libssh-4" in out and "libjansson4" in out
    assert "group claude (1337): would create" in out
    assert "user claude (1337): would create" in out
    assert "ufw allow 22/tcp: would create" in out
    assert "ufw allow 222/tcp: would create" in out
    assert "ufw allow 514/tcp: would create" in out
    assert "dry run: nothing was touched" in out
    assert packages_state(target) == before


def test_install_role_agent_opens_only_its_ports(target):
    target.pin()
    r = ok(target.host("install", "--no-reboot", "--dry-run", "--role", "agent"))
    assert "ufw allow 222/tcp" in r.stdout and "ufw allow 223/tcp" not in r.stdout


@pytest.mark.skipif(os.environ.get("CONVOCATE_SKIP_SLOW") == "1", reason="slow: real apt")
def test_install_converges_and_second_run_changes_nothing(target):
    target.pin()
    # another timezone first, so the UTC step has something to do
    target.sh("echo America/New_York > /etc/timezone && "
              "ln -sfn /usr/share/zoneinfo/America/New_York /etc/localtime")
    first = ok(target.host("install", "--no-reboot", timeout=1500))
    assert "packages:" in first.stdout
    assert "/etc/timezone: updated" in first.stdout
    assert "/etc/localtime -> /usr/share/zoneinfo/Etc/UTC: updated" in first.stdout
    for pkg in ("docker.io", "dnsmasq", "jq", "curl", "git", "ufw", "rsyslog-openssl",
                "libssh-4", "libjansson4"):
        status = target.sh(f"dpkg-query -W -f='${{Status}}' {pkg}")
        assert status.endswith("ok installed"), (pkg, status)
    assert target.sh("id -u claude; id -g claude").split() == ["1337", "1337"]
    assert target.sh("cat /etc/timezone") == "Etc/UTC\n"
    assert target.sh("readlink /etc/localtime") == "/usr/share/zoneinfo/Etc/UTC\n"
    rules = target.sh("cat /etc/ufw/user.rules")
    for port in ("22", "222", "223", "514"):
        assert f"### tuple ### allow tcp {port} 0.0.0.0/0 any 0.0.0.0/0 in" in rules, rules

    second = ok(target.host("install", "--no-reboot", timeout=900))
    print(first.stdout, second.stdout, sep="\n")
    assert second.stdout.rstrip().endswith("nothing changed"), second.stdout
    assert "created" not in second.stdout and "updated" not in second.stdout


# ---- init-agent --host: the agent side over SSH ---------------------------

def test_init_agent_host_deploys_the_agent_binary_first(target, tmp_path, test_image):
    """init-agent --host puts this build's convocate-agent on the target
    before running its install there (SPEC 11). This target lacks libraries
    the binary links, so that install fails: the run stops at the agent
    install step, naming the binary, and the shell side is left untouched.
    test_update.py pairs a target that has them."""
    target.pin()
    shell = tmp_path / "shell"
    shell.mkdir()
    r = target.host("init-agent", "--root", str(shell), "--image", test_image)
    assert r.returncode == 1
    assert "/usr/local/bin/convocate-agent: created" in r.stdout, r.stdout
    with open(os.path.join(BUILD, "src", "convocate-agent"), "rb") as f:
        local_sum = hashlib.sha256(f.read()).hexdigest()
    assert target.sh("sha256sum /usr/local/bin/convocate-agent").split()[0] == local_sum
    assert "agent install" in r.stderr and "/usr/local/bin/convocate-agent" in r.stderr, r.stderr
    assert not (shell / "etc" / "convocate" / "agent-keys").exists()
    r = subprocess.run([HOST_BIN, "init-agent", "--root", str(shell), "--agent-root",
                        str(tmp_path), "--host", "127.0.0.1"], capture_output=True, text=True)
    assert r.returncode == 2 and "exactly one of" in r.stderr
