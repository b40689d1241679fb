"""convocate-host against a target where systemd is PID 1 (SPEC 11): the
service step's systemd branch, which every other target (containers without
an init) skips with "restart '...' there by hand".

The target is a Debian container booting /sbin/init (systemd) with sshd,
docker.service, rsyslog and dbus as its units, run with what works here in
place of --privileged (ENGINEERING.md) plus what systemd wants in a container
(tmpfs /run and /run/lock, container=docker, SIGRTMIN+3 to stop). It has no
network of Docker's: one veth on a bridge this test makes, 10.76.0.0/24, the
operator (this machine) at .1 and the target at .2; every connection goes
there.

What is shown, over SSH as op with passwordless sudo:
  init-shell --host: convocate-status.service is enabled and active and 223
  answers, rsyslog restarted onto its TLS listener (514); a second run
  changes nothing and restarts nothing (same MainPIDs); a unit disabled by
  hand is enabled again without a restart, a stopped one started;
  update --host --image: convocate-agent.service is enabled and active, 222
  answers, the sessions slice is loaded; a second update restarts nothing;
  a unit changed behind our back is rewritten, systemd reloaded (no unit
  left needing a reload) and the agent restarted (new MainPID);
  init-agent --host (shell files in a directory here): the paired agent is
  enabled and started and lets the shell's key in, rsyslog restarted; a
  second run restarts nothing.

The target's own name is deliberately not in its /etc/hosts (Docker writes it
only with a network of its own), so sudo warns "unable to resolve host" on
every command, as on any host whose name does not resolve: what the runner
parses must not be thrown by it."""
import json
import os
import shutil
import subprocess

import pytest

from lib.common import HOST_BIN, docker, runs_build_on_target
from lib.fleet_hosts import ENGINE_RUN_ARGS, Host, sh, wait_tcp
from lib.remote import cached_image
from lib.wait import wait_until

pytestmark = runs_build_on_target  # lib/common.py says why

LABEL = "convocate.test=systemd"
NET = "10.76.0"

