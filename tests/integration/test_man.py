"""The man pages (docs/man/*.scd, built by meson with scdoc) against the
programs themselves: each page renders with `man -l` without a warning, and
every command and option a program's --help names is in its page's
synopsis and option lists, and the other way round. The bash completion
(completion/) offers every command and option of --help too.

What the help says is read from `PROG --help` and from `PROG CMD --help` for
each command that has its own usage text; what the page says, from the
lines of its SYNOPSIS, COMMANDS and *OPTIONS sections that start an item
(`*cmd* [*--opt* _ARG_]`), not from the prose."""
import os
import re
import subprocess
import tempfile

import pytest

from conftest import BUILD, REPO

PAGES = {"convocate": "1", "convocate-agent": "8", "convocate-host": "8"}

# Documented in the page ahead of their code (other changes of the same
# release add them). Tolerated while --help lacks them; once --help has one,
# this test fails until it is struck from here, so the list cannot outlive
# the merge.
AHEAD_OF_CODE = {
    "convocate": set(),
}

# SPEC 2: every program answers help, -h and --help.
ALWAYS = {"-h", "--help"}

# Long options anywhere; a short one only where options are listed: first on
# a line ("  -v, --verbose") or in brackets ("[-v]"), not "sshd -t" in prose.
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)(?![\w-])|(?:^\s*|\[)(-[a-zA-Z])(?![\w-])",
                    re.M)


def options_in(text):
    return {m.group(1) or m.group(2) for m in OPTION.finditer(text)}
HELP_COMMAND = re.compile(r"^  ([a-z][a-z0-9-]*)(?=\s|$)")


def program(name):
    return os.path.join(BUILD, "src", name)


def run_help(argv, root):
    env = dict(os.environ, CONVOCATE_ROOT=root, HOME=root)
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10, env=env,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None
    return r.stdout if r.returncode == 0 and r.stdout.startswith("usage:") else None


def help_of(name):
    """(commands, options, the help texts) of a program."""
    with tempfile.TemporaryDirectory() as root:
        main = run_help([program(name), "--help"], root)
        assert main, f"{name} --help printed no usage"
        commands, section_is_options = [], False
        for line in main.splitlines():
            if line and not line[0].isspace() and line.rstrip().endswith(":"):
                section_is_options = "option" in line or "remote" in line
                continue
            m = HELP_COMMAND.match(line)
            if m and not section_is_options and m.group(1) not in commands:
                commands.append(m.group(1))
        texts = [main]
        for cmd in commands:
            sub = run_help([program(name), cmd, "--help"], root)
            if sub and sub != main:
                texts.append(sub)
    options = set().union(*(options_in(t) for t in texts))
    return set(commands), options | ALWAYS, texts


def man_items(name):
    """(commands, options) from the item lines of the page's source."""
    path = os.path.join(REPO, "docs", "man", f"{name}.{PAGES[name]}.scd")
    commands, options, section = set(), set(), ""
    with open(path) as f:
        for line in f:
            if line.startswith("# "):
                section = line[2:].strip()
                continue
            if not line.startswith("*"):
                continue  # prose, indented descriptions, subheadings
            if section != "SYNOPSIS" and section != "COMMANDS" and "OPTIONS" not in section \
                    and "REMOTE" not in section:
                continue
            plain = re.sub(r"\\(.)", r"\1", line).replace("*", "").replace("_", "")
            options |= options_in(plain)
            if section == "COMMANDS":
                commands.add(plain.split()[0].split("|")[0])
    return commands, options


@pytest.mark.parametrize("name", sorted(PAGES))
def test_man_page_renders(name):
    page = os.path.join(BUILD, "docs", "man", f"{name}.{PAGES[name]}")
    assert os.path.exists(page), f"{page} was not built: install scdoc (make deps) and rebuild"
    env = dict(os.environ, LANG="C", LC_ALL="C", MANWIDTH="80", MANPAGER="cat", PAGER="cat")
    r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", f"man -l {page} warns:\n{r.stderr}"
    text = r.stdout
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "SEE ALSO"):
        assert re.search(rf"^{heading}$", text, re.M), f"{page}: no {heading} section"
    assert f"{name} -" in re.sub(r"\s+", " ", text), f"{page}: NAME line missing"


@pytest.mark.parametrize("name", sorted(PAGES))
def test_help_and_man_page_agree(name):
    help_commands, help_options, _ = help_of(name)
    man_commands, man_options = man_items(name)
    page = f"docs/man/{name}.{PAGES[name]}.scd"
    ahead = AHEAD_OF_CODE.get(name, set())
    problems = []
    for c in sorted(help_commands - man_commands):
        problems.append(f"command '{c}' is in `{name} --help` but has no item in {page} COMMANDS")
    for o in sorted(help_options - man_options):
        problems.append(f"option '{o}' is in `{name} --help` but in no synopsis or option "
                        f"item of {page}")
    for c in sorted(man_commands - help_commands - ahead):
        problems.append(f"command '{c}' has an item in {page} but is not in `{name} --help`")
    for o in sorted(man_options - help_options - ahead):
        problems.append(f"option '{o}' is in {page}'s synopsis or options but in no "
                        f"`{name} ... --help`")
    for item in sorted(ahead & (help_commands | help_options)):
        problems.append(f"'{item}' is in `{name} --help` now: strike it from AHEAD_OF_CODE "
                        f"in tests/integration/test_man.py")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(PAGES))
def test_completion_offers_every_command_and_option(name):
    commands, options, _ = help_of(name)
    with open(os.path.join(REPO, "completion", name)) as f:
        words = set(re.findall(r"(?<![\w-])[-\w]+", f.read()))
    missing = sorted((commands | options) - words - {"-h"})
    assert not missing, f"completion/{name} does not offer: {', '.join(missing)}"
