"""linlens: look at trained neural networks through linear algebra.

The core (surrogates, Jacobians, inverse problems) is imported here; the capability packages
``linlens.flows``, ``linlens.koopman``, ``linlens.fibers`` and ``linlens.data`` load on first use.

Example:
    >>> import numpy as np, linlens as ll
    >>> X = np.random.default_rng(0).standard_normal((50, 3))
    >>> sur = ll.LinearSurrogate().fit(X, X @ np.array([[1.0, 2.0, 3.0]]).T + 4.0)
    >>> np.round(sur.coef_, 8).tolist(), round(float(sur.intercept_[0]), 8)
    ([[1.0, 2.0, 3.0]], 4.0)
"""

import importlib
from typing import Any

from linlens import errors, linalg, problems
from linlens.jacobian import JacobianField, LocalVsGlobal, jacobian_frobenius_sq, jacobians
from linlens.study import LinearityStudy, linearity_study
from linlens.surrogate import (
    BootstrapResult,
    FilterFactors,
    LinearSurrogate,
    OperatorComparison,
    bootstrap,
    compare_operators,
    filter_factors,
)

__version__ = "0.1.0"

_SUBPACKAGES = ("flows", "koopman", "fibers", "data", "report", "nn")

__all__ = [
    "errors",
    "linalg",
    "problems",
    "LinearSurrogate",
    "compare_operators",
    "filter_factors",
    "bootstrap",
    "OperatorComparison",
    "FilterFactors",
    "BootstrapResult",
    "jacobians",
    "jacobian_frobenius_sq",
    "JacobianField",
    "LocalVsGlobal",
    "linearity_study",
    "LinearityStudy",
    *_SUBPACKAGES,
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"linlens.{name}")
    raise AttributeError(f"module 'linlens' has no attribute {name!r}")
