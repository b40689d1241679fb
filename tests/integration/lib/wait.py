"""wait_until: the one way a test waits for something to happen."""
import time


def wait_until(predicate, timeout, what, interval=0.1, detail=None):
    """Calls predicate() every interval seconds until it returns a true
    value, and returns that value. Once timeout seconds have passed, fails
    with "timed out after <timeout> s waiting for <what>", followed by
    detail() when given (a log, the screen: whatever shows why)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            said = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{said}")
        time.sleep(interval)
