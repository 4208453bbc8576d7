"""linlens: look at trained neural networks through linear algebra.

The core (surrogates, Jacobians, inverse problems) is re-exported here and every name loads on first use
(PEP 562 ``__getattr__``): ``import linlens`` imports neither torch nor the capability packages
(``linlens.flows``, ``linlens.koopman``, ``linlens.fibers``, ``linlens.data``) until a name needs them.

Example:
    >>> import numpy as np, linlens as ll
    >>> X = np.random.default_rng(0).standard_normal((50, 3))
    >>> sur = ll.LinearSurrogate().fit(X, X @ np.array([[1.0, 2.0, 3.0]]).T + 4.0)
    >>> np.round(sur.coef_, 8).tolist(), round(float(sur.intercept_[0]), 8)
    ([[1.0, 2.0, 3.0]], 4.0)
"""

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below are, for readers and type checkers; at run time they load lazily
    from linlens import errors, linalg, problems
    from linlens.jacobian import JacobianField, LocalVsGlobal, jacobian_frobenius_sq, jacobians
    from linlens.surrogate import (
        BootstrapResult,
        FilterFactors,
        LinearSurrogate,
        OperatorComparison,
        bootstrap,
        compare_operators,
        filter_factors,
    )
    from linlens.workflows.study import LinearityStudy, linearity_study

from linlens._version import __version__

_SUBPACKAGES = ("flows", "koopman", "fibers", "data", "report", "nn")
# public name → the module that defines it; loaded on first access (PEP 562), so ``import linlens`` and
# ``import linlens.validation`` do not import torch until a name that needs it is used
_NAMES = {
    **dict.fromkeys(("LinearSurrogate", "compare_operators", "filter_factors", "bootstrap", "OperatorComparison",
                     "FilterFactors", "BootstrapResult"), "linlens.surrogate"),
    **dict.fromkeys(("jacobians", "jacobian_frobenius_sq", "JacobianField", "LocalVsGlobal"), "linlens.jacobian"),
    **dict.fromkeys(("linearity_study", "LinearityStudy"), "linlens.workflows.study"),
}

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
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBPACKAGES or importlib.util.find_spec(f"linlens.{name}") is not None:
        value = importlib.import_module(f"linlens.{name}")  # any submodule, as when the root imported them all
    else:
        raise AttributeError(f"module 'linlens' has no attribute {name!r}")
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