# systemd as init, and the units a shell or agent host runs; the libraries
# our binaries link (on a real host `convocate-host install` brings them).
DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      systemd systemd-sysv dbus docker.io rsyslog rsyslog-openssl \\
      libssh-4 libjansson4 libcurl4 iproute2 procps \\
 && rm -rf /var/lib/apt/lists/* \\
 && systemctl mask getty@tty1.service console-getty.service \\
      systemd-remount-fs.service \\
 && systemctl enable ssh.service docker.service rsyslog.service
"""

# systemd in a container: its own /run, the container marker, the signal it
# halts on.
SYSTEMD_RUN_ARGS = ["--tmpfs", "/run", "--tmpfs", "/run/lock", "-e", "container=docker",
                    "--stop-signal", "SIGRTMIN+3"]


class SystemdHost(Host):
    """A Host (sshd, dockerd, reachable at ip on the bridge) whose PID 1 is
    systemd."""

    def start(self, image, keys, label):
        r = docker("run", "-d", "--network", "none", "--label", label, "--hostname", self.name,
                   *ENGINE_RUN_ARGS, *SYSTEMD_RUN_ARGS, "-v", f"{keys}:/keys:ro",
                   "--entrypoint", "/sbin/init", image)
        self.cid = r.stdout.strip()
        try:
            # Boot finished (degraded is fine: a unit that cannot run in a
            # container is not ours to fix); then the operator's key for op.
            def state():
                r = docker("exec", self.cid, "systemctl", "is-system-running", check=False)
                return r.stdout.strip()
            wait_until(lambda: state() in ("running", "degraded"), 120,
                       "systemd to finish booting", interval=1,
                       detail=lambda: f"({state()})\n" +
                       docker("exec", self.cid, "systemctl", "--failed", check=False).stdout +
                       docker("logs", self.cid, check=False).stdout[-3000:])
            # /etc/hosts lacks the host's own name: sudo's warning stays.
            assert self.name not in self.sh("cat /etc/hosts")
            self.sh("install -d -m 0700 -o op -g op /home/op/.ssh && "
                    "install -m 0600 -o op -g op /keys/client.pub /home/op/.ssh/authorized_keys")
        except BaseException:
            docker("rm", "-f", "-v", self.cid, check=False)
            raise
        return self.cid

    def unit(self, unit, prop):
        return self.sh(f"systemctl show -p {prop} --value {unit}").strip()

    def unit_states(self, unit):
        """(is-enabled, is-active) as systemctl prints them."""
        enabled = self.run("systemctl", "is-enabled", unit).stdout.strip()
        active = self.run("systemctl", "is-active", unit).stdout.strip()
        return enabled, active


@pytest.fixture(scope="module")
def systemd_target_image(target_image):
    return cached_image("convocate-systemd-target", DOCKERFILE, target_image)


@pytest.fixture
def systemd_target(lan, systemd_target_image):
    """The one systemd host (.2) on a lan."""
    t = lan(NET, "cvs", LABEL, "convocate-systemd-")
    t.host = t.add(SystemdHost, systemd_target_image, "target", 2)
    return t


def cmd(target, command, *args):
    """convocate-host COMMAND --host the target, as the operator op; its
    stdout, once it succeeded."""
    r = target.host_run(target.host, command, *args, accept_new=True)
    assert r.returncode == 0, \
        f"{command} failed (exit {r.returncode}):\n{r.stdout}{r.stderr}"
    return r.stdout


def main_pid(host, unit):
    pid = host.unit(unit, "MainPID")
    assert pid not in ("", "0"), f"{unit} has no main process:\n" + \
        (host.sh(f"systemctl status {unit}; journalctl -u {unit} | tail -20", check=False) or "")
    return pid


def test_init_shell_and_update_drive_systemd_units(systemd_target, test_image):
    target = systemd_target
    host = target.host
    assert host.sh("cat /proc/1/comm").strip() == "systemd"
    assert host.unit_states("docker")[1] == "active"

    # init-shell: the status service enabled and started by systemd, rsyslog
    # restarted onto the TLS listener the drop-in configures.
    rsyslog_pid = main_pid(host, "rsyslog")
    out = cmd(target, "init-shell")
    assert "convocate-status: enabled and started" in out, out
    assert "by hand" not in out, out
    assert host.unit_states("convocate-status") == ("enabled", "active"), \
        host.sh("systemctl status convocate-status", check=False)
    wait_tcp(host.ip, 223, 30, "convocate-status on the target")
    status_pid = main_pid(host, "convocate-status")
    assert host.sh(f"cat /proc/{status_pid}/cmdline").split("\0")[:2] == \
        ["/usr/local/bin/convocate", "status-serve"]
    assert host.unit("convocate-status", "NeedDaemonReload") == "no"
    assert "rsyslog: restarted" in out, out
    assert host.unit_states("rsyslog") == ("enabled", "active")
    rsyslog_pid, old_rsyslog_pid = main_pid(host, "rsyslog"), rsyslog_pid
    assert rsyslog_pid != old_rsyslog_pid
    wait_tcp(host.ip, 514, 30, "rsyslog's TLS listener on the target")

    out = cmd(target, "init-shell")
    assert out.rstrip().endswith("nothing changed"), out
    assert main_pid(host, "convocate-status") == status_pid
    assert main_pid(host, "rsyslog") == rsyslog_pid
    assert host.unit("convocate-status", "NRestarts") == "0"

    # Disabled behind our back while running: enabled again, not restarted.
    host.sh("systemctl disable convocate-status")
    out = cmd(target, "init-shell")
    assert "convocate-status: enabled\n" in out, out
    assert host.unit_states("convocate-status") == ("enabled", "active")
    assert main_pid(host, "convocate-status") == status_pid
    # Stopped while enabled: started again.
    host.sh("systemctl stop convocate-status")
    out = cmd(target, "init-shell", "--dry-run")
    assert "convocate-status: would be started\n" in out, out
    assert host.unit_states("convocate-status") == ("enabled", "inactive")
    out = cmd(target, "init-shell")
    assert "convocate-status: started\n" in out, out
    assert host.unit_states("convocate-status") == ("enabled", "active")
    wait_tcp(host.ip, 223, 30, "the started convocate-status")

    # update: the agent's unit and slice, the agent enabled and started.
    out = cmd(target, "update", "--image", test_image)
    assert "convocate-agent: enabled and started" in out, out
    assert host.unit_states("convocate-agent") == ("enabled", "active"), \
        host.sh("systemctl status convocate-agent", check=False)
    wait_tcp(host.ip, 222, 30, "convocate-agent on the target")
    agent_pid = main_pid(host, "convocate-agent")
    for unit in ("convocate-agent.service", "convocate-sessions.slice"):
        assert host.unit(unit, "LoadState") == "loaded", unit
        assert host.unit(unit, "NeedDaemonReload") == "no", unit
    assert host.unit("convocate-sessions.slice", "FragmentPath") == \
        "/etc/systemd/system/convocate-sessions.slice"
    assert host.unit("convocate-sessions.slice", "CPUQuotaPerSecUSec") != "infinity"

    out = cmd(target, "update", "--image", test_image)
    assert "convocate-agent: restart not needed" in out, out
    assert main_pid(host, "convocate-agent") == agent_pid

    # A unit changed behind our back: rewritten, reloaded, restarted.
    host.sh("sed -i 's/^RestartSec=.*/RestartSec=30s/' "
            "/etc/systemd/system/convocate-agent.service")
    host.sh("systemctl daemon-reload")  # so that systemd knows the wrong one
    assert host.unit("convocate-agent", "RestartUSec") == "30s"
    out = cmd(target, "update", "--image", test_image)
    assert "convocate-agent.service: updated" in out, out
    assert "convocate-agent: restarted" in out, out
    assert host.unit("convocate-agent", "RestartUSec") == "2s"
    assert host.unit("convocate-agent", "NeedDaemonReload") == "no"
    assert host.unit_states("convocate-agent") == ("enabled", "active")
    new_pid = main_pid(host, "convocate-agent")
    assert new_pid != agent_pid
    wait_tcp(host.ip, 222, 30, "the restarted convocate-agent")


