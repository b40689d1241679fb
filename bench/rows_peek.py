"""peek (SPEC 16) next to what its users run by hand: `docker exec -u claude
CONTAINER tmux capture-pane -p -e -J -t claude` with the docker CLI on the
agent's host. Ours is the peek RPC on a fresh channel of one persistent
connection (what the TUI's preview pane does every second, and what the
shell's registry does for `convocate peek`), and the whole `convocate peek
NAME` command (a new process, a new SSH connection, the cluster list, then
peek). A breakdown of the Engine API calls peek makes goes into the notes."""
import http.client
import json
import os
import socket
import subprocess
import tempfile
import time

import clients
from registry import Result, Skip, dist, median, row

from lib.agent import register_agent
from lib.agent_helpers import unique_name
from lib.common import DOCKER, SHELL_BIN

DOCKER_SOCK = "/var/run/docker.sock"


def _session(ctx):
    """One running session on the bench's agent, made once."""
    if getattr(ctx, "_peek_session", None) is None:
        if not ctx.agent.image:
            raise Skip("no session image (CONVOCATE_TEST_IMAGE)")
        s = _admitted(ctx.agent, "create", {"name": unique_name("bench-peek")})
        _admitted(ctx.agent, "restart", {"id": s["uuid"]})
        ctx._peek_session = s
    return ctx._peek_session


def _admitted(agent, op, params, timeout=300):
    """op, again while the agent refuses for CPU load (the machine is shared)."""
    deadline = time.monotonic() + timeout
    while True:
        resp = agent.rpc(op, params)
        if resp.get("ok") or not str(resp.get("error")).startswith("admission denied: cpu") \
                or time.monotonic() > deadline:
            assert resp.get("ok"), f"{op} {params}: {resp}"
            return resp.get("result")
        time.sleep(1)


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost")

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(DOCKER_SOCK)


def _engine(method, path, body=None):
    """One Engine API request on a new connection, as the agent makes them."""
    c = _UnixHTTP()
    data = json.dumps(body).encode() if body is not None else None
    c.request(method, "/v1.41" + path, body=data,
              headers={"Content-Type": "application/json"} if data else {})
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, out


def _engine_steps(container):
    """Seconds of each Engine API call of one peek, in the order made."""
    cmd = ["tmux", "display-message", "-p", "-t", "claude", "#{pane_width} #{pane_height}", ";",
           "capture-pane", "-p", "-e", "-J", "-t", "claude"]
    t = [time.perf_counter()]
    _engine("GET", f"/containers/{container}/json")
    t.append(time.perf_counter())
    status, out = _engine("POST", f"/containers/{container}/exec",
                          {"User": "claude", "AttachStdout": True, "AttachStderr": True,
                           "Tty": False, "Cmd": cmd})
    assert status == 201, out
    exec_id = json.loads(out)["Id"]
    t.append(time.perf_counter())
    _engine("POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": False})
    t.append(time.perf_counter())
    _engine("GET", f"/exec/{exec_id}/json")
    t.append(time.perf_counter())
    return [b - a for a, b in zip(t, t[1:])]


def _cli_root(ctx):
    """A shell root that knows only the bench's agent, for `convocate peek`."""
    root = tempfile.mkdtemp(prefix="cvb-peek-", dir=ctx.work)
    register_agent(root, ctx.agent)
    return root


@row("peek round trip", order=80)
def peek_round_trip(ctx):
    s = _session(ctx)
    container = f"convocate-session-{s['uuid']}"
    client = ctx.ours_client()
    line = json.dumps({"op": "peek", "params": {"id": s["uuid"]}}).encode() + b"\n"
    root = _cli_root(ctx)
    env = {k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", "JOURNAL_STREAM")}

    def rpc():
        resp = json.loads(clients.call(client, line))
        assert resp["ok"], resp

    def cli():
        r = subprocess.run([SHELL_BIN, "--root", root, "peek", s["name"]], capture_output=True,
                           env=env, timeout=60)
        assert r.returncode == 0, r.stderr

    def docker_cli():
        r = subprocess.run([DOCKER, "exec", "-u", "claude", container, "tmux", "capture-pane",
                            "-p", "-e", "-J", "-t", "claude"], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr

    n = ctx.n(40, 200)
    ours_rpc, ours_cli, theirs = clients.side_by_side([rpc, cli, docker_cli], n, warmup=5)
    steps = [_engine_steps(container) for _ in range(ctx.n(20, 100))]
    names = ["inspect container", "exec create", "exec start (process runs, stream ends)",
             "exec inspect (exit code)"]
    parts = ", ".join(f"{name} {median([st[i] for st in steps]) * 1000:.1f} ms"
                      for i, name in enumerate(names))
    ctx.note("Where peek's time goes",
             f"- Engine API calls of one peek, each on a new unix-socket connection as the "
             f"agent makes them (Python client, p50 of {len(steps)}): {parts}.")
    ref = "`docker exec -u claude C tmux capture-pane -p -e -J` (docker CLI)"
    return [Result("peek RPC, fresh channel on a held connection", dist(ours_rpc), dist(theirs),
                   ref, note="goal: p50 ≤ the docker CLI's; interleaved with the other two; what "
                             "the TUI's preview pane and the shell's registry do"),
            Result("`convocate peek NAME` (whole command)", dist(ours_cli), dist(theirs), ref,
                   note="a new process and SSH connection per call, the cluster list "
                        "(name → agent), then peek")]


@row("send round trip", order=81)
def send_round_trip(ctx):
    """send with Enter (a shell comment, so the pane's shell does nothing)
    next to the one docker exec that types the same: tmux's two commands in
    one process."""
    s = _session(ctx)
    container = f"convocate-session-{s['uuid']}"
    client = ctx.ours_client()
    text = "# convocate bench"
    line = json.dumps({"op": "send", "params": {"id": s["uuid"], "text": text}}).encode() + b"\n"

    def rpc():
        resp = json.loads(clients.call(client, line))
        assert resp["ok"], resp

    def docker_cli():
        r = subprocess.run([DOCKER, "exec", "-u", "claude", container, "tmux", "send-keys", "-t",
                            "claude", "-l", "--", text, ";", "send-keys", "-t", "claude",
                            "Enter"], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr

    ours, theirs = clients.side_by_side([rpc, docker_cli], ctx.n(40, 200), warmup=5)
    return Result("send RPC with Enter, fresh channel on a held connection", dist(ours),
                  dist(theirs), "`docker exec -u claude C tmux send-keys -l -- TEXT \\; "
                                "send-keys Enter` (docker CLI)",
                  note="interleaved; ours takes two execs, the text's, then the Enter's (in "
                       "one tmux command line Claude takes the burst for a paste and keeps the "
                       "Enter as a new line), as the reference's one-burst form would not "
                       "submit a prompt to Claude")
