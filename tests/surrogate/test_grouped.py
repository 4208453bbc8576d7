"""The subspace route's statistics: bias-corrected error and group-bootstrap interval against a closed-form truth."""

import numpy as np
import pytest

from linlens.surrogate.grouped import GroupedFit
from linlens.surrogate.simulation import KnownSurrogate


def _case(m_gap: int | None, d: int = 8, d_out: int = 4, seed: int = 0):
    """f = C₀y + β|Gy| on y ~ N(0, Σ); with a gap after m_gap eigenvalues of Σ, the population top-m subspace
    surrogate is C₀ P_m (P_m the projector on Σ's top eigenvectors)."""
    rng = np.random.default_rng(seed)
    V = np.linalg.qr(rng.normal(size=(d, d)))[0]
    lam = np.ones(d) if m_gap is None else np.r_[np.full(m_gap, 4.0), np.full(d - m_gap, 0.05)]
    sim = KnownSurrogate(C0=rng.normal(size=(d_out, d)), G=rng.normal(size=(d_out, d)), L=V * np.sqrt(lam))
    m = d if m_gap is None else m_gap
    P = V[:, :m] @ V[:, :m].T
    return sim, m, P


def _run(sim, m, R, n, seed, n_boot=200):
    Y, F = sim.sample(n, seed=seed)
    Yh, _ = sim.sample(n // 4, seed=seed + 7919)
    mean = Y.mean(0)
    Vt = np.linalg.svd(Y - mean, full_matrices=False)[2][:m]
    acc = GroupedFit(m, F.shape[1], n_groups=32)
    acc.update_train((Y - mean) @ Vt.T, F, np.arange(n) % 32)
    B = acc.coef()
    acc.update_held((Yh - mean) @ Vt.T, (Yh - mean) @ R.T, B, np.arange(len(Yh)) % 32)
    return acc.error(n_boot=n_boot, seed=seed)


@pytest.mark.parametrize("m_gap", [None, 3])
def test_corrected_error_is_unbiased_and_covered(m_gap):
    """m = d (no subspace cut) and m = 3 below a gap: the plug-in reads +11% to +44% above the truth; the corrected
    estimate is within 10% (or 3 Monte Carlo s.e.) and the interval covers. At m < d the principal subspace is held
    fixed by the bootstrap, so its own noise is not in the interval (0.86–0.92 measured at 100 data sets; the
    full-size numbers are printed by benchmarks/bench_intervals.py)."""
    sim, m, P = _case(m_gap)
    R = sim.C0 @ P + 0.1 * np.random.default_rng(9).normal(size=sim.C0.shape) @ P
    S = sim.covariance
    truth = np.trace((sim.C0 @ P - R) @ S @ (sim.C0 @ P - R).T) / np.trace(R @ S @ R.T)
    res = [_run(sim, m, R, 600, seed=r, n_boot=100) for r in range(60)]
    est = np.array([e.estimate for e in res])
    plug = np.array([e.plug_in for e in res])
    cover = np.mean([e.low <= truth <= e.high for e in res])
    assert np.mean(plug) / truth - 1 > 0.08  # the plug-in is biased up
    se = est.std() / np.sqrt(len(est)) / truth
    assert abs(np.mean(est) / truth - 1) < max(0.1, 3 * se), (np.mean(est) / truth, se)
    assert cover >= 0.82, cover  # 60 data sets: Monte Carlo s.e. ≈ 0.03
