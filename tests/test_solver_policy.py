"""The one solver policy (linlens.linalg.solver_policy): every fitting path follows it, and each choice is accurate."""

import numpy as np
import pytest

from linlens.linalg import GramAccumulator, solver_policy
from linlens.surrogate import LinearSurrogate
from linlens.workflows.analyze_common import BlockStats, needs_qr_pass


def _design(kappa: float, n: int = 400, d: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(n, d)))
    V, _ = np.linalg.qr(rng.normal(size=(d, d)))
    X = (U * np.geomspace(1.0, 1.0 / kappa, d)) @ V.T
    W = rng.normal(size=(2, d))
    return X, X @ W.T + 1e-3 * rng.normal(size=(n, 2))


@pytest.mark.parametrize("kappa, batch, one_pass", [(1e2, "gram", "gram"), (1e6, "gram+refine", "qr"),
                                                    (1e9, "qr", "qr")])
def test_every_path_follows_the_policy(kappa, batch, one_pass):
    X, Y = _design(kappa)
    sur = LinearSurrogate(fit_intercept=False).fit(X, Y)
    k = sur.condition_number_
    assert solver_policy(k, "auto", "many").method == batch.replace("gram+refine", "refine") and sur.solver_ == batch
    # analyze (each pass re-runs the model) asks for a TSQR pass exactly when the policy says so
    st = BlockStats(mode="gram")
    st.train.update(X, Y)
    assert needs_qr_pass(st, fit_intercept=False) == (one_pass == "qr")
    # whatever the route, the answer is the least-squares solution to the accuracy κ·eps allows
    ref = np.linalg.lstsq(X, Y, rcond=None)[0].T
    assert np.linalg.norm(sur.coef_ - ref) / np.linalg.norm(ref) < max(1e-10, 1e3 * kappa * np.finfo(float).eps)


def test_streaming_keeps_the_gram_solve_and_warns():
    X, Y = _design(1e6)
    acc = GramAccumulator().update(X, Y)
    choice = solver_policy(acc.condition_number(False), "auto", "none")
    assert choice.method == "gram" and choice.warn
    with pytest.warns(Warning, match="condition number"):
        LinearSurrogate(fit_intercept=False).fit_statistics(acc)
    assert solver_policy(1e6, "qr").method == "qr" and not solver_policy(1e3, "auto", "none").warn
