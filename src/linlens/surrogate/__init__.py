"""Global linear surrogates: the estimator, operator comparison and filter factors, resampling statistics."""

from linlens.probing import probe_model
from linlens.surrogate.compare import FilterFactors, OperatorComparison, compare_operators, filter_factors
from linlens.surrogate.estimator import LinearSurrogate, r2_from_sums, r2_scores, reduced_rank_regression
from linlens.surrogate.resampling import BootstrapResult, bootstrap

__all__ = [
    "LinearSurrogate",
    "r2_scores",
    "r2_from_sums",
    "reduced_rank_regression",
    "FilterFactors",
    "filter_factors",
    "OperatorComparison",
    "compare_operators",
    "BootstrapResult",
    "bootstrap",
    "probe_model",
]
