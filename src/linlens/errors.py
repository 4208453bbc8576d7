"""Exceptions raised by linlens.

Every error a user can cause derives from :class:`LinlensError`; the CLI turns them into a one-line
message and exit code 2. Messages name the argument, what was expected and what was found.
"""

from __future__ import annotations

import re as _re

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
    "one_line",
]

# TorchScript wraps the real error in its own traceback: the cause is the last "SomethingError: ..." line
_SCRIPT_HEADER = "The following operation failed in the TorchScript interpreter"
_CAUSE = _re.compile(r"^(?:[\w.]+(?:Error|Exception)): .+$", _re.MULTILINE)


def one_line(exc: BaseException, limit: int = 300) -> str:
    r"""The message of ``exc`` that tells the user what went wrong, on one line, cut only at a word.

    For an error raised inside a TorchScript program, whose first line is only "The following operation failed
    in the TorchScript interpreter.", the underlying error (the traceback's last ``...Error: ...`` line) is
    returned, as the Python API would show it. Whitespace runs become single spaces; a message longer than
    ``limit`` characters is cut at the last space before it and ends with "…".

    Arguments:
        exc: the exception.
        limit: the most characters kept.

    Returns:
        ``"TypeName: message"`` (just the type's name when the message is empty).

    Example:
        >>> one_line(ValueError("shapes differ\n  (more detail)"))
        'ValueError: shapes differ (more detail)'
        >>> err = RuntimeError("The following operation failed in the TorchScript interpreter.\nTraceback ...\n"
        ...                    "RuntimeError: mat1 and mat2 shapes cannot be multiplied (10x16 and 32x8)")
        >>> one_line(err)
        'RuntimeError: mat1 and mat2 shapes cannot be multiplied (10x16 and 32x8)'
        >>> one_line(OSError("word " * 100), limit=22)
        'OSError: word word…'
    """
    text = str(exc).strip()
    name = type(exc).__name__
    if text.startswith(_SCRIPT_HEADER):
        causes = _CAUSE.findall(text)
        if causes:
            return _cut(" ".join(causes[-1].split()), limit)
    if not text:
        return name
    return _cut(f"{name}: {' '.join(text.split())}", limit)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    return (head.rsplit(" ", 1)[0] if " " in head else head) + "…"


class LinlensError(Exception):
    """Base class of every error linlens raises on bad input or failed numerics.

    Each subclass also derives from the built-in exception its case would raise (``ShapeError`` is a
    ``ValueError``, ``InputFileError`` an ``OSError``, …), so code that catches those keeps working.

    Example:
        >>> try:
        ...     raise ConfigError("alpha must be ≥ 0; got -1")
        ... except LinlensError as e:
        ...     print(type(e).__name__, "|", e)
        ConfigError | alpha must be ≥ 0; got -1
    """


class ShapeError(LinlensError, ValueError):
    """An array has the wrong number of dimensions or the wrong sizes.

    Example:
        >>> isinstance(ShapeError("m"), LinlensError), isinstance(ShapeError("m"), ValueError)
        (True, True)
    """


class NonFiniteError(LinlensError, ValueError):
    """An array holds NaN or Inf where finite numbers are required.

    Example:
        >>> isinstance(NonFiniteError("m"), LinlensError), isinstance(NonFiniteError("m"), ValueError)
        (True, True)
    """


class EmptyInputError(LinlensError, ValueError):
    """An array or data set has no samples.

    Example:
        >>> isinstance(EmptyInputError("m"), LinlensError), isinstance(EmptyInputError("m"), ValueError)
        (True, True)
    """


class TrainingDiverged(LinlensError, RuntimeError):
    """Training produced a non-finite loss; the message names the epoch and the last finite loss.

    Example:
        >>> e = TrainingDiverged("loss is NaN at epoch 3", epoch=3, last_finite_loss=0.5)
        >>> isinstance(e, LinlensError), isinstance(e, RuntimeError), e.epoch, e.last_finite_loss
        (True, True, 3, 0.5)
    """

    def __init__(self, message: str, epoch: int | None = None, last_finite_loss: float | None = None):
        super().__init__(message)
        self.epoch = epoch
        self.last_finite_loss = last_finite_loss


class InputFileError(LinlensError, OSError):
    """A file is missing, unreadable, or does not hold what was expected.

    Example:
        >>> isinstance(InputFileError("m"), LinlensError), isinstance(InputFileError("m"), OSError)
        (True, True)
    """


class ModelError(LinlensError, RuntimeError):
    """A user's model could not be loaded or raised when called.

    Example:
        >>> isinstance(ModelError("m"), LinlensError), isinstance(ModelError("m"), RuntimeError)
        (True, True)
    """


class ReportExistsError(LinlensError, FileExistsError):
    """The report folder exists and overwriting it was not requested.

    Example:
        >>> isinstance(ReportExistsError("m"), LinlensError), isinstance(ReportExistsError("m"), FileExistsError)
        (True, True)
    """


class NotFittedError(LinlensError, AttributeError):
    """An estimator was used before ``fit``.

    Example:
        >>> isinstance(NotFittedError("m"), LinlensError), isinstance(NotFittedError("m"), AttributeError)
        (True, True)
    """


class ConfigError(LinlensError, ValueError):
    """A hyper-parameter or option has an invalid value.

    Example:
        >>> isinstance(ConfigError("m"), LinlensError), isinstance(ConfigError("m"), ValueError)
        (True, True)
    """


class NumericalWarning(UserWarning):
    """A result is numerically fragile (small singular-value gap, ill-conditioning, …).

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     warnings.warn("gap σ_k/σ_k+1 = 1.01", NumericalWarning)
        >>> w[0].category.__name__, issubclass(NumericalWarning, UserWarning)
        ('NumericalWarning', True)
    """


class ComplexInputError(LinlensError, TypeError):
    """Complex numbers were given where linlens analyses real-valued maps (refused for every format).

    Example:
        >>> isinstance(ComplexInputError("m"), LinlensError), isinstance(ComplexInputError("m"), TypeError)
        (True, True)
    """


class MemoryLimitError(LinlensError, MemoryError):
    """A run would need more memory than allowed; the message names the estimate and the option to raise.

    Example:
        >>> isinstance(MemoryLimitError("m"), LinlensError), isinstance(MemoryLimitError("m"), MemoryError)
        (True, True)
    """


class UnsafeModelError(ModelError):
    """A model file's graph holds an operation outside the allow-list (files, processes, network, Python).

    Example:
        >>> isinstance(UnsafeModelError("m"), LinlensError), isinstance(UnsafeModelError("m"), ModelError)
        (True, True)
    """
