"""The linearity study: is a network that inverts a known operator A "spectrally close to A⁻¹"?

For a trained model f (y ↦ x̂) and an :class:`~linlens.problems.InverseProblem`, the study fits the model's
global linear surrogate C on held-out probes and compares it with three references — A⁻¹ (or A⁺), the
closed-form Wiener estimator C* and C_data, the least-squares fit of x on y from the training pairs — by
data-weighted error (with bootstrap intervals), filter factors and the full :func:`compare_operators`
picture. Test MSEs of the network, its surrogate, C_data and C* show how much of the network's accuracy is
linear. The same metrics for an untrained and a weak network give "close" a scale.

References:
    The Wiener/LMMSE fact behind the three references: a squared-error optimum is E[x|y], whose best
    linear fit is the LMMSE estimator (see ``shared/notes/surrogate.md``); Tikhonov filter factors:
    P. C. Hansen, "Rank-Deficient and Discrete Ill-Posed Problems" (SIAM, 1998).

Example:
    >>> import torch
    >>> from linlens.problems import InverseProblem, GaussianPrior, second_difference
    >>> prob = InverseProblem(second_difference(8), GaussianPrior(8), noise_std=0.1)
    >>> X, Y = prob.sample(500, seed=0)
    >>> lin = torch.nn.Linear(8, 8).double()
    >>> res = linearity_study({"net": lin}, prob, X_train=X, Y_train=Y, n_probe=400, n_boot=5)
    >>> round(res.models["net"].r2, 6)
    1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linlens._results import json_safe
from linlens.errors import ShapeError
from linlens.problems import InverseProblem
from linlens.surrogate import (
    FilterFactors,
    LinearSurrogate,
    OperatorComparison,
    bootstrap,
    compare_operators,
    filter_factors,
    probe_model,
)
from linlens.validation import as_array

__all__ = ["ModelLinearity", "LinearityStudy", "linearity_study", "data_weighted_error"]


def data_weighted_error(C: np.ndarray, R: np.ndarray, probes: np.ndarray) -> float:
    """E‖(C − R) y‖² / E‖R y‖² over the rows y of ``probes`` (n, d_in); C and R are (d_out, d_in)."""
    num = np.sum((probes @ (C - R).T) ** 2)
    den = np.sum((probes @ R.T) ** 2)
    return float(num / den) if den > 0 else float("inf")


def _mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error per entry (as ``torch.nn.MSELoss``)."""
    return float(np.mean((pred - target) ** 2))


def _outputs(model: Any, Y: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    return np.concatenate([F for _, _, F in probe_model(model, Y, batch_size=batch_size)])


@dataclass(frozen=True)
class ModelLinearity:
    """How linear one model is, and which reference its surrogate is closest to.

    Attributes:
        coef: surrogate C (d_out, d_in); intercept: (d_out,).
        r2: R² of the surrogate against the model's outputs on held-out probes (1 = exactly linear).
        nonlinear_fraction: ‖F − (Y Cᵀ + c)‖² / ‖F − mean F‖² on held-out probes.
        test_mse_model, test_mse_surrogate: MSE per entry against the true x on the test set.
        data_weighted_errors: reference name → E‖(C − R)y‖²/E‖Ry‖² on test probes.
        intervals: reference name → (low, high) bootstrap percentile interval of that error.
        comparisons: reference name → full :class:`OperatorComparison`.
        filter_factors: Φ = Vᵀ C A V of the surrogate.
        closest: the reference with the smallest data-weighted error.
        local: optional statistics of the model's Jacobians against C (filled by the caller).
    """

    name: str
    coef: np.ndarray
    intercept: np.ndarray
    r2: float
    nonlinear_fraction: float
    test_mse_model: float
    test_mse_surrogate: float
    data_weighted_errors: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    comparisons: dict[str, OperatorComparison]
    filter_factors: FilterFactors
    closest: str
    local: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "name": self.name,
                "r2": self.r2,
                "nonlinear_fraction": self.nonlinear_fraction,
                "test_mse_model": self.test_mse_model,
                "test_mse_surrogate": self.test_mse_surrogate,
                "data_weighted_errors": self.data_weighted_errors,
                "intervals": {k: list(v) for k, v in self.intervals.items()},
                "closest": self.closest,
                "filter_factors": self.filter_factors,
                "comparisons": self.comparisons,
                "local": self.local,
            }
        )


@dataclass(frozen=True)
class LinearityStudy:
    """Result of :func:`linearity_study` (one problem, several models)."""

    problem: str
    noise_std: float
    singular_values_A: np.ndarray
    references: dict[str, np.ndarray]
    reference_filter_factors: dict[str, FilterFactors]
    test_mse: dict[str, float]
    models: dict[str, ModelLinearity]
    ci: float
    notes: list[str] = field(default_factory=list)

    def summary(self, name: str) -> str:
        """One sentence per model: which reference its surrogate is closest to, with numbers."""
        m = self.models[name]
        errs = ", ".join(
            f"{k}: {v:.3g} [{m.intervals[k][0]:.3g}, {m.intervals[k][1]:.3g}]"
            for k, v in m.data_weighted_errors.items()
        )
        lin = self.test_mse.get("C_data")
        gain = (1 - m.test_mse_model / lin) * 100 if lin else float("nan")
        return (
            f"{name}: surrogate closest to {m.closest} in data-weighted error ({errs}; "
            f"{int(self.ci * 100)}% bootstrap intervals); surrogate R² = {m.r2:.4f}; test MSE network "
            f"{m.test_mse_model:.3g} vs its surrogate {m.test_mse_surrogate:.3g} vs C_data {lin:.3g} "
            f"({gain:+.1f}% {'better' if gain > 0 else 'worse'} than the best linear fit of the data)."
        )

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "problem": self.problem,
                "noise_std": self.noise_std,
                "singular_values_A": self.singular_values_A,
                "test_mse": self.test_mse,
                "reference_filter_factors": self.reference_filter_factors,
                "models": {k: v.to_dict() for k, v in self.models.items()},
                "ci": self.ci,
                "notes": self.notes,
            }
        )


