"""`analyze --targets`: the inverse study on files a user could have, against closed forms."""

import json

import numpy as np
import pytest
import torch
from _cases import CircConv, write_circular_blur

from linlens.errors import ShapeError
from linlens.problems import GaussianPrior, InverseProblem, prescribed_spectrum
from linlens.workflows.inverse import noise_std_interval, run_inverse, split_rows

TRUST = {"trust_model": True}  # these tests load the TorchScript files they wrote

S = np.logspace(0, -2, 8)
SIGMA = 0.05


class ImageLinear(torch.nn.Module):
    """x̂ = W y on inputs shaped as 1×2×4 images, outputs as 2×4 images (plain torch)."""

    def __init__(self, W: np.ndarray):
        super().__init__()
        self.lin = torch.nn.Linear(8, 8, bias=False).double()
        with torch.no_grad():
            self.lin.weight.copy_(torch.as_tensor(W))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.lin(y.reshape(y.shape[0], 8)).reshape(y.shape[0], 2, 4)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inv")
    prob = InverseProblem(prescribed_spectrum(S, seed=3), GaussianPrior(8), SIGMA)
    X, Y = prob.sample(6000, seed=1)
    np.save(d / "y.npy", Y.reshape(-1, 1, 2, 4))
    np.save(d / "x.npy", X.reshape(-1, 2, 4))
    np.save(d / "A.npy", prob.A)
    torch.jit.script(ImageLinear(prob.wiener())).save(str(d / "wiener.pt"))
    torch.jit.script(ImageLinear(np.zeros((8, 8)))).save(str(d / "zero.pt"))
    return d, prob


def test_wiener_model_on_image_shaped_files(files):
    d, prob = files
    out = d / "rep"
    summary = run_inverse(str(d / "wiener.pt"), d / "y.npy", d / "x.npy", out, operator=str(d / "A.npy"),
                          n_boot=40, local_samples=50, load_model_kwargs=TRUST)
    m = json.loads((out / "metrics.json").read_text())
    model = m["study"]["models"]["model"]
    # the model IS the true Wiener estimator, and both references estimate it from the training pairs (Σₓ, σ and
    # C_data): each is resampled with its own rows, so the verdict is an honest tie of the two, not "Wiener"
    assert model["closest"] == "tie" and summary["verdict"] in ("tie (Wiener, C_data)", "tie (C_data, Wiener)")
    status = m["study"]["reference_status"]
    assert status["Wiener"].startswith("estimated (Σₓ and σ") and status["C_data"].startswith("estimated")
    assert status["A⁻¹"].startswith("fixed")
    # exactly linear: no nonlinear gain, whatever it does against C_data (stats.gain_split)
    assert model["gain"]["verdict"] == "no nonlinear gain shown" and model["gain"]["nonlinear"]["estimate"] == 0
    assert summary["nonlinear gain (model vs its surrogate)"] == "no nonlinear gain shown, p = 1"
    # σ estimated from y − Ax with a χ² interval that covers the truth
    assert m["noise_std_interval"][0] <= SIGMA <= m["noise_std_interval"][1]
    # closed-form signal error of the Wiener estimator (Σₓ = I): Σ(1 − φᵢ)²/n, φ = s²/(s² + σ²)
    phi = S**2 / (S**2 + SIGMA**2)
    sn = model["signal_noise_corrected"]["signal_error"]
    assert sn["estimate"] == pytest.approx(np.sum((1 - phi) ** 2) / 8, rel=0.05)
    assert model["r2"] == pytest.approx(1.0, abs=1e-10)
    assert m["input_shape"] == [1, 2, 4] and m["target_shape"] == [2, 4]
    assert np.load(out / "surrogate_coef.npy").shape == (8, 8)
    np.testing.assert_allclose(np.load(out / "surrogate_coef.npy"), prob.wiener(), atol=1e-8)
    assert m["local_vs_global"]["model"]["weighted_distance_median"] < 1e-8  # a linear model is its own surrogate
    assert "signal error" in (out / "report.html").read_text()
    assert (out / "operator_rows.png").exists()  # 2-D images: rows of C and the references as images
    # filter factors (also drawn as images of A's singular vectors): the Wiener model's are s²/(s² + σ²)
    assert (out / "filter_factor_images.png").exists()
    np.testing.assert_allclose(model["filter_factors"]["factors"], np.sort(phi)[::-1], atol=1e-8)


def test_zero_model_is_closest_to_nothing(files):
    d, _ = files
    run_inverse(str(d / "zero.pt"), d / "y.npy", d / "x.npy", d / "rep0", operator=str(d / "A.npy"), n_boot=20,
                local_samples=0, load_model_kwargs=TRUST)
    model = json.loads((d / "rep0" / "metrics.json").read_text())["study"]["models"]["model"]
    assert model["closest"] == "none"


