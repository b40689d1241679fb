"""Start rows: restart -> running (the session's tmux answers) next to
`docker run -d` of the same container config, in the same run.

Both sides end the same way: the bench runs `docker exec -u claude NAME tmux
has-session -t claude` back to back until it succeeds, from the moment the
command (our restart RPC, or `docker run -d`) returns. The reference's config
is our container's own, read back with `docker inspect` (image, mounts,
capabilities, cgroup parent, log driver, limits, env, labels), on a second
session's home so both start from the same files."""
import json
import os
import statistics
import subprocess
import time

from lib import paramiko_rpc
from registry import Result, Skip, dist, row

REF = "`docker run -d` (raw CLI), same config"
REF_AGENT = "bench-reference"  # the reference container's agent label: no agent follows it


def rpc(client, op, params=None):
    """One RPC on a fresh channel, no timeout (as clients.call); the response."""
    return paramiko_rpc.rpc(client, op, params)


def rpc_ok(client, op, params=None, tries=120):
    """A CPU admission refusal (the 2-core machine busy) is retried."""
    for _ in range(tries):
        resp = rpc(client, op, params)
        if resp.get("ok") or not str(resp.get("error", "")).startswith("admission denied: cpu"):
            break
        time.sleep(1)
    assert resp.get("ok"), f"{op} {params}: {resp}"
    return resp.get("result")


def docker(*argv, check=True):
    return subprocess.run(["docker", *argv], capture_output=True, text=True, check=check)


def wait_tmux(name, deadline_s=30):
    """Back-to-back `docker exec ... tmux has-session` until it answers."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        r = subprocess.run(["docker", "exec", "-u", "claude", name, "tmux", "has-session", "-t",
                            "claude"], capture_output=True)
        if r.returncode == 0:
            return
    raise AssertionError(f"{name}: tmux not ready within {deadline_s} s")


def wait_gone(name, deadline_s=30):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if docker("inspect", name, check=False).returncode != 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} still there after {deadline_s} s")


def run_argv(inspect, ours_uuid, ref_uuid):
    """`docker run -d` argv reproducing the inspected container's config,
    with the reference session's uuid in place of ours."""
    cfg, hc = inspect["Config"], inspect["HostConfig"]
    sub = (lambda s: s.replace(ours_uuid, ref_uuid))
    name = f"convocate-session-{ref_uuid}"
    argv = ["run", "-d", "--name", name, "--hostname", cfg["Hostname"], "-w", cfg["WorkingDir"]]
    if hc.get("AutoRemove"):
        argv.append("--rm")
    if cfg.get("Tty"):
        argv.append("-t")
    if cfg.get("OpenStdin"):
        argv.append("-i")
    for e in cfg.get("Env") or []:
        if not e.startswith("PATH="):
            argv += ["-e", sub(e)]
    argv += ["--label", f"convocate.session={ref_uuid}", "--label", f"convocate.agent={REF_AGENT}"]
    for m in hc.get("Mounts") or []:
        spec = f"type=bind,source={sub(m['Source'])},target={m['Target']}"
        argv += ["--mount", spec + (",readonly" if m.get("ReadOnly") else "")]
    for c in hc.get("CapDrop") or []:
        argv += ["--cap-drop", c]
    for c in hc.get("CapAdd") or []:
        argv += ["--cap-add", c]
    if hc.get("CgroupParent"):
        argv += ["--cgroup-parent", hc["CgroupParent"]]
    log = hc.get("LogConfig") or {}
    if log.get("Type"):
        argv += ["--log-driver", log["Type"]]
        for k, v in (log.get("Config") or {}).items():
            argv += ["--log-opt", f"{k}={sub(v)}"]
    if hc.get("NanoCpus"):
        argv += ["--cpus", str(hc["NanoCpus"] / 1e9)]
    if hc.get("Memory"):
        argv += ["--memory", str(hc["Memory"])]
    for d in hc.get("Dns") or []:
        argv += ["--dns", d]
    return argv + [cfg["Image"]]


