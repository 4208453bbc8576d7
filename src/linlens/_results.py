"""Ground floor for results: JSON-safe conversion and the one ``to_dict`` of every result dataclass.

Example:
    >>> json_safe({"a": np.float64(1.5), "b": float("nan"), "c": 1 + 2j})
    {'a': 1.5, 'b': None, 'c': {'re': 1.0, 'im': 2.0}}
"""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from linlens.validation import is_torch

__all__ = ["json_safe", "dataclass_dict", "ResultMixin"]


def json_safe(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays, complex numbers, paths and non-finite floats to JSON types.

    Complex numbers become ``{"re": …, "im": …}``; NaN and ±Inf become ``None`` (JSON has no NaN).

    Example:
        >>> json_safe({"a": np.array([1.5, np.nan]), 2: 1 - 2j, "n": np.int64(3), "p": Path("out")})
        {'a': [1.5, None], '2': {'re': 1.0, 'im': -2.0}, 'n': 3, 'p': 'out'}
    """
    if is_torch(obj):
        obj = obj.detach().cpu().numpy()
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return json_safe(obj.to_dict())
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.ndim and obj.dtype.kind in "iub" or (obj.dtype.kind == "f" and np.isfinite(obj).all()):
            return obj.tolist()  # Python ints, bools and finite floats already (no call per entry)
        return [json_safe(v) for v in obj.tolist()] if obj.ndim else json_safe(obj.item())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (complex, np.complexfloating)):
        return {"re": json_safe(obj.real), "im": json_safe(obj.imag)}
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


#: Arrays with more entries than this are not written into a result's JSON dictionary (a 4096² matrix is ~300 MB
#: of JSON text and minutes to write); the report saves the ones it shows as ``.npy`` beside metrics.json.
JSON_ARRAY_LIMIT = 65_536


def _field_value(v: Any) -> Any:
    if isinstance(v, np.ndarray) and v.size > JSON_ARRAY_LIMIT:
        return {"omitted": f"array of shape {tuple(v.shape)}: more than {JSON_ARRAY_LIMIT} entries, not in JSON "
                           "(kept on the result object; reports save the matrices they show as .npy)",
                "shape": list(v.shape)}
    return v


def dataclass_dict(obj: Any) -> dict[str, Any]:
    """JSON-safe dictionary of a dataclass's fields (arrays over ``JSON_ARRAY_LIMIT`` entries replaced by their
    shape and a note).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class R:
        ...     small: np.ndarray
        ...     big: np.ndarray
        >>> d = dataclass_dict(R(np.ones(2), np.zeros((300, 300))))
        >>> d["small"], d["big"]["shape"]
        ([1.0, 1.0], [300, 300])
    """
    if not is_dataclass(obj):
        raise TypeError(f"dataclass_dict needs a dataclass instance; got {type(obj).__name__}")
    return json_safe({f.name: _field_value(getattr(obj, f.name)) for f in fields(obj)})


class ResultMixin:
    """Gives a result dataclass the one ``to_dict()`` (JSON-safe, every field).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Fit(ResultMixin):
        ...     coef: np.ndarray
        ...     r2: float
        >>> Fit(np.array([[1.0, 2.0]]), float("nan")).to_dict()
        {'coef': [[1.0, 2.0]], 'r2': None}
    """

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary of every field."""
        return dataclass_dict(self)
