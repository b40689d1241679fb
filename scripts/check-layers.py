#!/usr/bin/env python3
"""Fails on an #include that points up or sideways between the layers of src/
(docs/architecture.md):

    common < proto < ssh < engine, provision < agent, shell, host

A file may include its own layer and any layer below it. engine and provision
sit side by side and may not include each other; agent, shell and host sit
side by side on top and never include one another. version.h (generated) and
system headers (<...>) are always allowed.

usage: check-layers.py [SRC_DIR]   (default: the src/ beside this script)
Prints one line per offending include and exits 1 when there is any."""
import os
import re
import sys

RANK = {"common": 0, "proto": 1, "ssh": 2, "engine": 3, "provision": 3,
        "agent": 4, "shell": 4, "host": 4}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
ALWAYS = {"version.h"}


def layer_of(relpath):
    top = relpath.split("/", 1)[0]
    return top if top in RANK else None


def allowed(src_layer, dst_layer):
    if src_layer == dst_layer:
        return True
    return RANK[dst_layer] < RANK[src_layer]


def check_file(src_dir, relpath):
    """Offending includes of one file, as printable lines."""
    src_layer = layer_of(relpath)
    bad = []
    with open(os.path.join(src_dir, relpath), encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if not m or m.group(1) in ALWAYS:
                continue
            target = m.group(1)
            dst_layer = layer_of(target)
            if dst_layer is None:
                # A path relative to the file's own folder stays in its layer;
                # anything else names no layer we know and is refused.
                if os.path.exists(os.path.join(src_dir, os.path.dirname(relpath), target)):
                    continue
                bad.append(f"{relpath}:{lineno}: includes \"{target}\", which is in no layer")
            elif not allowed(src_layer, dst_layer):
                way = "up" if RANK[dst_layer] > RANK[src_layer] else "sideways"
                bad.append(f"{relpath}:{lineno}: {src_layer}/ includes \"{target}\" "
                           f"({way}, into {dst_layer}/)")
    return bad


def check_tree(src_dir):
    bad = []
    for dirpath, _, names in sorted(os.walk(src_dir)):
        for name in sorted(names):
            if not name.endswith((".c", ".h")):
                continue
            relpath = os.path.relpath(os.path.join(dirpath, name), src_dir)
            if layer_of(relpath) is None:
                bad.append(f"{relpath}: not inside a layer folder ({', '.join(RANK)})")
                continue
            bad.extend(check_file(src_dir, relpath))
    return bad


def main(argv):
    src_dir = argv[1] if len(argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "src")
    bad = check_tree(src_dir)
    for line in bad:
        print(line)
    if bad:
        print(f"check-layers: {len(bad)} include(s) break the layering", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
