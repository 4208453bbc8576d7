"""Atomic writes: a report folder appears whole or not at all, and nothing a user has is overwritten.

Files are written into a temporary sibling folder, then renamed into place. An existing destination is
replaced only with ``force=True`` (and then only after the new folder is complete).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from linlens._results import json_safe
from linlens.errors import InputFileError, ReportExistsError

__all__ = ["check_destination", "atomic_dir", "atomic_write_bytes", "atomic_write_text", "json_safe", "dump_json"]


def dump_json(obj: Any) -> str:
    """JSON text of :func:`json_safe` ``(obj)``, indented."""
    return json.dumps(json_safe(obj), indent=2, allow_nan=False)


def _atomic_write(path: Path, data: bytes, force: bool) -> None:
    path = Path(path)
    if path.exists() and not force:
        raise ReportExistsError(f"{path} exists; pass force=True (CLI: --force) to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    _atomic_write(Path(path), data, force)


def atomic_write_text(path: str | os.PathLike, text: str, force: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    _atomic_write(Path(path), text.encode("utf-8"), force)


def check_destination(path: str | os.PathLike, force: bool = False) -> Path:
    """Raise :class:`ReportExistsError` early (before long work) if ``path`` exists and ``force`` is off."""
    dest = Path(path)
    if dest.exists() and not force:
        raise ReportExistsError(f"report folder {dest} exists; pass --force to overwrite it")
    if dest.exists() and not dest.is_dir():
        raise InputFileError(f"{dest} exists and is not a folder")
    return dest


@contextmanager
def atomic_dir(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder; on success it is renamed to ``path``, on error it is removed.

    Arguments:
        path: the destination folder.
        force: replace an existing destination (only once the new folder is complete).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()) / "rep"
        >>> with atomic_dir(d) as tmp:
        ...     _ = (tmp / "a.txt").write_text("hi")
        >>> (d / "a.txt").read_text()
        'hi'
    """
    dest = check_destination(path, force)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    except OSError as exc:
        raise InputFileError(f"cannot create the report folder {dest}: {exc.strerror}") from None
    try:
        yield tmp
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
            os.replace(dest, old / "x")
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
