"""The real Claude CLI for the tests, from the npm registry (the package
@anthropic-ai/claude-code), installed once into a cached prefix under
/var/tmp and reused by later runs; parallel runs serialize on a lock.

    path = claude_cli.executable()     # or pytest.skip with the reason

In 2.1.x the package carries a native glibc executable: the platform package
(@anthropic-ai/claude-code-linux-<arch>/claude) holds it, and the package's
postinstall links it over the bin/claude.exe placeholder. Which of the two is
real depends on whether npm ran the postinstall, so both are checked: the
file must be an ELF executable that answers --version.

When npm or the registry is not available, the tests that need the CLI are
skipped with npm's reason; nothing is hard-coded."""
import fcntl
import json
import os
import platform
import shutil
import subprocess
import tempfile

import pytest

VERSION = os.environ.get("CONVOCATE_CLAUDE_CLI_VERSION", "2.1")
PACKAGE = "@anthropic-ai/claude-code"
CACHE = f"/var/tmp/convocate-claude-cli-{VERSION}"
INSTALL_TIMEOUT = 900

_failure = None  # why the install failed in this process: not retried per test


def _arch():
    machine = platform.machine()
    return {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine,
                                                                                        machine)


def _candidates(prefix):
    """Where the native executable may be, most specific first."""
    top = os.path.join(prefix, "lib", "node_modules", *PACKAGE.split("/"))
    platform_pkg = f"claude-code-linux-{_arch()}"
    return [
        os.path.join(top, "node_modules", "@anthropic-ai", platform_pkg, "claude"),
        os.path.join(prefix, "lib", "node_modules", "@anthropic-ai", platform_pkg, "claude"),
        os.path.join(top, "bin", "claude.exe"),
    ]


def _is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _answers_version(path):
    """The executable runs on this glibc: --version, in an empty home, with
    nothing but the version asked for."""
    home = tempfile.mkdtemp(prefix="convocate-claude-version-")
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "DISABLE_AUTOUPDATER": "1",
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
        r = subprocess.run([path, "--version"], capture_output=True, text=True, env=env,
                           timeout=60, stdin=subprocess.DEVNULL)
        return r.returncode == 0 and "Claude Code" in r.stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        shutil.rmtree(home, ignore_errors=True)


def find_executable(prefix):
    for path in _candidates(prefix):
        if os.path.isfile(path) and os.access(path, os.X_OK) and _is_elf(path) \
                and _answers_version(path):
            return os.path.realpath(path)
    return None


def installed_version(prefix=CACHE):
    top = os.path.join(prefix, "lib", "node_modules", *PACKAGE.split("/"))
    with open(os.path.join(top, "package.json")) as f:
        return json.load(f)["version"]


def _install(prefix):
    """npm install into a fresh directory next to prefix, renamed into place
    once complete, so prefix is either absent or whole."""
    npm = shutil.which("npm")
    if not npm:
        return "npm is not installed"
    work = tempfile.mkdtemp(prefix=os.path.basename(prefix) + ".part-",
                            dir=os.path.dirname(prefix))
    try:
        argv = [npm, "install", "-g", "--prefix", work, "--no-audit", "--no-fund",
                "--loglevel=error", f"{PACKAGE}@{VERSION}"]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"npm install {PACKAGE}@{VERSION} took over {INSTALL_TIMEOUT}s"
        if r.returncode != 0:
            tail = " | ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
            return f"npm install {PACKAGE}@{VERSION} failed (rc {r.returncode}): {tail}"
        if not find_executable(work):
            return f"npm installed {PACKAGE}@{VERSION} but no native executable runs here"
        os.chmod(work, 0o755)
        os.rename(work, prefix)
        work = None
        return None
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)


def executable():
    """Path of the real Claude CLI's native executable; skips the calling
    test when it cannot be had."""
    global _failure
    if _failure:
        pytest.skip(f"the real Claude CLI is not available: {_failure}")
    with open(CACHE + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = find_executable(CACHE) if os.path.isdir(CACHE) else None
        if path is None:
            if os.path.isdir(CACHE):  # a cache that no longer runs: start again
                shutil.rmtree(CACHE, ignore_errors=True)
            _failure = _install(CACHE)
            if _failure:
                pytest.skip(f"the real Claude CLI is not available: {_failure}")
            path = find_executable(CACHE)
    return path
