"""The training tracker: the linear picture of a network at chosen steps of its training, on a fixed probe set.

:class:`Tracker` is prepared once for a probe set (the probes' centred design and its factorization, A's SVD, the
references and their estimation noise, the multiplier-bootstrap draws) and then called with the current model
(``tracker.update(model, step)``) as often as wanted. Each call probes the model on the same rows and computes,
with the formulas of :func:`linlens.workflows.study.inverse_study` (one place for each; the per-model statistics are the
study's own), the global surrogate C and:

* its data-weighted error against each reference (A⁻¹ or A⁺, the Wiener estimator, C_data), bias-corrected with
  a basic interval, and the paired verdict;
* the filter factors φᵢ = (Vᵀ C A V)ᵢᵢ per singular component of A and their mean per band of A's singular index;
* the signal error E‖(CA − P)x‖²/E‖x‖² and the noise amplification tr(CΣₑCᵀ)/E‖x‖², bias-corrected with
  intervals;
* R² of the surrogate on the held-out half of the probes (how linear the network is);
* the Σ_y-weighted distance ‖(J(y) − C)Σ_y^½‖_F/‖CΣ_y^½‖_F between the network's Jacobians at a few probes and C;
* for a deep linear network (a sequence of bias-free ``Linear`` layers) the rank list r_ji of its current
  weights and the stratum of the fiber they lie on (:mod:`linlens.fibers`).

Results are frozen :class:`TrackPoint` dataclasses, one per call, kept in ``history_``.

References:
    The references, intervals and verdicts: the guide page "The inverse-operator study". Spectral bias: N. Rahaman
    et al., On the spectral bias of neural networks, ICML 2019, https://arxiv.org/abs/1806.08734. Deep linear
    networks: A. M. Saxe, J. L. McClelland, S. Ganguli, Exact solutions to the nonlinear dynamics of learning in
    deep linear neural networks, ICLR 2014, https://arxiv.org/abs/1312.6120.

Example:
    >>> import numpy as np, torch
    >>> Y = np.random.default_rng(0).normal(size=(200, 3))
    >>> net = torch.nn.Linear(3, 3, bias=False).double()
    >>> tr = Tracker(Y, n_jacobian=4)
    >>> p = tr.update(net, step=0)
    >>> round(p.r2, 8), round(p.local["weighted_distance_median"], 8), len(tr.history_)
    (1.0, 0.0, 1)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from linlens._results import ResultMixin
from linlens.errors import ConfigError, ShapeError
from linlens.fibers import LinearNetwork
from linlens.jacobian import JacobianField
from linlens.linalg import SVDResult, pinv_svd, svd
from linlens.operators import operator_matrix
from linlens.probing import cast_note, probe_all
from linlens.problems import wiener_estimator
from linlens.stats import closest_reference, noise_std_estimate, summarize
from linlens.surrogate import filter_factors, r2_scores
from linlens.surrogate.compare import SignalNoiseModel, probe_covariance
from linlens.surrogate.multiplier import FixedDesign, MultiplierBootstrap, Perturbation, wiener_perturbation
from linlens.validation import as_array, check_covariance, check_noise_std
from linlens.workflows.study import _multiplier_statistics

__all__ = ["Tracker", "TrackPoint", "TrackSetup", "TrackingResult", "SpectralBias", "deep_linear_weights",
           "half_rise_steps", "spectral_bias"]


def deep_linear_weights(model: Any) -> list[np.ndarray] | None:
    """The weights W_1, …, W_L (float64) of a deep linear network, or None when ``model`` is not one.

    A deep linear network here is a ``torch.nn.Linear`` without bias, or a ``torch.nn.Sequential`` whose
    modules are all bias-free ``Linear`` layers (nested ``Sequential`` and ``Identity`` allowed): anything else
    (a bias, an activation, a custom ``forward``) is not, because its map is then not the product W_L ⋯ W_1.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False), torch.nn.Linear(2, 3, bias=False))
        >>> [w.shape for w in deep_linear_weights(net)], deep_linear_weights(torch.nn.Linear(3, 2))
        ([(2, 3), (3, 2)], None)
    """
    mods = [model] if isinstance(model, torch.nn.Linear) else None
    if mods is None:
        if type(model) is not torch.nn.Sequential:
            return None
        mods = [m for m in model.modules() if type(m) not in (torch.nn.Sequential, torch.nn.Identity)]
    if not mods or not all(type(m) is torch.nn.Linear and m.bias is None for m in mods):
        return None
    return [m.weight.detach().cpu().to(torch.float64).numpy().copy() for m in mods]


def half_rise_steps(steps: Any, factors: Any, fraction: float = 0.5) -> np.ndarray:
    """The step at which each component first reaches ``fraction`` of its final value (the spectral-bias plot).

    Between two tracked steps the crossing is interpolated linearly; a component already at or beyond the level
    at the first step gets the first step; one whose final value is 0 (or not finite) gets NaN.

    Arguments:
        steps: (n_steps,) increasing steps.
        factors: (n_steps, k) values per step and component (e.g. filter factors φᵢ).
        fraction: the level, a fraction of each component's final value, in (0, 1].

    Returns:
        (k,) steps (float).

    Example:
        >>> t = np.arange(0, 1001.0)
        >>> half_rise_steps(t, 1 - np.exp(-t[:, None] / np.array([10.0, 40.0]))).round(1).tolist()
        [6.9, 27.7]
    """
    t = as_array(steps, "steps", ndim=1)
    F = as_array(factors, "factors", ndim=2, finite=False)
    if F.shape[0] != t.size or t.size == 0:
        raise ShapeError(f"factors must be (n_steps={t.size} > 0, k); got {F.shape}")
    if np.any(np.diff(t) <= 0):
        raise ConfigError("steps must be strictly increasing")
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction must be in (0, 1]; got {fraction!r}")
    out = np.full(F.shape[1], np.nan)
    for i in range(F.shape[1]):
        final = F[-1, i]
        if not np.isfinite(final) or final == 0:
            continue
        g = F[:, i] / final - fraction  # crosses 0 upward at the step sought
        hit = np.flatnonzero(g >= 0)
        if hit.size == 0:
            continue
        j = int(hit[0])
        if j == 0:
            out[i] = t[0]
        else:
            g0, g1 = g[j - 1], g[j]
            out[i] = t[j - 1] + (t[j] - t[j - 1]) * (-g0) / (g1 - g0) if g1 != g0 else t[j]
    return out


@dataclass(frozen=True)
class TrackSetup(ResultMixin):
    """What a :class:`Tracker` prepared once: the probe split, A's spectrum and the references' filter factors.

    Attributes:
        n_fit, n_test: probe rows fitting the surrogate (first half) and testing it (second half).
        n_jacobian: test rows at which Jacobians are taken.
        references: reference names (empty without targets and operator) and reference_status: how each was
            obtained (fixed, or estimated and resampled with its own rows).
        singular_values_A: (k,) sᵢ of A, descending, or None; bands: (n_bands, 2) [start, stop) of A's
            singular index.
        reference_filter_factors: reference → (k,) φᵢ; reference_band_factors: reference → (n_bands,).
        reference_test_mse: predictor → test MSE per entry on the test probes (with targets).
        noise_std: σ used for the Wiener estimator and the noise amplification (None without A).
        notes: sentences for the report.

    Example:
        >>> import numpy as np
        >>> from linlens.workflows._examples import tracked_run
        >>> tr = tracked_run()  # A = diag(2, 1, 0.5); steps 0, 1 with C = A⁻¹ (step + 1)/2: φᵢ = 0.5, then 1
        >>> s = tr.setup_
        >>> s.n_fit, s.n_test, s.references, s.singular_values_A.tolist(), s.bands.tolist()
        (100, 100, ['A⁻¹', 'Wiener', 'C_data'], [2.0, 1.0, 0.5], [[0, 1], [1, 2], [2, 3]])
    """

    n_fit: int
    n_test: int
    n_jacobian: int
    references: list[str]
    reference_status: dict[str, str]
    singular_values_A: np.ndarray | None
    bands: np.ndarray | None
    reference_filter_factors: dict[str, np.ndarray]
    reference_band_factors: dict[str, np.ndarray]
    reference_test_mse: dict[str, float]
    noise_std: float | None
    ci: float
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrackPoint(ResultMixin):
    """The linear picture of the model at one step (one :meth:`Tracker.update`).

    Attributes:
        step: the training step (or epoch) the caller gave.
        r2: pooled R² of the surrogate on the test probes (1 = the network is linear on them).
        test_mse: the network's test MSE per entry against the targets (None without targets).
        errors: reference → {plug_in, estimate (bias-corrected), low, high, std, …} of the centred data-weighted
            error E‖(C − R)(y − ȳ)‖²/E‖R(y − ȳ)‖².
        verdict: the paired verdict in words (closest reference, "tie (…)" or "none"), or None without references.
        signal_noise: {signal_error, noise_amplification, total, band_j} → {estimate, low, high, …} (None
            without A).
        filter_factors: (k,) φᵢ of the surrogate (None without A); band_filter_factors: (n_bands,) their mean
            per band; leakage: ‖Φ − diag‖_F/‖Φ‖_F.
        local: the Σ_y-weighted and unweighted local-vs-global Jacobian distances (median, 10/90% quantiles;
            :meth:`~linlens.jacobian.LocalVsGlobal.to_dict`), or None when not computed.
        ranks: "r_j_i" → numerical rank of W_j ⋯ W_{i+1} for a deep linear network (else None); rank_gap: the
            smallest singular-value gap at those cuts; stratum: its barcode label ("not realizable" when a loose
            ``rank_tol`` gives ranks that no point has: a note says so); stratum_dim: its dimension (else None).
        coef: the surrogate C (d_out, d_in) (left out of :meth:`to_dict`); intercept: (d_out,).
        seconds, cpu_seconds: wall and process CPU time of this update.

    Example:
        >>> import numpy as np
        >>> from linlens.workflows._examples import tracked_run
        >>> tr = tracked_run()  # A = diag(2, 1, 0.5); steps 0, 1 with C = A⁻¹ (step + 1)/2: φᵢ = 0.5, then 1
        >>> p = tr.history_[-1]
        >>> C_last = np.diag([0.5, 1.0, 2.0])  # A⁻¹
        >>> p.step, round(p.r2, 8), np.round(p.filter_factors, 8).tolist(), bool(np.allclose(p.coef, C_last))
        (1, 1.0, [1.0, 1.0, 1.0], True)
        >>> "coef" in p.to_dict() and p.to_dict()["coef"] is None
        True
    """

    step: int
    r2: float
    test_mse: float | None
    errors: dict[str, dict[str, Any]]
    verdict: str | None
    signal_noise: dict[str, dict[str, Any]] | None
    filter_factors: np.ndarray | None
    band_filter_factors: np.ndarray | None
    leakage: float | None
    local: dict[str, Any] | None
    ranks: dict[str, int] | None
    rank_gap: float | None
    stratum: str | None
    stratum_dim: int | None
    coef: np.ndarray
    intercept: np.ndarray
    seconds: float
    cpu_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary without the coefficient matrix."""
        return super().to_dict() | {"coef": None}


