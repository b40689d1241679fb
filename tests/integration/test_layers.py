"""The layering of src/ (docs/architecture.md) is checked on every run:
scripts/check-layers.py passes on the tree as it is, and fails, naming the
file and line, on a planted include that points up or sideways."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECKER = os.path.join(REPO, "scripts", "check-layers.py")


def run_checker(src_dir):
    return subprocess.run([sys.executable, CHECKER, src_dir], capture_output=True, text=True)


@pytest.fixture
def tree():
    """A copy of src/ to plant includes in."""
    work = tempfile.mkdtemp(prefix="convocate-layers-")
    dst = os.path.join(work, "src")
    shutil.copytree(os.path.join(REPO, "src"), dst)
    yield dst
    shutil.rmtree(work, ignore_errors=True)


def plant(path, include):
    with open(path, "a") as f:
        f.write(f'\n#include "{include}"\n')


def test_the_tree_keeps_its_layers():
    r = run_checker(os.path.join(REPO, "src"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("where,include,way", [
    ("common/fileio.c", "proto/rpc.h", "up"),
    ("ssh/client.c", "engine/docker.h", "up"),
    ("engine/docker.c", "provision/plan.h", "sideways"),
    ("agent/ops.c", "shell/cli.h", "sideways"),
    ("proto/rpc.c", "nowhere/thing.h", "no layer"),
    ("host/vm/create_vm.c", "agent/store.h", "sideways"),
    ("shell/tui/view.c", "host/pki/ca.h", "sideways"),
])
def test_a_planted_include_fails_with_its_place(tree, where, include, way):
    path = os.path.join(tree, where)
    lines = sum(1 for _ in open(path))
    plant(path, include)
    r = run_checker(tree)
    assert r.returncode == 1
    assert f"{where}:{lines + 2}:" in r.stdout, r.stdout
    assert way in r.stdout
    assert "break the layering" in r.stderr


def test_an_include_into_a_lower_layer_is_fine(tree):
    plant(os.path.join(tree, "agent", "ops.c"), "provision/plan.h")
    plant(os.path.join(tree, "provision", "plan.c"), "ssh/keys.h")
    r = run_checker(tree)
    assert r.returncode == 0, r.stdout


def test_a_file_outside_every_layer_is_named(tree):
    os.makedirs(os.path.join(tree, "misc"))
    open(os.path.join(tree, "misc", "x.c"), "w").write("int x;\n")
    r = run_checker(tree)
    assert r.returncode == 1
    assert "misc/x.c: not inside a layer folder" in r.stdout
