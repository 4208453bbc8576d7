"""linlens.workflows.analyze_dense (``run_dense``, the dense route in memory) against independent routes: numpy's
least squares on all rows (C, b) and scikit-learn's R² of the training rows' fit on the held-out rows (a nonlinear
model), the known map behind κ ≈ 2e7 inputs (which must take the TSQR pass), and the closed-form error 1/4 of
C = W against R = 2W."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score

from linlens.workflows._examples import linear_files
from linlens.workflows.analyze_common import holdout_mask
from linlens.workflows.analyze_dense import run_dense
from linlens.workflows.analyze_options import AnalyzeOptions, Route


class _Bent(torch.nn.Module):
    """f(y) = W y + 0.3 tanh(G y) + b: not linear, so the surrogate is a least-squares fit, not W."""

    def __init__(self, W, G, b):
        super().__init__()
        self.W, self.G, self.b = (torch.nn.Parameter(torch.as_tensor(a, dtype=torch.float64)) for a in (W, G, b))

    def forward(self, y):
        return y @ self.W.T + 0.3 * torch.tanh(y @ self.G.T) + self.b


def _save(module, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(module).save(str(path))


def _run(tmp_path, Y, module, batch_size=64, **kw):
    _save(module, tmp_path / "m.pt")
    np.save(tmp_path / "y.npy", Y)
    o = AnalyzeOptions(model=str(tmp_path / "m.pt"), inputs=tmp_path / "y.npy", out=tmp_path / "rep",
                       trust_model=True, batch_size=batch_size, **kw)
    summary = run_dense(o, Route("dense", "test"))
    return summary, json.loads((tmp_path / "rep" / "metrics.json").read_text())


def test_surrogate_and_held_out_r2_match_numpy_and_scikit_learn(tmp_path):
    rng = np.random.default_rng(0)
    W, G, b = rng.normal(size=(3, 5)), 2 * rng.normal(size=(3, 5)), rng.normal(size=3)
    Y = rng.normal(size=(400, 5)) + 0.5
    net = _Bent(W, G, b)
    _, m = _run(tmp_path, Y, net, batch_size=37)  # batches that do not divide n
    with torch.no_grad():
        F = net(torch.as_tensor(Y)).numpy()
    held = holdout_mask(0, len(Y), 0)
    assert m["r2_split"]["n_held_out"] == held.sum() and 0 < held.sum() < len(Y)
    full = np.linalg.lstsq(np.c_[Y, np.ones(len(Y))], F, rcond=None)[0]  # the reported C, b: all rows
    np.testing.assert_allclose(m["coef"], full[:-1].T, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(m["intercept"], full[-1], rtol=1e-9, atol=1e-10)
    train = np.linalg.lstsq(np.c_[Y[~held], np.ones((~held).sum())], F[~held], rcond=None)[0]  # R²: held-out rows
    pred = Y[held] @ train[:-1] + train[-1]
    assert m["r2"] == pytest.approx(r2_score(F[held], pred, multioutput="variance_weighted"), rel=1e-9)
    np.testing.assert_allclose(m["r2_split"]["r2_per_output"], r2_score(F[held], pred, multioutput="raw_values"),
                               rtol=1e-9)
    assert 0.5 < m["r2"] < 1 - 1e-3  # the tanh part is visible: not a trivially linear case
    assert not np.allclose(train, full, atol=1e-6)  # so the two fits are told apart
    assert m["model_passes"] == 1


def test_ill_conditioned_inputs_take_the_tsqr_pass_and_recover_the_map(tmp_path, ill_conditioned_linear):
    """κ ≈ 2e7: a Gram solve loses ~κ²·eps ≈ 0.1 of relative accuracy, TSQR ~κ·eps; the map M is known."""
    Y, M, lin = ill_conditioned_linear
    _, m = _run(tmp_path, Y, lin, batch_size=500)
    assert m["model_passes"] == 2 and m["solver"] != "gram"
    C = np.asarray(m["coef"])
    assert np.linalg.norm(C - M) / np.linalg.norm(M) < 1e-6


def test_reference_twice_the_map_has_error_one_quarter(tmp_path):
    """C = W exactly (a linear model), R = 2W: ‖(C − R)y‖² / ‖Ry‖² = ‖Wy‖² / ‖2Wy‖² = 1/4 on every row."""
    d, W = linear_files()
    np.save(d / "R.npy", 2 * W)
    o = AnalyzeOptions(model=str(d / "m.pt"), inputs=d / "y.npy", out=d / "rep", trust_model=True,
                       reference=d / "R.npy")
    s = run_dense(o, Route("dense", "test"))
    m = json.loads((d / "rep" / "metrics.json").read_text())
    assert m["comparison"]["data_weighted_error"] == pytest.approx(0.25, rel=1e-9)
    assert m["comparison"]["rel_fro_error"] == pytest.approx(0.5, rel=1e-9)
    assert s["data-weighted error vs R"] == pytest.approx(0.25, rel=1e-9)
    e = m["data_weighted_error_corrected"]  # held-out rows, training fit (= W): also 1/4 on every row, no spread
    assert e["estimate"] == pytest.approx(0.25, rel=1e-9)
    assert e["low"] == pytest.approx(0.25, rel=1e-9) and e["high"] == pytest.approx(0.25, rel=1e-9)


def _lin(W):
    lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=False).double()
    lin.weight.data = torch.as_tensor(W)
    return torch.nn.Sequential(torch.nn.Flatten(), lin)


def test_reference_above_the_size_rule_gets_its_leading_pairs_labelled(tmp_path, monkeypatch):
    """Above the study's size rule (lowered here to 256; d = 600) R gets its leading 128 pairs + 129 values only:
    the filter factors there equal numpy's full-SVD route φⱼ = uⱼᵀ C vⱼ / σⱼ and the closed form (C = R F, F the
    filter on R's right singular vectors: φⱼ = fⱼ); what needs R's whole spectrum is null with the reason; the
    labels are in metrics.json and the report; --full-spectrum restores every pair (and those equal numpy's too)."""
    from linlens.workflows import study

    monkeypatch.setattr(study, "REFERENCE_SPECTRUM_MAX_D", 256)
    rng = np.random.default_rng(1)
    d, side = 600, (24, 25)
    Q1, Q2 = (np.linalg.qr(rng.normal(size=(d, d)))[0] for _ in range(2))
    s = np.geomspace(10.0, 0.1, d)  # distinct: relative gaps ~0.8%
    f = 1.0 / (1.0 + np.linspace(0.0, 3.0, d))  # the model's filter on R's singular pairs
    R = (Q1 * s) @ Q2.T
    W = (Q1 * (s * f)) @ Q2.T  # C = W exactly (a linear model): φⱼ = uⱼᵀ W vⱼ / σⱼ = fⱼ
    np.save(tmp_path / "R.npy", R)
    Y = rng.normal(size=(1300, 1, *side))
    _, m = _run(tmp_path, Y, _lin(W), batch_size=512, reference=str(tmp_path / "R.npy"), n_boot=10)
    C = np.load(tmp_path / "rep" / "surrogate_coef.npy")
    U, sn, Vt = np.linalg.svd(R)  # the independent route: numpy's full SVD
    phi = np.einsum("ij,ik,kj->j", U, C, Vt.T) / sn  # uⱼᵀ C vⱼ / σⱼ
    ff = m["filter_factors"]
    k = len(ff["factors"])
    assert k == 128 and ff["r_index"] == list(range(k, 0, -1))  # no cluster at the cut: every pair kept
    np.testing.assert_allclose(ff["factors"][::-1], phi[:k], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ff["factors"][::-1], f[:k], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ff["singular_values"][::-1], 1 / sn[:k], rtol=1e-10)
    assert ff["leakage"] is None and "leakage" in ff["omitted"] and ff["leakage_within_computed"] < 1e-8
    assert "leading 128 of 600" in ff["spectrum"]
    cmpd = m["comparison"]
    assert cmpd["spectra"]["R"] == "leading 129 of 600" and cmpd["spectra"]["C"] == "all 600"
    assert cmpd["rank_info_R"] is None and cmpd["log_spectral_distance"] is None
    assert {"rank_info_R", "log_spectral_distance"} <= set(cmpd["omitted"])
    np.testing.assert_allclose(cmpd["singular_values_R"], sn[:129], rtol=0, atol=1e-12 * sn[0])
    assert len(m["singular_values"]) == d  # C keeps every value, as in the study
    rs = m["reference_spectrum"]
    assert "REFERENCE_SPECTRUM_MAX_D = 256" in rs["why"] and rs["full_spectrum_option"] == "--full-spectrum"
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "leading 129 of 600" in html and "--full-spectrum" in html
    assert (tmp_path / "rep" / "filter_factor_images.png").is_file()

    # --full-spectrum: every pair of R, as below the rule
    _, m2 = _run(tmp_path, Y, _lin(W), batch_size=512, reference=str(tmp_path / "R.npy"), n_boot=10, force=True,
                 full_spectrum=True)
    ff2 = m2["filter_factors"]
    assert len(ff2["factors"]) == d and ff2["leakage"] is not None and "spectrum" not in ff2
    np.testing.assert_allclose(ff2["factors"][::-1], phi, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ff2["factors"][-k:], ff["factors"], rtol=0, atol=1e-10)  # the same pairs agree
    assert m2["comparison"]["spectra"]["R"] == "all 600" and m2["comparison"]["rank_info_R"] is not None
    assert m2["reference_spectrum"]["why"].startswith("--full-spectrum")
    # the size rule changes only what it labels: every other number equals the full route's
    for key in ("r2", "condition_number_inputs", "singular_values", "intercept"):
        np.testing.assert_allclose(m[key], m2[key], rtol=1e-12, atol=0)
    for key in ("data_weighted_error", "rel_fro_error", "rel_spectral_error"):
        np.testing.assert_allclose(cmpd[key], m2["comparison"][key], rtol=1e-12, atol=0)
    p = len(cmpd["singular_values_R"])
    np.testing.assert_allclose(cmpd["singular_values_R"], m2["comparison"]["singular_values_R"][:p], rtol=1e-12)
    assert cmpd["rank_info_C"] == m2["comparison"]["rank_info_C"]


def test_reference_with_one_flat_leading_cluster_takes_the_full_svd_and_says_why(tmp_path, monkeypatch):
    """R = 2·I above the size rule (a denoiser's A⁻¹ up to scale): the leading 129 values are one cluster, so no
    whole cluster has vectors; the route takes R's full SVD, says why, and the filter factors equal the closed form
    (one cluster: φ = tr(Vᵀ C A V)/d = tr(C)/(2d), A = R⁺ = I/2) (it used to stop after the model pass)."""
    from linlens.workflows import study

    monkeypatch.setattr(study, "REFERENCE_SPECTRUM_MAX_D", 256)
    rng = np.random.default_rng(3)
    d = 300
    np.save(tmp_path / "R.npy", 2.0 * np.eye(d))
    W = 1.9 * np.eye(d) + 0.01 * rng.normal(size=(d, d))
    _, m = _run(tmp_path, rng.normal(size=(900, d)), _lin(W), batch_size=256, reference=str(tmp_path / "R.npy"),
                n_boot=10)
    assert "one cluster" in m["reference_spectrum"]["why"] and m["comparison"]["spectra"]["R"] == f"all {d}"
    C = np.load(tmp_path / "rep" / "surrogate_coef.npy")
    ff = m["filter_factors"]
    assert len(ff["factors"]) == d
    np.testing.assert_allclose(ff["factors"], 0.5 * np.trace(C) / d, rtol=1e-10)  # Φ = Vᵀ C A V, A = R⁺ = I/2


def test_full_spectrum_without_reference_is_refused(tmp_path):
    from linlens.errors import ConfigError
    from linlens.workflows.analyze import plan

    o = AnalyzeOptions(model="m.pt", inputs=tmp_path / "y.npy", full_spectrum=True)
    with pytest.raises(ConfigError, match="^--full-spectrum asks for every singular pair of the reference R"):
        plan(o)
