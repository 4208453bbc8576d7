"""linlens.workflows.dask_passes: one pass of block tasks on a real (in-process, 2-worker) Dask cluster — the tree
merge equals the sequential sum of the blocks (an independent route: numpy on all rows at once), block order is
kept when not reducing, and a failing block comes back as one linlens error line naming the block."""

from __future__ import annotations

import numpy as np
import pytest

from linlens.errors import ModelError, ShapeError
from linlens.surrogate.grouped import GroupedFit
from linlens.workflows.dask_passes import run_pass

distributed = pytest.importorskip("dask.distributed")

Y = np.random.default_rng(0).normal(size=(103, 2))
F = Y @ np.array([[1.0, -2.0], [0.5, 3.0]]).T + 0.1


def _fit(rows, outputs, start):
    g = GroupedFit(2, 2, 4)
    g.update_train(rows, outputs, (start + np.arange(len(rows))) % 4)
    return g


def _block_sum(rows):
    return rows.sum(axis=0)


def _bad(rows, b):
    if b == 2:
        raise RuntimeError("the model fell over\nsecond line")
    if b == 3:
        raise ShapeError("a linlens error keeps its class")
    return _Sum(rows.sum())


class _Sum:
    def __init__(self, v):
        self.v = v

    def merge(self, other):
        return _Sum(self.v + other.v)


def _tasks(batch):
    return [(b, s, min(s + batch, len(Y))) for b, s in enumerate(range(0, len(Y), batch))]


@pytest.fixture(scope="module")
def client(dask_address):
    c = distributed.Client(dask_address)
    yield c
    c.close()


@pytest.mark.parametrize("batch", [10, 37, 103])
def test_tree_merge_equals_the_fit_on_all_rows(client, batch):
    g = run_pass(client, None, "fit", _fit, [(b, s, e, Y[s:e], F[s:e], s) for b, s, e in _tasks(batch)])
    whole = _fit(Y, F, 0)
    np.testing.assert_allclose(g.coef(), whole.coef(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g.zz, whole.zz, rtol=1e-12)
    np.testing.assert_allclose(g.coef(), [[1.0, -2.0], [0.5, 3.0]], atol=1e-10)  # the exact map


def test_without_reduce_the_partials_come_back_in_block_order(client):
    parts = run_pass(client, None, "sums", _block_sum, [(b, s, e, Y[s:e]) for b, s, e in _tasks(10)],
                     reduce=False)
    assert len(parts) == 11
    np.testing.assert_allclose(np.stack(parts), [Y[s:e].sum(axis=0) for _, s, e in _tasks(10)])


def test_a_failing_block_is_one_line_naming_it(client):
    tasks = [(b, s, e, Y[s:e], b) for b, s, e in _tasks(10)]
    with pytest.raises((ModelError, ShapeError)) as info:
        run_pass(client, None, "bad", _bad, tasks)
    msg = str(info.value)
    assert "\n" not in msg
    if isinstance(info.value, ModelError):
        assert msg.startswith("block 2 (rows 20–29): RuntimeError: the model fell over")
    else:
        assert msg == "a linlens error keeps its class"
    ok = run_pass(client, None, "good", _bad, [t[:4] + (0,) for t in tasks])
    assert ok.v == pytest.approx(Y.sum())