def agent_rpc(target, shell_root, op):
    """One request to the target's agent through OpenSSH, with the key and
    the pin init-agent gave the shell."""
    host = target.host
    agent_id = host.sh("cat /etc/convocate-agent/agent-id").strip()
    key = os.path.join(target.dir, "shell_to_agent")
    shutil.copyfile(os.path.join(shell_root, "etc/convocate/agent-keys", agent_id,
                                 "shell_to_agent_ed25519_key"), key)
    os.chmod(key, 0o600)  # OpenSSH wants 0600; SPEC 4 gives the shell's copy 0640
    known = os.path.join(target.dir, "agent_known_hosts")
    kind, blob = host.sh("cat /etc/convocate-agent/ssh_host_ed25519_key.pub").split()[:2]
    with open(known, "w") as f:
        f.write(f"[{host.ip}]:222 {kind} {blob}\n")
    argv = ["ssh", "-p", "222", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", f"claude@{host.ip}",
            "-s", "convocate-agent-rpc"]
    line = json.dumps({"op": op, "params": None}).encode() + b"\n"
    r = subprocess.run(argv, input=line, capture_output=True, timeout=60)
    assert r.returncode == 0, f"rpc {op}: {r.stderr!r}\n" + \
        (host.sh("journalctl -u convocate-agent | tail -20", check=False) or "")
    return json.loads(r.stdout)


def test_init_agent_starts_the_paired_agent_and_restarts_rsyslog(systemd_target, test_image):
    target = systemd_target
    host = target.host
    # The shell's files in a directory of this machine; the agent is the
    # systemd target, told to dial the shell at the operator's address.
    shell_root = os.path.join(target.dir, "shell")
    os.mkdir(shell_root)
    sh(HOST_BIN, "init-shell", "--root", shell_root)
    args = ("--root", shell_root, "--agent-addr", f"{host.ip}:222",
            "--shell-host", f"{target.operator_ip}:223", "--image", test_image)

    rsyslog_pid = main_pid(host, "rsyslog")
    out = cmd(target, "init-agent", *args)
    assert "convocate-agent: enabled and started" in out, out
    assert "rsyslog: restarted" in out, out
    assert "by hand" not in out, out
    assert host.unit_states("convocate-agent") == ("enabled", "active"), \
        host.sh("systemctl status convocate-agent", check=False)
    assert host.unit("convocate-agent", "NeedDaemonReload") == "no"
    wait_tcp(host.ip, 222, 30, "convocate-agent on the target")
    agent_pid = main_pid(host, "convocate-agent")
    new_rsyslog_pid = main_pid(host, "rsyslog")
    assert new_rsyslog_pid != rsyslog_pid
    # The agent systemd started is the paired one: the shell's key is let in.
    resp = agent_rpc(target, shell_root, "ping")
    assert resp["ok"] is True, resp

    out = cmd(target, "init-agent", *args)
    assert out.rstrip().endswith("nothing changed"), out
    assert main_pid(host, "convocate-agent") == agent_pid
    assert main_pid(host, "rsyslog") == new_rsyslog_pid