def ref_dirs(inspect, ours_uuid, ref_uuid):
    """Bind sources of ours named after its uuid that the agent prepares at
    each start (the activity spool), as (ref path, mode, uid, gid)."""
    out = []
    for m in inspect["HostConfig"].get("Mounts") or []:
        src = m["Source"]
        if ours_uuid in src and os.path.isdir(src):
            st = os.stat(src)
            out.append((src.replace(ours_uuid, ref_uuid), st.st_mode & 0o7777, st.st_uid,
                        st.st_gid))
    return out


def make_dirs(dirs):
    for path, mode, uid, gid in dirs:
        os.makedirs(path, exist_ok=True)
        os.chown(path, uid, gid)
        os.chmod(path, mode)


def remove_references():
    ids = docker("ps", "-aq", "--filter", f"label=convocate.agent={REF_AGENT}", check=False)
    if ids.stdout.split():
        docker("rm", "-f", *ids.stdout.split(), check=False)


@row("restart -> running", order=50)
def restart_to_running(ctx):
    if not ctx.pair.agent.image:
        raise Skip("no session image (CONVOCATE_TEST_IMAGE)")
    client = ctx.ours_client()
    ours = rpc_ok(client, "create", {"name": "bench-start"})["uuid"]
    ref = rpc_ok(client, "create", {"name": "bench-start-ref"})["uuid"]
    ours_name, ref_name = f"convocate-session-{ours}", f"convocate-session-{ref}"
    remove_references()
    rpc_ok(client, "restart", {"id": ours})
    inspect = json.loads(docker("inspect", ours_name).stdout)[0]
    argv, dirs = run_argv(inspect, ours, ref), ref_dirs(inspect, ours, ref)
    rpc_ok(client, "kill", {"id": ours})

    parts = {"ours": [], "ref": []}  # (command, then the polls) per sample

    def start_ours():
        t0 = time.perf_counter()
        rpc_ok(client, "restart", {"id": ours}, tries=1)
        t1 = time.perf_counter()
        wait_tmux(ours_name)
        took = time.perf_counter() - t0
        parts["ours"].append((t1 - t0, took - (t1 - t0)))
        rpc_ok(client, "kill", {"id": ours})
        return took

    def start_ref():
        make_dirs(dirs)  # the agent's part of a start, done untimed for the reference
        t0 = time.perf_counter()
        r = docker(*argv, check=False)
        assert r.returncode == 0, f"docker run: {r.stderr}"
        t1 = time.perf_counter()
        wait_tmux(ref_name)
        took = time.perf_counter() - t0
        parts["ref"].append((t1 - t0, took - (t1 - t0)))
        docker("stop", ref_name)
        wait_gone(ref_name)
        return took

    a, b = [], []
    try:
        for _ in range(ctx.n(10, 30)):
            a.append(_retry_busy(start_ours))
            b.append(start_ref())
    finally:
        remove_references()
        for uuid in (ours, ref):
            rpc(client, "delete", {"id": uuid})
    _note_parts(ctx, parts)
    return Result("restart → running (tmux answers)", dist(a), dist(b), REF,
                  note="same image, mounts, caps, cgroup parent, log driver, env, 2 labels; "
                       "ready = `docker exec -u claude tmux has-session` succeeds, polled the "
                       "same way on both sides; interleaved")


def _note_parts(ctx, parts):
    sec = "Where restart → running's time goes"
    for side, what in (("ours", "convocate: the restart RPC (create, start, the agent's own "
                                "readiness probe) then"),
                       ("ref", "reference: `docker run -d` (CLI start, create, start) then")):
        cmd = statistics.median(p[0] for p in parts[side]) * 1000
        polls = statistics.median(p[1] for p in parts[side]) * 1000
        ctx.note(sec, f"- {what} the bench's `docker exec` polls: p50 {cmd:.0f} ms + "
                      f"{polls:.0f} ms (n={len(parts[side])}).")
    ctx.note(sec, "- One `docker exec -u claude NAME tmux has-session` (a CLI process, an exec "
                  "create, start and inspect) is the polling unit on both sides; the restart "
                  "returns only once tmux answers, so its first poll succeeds.")


def _retry_busy(fn, tries=120):
    for _ in range(tries):
        try:
            return fn()
        except AssertionError as e:
            if "admission denied: cpu" not in str(e):
                raise
            time.sleep(1)
    raise AssertionError("admission kept refusing: the machine is saturated")
