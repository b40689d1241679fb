"""The shell's CLI (`convocate --root ...`), one-shot and attached under a
real terminal."""
import subprocess
import time

from lib.common import SHELL_BIN


def convocate(shell_root, *args, timeout=90, input=None, env=None):
    """Runs the shell's CLI (env: the whole environment, default ours); a
    CPU admission refusal is retried for a minute (see lib.agent.Agent.ok)."""
    deadline = time.monotonic() + 60
    while True:
        r = subprocess.run([SHELL_BIN, "--root", shell_root, *args], capture_output=True,
                           text=True, timeout=timeout, input=input, env=env)
        if "admission denied: cpu" not in r.stderr or time.monotonic() > deadline:
            return r
        time.sleep(1)


def convocate_ok(shell_root, *args, **kwargs):
    """convocate() that must succeed; returns the completed process."""
    r = convocate(shell_root, *args, **kwargs)
    assert r.returncode == 0, f"convocate {args}: {r.stderr}"
    return r


# The prompt of the session's shell: user claude on a container whose
# hostname is convocate-<first 8 hex digits of the session's UUID>.
SESSION_PROMPT = r"claude@convocate-[0-9a-f]{8}"


def attach_type_detach(program, args, typed, expect):
    """Attaches through a CLI under a 100x30 terminal, waits for the
    session's shell to draw its prompt, types a line into it, waits for
    expect on the screen, detaches with Ctrl-b d and returns the CLI's exit
    status."""
    import pexpect  # only the tests that attach need it
    child = pexpect.spawn(program, list(args), dimensions=(30, 100), timeout=60,
                          encoding="utf-8")
    try:
        child.expect(SESSION_PROMPT)
        child.send(typed + "\r")
        child.expect(expect)
        child.sendcontrol("b")
        child.send("d")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    return child.exitstatus
