"""linlens.jacobian.memory: the chunk sizes follow the memory model of the module docstring (checked in closed
form for a linear layer, whose saved activations are its inputs), and jacobians uses them."""

from __future__ import annotations

import pytest
import torch
from _jacobian_cases import loop_jacobians, mlp

import linlens.jacobian.dense as jac_dense
from linlens.errors import ConfigError
from linlens.jacobian import DEFAULT_WORK_MEMORY, FIXED_OVERHEAD, estimate_chunk_size, jacobians

torch.set_num_threads(1)


@pytest.mark.parametrize("d_in,d_out,mode", [(50, 3, "reverse"), (50, 3, "forward"), (7, 20, "reverse")])
def test_chunk_size_is_the_documented_model_for_a_linear_layer(d_in, d_out, mode):
    # the model: one sample costs 1.5 · (2 · d_out · d_in · s + (1 + m) · a + d_in · s) bytes, s = 8 (float64),
    # m = d_out (reverse) or d_in (forward) AD directions, a = the activation bytes autograd saves per sample: for
    # a Linear layer its input row, d_in · 8. The chunk is the budget (max_memory − result − fixed overhead,
    # capped at DEFAULT_WORK_MEMORY) over that cost.
    n, s = 1000, 8
    lin = torch.nn.Linear(d_in, d_out).double()
    x = torch.randn(n, d_in, dtype=torch.float64)
    m = d_out if mode == "reverse" else d_in
    per_sample = int(1.5 * (2 * d_out * d_in * s + (1 + m) * d_in * s + d_in * s))
    result = n * d_out * d_in * s
    for spare in (10**5, 3 * 10**5):
        want = min(n, spare // per_sample)
        assert estimate_chunk_size(lin, x, max_memory=result + FIXED_OVERHEAD + spare, mode=mode) == want
    assert estimate_chunk_size(lin, x, max_memory=1e15, mode=mode) == min(n, DEFAULT_WORK_MEMORY // per_sample)
    assert estimate_chunk_size(lin, x, max_memory=1e15, mode=mode, keep_output=False) == min(
        n, DEFAULT_WORK_MEMORY // per_sample)
    with pytest.raises(ConfigError, match="max_memory"):
        estimate_chunk_size(lin, x, max_memory=result + FIXED_OVERHEAD + per_sample - 1, mode=mode)


def test_max_memory_bounds_the_chunk_size(monkeypatch):
    net = mlp(8, 3)
    x = torch.randn(200, 8, dtype=torch.float64)
    out_bytes = 200 * 3 * 8 * 8 + FIXED_OVERHEAD
    big = estimate_chunk_size(net, x, max_memory=1e9)
    assert big == 200
    small = estimate_chunk_size(net, x, max_memory=out_bytes + 20_000)
    assert 1 <= small < 200
    # the chunks actually used follow the estimate, and the result is unchanged
    seen: list[int] = []
    orig = jac_dense._iter_chunks

    def spy(prep, xt, mode, chunk, create_graph):
        for i, J in orig(prep, xt, mode, chunk, create_graph):
            seen.append(J.shape[0])
            yield i, J

    monkeypatch.setattr(jac_dense, "_iter_chunks", spy)
    J = jacobians(net, x, max_memory=out_bytes + 20_000)
    assert len(seen) > 1 and max(seen) == small and sum(seen) == 200
    torch.testing.assert_close(J, loop_jacobians(net, x), atol=1e-12, rtol=1e-10)
    with pytest.raises(ConfigError, match="max_memory"):
        jacobians(net, x, max_memory=out_bytes)
