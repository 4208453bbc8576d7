"""The option checks and input conversion of linlens.validation."""

import numpy as np
import pytest

from linlens.errors import ComplexInputError, ConfigError, MemoryLimitError
from linlens.validation import (
    as_array,
    check_device,
    check_memory,
    check_seed,
    parse_bytes,
)


def test_option_checks():
    for bad in ("", "nonsense", "meta", "cuda:x", "cpu "):
        if bad == "cpu ":
            assert check_device(bad) == "cpu"
            continue
        with pytest.raises(ConfigError):
            check_device(bad)
    for bad in (-1, 2**64, 1.5, True):
        with pytest.raises(ConfigError):
            check_seed(bad)
    assert check_seed(0) == 0
    assert parse_bytes("4G") == 4 * 2**30 and parse_bytes("512MiB") == 512 * 2**20
    for bad in ("lots", "-1G", "0"):
        with pytest.raises(ConfigError):
            parse_bytes(bad)
    with pytest.raises(MemoryLimitError, match="--max-memory"):
        check_memory(2e9, "a Gram matrix", limit=2**30)


def test_complex_is_refused_not_cast():
    with pytest.raises(ComplexInputError):
        as_array(np.array([[1 + 1j]]), "X")
    with pytest.raises(ComplexInputError):
        as_array([[1j, 2.0]], "X")
    assert as_array(np.array([[1 + 1j]]), "X", dtype=np.complex128)[0, 0] == 1 + 1j


def test_meta_tensors_are_refused_by_the_api():
    import torch

    from linlens.errors import ModelError, ShapeError
    from linlens.probing import probe_model

    meta = torch.empty(4, 2, device="meta")
    with pytest.raises(ShapeError, match="meta"):
        as_array(meta, "X")
    with pytest.raises(ShapeError, match="meta"):
        list(probe_model(torch.nn.Linear(2, 1), meta))
    with pytest.raises(ModelError, match="meta"):
        list(probe_model(torch.nn.Linear(2, 1, device="meta"), np.ones((3, 2))))
