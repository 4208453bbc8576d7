"""linlens.probing.probe_model, the one place a user's model is run: against the closed form of an affine
model, on copies of the inputs, on the model's own device by default ("auto")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linlens.errors import ConfigError, ModelError
from linlens.probing import probe_model


def _linear(seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(4, 3).double()


def _collect(model, X, **kw):
    parts = list(probe_model(model, X, **kw))
    return [i for i, _, _ in parts], np.vstack([x for _, x, _ in parts]), np.vstack([f for _, _, f in parts])


def test_outputs_match_the_affine_closed_form():
    lin = _linear()
    X = np.random.default_rng(0).normal(size=(10, 4))
    idx, xs, F = _collect(lin, X, batch_size=3)
    W, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    assert idx == [0, 1, 2, 3]  # ceil(10 / 3) batches, in order
    np.testing.assert_array_equal(xs, X)
    np.testing.assert_allclose(F, X @ W.T + b, rtol=0, atol=1e-12)


def test_default_device_auto_is_the_models_device(monkeypatch):
    # "auto" (the default, one name per idea) and None both mean: where the model's parameters are, since
    # probe_model never moves the model, even where CUDA is available (simulated here, so that a CPU-only machine
    # tells "the model's device" from "CUDA when available"; sending the inputs to CUDA would fail or be seen)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    seen = []

    class Spy(torch.nn.Linear):
        def forward(self, x):
            seen.append(x.device.type)
            return super().forward(x)

    torch.manual_seed(0)
    lin = Spy(4, 3).double()
    X = np.random.default_rng(1).normal(size=(7, 4))
    W, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    for kw in ({}, {"device": None}, {"device": "auto"}):
        seen.clear()
        _, _, F = _collect(lin, X, **kw)
        assert seen and set(seen) == {"cpu"}, kw
        np.testing.assert_allclose(F, X @ W.T + b, rtol=0, atol=1e-12)


def test_plain_callable_runs_on_cpu_by_default():
    seen = []

    def f(x):
        seen.append(x.device.type)
        return 2 * x

    _, _, F = _collect(f, np.ones((3, 2)))
    assert seen == ["cpu"] and np.array_equal(F, 2 * np.ones((3, 2)))


def test_in_place_model_changes_neither_record_nor_caller():
    X = np.arange(6.0).reshape(3, 2)
    X0 = X.copy()
    _, xs, F = _collect(lambda x: x.sub_(1), X)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(xs, X0)
    np.testing.assert_array_equal(F, X0 - 1)


def test_tuple_outputs_need_an_index_and_training_flag_is_restored():
    class Two(torch.nn.Module):
        def forward(self, x):
            return x, 3 * x

    m = Two().train()
    with pytest.raises(ModelError, match="output_index"):
        _collect(m, np.ones((2, 2)))
    _, _, F = _collect(m, np.ones((2, 2)), output_index=1)
    assert np.array_equal(F, 3 * np.ones((2, 2))) and m.training


@pytest.mark.parametrize("bs", [0, -1, 2.5, True])
def test_bad_batch_size(bs):
    with pytest.raises(ConfigError, match="batch_size"):
        _collect(_linear(), np.ones((2, 4)), batch_size=bs)


def _ill_conditioned_inputs(n=400, d=5, kappa=2e8, seed=0):
    rng = np.random.default_rng(seed)
    Q1, _ = np.linalg.qr(rng.normal(size=(n, d)))
    Q2, _ = np.linalg.qr(rng.normal(size=(d, d)))
    Y = Q1 @ np.diag(np.logspace(0, -np.log10(kappa), d)) @ Q2 * np.sqrt(n) + 3.0
    assert np.linalg.cond(Y - Y.mean(0)) == pytest.approx(kappa, rel=0.05)
    return Y


class _Float64Buffer(torch.nn.Module):
    """Exactly linear: x = W y computed in float64 from whatever inputs it is given."""

    def __init__(self, W, param_dtype=None):
        super().__init__()
        self.register_buffer("W", torch.as_tensor(W, dtype=torch.float64))
        if param_dtype is not None:  # a parameter that sets the dtype probe_model casts the inputs to
            self.scale = torch.nn.Parameter(torch.ones((), dtype=param_dtype))

    def forward(self, y):
        return y.to(torch.float64) @ self.W.T


@pytest.mark.parametrize("param_dtype", [None, torch.float32], ids=["float64 buffer only", "float32 parameter"])
def test_exactly_linear_model_recovers_its_own_matrix_on_ill_conditioned_inputs(param_dtype):
    """Issue 21: the surrogate must be fitted on exactly the inputs the model received. With a float32 parameter
    the probes are cast to float32; fitting on the uncast float64 probes put the surrogate ~10% away from W at
    condition number 2e8 (the cast error times κ), fitting on the cast ones recovers W to rounding."""
    from linlens.probing import cast_note, model_input_dtype, probe_all
    from linlens.surrogate import LinearSurrogate

    W = np.random.default_rng(1).normal(size=(3, 5))
    model = _Float64Buffer(W, param_dtype)
    Y = _ill_conditioned_inputs()
    got, F = probe_all(model, Y, batch_size=128)
    if param_dtype is None:
        assert model_input_dtype(model) == torch.float64 and cast_note(model) is None
        np.testing.assert_array_equal(got, Y)
    else:
        assert "float32" in cast_note(model)
        np.testing.assert_array_equal(got, Y.astype(np.float32).astype(np.float64))
        uncast = LinearSurrogate(solver="qr").fit(Y, F).coef_
        assert np.linalg.norm(uncast - W) / np.linalg.norm(W) > 1e-3  # what fitting on the uncast inputs gives
    sur = LinearSurrogate.from_model(model, Y, batch_size=128, solver="qr")  # streamed, stable solver
    assert np.linalg.norm(sur.coef_ - W) / np.linalg.norm(W) < 1e-6
