"""The plumbing of a shell and its agents in network namespaces: a bridge
for the shell's address, a namespace per agent behind a veth on it, and
the waits for status-serve's feed and an agent's listener. Shared by
lib/netcluster.py (tests) and bench/fleet.py (the fleet row), which name
their own devices and choose their own deadlines. Root only."""
import socket
import subprocess

from lib.wait import wait_until


def ip_batch(commands, namespace=None, force=False):
    """Runs `ip -batch -` (in namespace when given): one process for many
    commands, which counts with a hundred agents. force: go on past a
    failing line (for removing what may be half made). The result."""
    argv = ["ip"] + (["-n", namespace] if namespace else []) + (["-force"] if force else [])
    r = subprocess.run(argv + ["-batch", "-"], input="".join(f"{c}\n" for c in commands),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0 and not force:
        where = f" in namespace {namespace}" if namespace else ""
        raise RuntimeError(f"ip -batch{where} ({'; '.join(commands)}): rc={r.returncode}\n"
                           f"{r.stderr}")
    return r


def add_bridge(bridge, shell_ip):
    """A bridge holding shell_ip/24, up."""
    ip_batch([f"link add {bridge} type bridge",
              f"addr add {shell_ip}/24 dev {bridge}",
              f"link set {bridge} up"])


def add_namespace(ns, veth, bridge, agent_ip):
    """Namespace ns whose eth0 (agent_ip/24) is the peer of veth, a port of
    bridge; lo up too."""
    ip_batch([f"netns add {ns}",
              f"link add {veth} type veth peer name eth0 netns {ns}",
              f"link set {veth} master {bridge} up"])
    ip_batch([f"addr add {agent_ip}/24 dev eth0", "link set eth0 up", "link set lo up"],
             namespace=ns)


def wait_feed(proc, feed, timeout, log):
    """Until status-serve (proc) accepts on its local feed socket. A killed
    listener leaves its socket file behind, so this connects to be sure."""
    def feed_answers():
        assert proc.poll() is None, log()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(feed)
            return True
        except OSError:
            return False
    wait_until(feed_answers, timeout, f"status-serve's feed at {feed}", interval=0.05,
               detail=log)


def wait_listening(proc, ip, port, timeout, what, log):
    """Until something accepts TCP on ip:port while proc runs."""
    def listening():
        assert proc.poll() is None, log()
        try:
            with socket.create_connection((ip, port), timeout=0.5):
                return True
        except OSError:
            return False
    wait_until(listening, timeout, what, interval=0.05, detail=log)
