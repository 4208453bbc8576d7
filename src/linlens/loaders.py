"""Loading what users hand us — safely. Data files may be hostile: arrays load with ``allow_pickle=False``,
torch files with ``weights_only=True``, user text is never ``eval``-ed, array headers are read (and a
declared size checked against the file and the memory limit) before anything is allocated, and complex
numbers are refused the same way for every format.

Model files are code. A TorchScript file or a ``torch.export`` archive is a program: ``torch.export.load``
evaluates parts of the archive (symbolic expressions, pickled constants) and ``torch.jit.load`` runs
``__setstate__`` methods, before any inspection is possible. So :func:`load_model` loads them only with
``trust_model=True`` (CLI ``--trust-model``), and refuses them otherwise in one line that points to the safe
way: the architecture as ``package.module:attr`` in the user's own code, its weights loaded there with
:func:`load_weights` from a weights-only file (``.safetensors``, or a ``torch.save`` state dict read with
``weights_only=True``). A trusted file is still inspected, as a second line: a TorchScript archive defining
``__setstate__`` is refused before loading (archive names matched case-insensitively, every duplicated entry
read, as torch's reader may take the first), and the loaded graph (every method of every submodule, scripted
hooks, work started with ``torch.jit.fork``, calls inlined) is refused when it calls an operation touching
files, processes or the network or calling back into Python. A ``package.module:attr`` spec IMPORTS AND
RUNS that module's Python code: it is not inspected, so use it only for code you trust (your own).

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.npy"
    >>> np.save(p, np.ones((3, 2)))
    >>> load_array(p, "inputs").shape
    (3, 2)
"""

from __future__ import annotations

import mmap
import os
import warnings
import zipfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linlens.errors import (
    EmptyInputError,
    InputFileError,
    LinlensError,
    ModelError,
    NonFiniteError,
    ShapeError,
    UnsafeModelError,
    one_line,
)
from linlens.nn import resolve_device
from linlens.validation import check_finite, check_memory, check_real, import_attr

__all__ = ["load_array", "load_model", "load_weights", "npz_members", "load_npz_member", "stored_float_dtype",
           "inspect_model_ops", "iter_rows", "read_rows", "ARRAY_SUFFIXES", "SAFE_WAY", "CHUNK_VALUES"]

ARRAY_SUFFIXES = (".npy", ".npz", ".pt", ".pth", ".csv", ".txt")


def _single_from_mapping(d: Any, path: Path, name: str, preferred: tuple[str, ...]) -> Any:
    keys = list(d.keys())
    if not keys:
        raise EmptyInputError(f"{name}: {path} holds no arrays")
    for k in preferred:
        if k in keys:
            return d[k]
    if len(keys) == 1:
        return d[keys[0]]
    raise InputFileError(
        f"{name}: {path} holds several arrays {keys[:8]}; expected one, or one named {' or '.join(preferred)}"
    )


