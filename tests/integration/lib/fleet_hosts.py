"""Whole hosts to provision over SSH: Debian containers running OpenSSH and a
Docker engine of their own (dockerd inside, /var/lib/docker on a volume),
run with the capabilities that work here instead of --privileged (see
ENGINEERING.md), each with a veth on a bridge the test makes. The operator
(this machine) is <net>.1 on that bridge; every connection a test or the
product opens goes to the bridge's addresses.

Lan is the bridge, the operator's key and the hosts on it; the fixture lan
(conftest.py) makes one and removes it with its hosts. test_fleet.py puts a
shell and an agent host on one, test_systemd_target.py one host whose PID 1
is systemd."""
import os
import shutil
import socket
import subprocess

from lib.common import HOST_BIN, docker
from lib.remote import operator_keys
from lib.wait import wait_until

# What works here in place of --privileged (ENGINEERING.md).
ENGINE_RUN_ARGS = ["--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "MKNOD",
                   "--security-opt", "seccomp=unconfined", "--security-opt",
                   "apparmor=unconfined", "--cgroupns=host",
                   "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "-v", "/var/lib/docker"]

# The operator's key for user op; dockerd on a bridge address of its own
# (10.79.0.1/24, so it never overlaps the container's own networks); sshd.
START = """\
set -e
install -d -m 0700 -o op -g op /home/op/.ssh
install -m 0600 -o op -g op /keys/client.pub /home/op/.ssh/authorized_keys
dockerd --bip 10.79.0.1/24 >/var/log/dockerd.log 2>&1 &
exec /usr/sbin/sshd -D -e -o PasswordAuthentication=no
"""


def sh(*argv, check=True, timeout=120):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"{argv}: rc={r.returncode}\n{r.stdout}{r.stderr}"
    return r


def wait_tcp(addr, port, timeout, what):
    """Until addr:port accepts a connection; what names the listener."""
    def accepts():
        try:
            with socket.create_connection((addr, port), timeout=1):
                return True
        except OSError:
            return False
    wait_until(accepts, timeout, f"{what} to listen on {addr}:{port}", interval=0.5)


class Host:
    """One container: sshd on :22 and dockerd, reachable at ip on the bridge."""

    def __init__(self, image, name, ip, tag, keys, label):
        self.name, self.ip, self.tag = name, ip, tag
        self.veth = f"{tag}{name[0]}"
        self.cid = self.start(image, keys, label)

    def start(self, image, keys, label):
        """The container, started; its id. sshd and dockerd come up in it."""
        r = docker("run", "-d", "--label", label, "--hostname", self.name, *ENGINE_RUN_ARGS,
                   "-v", f"{keys}:/keys:ro", "--entrypoint", "/bin/sh", image, "-c", START)
        return r.stdout.strip()

    def wire(self, bridge):
        """Its veth on the bridge, the address inside; then sshd and dockerd up."""
        ip, tag = self.ip, self.tag
        pid = docker("inspect", "-f", "{{.State.Pid}}", self.cid).stdout.strip()
        inside = f"{tag}x"
        sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", inside)
        sh("ip", "link", "set", inside, "netns", pid)
        sh("nsenter", "-t", pid, "-n", "ip", "link", "set", inside, "name", "lan0")
        sh("nsenter", "-t", pid, "-n", "ip", "addr", "add", f"{ip}/24", "dev", "lan0")
        sh("nsenter", "-t", pid, "-n", "ip", "link", "set", "lan0", "up")
        sh("ip", "link", "set", self.veth, "master", bridge, "up")
        wait_tcp(ip, 22, 60, f"sshd on {self.name}")
        wait_until(lambda: self.sh("docker info >/dev/null 2>&1", check=False) is not None, 60,
                   f"dockerd on {self.name}", interval=1,
                   detail=lambda: self.sh("tail -20 /var/log/dockerd.log", check=False) or "")
        self.host_key = self.sh("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]

    def sh(self, script, check=True, timeout=300):
        """Runs script in the host as root; None when it fails and check is off."""
        r = docker("exec", self.cid, "sh", "-c", script, check=False)
        if check:
            assert r.returncode == 0, f"{self.name}: {script}: {r.stdout}{r.stderr}"
        return r.stdout if r.returncode == 0 else None

    def run(self, *argv, timeout=600):
        # HOME as root's login would have it (the image's ENV says otherwise).
        return subprocess.run([shutil.which("docker") or "docker", "exec", "-e", "HOME=/root",
                               self.cid, *argv],
                              capture_output=True, text=True, timeout=timeout)

    def cleanup(self):
        docker("rm", "-f", "-v", self.cid, check=False)
        sh("ip", "link", "del", self.veth, check=False)


class Lan:
    """A bridge on net (a /24 prefix such as "10.78.0") with the operator at
    .1, the operator's key pair in a scratch HOME, and the hosts added to it.
    tag (a short prefix, made unique per test process) names the bridge and
    the veths; label marks the host containers."""

    def __init__(self, net, tag, label, home_prefix):
        self.net = net
        self.operator_ip = f"{net}.1"
        self.tag = f"{tag}{os.getpid() % 10000}"
        self.label = label
        self.dir, self.key, self.keys = operator_keys(home_prefix)
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        self.bridge = f"{self.tag}br"
        self.hosts = []
        # Docker loads br_netfilter and drops forwarded traffic by default, so
        # frames between two ports of this bridge need their own accept rule.
        self.forward_rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]
        try:
            sh("ip", "link", "add", self.bridge, "type", "bridge")
            sh("ip", "addr", "add", f"{self.operator_ip}/24", "dev", self.bridge)
            sh("ip", "link", "set", self.bridge, "up")
            sh("iptables", "-I", *self.forward_rule)
        except BaseException:
            self.cleanup()
            raise

    def add(self, host_class, image, name, last_octet):
        """A host_class (Host or a subclass) called name at <net>.<last_octet>,
        started and wired to the bridge."""
        h = host_class(image, name, f"{self.net}.{last_octet}", self.tag, self.keys, self.label)
        self.hosts.append(h)  # before it is wired, so cleanup finds it
        h.wire(self.bridge)
        return h

    def _host_argv(self, host, cmd, args, accept_new):
        """convocate-host CMD --host <host> as the operator op, and its
        environment: HOME is the scratch directory, so nothing of this
        machine's ~/.ssh is read or written."""
        argv = [HOST_BIN, cmd, "--host", host.ip, "--user", "op", "--identity", self.key,
                "--known-hosts", self.known_hosts,
                *(["--accept-new-host-key"] if accept_new else []), *args]
        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        env["HOME"] = self.dir
        return argv, env

    def host_cmd(self, host, cmd, *args, accept_new=False):
        """convocate-host CMD --host <host>, started on this machine: a
        Popen whose stdout carries both of its streams."""
        argv, env = self._host_argv(host, cmd, args, accept_new)
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env)

    def host_run(self, host, cmd, *args, accept_new=False, timeout=900):
        """convocate-host CMD --host <host>, run to its end on this machine;
        the CompletedProcess, stdout and stderr apart."""
        argv, env = self._host_argv(host, cmd, args, accept_new)
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)

    def cleanup(self):
        for h in self.hosts:
            h.cleanup()
        sh("iptables", "-D", *self.forward_rule, check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
