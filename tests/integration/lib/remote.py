"""An OpenSSH server to provision over SSH (SPEC 11): a Debian container
running sshd on 127.0.0.1:<free port> (--network host, so test traffic never
leaves loopback), with a user "op" that has passwordless sudo and a user
"nosudo" that has not; images built FROM the session test image and cached
by content. The fixtures target_image, libs_target_image and target
(conftest.py) make them."""
import hashlib
import os
import shutil
import subprocess
import tempfile

from lib.common import HOST_BIN, docker, free_port, make_client_key, wait_for_port

LABEL = "convocate.test=remote"

# The target: sshd and sudo on the session test image's Debian base, a user
# "op" with passwordless sudo and a user "nosudo" without it. "*" instead of
# useradd's locked "!" so sshd lets key logins in.
TARGET_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      openssh-server sudo \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /run/sshd \\
 && useradd -m -s /bin/bash op && usermod -p '*' op \\
 && useradd -m -s /bin/bash nosudo && usermod -p '*' nosudo \\
 && echo 'op ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/op && chmod 0440 /etc/sudoers.d/op
"""

# Installs the test key for both users, then runs sshd on loopback only.
START = """\
set -e
for u in op nosudo; do
  install -d -m 0700 -o $u -g $u /home/$u/.ssh
  install -m 0600 -o $u -g $u /keys/client.pub /home/$u/.ssh/authorized_keys
done
exec /usr/sbin/sshd -D -e -p "$1" -o ListenAddress=127.0.0.1 -o PasswordAuthentication=no
"""


def cached_image(name, dockerfile, base):
    """docker build of dockerfile FROM base, tagged name:<hash of both>, so
    a second run finds it and builds nothing."""
    digest = hashlib.sha256((dockerfile + base).encode()).hexdigest()[:16]
    tag = f"{name}:{digest}"
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory() as ctx:
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(dockerfile)
        r = subprocess.run(["docker", "build", "-q", "--build-arg", f"BASE={base}",
                            "-t", tag, ctx], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{name} image build failed:\n{r.stdout}{r.stderr[-4000:]}"
    return tag


def operator_keys(prefix):
    """A scratch directory (the operator's HOME in these tests) with the
    operator's key pair, and its keys/ folder holding only client.pub, for
    targets to mount read-only: (dir, private key path, keys/)."""
    home = tempfile.mkdtemp(prefix=prefix)
    os.chmod(home, 0o755)
    keys = os.path.join(home, "keys")
    os.mkdir(keys)
    key = make_client_key(home, "client")
    shutil.copy(key + ".pub", os.path.join(keys, "client.pub"))
    os.chmod(os.path.join(keys, "client.pub"), 0o644)
    return home, key, keys


class Target:
    """One sshd container and the operator-side files that reach it."""

    def __init__(self, image, extra_run_args=()):
        self.dir, self.key, keys = operator_keys("convocate-remote-")
        self.port = free_port()
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        r = docker("run", "-d", "--rm", "--network", "host", "--label", LABEL,
                   "-v", f"{keys}:/keys:ro", *extra_run_args, "--entrypoint", "/bin/sh", image,
                   "-c", START, "sh", str(self.port))
        self.cid = r.stdout.strip()
        self._wait_ready()
        self.host_key = self.sh("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]

    def _wait_ready(self):
        class Running:
            def __init__(self, cid):
                self.cid = cid

            def poll(self):
                r = docker("inspect", "-f", "{{.State.Running}}", self.cid, check=False)
                return None if r.stdout.strip() == "true" else 1

        assert wait_for_port(self.port, Running(self.cid)), \
            docker("logs", self.cid, check=False).stderr

    def pin(self, blob=None):
        """known_hosts with the target's ed25519 key (or another blob)."""
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} ssh-ed25519 {blob or self.host_key[1]}\n")

    def fingerprint(self):
        return self.sh("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").split()[1]

    def sh(self, script, check=True):
        r = docker("exec", self.cid, "sh", "-c", script, check=False)
        if check:
            assert r.returncode == 0, f"{script}: {r.stdout}{r.stderr}"
        return r.stdout

    def exists(self, path):
        return docker("exec", self.cid, "test", "-e", path, check=False).returncode == 0

    def host(self, cmd, *args, user="op", pin=True, timeout=600):
        """convocate-host CMD --host ... as the operator; HOME is a scratch
        directory so nothing of this machine's ~/.ssh is read or written."""
        argv = [HOST_BIN, cmd, "--host", f"127.0.0.1:{self.port}", "--user", user,
                "--identity", self.key, "--known-hosts", self.known_hosts, *args]
        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        env["HOME"] = self.dir
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)

    def cleanup(self):
        docker("rm", "-f", self.cid, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


# What our binaries link that the target's base lacks; on a real host
# `convocate-host install` brings them.
LIBS_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      libssh-4 libjansson4 libcurl4 \\
 && rm -rf /var/lib/apt/lists/*
"""


def engine_target(image):
    """A Target with this machine's engine socket and docker CLI (a binary
    that needs only libc), so its engine is ours: `convocate install` and
    `docker load` really run there."""
    docker_cli = shutil.which("docker") or "/usr/bin/docker"
    return Target(image, extra_run_args=(
        "-v", "/var/run/docker.sock:/var/run/docker.sock",
        "-v", f"{os.path.realpath(docker_cli)}:/usr/bin/docker:ro"))


def ok(r):
    """r, once its exit status is 0; otherwise fails with its output."""
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stdout}{r.stderr}"
    return r
