"""Event pipeline rows: agent -> status-serve -> feed subscriber. Load comes
from the agent's test-only op test-emit (the bench starts the agent with
--test-hooks); op -> event uses a real op, settings-set."""
import datetime
import json
import os
import time

import clients
from registry import Result, dist, median, row, value

RATE = 5000  # events/s for the sustained row
BURST = 8000  # fits the emitter queue (8192)


def _settings_event(e):
    return e.get("type") == "agent.settings"


@row("op -> event on the feed", order=50)
def op_to_event(ctx):
    """settings-set on a fresh paramiko channel, spaced 20 ms apart; the
    time until its agent.settings reaches the feed subscriber, next to the
    time until the op's own response reached the caller."""
    reader, client = ctx.reader, ctx.ours_client()
    n, warmup = ctx.n(100, 500), 5
    to_event, to_response, from_stamp = [], [], []
    wall_offset = time.time() - time.monotonic()
    seen = len(reader.matching(_settings_event))
    for i in range(n + warmup):
        pct = 50 + i % 46  # every value differs from the one before
        line = json.dumps({"op": "settings-set",
                           "params": {"admission_threshold_pct": pct}}).encode() + b"\n"
        t0 = time.monotonic()
        resp = clients.call(client, line)
        t1 = time.monotonic()
        assert json.loads(resp)["ok"], resp
        hits = reader.wait_for(_settings_event, count=seen + 1, timeout=10)
        assert len(hits) > seen, "agent.settings never reached the feed"
        arrival, ev = hits[seen]
        assert ev["data"]["admission_threshold_pct"] == pct
        seen += 1
        if i >= warmup:
            to_event.append(arrival - t0)
            to_response.append(t1 - t0)
            from_stamp.append(arrival + wall_offset - _stamp(ev["timestamp"]))
        time.sleep(0.02)
    ctx.agent.ok("settings-set", {"admission_threshold_pct": 90})
    return [Result("op → event on the feed (settings-set)", dist(to_event), dist(to_response),
                   "the same op's RPC response (paramiko)",
                   note="goal: event p50 ≤ 5 ms; both clocks start when the client opens the "
                        "op's channel; the op writes settings.json before it publishes"),
            Result("publish → feed subscriber (same events)", dist(from_stamp), None,
                   "— (pipeline alone)",
                   note="from the timestamp the emitter stamps (wall clock, whole ms, so up to "
                        "1 ms high) to the subscriber's read: sender, SSH, status-serve, feed")]


def _stamp(rfc3339):
    """Seconds since the epoch of an emitter timestamp (ms, UTC)."""
    t = datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def _event_line(agent_id, seq, count, tag):
    """A line of the size test-emit sends, for the transport reference."""
    return json.dumps({"type": "test.load", "agent_id": agent_id,
                       "timestamp": "2026-01-01T00:00:00.000Z",
                       "data": {"tag": tag, "seq": seq, "count": count}},
                      separators=(",", ":")) + "\n"


def _reference_rates(ctx, n, rounds):
    """The same bytes through OpenSSH into the C sink, which times them
    from its first byte to EOF: the transport alone, at its best."""
    a, r = ctx.agent, ctx.reference
    data = "".join(_event_line(a.agent_id, i, n, "rate") for i in range(n)).encode()
    mux = clients.Mux(r.port, a.client_key, r.user, r.known_hosts,
                      os.path.join(ctx.work, "mux-sink"))
    rates = []
    try:
        for _ in range(rounds):
            lines, us = mux.call(data, subsystem="convocate-sink").split()
            assert int(lines) == n, (lines, n)
            rates.append((n - 1) / (float(us) / 1e6))
    finally:
        mux.close()
    return rates


@row("events/s, agent -> feed subscriber", order=60)
def events_per_second(ctx):
    """Bursts of BURST events (within the queue's 8192, so none may drop),
    each timed from its first to its last arrival at the subscriber."""
    reader, client = ctx.reader, ctx.ours_client()
    reader.keep = False  # tally only
    rounds, rates, dropped = ctx.n(5, 20), [], 0
    for i in range(rounds):
        tag = f"rate{i}"
        line = json.dumps({"op": "test-emit", "params": {"count": BURST, "tag": tag}}).encode()
        res = json.loads(clients.call(client, line + b"\n"))["result"]
        got, first, last = reader.wait_tally(("test.load", tag), BURST, timeout=60)
        assert got == BURST, f"{got} of {BURST} arrived"
        rates.append((BURST - 1) / (last - first))
        dropped = res["dropped"]
    theirs = _reference_rates(ctx, BURST, rounds)
    return Result("events/s, agent → feed subscriber", value(median(rates), "events/s", rounds),
                  value(median(theirs), "events/s", rounds),
                  "same bytes through OpenSSH `ssh -s` into a C sink (transport only)",
                  note=f"median of {rounds} bursts of {BURST:,} events, first to last arrival "
                       f"(ours {min(rates):,.0f}..{max(rates):,.0f}); agent queue drops {dropped}; "
                       "goal ≥ 20,000 events/s. Ours includes the agent's encoding and queue, "
                       "status-serve's parse and fan-out, and the subscriber's reads",
                  higher_is_better=True)


@row("drops at 5,000 events/s sustained", order=70)
def drops_sustained(ctx):
    reader = ctx.reader
    reader.keep = False
    seconds = ctx.n(10, 60)
    n, tag = RATE * seconds, "sustained"
    before = ctx.agent.ok("test-emit", {"count": 1, "tag": "probe"})["dropped"]
    res = ctx.agent.ok("test-emit", {"count": n, "rate": RATE, "tag": tag},
                       timeout=seconds + 120)
    got, first, last = reader.wait_tally(("test.load", tag), n, timeout=60)
    dropped = res["dropped"] - before
    lost = n - got
    slow = "too slow" in ctx.pair.status_text()
    return Result(f"events dropped at {RATE:,} events/s for {seconds} s", value(lost, "events", n),
                  None, "goal: 0",
                  note=f"{got:,} of {n:,} reached the feed subscriber; the agent's queue "
                       f"dropped {dropped}; status-serve dropped a slow subscriber: "
                       f"{'yes' if slow else 'no'}; publishing took {res['elapsed_ms'] / 1000:.1f} s")
