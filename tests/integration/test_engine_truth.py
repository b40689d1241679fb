"""Issue 11, engine truth: attach through the Engine API (no docker CLI
process per attach, the terminal at the header's size every time) and the
agent following the engine's event stream (container.stopped/started for
what happens outside the agent, with the right `by` and `oom`)."""
import json
import os
import random
import re
import subprocess
import time

import pexpect

from agent_helpers import create_ok, restart_ok
from conftest import SHELL_BIN, docker, register_agent

# tput inside tmux, then the tmux client's own size (what the header set),
# behind a nonce: tmux redraws earlier attaches' output on attach.
SIZE_PROBE = ('echo "SZ-{nonce}=$(tput cols)x$(tput lines)/'
              '$(tmux display -p \'#{{client_width}}x#{{client_height}}\')=ZS"')
SIZE_RE = r"SZ-{nonce}=(\d+)x(\d+)/(\d+)x(\d+)=ZS"


def children_of(pid):
    """(pid, comm) of every direct child of pid, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid:
            out.append((int(entry), comm))
    return out


def attach_at(shell_root, name, cols, rows, agent_pid):
    """Attaches with the shell's CLI under a cols x rows terminal, reads the
    sizes seen inside, checks the agent has no child process meanwhile,
    detaches. Returns (tput cols, tput lines, client w, client h, children)."""
    child = pexpect.spawn(SHELL_BIN, ["--root", shell_root, "attach", name],
                          dimensions=(rows, cols), timeout=60, encoding="utf-8")
    try:
        child.expect(r"claude@convocate-")  # the shell's prompt inside tmux
        children = children_of(agent_pid)  # while the relay is live
        nonce = random.randrange(10**8)
        child.send(SIZE_PROBE.format(nonce=nonce) + "\r")
        child.expect(SIZE_RE.format(nonce=nonce))
        got = tuple(int(g) for g in child.match.groups())
        # Detach from inside (Ctrl-b d right after output can fall under
        # tmux's paste detection; test_attach.py covers the keys).
        child.send("tmux detach-client\r")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    return got + (children,)


def test_twenty_attaches_at_random_sizes_without_a_docker_process(start_agent, shell_root):
    agent = start_agent()
    register_agent(shell_root, agent)
    s = create_ok(agent, name="sizes")
    restart_ok(agent, s["uuid"])
    seed = int(time.time())
    rng = random.Random(seed)
    for i in range(20):
        cols, rows = rng.randint(40, 200), rng.randint(10, 60)
        tcols, tlines, cw, ch, children = attach_at(shell_root, "sizes", cols, rows,
                                                    agent.proc.pid)
        where = f"attach {i} (seed {seed}) at {cols}x{rows}"
        print(where, tcols, tlines, cw, ch, children)
        assert (cw, ch) == (cols, rows), f"{where}: tmux client is {cw}x{ch}"
        # tmux keeps its status line: the shell inside has one row less.
        assert (tcols, tlines) == (cols, rows - 1), f"{where}: tput says {tcols}x{tlines}"
        assert not [c for c in children if "docker" in c[1]], f"{where}: {children}"
        assert children == [], f"{where}: the agent has child processes {children}"
    # Every relay ended and no tmux client was left behind in the container.
    deadline = time.monotonic() + 15
    while agent.ok("get", {"id": s["uuid"]})["attached"] != 0:
        assert time.monotonic() < deadline, "the attach count never dropped to 0"
        time.sleep(0.2)
    clients = docker("exec", "-u", "claude", f"convocate-session-{s['uuid']}", "tmux",
                     "list-clients").stdout
    assert clients.strip() == "", clients
