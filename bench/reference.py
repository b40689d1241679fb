"""The OpenSSH reference, at its best.

OpenSSH's sshd on loopback runs the subsystem as a dedicated non-root user
whose login shell is /bin/sh (dash), and the subsystem is a compiled C
program (bench/responder.c): per channel, sshd forks, `sh -c` execs the
responder, which answers one line. Measured as root instead, root's
~/.bashrc on these machines (pyenv init, ...) runs ~170 processes per
channel (bash sources ~/.bashrc when sshd starts it) and made the reference
look ~150x slower than it is; diagnose() shows where the time goes.

The user is created when missing and never removed (nothing of the
machine's is); an existing user with another shell is refused."""
import os
import pwd
import shutil
import subprocess
import time

from lib.common import free_port, wait_for_port
# descendants: the per-connection sshd processes were forked before any
# tracer attaches, so count_execs is given each by pid (rows_rpc.py).
from lib.procfs import descendants  # noqa: F401

USER = "convocate-bench"
HOME = "/var/lib/convocate-bench"
HERE = os.path.dirname(os.path.abspath(__file__))


def ensure_user():
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        # '*': no password, but not locked (sshd refuses "!" accounts without PAM).
        subprocess.run(["useradd", "--system", "--create-home", "--home-dir", HOME,
                        "--shell", "/bin/sh", "--password", "*", USER], check=True)
        pw = pwd.getpwnam(USER)
    if pw.pw_shell != "/bin/sh":
        raise RuntimeError(f"user {USER} exists with shell {pw.pw_shell}; the reference needs "
                           "/bin/sh (usermod -s /bin/sh convocate-bench)")
    return pw


def build(workdir, name, libs=()):
    """Compiles bench/<name>.c with the machine's cc into workdir."""
    out = os.path.join(workdir, name)
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out,
                    os.path.join(HERE, name + ".c"), *libs], check=True)
    os.chmod(out, 0o755)
    return out


class ReferenceSshd:
    """sshd with Subsystems convocate-agent-rpc (the responder) and
    convocate-sink (responder --sink); users: USER and, for diagnose()
    only, root."""

    def __init__(self, workdir, client_pub):
        if os.geteuid() != 0:
            raise RuntimeError("the OpenSSH reference needs root (sshd changes to its user)")
        ensure_user()
        self.dir = os.path.join(workdir, "reference")
        os.makedirs(self.dir)
        os.chmod(workdir, 0o711)  # the user execs the responder and reads its keys here
        os.chmod(self.dir, 0o711)
        self.user = USER
        self.port = free_port()
        self.responder = build(self.dir, "responder")
        # The store rows' references (bench/rows_store.py fills them in).
        self.list_file = os.path.join(self.dir, "list.json")
        self.create_script = os.path.join(self.dir, "create-ref.sh")
        host_key = os.path.join(self.dir, "host_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
        auth = os.path.join(self.dir, "authorized_keys")
        shutil.copy(client_pub, auth)
        os.chmod(auth, 0o644)
        self.conf = os.path.join(self.dir, "sshd_config")
        with open(self.conf, "w") as f:
            f.write(self._config(host_key, auth))
        os.makedirs("/run/sshd", exist_ok=True)
        self.log_path = os.path.join(self.dir, "sshd.log")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", self.conf],
                                     stderr=open(self.log_path, "w"))
        if not wait_for_port(self.port, self.proc):
            raise RuntimeError(f"reference sshd did not start; see {self.log_path}")
        with open(host_key + ".pub") as f:
            kind, blob = f.read().split()[:2]
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {kind} {blob}\n")

    def _config(self, host_key, auth):
        return f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {self.dir}/sshd.pid
AuthorizedKeysFile {auth}
AllowUsers {USER} root
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PrintMotd no
Subsystem convocate-agent-rpc {self.responder}
Subsystem convocate-sink {self.responder} --sink
Subsystem convocate-list {self.responder} --cat {self.list_file}
Subsystem convocate-create /bin/sh {self.create_script}
"""

    def pid(self):
        return self.proc.pid

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def version():
    r = subprocess.run(["/usr/sbin/sshd", "-V"], capture_output=True, text=True)
    return (r.stderr or r.stdout).strip().split(",")[0]


def spawn_cost(workdir, responder, n):
    """fork + exec of `/bin/sh -c responder`, request written, answer read,
    reaped (bench/spawncost.c): the process work each reference channel
    does, without sshd. Seconds per run."""
    prog = build(workdir, "spawncost")
    r = subprocess.run([prog, str(n), responder], capture_output=True, text=True, check=True)
    return [float(x) / 1e6 for x in r.stdout.split()]


def threads(pid):
    """Every thread of a process (strace -p attaches to one thread only)."""
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


def count_execs(pids, calls, call, out):
    """Runs call() calls times under strace attached to pids (and what they
    start) and returns (processes or threads created per call, programs
    exec'd per call, the most common programs). None without strace."""
    if shutil.which("strace") is None:
        return None
    attach = [a for p in pids for a in ("-p", str(p))]
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=execve,clone,clone3,fork,vfork",
                               "-e", "signal=none",
                               "-o", out, *attach],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached
    try:
        for _ in range(calls):
            call()
    finally:
        tracer.terminate()
        tracer.wait()
    programs, forks = {}, 0
    with open(out, errors="replace") as f:
        for line in f:
            # A call another process interrupts ends on a later "resumed" line:
            # count every exec that did not fail.
            if 'execve("' in line and "= -1" not in line:
                prog = line.split('execve("', 1)[1].split('"', 1)[0]
                programs[prog] = programs.get(prog, 0) + 1
            elif "fork" in line or "clone" in line:
                ret = line.rstrip().rsplit("= ", 1)[-1]
                forks += ret.isdigit() and int(ret) > 0
    os.unlink(out)
    total = sum(programs.values())
    top = sorted(programs.items(), key=lambda kv: -kv[1])[:6]
    return forks / calls, total / calls, [(os.path.basename(p), c / calls) for p, c in top]
