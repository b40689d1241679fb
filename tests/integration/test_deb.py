"""The Debian packages (make deb, debian/): built by dpkg-buildpackage,
checked by lintian, and installed with `apt-get install ./...` into a fresh
container of the image build's debootstrap base (this host's release and
its apt sources; no image registry). apt brings docker.io, rsyslog and the
rest from those sources, as it would on a real host: that is most of the
install's time (about half a minute here).

What is shown: lintian finds no error; the files the packages ship are
byte for byte what `install` writes, so the two never fight; after
`apt-get install` the user claude is 1337:1337, `convocate-agent install`
and `convocate install` have run (and a second run changes nothing), the
units are the package's, `convocate-agent serve --help` works; `apt-get
purge` leaves no unit, no enablement and no configuration behind, and
keeps /home/claude and its sessions. convocate-host deploys the package
over SSH with --deb (upload, SHA-256 check, apt-get install) and a second
run changes nothing."""
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD, REPO, docker
from lib.remote import Target

AGENT_BIN = os.path.join(BUILD, "src", "convocate-agent")
SHELL_BIN = os.path.join(BUILD, "src", "convocate")
HOST_BIN = os.path.join(BUILD, "src", "convocate-host")
LABEL = "convocate.test=deb"
SESSION = "0b7f3c1e-5a2d-4c8e-9f10-3d4e5f6a7b8c"