@dataclass(frozen=True)
class TrackingResult(ResultMixin):
    """A tracker's setup and its history, in step order (what reports and ``metrics.json`` take).

    Example:
        >>> import numpy as np
        >>> from linlens.workflows._examples import tracked_run
        >>> tr = tracked_run()  # A = diag(2, 1, 0.5); steps 0, 1 with C = A⁻¹ (step + 1)/2: φᵢ = 0.5, then 1
        >>> r = tr.result()
        >>> r.steps.tolist(), np.round(r.factors(), 8).tolist()
        ([0, 1], [[0.5, 0.5, 0.5], [1.0, 1.0, 1.0]])
    """

    setup: TrackSetup
    points: list[TrackPoint]

    @property
    def steps(self) -> np.ndarray:
        """(n_steps,) the steps."""
        return np.array([p.step for p in self.points])

    def factors(self) -> np.ndarray | None:
        """(n_steps, k) filter factors per step, or None without A."""
        if not self.points or self.points[0].filter_factors is None:
            return None
        return np.stack([p.filter_factors for p in self.points])


@dataclass
class _Context:
    """Everything prepared once (see :meth:`Tracker._prepare`)."""

    Yf: np.ndarray
    Yt: np.ndarray
    Xt: np.ndarray | None
    Yj: np.ndarray
    cov_y: np.ndarray
    design: FixedDesign
    S_T: np.ndarray
    T_c: np.ndarray
    refs: dict[str, np.ndarray]
    ref_pert: dict[str, Perturbation | None]
    mb: MultiplierBootstrap | None
    snm: SignalNoiseModel | None
    A: np.ndarray | None
    svd_A: SVDResult | None
    setup: TrackSetup
    cast: dict[str, Any] = field(default_factory=dict)


