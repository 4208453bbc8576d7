"""linlens.jacobian, the package: every public name of its modules is re-exported and listed in ``__all__``, and
the names importable before the package was split (from jacobian.py) still are, as the same objects."""

from __future__ import annotations

import importlib

import pytest

import linlens.jacobian as jac

MODULES = ["dense", "memory", "field", "matrix_free", "local"]
# what `from linlens.jacobian import ...` gave when jacobian.py was one module
BEFORE_THE_SPLIT = ["jacobians", "jacobian_frobenius_sq", "estimate_chunk_size", "JacobianField", "LocalVsGlobal",
                    "jacobian_svd", "JacobianSVD", "effective_dimension", "euler_test", "EulerTest",
                    "adaptive_filters", "AdaptiveFilters", "DEFAULT_WORK_MEMORY", "FIXED_OVERHEAD"]


@pytest.mark.parametrize("module", MODULES)
def test_every_module_name_is_re_exported(module):
    mod = importlib.import_module(f"linlens.jacobian.{module}")
    assert mod.__all__, module
    for name in mod.__all__:
        assert name in jac.__all__, f"{module}.{name} is not in linlens.jacobian.__all__"
        assert getattr(jac, name) is getattr(mod, name)


def test_the_package_exports_nothing_else_and_the_old_names_remain():
    union = {n for m in MODULES for n in importlib.import_module(f"linlens.jacobian.{m}").__all__}
    assert set(jac.__all__) == union and len(jac.__all__) == len(union)
    assert set(BEFORE_THE_SPLIT) <= set(jac.__all__)
    ns: dict = {}
    exec("from linlens.jacobian import *", ns)  # noqa: S102 - the star import walks __all__
    assert set(BEFORE_THE_SPLIT) <= set(ns)