def test_bad_inputs_are_refused_before_any_report(files):
    d, _ = files
    np.save(d / "x_short.npy", np.zeros((10, 2, 4)))
    with pytest.raises(ShapeError, match="one row per input"):
        run_inverse(str(d / "wiener.pt"), d / "y.npy", d / "x_short.npy", d / "bad1", load_model_kwargs=TRUST)
    np.save(d / "A_wrong.npy", np.zeros((7, 8)))
    with pytest.raises(ShapeError, match="operator must map"):
        run_inverse(str(d / "wiener.pt"), d / "y.npy", d / "x.npy", d / "bad2", operator=str(d / "A_wrong.npy"),
                    load_model_kwargs=TRUST)
    np.save(d / "x_wide.npy", np.zeros((6000, 9)))
    with pytest.raises(ShapeError, match="outputs 8 values"):
        run_inverse(str(d / "wiener.pt"), d / "y.npy", d / "x_wide.npy", d / "bad3", n_boot=5, local_samples=0,
                    load_model_kwargs=TRUST)
    np.save(d / "y_few.npy", np.zeros((20, 1, 2, 4)))
    np.save(d / "x_few.npy", np.zeros((20, 2, 4)))
    with pytest.raises(ShapeError, match="under-determined"):
        run_inverse(str(d / "wiener.pt"), d / "y_few.npy", d / "x_few.npy", d / "bad4", load_model_kwargs=TRUST)
    assert not any((d / f"bad{i}").exists() for i in range(1, 5))


def test_row_split_and_noise_interval():
    tr, pr = split_rows(1001, seed=3)
    assert len(set(tr) | set(pr)) == 1001 and len(tr) == 500
    cover = 0
    for r in range(200):
        res = np.random.default_rng(r).normal(scale=0.3, size=(200, 4)) + 5.0
        _, lo, hi = noise_std_interval(res)
        cover += lo <= 0.3 <= hi
    assert cover / 200 >= 0.9


def test_cli_analyze_with_targets_and_bad_operator(files, capsys):
    from linlens.cli import main

    d, _ = files
    out = d / "cli_rep"
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--trust-model", "--model", str(d / "wiener.pt"), "--inputs", str(d / "y.npy"), "--targets",
              str(d / "x.npy"), "--operator", str(d / "A.npy"), "--n-boot", "20", "--out", str(out)])
    assert exc.value.code in (0, None), capsys.readouterr().err
    assert "Wiener" in capsys.readouterr().out
    assert (out / "metrics.json").exists()
    np.save(d / "A_bad.npy", np.zeros((5, 8)))
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--trust-model", "--model", str(d / "wiener.pt"), "--inputs", str(d / "y.npy"), "--targets",
              str(d / "x.npy"), "--operator", str(d / "A_bad.npy"), "--out", str(d / "cli_bad")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "operator" in err
    assert not (d / "cli_bad").exists()


def test_readme_worked_example_runs(tmp_path, capsys):
    """The README's `analyze --targets --operator` example, on the files docs/examples/analyze_inverse.py makes
    with plain numpy and torch (quick size)."""
    import importlib.util
    from pathlib import Path

    from linlens.cli import main

    path = Path(__file__).parents[2] / "docs" / "examples" / "analyze_inverse.py"
    spec = importlib.util.spec_from_file_location("analyze_inverse_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ex = tmp_path / "ex"
    mod.make_files(ex, quick=True)
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--trust-model", "--model", str(ex / "net.pt"), "--inputs", str(ex / "y.npy"), "--targets",
              str(ex / "x.npy"), "--operator", str(ex / "A.npy"), "--n-boot", "20", "--out", str(ex / "report")])
    assert exc.value.code in (0, None), capsys.readouterr().err
    m = json.loads((ex / "report" / "metrics.json").read_text())
    assert m["noise_std_interval"][0] <= 0.01 <= m["noise_std_interval"][1]
    assert m["study"]["models"]["model"]["closest"] in ("Wiener", "C_data", "tie", "none")