def _npy_header(fh: Any, where: str, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an .npy header, without reading the data."""
    try:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh, max_header_size=100_000)
    except Exception as exc:  # noqa: BLE001 - a corrupt header raises several types
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(f"{name}: cannot read {where}: {msg}") from None
    if dtype.hasobject:
        raise InputFileError(f"{name}: {where} holds Python objects (pickled); refusing to load it")
    return tuple(int(s) for s in shape), dtype


def _check_declared(shape: tuple[int, ...], dtype: np.dtype, stored: int | None, where: str, name: str,
                    max_bytes: int | None) -> None:
    """A header claiming more data than the file holds is refused, and so is one over the memory limit."""
    check_real(np.zeros(0, dtype=dtype), f"{name} ({where})")
    n = int(np.prod(shape, dtype=object))
    declared = n * dtype.itemsize
    if stored is not None and declared > stored:
        raise InputFileError(f"{name}: {where} declares a {'×'.join(map(str, shape))} {dtype} array "
                             f"({declared:,} bytes) but holds only {stored:,} bytes of data")
    check_memory(n * 8 * 2, f"{name}: loading {where} ({'×'.join(map(str, shape))} values as float64)",
                 max_bytes)


def load_array(
    path: str | os.PathLike,
    name: str = "inputs",
    *,
    ndim: int | None = 2,
    mmap: bool = False,
    finite: bool = True,
    preferred_keys: tuple[str, ...] = ("inputs", "X", "x", "arr_0"),
    max_bytes: int | None = None,
) -> np.ndarray:
    """Load a real numeric array from ``.npy``, ``.npz``, ``.pt``/``.pth`` (a tensor or a dict holding one)
    or ``.csv``/``.txt``.

    Text files: comma-separated, or whitespace-separated when the first data line has no comma; a UTF-8 BOM
    is ignored; the first line is a header only when none of its fields is a number and the next lines are
    all numbers (a first line with one typo is an error naming it, not a silently dropped row).

    Arguments:
        path: the file.
        name: how the array is called in error messages (e.g. ``"inputs"``, ``"reference"``).
        ndim: required dimensions (1-D inputs are *not* silently reshaped); None for any.
        mmap: memory-map ``.npy`` files instead of reading them (the finiteness check is then skipped here
            and must be done per chunk by the caller).
        finite: reject NaN/Inf.
        max_bytes: memory limit for what is read (default half the physical memory); a header declaring a
            bigger array, or more data than the file holds, is refused before anything is allocated.

    Returns:
        The array (float64 unless memory-mapped, which keeps the stored dtype).

    Raises:
        InputFileError: a missing, unreadable or malformed file.
        ComplexInputError: complex values, for every format.
        MemoryLimitError: more data than the memory limit.
        ShapeError: the wrong number of dimensions.
        EmptyInputError: no rows.
        NonFiniteError: NaN or Inf.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "y.csv"
        >>> _ = path.write_text("a,b\\n1,2\\n3,4\\n")
        >>> load_array(path).tolist()
        [[1.0, 2.0], [3.0, 4.0]]
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{name}: file not found: {p}")
    if p.is_dir():
        raise InputFileError(f"{name}: {p} is a folder, expected a file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            with open(p, "rb") as fh:
                shape, dtype = _npy_header(fh, str(p), name)
                stored = os.fstat(fh.fileno()).st_size - fh.tell()
            if mmap:
                check_real(np.zeros(0, dtype=dtype), f"{name} ({p})")
                if int(np.prod(shape, dtype=object)) * dtype.itemsize > stored:
                    _check_declared(shape, dtype, stored, str(p), name, max_bytes)
            else:
                _check_declared(shape, dtype, stored, str(p), name, max_bytes)
            a = np.load(p, allow_pickle=False, mmap_mode="r" if mmap else None)
        elif suffix == ".npz":
            a = _load_npz(p, name, preferred_keys, max_bytes)
        elif suffix in (".pt", ".pth"):
            try:
                obj = torch.load(p, map_location="cpu", weights_only=True, mmap=True)  # nothing allocated yet
            except RuntimeError:
                obj = torch.load(p, map_location="cpu", weights_only=True)  # legacy (non-zip) format
            if isinstance(obj, dict):
                obj = _single_from_mapping(obj, p, name, preferred_keys)
            if not isinstance(obj, torch.Tensor):
                raise InputFileError(f"{name}: {p} does not hold a tensor (found {type(obj).__name__})")
            check_real(obj, f"{name} ({p})")
            check_memory(obj.numel() * 8 * 2, f"{name}: loading {p} ({obj.numel():,} values as float64)", max_bytes)
            a = obj.detach().double().numpy()
        elif suffix in (".csv", ".txt"):
            check_memory(p.stat().st_size * 16, f"{name}: parsing the text file {p}", max_bytes)
            a = _load_csv(p, name)
        else:
            raise InputFileError(
                f"{name}: unsupported file type {suffix or '(none)'} for {p}; use one of {', '.join(ARRAY_SUFFIXES)}"
            )
    except LinlensError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputFileError(f"{name}: {p} holds Python objects (pickled); refusing to load it") from None
        raise InputFileError(f"{name}: cannot read {p}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # noqa: BLE001 - corrupt files raise anything; the user needs one line
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(f"{name}: cannot read {p}: {msg}") from None
    check_real(a, f"{name} ({p})")
    if not np.issubdtype(a.dtype, np.number) and a.dtype != np.bool_:
        raise InputFileError(f"{name}: {p} holds {a.dtype} values; expected real numbers")
    if ndim is not None and a.ndim != ndim:
        raise ShapeError(f"{name} must be {ndim}-D; {p} holds shape {tuple(a.shape)}")
    if a.size == 0:
        raise EmptyInputError(f"{name}: {p} holds an empty array of shape {tuple(a.shape)}")
    if not mmap or suffix != ".npy":
        a = np.asarray(a, dtype=np.float64)
        if finite:
            check_finite(a, f"{name} ({p.name})")
    return a


#: values per chunk of :func:`iter_rows` / :func:`read_rows` (32 MiB as float64)
CHUNK_VALUES = 2**22


def _release(a: np.ndarray) -> None:
    """Drop the pages of a memory-mapped array from this process (they stay in the page cache): read-only file
    pages touched by a chunk would otherwise count in the resident set until the kernel evicts them."""
    m = getattr(a, "_mmap", None)
    if isinstance(m, mmap.mmap) and hasattr(m, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        m.madvise(mmap.MADV_DONTNEED)


def iter_rows(a: np.ndarray, rows: Any = None, *, chunk_values: int = CHUNK_VALUES, name: str = "inputs",
              finite: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Rows of ``a`` (n, ...) — typically memory-mapped by ``load_array(..., mmap=True)``, in its stored dtype —
    as float64 chunks (positions in ``rows`` (k,), values (k, *a.shape[1:])) of at most ``chunk_values`` values
    (at least one row), each checked for NaN/Inf; a memory-mapped file's pages are released after each chunk, so
    the memory used is that of one chunk, whatever the file's size and dtype.

    Arguments:
        a: the array. rows: indices to read, in this order (None: all rows). chunk_values: values per chunk.
        name: how the array is called in errors. finite: refuse NaN/Inf (naming the row of ``a``).

    Example:
        >>> a = np.arange(12, dtype=np.float32).reshape(6, 2)
        >>> [(pos.tolist(), c.dtype.name, c.shape) for pos, c in iter_rows(a, [5, 0, 2], chunk_values=4)]
        [([0, 1], 'float64', (2, 2)), ([2], 'float64', (1, 2))]
    """
    idx = np.arange(len(a)) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    per_row = max(1, int(np.prod(a.shape[1:], dtype=np.int64)))
    step = max(1, int(chunk_values) // per_row)
    for s in range(0, len(idx), step):
        sel = idx[s:s + step]
        srt = np.argsort(sel, kind="stable")  # read the file forwards; put back in the asked order
        c = np.empty((len(sel), *a.shape[1:]), dtype=np.float64)
        c[srt] = a[sel[srt]]
        _release(a)
        if finite and not np.isfinite(c).all():
            bad = int(sel[np.argwhere(~np.isfinite(c.reshape(len(c), -1)))[0, 0]])
            raise NonFiniteError(f"{name} contains NaN/Inf values, first at row {bad}")
        yield np.arange(s, s + len(sel)), c


def read_rows(a: np.ndarray, rows: Any = None, *, chunk_values: int = CHUNK_VALUES, name: str = "inputs",
              finite: bool = True) -> np.ndarray:
    """``a[rows]`` as float64 (k, *a.shape[1:]), read chunk by chunk (:func:`iter_rows`): the memory used is the
    result's plus one chunk, not the whole (memory-mapped) file in float64.

    Example:
        >>> a = np.arange(6, dtype=np.float32).reshape(3, 2)
        >>> read_rows(a, [2, 0], chunk_values=2).tolist()
        [[4.0, 5.0], [0.0, 1.0]]
    """
    idx = np.arange(len(a)) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    out = np.empty((len(idx), *a.shape[1:]), dtype=np.float64)
    for pos, c in iter_rows(a, idx, chunk_values=chunk_values, name=name, finite=finite):
        out[pos] = c
    return out


def _load_npz(p: Path, name: str, preferred: tuple[str, ...], max_bytes: int | None) -> np.ndarray:
    try:
        zf = zipfile.ZipFile(p)
    except zipfile.BadZipFile:
        raise InputFileError(f"{name}: {p} is not an .npz (zip) archive") from None
    with zf:
        members = {n.removesuffix(".npy"): n for n in zf.namelist() if n.endswith(".npy")}
        if not members:
            raise EmptyInputError(f"{name}: {p} holds no arrays")
        keys = list(members)
        chosen = next((k for k in preferred if k in members), keys[0] if len(keys) == 1 else None)
        if chosen is None:
            _single_from_mapping(dict.fromkeys(keys), p, name, preferred)  # raises the "several arrays" error
        info = zf.getinfo(members[chosen])
        with zf.open(info) as fh:
            shape, dtype = _npy_header(fh, f"{p}[{chosen}]", name)
            header_len = fh.tell()
        _check_declared(shape, dtype, info.file_size - header_len, f"{p}[{chosen}]", name, max_bytes)
    with np.load(p, allow_pickle=False) as z:
        return np.asarray(z[chosen])


def stored_float_dtype(path: str | os.PathLike) -> np.dtype | None:
    """The floating dtype an ``.npy`` file stores (read from its header), or None (other formats, unreadable
    files, non-float data): a float32 matrix loaded as float64 keeps its own precision known.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npy"
        >>> np.save(p, np.ones(2, dtype=np.float32))
        >>> stored_float_dtype(p)
        dtype('float32')
    """
    p = Path(path)
    if p.suffix.lower() != ".npy" or not p.is_file():
        return None
    try:
        with open(p, "rb") as fh:
            _, dtype = _npy_header(fh, str(p), "array")
    except LinlensError:
        return None
    return dtype if dtype.kind == "f" else None


def npz_members(path: str | os.PathLike, name: str) -> list[str]:
    """The array names of an ``.npz`` archive, read from its directory only (no member is decompressed).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
        >>> np.savez(p, inputs=np.ones(2), labels=np.zeros(2))
        >>> npz_members(p, "--train")
        ['inputs', 'labels']
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{name}: file not found: {p}")
    try:
        with zipfile.ZipFile(p) as zf:
            return [n.removesuffix(".npy") for n in zf.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputFileError(f"{name}: {p} is not an .npz (zip) archive ({type(exc).__name__})") from None


def load_npz_member(path: str | os.PathLike, key: str, name: str, max_bytes: int | None = None) -> np.ndarray:
    """One array of an ``.npz``, in its stored dtype, reading only that member: its header is checked first
    (pickled objects refused, a declared size larger than the stored data or the memory limit refused), and
    the other members are never decompressed (an unused member that inflates to gigabytes costs nothing).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
        >>> np.savez(p, inputs=np.ones((2, 3)), labels=np.zeros(2, dtype=int))
        >>> load_npz_member(p, "labels", "--train").dtype.kind
        'i'
    """
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as zf:
            info = zf.getinfo(f"{key}.npy")
            with zf.open(info) as fh:
                shape, dtype = _npy_header(fh, f"{p}[{key}]", name)
                header_len = fh.tell()
            _check_declared(shape, dtype, info.file_size - header_len, f"{p}[{key}]", name, max_bytes)
            with zf.open(info) as fh:
                a = np.lib.format.read_array(fh, allow_pickle=False)
    except LinlensError:
        raise
    except KeyError:
        raise InputFileError(f"{name}: {p} holds no array named {key!r}") from None
    except Exception as exc:  # noqa: BLE001 - corrupt members raise anything; the user needs one line
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputFileError(f"{name}: cannot read {key!r} from {p}: {msg[:120]}") from None
    return a


def _load_csv(p: Path, name: str) -> np.ndarray:
    raw = p.read_bytes()
    text = raw.decode("utf-8-sig", errors="replace")  # utf-8-sig drops a byte-order mark
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise EmptyInputError(f"{name}: {p} is empty")
    probe = lines[1][1] if len(lines) > 1 else lines[0][1]
    sep: str | None = "," if ("," in probe or "," in lines[0][1]) else None  # None: any whitespace

    def tokens(line: str) -> list[str]:
        return [t.strip() for t in line.split(sep)]

    def number(tok: str) -> float | None:
        try:
            return float(tok)
        except ValueError:
            return None

    first = tokens(lines[0][1])
    parsed_first = [number(t) for t in first]
    start = 0
    if all(v is None for v in parsed_first) and len(lines) > 1:
        start = 1  # a header: no field is a number (the rows below must all be numbers)
    elif all(v is None for v in parsed_first):
        raise EmptyInputError(f"{name}: {p} has a header line but no rows of numbers")
    rows = []
    for lineno, line in lines[start:]:
        vals = []
        for tok in tokens(line):
            v = number(tok)
            if v is None:
                raise InputFileError(f"{name}: {p} line {lineno} has a non-numeric value {tok[:20]!r}")
            vals.append(v)
        rows.append(vals)
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise ShapeError(f"{name}: {p} has rows of different lengths {sorted(widths)[:5]}")
    return np.array(rows, dtype=np.float64)


# ------------------------------------------------------------------------------------- model inspection
_REFUSED: dict[str, str] = {
    "aten::from_file": "maps a file into memory (it can overwrite the file)",
    "aten::save": "writes a file",
    "prim::rpc_async": "talks to other processes over the network",
    "prim::rpc_sync": "talks to other processes over the network",
    "prim::rpc_remote": "talks to other processes over the network",
    "prim::PythonOp": "calls back into Python code",
    "prim::CallFunction": "calls a function the inspection cannot see",
    "prim::CallMethod": "calls a method the inspection cannot see",
}
_ALLOWED_NAMESPACES = ("aten", "prim")
_ALLOWED_PYTHON = {"_operator.getitem", "operator.getitem"}


@lru_cache(maxsize=1)
def _file_ops() -> frozenset[str]:
    """aten/prim operations with an argument naming a file (found from the registered schemas)."""
    names = set()
    for sch in torch._C._jit_get_all_schemas():
        if sch.name.split("::")[0] in _ALLOWED_NAMESPACES and any(
            a.name in ("filename", "file", "fname", "filepath") for a in sch.arguments
        ):
            names.add(sch.name)
    return frozenset(names)


def _refusal(op: str) -> str | None:
    """Why ``op`` is outside the allow-list, or None when it is an allowed tensor / control-flow op."""
    if op in _REFUSED:
        return _REFUSED[op]
    if op in _file_ops():
        return "reads or writes a file"
    if op.startswith("python::"):
        return None if op[len("python::"):] in _ALLOWED_PYTHON else "runs a Python function"
    ns = op.split("::")[0]
    if ns not in _ALLOWED_NAMESPACES:
        return f"is outside the allowed tensor operations (namespace {ns}::)"
    return None


def inspect_model_ops(model: Any) -> set[str]:
    """The operations a TorchScript module/function or a ``torch.export`` program runs, calls inlined.

    Arguments:
        model: a ``torch.jit.ScriptModule`` / ``ScriptFunction`` (its ``forward`` graph with every method it
            calls inlined) or a ``torch.export.ExportedProgram``.

    Returns:
        Operation names such as ``"aten::linear"``, ``"prim::If"``; Python callables in an exported graph as
        ``"python::module.name"``.

    Example:
        >>> import torch
        >>> sorted(inspect_model_ops(torch.jit.script(torch.nn.Linear(2, 1))))
        ['aten::linear', 'prim::GetAttr']
    """
    ops: set[str] = set()
    if isinstance(model, torch.export.ExportedProgram):
        for gm in model.graph_module.modules():
            graph = getattr(gm, "graph", None)
            for node in graph.nodes if graph is not None else []:
                if node.op == "call_function":
                    t = node.target
                    if isinstance(t, torch._ops.OpOverload):
                        ops.add(t.name().split(".")[0] if "." in t.name().split("::")[-1] else t.name())
                    elif isinstance(t, torch._ops.HigherOrderOperator):
                        ops.add(f"higher_order::{t.name()}")
                    else:
                        ops.add(f"python::{getattr(t, '__module__', '?')}.{getattr(t, '__name__', repr(t))}")
                elif node.op in ("call_module", "call_method"):
                    ops.add(f"python::{node.op}:{node.target}")
        return ops
    # (type, method) pairs walked: instances of one TorchScript type share their code. Not id(graph): each
    # _get_method(...).graph is a fresh temporary whose id the next method's graph could reuse (that skipped an
    # exported method calling aten::from_file under some hash seeds)
    seen: set[tuple[str, str]] = set()

    def walk_graph(graph: Any) -> None:
        g = graph.copy()
        torch._C._jit_pass_inline(g)  # calls of other methods and functions become their code
        walk(g.block())

    def walk(block: Any) -> None:
        for node in block.nodes():
            ops.add(node.kind())
            for sub in node.blocks():
                walk(sub)
            for attr in node.attributeNames():  # prim::fork / closures carry their code as a subgraph
                if node.kindOf(attr) == "g":
                    walk_graph(node.g(attr))
                elif node.kindOf(attr) == "gs":
                    for sg in node.gs(attr):
                        walk_graph(sg)

    modules = list(model.modules()) if isinstance(model, torch.jit.ScriptModule) else []
    if not modules:
        walk_graph(model.graph)
    for m in modules:  # every method of every submodule (not only forward), and its scripted hooks
        c = m._c
        for name in c._method_names():
            key = (c._type().qualified_name(), name)
            if key not in seen:
                seen.add(key)
                walk_graph(c._get_method(name).graph)
        for hook in list(c._get_forward_pre_hooks()) + list(c._get_forward_hooks()):
            walk_graph(hook.graph)
    return ops


def _check_ops(ops: set[str], where: Path, trusted: bool = False) -> None:
    """Refuse an operation outside the allow-list; a trusted model is still refused the operations that touch
    files, processes or the network or call back into Python (the second line behind ``--trust-model``)."""
    for op in sorted(ops):
        why = _refusal(op)
        if why is not None and trusted and op not in _REFUSED and op not in _file_ops():
            continue  # trusted: other namespaces (quantized::, …) and Python targets of exported graphs run
        if why is not None:
            raise UnsafeModelError(f"model: {where} calls {op}, which {why}; a model file is a program and this "
                                   "one does more than tensor arithmetic: refusing to run it even with "
                                   "--trust-model (name the architecture as 'package.module:attr' in your own "
                                   "code instead)")


class ExportedModel(torch.nn.Module):
    """A ``torch.export`` program as a module. Exported graphs are fixed, so ``train()``/``eval()`` only set
    the flag (the program's own module refuses them); parameters are the program's.

    Example:
        >>> import torch
        >>> lin = torch.nn.Linear(2, 1).double(); x = torch.ones(3, 2, dtype=torch.float64)
        >>> m = ExportedModel(torch.fx.symbolic_trace(lin))  # a graph module, as torch.export's .module() gives
        >>> bool(torch.equal(m(x), lin(x))), m.eval().training, {p.dtype for p in m.parameters()}
        (True, False, {torch.float64})
    """

    def __init__(self, gm: Any) -> None:
        super().__init__()
        object.__setattr__(self, "_gm", gm)  # not a child module: train()/eval() must not reach it
        # the program's tensors registered here too (shared, not copied), so that a wrapper around this module
        # (e.g. probing.FlatModel for images) sees their dtype: a float64 program gets float64 inputs
        self.program_parameters = torch.nn.ParameterList(list(gm.parameters()))
        for i, b in enumerate(gm.buffers()):
            self.register_buffer(f"program_buffer_{i}", b, persistent=False)

    def forward(self, x: Any) -> Any:
        return self._gm(x)

    def train(self, mode: bool = True) -> ExportedModel:
        self.training = bool(mode)
        return self


#: the most bytes of code entries read from one archive by :func:`_torchscript_sources`
_CODE_READ_MAX = 256 * 2**20
SAFE_WAY = ("the safe way: name the architecture as 'package.module:attr' in your own code and load its weights "
            "there with linlens.loaders.load_weights(module, 'weights.safetensors' or a torch.save state dict, "
            "read weights-only)")


def _zip_entries(p: Path) -> list[zipfile.ZipInfo] | None:
    """Every entry of a zip archive, duplicates included (None when ``p`` is not a zip archive)."""
    try:
        with zipfile.ZipFile(p) as zf:
            return zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def _is_code_entry(name: str) -> bool:
    """torch looks archive names up case-insensitively: ``CODE/x.PY`` is code as much as ``code/x.py``."""
    low = name.lower().replace("\\", "/")
    return "/code/" in f"/{low}" or low.endswith(".py") or low.endswith(".pyc")


def _torchscript_sources(p: Path) -> dict[str, str]:
    """Text of every code entry of a TorchScript archive: names matched case-insensitively and EVERY entry of a
    duplicated name read (Python's zipfile reads the last of duplicates, torch's reader the first)."""
    out: dict[str, str] = {}
    total = 0
    try:
        with zipfile.ZipFile(p) as zf:
            for i, info in enumerate(zf.infolist()):
                if not _is_code_entry(info.filename):
                    continue
                total += info.file_size
                if total > _CODE_READ_MAX:
                    raise UnsafeModelError(f"model: {p} holds over {_CODE_READ_MAX // 2**20} MiB of code; refusing "
                                           "to inspect it")
                with zf.open(info) as fh:
                    out[f"{info.filename}#{i}"] = fh.read(_CODE_READ_MAX).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError) as exc:
        if isinstance(exc, LinlensError):
            raise
        raise UnsafeModelError(f"model: {p} is an archive linlens cannot read to inspect ({type(exc).__name__}); "
                               "refusing to load it") from None
    return out


def _refuse_untrusted(p: Path, kind: str) -> None:
    raise UnsafeModelError(f"model: {p} is {kind}, a program that can run code while it is loaded (before any "
                           "inspection); it is loaded only with --trust-model (Python: trust_model=True); "
                           + SAFE_WAY)


def load_weights(module: Any, path: str | os.PathLike, *, strict: bool = True) -> Any:
    """Load a state dict into ``module`` without running code from the file: ``.safetensors`` (needs the optional
    ``safetensors`` package: ``pip install linlens[safetensors]``) or a ``torch.save`` state dict read with
    ``torch.load(weights_only=True)``. The safe way to hand linlens a trained model: the architecture is your own
    code (named ``package.module:attr``), the file holds numbers only.

    Arguments:
        module: an ``nn.Module`` whose parameter names match the file's keys.
        path: the weights file.
        strict: every key must match (missing and unexpected keys are named in the error).

    Returns:
        ``module``, with the weights loaded, in eval mode.

    Raises:
        InputFileError: a missing or unreadable file, or one that does not hold a state dict.
        ModelError: keys or shapes that do not match the module.

    Example:
        >>> import torch, tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.pt"
        >>> torch.save(torch.nn.Linear(2, 1).state_dict(), p)
        >>> load_weights(torch.nn.Linear(2, 1), p).weight.shape
        torch.Size([1, 2])
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"weights: file not found: {p}")
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"weights: load_weights needs an nn.Module; got {type(module).__name__}")
    try:
        if p.suffix.lower() == ".safetensors":
            try:
                from safetensors.torch import load_file
            except ImportError:
                raise InputFileError(f"weights: reading {p} needs the optional package safetensors (pip install "
                                     "'linlens[safetensors]'), or save a state dict with torch.save") from None
            sd = load_file(str(p), device="cpu")
        else:
            sd = torch.load(p, map_location="cpu", weights_only=True)
    except LinlensError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt or hostile files raise anything
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputFileError(f"weights: cannot read {p} as a weights-only state dict: {msg[:160]}") from None
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise InputFileError(f"weights: {p} does not hold a state dict (names → tensors); save one with "
                             "torch.save(model.state_dict(), …)")
    try:
        module.load_state_dict(sd, strict=strict)
    except RuntimeError as exc:
        raise ModelError(f"weights: {p} does not fit the module: {' '.join(str(exc).split())[:300]}") from None
    return module.eval()


def load_model(spec: str, device: str = "auto", trust_model: bool = False) -> Any:
    """Load a torch model: a TorchScript file, a ``torch.export`` archive (``.pt2``) or ``package.module:attr``.

    Model files are programs that can run code while they load: they are refused with
    :class:`UnsafeModelError` unless ``trust_model=True``. A trusted file is still inspected (second line): a
    TorchScript file defining ``__setstate__`` is refused before loading, and a graph calling an operation that
    touches files, processes or the network (:func:`inspect_model_ops`) is refused after loading.

    A ``module:attr`` spec IMPORTS AND RUNS that module's Python code (never inspected); ``attr`` may be a
    module instance, a plain callable, or an ``nn.Module`` subclass that takes no arguments (it is
    instantiated). This is the safe way for a trained model: the architecture is your code, and its weights
    are loaded there with :func:`load_weights` (numbers only). A state dict alone cannot be analysed.

    Arguments:
        spec: path of a TorchScript file / ``.pt2`` archive, or ``package.module:attr``.
        device: where the model's parameters go ("auto": CUDA when available, else the CPU —
            :func:`linlens.nn.resolve_device`, as for every model linlens trains, builds or loads).
        trust_model: load a TorchScript file or ``.pt2`` archive at all (refused without it).

    Returns:
        A callable mapping a (batch, d_in) tensor to (batch, d_out); modules are put in eval mode.

    Example:
        >>> import torch, tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.pt"
        >>> torch.jit.script(torch.nn.Linear(2, 1)).save(str(p))
        >>> load_model(str(p), trust_model=True)(torch.ones(3, 2)).shape
        torch.Size([3, 1])
    """
    device = resolve_device(device)
    p = Path(spec)
    if p.exists():
        if p.is_dir():
            raise InputFileError(f"model: {p} is a folder, expected a TorchScript file")
        entries = _zip_entries(p)
        is_pt2 = p.suffix.lower() == ".pt2"
        if entries is None:
            raise ModelError(f"model: {p} is not a {'torch.export archive' if is_pt2 else 'TorchScript file'} (not a "
                             "zip archive); save it with torch.jit.script(m).save(…) or pass 'package.module:attr'")
        if not is_pt2 and entries is not None and not any(_is_code_entry(e.filename) for e in entries):
            raise ModelError(f"model: {p} holds no model code (a state dict or pickled object?); " + SAFE_WAY)
        if not trust_model:
            _refuse_untrusted(p, "a torch.export archive (.pt2)" if is_pt2 else "a TorchScript file")
        if is_pt2:  # torch.export archive: torch.export.load itself evaluates parts of it (trusted above)
            try:
                prog = torch.export.load(str(p))
            except SystemExit as exc:
                raise ModelError(f"model: loading {p} called sys.exit({exc.code!r})") from None
            except Exception as exc:  # noqa: BLE001
                raise ModelError(f"model: {p} is not a torch.export archive: {str(exc)[:120]}") from None
            _check_ops(inspect_model_ops(prog), p, trusted=True)
            try:
                gm = prog.module().to(device)
            except Exception as exc:  # noqa: BLE001
                raise ModelError(f"model: cannot prepare {p} on {device}: {str(exc)[:120]}") from None
            return ExportedModel(gm)
        for name, src in _torchscript_sources(p).items():
            if "__setstate__" in src:
                raise UnsafeModelError(f"model: {p} defines __setstate__ ({name.rsplit('#', 1)[0]}), code that runs "
                                       "while the file is loaded, before any inspection: refusing to load it even "
                                       "with --trust-model; " + SAFE_WAY)
        try:
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; it is still the inspectable format
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.jit.load(str(p), map_location=device)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(
                f"model: {p} is not a TorchScript file ({one_line(exc, 100)}); if it is a state dict, its "
                "architecture belongs in code: pass 'package.module:attr' naming the model that loads it (or save a "
                "torch.export .pt2)"
            ) from None
        _check_ops(inspect_model_ops(model), p, trusted=True)
        model.eval()
        return model
    if ":" not in spec or spec.count(":") != 1 or os.sep in spec.split(":")[0]:
        raise InputFileError(f"model: file not found: {spec} (and it is not a 'package.module:attr' spec)")
    obj = import_attr(spec, "model")  # the one module:attr importer (linlens.validation)
    if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
        try:
            obj = obj()
        except SystemExit as exc:
            raise ModelError(f"model: instantiating {spec} called sys.exit({exc.code!r})") from None
        except Exception as exc:  # noqa: BLE001
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise ModelError(f"model: cannot instantiate {spec}: {type(exc).__name__}: {first}") from None
    if not callable(obj):
        raise ModelError(f"model: {spec} is a {type(obj).__name__}, not a callable")
    if isinstance(obj, torch.nn.Module):
        if any(t.device.type == "meta" for t in list(obj.parameters()) + list(obj.buffers())):
            raise ModelError(f"model: {spec} has parameters on the 'meta' device (shapes without values); load "
                             "its weights first")
        try:
            obj = obj.to(device).eval()
        except Exception as exc:  # noqa: BLE001 - user modules can fail to move in many ways
            raise ModelError(f"model: cannot move {spec} to {device}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:120] if str(exc) else ''}") from None
    return obj
