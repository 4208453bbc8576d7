"""linlens.workflows.study_report: the report's sentences carry the study's numbers — each checked against the
closed form of a case where they are known (the Wiener estimator and 0.9 × it for A = diag(2, 1, 0.5), Σₓ = I,
σ = 0.1: filter factors sᵢ²/(sᵢ² + σ²) and 0.9 of them), and the local-vs-global distance is 0 exactly when the
network is linear."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from linlens.report import Report
from linlens.workflows.study import inverse_study
from linlens.workflows.study_report import add_study_section, answer_lines, ci_text, local_vs_global, verdict_text

A = np.diag([2.0, 1.0, 0.5])
PHI_W = np.diag(A) ** 2 / (np.diag(A) ** 2 + 0.01)  # the Wiener estimator's filter factors, closed form


def _linear(M):
    net = torch.nn.Linear(3, 3, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(M))
    return net


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 3))
    Y = X @ A.T + 0.1 * rng.normal(size=(1200, 3))
    W = A / (A**2 + 0.01)
    nets = {"w": _linear(W), "shrunk": _linear(0.9 * W),
            "bent": torch.nn.Sequential(_linear(W), torch.nn.Tanh())}
    study = inverse_study(nets, Y[:800], X[:800], X[800:], Y[800:], A=A, prior_covariance=np.eye(3),
                          noise_std=0.1, n_boot=30)
    return study, nets, Y


def test_filter_factor_distances_in_the_text_are_the_closed_form(case):
    study, _, _ = case
    # 0.9 W has φ = 0.9 φ_W: RMS distance to Wiener's factors 0.1·√mean(φ_W²), to A⁻¹'s (all 1) √mean((0.9φ_W − 1)²)
    text = verdict_text(study, "shrunk", total_var=3.0)
    m = re.search(r"are ([\d.e-]+) \(RMS\) from the Wiener estimator's factors diag\(Vᵀ C\* A V\) and ([\d.e-]+) from",
                  text)
    assert m, text
    assert float(m.group(1)) == pytest.approx(0.1 * np.sqrt(np.mean(PHI_W**2)), rel=2e-3)
    assert float(m.group(2)) == pytest.approx(np.sqrt(np.mean((0.9 * PHI_W - 1) ** 2)), rel=2e-3)
    w = re.search(r"are ([\d.e-]+) \(RMS\) from the Wiener", verdict_text(study, "w", total_var=3.0))
    assert float(w.group(1)) < 1e-6  # the Wiener network itself


def test_every_error_interval_of_the_text_is_the_tables(case):
    study, _, _ = case
    for name in ("w", "shrunk"):
        text = verdict_text(study, name, total_var=3.0)
        for k, v in study.models[name].errors.items():
            assert f"{k} {ci_text(v)}" in text
        first, second = answer_lines(study, name, "blur")
        assert first.startswith(f"blur: {name}'s surrogate is ") and second.startswith("blur: in test MSE")


def test_ci_text_rules():
    assert ci_text({"estimate": 0.5, "low": 0.4, "high": 0.6}) == "0.5 [0.4, 0.6]"
    assert ci_text({"estimate": 0.5, "low": 0.1, "high": 0.3, "noise_dominated": True}).startswith(
        "0.5, noise-dominated")
    assert ci_text({"estimate": 1e-4, "low": 0.0, "high": 2e-3, "below_detection": True}) == \
        "below detection: < 0.002"


def test_local_vs_global_is_zero_exactly_for_linear_networks(case):
    study, nets, Y = case
    d = local_vs_global(nets, study, Y[:40])
    assert d["w"]["weighted_distance_median"] == pytest.approx(0.0, abs=1e-12)
    assert d["shrunk"]["weighted_distance_median"] == pytest.approx(0.0, abs=1e-12)
    assert d["bent"]["weighted_distance_median"] > 0.05  # tanh bends the map: J(y) varies around C


def test_the_section_states_notes_and_references(case):
    study, _, _ = case
    rep = Report("r")
    add_study_section(rep, "s", study, good="shrunk", total_var=3.0)
    paras = [b.payload for b in rep._blocks if b.kind == "p"]
    if study.reference_status:
        refs = [p for p in paras if p.startswith("References: ")]
        assert len(refs) == 1 and all(f"{k}: {v}" in refs[0] for k, v in study.reference_status.items())
    assert len(rep.answer) == 2 and rep.answer_next
