"""convocate-agent's command line: help, version, usage errors (SPEC 2)."""
import re
import subprocess

from lib.common import AGENT_BIN


def run(*args):
    return subprocess.run([AGENT_BIN, *args], capture_output=True, text=True, timeout=30)


def test_help_forms_print_usage_and_exit_0():
    for form in ("help", "-h", "--help"):
        r = run(form)
        assert r.returncode == 0
        assert "usage: convocate-agent" in r.stdout
        assert "serve" in r.stdout and "install" in r.stdout


def test_version_is_stamped():
    r = run("version")
    assert r.returncode == 0
    assert re.fullmatch(r"convocate-agent version v\d+\.\d+\.\d+\n", r.stdout)


def test_usage_errors_exit_2_with_one_line():
    for args in ((), ("frobnicate",), ("serve", "--listen", "nowhere"),
                 ("serve", "--shell-port", "70000"), ("serve", "--no-such-flag"),
                 ("serve", "stray")):
        r = run(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.strip(), args


def test_serve_without_host_key_fails_clearly(tmp_root):
    r = subprocess.run([AGENT_BIN, "serve", "--root", tmp_root, "--listen", "127.0.0.1:1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    # Whatever it misses first (agent-id, host key), it names the file and the fix.
    assert tmp_root in r.stderr
    assert "convocate-agent install" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