def _local_stats(model: Any, C: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    # the Jacobian field is the local-linearization capability; the study only reads its summary
    from linlens.jacobian import JacobianField

    sv = np.linalg.svd(C, compute_uv=False)
    k = int(max(1, min(C.shape[1] - 1, np.sum(sv >= 0.1 * sv[0])))) if sv[0] > 0 else 1
    return JacobianField(model).local_vs_global(C, Y, k=k).to_dict()


def linearity_study(
    models: Mapping[str, Any],
    problem: InverseProblem,
    *,
    X_train: np.ndarray | None = None,
    Y_train: np.ndarray | None = None,
    n_train: int = 20000,
    n_probe: int = 8000,
    n_boot: int = 100,
    ci: float = 0.95,
    seed: int = 0,
    local_samples: int = 0,
) -> LinearityStudy:
    """Compare each model's global linear surrogate with A⁻¹, the Wiener estimator and C_data.

    Arguments:
        models: name → torch callable mapping y (batch, n_y) to x̂ (batch, n_x); typically the trained
            network plus an untrained and a weak one as a null scale.
        problem: the inverse problem (A, prior, σ).
        X_train, Y_train: the training pairs (n, n_x), (n, n_y) used for C_data; drawn from ``problem``
            with ``seed`` when omitted.
        n_probe: held-out probes drawn from the problem (half fit the surrogate, half test it; all test
            MSEs use the second half).
        n_boot: bootstrap resamples of the probe set for the intervals.
        local_samples: when > 0, the Jacobians J(y) of each model at that many test probes are compared with
            its surrogate C (:meth:`linlens.jacobian.JacobianField.local_vs_global`): ‖J − C‖_F/‖C‖_F and
            the largest principal angle between the top-k right singular subspaces, k = #{σᵢ(C) ≥ 0.1 σ₁}
            (for an invertible C the full row spaces coincide trivially, so the dominant ones are compared).

    Returns:
        :class:`LinearityStudy`.
    """
    A = problem.A
    if X_train is None or Y_train is None:
        X_train, Y_train = problem.sample(n_train, seed=seed + 1_000_003)
    X_train = as_array(X_train, "X_train")
    Y_train = as_array(Y_train, "Y_train")
    if X_train.shape[1] != problem.n_x or Y_train.shape[1] != problem.n_y:
        raise ShapeError(
            f"training pairs must be (n, {problem.n_x}) and (n, {problem.n_y}); "
            f"got {X_train.shape} and {Y_train.shape}"
        )
    X_probe, Y_probe = problem.sample(n_probe, seed=seed + 2_000_003)
    half = n_probe // 2
    Yf, Yt, Xt = Y_probe[:half], Y_probe[half:], X_probe[half:]

    c_data = LinearSurrogate(fit_intercept=True).fit(Y_train, X_train)
    refs = {"A⁻¹" if A.shape[0] == A.shape[1] else "A⁺": problem.pinv(), "Wiener": problem.wiener(),
            "C_data": c_data.coef_}
    test_mse = {
        "zero (predict 0)": _mse(np.zeros_like(Xt), Xt),
        "Wiener": _mse(Yt @ refs["Wiener"].T, Xt),
        "C_data": _mse(c_data.predict(Yt), Xt),
    }
    sv_A = np.linalg.svd(A, compute_uv=False)
    results: dict[str, ModelLinearity] = {}
    for name, model in models.items():
        Ff = _outputs(model, Yf)
        Ft = _outputs(model, Yt)
        if Ff.shape[1] != problem.n_x:
            raise ShapeError(f"model {name!r} outputs {Ff.shape[1]} values; the problem's x has {problem.n_x}")
        sur = LinearSurrogate(fit_intercept=True).fit(Yf, Ff)
        pred = sur.predict(Yt)
        resid = np.sum((Ft - pred) ** 2)
        spread = np.sum((Ft - Ft.mean(0)) ** 2)
        dwe = {k: data_weighted_error(sur.coef_, R, Yt) for k, R in refs.items()}

        def stat(coef: np.ndarray, intercept: np.ndarray) -> dict[str, float]:
            return {k: data_weighted_error(coef, R, Yt) for k, R in refs.items()}  # noqa: B023

        boot = bootstrap(Yf, Ff, stat, n_boot=n_boot, seed=seed, ci=ci)
        intervals = {k: (float(boot.low[k]), float(boot.high[k])) for k in refs}
        results[name] = ModelLinearity(
            name=name,
            coef=sur.coef_,
            intercept=sur.intercept_,
            r2=float(sur.score(Yt, Ft)),
            nonlinear_fraction=float(resid / spread) if spread > 0 else 0.0,
            test_mse_model=_mse(Ft, Xt),
            test_mse_surrogate=_mse(pred, Xt),
            data_weighted_errors=dwe,
            intervals=intervals,
            comparisons={k: compare_operators(sur.coef_, R, probes=Yt) for k, R in refs.items()},
            filter_factors=filter_factors(sur.coef_, A),
            closest=min(dwe, key=dwe.get),
            local=_local_stats(model, sur.coef_, Yt[:local_samples]) if local_samples > 0 else None,
        )
    return LinearityStudy(
        problem=problem.name,
        noise_std=float(problem.noise_std),
        singular_values_A=sv_A,
        references=refs,
        reference_filter_factors={k: filter_factors(R, A) for k, R in refs.items()},
        test_mse=test_mse,
        models=results,
        ci=ci,
    )
