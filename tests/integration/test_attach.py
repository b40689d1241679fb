"""The attach relay (SPEC 9) through a second, independent SSH implementation
(paramiko), and the agent's concurrency rule (ENGINEERING.md): a slow `kill`
on one channel never holds up a `ping` on another channel or connection."""
import json
import os
import threading
import time

from lib import paramiko_rpc
from lib.agent_helpers import create_ok, home, pane_columns, restart_ok
from lib.common import docker
from lib.paramiko_attach import Attached, agent_transport
from lib.wait import wait_until

PING = paramiko_rpc.request_line("ping")


def rpc(transport, op, params=None, timeout=60):
    """The response as read up to its newline (the channel may stay open)."""
    return paramiko_rpc.rpc(transport, op, params, timeout=timeout, open_timeout=15,
                            until_newline=True)


def cols_in_session(agent, uuid, attached):
    """tput cols inside the session, read back through a file in its home."""
    answer = os.path.join(home(agent, uuid), "cols.txt")
    if os.path.exists(answer):
        os.unlink(answer)
    attached.type("tput cols > cols.tmp && mv cols.tmp cols.txt\r")
    wait_until(lambda: os.path.exists(answer), 30, "tput's answer", interval=0.2)
    with open(answer) as f:
        return int(f.read())


def test_attach_types_resizes_detaches_and_counts_operators(agent):
    s = create_ok(agent)
    t1, t2 = agent_transport(agent), agent_transport(agent)
    try:
        one = Attached(t1, s["uuid"])  # starts the stopped container
        one.read_until(b"claude@convocate-")  # the prompt inside tmux
        one.type("echo relay-$((6*7))\r")
        one.read_until(b"relay-42")
        # `docker exec -it` sizes the exec's terminal only once it runs (it
        # starts at 80 columns): the pane inside gets the 100 a moment later.
        wait_until(lambda: pane_columns(s["uuid"]) == 100, 30, "the pane to be 100 wide",
                   detail=lambda: f"{pane_columns(s['uuid'])} columns")
        assert cols_in_session(agent, s["uuid"], one) == 100
        one.chan.resize_pty(width=132, height=40)  # window-change
        wait_until(lambda: pane_columns(s["uuid"]) == 132, 30,
                   "the window-change to reach the pane",
                   detail=lambda: f"{pane_columns(s['uuid'])} columns")
        assert cols_in_session(agent, s["uuid"], one) == 132

        two = Attached(t2, s["uuid"], cols=132, rows=40)
        two.read_until(b"relay-42")  # the same tmux session, already drawn
        assert agent.ok("get", {"id": s["uuid"]})["attached"] == 2
        assert agent.ok("get", {"id": s["uuid"]})["state"] == "C"

        two.type("\x02d")  # Ctrl-b d
        assert two.closed_within(30), "detach did not end the relay"
        wait_until(lambda: agent.ok("get", {"id": s["uuid"]})["attached"] == 1, 15,
                   "the attach count to drop to 1", interval=0.2)
        one.type("\x02d")
        assert one.closed_within(30)
        wait_until(lambda: agent.ok("get", {"id": s["uuid"]})["attached"] == 0, 15,
                   "the attach count to drop to 0", interval=0.2)
        got = agent.ok("get", {"id": s["uuid"]})
        assert got["running"] is True and got["state"] == "R"  # detaching stops nothing
    finally:
        t1.close()
        t2.close()


def test_attach_to_unknown_session_gets_one_error_line(agent):
    t = agent_transport(agent)
    try:
        a = Attached(t, "0b5a0a3e-4b5c-4d6e-8f70-8192a3b4c5d6")
        a.read_until(b"\n", timeout=15)
        reply = json.loads(a.screen.split(b"\n")[0])
        assert reply["ok"] is False and "not found" in reply["error"]
        assert a.closed_within(10)
    finally:
        t.close()


