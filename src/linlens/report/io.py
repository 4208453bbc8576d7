"""Atomic writes: a report folder appears whole or not at all, and nothing a user has is overwritten.

Files are written into a temporary folder beside the destination (same file system), then published with
a rename that the operating system refuses when the destination exists (``renameat2(RENAME_NOREPLACE)`` on
Linux; elsewhere a lock folder created with ``os.mkdir`` serialises linlens runs, and a plain rename of a
folder fails on a non-empty destination). An existing destination is replaced only with ``force=True`` and
only when linlens wrote it (every report folder holds the marker file :data:`MARKER`; an empty folder is also
replaced): it is first renamed aside, the new folder is published, then the old one is removed. Any other
folder — a user's — is refused with ``--force`` too, and nothing in it is touched.

Temporary folders are removed on every exit Python can catch (exceptions, Ctrl-C, SIGTERM/SIGHUP, normal
interpreter exit); those of a run killed with ``kill -9`` are removed by the next run to the same
destination (their owner's process id is in their name). Folders are created with the user's umask (not
0700). :func:`check_destination` checks, before any computation, that the destination can be written.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import hashlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from linlens._results import json_safe
from linlens.errors import InputFileError, ReportExistsError

__all__ = [
    "check_destination",
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "json_safe",
    "dump_json",
    "split_arrays",
    "METRICS_ARRAY_LIMIT",
    "temp_folders",
    "MARKER",
    "is_linlens_report",
]

_TAG = ".linlens-"  # temporary names: .<name[:40]>.linlens-<hash of name>-<kind>-<pid>-<random>
_LIVE: set[Path] = set()  # temporary folders of this process (removed at exit)
#: the file every report folder holds, so that ``--force`` replaces only folders linlens wrote
MARKER = ".linlens-report"
NAME_MAX = 255
PATH_MAX = 4096


def dump_json(obj: Any) -> str:
    """JSON text of :func:`json_safe` ``(obj)``, indented.

    Example:
        >>> import numpy as np
        >>> print(dump_json({"r2": np.float64(0.5), "shape": (2, 3)}))
        {
          "r2": 0.5,
          "shape": [
            2,
            3
          ]
        }
    """
    return json.dumps(json_safe(obj), indent=2, allow_nan=False)


#: Numeric arrays (or lists of numbers) with more entries than this leave metrics.json for a ``.npy`` file beside it
#: (one number is ~25 bytes of indented JSON: 4096 entries ≈ 100 kB), so metrics.json stays small at any size.
METRICS_ARRAY_LIMIT = 4096


def _leaf(x: Any) -> Any:
    """A JSON-ready leaf as a number: None → NaN, {"re", "im"} → complex; lists recursively; else ValueError."""
    if x is None:
        return np.nan
    if isinstance(x, dict):
        if set(x) == {"re", "im"}:
            return complex(np.nan if x["re"] is None else x["re"], np.nan if x["im"] is None else x["im"])
        raise ValueError("not a number")
    if isinstance(x, (list, tuple)):
        return [_leaf(y) for y in x]
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, complex, np.number)):
        raise ValueError("not a number")
    return x


def _entries(v: Any) -> int:
    """Entries of a (nested) list, estimated from its first elements."""
    n = 1
    while isinstance(v, (list, tuple)) and v:
        n, v = n * len(v), v[0]
    return n


def _numeric_list(v: list | tuple) -> np.ndarray | None:
    """A list/tuple of numbers (None as NaN, {"re", "im"} as complex, nested rectangular lists too) as an array,
    else None."""
    try:
        a = np.array(_leaf(v))
    except (TypeError, ValueError):
        return None
    return a if a.dtype.kind in "biufc" else None


def split_arrays(obj: Any, limit: int = METRICS_ARRAY_LIMIT, path: str = "metrics") -> tuple[Any, dict[str, Any]]:
    """The rule that keeps metrics.json small: every numeric array (numpy, torch, or a list of numbers, also inside
    result objects' ``to_dict()``) with more than ``limit`` entries is replaced by
    ``{"npy": FILE, "shape": [...], "dtype": ...}`` and returned to be saved as FILE beside metrics.json
    (``np.load(folder / FILE)`` reads it back; NaN stands for JSON's null in a list that held None).

    Arguments:
        obj: the metrics (dicts, lists, arrays, result objects, scalars).
        limit: the most entries an array keeps in JSON.
        path: the name prefix of the files (keys joined by ".").

    Returns:
        (the metrics with the references, {file name: array}).

    Example:
        >>> m, files = split_arrays({"small": [1.0, 2.0], "big": {"x": np.arange(5000.0)}})
        >>> m["small"], m["big"]["x"]["npy"], m["big"]["x"]["shape"], list(files)
        ([1.0, 2.0], 'metrics.big.x.npy', [5000], ['metrics.big.x.npy'])
        >>> m, files = split_arrays({"H": [[{"re": 1.0, "im": 0.5}] * 100] * 50})  # nested, complex (as JSON'd)
        >>> m["H"]["shape"], files["metrics.H.npy"].dtype.kind
        ([50, 100], 'c')
    """
    files: dict[str, Any] = {}

    def name(p: str) -> str:
        base = "".join(c if c.isalnum() or c in "._-" else "_" for c in p)[:200]
        cand, i = base + ".npy", 1
        while cand in files:
            cand, i = f"{base}_{i}.npy", i + 1
        return cand

    def walk(v: Any, p: str) -> Any:
        if hasattr(v, "detach") and hasattr(v, "cpu"):  # torch tensor
            v = v.detach().cpu().numpy()
        if hasattr(v, "to_dict") and callable(v.to_dict):
            return walk(v.to_dict(), p)
        if isinstance(v, dict):
            return {k: walk(x, f"{p}.{k}") for k, x in v.items()}
        arr = None
        if isinstance(v, np.ndarray) and v.size > limit and v.dtype.kind in "biufc":
            arr = v
        elif isinstance(v, (list, tuple)) and _entries(v) > limit:
            arr = _numeric_list(v)
            if arr is not None and arr.size <= limit:
                arr = None
        if arr is not None:
            f = name(p)
            files[f] = arr
            return {"npy": f, "shape": list(arr.shape), "dtype": str(arr.dtype)}
        if isinstance(v, (list, tuple)):
            return [walk(x, f"{p}.{i}") for i, x in enumerate(v)]
        return v

    return walk(obj, path), files


# ------------------------------------------------------------------------------------------------ files
def _atomic_write(path: Path, data: bytes, force: bool) -> None:
    path = Path(path)
    if os.path.lexists(path) and not force:
        raise ReportExistsError(f"{path} exists; pass force=True (CLI: --force) to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; a report file gets the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails with EEXIST if path appeared meanwhile: never replaces
                os.unlink(tmp)
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links
                if os.path.lexists(path):
                    raise FileExistsError(path) from None
                os.replace(tmp, path)
    except FileExistsError:
        os.unlink(tmp)
        raise ReportExistsError(f"{path} appeared while writing; nothing was replaced") from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file; an existing file is replaced only with ``force``.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.bin"
        >>> atomic_write_bytes(path, b"one")
        >>> atomic_write_bytes(path, b"two")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        linlens.errors.ReportExistsError: ...
        >>> atomic_write_bytes(path, b"two", force=True)
        >>> path.read_bytes()
        b'two'
    """
    _atomic_write(Path(path), data, force)


def atomic_write_text(path: str | os.PathLike, text: str, force: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file; see :func:`atomic_write_bytes`.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.txt"
        >>> atomic_write_text(path, "σ = 1")
        >>> path.read_text(encoding="utf-8")
        'σ = 1'
    """
    _atomic_write(Path(path), text.encode("utf-8"), force)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------------- checks
def _prefix(dest: Path) -> str:
    h = hashlib.sha1(os.fsencode(dest.name)).hexdigest()[:12]
    return f".{dest.name[:40]}{_TAG}{h}-"


def temp_folders(path: str | os.PathLike) -> list[Path]:
    """The temporary (and set-aside) folders of runs writing to ``path`` that exist now, of any process.

    Example:
        >>> import tempfile
        >>> temp_folders(Path(tempfile.mkdtemp()) / "report")  # no run is writing there
        []
    """
    dest = Path(path)
    if not dest.parent.is_dir():
        return []
    pre = _prefix(dest)
    return sorted(p for p in dest.parent.iterdir() if p.name.startswith(pre))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(dest: Path) -> None:
    """Remove temporary folders left by crashed runs (dead process id) writing to ``dest``; a previous report
    that a crashed ``--force`` run had set aside is put back when ``dest`` is missing."""
    for p in temp_folders(dest):
        parts = p.name[len(_prefix(dest)):].split("-")
        if len(parts) != 3 or not parts[1].isdigit() or p in _LIVE:
            continue
        kind, pid = parts[0], int(parts[1])
        if _alive(pid) and not (pid == os.getpid() and p not in _LIVE):
            continue
        if kind == "old" and not os.path.lexists(dest):
            try:
                os.rename(p / "previous", dest)
            except OSError:
                pass
        shutil.rmtree(p, ignore_errors=True)


def is_linlens_report(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder linlens wrote (it holds the :data:`MARKER` file) or an empty folder.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "thesis.tex").write_text("years of work")
        >>> is_linlens_report(d)
        False
    """
    p = Path(path)
    if not p.is_dir() or p.is_symlink():
        return False
    if (p / MARKER).is_file() and not (p / MARKER).is_symlink():
        return True
    return not any(p.iterdir())


def _refuse_foreign(dest: Path) -> None:
    if not is_linlens_report(dest):
        raise ReportExistsError(f"--out: {dest} exists and is not a linlens report (no {MARKER} file in it); --force "
                                "replaces only folders linlens wrote, so nothing was deleted: choose another --out")


def _nearest_existing(p: Path) -> Path:
    q = p.parent
    while not os.path.lexists(q) and q != q.parent:
        q = q.parent
    return q


def check_destination(path: str | os.PathLike, force: bool = False) -> Path:
    """Check, before any long work, that a report folder can be written at ``path``.

    Refuses (one-line errors): an empty name; a name over 255 bytes or a path over 4096; a dangling symbolic
    link; an existing file; an existing folder without ``force``, or with ``force`` one that linlens did not
    write (no :data:`MARKER` file, not empty) (:class:`ReportExistsError`); a parent that
    is a file or cannot be written (probed by creating and removing a folder there, so read-only file
    systems are caught too). Temporary folders of crashed runs to the same destination are removed.

    Arguments:
        path: the destination folder (its parents are created when the report is written).
        force: an existing destination folder may be replaced.

    Returns:
        The destination as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> check_destination(d / "rep").name
        'rep'
    """
    raw = os.fspath(path)
    if not str(raw).strip():
        raise InputFileError("--out: the report folder name is empty")
    dest = Path(raw).expanduser()
    if len(os.fsencode(dest.name)) > NAME_MAX:
        raise InputFileError(f"--out: the folder name is {len(os.fsencode(dest.name))} bytes long; the limit is "
                             f"{NAME_MAX}")
    if len(os.fsencode(str(dest.absolute()))) >= PATH_MAX:
        raise InputFileError(f"--out: the path is longer than {PATH_MAX} bytes")
    if dest.is_symlink() and not dest.exists():
        raise InputFileError(f"--out: {dest} is a dangling symbolic link (to {os.readlink(dest)}); remove it or "
                             "choose another folder")
    if dest.exists():
        if not dest.is_dir():
            raise InputFileError(f"--out: {dest} exists and is not a folder")
        if not force:
            raise ReportExistsError(f"report folder {dest} exists; pass --force to overwrite it")
        _refuse_foreign(dest)
    anc = _nearest_existing(dest)
    if not anc.is_dir():
        raise InputFileError(f"--out: cannot create {dest}: {anc} is not a folder")
    if anc == dest.parent:
        probe = anc / f"{_prefix(dest)}probe-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.mkdir(probe)
            os.rmdir(probe)
        except OSError as exc:
            raise InputFileError(f"--out: cannot write in {anc}: {exc.strerror}") from None
        _clean_stale(dest)
    elif not os.access(anc, os.W_OK | os.X_OK):
        raise InputFileError(f"--out: cannot create folders in {anc}: permission denied")
    return dest


# ---------------------------------------------------------------------------------------------- publish
def _libc_renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    except OSError:
        return None


_RENAMEAT2 = _libc_renameat2()
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; raise FileExistsError when ``dst`` exists (checked by the OS)."""
    if _RENAMEAT2 is not None:
        r = _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if r == 0:
            return
        e = ctypes.get_errno()
        if e == errno.EEXIST:
            raise FileExistsError(e, os.strerror(e), str(dst))
        if e not in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
            raise OSError(e, os.strerror(e), str(dst))
    # fallback: a lock folder (os.mkdir is atomic) serialises linlens publishers; a folder renamed onto a
    # non-empty folder or a file fails, so a user's files are never replaced
    lock = dst.parent / f"{_prefix(dst)}lock-{0}-0"
    for _ in range(200):
        try:
            os.mkdir(lock)
            break
        except FileExistsError:
            threading.Event().wait(0.05)
    else:
        raise FileExistsError(errno.EEXIST, "another linlens run is publishing", str(dst))
    try:
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
        os.rename(src, dst)
    finally:
        os.rmdir(lock)


def _remove_live() -> None:
    for p in list(_LIVE):
        shutil.rmtree(p, ignore_errors=True)
        _LIVE.discard(p)


atexit.register(_remove_live)


def _raise_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def _signals_raise() -> Iterator[None]:
    """While writing: SIGTERM and SIGHUP raise SystemExit (so cleanup runs) instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):
            old[sig] = signal.signal(sig, _raise_exit)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _mkdir_temp(dest: Path, kind: str) -> Path:
    for _ in range(100):
        p = dest.parent / f"{_prefix(dest)}{kind}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.mkdir(p, 0o777)  # the umask applies, as for any folder the user creates
        except FileExistsError:
            continue
        _LIVE.add(p)
        return p
    raise InputFileError(f"cannot create a temporary folder beside {dest}")


@contextmanager
def atomic_dir(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it is published as ``path``, on any error (or a
    caught signal) it is removed.

    Publishing never replaces an existing ``path`` unless ``force`` (the operating system checks it at the
    moment of the rename): of two runs writing the same destination exactly one wins and the other raises
    :class:`ReportExistsError`, and a folder a user creates there meanwhile is left alone.

    Arguments:
        path: the destination folder (parents are created).
        force: replace an existing destination (only once the new folder is complete).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()) / "rep"
        >>> with atomic_dir(d) as tmp:
        ...     _ = (tmp / "a.txt").write_text("hi")
        >>> (d / "a.txt").read_text(), temp_folders(d)
        ('hi', [])
    """
    dest = check_destination(path, force)
    with _signals_raise():
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = _mkdir_temp(dest, "tmp")
            (tmp / MARKER).write_text("written by linlens; `--force` may replace this folder\n", encoding="utf-8")
        except OSError as exc:
            raise InputFileError(f"cannot create the report folder {dest}: {exc.strerror}") from None
        old: Path | None = None
        try:
            yield tmp
            try:
                _rename_noreplace(tmp, dest)
            except FileExistsError:
                if not force or not dest.is_dir():
                    raise ReportExistsError(f"report folder {dest} appeared while this run was writing (another "
                                            "run?); nothing was replaced; pass --force to overwrite it") from None
                _refuse_foreign(dest)  # checked again: the folder may have changed since check_destination
                old = _mkdir_temp(dest, "old")
                os.rename(dest, old / "previous")
                _rename_noreplace(tmp, dest)
            _LIVE.discard(tmp)
        except BaseException:
            if old is not None and (old / "previous").exists() and not os.path.lexists(dest):
                os.rename(old / "previous", dest)  # put the user's previous report back
            shutil.rmtree(tmp, ignore_errors=True)
            _LIVE.discard(tmp)
            raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
                _LIVE.discard(old)