def test_fourier_route_is_chosen_for_a_circular_blur_and_dense_on_request(tmp_path):
    write_circular_blur(tmp_path, 800)
    torch.jit.script(CircConv()).save(str(tmp_path / "net.pt"))
    s = run_inverse(str(tmp_path / "net.pt"), tmp_path / "y.npy", tmp_path / "x.npy", tmp_path / "f",
                    operator=str(tmp_path / "A.npy"), n_boot=20, load_model_kwargs=TRUST)
    m_f = json.loads((tmp_path / "f" / "metrics.json").read_text())
    assert m_f["route"] == "fourier" and s["route"].startswith("Fourier")
    assert s["linear fraction of output power"] > 0.999  # a linear convolution is all linear
    assert m_f["noise_std_interval"][0] <= 0.01 <= m_f["noise_std_interval"][1]
    # test errors on the probe images: a linear model equals its surrogate; the signal/noise split (a closed form
    # from Ĉ, H, P and σ) predicts the measured test MSE per pixel (E‖x‖²/d = 1 here) within sampling error
    te = m_f["test_errors"]
    assert te["mse"]["model"] == pytest.approx(te["mse"]["surrogate (in-sample)"], rel=1e-6)
    assert m_f["analysis"]["signal_noise"]["total"]["plug_in"] == pytest.approx(te["mse"]["model"], rel=0.1)
    assert te["paired"]["p_value"] >= 0 and "test MSE C_data" in s
    run_inverse(str(tmp_path / "net.pt"), tmp_path / "y.npy", tmp_path / "x.npy", tmp_path / "d",
                operator=str(tmp_path / "A.npy"), n_boot=10, local_samples=0, assume="dense", load_model_kwargs=TRUST)
    m_d = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert m_d["route"] == "study" and m_d["study"]["models"]["model"]["r2"] > 0.999
    # both routes see the same surrogate: its error against the Wiener estimator agrees within the intervals
    e_d = m_d["study"]["models"]["model"]["errors"]["Wiener"]
    lo, hi = m_f["analysis"]["error_intervals"]["Wiener"]
    assert max(lo, e_d["low"]) <= min(hi, e_d["high"]) * 1.5


def test_separate_training_files_and_prior_covariance(files, capsys):
    """The demo's route: training pairs and Σₓ given as files; every row of --inputs is then a probe."""
    from linlens.cli import main

    d, prob = files
    Y = np.load(d / "y.npy")
    X = np.load(d / "x.npy")
    np.save(d / "ytr.npy", Y[:3000])
    np.save(d / "xtr.npy", X[:3000])
    np.save(d / "ypr.npy", Y[3000:])
    np.save(d / "xpr.npy", X[3000:])
    np.save(d / "prior.npy", np.eye(8))
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--trust-model", "--model", str(d / "wiener.pt"), "--inputs", str(d / "ypr.npy"), "--targets",
              str(d / "xpr.npy"), "--operator", str(d / "A.npy"), "--train-inputs", str(d / "ytr.npy"),
              "--train-targets", str(d / "xtr.npy"), "--prior-covariance", str(d / "prior.npy"),
              "--noise-std", str(SIGMA), "--n-boot", "20", "--out", str(d / "rep_tr")])
    assert exc.value.code in (0, None), capsys.readouterr().err
    m = json.loads((d / "rep_tr" / "metrics.json").read_text())
    model = m["study"]["models"]["model"]
    # C_data (resampled with its own rows) estimates that same Wiener estimator: a tie, with A⁻¹ left out
    assert model["closest"] == "tie" and m["n_fit"] + m["n_test"] == 3000
    assert set(model["verdict"]["closest"]) == {"Wiener", "C_data"}
    assert m["study"]["reference_status"]["Wiener"].startswith("fixed")
    # with the true Σₓ = I and σ given, the Wiener reference is the closed form: the model's error to it is 0
    assert abs(model["errors"]["Wiener"]["estimate"]) < 1e-12
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--trust-model", "--model", str(d / "wiener.pt"), "--inputs", str(d / "ypr.npy"), "--targets",
              str(d / "xpr.npy"), "--train-inputs", str(d / "ytr.npy"), "--out", str(d / "rep_bad")])
    assert exc.value.code == 2 and "train" in capsys.readouterr().err


def test_local_jacobians_by_default_only_up_to_local_max_d(files, monkeypatch):
    """Default local_samples: LOCAL_ROWS rows up to LOCAL_MAX_D inputs; above it none, and the report says why
    (a d × d Jacobian and a d³ product per row); an explicit local_samples is honoured either way."""
    import linlens.workflows.inverse as inv

    d, _ = files
    kw = dict(operator=str(d / "A.npy"), n_boot=5, load_model_kwargs=TRUST)
    monkeypatch.setattr(inv, "LOCAL_MAX_D", 4)  # these inputs have d = 8
    run_inverse(str(d / "wiener.pt"), d / "y.npy", d / "x.npy", d / "loc_off", **kw)
    assert json.loads((d / "loc_off" / "metrics.json").read_text())["local_vs_global"] is None
    assert "Local Jacobians were not compared" in (d / "loc_off" / "report.html").read_text()
    run_inverse(str(d / "wiener.pt"), d / "y.npy", d / "x.npy", d / "loc_asked", local_samples=7, **kw)
    local = json.loads((d / "loc_asked" / "metrics.json").read_text())["local_vs_global"]["model"]
    assert local["n_samples"] == 7
    monkeypatch.setattr(inv, "LOCAL_MAX_D", 1024)
    run_inverse(str(d / "wiener.pt"), d / "y.npy", d / "x.npy", d / "loc_on", **kw)
    local = json.loads((d / "loc_on" / "metrics.json").read_text())["local_vs_global"]["model"]
    assert local["n_samples"] == min(inv.LOCAL_ROWS, 3000 - 1500)
