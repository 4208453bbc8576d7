"""The `linlens koopman` workflow (linlens.workflows.koopman) on models built with plain torch: the model is
rebuilt exactly, bad models, layers and split files are refused. The study itself: tests/test_koopman_study.py.
"""

import numpy as np
import pytest
import torch
from _cases import koopman_mlp as _net
from torch import nn

from linlens.errors import ConfigError, InputFileError, ModelError, ShapeError
from linlens.workflows.koopman import as_sequential, check_layer, load_split


def test_scripted_sequential_is_rebuilt_exactly(tmp_path):
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.LeakyReLU(0.2), nn.Linear(4, 2))
    path = tmp_path / "m.pt"
    torch.jit.script(net).save(str(path))
    rebuilt = as_sequential(torch.jit.load(str(path)))
    assert isinstance(rebuilt, nn.Sequential) and not isinstance(rebuilt, torch.jit.ScriptModule)
    x = torch.randn(7, 3)
    assert torch.equal(rebuilt(x), net(x))


def test_not_a_sequential_and_bad_layers_are_refused():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)

        def forward(self, x):
            return x + self.a(x)

    with pytest.raises(ModelError, match="Sequential"):
        as_sequential(Res())
    with pytest.raises(ModelError, match="module 1 is Dropout"):
        as_sequential(nn.Sequential(nn.Linear(2, 3), nn.Dropout(), nn.Linear(3, 2)))
    with pytest.raises(ShapeError, match="do not chain"):
        as_sequential(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(4, 2)))
    with pytest.raises(ConfigError, match=r"--layer must be in \[1, 2\]"):
        check_layer(_net(), 3)
    with pytest.raises(ConfigError):
        check_layer(_net(), 0)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_load_split_checks(tmp_path):
    X = np.random.default_rng(0).random((10, 2))
    X_, y, task = load_split(_npz(tmp_path / "a.npz", inputs=X, labels=np.arange(10) % 3), "--train", None)
    assert task == "classification" and y.dtype == np.int64
    assert load_split(_npz(tmp_path / "b.npz", inputs=X, targets=X[:, 0]), "--train", None)[1].shape == (10, 1)
    with pytest.raises(ConfigError, match="labels must be non-negative integers"):
        load_split(_npz(tmp_path / "c.npz", inputs=X, labels=np.linspace(0, 1, 10)), "--train", None)
    with pytest.raises(InputFileError, match="'inputs' and 'labels'"):
        load_split(_npz(tmp_path / "d.npz", inputs=X, y=np.arange(10)), "--train", None)
    with pytest.raises(InputFileError, match="'targets' for --task regression"):
        load_split(_npz(tmp_path / "e.npz", inputs=X, labels=np.arange(10)), "--train", "regression")
    with pytest.raises(ShapeError, match="rows"):
        load_split(_npz(tmp_path / "f.npz", inputs=X, labels=np.arange(9)), "--train", None)
