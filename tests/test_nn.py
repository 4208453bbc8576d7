"""linlens.nn: devices ("auto" resolved in one place), model builders, the training loop and its history."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from linlens.errors import ConfigError, TrainingDiverged
from linlens.nn import TrainHistory, mlp, resolve_device, train


@pytest.mark.parametrize("cuda", [True, False])
def test_resolve_device_auto_and_none_mean_cuda_when_available(monkeypatch, cuda):
    # both answers are checked on any machine: CUDA's availability is what "auto" reads, so it is simulated
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    expected = torch.device("cuda" if cuda else "cpu")
    assert resolve_device("auto") == expected
    assert resolve_device(None) == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_device_refuses_missing_cuda():
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")


def test_mlp_layers_and_parameter_count():
    net = mlp(3, [5, 4], 2, activation="tanh", seed=0)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 5), (5, 4), (4, 2)]
    assert isinstance(net[-1], torch.nn.Linear)  # no activation after the last layer
    assert sum(p.numel() for p in net.parameters()) == 3 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2


def test_train_fits_a_linear_map():
    # least squares has a closed form: a bias-free linear model trained with MSE approaches it
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 3))
    B = np.array([[1.0, -2.0, 0.5], [0.0, 1.5, -1.0]])
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2, bias=False).double()
    hist = train(model, X, X @ B.T, epochs=150, lr=0.05, batch_size=64, seed=0, device="cpu", progress=False)
    assert hist.train_loss[-1] < 1e-6 < hist.train_loss[0]
    np.testing.assert_allclose(model.weight.detach().numpy(), B, atol=1e-3)


class _Moved(Exception):
    pass


@pytest.mark.parametrize("cuda,device,expected", [(True, "auto", "cuda"), (False, "auto", "cpu"), (True, "cpu", "cpu")])
def test_train_moves_the_model_where_its_device_says(monkeypatch, cuda, device, expected):
    # the default device "auto" trains on CUDA where it is available (simulated: the model's move is recorded and
    # stopped, so no CUDA is needed); a named device wins. A CPU-only machine cannot tell "auto" from "cpu" by
    # running both, hence the simulation.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    moves = []

    class Spy(torch.nn.Linear):
        def to(self, *args, **kwargs):
            moves.append(torch.device(kwargs.get("device", args[0] if args else "cpu")).type)
            raise _Moved

    kwargs = {} if device == "auto" else {"device": device}
    with pytest.raises(_Moved):
        train(Spy(3, 2), np.ones((4, 3)), np.ones((4, 2)), epochs=1, progress=False, **kwargs)
    assert moves == [expected]


def test_train_history_to_dict_is_every_field_json_safe():
    h = TrainHistory(train_loss=[1.0, 0.5], val_loss=[float("nan")], best_epoch=1, seconds=0.25)
    d = h.to_dict()
    assert set(d) == {f.name for f in dataclasses.fields(TrainHistory)}
    assert d["train_loss"] == [1.0, 0.5] and d["val_loss"] == [None] and d["best_epoch"] == 1
    json.dumps(d)


def test_train_diverges_loudly():
    model = torch.nn.Linear(2, 1).double()
    X = np.ones((8, 2))
    with pytest.raises(TrainingDiverged):
        train(model, X, np.full((8, 1), math.inf), epochs=2, progress=False)


def test_progress_is_plain_lines_when_stdout_is_not_a_terminal(capsys):
    """Issue 11: no progress was shown when the output was not a terminal (logs, CI); now plain lines."""
    from linlens.nn import PlainProgress, progress_bar

    bar = progress_bar(True)  # pytest captures stdout: not a terminal
    assert isinstance(bar, PlainProgress)
    with bar:
        t = bar.add_task("probing the model", total=20)
        for _ in range(20):
            bar.advance(t)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("probing the model: 0/20") and lines[-1].startswith("probing the model: 20/20")
    assert 3 <= len(lines) <= 13  # a line per tenth, not one per step


def test_plateau_schedule_lowers_the_rate_when_validation_stalls_and_needs_validation_data():
    # validation targets unrelated to the inputs: the validation loss cannot keep falling, so the rate must drop
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    Y = X @ np.array([[1.0], [2.0], [-1.0]])
    Xv, Yv = rng.normal(size=(32, 3)), rng.normal(size=(32, 1))
    model = torch.nn.Linear(3, 1).double()
    hist = train(model, X, Y, epochs=30, lr=0.05, batch_size=16, X_val=Xv, Y_val=Yv, lr_schedule="plateau",
                 plateau_factor=0.5, plateau_patience=0, patience=30, progress=False)
    lrs = hist.learning_rate
    assert len(lrs) == 30 and lrs[0] == 0.05 and min(lrs) < 0.05
    ratios = np.array(lrs[1:]) / np.array(lrs[:-1])
    assert np.all(np.isclose(ratios, 1.0) | np.isclose(ratios, 0.5))
    with pytest.raises(ConfigError, match="plateau"):
        train(model, X, Y, epochs=1, lr_schedule="plateau", progress=False)


def test_progress_listener_gives_nested_loops_their_own_tasks():
    # a model's steps inside the loop over models (the study): each label advances its own task to its total,
    # and a label's loop started again gets a new task
    from linlens._progress import progress_to, report_progress
    from linlens.nn import progress_listener

    class Bar:
        def __init__(self):
            self.tasks, self.done = [], {}

        def add_task(self, name, total):
            self.tasks.append((name, total))
            self.done[len(self.tasks) - 1] = 0
            return len(self.tasks) - 1

        def advance(self, task, advance=1):
            self.done[task] += advance

    bar = Bar()
    with progress_to(progress_listener(bar)):
        for i in range(2):
            report_progress("models", i, 2)
            for s in range(4):
                report_progress(f"m{i} steps", s + 1, 4)
        report_progress("models", 2, 2)
    names = [n for n, _ in bar.tasks]
    assert names == ["models (1)", "m0 steps (2)", "m1 steps (3)"]
    assert [bar.done[t] for t in range(3)] == [2, 4, 4]


def test_model_device_auto_is_where_the_users_model_is(monkeypatch):
    # "auto" for a model linlens only runs: the device of its parameters, the CPU for a callable without any —
    # even where CUDA is available (simulated, so that a CPU-only machine tells this meaning from resolve_device's)
    from linlens.nn import model_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"  # the other meaning: what linlens trains, builds or loads
    assert model_device(lambda x: 2 * x).type == "cpu"
    assert model_device(lambda x: 2 * x, None).type == "cpu"
    assert model_device(torch.nn.Linear(2, 2)).type == "cpu"
    assert model_device(torch.nn.Linear(2, 2).to("meta")).type == "meta"  # wherever the parameters are
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError):  # a named device goes through resolve_device
        model_device(torch.nn.Linear(2, 2), "cuda")
