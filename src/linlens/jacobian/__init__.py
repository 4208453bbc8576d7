"""Jacobians of trained networks (see :mod:`linlens.jacobian.dense`)."""

from linlens.jacobian.dense import *  # noqa: F403
from linlens.jacobian.dense import DEFAULT_WORK_MEMORY, FIXED_OVERHEAD, __all__  # noqa: F401
