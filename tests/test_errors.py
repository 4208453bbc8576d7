"""linlens.errors: one hierarchy, every user error a LinlensError and also the matching builtin (so callers
that catch ValueError/OSError keep working); the CLI turns any of them into one line and exit code 2."""

from __future__ import annotations

import inspect

import pytest

import linlens.errors as errors
from linlens.cli import main

BUILTIN = {"ShapeError": ValueError, "NonFiniteError": ValueError, "EmptyInputError": ValueError,
           "ConfigError": ValueError, "TrainingDiverged": RuntimeError, "ModelError": RuntimeError,
           "InputFileError": OSError, "ReportExistsError": FileExistsError, "NotFittedError": AttributeError,
           "ComplexInputError": TypeError, "MemoryLimitError": MemoryError, "UnsafeModelError": RuntimeError}


def test_all_lists_every_exception_class():
    defined = {n for n, o in vars(errors).items() if inspect.isclass(o) and o.__module__ == errors.__name__}
    assert defined == {n for n in errors.__all__ if inspect.isclass(getattr(errors, n))}


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_each_error_is_a_linlens_error_and_its_builtin(name):
    cls = getattr(errors, name)
    assert issubclass(cls, errors.LinlensError) and issubclass(cls, BUILTIN[name])


def test_numerical_warning_is_a_warning_not_an_error():
    assert issubclass(errors.NumericalWarning, UserWarning)
    assert not issubclass(errors.NumericalWarning, errors.LinlensError)


def test_training_diverged_keeps_epoch_and_last_loss():
    e = errors.TrainingDiverged("loss is nan at epoch 3", epoch=3, last_finite_loss=0.5)
    assert (e.epoch, e.last_finite_loss, str(e)) == (3, 0.5, "loss is nan at epoch 3")


def test_cli_turns_a_linlens_error_into_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.delenv("LINLENS_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["fibers", "strata", "--widths", "2,x", "--rank", "0"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert err.startswith("error:") and "\n" not in err
