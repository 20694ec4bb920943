"""Removing what a monitor leaves behind: ipc socket dirs and shared-memory segments.

An orderly shutdown runs :func:`run_cleanup` itself. A supervisor killed with SIGKILL cannot,
and its children die with it (PDEATHSIG), so nobody would. Hence the *janitor*: a tiny
process in its own session that blocks reading a pipe whose only write end the supervisor
holds. When the supervisor goes away, however it goes, the read returns EOF; the janitor
gives the children a moment to die and then removes the same targets.

Only what this monitor created is a target: its socket *files*, the ipc directory only when the
monitor made it (and then only once empty: ``rmdir``, never a recursive delete, so a directory
the user also keeps data in survives), and shared-memory segments under this run's unique
prefix. The janitor also holds the instance lock (``lock_fd``) until it is done, so a newer
monitor of the same instance cannot start in the moment between a SIGKILL and the cleanup and
have its fresh sockets removed.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vadmon.runtime.instance_lock import release_instance_lock

SHM_DIR = Path("/dev/shm")


@dataclass
class Cleanup:
    """Targets removed on exit. ``paths`` and ``shm_prefixes`` are data so that the janitor
    can handle them too; ``hooks`` run only in an orderly shutdown."""

    paths: list[Path] = field(default_factory=list)
    shm_prefixes: list[str] = field(default_factory=list)
    hooks: list[Callable[[], None]] = field(default_factory=list)
    lock_fd: int | None = None  # held by the janitor too, until its cleanup is done
    lock_path: Path | None = None  # removed by the janitor, the lock's last holder

    def has_data_targets(self) -> bool:
        return bool(self.paths or self.shm_prefixes)


def remove_shm(prefix: str, shm_dir: Path = SHM_DIR) -> list[str]:
    """Unlink POSIX shared-memory segments whose name starts with ``prefix``."""
    if not prefix or "/" in prefix:
        raise ValueError(f"invalid shared-memory prefix {prefix!r}")
    removed = []
    for entry in shm_dir.glob(f"{prefix}*"):
        try:
            entry.unlink()
            removed.append(entry.name)
        except FileNotFoundError:
            pass
    return removed


def remove_path(path: Path) -> bool:
    """Remove a dead socket file, or a directory only when it is empty; missing is fine.

    Never recursive: a directory named here may be one the user also stores things in, and
    whatever vadmon put inside it is listed (and removed) as a file of its own first.
    """
    try:
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        elif not stat.S_ISSOCK(path.lstat().st_mode):
            return False  # our targets are sockets: a file of the same name is the user's
        elif socket_is_live(path):
            return False  # our children are gone: a live socket is another process's
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False  # someone else's files are in it: leave it
        raise
    return True


def socket_is_live(path: Path, timeout_s: float = 0.5) -> bool:
    """True when ``path`` is a unix socket some process accepts connections on."""
    try:
        if not stat.S_ISSOCK(path.lstat().st_mode):
            return False
    except OSError:
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout_s)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def run_cleanup(cleanup: Cleanup, run_hooks: bool = True) -> list[str]:
    """Remove everything; returns problems as text (cleanup must not abort shutdown)."""
    problems = []
    if run_hooks:
        for hook in cleanup.hooks:
            try:
                hook()
            except Exception as exc:  # a failing hook must not stop the others
                problems.append(f"cleanup hook {getattr(hook, '__name__', hook)}: {exc}")
    for path in cleanup.paths:
        try:
            remove_path(path)
        except OSError as exc:
            problems.append(f"remove {path}: {exc.strerror}")
    for prefix in cleanup.shm_prefixes:
        try:
            remove_shm(prefix)
        except OSError as exc:
            problems.append(f"remove shm {prefix}*: {exc.strerror}")
    return problems


ORDERLY = b"orderly"  # written by the supervisor before it releases the janitor after a clean stop


def start_janitor(
    cleanup: Cleanup, env: dict[str, str] | None = None
) -> tuple[int, subprocess.Popen]:
    """Start the janitor; returns (write_fd, process). Close write_fd to release it.

    The targets go through the janitor's stdin as JSON, not its argv: two paths per camera
    passed the kernel's argument limit (E2BIG) with many cameras."""
    read_fd, write_fd = os.pipe()
    argv = [sys.executable, "-m", "vadmon.runtime.cleanup", "--fd", str(read_fd)]
    keep = (read_fd,) if cleanup.lock_fd is None else (read_fd, cleanup.lock_fd)
    if cleanup.lock_fd is not None:
        argv += ["--hold-fd", str(cleanup.lock_fd)]
    targets = {
        "paths": [str(p) for p in cleanup.paths],
        "shm_prefixes": list(cleanup.shm_prefixes),
        "lock_path": None if cleanup.lock_path is None else str(cleanup.lock_path),
    }
    try:
        proc = subprocess.Popen(
            argv, pass_fds=keep, start_new_session=True, env=env, stdin=subprocess.PIPE
        )
    except BaseException:
        os.close(write_fd)
        raise
    finally:
        os.close(read_fd)
    assert proc.stdin is not None
    with proc.stdin:
        proc.stdin.write(json.dumps(targets).encode())
    return write_fd, proc


def janitor_main(argv: list[str] | None = None) -> int:
    """The janitor: read the targets from stdin, wait for the supervisor's end, clean up."""
    parser = argparse.ArgumentParser(prog="python -m vadmon.runtime.cleanup")
    parser.add_argument("--fd", type=int, required=True, help="pipe read end to wait on")
    parser.add_argument("--grace-s", type=float, default=0.5)
    parser.add_argument(
        "--hold-fd", type=int, default=None, help="the instance lock: kept open until done"
    )
    args = parser.parse_args(argv)
    try:  # {paths, shm_prefixes, lock_path}; a supervisor killed mid-write leaves a stub
        targets = json.loads(sys.stdin.buffer.read() or b"{}")
    except ValueError:
        targets = {}
    lock_path = Path(targets["lock_path"]) if targets.get("lock_path") else None
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # outlive the supervisor's signals; EOF ends us
    said = b""
    while True:  # returns b"" once every write end is closed
        try:
            chunk = os.read(args.fd, 4096)
        except InterruptedError:
            continue
        if not chunk:
            break
        said = (said + chunk)[-64:]
    paths = [Path(p) for p in targets.get("paths", [])]
    cleanup = Cleanup(paths=paths, shm_prefixes=list(targets.get("shm_prefixes", [])))
    # an orderly stop (the supervisor waited for its children and cleaned up) needs no grace;
    # a supervisor that died leaves children being killed by PDEATHSIG right now
    grace = 0.0 if said.endswith(ORDERLY) else args.grace_s
    time.sleep(grace)
    run_cleanup(cleanup, run_hooks=False)
    time.sleep(grace)  # a segment created in the last instant before death
    problems = run_cleanup(cleanup, run_hooks=False)
    for problem in problems:
        print(f"vadmon janitor: {problem}", file=sys.stderr)
    if args.hold_fd is not None and lock_path is not None:
        release_instance_lock(args.hold_fd, lock_path)  # a newer monitor may start now
    elif args.hold_fd is not None:
        os.close(args.hold_fd)
    return 0


if __name__ == "__main__":
    sys.exit(janitor_main())