class Tracker:
    """Track the global linear surrogate of a network during training, on a fixed probe set.

    Arguments:
        probes: inputs y (n, d_in); the first half fits the surrogate at each step, the second half tests it.
        targets: the true outputs x (n, d_out) paired with ``probes``, or None. With them: C_data (the least-squares
            fit of x on y, on ``train_inputs``/``train_targets`` when given, else on the fit half of the probe
            pairs), the test MSE, and with ``operator`` the Wiener estimator.
        operator: the forward operator A (n_y = d_in, n_x = d_out) (any operator :mod:`linlens.operators` takes),
            or None. With it: A⁻¹/A⁺ and Wiener references, filter factors, signal error and noise amplification;
            it needs ``targets`` or both ``prior_covariance`` and ``noise_std``.
        train_inputs, train_targets: training pairs for C_data and the estimated Σₓ, σ (optional).
        prior_covariance: Σₓ (d_out, d_out); default the covariance of the (training or fit-half) targets.
        noise_std: σ of white noise on y; default estimated from the residual y − Ax of those pairs.
        n_boot: multiplier-bootstrap replicates (drawn once: the same draws at every step).
        ci: confidence level.
        seed: seed of the draws.
        n_bands: bands of A's singular index.
        n_jacobian: test probes at which Jacobians are taken (0: no local-vs-global distance).
        every: :meth:`update` computes only when ``step % every == 0`` (others return None).
        rank_tol: relative tolerance of the deep-linear rank list (default that of
            :meth:`~linlens.fibers.LinearNetwork.rank_list`).
        batch_size: rows per model call.

    Attributes:
        history_: list of :class:`TrackPoint`, in call order. setup_: :class:`TrackSetup` (after the first update).

    Example:
        >>> import torch
        >>> rng = np.random.default_rng(0); A = np.diag([2.0, 1.0, 0.5]); X = rng.normal(size=(200, 3))
        >>> tr = Tracker(X @ A.T + 0.1 * rng.normal(size=(200, 3)), X, A, n_boot=20, n_jacobian=0, n_bands=3)
        >>> net = torch.nn.Linear(3, 3, bias=False).double()
        >>> for step in (0, 1):  # C = A⁻¹ (step + 1)/2: every filter factor φᵢ = (step + 1)/2
        ...     _ = net.weight.data.copy_(torch.tensor(np.linalg.inv(A) * (step + 1) / 2)); _ = tr.update(net, step)
        >>> [round(float(p.band_filter_factors[0]), 8) for p in tr.history_], tr.update(net, 3) is not None
        ([0.5, 1.0], True)
        >>> Tracker(X, every=2).update(net, 1) is None  # steps not divisible by `every` are skipped
        True
    """

    def __init__(self, probes: Any, targets: Any = None, operator: Any = None, *, train_inputs: Any = None,
                 train_targets: Any = None, prior_covariance: Any = None, noise_std: float | None = None,
                 n_boot: int = 100, ci: float = 0.95, seed: int = 0, n_bands: int = 8, n_jacobian: int = 32,
                 every: int = 1, rank_tol: float | None = None, batch_size: int = 8192) -> None:
        self.probes = probes
        self.targets = targets
        self.operator = operator
        self.train_inputs = train_inputs
        self.train_targets = train_targets
        self.prior_covariance = prior_covariance
        self.noise_std = noise_std
        self.n_boot = n_boot
        self.ci = ci
        self.seed = seed
        self.n_bands = n_bands
        self.n_jacobian = n_jacobian
        self.every = every
        self.rank_tol = rank_tol
        self.batch_size = batch_size
        self.history_: list[TrackPoint] = []
        self._ctx: _Context | None = None

    # ------------------------------------------------------------------------------------------------ set-up
    @property
    def setup_(self) -> TrackSetup:
        """The :class:`TrackSetup` (prepared on first use)."""
        return self._context().setup

    def _context(self) -> _Context:
        if self._ctx is None:
            self._ctx = self._prepare()
        return self._ctx

    def _prepare(self) -> _Context:
        """Split the probes, factorize their design, build the references and the bootstrap draws (once)."""
        for name, v, lo in (("every", self.every, 1), ("n_jacobian", self.n_jacobian, 0), ("n_boot", self.n_boot, 10),
                            ("n_bands", self.n_bands, 1), ("batch_size", self.batch_size, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ConfigError(f"{name} must be an integer ≥ {lo}; got {v!r}")
        if not 0 < self.ci < 1:
            raise ConfigError(f"ci must be in (0, 1); got {self.ci!r}")
        Yp = as_array(self.probes, "probes", ndim=2)
        half = len(Yp) // 2
        if half < 3:
            raise ShapeError(f"probes: need at least 6 rows (half fit, half test); got {len(Yp)}")
        Yf, Yt = Yp[:half], Yp[half:]
        n_y = Yp.shape[1]
        notes: list[str] = []
        Xp = None if self.targets is None else as_array(self.targets, "targets", ndim=2)
        if Xp is not None and len(Xp) != len(Yp):
            raise ShapeError(f"targets must have one row per probe ({len(Yp)}); got {len(Xp)}")
        if (self.train_inputs is None) != (self.train_targets is None):
            raise ConfigError("give both train_inputs and train_targets, or neither")
        if self.train_inputs is not None and Xp is None:
            raise ConfigError("train_inputs/train_targets need targets for the probes (the references are compared "
                              "on probe pairs)")
        if self.train_inputs is not None:
            Ytr = as_array(self.train_inputs, "train_inputs", ndim=2)
            Xtr = as_array(self.train_targets, "train_targets", ndim=2)
            if len(Ytr) != len(Xtr) or Ytr.shape[1] != n_y or Xtr.shape[1] != Xp.shape[1]:
                raise ShapeError(f"training pairs must be (n, {n_y}) inputs and (n, {Xp.shape[1]}) targets; got "
                                 f"{Ytr.shape} and {Xtr.shape}")
            src = "train"
        elif Xp is not None:
            Ytr, Xtr, src = Yf, Xp[:half], "fit"  # same rows as the surrogate: the same multipliers (paired)
            notes.append(f"C_data is fitted on the {half} fit-half probe pairs (no training pairs given); it is "
                         "resampled with the surrogate's own multipliers")
        else:
            Ytr = Xtr = None
            src = ""
        n_x = Xp.shape[1] if Xp is not None else None
        Amat = snm = svd_A = None
        refs: dict[str, np.ndarray] = {}
        ref_pert: dict[str, Perturbation | None] = {}
        status: dict[str, str] = {}
        noise_std = None
        if self.operator is not None:
            Amat, a_op = operator_matrix(self.operator, "operator")
            notes.extend(a_op.notes)
            if Amat.shape[0] != n_y or (n_x is not None and Amat.shape[1] != n_x):
                raise ShapeError(f"operator must map targets ({n_x if n_x is not None else 'd_out'}) to probes "
                                 f"({n_y}): shape ({n_y}, {n_x if n_x is not None else 'd_out'}); got {Amat.shape}")
            n_x = Amat.shape[1]
            if Xtr is None and (self.prior_covariance is None or self.noise_std is None):
                raise ConfigError("operator without targets needs both prior_covariance and noise_std")
            Sx = (np.cov(Xtr.T, bias=True).reshape(n_x, n_x) if self.prior_covariance is None
                  else check_covariance(self.prior_covariance, n_x, "prior_covariance"))
            if self.noise_std is not None:
                noise_std = check_noise_std(self.noise_std, "noise_std")
            else:
                noise_std = noise_std_estimate(Ytr - Xtr @ Amat.T).value
                notes.append(f"noise σ estimated from the pairs' residual y − Ax: {noise_std:.4g}")
            snm = SignalNoiseModel(Amat, Sx, float(noise_std), n_bands=self.n_bands)
            svd_A = snm.svd_A
            inv = "A⁻¹" if n_x == n_y else "A⁺"
            ps = pinv_svd(svd_A, Amat.shape)
            refs[inv] = (ps.U * ps.s) @ ps.Vt
            refs["Wiener"] = wiener_estimator(Amat, Sx, float(noise_std))
            status[inv] = status["Wiener"] = "fixed (given or exact)"
            ref_pert[inv] = ref_pert["Wiener"] = None
            est_prior, est_sigma = self.prior_covariance is None, self.noise_std is None
            if Xtr is not None and (est_prior or est_sigma):
                ref_pert["Wiener"] = wiener_perturbation(Amat, Sx, float(noise_std), Xtr, Ytr,
                                                         prior_estimated=est_prior, noise_estimated=est_sigma,
                                                         source=src)
                status["Wiener"] = f"estimated from {len(Ytr)} pairs: resampled with them"
        if Xtr is not None:
            dtr = FixedDesign(Ytr)
            refs["C_data"] = dtr.fit(Xtr)[0]
            ref_pert["C_data"] = dtr.perturbation(Xtr, src)
            status["C_data"] = f"estimated: resampled with its own {len(Ytr)} rows"
        design = FixedDesign(Yf)
        S_T, s_T = probe_covariance(Yt)
        T_c = (Yt - Yt.mean(axis=0)) / s_T
        mb = None
        if refs:
            sizes = {"fit": half} | ({"train": len(Ytr)} if src == "train" else {})
            mb = MultiplierBootstrap(sizes, n_boot=int(self.n_boot), seed=self.seed)
        Xt = None if Xp is None else Xp[half:]
        ref_mse: dict[str, float] = {}
        if Xt is not None:
            ref_mse["zero (predict the mean)"] = float(np.mean((Xtr.mean(0) - Xt) ** 2))
            for k, R in refs.items():
                icpt = Xtr.mean(0) - Ytr.mean(0) @ R.T
                ref_mse[k] = float(np.mean((Yt @ R.T + icpt - Xt) ** 2))
        rff = {k: filter_factors(R, None, svd_A=svd_A).factors for k, R in refs.items()} if svd_A is not None else {}
        bands = None
        if snm is not None:
            k = svd_A.s.size
            bands = np.array([[a, min(b, k)] for a, b in snm.bands if a < k], dtype=int)
        setup = TrackSetup(
            n_fit=half, n_test=len(Yt), n_jacobian=min(int(self.n_jacobian), len(Yt)), references=list(refs),
            reference_status=status, singular_values_A=None if svd_A is None else svd_A.s.copy(), bands=bands,
            reference_filter_factors=rff,
            reference_band_factors={k: np.array([v[a:b].mean() for a, b in bands]) for k, v in rff.items()},
            reference_test_mse=ref_mse, noise_std=None if noise_std is None else float(noise_std), ci=float(self.ci),
            notes=notes)
        return _Context(Yf=Yf, Yt=Yt, Xt=Xt, Yj=Yt[: setup.n_jacobian], cov_y=np.cov(Yp.T, bias=True).reshape(n_y, n_y),
                        design=design, S_T=S_T, T_c=T_c, refs=refs, ref_pert=ref_pert, mb=mb, snm=snm, A=Amat,
                        svd_A=svd_A, setup=setup)

    def _cast_design(self, ctx: _Context, Yf_m: np.ndarray, Yt_m: np.ndarray) -> tuple[FixedDesign, np.ndarray,
                                                                                          np.ndarray]:
        """The design and test statistics of the inputs as the model received them (a cast to float32 changes
        them): factorized once per distinct cast and reused at later steps."""
        if np.array_equal(Yf_m, ctx.Yf) and np.array_equal(Yt_m, ctx.Yt):
            return ctx.design, ctx.S_T, ctx.T_c
        c = ctx.cast
        if not (c and np.array_equal(c["Yf"], Yf_m) and np.array_equal(c["Yt"], Yt_m)):
            S, s = probe_covariance(Yt_m)
            c.clear()
            c.update(Yf=Yf_m, Yt=Yt_m, design=FixedDesign(Yf_m), S=S, T=(Yt_m - Yt_m.mean(axis=0)) / s)
        return c["design"], c["S"], c["T"]

    # ------------------------------------------------------------------------------------------------ update
    def update(self, model: Any, step: int) -> TrackPoint | None:
        """Compute the linear picture of ``model`` at ``step`` and append it to ``history_``.

        The model is probed in eval mode without gradients; its training flag is restored afterwards.

        Arguments:
            model: a torch callable mapping probes (b, d_in) to outputs (b, d_out).
            step: the training step or epoch (an integer ≥ 0).

        Returns:
            The :class:`TrackPoint`, or None when ``step % every != 0``.
        """
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ConfigError(f"step must be an integer ≥ 0; got {step!r}")
        ctx = self._context()
        if step % int(self.every):
            return None
        t0, c0 = time.perf_counter(), time.process_time()
        was_training = getattr(model, "training", None)
        try:
            point = self._compute(ctx, model, int(step))
        finally:
            if was_training is not None:
                model.train(was_training)
        point = _with_time(point, time.perf_counter() - t0, time.process_time() - c0)
        self.history_.append(point)
        return point

    def _compute(self, ctx: _Context, model: Any, step: int) -> TrackPoint:
        Yf_m, Ff = probe_all(model, ctx.Yf, batch_size=self.batch_size)
        Yt_m, Ft = probe_all(model, ctx.Yt, batch_size=self.batch_size)
        note = cast_note(model)
        if note and note not in ctx.setup.notes:
            ctx.setup.notes.append(note)
        if ctx.Xt is not None and Ft.shape[1] != ctx.Xt.shape[1]:
            raise ShapeError(f"the model outputs {Ft.shape[1]} values; the targets have {ctx.Xt.shape[1]}")
        design, S_m, T_m = self._cast_design(ctx, Yf_m, Yt_m)
        fitp = design.perturbation(Ff, "fit")  # the surrogate, from the design factorized once
        C = fitp.coef
        intercept = Ff.mean(axis=0) - design.mean @ C.T
        r2, _ = r2_scores(Ft, Yt_m @ C.T + intercept)
        errors: dict[str, dict[str, Any]] = {}
        verdict = None
        sn = None
        if ctx.refs:
            boot = _multiplier_statistics(ctx.mb, fitp, C, ctx.refs, ctx.ref_pert, S_m, T_m, ctx.snm, ctx.A,
                                          ctx.svd_A, svd(C), ctx.setup.ci)
            ctx.mb.clear()
            table = summarize(boot)
            for k, v in table.items():  # as the study: errors, signal and noise terms are ≥ 0 (clip the interval)
                if k in ctx.refs or k in ("signal_error", "noise_amplification", "total") or k.startswith("band_"):
                    v["low"], v["high"] = max(v["low"], 0.0), max(v["high"], 0.0)
                    v["noise_dominated"] = not v["low"] <= v["estimate"] <= v["high"]
            errors = {k: table[k] for k in ctx.refs}
            verdict = closest_reference(boot, list(ctx.refs)).text()
            if ctx.snm is not None:
                sn = {k: table[k] for k in table
                      if k in ("signal_error", "noise_amplification", "total") or k.startswith("band_")}
        ff = bff = leak = None
        if ctx.svd_A is not None:
            f = filter_factors(C, None, svd_A=ctx.svd_A)
            ff, leak = f.factors, f.leakage
            bff = np.array([ff[a:b].mean() for a, b in ctx.setup.bands])
        local = None
        if ctx.setup.n_jacobian and float(np.linalg.norm(C)) > 0:
            lvg = JacobianField(model, device="cpu").local_vs_global(C, ctx.Yj, covariance=ctx.cov_y)
            local = lvg.to_dict()
        ranks = gap = stratum = sdim = None
        ws = deep_linear_weights(model)
        if ws is not None:
            net = LinearNetwork(ws)
            rl = net.rank_list(self.rank_tol, warn=False)
            ranks = {f"r_{j}_{i}": int(r) for (j, i), r in sorted(rl.ranks.items())}
            gap = float(rl.smallest_gap)
            try:
                st = net.stratum(self.rank_tol)
                stratum, sdim = st.label, int(st.dim)
            except ConfigError as exc:  # stated in the point and the notes: the ranks stand, no stratum
                stratum = "not realizable"
                msg = (f"at some steps the numerical ranks at tolerance {self.rank_tol} are not a realizable rank "
                       f"list ({exc}); the stratum is then reported as 'not realizable'")
                if not any(n.startswith("at some steps the numerical ranks") for n in ctx.setup.notes):
                    ctx.setup.notes.append(msg)
        test_mse = None if ctx.Xt is None else float(np.mean((Ft - ctx.Xt) ** 2))
        return TrackPoint(step=step, r2=float(r2), test_mse=test_mse, errors=errors, verdict=verdict, signal_noise=sn,
                          filter_factors=ff, band_filter_factors=bff, leakage=leak, local=local, ranks=ranks,
                          rank_gap=gap, stratum=stratum, stratum_dim=sdim, coef=C, intercept=intercept,
                          seconds=math.nan, cpu_seconds=math.nan)

    def result(self) -> TrackingResult:
        """The setup and the history sorted by step (:class:`TrackingResult`)."""
        return TrackingResult(setup=self.setup_, points=sorted(self.history_, key=lambda p: p.step))


@dataclass(frozen=True)
class SpectralBias(ResultMixin):
    """When each singular component of A is learned, against its singular value.

    Attributes:
        components: (m,) singular indices used: those whose final filter factor is at least ``min_final`` and,
            when the Wiener estimator is a reference, whose Wiener factor is at least ``min_final`` too (the
            components a good estimator keeps; the others end near 0 and have no meaningful half-rise step).
        singular_values: (m,) σᵢ(A) of those; half_steps: (m,) the step at half of the final φᵢ
            (:func:`half_rise_steps`; NaN when never reached).
        spearman_rho, p_value: Spearman's rank correlation between σᵢ and the half-rise step and its two-sided
            p-value (negative ρ: larger singular values are learned earlier); NaN with fewer than 3 components.
        min_final: the threshold.

    Example:
        >>> setup = TrackSetup(3, 3, 0, [], {}, np.array([3.0, 2.0, 1.0]), np.array([[0, 3]]), {}, {}, {}, None, 0.95)
        >>> pts = [TrackPoint(t, 1.0, None, {}, None, None, 1 - np.exp(-t * np.array([3.0, 2.0, 1.0])), None,
        ...        None, None, None, None, None, None, np.zeros((3, 3)), np.zeros(3), 0.0, 0.0) for t in range(20)]
        >>> sb = spectral_bias(TrackingResult(setup, pts))  # φᵢ(t) = 1 − exp(−σᵢ t): half of 1 at t = ln 2/σᵢ
        >>> sb.singular_values.tolist(), bool(sb.half_steps[0] < sb.half_steps[1] < sb.half_steps[2])
        ([3.0, 2.0, 1.0], True)
    """

    components: np.ndarray
    singular_values: np.ndarray
    half_steps: np.ndarray
    spearman_rho: float
    p_value: float
    min_final: float


def spectral_bias(result: TrackingResult, min_final: float = 0.5) -> SpectralBias:
    """The spectral-bias statistic of a tracked run with an operator: half-rise step per component vs σᵢ(A).

    Example:
        >>> setup = TrackSetup(3, 3, 0, [], {}, np.array([3.0, 2.0, 1.0]), np.array([[0, 3]]), {}, {}, {}, None,
        ...                    0.95)
        >>> pts = [TrackPoint(t, 1.0, None, {}, None, None, 1 - np.exp(-t * np.array([3.0, 2.0, 1.0])), None,
        ...        None, None, None, None, None, None, np.zeros((3, 3)), np.zeros(3), 0.0, 0.0)
        ...        for t in range(0, 20)]
        >>> sb = spectral_bias(TrackingResult(setup, pts))
        >>> sb.components.tolist(), sb.spearman_rho
        ([0, 1, 2], -1.0)
    """
    from scipy.stats import spearmanr

    F = result.factors()
    if F is None:
        raise ConfigError("the spectral-bias plot needs filter factors: track with an operator")
    s = result.setup.singular_values_A
    keep = F[-1] >= min_final
    w = result.setup.reference_filter_factors.get("Wiener")
    if w is not None:
        keep &= w >= min_final
    idx = np.flatnonzero(keep)
    t = half_rise_steps(result.steps, F[:, idx]) if idx.size else np.zeros(0)
    ok = np.isfinite(t)
    rho = p = math.nan
    if ok.sum() >= 3 and np.ptp(t[ok]) > 0:
        r = spearmanr(s[idx][ok], t[ok])
        rho, p = float(r.statistic), float(r.pvalue)
    return SpectralBias(components=idx, singular_values=s[idx], half_steps=t, spearman_rho=rho, p_value=p,
                        min_final=float(min_final))


def _with_time(p: TrackPoint, wall: float, cpu: float) -> TrackPoint:
    from dataclasses import replace

    return replace(p, seconds=float(wall), cpu_seconds=float(cpu))
