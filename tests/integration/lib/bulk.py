"""Many sessions on one real agent, fast: `create` RPCs (metadata only, no
container) over a few persistent SSH connections (paramiko, a fresh
channel per call as the shell does), in parallel. For the TUI at scale
(test_tui_scale.py) and its bench row (bench/rows_tui.py)."""
import threading
import time

from .paramiko_rpc import connect, rpc

BUSY = "admission denied: cpu"


def create_many(agent, names, workers=4, timeout=600):
    """Creates a session per name on agent; returns their UUIDs by name.
    A CPU admission refusal (a busy machine) is retried; any other error
    fails."""
    uuids, errors = {}, []
    lock = threading.Lock()
    deadline = time.monotonic() + timeout

    def work(part):
        client = connect("127.0.0.1", agent.port, agent.client_key, agent.known_hosts)
        try:
            for name in part:
                while True:
                    resp = rpc(client, "create", {"name": name}, timeout=120, open_timeout=30)
                    if resp.get("ok") or not str(resp.get("error", "")).startswith(BUSY):
                        break
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                with lock:
                    if resp.get("ok"):
                        uuids[name] = resp["result"]["uuid"]
                    else:
                        errors.append(f"{name}: {resp}")
                if errors:
                    return
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(names[i::workers],)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    return uuids
