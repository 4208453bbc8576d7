"""linlens._results: json_safe against hand-computed JSON, and the one to_dict of result dataclasses."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from linlens._results import ResultMixin, dataclass_dict, json_safe


@dataclass(frozen=True)
class _Result(ResultMixin):
    name: str
    values: np.ndarray
    score: float


def test_json_safe_cases():
    obj = {"i": np.int32(3), "f": np.float32(0.5), "nan": math.nan, "inf": -np.inf, "c": 1 - 2j,
           "a": np.array([[1, 2], [3, 4]]), "t": torch.tensor([1.5]), "p": Path("/x/y"), "b": np.bool_(True),
           1: (None, "s")}
    expected = {"i": 3, "f": 0.5, "nan": None, "inf": None, "c": {"re": 1.0, "im": -2.0},
                "a": [[1, 2], [3, 4]], "t": [1.5], "p": "/x/y", "b": True, "1": [None, "s"]}
    out = json_safe(obj)
    assert out == expected
    assert json.loads(json.dumps(out, allow_nan=False)) == expected


def test_result_mixin_to_dict_is_every_field():
    r = _Result("x", np.array([1.0, np.nan]), np.float64(2.0))
    assert r.to_dict() == dataclass_dict(r) == {"name": "x", "values": [1.0, None], "score": 2.0}
    assert json_safe({"r": r}) == {"r": r.to_dict()}  # nested results go through their to_dict


def test_dataclass_dict_refuses_non_dataclasses():
    with pytest.raises(TypeError, match="dataclass"):
        dataclass_dict({"a": 1})
