"""``linlens reproduce denoiser-jacobian`` at tiny size: report contents checked against closed forms
(noisy-input PSNR, homogeneity of the bias-free map, f(y)_p = ⟨row p of J, y⟩) and the CLI error contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from linlens.cli import main
from linlens.workflows.reproduce.denoiser_jacobian import (
    DenoiserJacobianConfig,
    ResidualDenoiser,
    run_denoiser_jacobian,
)

TINY = DenoiserJacobianConfig(n_train=200, copies=1, epochs=1, width=4, depth=3, sigmas=(0.2, 0.5), n_eval=40,
                              n_euler=6, n_jacobian=2, n_val=20, svd_k=3, filter_sigmas=(0.2, 0.35))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("dj") / "rep"
    summary = run_denoiser_jacobian(out, seed=0, device="cpu", config=TINY)
    return out, summary, json.loads((out / "metrics.json").read_text())


def test_report_folder_and_summary(report) -> None:
    out, summary, m = report
    names = {p.name for p in out.iterdir()}
    assert {"metrics.json", "report.html", "euler_test.png", "psnr.png", "effective_dimension.png",
            "adaptive_filters.png", "jacobian_spectra.png"} <= names
    assert summary["wall time (s)"] > 0
    assert m["config"]["sigmas"] == [0.2, 0.5] and m["in_training_range"] == [True, False]
    for key in ("paired_tests", "effective_dimension", "effective_dimension_slope", "matrix_free_vs_dense"):
        assert key in m


def test_euler_test_separates_bias_free_from_biased(report) -> None:
    _, _, m = report
    e = m["euler_relative_residual"]
    assert max(e["bias-free"]["max"]) <= 1e-6
    assert min(e["biased"]["min"]) > 1e-3


def test_numbers_against_closed_forms(report) -> None:
    _, _, m = report
    # the noisy input's PSNR is 10·log10(1/σ²) up to the sample mean of z² over 40 × 784 pixels
    for s, p in zip(m["sigmas"], m["psnr_mean"]["noisy input"], strict=True):
        assert p == pytest.approx(-20 * np.log10(s), abs=0.15)
    # bias-free: each output pixel is its adaptive filter applied to the input
    for key, f in m["adaptive_filters"].items():
        if key.startswith("bias-free"):
            np.testing.assert_allclose(f["filter_dot_input"], f["outputs"], rtol=1e-4, atol=1e-6)
    # matrix-free top-k equals the dense SVD
    for c in m["matrix_free_vs_dense"]:
        assert c["max_abs_diff_over_sigma1"] < 1e-4
    # effective dimensions are sums of squares of ≤ 784 singular values; the Wiener filter's shrinks with σ
    w = m["effective_dimension"]["Wiener"]
    assert 0 < w[1] < w[0] < 784


def test_residual_denoiser_homogeneity_is_exact_without_bias() -> None:
    y = torch.rand(3, 1, 10, 10, dtype=torch.float64)
    free = ResidualDenoiser(width=4, depth=3, bias=False).double()
    biased = ResidualDenoiser(width=4, depth=3, bias=True).double()
    assert torch.allclose(free(2.5 * y), 2.5 * free(y), atol=1e-12)
    assert not torch.allclose(biased(2.5 * y), 2.5 * biased(y), atol=1e-3)


def test_cli_refuses_existing_folder(tmp_path, capsys) -> None:
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "keep.txt").write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "denoiser-jacobian", "--out", str(tmp_path / "rep"), "--quick"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
    assert [p.name for p in (tmp_path / "rep").iterdir()] == ["keep.txt"]
