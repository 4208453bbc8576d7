"""Global linear surrogates: the estimator, operator comparison and filter factors, resampling statistics."""

from linlens.probing import probe_model
from linlens.surrogate.compare import FilterFactors, OperatorComparison, compare_operators, filter_factors
from linlens.surrogate.estimator import LinearSurrogate
from linlens.surrogate.resampling import BootstrapResult, bootstrap

__all__ = [
    "LinearSurrogate",
    "FilterFactors",
    "filter_factors",
    "OperatorComparison",
    "compare_operators",
    "BootstrapResult",
    "bootstrap",
    "probe_model",
]
