"""Exceptions raised by linlens.

Every error a user can cause derives from :class:`LinlensError`; the CLI turns them into a one-line
message and exit code 2. Messages name the argument, what was expected and what was found.
"""

from __future__ import annotations

__all__ = [
    "LinlensError",
    "ShapeError",
    "NonFiniteError",
    "EmptyInputError",
    "TrainingDiverged",
    "InputFileError",
    "ModelError",
    "ReportExistsError",
    "NotFittedError",
    "ConfigError",
    "NumericalWarning",
    "ComplexInputError",
    "MemoryLimitError",
    "UnsafeModelError",
]


class LinlensError(Exception):
    """Base class of every error linlens raises on bad input or failed numerics."""


class ShapeError(LinlensError, ValueError):
    """An array has the wrong number of dimensions or the wrong sizes."""


class NonFiniteError(LinlensError, ValueError):
    """An array holds NaN or Inf where finite numbers are required."""


class EmptyInputError(LinlensError, ValueError):
    """An array or data set has no samples."""


class TrainingDiverged(LinlensError, RuntimeError):
    """Training produced a non-finite loss; the message names the epoch and the last finite loss."""

    def __init__(self, message: str, epoch: int | None = None, last_finite_loss: float | None = None):
        super().__init__(message)
        self.epoch = epoch
        self.last_finite_loss = last_finite_loss


class InputFileError(LinlensError, OSError):
    """A file is missing, unreadable, or does not hold what was expected."""


class ModelError(LinlensError, RuntimeError):
    """A user's model could not be loaded or raised when called."""


class ReportExistsError(LinlensError, FileExistsError):
    """The report folder exists and overwriting it was not requested."""


class NotFittedError(LinlensError, AttributeError):
    """An estimator was used before ``fit``."""


class ConfigError(LinlensError, ValueError):
    """A hyper-parameter or option has an invalid value."""


class NumericalWarning(UserWarning):
    """A result is numerically fragile (small singular-value gap, ill-conditioning, …)."""


class ComplexInputError(LinlensError, TypeError):
    """Complex numbers were given where linlens analyses real-valued maps (refused for every format)."""


class MemoryLimitError(LinlensError, MemoryError):
    """A run would need more memory than allowed; the message names the estimate and the option to raise."""


class UnsafeModelError(ModelError):
    """A model file's graph holds an operation outside the allow-list (files, processes, network, Python)."""
