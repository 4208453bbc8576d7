"""End-to-end tests of `linlens analyze` and of the CLI's error contract (one line, exit code 2)."""

import json
import warnings

import numpy as np
import pytest
import torch

from linlens.cli import main


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.fixture
def linear_setup(tmp_path):
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 3).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(lin).save(str(tmp_path / "m.pt"))
    Y = np.random.default_rng(0).standard_normal((3000, 5))
    np.save(tmp_path / "y.npy", Y)
    M = lin.weight.detach().numpy()
    np.save(tmp_path / "ref.npy", M)
    return tmp_path, M, lin.bias.detach().numpy()


def test_analyze_recovers_an_affine_model(linear_setup, capsys):
    d, M, b = linear_setup
    code, out, err = _run(["analyze", "--trust-model", "--model", str(d / "m.pt"), "--inputs", str(d / "y.npy"),
                           "--reference",
                           str(d / "ref.npy"), "--out", str(d / "rep"), "--batch-size", "500"], capsys)
    assert code in (0, None), err
    metrics = json.loads((d / "rep" / "metrics.json").read_text())
    np.testing.assert_allclose(np.array(metrics["coef"]), M, atol=1e-10)
    np.testing.assert_allclose(np.array(metrics["intercept"]), b, atol=1e-10)
    assert metrics["r2"] == pytest.approx(1.0, abs=1e-10)
    assert metrics["comparison"]["data_weighted_error"] < 1e-18
    html = (d / "rep" / "report.html").read_text()
    assert "data:image/png;base64" in html


def test_analyze_refuses_to_overwrite_without_force(linear_setup, capsys):
    d, _, _ = linear_setup
    (d / "rep").mkdir()
    (d / "rep" / "mine.txt").write_text("keep me")
    code, _, err = _run(["analyze", "--trust-model", "-m", str(d / "m.pt"), "-i", str(d / "y.npy"), "-o",
                         str(d / "rep")], capsys)
    assert code == 2 and "--force" in err
    assert (d / "rep" / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "case",
    ["missing_inputs", "nan_inputs", "wrong_reference", "empty", "bad_csv", "model_raises", "not_torchscript",
     "nan_outputs", "missing_model"],
)
def test_bad_input_is_one_line_exit_2(linear_setup, capsys, case):
    d, _, _ = linear_setup
    model, inputs, extra = str(d / "m.pt"), str(d / "y.npy"), []
    if case == "missing_inputs":
        inputs = str(d / "nope.npy")
    elif case == "nan_inputs":
        Y = np.ones((10, 5))
        Y[7, 2] = np.nan
        np.save(d / "nan.npy", Y)
        inputs = str(d / "nan.npy")
    elif case == "wrong_reference":
        np.save(d / "r.npy", np.ones((5, 3)))
        extra = ["--reference", str(d / "r.npy")]
    elif case == "empty":
        np.save(d / "e.npy", np.zeros((0, 5)))
        inputs = str(d / "e.npy")
    elif case == "bad_csv":
        (d / "b.csv").write_text("1,2,3,4,5\n1,2,x,4,5\n")
        inputs = str(d / "b.csv")
    elif case == "model_raises":
        np.save(d / "w.npy", np.ones((10, 4)))  # wrong width for the model
        inputs = str(d / "w.npy")
    elif case == "not_torchscript":
        (d / "junk.pt").write_bytes(b"junk")
        model = str(d / "junk.pt")
    elif case == "nan_outputs":
        model = "torch:log"  # log of negative inputs → NaN
    elif case == "missing_model":
        model = str(d / "none.pt")
    code, out, err = _run(["analyze", "--trust-model", "-m", model, "-i", inputs, "-o", str(d / f"rep_{case}"),
                           *extra], capsys)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert not (d / f"rep_{case}").exists()


def test_help_warns_that_module_specs_run_code(capsys):
    code, out, _ = _run(["analyze", "--help"], capsys)
    assert code == 0
    assert "runs" in out and "code" in out


def test_reference_without_a_clear_spectral_gap_reports_no_angles(tmp_path, capsys):
    """Regression: with the gap-aware angles a reference with no clear gap gave no angles, and the report
    crashed on len(None); it now says so."""

    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 16).double()
    torch.jit.script(lin).save(str(tmp_path / "m.pt"))
    rng = np.random.default_rng(0)
    np.save(tmp_path / "y.npy", rng.normal(size=(500, 16)))
    np.save(tmp_path / "R.npy", rng.normal(size=(16, 16)))
    code, out, err = _run(["analyze", "--trust-model", "--model", str(tmp_path / "m.pt"), "--inputs",
                           str(tmp_path / "y.npy"),
                           "--reference", str(tmp_path / "R.npy"), "--out", str(tmp_path / "rep")], capsys)
    assert code in (0, None), err
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert m["comparison"]["k"] is None and m["comparison"]["left_angles"] is None
    assert (tmp_path / "rep" / "surrogate_coef.npy").exists()


def test_images_in_their_native_shape(tmp_path, capsys):
    """Inputs (n, 1, H, W) go to a plain torch conv net in that shape; the surrogate of a linear conv is its
    matrix, built here independently by applying the conv to the basis images."""
    torch.manual_seed(0)
    H = W = 8
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, padding=1, bias=True)).double()
    torch.jit.script(conv).save(str(tmp_path / "conv.pt"))
    with torch.no_grad():
        basis = torch.eye(H * W, dtype=torch.float64).reshape(H * W, 1, H, W)
        M = (conv(basis) - conv(torch.zeros(1, 1, H, W, dtype=torch.float64))).reshape(H * W, H * W).T.numpy()
    rng = np.random.default_rng(0)
    np.save(tmp_path / "y.npy", rng.normal(size=(1500, 1, H, W)))
    np.save(tmp_path / "R.npy", M)
    code, out, err = _run(["analyze", "--trust-model", "--model", str(tmp_path / "conv.pt"), "--inputs",
                           str(tmp_path / "y.npy"),
                           "--reference", str(tmp_path / "R.npy"), "--out", str(tmp_path / "rep")], capsys)
    assert code in (0, None), err
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    np.testing.assert_allclose(np.asarray(m["coef"]), M, atol=1e-9)
    assert m["input_shape"] == [1, H, W] and m["r2"] > 1 - 1e-12
    assert m["comparison"]["data_weighted_error"] < 1e-18
    # C = R: every filter factor is 1 (R⁺ as the forward operator)
    np.testing.assert_allclose(m["filter_factors"]["factors"], 1.0, atol=1e-8)
    for fig in ("operator_rows.png", "filter_factor_images.png"):
        assert (tmp_path / "rep" / fig).is_file()
    # 1-D rows without a feature axis are refused in one line
    np.save(tmp_path / "flat.npy", rng.normal(size=100))
    code, out, err = _run(["analyze", "--trust-model", "--model", str(tmp_path / "conv.pt"), "--inputs",
                           str(tmp_path / "flat.npy"),
                           "--out", str(tmp_path / "rep2")], capsys)
    assert code == 2 and "feature axis" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "rep2").exists()