@pytest.fixture(scope="module")
def debs():
    """{package: path} of the two packages, built once for this module."""
    out = tempfile.mkdtemp(prefix="convocate-deb-")
    # nocheck: the unit tests are make check's own step, and some of them
    # measure this (busy) machine's load.
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck")
    r = subprocess.run(["bash", os.path.join(REPO, "scripts", "build-deb.sh"), out],
                       capture_output=True, text=True, timeout=1800, env=env)
    assert r.returncode == 0, f"make deb failed:\n{r.stderr[-4000:]}"
    paths = r.stdout.split()
    yield {os.path.basename(p).split("_")[0]: p for p in paths}
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def base_image():
    r = subprocess.run(["bash", os.path.join(REPO, "scripts", "build-image.sh"), "test", "--base"],
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, f"base image build failed:\n{r.stderr[-4000:]}"
    return r.stdout.strip().splitlines()[-1]


class Box:
    """A fresh container of the base, the package directory mounted at /debs."""

    def __init__(self, image, deb_dir):
        r = docker("run", "-d", "--rm", "--label", LABEL, "-v", f"{deb_dir}:/debs:ro",
                   image, "sleep", "3600")
        self.cid = r.stdout.strip()

    def sh(self, script, check=True, timeout=900):
        r = subprocess.run(["docker", "exec", self.cid, "bash", "-c", script],
                           capture_output=True, text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"{script}\nrc={r.returncode}\n{r.stdout[-3000:]}{r.stderr}"
        return r.stdout

    def cleanup(self):
        docker("rm", "-f", self.cid, check=False)


def test_lintian_reports_no_errors(debs):
    r = subprocess.run(["lintian", "--fail-on", "error", "--tag-display-limit", "0",
                        debs["convocate"], debs["convocate-agent"]],
                       capture_output=True, text=True, timeout=600)
    tags = [line for line in r.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    assert r.returncode == 0, "\n".join(tags) or r.stderr
    assert not [t for t in tags if t.startswith("E: ")], tags
    print("lintian:", *tags, sep="\n  ")


def run_install(*argv):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{argv}: {r.stdout}{r.stderr}"
    return r.stdout


def test_packaged_files_are_what_install_writes(tmp_path):
    """A file both a package and `install` put down must be the same bytes
    and mode, or every configure would rewrite it."""
    agent_root, shell_root = tmp_path / "agent", tmp_path / "shell"
    agent_root.mkdir()
    shell_root.mkdir()
    run_install(AGENT_BIN, "install", "--root", str(agent_root), "--no-docker-check")
    out = run_install(SHELL_BIN, "--root", str(shell_root), "install", "--no-docker-check")
    debian = os.path.join(REPO, "debian")
    pairs = [
        ("convocate-agent.convocate-image-prune.cron.daily",
         agent_root / "etc/cron.daily/convocate-image-prune"),
        ("convocate.convocate-agent-logs.logrotate",
         agent_root / "etc/logrotate.d/convocate-agent-logs"),
    ]
    for name, written in pairs:
        with open(os.path.join(debian, name), "rb") as f, open(written, "rb") as g:
            assert f.read() == g.read(), f"debian/{name} differs from {written}"
        # debhelper installs cron.daily scripts 0755 and logrotate files 0644.
        want = 0o755 if name.endswith(".cron.daily") else 0o644
        assert stat.S_IMODE(os.stat(written).st_mode) == want, written
    with open(os.path.join(REPO, "data", "skel", "CLAUDE.md"), "rb") as f, \
            open(agent_root / "home/claude/.skel/CLAUDE.md", "rb") as g:
        assert f.read() == g.read(), "data/skel/CLAUDE.md differs from the skel install writes"
    if "dnsmasq drop-in: skipped" not in out:
        with open(os.path.join(debian, "conf", "10-convocate.conf")) as f, \
                open(shell_root / "etc/dnsmasq.d/10-convocate.conf") as g:
            assert f.read() == g.read().replace(str(shell_root), ""), "dnsmasq drop-in differs"
    # The package's units name the package's programs.
    for unit, program in (("convocate-agent.service", "/usr/bin/convocate-agent serve"),
                          ("convocate.convocate-status.service", "/usr/bin/convocate status-serve")):
        with open(os.path.join(debian, unit)) as f:
            assert f"ExecStart={program}\n" in f.read(), unit


def test_debs_install_with_apt_and_purge_keeps_sessions(debs, base_image):
    deb_dir = os.path.dirname(debs["convocate"])
    box = Box(base_image, deb_dir)
    try:
        assert not box.sh("command -v convocate-agent || true").strip(), "the base is not fresh"
        box.sh("apt-get update -q")
        names = " ".join("./" + os.path.basename(debs[p]) for p in ("convocate", "convocate-agent"))
        started = time.monotonic()
        out = box.sh(f"cd /debs && DEBIAN_FRONTEND=noninteractive apt-get install -y -q {names}")
        print(f"\napt-get install of both packages and their dependencies: "
              f"{time.monotonic() - started:.0f} s")
        # The packages' scripts ran the installs (no dockerd here: not checked).
        assert "convocate-agent install (root /)" in out and "convocate install (root /)" in out
        assert box.sh("id -u claude; id -g claude").split() == ["1337", "1337"]
        assert box.sh("getent passwd claude").strip().endswith(":/home/claude:/usr/bin/convocate")
        assert "/usr/bin/convocate\n" in box.sh("cat /etc/shells")
        box.sh("test -s /etc/convocate-agent/agent-id && test -s "
               "/etc/convocate-agent/ssh_host_ed25519_key && "
               "test -s /etc/systemd/system/convocate-sessions.slice && "
               "test -f /home/claude/.skel/CLAUDE.md && test -f /var/lib/convocate/dnsmasq-hosts")
        # The units are the package's; install wrote no copy to shadow them.
        box.sh("test -f /lib/systemd/system/convocate-agent.service && "
               "test -f /lib/systemd/system/convocate-status.service && "
               "! test -e /etc/systemd/system/convocate-agent.service && "
               "! test -e /etc/systemd/system/convocate-status.service")
        assert "usage: convocate-agent" in box.sh("convocate-agent serve --help")
        # Idempotent: a second install changes nothing the package laid down.
        for cmd in ("convocate-agent install --no-docker-check",
                    "convocate install --no-docker-check"):
            assert box.sh(cmd).rstrip().endswith("nothing changed"), cmd
        assert box.sh("dpkg -S /etc/logrotate.d/convocate-agent-logs").startswith("convocate:")
        # An upgrade (here: the same version again) re-runs both installs,
        # which change nothing, and starts no daemon: systemd does not run.
        again = box.sh(f"cd /debs && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                       f"--reinstall {names}")
        assert again.count("nothing changed") == 2, again
        assert box.sh("cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^convocate' || true").strip() == "0"
        box.sh("test -f /usr/share/man/man1/convocate.1.gz && "
               "test -f /usr/share/man/man8/convocate-agent.8.gz && "
               "test -f /usr/share/man/man8/convocate-host.8.gz && "
               "test -f /usr/share/bash-completion/completions/convocate")
        # A session: user data.
        box.sh(f"install -d -o claude -g claude -m 0700 /home/claude/{SESSION} && "
               f"echo notes > /home/claude/{SESSION}/notes.md")

        box.sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q convocate convocate-agent")
        left = box.sh("find /etc/systemd /lib/systemd /usr/lib/systemd /var/lib/systemd "
                      "-name '*convocate*' 2>/dev/null; ls -d /etc/convocate /etc/convocate-agent "
                      "/var/lib/convocate /etc/dnsmasq.d/10-convocate.conf "
                      "/etc/cron.daily/convocate-image-prune "
                      "/etc/logrotate.d/convocate-agent-logs 2>/dev/null", check=False)
        assert left.strip() == "", f"purge left:\n{left}"
        assert "convocate" not in box.sh("cat /etc/shells")
        assert box.sh(f"cat /home/claude/{SESSION}/notes.md") == "notes\n"
        assert box.sh("id -u claude").strip() == "1337"
        assert box.sh("dpkg-query -W -f '${db:Status-Abbrev}' convocate convocate-agent "
                      "2>/dev/null || true").strip() in ("", "un un")
    finally:
        box.cleanup()


def test_deb_option_misuse_is_refused_before_any_connection(debs, tmp_path):
    r = subprocess.run([HOST_BIN, "init-shell", "--root", str(tmp_path), "--deb",
                        debs["convocate"]], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--deb needs --host" in r.stderr, r.stderr
    r = subprocess.run([HOST_BIN, "migrate-session", "--agent", "abcdefgh", "--session", SESSION,
                        "--deb", debs["convocate"]], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--deb" in r.stderr, r.stderr
    # Not the agent's package: refused here, before dialling the (absent) host.
    r = subprocess.run([HOST_BIN, "update", "--host", "127.0.0.1:1", "--deb", debs["convocate"]],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "not convocate-agent" in r.stderr, r.stderr
    bogus = tmp_path / "x.deb"
    bogus.write_text("not a package\n")
    r = subprocess.run([HOST_BIN, "init-agent", "--host", "127.0.0.1:1", "--deb", str(bogus)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "not a package dpkg-deb can read" in r.stderr, r.stderr


def test_convocate_host_deploys_the_packages_over_ssh(debs, target_image, test_image):
    """init-shell, init-agent and update with --host --deb on one sshd target
    (a single box; this machine's engine through its socket, so the installs
    find one): each package is uploaded, checked and installed by apt, the
    units are the package's, the agent's install runs from /usr/bin, and a
    second run changes nothing."""
    t = Target(target_image, extra_run_args=(
        "-v", "/var/run/docker.sock:/var/run/docker.sock"))
    try:
        t.pin()
        t.sh("apt-get update -q")  # what convocate-host install leaves behind
        r = t.host("init-shell", "--deb", debs["convocate"])
        assert r.returncode == 0, f"{r.stdout}{r.stderr}"
        out = r.stdout
        assert re.search(r"packages convocate \S+: installed \(SHA-256 checked", out), out
        assert "docker: reachable" in out, out  # /usr/bin/convocate install, engine checked
        assert "convocate-status.service: unchanged (the package's " \
               "/lib/systemd/system/convocate-status.service)" in out, out
        assert not t.exists("/etc/systemd/system/convocate-status.service")
        assert not t.exists("/usr/local/bin/convocate"), "a bare binary was deployed too"
        assert t.sh("id -u claude").strip() == "1337"
        r = t.host("init-shell", "--deb", debs["convocate"])
        assert r.returncode == 0, f"{r.stdout}{r.stderr}"
        assert re.search(r"packages convocate \S+: unchanged", r.stdout), r.stdout
        assert r.stdout.rstrip().endswith("nothing changed"), r.stdout

        # The same host as an agent of a shell on this machine: init-agent
        # installs the agent's package, then update finds it current.
        shell = tempfile.mkdtemp(prefix="convocate-shell-")
        try:
            init = subprocess.run([HOST_BIN, "init-shell", "--root", shell], capture_output=True,
                                  text=True, timeout=120)
            assert init.returncode == 0, init.stdout + init.stderr
            args = ("--deb", debs["convocate-agent"], "--image", test_image)
            r = t.host("init-agent", "--root", shell, *args)
            assert r.returncode == 0, f"{r.stdout}{r.stderr}"
            out = r.stdout
            assert re.search(r"packages convocate-agent \S+: installed \(SHA-256 checked",
                             out), out
            agent_id = t.sh("cat /etc/convocate-agent/agent-id").strip()
            assert os.path.isdir(os.path.join(shell, "etc", "convocate", "agent-keys", agent_id))
            assert t.sh("cat /etc/convocate-agent/current-image") == test_image + "\n"
            assert not t.exists("/usr/local/bin/convocate-agent")
            assert not t.exists("/etc/systemd/system/convocate-agent.service")
            assert t.sh("ls /tmp | grep -c '^convocate-.*\\.deb$' || true").strip() == "0", \
                "an upload was not removed"
            r = t.host("update", *args)
            assert r.returncode == 0, f"{r.stdout}{r.stderr}"
            assert re.search(r"packages convocate-agent \S+: unchanged", r.stdout), r.stdout
            assert "agent install: unchanged" in r.stdout, r.stdout  # /usr/bin/convocate-agent
            assert r.stdout.rstrip().endswith("nothing changed"), r.stdout
        finally:
            shutil.rmtree(shell, ignore_errors=True)
    finally:
        t.cleanup()


def test_install_defers_to_the_packages_unit(tmp_path):
    """With the package's unit in /lib/systemd/system, install writes no copy
    to /etc/systemd/system, removes one an earlier install of ours wrote
    (it would shadow the package's) and leaves an operator's own alone."""
    root = tmp_path / "root"
    lib = root / "lib/systemd/system"
    etc = root / "etc/systemd/system"
    lib.mkdir(parents=True)
    etc.mkdir(parents=True)
    shutil.copy(os.path.join(REPO, "debian", "convocate-agent.service"),
                lib / "convocate-agent.service")
    (etc / "convocate-agent.service").write_text(
        "# Installed by convocate-agent install; rewritten on each install.\n[Unit]\n")
    out = run_install(AGENT_BIN, "install", "--root", str(root), "--no-docker-check")
    assert f"convocate-agent.service: removed {etc}/convocate-agent.service (the package's " \
           f"/lib/systemd/system/convocate-agent.service replaces it)" in out, out
    assert not (etc / "convocate-agent.service").exists()
    again = run_install(AGENT_BIN, "install", "--root", str(root), "--no-docker-check")
    assert "convocate-agent.service: unchanged (the package's " \
           "/lib/systemd/system/convocate-agent.service)" in again, again
    assert again.rstrip().endswith("nothing changed"), again
    (etc / "convocate-agent.service").write_text("# mine\n[Service]\nNice=5\n")
    third = run_install(AGENT_BIN, "install", "--root", str(root), "--no-docker-check")
    assert third.rstrip().endswith("nothing changed"), third
    assert (etc / "convocate-agent.service").read_text() == "# mine\n[Service]\nNice=5\n"
