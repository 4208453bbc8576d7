"""Issue 25, messages: refusals name the right thing (file, row, option) — NaN in memory-mapped inputs on the
subspace route, a bad --reference there — and degenerate inputs (constant or duplicated rows) are refused instead
of giving an R² without a warning."""

from __future__ import annotations

import numpy as np
import pytest

from linlens.cli import main


def _run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


@pytest.fixture
def d(tmp_path):
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(200, 4))
    np.save(tmp_path / "y.npy", Y)
    Yn = Y.copy()
    Yn[57, 2] = np.nan
    np.save(tmp_path / "nan.npy", Yn)
    np.save(tmp_path / "const.npy", np.ones((200, 4)))
    np.save(tmp_path / "dup.npy", np.repeat(Y[:1], 200, axis=0))
    np.save(tmp_path / "Rnan.npy", np.full((4, 4), np.nan))
    return tmp_path


def test_subspace_route_names_the_row_and_the_reference(d, capsys):
    base = ["analyze", "-m", "torch.nn:Identity", "--components", "2"]
    code, _, err = _run([*base, "-i", d / "nan.npy", "-o", d / "a"], capsys)
    assert code == 2 and "--inputs" in err and "row 57" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = _run([*base, "-i", d / "y.npy", "-r", d / "Rnan.npy", "-o", d / "b"], capsys)
    assert code == 2 and "reference" in err and "Rnan.npy" in err and "row 0" in err, err
    for name in ("const.npy", "dup.npy"):
        code, _, err = _run([*base, "-i", d / name, "-o", d / "c"], capsys)
        assert code == 2 and "identical" in err and len(err.strip().splitlines()) == 1, err
    assert not any((d / k).exists() for k in "abc")
