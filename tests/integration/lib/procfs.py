"""Processes as /proc shows them: who is whose child, and a process's
memory. Shared by the tests and the bench (bench/ puts tests/integration
on sys.path). A process may go away while it is read; it is then left out."""
import os


def _parse_stat(text):
    """(ppid, comm) from a /proc/PID/stat line. comm is the text between the
    first '(' and the last ')': a command name may itself hold parentheses."""
    comm = text[text.index("(") + 1:text.rindex(")")]
    ppid = int(text[text.rindex(")") + 2:].split()[1])
    return ppid, comm


def processes():
    """(pid, ppid, comm) of every process on the machine."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid, comm = _parse_stat(f.read())
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        out.append((int(entry), ppid, comm))
    return out


def children_of(pid):
    """(pid, comm) of every direct child of pid."""
    return [(p, comm) for p, ppid, comm in processes() if ppid == pid]


def descendants(pid):
    """pid and every process below it."""
    children = {}
    for p, ppid, _ in processes():
        children.setdefault(ppid, []).append(p)
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def smaps_rollup_kib(pid):
    """The numeric fields of /proc/PID/smaps_rollup (Rss, Pss,
    Private_Clean, ...) in KiB; raises OSError when pid is gone."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1])
    return fields
