"""convocate-host create-vm (SPEC 11) against a real OpenSSH server in a
Debian container on 127.0.0.1 (the Target of lib/remote.py), and against
nothing at all for what is decided on this machine before any connection.

What is shown: usage errors exit 2 with one line naming the option; the ISO
is copied into the cache and verified (a second run reuses it, a wrong digest
refuses naming both digests and leaves the good cached file alone); on the
hypervisor: user U with the operator's key, the sshd hardening drop-in
(checked by sshd -t, sshd reloaded by SIGHUP as there is no systemd, and the
second run still logs in), a random 8-letter name in /etc/hostname and
/etc/hosts, the "<ip> <fqdn> <name>" line in the
shell's dnsmasq-hosts, the machine.slice cap, the cidata seed ISO (read back
with isoinfo), and then the refusal at /dev/kvm, which the container lacks,
before any KVM package is installed; a second run changes none of it; a
failing sshd -t puts the previous drop-in back; admission refuses with
numbers; --dry-run touches neither side. On an image that already has the KVM
packages and a /dev/kvm node (made, never opened): the ISO is sent and its
SHA-256 checked there, virt-install is run and fails at connecting to
libvirtd, which is not started here, and no pledge is written.

Not exercised here: installing the KVM packages (they are in the image), a
libvirtd judging virt-install's sub-options, the VM's boot and autoinstall,
the pledge written after a successful virt-install, a real reboot (the
argv itself is unit-tested)."""
import hashlib
import os
import re
import subprocess

import pytest

from lib.common import HOST_BIN, docker, free_port, wait_for_port
from lib.remote import Target, cached_image

LABEL = "convocate.test=create-vm"
HARDENING = "/etc/ssh/sshd_config.d/50-convocate-hardening.conf"
SLICE = "/etc/systemd/system/machine.slice.d/50-convocate.conf"

