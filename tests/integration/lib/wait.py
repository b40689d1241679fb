"""wait_until: the one way a test waits for something to happen (and
wait_for, its form for callers that fail with their own message)."""
import time


def _poll(predicate, timeout, interval):
    """predicate()'s first true value within timeout seconds, or None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def wait_until(predicate, timeout, what, interval=0.1, detail=None):
    """Calls predicate() every interval seconds until it returns a true
    value, and returns that value. Once timeout seconds have passed, fails
    with "timed out after <timeout> s waiting for <what>", followed by
    detail() when given (a log, the screen: whatever shows why)."""
    value = _poll(predicate, timeout, interval)
    if value is None:
        said = f"\n{detail()}" if detail is not None else ""
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{said}")
    return value


def wait_for(predicate, timeout, interval=0.1):
    """The same wait, returning None at the deadline instead of failing, for
    an `assert wait_for(...), <what went wrong>` that says more."""
    return _poll(predicate, timeout, interval)
