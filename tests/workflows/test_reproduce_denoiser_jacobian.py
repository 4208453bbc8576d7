"""``linlens reproduce denoiser-jacobian``: the gate (against a simulation whose truth is known, and on an untrained
network, which must fail it and get no paper comparison), the slope interval's coverage by simulation, the Wiener
filter's closed-form effective dimension against the filter itself, the matrix-free routes against the dense
Jacobian, homogeneity of the bias-free network, the quick run's gain (slow) and the CLI error contract."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from linlens.cli import main
from linlens.errors import ConfigError
from linlens.problems import wiener_estimator
from linlens.workflows.reproduce.denoiser_jacobian import (
    QUICK,
    BiasFreeBatchNorm2d,
    DenoiserJacobianConfig,
    ResidualDenoiser,
    denoiser_gate,
    loglog_slope,
    run_denoiser_jacobian,
    wiener_effective_dimension,
)

# an untrained tiny network on MNIST (ships with the test install): everything runs, nothing is learned
UNTRAINED = DenoiserJacobianConfig(data="mnist", n_train=200, n_val=50, max_epochs=0, width=4, depth=3,
                                   sigma_train_max=0.2, sigmas=(0.1, 0.4), n_eval=100, n_euler=6, n_jacobian=20,
                                   n_probes=4, crop=6, n_crops=2, svd_k=3, n_boot=200, filter_sigmas=(0.1,))


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("dj") / "rep"
    summary = run_denoiser_jacobian(out, seed=0, device="cpu", config=UNTRAINED)
    return out, summary, json.loads((out / "metrics.json").read_text())


def test_untrained_network_fails_the_gate_and_the_report_compares_nothing_with_the_paper(untrained) -> None:
    out, summary, m = untrained
    g = m["gate"]
    assert g["passed"] is False and summary["gate (both CNNs beat Wiener in range)"].startswith("FAILED")
    # the verdict is the rule applied to the intervals in metrics.json: every in-range gain must lie above 0
    for net, by_sigma in g["psnr_gain"].items():
        assert list(by_sigma) == ["0.1"]  # only the in-range σ is gated
        assert g["passed_by"][net] == all(v["low"] > 0 for v in by_sigma.values())
        # the gain is the mean of the per-image PSNR differences, i.e. of the means in psnr_mean
        assert by_sigma["0.1"]["mean"] == pytest.approx(m["psnr_mean"][net][0] - m["psnr_mean"]["Wiener"][0])
    assert m["paper_slope"] is None and m["paper_comparison"] is None
    html = (out / "report.html").read_text()
    assert "not a trained denoiser" in html and "Comparison with the paper" not in html
    assert "paper: −1" not in html and "slope −1 (paper)" not in html
    assert "(paper −1)" not in summary["d_eff slope bias-free [95% CI]"]
    assert m["training"]["bias-free"]["epochs_run"] == 0


def test_a_passed_gate_brings_the_paper_comparison(tmp_path, monkeypatch) -> None:
    # the report's branch for a passed gate, on the untrained network with the verdict forced
    import dataclasses

    import linlens.workflows.reproduce.denoiser_jacobian as dj

    real = dj.denoiser_gate
    monkeypatch.setattr(dj, "denoiser_gate", lambda *a, **k: dataclasses.replace(real(*a, **k), passed=True))
    summary = run_denoiser_jacobian(tmp_path / "rep", seed=0, device="cpu", config=UNTRAINED)
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert m["paper_slope"] == -1.0 and len(m["paper_comparison"]) == 4
    assert "Comparison with the paper" in (tmp_path / "rep" / "report.html").read_text()
    assert summary["d_eff slope bias-free [95% CI]"].endswith("(paper −1)")


def test_report_numbers_against_independent_routes(untrained) -> None:
    out, _, m = untrained
    assert {"metrics.json", "report.html", "euler_test.png", "psnr.png", "effective_dimension.png",
            "adaptive_filters.png", "examples.png"} <= {p.name for p in out.iterdir()}
    # the noisy input's PSNR is 10·log10(1/σ²) up to the sample mean of z² over 100 × 784 pixels
    for s, p in zip(m["sigmas"], m["psnr_mean"]["noisy input"], strict=True):
        assert p == pytest.approx(-20 * np.log10(s), abs=0.1)
    # Euler: exact for the bias-free network (float64), clearly not for the biased one
    e = m["euler_relative_residual"]
    assert max(e["bias-free"]["max"]) <= 1e-10 and min(e["biased"]["min"]) > 1e-3
    # bias-free: each output pixel is its adaptive filter applied to the input
    for key, f in m["adaptive_filters"].items():
        if key.startswith("bias-free"):
            np.testing.assert_allclose(f["filter_dot_input"], f["outputs"], rtol=1e-4, atol=1e-6)
    # matrix-free against the dense Jacobian: Lanczos top-k to 1e-4; Hutchinson within 5 of its exact sd
    for c in m["matrix_free_vs_dense"]:
        assert c["svd_max_abs_diff_over_sigma1"] < 1e-4
        assert np.all(np.abs(c["z_score"]) < 5)
    # effective dimensions: ‖J‖_F² > 0 for every patch; the Wiener filter's shrinks with σ and is below d
    for k in ("bias-free", "biased"):
        assert np.all(np.asarray(m["effective_dimension"][k]) > 0)
    w = m["effective_dimension"]["Wiener"]
    assert 0 < w[1] < w[0] < 784


def test_gate_passes_and_fails_on_simulated_psnr_with_known_gains() -> None:
    rng = np.random.default_rng(0)
    w = 25 + 3 * rng.normal(size=(150, 3))  # images differ a lot; the differences are what is tested
    sig, inr = [0.05, 0.1, 0.3], [True, True, False]
    better = w + np.array([0.5, 0.5, -5.0]) + 0.3 * rng.normal(size=w.shape)  # worse only beyond the range
    g = denoiser_gate({"net": better}, w, sig, inr)
    assert g.passed and set(g.psnr_gain["net"]) == {"0.05", "0.1"}
    lo, hi = g.psnr_gain["net"]["0.1"]["low"], g.psnr_gain["net"]["0.1"]["high"]
    assert lo < 0.5 < hi
    half = w + np.array([0.5, -0.5, 0.0]) + 0.3 * rng.normal(size=w.shape)  # worse at one in-range σ
    g2 = denoiser_gate({"good": better, "half": half}, w, sig, inr)
    assert not g2.passed and g2.passed_by == {"good": True, "half": False}
    with pytest.raises(ConfigError, match="at least 100"):
        denoiser_gate({"net": better[:50]}, w[:50], sig, inr)
    with pytest.raises(ConfigError, match="inside the training range"):
        denoiser_gate({"net": better}, w, sig, [False, False, False])


def test_gate_false_pass_rate_when_the_network_only_equals_wiener() -> None:
    # truth: no gain at either in-range σ; each 95% two-sided interval lies above 0 with probability 2.5%, and
    # both must (intersection-union), so the gate passes at most 2.5% of the time
    rng = np.random.default_rng(1)
    n_rep, passes = 400, 0
    for _ in range(n_rep):
        w = 25 + 3 * rng.normal(size=(100, 2))
        net = w + 0.5 * rng.normal(size=w.shape)
        passes += denoiser_gate({"net": net}, w, [0.05, 0.1], [True, True]).passed
    assert passes / n_rep <= 0.025 + 2 * np.sqrt(0.025 * 0.975 / n_rep)


def test_slope_interval_covers_the_true_slope_at_its_level() -> None:
    # d_i(σ) = a_i σ^-1 e^{ε_iσ} with ε iid N(0, 0.3²): E d(σ) ∝ σ^-1, so the population slope is exactly −1
    rng = np.random.default_rng(2)
    sig = np.array([0.05, 0.1, 0.2, 0.4])
    n_rep, cover = 300, 0
    for r in range(n_rep):
        a = np.exp(rng.normal(5, 0.5, size=(20, 1)))
        d = a / sig * np.exp(0.3 * rng.normal(size=(20, 4)))
        res = loglog_slope(sig, d, n_boot=400, seed=r)
        cover += res["low"] <= -1 <= res["high"]
    assert 0.88 <= cover / n_rep <= 0.99


def test_wiener_effective_dimension_is_the_filters_frobenius_norm() -> None:
    rng = np.random.default_rng(3)
    B = rng.normal(size=(30, 30))
    S = B @ B.T / 30
    for s in (0.1, 0.5, 2.0):
        W = wiener_estimator(np.eye(30), S, s)
        assert wiener_effective_dimension(np.linalg.eigvalsh(S), s) == pytest.approx((W**2).sum(), rel=1e-9)


def test_bias_free_batch_norm_and_network_are_homogeneous_the_biased_one_is_not() -> None:
    torch.manual_seed(0)
    bn = BiasFreeBatchNorm2d(3)
    x = torch.randn(8, 3, 5, 5) + 2.0
    y = bn(x)  # training mode: divides by the batch's sd, subtracts nothing
    sd = torch.sqrt(x.var(dim=(0, 2, 3), unbiased=False) + bn.eps)
    torch.testing.assert_close(y, x / sd[None, :, None, None])
    torch.testing.assert_close(bn.running_sd, 0.9 + 0.1 * sd)
    y = torch.rand(3, 1, 10, 10, dtype=torch.float64)
    free = ResidualDenoiser(width=4, depth=4, bias=False).double()
    biased = ResidualDenoiser(width=4, depth=4, bias=True).double()
    free(y), biased(y)  # one training-mode pass moves the running statistics away from their initial values
    free.eval(), biased.eval()
    assert not any(p.numel() and "bias" in n for n, p in free.named_parameters())
    assert torch.allclose(free(2.5 * y), 2.5 * free(y), atol=1e-12)
    assert not torch.allclose(biased(2.5 * y), 2.5 * biased(y), atol=1e-3)


def test_config_refusals() -> None:
    with pytest.raises(ConfigError, match="n_eval ≥ 100"):
        run_denoiser_jacobian(__import__("pathlib").Path("/nonexistent/x"), config=DenoiserJacobianConfig(n_eval=50))
    with pytest.raises(ConfigError, match="data must be"):
        run_denoiser_jacobian(__import__("pathlib").Path("/nonexistent/x"), config=DenoiserJacobianConfig(data="x"))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("skimage") is None, reason="needs scikit-image (linlens[images])")
def test_quick_run_is_a_denoiser_and_its_gate_verdict_follows_its_intervals(tmp_path) -> None:
    out = tmp_path / "quick"
    summary = run_denoiser_jacobian(out, seed=0, device="cpu", quick=True)
    m = json.loads((out / "metrics.json").read_text())
    low = f"{QUICK.sigmas[0]:g}"
    gain = m["paired_tests"][low]["bias-free − noisy input"]
    assert gain["ci95_low"] >= 2.0  # ≥ 2 dB over the noisy input at the lowest σ, the whole interval
    assert m["paired_tests"][low]["biased − Wiener"]["n"] == QUICK.n_eval
    g = m["gate"]
    assert g["passed"] == all(v["low"] > 0 for by in g["psnr_gain"].values() for v in by.values())
    html = (out / "report.html").read_text()
    assert ("Comparison with the paper" in html) == g["passed"]
    assert (m["paper_slope"] == -1.0) == g["passed"]
    assert summary["process CPU time (s)"] > 0


def test_cli_refuses_existing_folder(tmp_path, capsys) -> None:
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "keep.txt").write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "denoiser-jacobian", "--out", str(tmp_path / "rep"), "--quick"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
    assert [p.name for p in (tmp_path / "rep").iterdir()] == ["keep.txt"]
