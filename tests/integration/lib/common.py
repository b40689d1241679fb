"""The programs under test and the small tools nearly every test uses: free
ports, waiting for a listener, stopping a process, the docker CLI, client
keys."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
BUILD = os.environ.get("CONVOCATE_BUILD", os.path.join(REPO, "build"))
AGENT_BIN = os.path.join(BUILD, "src", "convocate-agent")
SHELL_BIN = os.path.join(BUILD, "src", "convocate")
HOST_BIN = os.path.join(BUILD, "src", "convocate-host")
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=15.0):
    """True once 127.0.0.1:port accepts a connection; False when proc
    (anything with poll()) has exited first or timeout s have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_process(proc, timeout=15):
    """SIGTERM, then SIGKILL after timeout s; returns the exit code (None
    without a process)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def clean_env():
    """This environment without systemd's per-unit variables, for daemons
    the tests start."""
    return {k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", "JOURNAL_STREAM")}


def mounts_under(path):
    """Mount points at or below path, deepest first, from this process's
    mountinfo (the kernel writes a space in a path as \\040)."""
    top = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ")
            if len(fields) < 5:
                continue
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if point == top or point.startswith(top.rstrip("/") + "/"):
                found.append(point)
    return sorted(set(found), key=len, reverse=True)


def unmount_under(path):
    """Unmounts what `convocate-agent install` mounted under a test root (the
    nosuid,nodev bind of <root>/home/claude). Only mounts below path are
    touched, never one another test run made elsewhere."""
    for point in mounts_under(path):
        subprocess.run(["umount", "--lazy", point], capture_output=True)


def remove_tree(path):
    """shutil.rmtree for a test's root: unmounts what is mounted below it
    first, so neither the mount nor its directory is left behind."""
    if path and os.path.isdir(path):
        unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


def docker(*args, check=True):
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check)


def make_client_key(directory, name="client_ed25519", kind="ed25519"):
    path = os.path.join(directory, name)
    extra = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", name, "-f", path],
                   check=True)
    return path


# make check-asan builds with ASan and UBSan (scripts/check.sh sets this).
# Such binaries need the sanitizer runtime, which a provisioning target (an
# sshd or systemd container) does not have: the tests that run this build's
# programs on a target run under plain make check only.
SANITIZED = os.environ.get("CONVOCATE_SANITIZED") == "1"
runs_build_on_target = pytest.mark.skipif(
    SANITIZED, reason="runs this build's programs on a target without the sanitizer runtime; "
    "covered by make check")
