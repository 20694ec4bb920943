"""Every row of a feature list checked before any work: exists, loads, shape, all crops.

Why up front: a list of thousands of crop files used to fail at the first bad row it happened to
read (a Traceback from the length check, or one line halfway through epoch 1), after the model
was built and sometimes after an hour of training. Reading every file's header through ``mmap``
is cheap (the data pages are touched only by the finite check, once), so a missing file, a
truncated or corrupt array, a wrong width or a crop of another length is one line naming the
list row, before a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadmon.errors import VadmonError
from vadmon.research.annotations import read_list_csv
from vadmon.research.train_data import resolve_path

FIX = "re-run vadmon extract for that video, or fix/remove the row"
CHUNK_ROWS = 4096  # rows per finite check, so a long video never needs its array in memory


@dataclass(frozen=True)
class ListShape:
    """What the rows of a list agree on (after ``check_list_rows``)."""

    rows: int
    width: int
    snippets: dict[str, int]  # video name → snippets (equal across its crops)


def _row_array(path: Path, where: str) -> np.ndarray:
    if not path.is_file():
        raise VadmonError(f"feature file not found ({path})", where, FIX)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise VadmonError(
            f"cannot read feature file {path} ({str(exc)[:80]})", where, FIX
        ) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise VadmonError(f"feature file {path} is not a numeric array", where, FIX)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise VadmonError(
            f"feature file {path} has shape {tuple(arr.shape)}, expected [T, D] with T ≥ 1",
            where,
            FIX,
        )
    return arr


def _check_finite(arr: np.ndarray, path: Path, where: str) -> None:
    for start in range(0, arr.shape[0], CHUNK_ROWS):
        if not np.isfinite(arr[start : start + CHUNK_ROWS]).all():
            raise VadmonError(f"feature file {path} contains NaN or inf", where, FIX)


def check_list_rows(list_file: Path, width: int | None = None) -> ListShape:
    """Check every row of ``list_file``; ``width`` (when known) is the model's embedding width.

    Rows must agree on the width D, and the crops of one video on its snippet count (they are
    views of the same frames). The first bad row is one ``VadmonError`` at ``list:line``.
    """
    list_file = Path(list_file)
    first: tuple[int, str] | None = None  # (width, where)
    snippets: dict[str, tuple[int, str]] = {}
    entries = read_list_csv(list_file)
    for line, entry in enumerate(entries, start=2):
        where = f"{list_file}:{line}"
        path = resolve_path(entry.path, list_file)
        arr = _row_array(path, where)
        t, d = int(arr.shape[0]), int(arr.shape[1])
        if width is not None and d != width:
            raise VadmonError(
                f"features are {d}-wide but the model's CLIP embeds {width} ({path})",
                where,
                "extract features with the model's tower (vadmon extract), or use its checkpoint",
            )
        if first is None:
            first = (d, where)
        elif d != first[0]:
            raise VadmonError(
                f"features are {d}-wide but {first[1]} holds {first[0]}-wide ones ({path})",
                where,
                "one list must hold features of one tower",
            )
        seen = snippets.setdefault(entry.video, (t, where))
        if seen[0] != t:
            raise VadmonError(
                f"crop {path.name} has {t} snippets but another crop of {entry.video!r} "
                f"({seen[1]}) has {seen[0]}",
                where,
                FIX,
            )
        _check_finite(arr, path, where)
    if first is None:
        raise VadmonError("list file has no rows", str(list_file))
    return ListShape(len(entries), first[0], {k: v[0] for k, v in snippets.items()})
