"""A 60 s network partition between an agent host and the shell (issue 11):
the agent's link is cut (its veth on the shell's bridge taken down) while it
has sessions, a TUI shows them and a feed subscriber listens. During the cut
the TUI marks the agent as down; after the heal the agent's status link is
back within 31 s (SPEC 5: redial backoff 1 s doubling to at most 30 s), the
same TUI process shows the agent's rows again, and nothing was restarted."""
import os
import re
import time

import pytest

from lib.netcluster import NetCluster
from lib.pipeline_pair import FeedReader
from lib.wait import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

CUT_S = 60
# The longest backoff step is 30 s between dial attempts; one more second
# covers the attempt itself (TCP and SSH handshakes on this machine).
RECONNECT_BOUND_S = 31
DOWN = r"(SILENT|UNREACHABLE|NOT ANSWERING)"


def tui_pid(t):
    """The process in the TUI's tmux pane: the convocate TUI itself."""
    return int(t.tmux("display-message", "-p", "#{pane_pid}").stdout.strip())


def agent_live_events(reader, agent_id, live, after):
    return [(at, e) for at, e in reader.matching(
        lambda e: e["type"] == "shell.agent" and e["agent_id"] == agent_id
        and e["data"]["live"] is live) if at >= after]


@pytest.fixture
def cluster(test_image):
    c = NetCluster(1, test_image)
    try:
        c.start_status()
        c.agents[0].start()
        c.wait_connected()
        yield c
    finally:
        c.cleanup()


def test_a_60_s_partition_heals_within_the_backoff_bound(cluster, tui_factory):
    c, a = cluster, cluster.agents[0]
    # Heartbeats every 5 s: the sender notices the dead link within seconds,
    # so its backoff climbs to the 30 s cap during the cut (the worst case),
    # and the shell calls the agent silent after 15 s.
    a.rpc("settings-set", {"heartbeat_s": 5})
    names = ["part-one", "part-two"]
    for name in names:
        c.convocate_ok("new", name, "--agent", a.agent_id)
    reader = FeedReader(c.feed)
    t = tui_factory(c.shell_root)
    try:
        for name in names:
            t.wait_row(name, "-")
        t.wait_text(f"{a.agent_id} up")
        pid = tui_pid(t)

        a.link(False)
        cut_at = time.monotonic()
        # During the cut: the TUI marks the agent, the feed says silent.
        t.wait(lambda s: re.search(rf"{a.agent_id} {DOWN}", s), CUT_S - 5, "the agent marked down")
        wait_until(lambda: agent_live_events(reader, a.agent_id, False, cut_at), CUT_S - 5,
                   "shell.agent live=false on the feed", detail=c.log)
        wait_until(lambda: "status: lost the shell" in a.log(), CUT_S - 5,
                   "the agent's sender to notice the cut", detail=a.log)
        assert tui_pid(t) == pid and t.alive()
        # The outage length is what this test puts the cluster through (long
        # enough for the backoff to reach its cap), so it is a bounded sleep.
        time.sleep(max(0.0, CUT_S - (time.monotonic() - cut_at)))
        assert re.search(rf"{a.agent_id} {DOWN}", t.screen()), t.screen()
        a.link(True)
        healed_at = time.monotonic()

        # The status link: the shell hears the agent again and says live.
        back = wait_until(lambda: agent_live_events(reader, a.agent_id, True, healed_at), 60,
                          "shell.agent live=true after the heal", detail=c.log)
        took = back[0][0] - healed_at
        print(f"\nstatus link back {took:.1f} s after the heal; the sender's side:")
        print("\n".join(x for x in a.log().splitlines() if "status:" in x or "dial " in x))
        assert took <= RECONNECT_BOUND_S, f"status link back only after {took:.1f} s\n{a.log()}"

        # The same TUI process shows the agent up and its rows known again.
        t.wait_text(f"{a.agent_id} up", timeout=60)
        for name in names:
            t.wait_row(name, "-", timeout=30)
        assert tui_pid(t) == pid and t.alive()
        assert not re.search(rf"{a.agent_id} {DOWN}", t.screen()), t.screen()
        # Nothing restarted: one listener start, the original process; the
        # feed subscriber's one connection lasted through it all.
        assert a.proc.poll() is None and a.log().count("listening on") == 1
        assert not reader.closed and c.status_proc.poll() is None
    finally:
        a.link(True)
        reader.close()
