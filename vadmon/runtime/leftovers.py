"""What a dead earlier run of the same instance left: its dead socket files, its shared-memory
segments, its ipc folder.

A SIGKILL of the supervisor *and* its janitor leaves them all, and nobody else would remove
them. The next start of that instance does, once the instance lock is its own: the lock is held
by every live supervisor and janitor of the instance, so holding it proves their owner dead.
Even then only sockets nobody accepts on are removed (``remove_path``), only segments under the
instance's prefix (a run's own prefix extends it), and the default ipc folder, which is
vadmon's, is handed to this run's exit cleanup; a configured folder stays the user's.
"""

from __future__ import annotations

import logging
from pathlib import Path

from vadmon.runtime.cleanup import SHM_DIR, remove_path, remove_shm

log = logging.getLogger("vadmon.supervisor")


def clear_leftovers(sockets: list[Path], shm_prefix: str, shm_dir: Path = SHM_DIR) -> int:
    """Remove dead sockets at our paths and segments of our instance; call holding its lock."""
    removed = sum(remove_path(path) for path in sockets if path.is_socket())
    removed += len(remove_shm(shm_prefix, shm_dir))
    if removed:
        log.warning("removed %d file(s) a dead earlier run of this instance left", removed)
    return removed