# The target's packages upgraded when the image is built, so the run's
# dist-upgrade has nothing (or little) to do.
UPGRADED_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get -y dist-upgrade \\
 && rm -rf /var/lib/apt/lists/*
"""


# A hypervisor that already has the KVM packages, so the test of the steps
# after /dev/kvm downloads nothing at run time (the packages step is then
# "unchanged", which is what a second run on a real host says).
KVM_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      qemu-system-x86 qemu-utils libvirt-daemon-system virtinst \\
 && rm -rf /var/lib/apt/lists/*
"""


@pytest.fixture(scope="session")
def vm_target_image(target_image):
    return cached_image("convocate-vm-target", UPGRADED_DOCKERFILE, target_image)


@pytest.fixture
def hv(vm_target_image):
    # Docker bind-mounts /etc/hosts and /etc/hostname, and a file that is a
    # mount point cannot be renamed over; a real host has plain files.
    t = Target(vm_target_image, extra_run_args=(
        "--label", LABEL, "--cap-add", "SYS_ADMIN",
        "--security-opt", "apparmor=unconfined"))
    t.sh("umount /etc/hosts /etc/hostname")
    t.pin()
    yield t
    t.cleanup()


@pytest.fixture(scope="session")
def kvm_target_image(vm_target_image):
    return cached_image("convocate-kvm-target", KVM_DOCKERFILE, vm_target_image)


@pytest.fixture
def kvm_hv(kvm_target_image):
    """A hypervisor with the KVM packages and a /dev/kvm node. The node is
    only made, never opened (the container may not use it and this machine
    has no KVM); libvirtd is not started, so virt-install is run and fails
    at its connection: the argv is not judged by libvirt here."""
    t = Target(kvm_target_image, extra_run_args=(
        "--label", LABEL, "--cap-add", "SYS_ADMIN",
        "--security-opt", "apparmor=unconfined"))
    t.sh("umount /etc/hosts /etc/hostname && mknod /dev/kvm c 10 232")
    t.pin()
    yield t
    t.cleanup()


@pytest.fixture
def iso(tmp_path):
    """A stand-in for the live-server ISO: the cache only sees bytes."""
    path = tmp_path / "ubuntu-live-server.iso"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def vm_args(iso_path, sha, cache, shell_root, username="vmadmin"):
    return ["--username", username, "--domain", "lab.example.test", "--cpu", "1",
            "--ram", "512", "--osdisk", "5", "--datadisk", "1", "--iso", iso_path,
            "--iso-sha256", sha, "--iso-cache", cache, "--root", shell_root, "--no-reboot"]


def create_vm(t, *args, timeout=900):
    argv = [HOST_BIN, "create-vm", "--hypervisor", f"127.0.0.1:{t.port}", "--user", "op",
            "--identity", t.key, "--known-hosts", t.known_hosts, *args]
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env["HOME"] = t.dir
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def offline(*args, home):
    """create-vm toward a closed port: for what happens before connecting."""
    argv = [HOST_BIN, "create-vm", "--hypervisor", f"127.0.0.1:{free_port()}", "--user", "op",
            *args]
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env["HOME"] = home
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)


GOOD = {"--username": "vmadmin", "--domain": "lab.example.test", "--cpu": "2", "--ram": "2048",
        "--osdisk": "20", "--datadisk": "10", "--iso": "/nonexistent.iso",
        "--iso-sha256": "a" * 64}


@pytest.mark.parametrize("option,value", [
    ("--cpu", "0"), ("--cpu", "two"), ("--ram", "511"), ("--osdisk", "4"),
    ("--datadisk", "0"), ("--username", "root"), ("--username", "Admin"),
    ("--username", "a;reboot"), ("--domain", "localhost"), ("--domain", "bad_name.test"),
    ("--domain", "a..b"), ("--iso-sha256", "abc"), ("--iso-sha256", "g" * 64),
])
def test_bad_values_exit_2_naming_the_option(tmp_path, option, value):
    args = dict(GOOD, **{option: value})
    r = offline(*[x for kv in args.items() for x in kv], home=str(tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0], r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("missing", ["--username", "--domain", "--cpu", "--ram", "--osdisk",
                                     "--datadisk", "--iso", "--iso-sha256"])
def test_missing_options_exit_2_naming_them(tmp_path, missing):
    args = {k: v for k, v in GOOD.items() if k != missing}
    r = offline(*[x for kv in args.items() for x in kv], home=str(tmp_path))
    assert r.returncode == 2
    assert f"{missing} " in r.stderr and "is required" in r.stderr


def test_iso_cache_fetches_once_and_refuses_a_wrong_digest(tmp_path, iso):
    path, sha = iso
    cache = str(tmp_path / "cache")
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn0 op@test\n")
    base = [x for kv in GOOD.items() for x in kv if kv[0] not in ("--iso", "--iso-sha256")]
    base += ["--iso-cache", cache, "--pubkey", str(key)]

    r = offline(*base, "--iso", path, "--iso-sha256", sha.upper(), home=str(tmp_path))
    # The cache step comes before the connection, which then fails.
    assert r.returncode == 1 and "ISO cache: created" in r.stdout, r.stdout + r.stderr
    assert "--hypervisor" in r.stderr
    cached = os.path.join(cache, sha + ".iso")
    with open(cached, "rb") as f, open(path, "rb") as g:
        assert f.read() == g.read()

    r = offline(*base, "--iso", "file://" + path, "--iso-sha256", sha, home=str(tmp_path))
    assert "ISO cache: unchanged" in r.stdout, r.stdout + r.stderr

    other = tmp_path / "other.iso"
    other.write_bytes(b"not the ISO")
    other_sha = hashlib.sha256(b"not the ISO").hexdigest()
    wrong = "b" * 64
    r = offline(*base, "--iso", str(other), "--iso-sha256", wrong, home=str(tmp_path))
    assert r.returncode == 1
    assert other_sha in r.stderr and wrong in r.stderr and "ISO cache" in r.stderr, r.stderr
    assert sorted(os.listdir(cache)) == [sha + ".iso"]  # no partial file, good file kept
    assert hashlib.sha256(open(cached, "rb").read()).hexdigest() == sha

    # over http from 127.0.0.1, into a fresh cache
    server = subprocess.Popen(["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1",
                               "--directory", os.path.dirname(path), str(port := free_port())],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port(port, server)
        url = f"http://127.0.0.1:{port}/{os.path.basename(path)}"
        cache2 = str(tmp_path / "cache2")
        r = offline(*base[:-4], "--iso-cache", cache2, "--pubkey", str(key), "--iso", url,
                    "--iso-sha256", sha, home=str(tmp_path))
        assert "ISO cache: created" in r.stdout, r.stdout + r.stderr
        assert os.listdir(cache2) == [sha + ".iso"]
        r = offline(*base[:-4], "--iso-cache", cache2, "--pubkey", str(key), "--iso", url + "x",
                    "--iso-sha256", wrong, home=str(tmp_path))
        assert r.returncode == 1 and "404" in r.stderr, r.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)

    # a --root that is no directory stops the run before the ISO step
    r = offline(*base, "--iso", path, "--iso-sha256", sha, "--root", str(tmp_path / "nodir"),
                home=str(tmp_path))
    assert r.returncode == 1 and "--root" in r.stderr and "ISO cache" not in r.stdout

    r = offline(*base, "--iso", str(tmp_path / "missing.iso"), "--iso-sha256", wrong,
                home=str(tmp_path))
    assert r.returncode == 1 and "missing.iso" in r.stderr
    assert sorted(os.listdir(cache)) == [sha + ".iso"]


@pytest.mark.parametrize("user_args,env_user", [(["--user", "root"], "op"), ([], "root")])
def test_root_login_is_refused_before_anything(tmp_path, iso, user_args, env_user):
    """The hardening forbids root logins: a run as root would lock itself out."""
    path, sha = iso
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn0 op@test\n")
    argv = [HOST_BIN, "create-vm", "--hypervisor", f"127.0.0.1:{free_port()}", *user_args,
            "--pubkey", str(key), *vm_args(path, sha, str(tmp_path / "cache"), str(tmp_path))]
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env.update(HOME=str(tmp_path), USER=env_user)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1
    assert "--user: the sshd hardening create-vm installs forbids root logins" in r.stderr
    assert not (tmp_path / "cache").exists()  # refused before the ISO step


def isoinfo(iso_path, *args):
    r = subprocess.run(["isoinfo", "-i", iso_path, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_hypervisor_is_prepared_up_to_the_kvm_refusal(hv, iso, tmp_path):
    path, sha = iso
    shell_root = tmp_path / "shell"
    hosts_file = shell_root / "var/lib/convocate/dnsmasq-hosts"
    hosts_file.parent.mkdir(parents=True)
    hosts_file.write_text("10.0.0.9 keep.lab.example.test keep\n")
    args = vm_args(path, sha, str(tmp_path / "cache"), str(shell_root))

    r = create_vm(hv, *args)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    last = r.stderr.strip().splitlines()[-1]
    assert "/dev/kvm" in last and "cannot run VMs" in last, out

    # the operator's key for U
    pub = open(hv.key + ".pub").read().split()[:2]
    keys = hv.sh("cat /home/vmadmin/.ssh/authorized_keys")
    assert " ".join(pub) in keys
    assert hv.sh("stat -c '%a %U' /home/vmadmin/.ssh/authorized_keys").split() == ["600", "vmadmin"]
    # sshd hardening, valid and in force: a second connection still works
    hardening = hv.sh(f"cat {HARDENING}")
    for line in ("PermitRootLogin no", "PasswordAuthentication no", "X11Forwarding no",
                 "MaxAuthTries 4"):
        assert line + "\n" in hardening
    assert "permitrootlogin no" in hv.sh("sshd -T | grep -i permitrootlogin")
    # no systemd in the container: sshd (PID 1, -e logs to stderr) got its SIGHUP
    assert "Received SIGHUP" in docker("logs", hv.cid).stderr
    # the host's name
    name = hv.sh("cat /etc/hostname").strip()
    assert re.fullmatch(r"[a-z]{8}", name)
    assert hv.sh("cat /etc/convocate-hypervisor/hostname").strip() == name
    assert f"127.0.1.1 {name}.lab.example.test {name}\n" in hv.sh("cat /etc/hosts")
    # the shell's DNS: our line added, the other kept
    assert hosts_file.read_text() == (
        f"10.0.0.9 keep.lab.example.test keep\n127.0.0.1 {name}.lab.example.test {name}\n")
    # the VM cap from this host's CPUs and RAM
    cpus = int(hv.sh("nproc"))
    mem_mb = int(re.search(r"MemTotal:\s+(\d+) kB", hv.sh("cat /proc/meminfo")).group(1)) // 1024
    slice_text = hv.sh(f"cat {SLICE}")
    assert f"CPUQuota={cpus * 90}%\n" in slice_text
    assert f"MemoryMax={mem_mb * 90 // 100}M\n" in slice_text
    assert "admission: 1 CPUs, 512 MB RAM, 6 GB disk fit" in r.stdout
    # the seed, read back from the hypervisor
    seeds = hv.sh("ls /var/lib/libvirt/images/").split()
    assert len(seeds) == 2 and seeds[0].endswith("-seed.iso"), seeds
    assert seeds[1] == seeds[0] + ".sha256-inputs"
    vm_name = seeds[0][:-len("-seed.iso")]
    assert re.fullmatch(r"[a-z]{8}", vm_name)
    # kept until virt-install has made that VM, so a rerun reuses name and seed
    assert hv.sh("cat /etc/convocate-hypervisor/next-vm-name") == vm_name + "\n"
    local_seed = str(tmp_path / "seed.iso")
    docker("cp", f"{hv.cid}:/var/lib/libvirt/images/{seeds[0]}", local_seed)
    assert "Volume id: cidata" in isoinfo(local_seed, "-d")
    user_data = isoinfo(local_seed, "-R", "-x", "/user-data")
    assert user_data.startswith("#cloud-config\nautoinstall:\n  version: 1\n")
    assert "      - name: vmadmin\n" in user_data and " ".join(pub) in user_data
    assert f"    hostname: {vm_name}\n" in user_data
    assert f"    fqdn: {vm_name}.lab.example.test\n" in user_data
    assert isoinfo(local_seed, "-R", "-x", "/meta-data") == (
        f"instance-id: convocate-{vm_name}\nlocal-hostname: {vm_name}\n")
    # nothing of KVM was installed, no VM pledged
    assert hv.sh("dpkg-query -W -f='${Status}' libvirt-daemon-system 2>&1",
                 check=False).find("ok installed") < 0
    assert not hv.exists("/etc/convocate-hypervisor/vms")

    # A second run: the hypervisor's setup stands, it fails at the same place;
    # a key added by someone else meanwhile is kept, ours is not doubled.
    hv.sh("echo 'ssh-ed25519 AAAAOTHERKEY other@elsewhere' >> /home/vmadmin/.ssh/authorized_keys")
    r2 = create_vm(hv, *args)
    assert r2.returncode == 1 and "/dev/kvm" in r2.stderr
    for step in ("user vmadmin: unchanged", f"{HARDENING}: unchanged",
                 "/etc/hostname: unchanged", "/etc/hosts: unchanged",
                 "/var/lib/convocate/dnsmasq-hosts: unchanged", f"{SLICE}: unchanged",
                 "ISO cache: unchanged", f"/var/lib/libvirt/images/{vm_name}-seed.iso: unchanged"):
        assert step in r2.stdout, r2.stdout
    assert hv.sh("cat /etc/hostname").strip() == name
    assert hv.sh("ls /var/lib/libvirt/images/").split() == seeds
    keys = hv.sh("cat /home/vmadmin/.ssh/authorized_keys")
    assert keys.count(" ".join(pub)) == 1 and "other@elsewhere" in keys


def test_dry_run_touches_nothing(hv, iso, tmp_path):
    path, sha = iso
    shell_root = tmp_path / "shell"
    shell_root.mkdir()
    cache = tmp_path / "cache"
    before = hv.sh("ls -la --time-style=full-iso /etc /etc/ssh/sshd_config.d /home; cat /etc/hosts")
    r = create_vm(hv, "--dry-run", *vm_args(path, sha, str(cache), str(shell_root)))
    assert "would create" in r.stdout, r.stdout + r.stderr
    for step in ("ISO cache: would create", "user vmadmin: would create",
                 f"{HARDENING}: would create", "/etc/hosts: would update",
                 "/var/lib/convocate/dnsmasq-hosts: would create", f"{SLICE}: would create"):
        assert step in r.stdout, r.stdout
    # the /dev/kvm check is a question, so a dry run asks it too
    assert r.returncode == 1 and "/dev/kvm" in r.stderr
    after = hv.sh("ls -la --time-style=full-iso /etc /etc/ssh/sshd_config.d /home; cat /etc/hosts")
    assert before == after
    assert not hv.exists("/etc/convocate-hypervisor") and not hv.exists("/var/lib/libvirt")
    assert not cache.exists() and list(shell_root.iterdir()) == []


def test_failing_sshd_t_restores_the_previous_dropin(hv, iso, tmp_path):
    path, sha = iso
    old = "# an earlier file\nX11Forwarding no\n"
    hv.sh(f"printf '{old}' > {HARDENING}")
    hv.sh("echo 'NoSuchSshdOption yes' > /etc/ssh/sshd_config.d/40-broken.conf")
    r = create_vm(hv, *vm_args(path, sha, str(tmp_path / "cache"), str(tmp_path)))
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert "sshd hardening" in last and "sshd -t refused" in last, r.stderr
    assert "previous file is restored" in last
    assert hv.sh(f"cat {HARDENING}") == old
    # the run stopped there
    assert not hv.exists("/etc/convocate-hypervisor/hostname")


def test_admission_refuses_with_numbers(hv, iso, tmp_path):
    path, sha = iso
    mem_mb = int(re.search(r"MemTotal:\s+(\d+) kB", hv.sh("cat /proc/meminfo")).group(1)) // 1024
    hv.sh("mkdir -p /etc/convocate-hypervisor/vms && printf 'cpu=0\\nram_mb=%d\\ndisk_gb=1\\n' "
          f"{mem_mb * 90 // 100 - 100} > /etc/convocate-hypervisor/vms/oldvmxyz.pledge")
    # install's reboot step, reused: --no-reboot only says a reboot is due
    hv.sh("touch /var/run/reboot-required")
    r = create_vm(hv, *vm_args(path, sha, str(tmp_path / "cache"), str(tmp_path)))
    assert r.returncode == 1
    assert "reboot: required (/var/run/reboot-required), skipped (--no-reboot)" in r.stdout
    want = (f": admission denied: ram {mem_mb * 90 // 100 - 100} MB pledged + 512 "
            f"requested > 90% of {mem_mb} MB ({mem_mb * 90 // 100} MB)")
    assert want in r.stderr, r.stderr
    assert not hv.exists(SLICE)
    assert not hv.exists("/var/lib/libvirt/images")


def test_help_describes_create_vm():
    r = subprocess.run([HOST_BIN, "help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "create-vm  --hypervisor H[:PORT] --username U" in r.stdout
    r = subprocess.run([HOST_BIN, "create-vm", "--help"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0
    for word in ("--iso PATH_OR_URL --iso-sha256 HEX", "/dev/kvm", "sshd -t", "90%",
                 "cpu >= 1, ram >= 512, osdisk >= 5, datadisk >= 1"):
        assert word in r.stdout, r.stdout


def test_after_kvm_the_iso_is_sent_and_virt_install_runs(kvm_hv, iso, tmp_path):
    path, sha = iso
    args = vm_args(path, sha, str(tmp_path / "cache"), str(tmp_path))
    kvm_hv.sh("mkdir -p /etc/convocate-hypervisor/vms")  # there, but no VM yet
    r = create_vm(kvm_hv, *args)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "pledges: 0 VMs: 0 CPUs, 0 MB RAM, 0 GB disk" in r.stdout
    assert "/dev/kvm: present" in r.stdout and "kvm packages: unchanged" in r.stdout
    target_iso = f"/var/lib/libvirt/images/convocate-ubuntu-{sha[:16]}.iso"
    assert f"{target_iso}: created" in r.stdout, r.stdout
    assert kvm_hv.sh(f"sha256sum {target_iso}").split()[0] == sha
    assert re.search(r"upload: 3\.0 / 3\.0 MiB +100%", r.stderr), r.stderr  # the bar's last line
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("convocate-host create-vm: virt-install: virt-install failed (exit 1)")
    assert "libvirt" in last or "socket" in last, last
    # no VM, so no pledge, and the name waits for the next run
    assert kvm_hv.sh("ls -A /etc/convocate-hypervisor/vms") == ""
    vm_name = kvm_hv.sh("cat /etc/convocate-hypervisor/next-vm-name").strip()

    r2 = create_vm(kvm_hv, *args)
    assert r2.returncode == 1
    assert f"{target_iso}: unchanged" in r2.stdout
    assert f"/var/lib/libvirt/images/{vm_name}-seed.iso: unchanged" in r2.stdout
