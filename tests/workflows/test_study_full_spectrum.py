"""``analyze --targets --full-spectrum``: the dense study's references (Wiener, C_data) get every singular value above
the size rule REFERENCE_SPECTRUM_MAX_D (lowered here), checked against numpy's SVD of the same reference matrices
formed independently; the default keeps the leading values with nulls and reasons; nothing else changes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from linlens.errors import ConfigError
from linlens.surrogate import compare_operators
from linlens.workflows import study
from linlens.workflows.analyze import AnalyzeOptions, plan, run

D, N_TR, N_PR, SIGMA = 150, 400, 700, 0.05
SPECTRAL = {"singular_values_R", "singular_value_rel_error", "spectra", "rank_info_R", "log_spectral_distance",
            "omitted", "subspaces"}


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    d = tmp_path_factory.mktemp("fullspec")
    rng = np.random.default_rng(7)
    Q1, Q2 = (np.linalg.qr(rng.normal(size=(D, D)))[0] for _ in range(2))
    A = (Q1 * np.geomspace(2.0, 0.05, D)) @ Q2.T
    S = np.eye(D)
    Xtr, Xp = rng.normal(size=(N_TR, D)), rng.normal(size=(N_PR, D))
    Ytr = Xtr @ A.T + SIGMA * rng.normal(size=(N_TR, D))
    Yp = Xp @ A.T + SIGMA * rng.normal(size=(N_PR, D))
    W = S @ A.T @ np.linalg.inv(A @ S @ A.T + SIGMA**2 * np.eye(D))  # the Wiener estimator (Σₓ, σ given)
    lin = torch.nn.Linear(D, D, bias=False).double()
    lin.weight.data = torch.as_tensor(W + 0.01 * rng.normal(size=(D, D)))
    torch.jit.script(lin).save(str(d / "m.pt"))
    for k, v in {"y": Yp, "x": Xp, "ytr": Ytr, "xtr": Xtr, "A": A, "S": S}.items():
        np.save(d / f"{k}.npy", v)
    Z = np.c_[Ytr, np.ones(N_TR)]  # C_data: least squares of x on (y, 1), by numpy's lstsq
    refs = {"Wiener": W, "C_data": np.linalg.lstsq(Z, Xtr, rcond=None)[0][:D].T}
    return d, refs, lin.weight.data.numpy()


def _study(d, monkeypatch, full: bool) -> dict:
    monkeypatch.setattr(study, "REFERENCE_SPECTRUM_MAX_D", 100)
    out = d / f"rep{int(full)}"
    o = AnalyzeOptions(model=str(d / "m.pt"), inputs=d / "y.npy", targets=d / "x.npy", operator=str(d / "A.npy"),
                       train_inputs=d / "ytr.npy", train_targets=d / "xtr.npy", prior_covariance=d / "S.npy",
                       noise_std=SIGMA, n_boot=10, local_samples=0, assume="dense", out=out, trust_model=True,
                       full_spectrum=full)
    assert plan(o).name == "study"
    run(o)
    return json.loads((out / "metrics.json").read_text())["study"]


def test_full_spectrum_gives_the_references_every_value_and_changes_nothing_else(case, monkeypatch):
    d, refs, C = case
    part, full = _study(d, monkeypatch, False), _study(d, monkeypatch, True)
    mp, mf = part["models"]["model"], full["models"]["model"]
    for k, R in refs.items():
        s = np.linalg.svd(R, compute_uv=False)  # the independent route: numpy's SVD of the reference formed here
        cp, cf = mp["comparisons"][k], mf["comparisons"][k]
        # default: the size rule's leading 129 values, ranks and log-spectral distance null with their reasons
        assert cp["spectra"]["R"] == f"leading 129 of {D}"
        np.testing.assert_allclose(cp["singular_values_R"], s[:129], rtol=0, atol=1e-10 * s[0])
        assert cp["rank_info_R"] is None and cp["log_spectral_distance"] is None
        assert cp["omitted"]["rank_info_R"].startswith("only the leading 129")
        assert "log_spectral_distance" in cp["omitted"]
        # --full-spectrum: every value, equal to numpy's; rank and log-spectral distance as compare_operators' full
        # LAPACK route on the same matrices (C: the linear model's weights, its surrogate to rounding)
        assert cf["spectra"]["R"] == f"all {D}" and cf["omitted"] == {}
        np.testing.assert_allclose(cf["singular_values_R"], s, rtol=0, atol=1e-10 * s[0])
        ref = compare_operators(C, R)
        assert cf["rank_info_R"]["rank"] == ref.rank_info_R.rank
        assert cf["log_spectral_distance"] == pytest.approx(ref.log_spectral_distance, rel=1e-6)
        # everything else in the comparison is the default run's (the relative errors per index on the values both
        # hold: the partial ones from the Gram route's values, to rounding)
        assert {f: v for f, v in cp.items() if f not in SPECTRAL} == {f: v for f, v in cf.items() if f not in SPECTRAL}
        np.testing.assert_allclose(cp["singular_value_rel_error"], cf["singular_value_rel_error"][:129], rtol=1e-8)
        assert cp["subspaces"]["rank_R"] is None and cf["subspaces"]["rank_R"]["rank"] == ref.subspaces.rank_R.rank
        sub = ("rank_R", "singular_values_R")
        assert {f: v for f, v in cp["subspaces"].items() if f not in sub} == \
            {f: v for f, v in cf["subspaces"].items() if f not in sub}
        np.testing.assert_allclose(cf["subspaces"]["singular_values_R"], s, rtol=0, atol=1e-10 * s[0])
    assert "A⁻¹" in mp["comparisons"] and mp["comparisons"]["A⁻¹"] == mf["comparisons"]["A⁻¹"]  # from A's SVD
    # errors, intervals, verdicts, splits, test MSEs: identical
    for key in set(mp) - {"comparisons"}:
        assert mp[key] == mf[key], key
    for key in set(part) - {"models", "notes"}:
        assert part[key] == full[key], key
    np_, nf = [n for n in part["notes"] if "REFERENCE_SPECTRUM_MAX_D" in n], \
        [n for n in full["notes"] if "REFERENCE_SPECTRUM_MAX_D" in n]
    assert len(np_) == len(nf) == 1
    assert "leading 129 of 150" in np_[0] and "--full-spectrum" in np_[0]
    assert "--full-spectrum" in nf[0] and "was given" in nf[0] and "every singular value" in nf[0]
    assert "was given" in (d / "rep1" / "report.html").read_text()  # the report's notes say it too


@pytest.mark.parametrize("route", ["fourier", "matrix_free"])
def test_full_spectrum_is_refused_on_the_targets_routes_without_reference_spectra(case, route):
    d, _, _ = case
    extra = {"fourier": {"assume": "shift-invariant"}, "matrix_free": {"components": 4}}[route]
    o = AnalyzeOptions(model=str(d / "m.pt"), inputs=d / "y.npy", targets=d / "x.npy", operator=str(d / "A.npy"),
                       full_spectrum=True, **extra)
    with pytest.raises(ConfigError, match="^--full-spectrum is not used by the (Fourier|matrix-free)") as exc:
        plan(o)
    assert "\n" not in str(exc.value)
