"""A tiny filesystem of its own for a test: a fresh ext4 on a loop device
(root only), and the means to fill it up."""
import contextlib
import errno
import os
import subprocess



@contextlib.contextmanager
def tiny_disk(parent, mib=8):
    """A fresh ext4 of mib MiB on a loop device, mounted at parent/disk;
    unmounted and its loop device detached afterwards, whatever happened."""
    img, mnt = os.path.join(parent, "disk.img"), os.path.join(parent, "disk")
    os.makedirs(mnt)
    with open(img, "wb") as f:
        f.truncate(mib << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "loop,nosuid,nodev", img, mnt], check=True,
                   capture_output=True)
    try:
        yield mnt
    finally:
        r = subprocess.run(["umount", mnt], capture_output=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        loops = subprocess.run(["losetup", "-j", img], capture_output=True, text=True).stdout
        for line in loops.splitlines():
            subprocess.run(["losetup", "-d", line.split(":")[0]], capture_output=True)


def fill(path):
    """Writes path until the disk refuses, then tiny files beside it until
    not even one more block is left."""
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 64 << 10, 4096, 1024):
            chunk = os.urandom(size)
            try:
                while True:
                    f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    i = 0
    try:
        while True:
            i += 1
            with open(f"{path}.{i}", "wb") as f:
                f.write(b"x")
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    os.sync()


def free_blocks(path):
    return os.statvfs(path).f_bfree


def remove_filler(mnt):
    for n in os.listdir(mnt):
        if n.startswith("filler"):
            os.remove(os.path.join(mnt, n))
