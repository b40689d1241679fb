"""Memory rows: the agent's own memory at rest (USS: pages only it holds;
PSS: its share of shared pages too; RSS for the record) from
/proc/PID/smaps_rollup, next to the reference sshd listener at rest."""
import time

import clients
from lib import procfs
from registry import Result, row, value

REF = "OpenSSH sshd listener, idle"


def smaps_rollup(pid):
    """USS, PSS and RSS of pid in MB."""
    fields = procfs.smaps_rollup_kib(pid)
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {"USS": uss / 1024.0, "PSS": fields.get("Pss", 0) / 1024.0,
            "RSS": fields.get("Rss", 0) / 1024.0}


@row("agent idle memory", order=10)
def idle_memory(ctx):
    client = ctx.ours_client()
    for _ in range(10):  # the RPC path has run once, as in service
        clients.call(client, clients.PING)
    ctx.reference  # noqa: B018 (started, so both have been up a while)
    time.sleep(3)
    ours, theirs = smaps_rollup(ctx.agent.proc.pid), smaps_rollup(ctx.reference.pid())
    notes = {"USS": "goal ≤ 4 MB", "PSS": "", "RSS": "counts shared libraries in full"}
    return [Result(f"idle {k}", value(ours[k], "MB"), value(theirs[k], "MB"), REF, note=notes[k])
            for k in ("USS", "PSS", "RSS")]
