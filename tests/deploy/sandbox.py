"""Start one command in a container's root file system the way a pod's runtime would.

Run by :func:`tests.deploy.image.Sandbox.start` as
``unshare --mount --propagation private --pid --fork --kill-child -- python sandbox.py SPEC``,
so everything mounted here lives in a mount namespace of its own (gone with the last process in
it: nothing leaks to the host) and the command ends up as PID 1 of a PID namespace of its own,
as in a container. No network namespace: the command shares the host's loopback (a pod's
``hostNetwork``), which is how it reaches the test broker and the simulator.

SPEC is JSON: ``root`` (the file system), ``read_only`` (re-mount it read-only), ``tmpfs``
(path -> size, the pod's emptyDirs), ``binds`` (path -> host directory, mounted read-only: the
pod's Secret volumes), ``uid``, ``gid``, ``groups``, ``no_new_privileges``, ``workdir``,
``argv``, ``env``. The mount
points must exist in ``root`` already (the caller makes them, as a runtime does before it makes
the root read-only).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

PR_SET_NO_NEW_PRIVS = 38
#: The device nodes a container gets (bound from the host onto a fresh tmpfs /dev).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def mount(*args: str) -> None:
    """``mount ARGS`` (in this process's private mount namespace)."""
    subprocess.run(["mount", *args], check=True)


def main() -> None:
    spec = json.loads(sys.argv[1])
    root: str = spec["root"]
    mount("--bind", root, root)
    if spec["read_only"]:
        mount("-o", "remount,bind,ro", root)
    mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", f"{root}/proc")
    mount("-t", "tmpfs", "-o", "nosuid,mode=755,size=64k", "tmpfs", f"{root}/dev")
    for device in DEVICES:
        node = f"{root}/dev/{device}"
        Path(node).touch()  # the mount point
        mount("--bind", f"/dev/{device}", node)
    for path, size in spec["tmpfs"].items():
        mount("-t", "tmpfs", "-o", f"nosuid,nodev,mode=1777,size={size}", "tmpfs", root + path)
    for path, source in spec["binds"].items():
        mount("--bind", source, root + path)
        mount("-o", "remount,bind,ro,nosuid,nodev", root + path)
    os.chroot(root)
    os.chdir(spec["workdir"])
    os.setgroups(spec["groups"])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])  # a non-zero uid drops every capability
    no_new_privs = spec["no_new_privileges"]  # allowPrivilegeEscalation: false
    if no_new_privs and ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    argv: list[str] = spec["argv"]
    os.execvpe(argv[0], argv, spec["env"])


if __name__ == "__main__":
    main()
