"""convocate-host init-shell / init-agent on directories of this machine, and
the small tools the pairing tests read those directories with."""
import grp
import os
import stat
import subprocess

from lib.common import HOST_BIN

SHELL_ETC = "etc/convocate"
AGENT_ETC = "etc/convocate-agent"


def host(*args, timeout=120):
    return subprocess.run([HOST_BIN, *args], capture_output=True, text=True, timeout=timeout)


def host_ok(*args):
    r = host(*args)
    assert r.returncode == 0, f"{args}: rc={r.returncode}\n{r.stdout}{r.stderr}"
    return r


def init_shell(shell, *extra):
    return host_ok("init-shell", "--root", shell, *extra)


def init_agent(shell, agent, *extra):
    return host_ok("init-agent", "--root", shell, "--agent-root", agent, *extra)


def p(root, rel):
    return os.path.join(root, rel)


def read(root, rel):
    with open(p(root, rel)) as f:
        return f.read()


def snapshot(*roots):
    """Every file and directory under the roots: content (a symlink's
    target), mode, owner."""
    out = {}
    for root in roots:
        for d, dirs, files in os.walk(root):
            for name in dirs + files:
                full = os.path.join(d, name)
                st = os.lstat(full)
                data = None
                if stat.S_ISREG(st.st_mode):
                    with open(full, "rb") as f:
                        data = f.read()
                elif stat.S_ISLNK(st.st_mode):
                    data = os.readlink(full)
                out[full] = (data, st.st_mode, st.st_uid, st.st_gid)
    return out


def agent_id(agent_root):
    return read(agent_root, f"{AGENT_ETC}/agent-id").strip()


def claude_gid():
    try:
        return grp.getgrnam("claude").gr_gid
    except KeyError:
        return 1337