def test_slow_kill_holds_up_no_ping(agent):
    s = create_ok(agent)
    restart_ok(agent, s["uuid"])
    # With its tmux server stopped, the entrypoint's SIGTERM handler hangs in
    # `tmux kill-server`, so the kill takes the engine's whole 10 s grace: a
    # thread that blocked on it would show here.
    docker("exec", f"convocate-session-{s['uuid']}", "pkill", "-STOP", "-f", "tmux new-session")
    t, other = agent_transport(agent), agent_transport(agent)
    try:
        done = {}

        def slow_kill():
            t0 = time.monotonic()
            done["reply"] = rpc(t, "kill", {"id": s["uuid"]})
            done["seconds"] = time.monotonic() - t0

        killer = threading.Thread(target=slow_kill)
        killer.start()
        # The kill is in flight: the engine's SIGTERM has reached the
        # entrypoint, which now hangs in `tmux kill-server`.
        wait_until(lambda: docker("exec", f"convocate-session-{s['uuid']}", "pgrep", "-f",
                                  "tmux kill-server", check=False).returncode == 0,
                   10, "the entrypoint to run tmux kill-server", interval=0.05)
        slowest = 0.0
        for transport in (t, other, t, other):  # same connection, then another
            t0 = time.monotonic()
            assert rpc(transport, "ping")["ok"] is True
            slowest = max(slowest, time.monotonic() - t0)
        still_killing = killer.is_alive()
        killer.join(60)
        assert done["reply"]["ok"] is True, done
        assert still_killing, f"kill took only {done['seconds']:.1f}s: nothing was proven"
        assert slowest < done["seconds"] / 2, (slowest, done["seconds"])
    finally:
        t.close()
        other.close()


def agent_fds(agent):
    """The agent's sockets, pipes and event fds: what a relay holds (its
    engine stream, wake pipes). Files are left out: the activity watcher
    opens the sessions' spools for a moment every few ms."""
    out = []
    for fd in os.listdir(f"/proc/{agent.proc.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{agent.proc.pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith(("socket:", "pipe:", "anon_inode:")):
            out.append(f"{fd}={target}")
    return sorted(out)


def steady_fds(agent, timeout=15):
    """The agent's fds once they stay the same for a second: the RPC
    connections the test's own calls made have closed by then."""
    last = agent_fds(agent)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = agent_fds(agent)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the agent's fds kept changing: {last}")


def one_attach_cycle(agent, uuid, by_detach):
    """One operator attaches, sees tmux's screen and leaves: by Ctrl-b d, or
    by their connection closing under them."""
    t = agent_transport(agent)
    try:
        a = Attached(t, uuid)
        a.read_until(b"\x1b[")  # tmux drew its first frame
        if by_detach:
            a.type("\x02d")
            assert a.closed_within(30), "Ctrl-b d did not end the relay"
    finally:
        t.close()


def test_twenty_attach_cycles_leave_no_fd_behind(agent):
    s = create_ok(agent)
    restart_ok(agent, s["uuid"])
    one_attach_cycle(agent, s["uuid"], by_detach=True)  # as in service: the paths have run
    wait_until(lambda: agent.ok("get", {"id": s["uuid"]})["attached"] == 0, 15, "no operator")
    before = steady_fds(agent)
    for i in range(20):
        one_attach_cycle(agent, s["uuid"], by_detach=i % 2 == 0)
    wait_until(lambda: agent.ok("get", {"id": s["uuid"]})["attached"] == 0, 15, "no operator")
    # The relays' engine streams close on worker threads just after the
    # channels end: wait for the count, then compare the fds themselves.
    wait_until(lambda: len(agent_fds(agent)) <= len(before), 15,
               f"the agent's fds to come back to {len(before)}",
               detail=lambda: f"before {before}\nnow {agent_fds(agent)}")
    after = steady_fds(agent)
    assert len(after) == len(before), (before, after)
