"""The short answer that opens `linlens analyze`'s surrogate-only reports (dense, subspace) and the Fourier route's:
its numbers are metrics.json's, and on models whose answer is known in closed form it says that answer
(an affine model: R² = 1, error 0 against its own matrix, verdict "closer to R than the zero map")."""

import html
import json
import re
import warnings

import numpy as np
import pytest
import torch
from _cases import CircConv, write_circular_blur

from linlens.cli import main


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    assert exc.value.code in (0, None), capsys.readouterr().err


def _script(module, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(module).save(str(path))


def _answer(folder):
    """The answer section's lines, as plain text, and the page (the section must open it)."""
    page = (folder / "report.html").read_text(encoding="utf-8")
    m = re.search(r"<section class='answer'>(.*?)</section>", page, re.DOTALL)
    assert m is not None, "the report has no answer section"
    assert page.index("<section class='answer'>") < page.index("<table")  # it opens the page
    lines = [html.unescape(re.sub(r"<[^>]+>", "", li)) for li in re.findall(r"<li>(.*?)</li>", m.group(1))]
    assert 2 <= len(lines) <= 6, lines
    assert lines[-1].startswith("Look next:")
    return lines


@pytest.fixture(scope="module")
def affine(tmp_path_factory):
    d = tmp_path_factory.mktemp("ans")
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 4).double()
    _script(lin, d / "lin.pt")
    np.save(d / "M.npy", lin.weight.detach().numpy())
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4)).double()
    _script(net, d / "net.pt")
    np.save(d / "y.npy", np.random.default_rng(0).standard_normal((1500, 6)))
    return d


def test_dense_answer_numbers_are_the_metrics(affine, capsys):
    d = affine
    _run(["analyze", "--trust-model", "-m", d / "lin.pt", "-i", d / "y.npy", "-r", d / "M.npy", "-o", d / "a"],
         capsys)
    met = json.loads((d / "a" / "metrics.json").read_text())
    lines = _answer(d / "a")
    text = " ".join(lines)
    # closed form: an affine model is its own surrogate (R² = 1) and at error 0 from its own matrix
    assert met["r2"] == pytest.approx(1.0, abs=1e-12)
    assert met["comparison"]["data_weighted_error"] < 1e-20
    assert f"R² = {met['r2']:.4g}" in lines[0] and f"{met['nonlinear_residual_fraction']:.3g}" in lines[0]
    assert f"{met['r2_split']['n_held_out']} held-out rows" in lines[0]
    e = met["data_weighted_error_corrected"]  # bias-corrected, with its interval and verdict (row-group sums)
    assert f"= {e['estimate']:.4g} [{e['low']:.4g}, {e['high']:.4g}]" in text
    assert f"Plug-in over all rows: {met['comparison']['data_weighted_error']:.4g}" in text
    assert met["verdict"]["verdict"] == "R" and "closer to R than the zero map" in text
    assert f"{met['comparison']['rel_fro_error']:.3g}" in text


def test_dense_answer_without_reference_and_nonlinear_model(affine, capsys):
    d = affine
    _run(["analyze", "--trust-model", "-m", d / "net.pt", "-i", d / "y.npy", "-o", d / "b"], capsys)
    met = json.loads((d / "b" / "metrics.json").read_text())
    lines = _answer(d / "b")
    assert met["r2"] < 0.9999  # a tanh network is not affine
    assert f"R² = {met['r2']:.4g}" in lines[0] and f"{1 - met['r2']:.3g}" in lines[0]
    assert any("No reference given: --reference" in li for li in lines)


def test_subspace_answer_has_the_interval_and_verdict_of_the_metrics(affine, capsys):
    d = affine
    _run(["analyze", "--trust-model", "-m", d / "net.pt", "-i", d / "y.npy", "--components", 6, "-r", d / "M.npy",
          "-o", d / "s"], capsys)
    met = json.loads((d / "s" / "metrics.json").read_text())
    lines = _answer(d / "s")
    text = " ".join(lines)
    e = met["data_weighted_error_corrected"]
    assert f"R² = {met['r2']:.4g}" in lines[0] and f"{met['outside_variance_fraction']:.3g}" in lines[0]
    assert f"{e['estimate']:.4g} [{e['low']:.4g}, {e['high']:.4g}]" in text
    v = met["verdict"]
    words = "closer to R than the zero map" if v["verdict"] == "R" else "no clearer than the zero map"
    assert f"{words} (p = {v['none_p_value']:.2g})" in text


def test_fourier_answer_numbers_are_the_metrics(tmp_path, capsys):
    write_circular_blur(tmp_path, 600)
    _script(CircConv(), tmp_path / "net.pt")
    _run(["analyze", "--trust-model", "-m", tmp_path / "net.pt", "-i", tmp_path / "y.npy", "-t", tmp_path / "x.npy",
          "--operator", tmp_path / "A.npy", "--n-boot", 20, "-o", tmp_path / "f"], capsys)
    met = json.loads((tmp_path / "f" / "metrics.json").read_text())
    assert met["route"] == "fourier"
    lines = _answer(tmp_path / "f")
    text = " ".join(lines)
    an = met["analysis"]
    for name, est in an["errors_corrected"].items():
        lo, hi = an["error_intervals"][name]
        assert f"vs {name} {est:.4g} [{lo:.4g}, {hi:.4g}]" in lines[0]
    closest = an["closest"]
    assert (f"closest to {closest}" if closest not in ("tie", "none") else closest.replace("none", "no reference")
            .replace("tie", "tied between")) in lines[0]
    te = met["test_errors"]
    assert (f"network {te['mse']['model']:.4g}, its surrogate {te['mse']['surrogate (in-sample)']:.4g}, C_data "
            f"{te['mse']['C_data']:.4g}") in text
    g = te["gain"]  # the split of network − C_data (stats.gain_split): both parts' intervals and p-values
    for part, name in (("nonlinear", "network − surrogate"), ("linear", "surrogate − C_data")):
        d = g[part]
        assert f"{name} {d['estimate']:.3g} [{d['low']:.3g}, {d['high']:.3g}]" in text
        assert f"p = {d['p_value']:.2g}" in text or d["p_value"] < 1e-16
    # a linear convolution: all of its output power is linear in y
    lf = float(re.search(r"How linear: ([0-9.e+-]+) of the network's output power", text).group(1))
    assert lf > 0.999


def test_dense_answer_says_when_r2_is_in_sample(tmp_path, capsys):
    # 3 rows leave fewer than 2 on one side of the held-out split: R² is in-sample, and the answer must not call it
    # held out
    torch.manual_seed(0)
    _script(torch.nn.Linear(2, 2).double(), tmp_path / "lin.pt")
    np.save(tmp_path / "y.npy", np.random.default_rng(1).standard_normal((3, 2)))
    _run(["analyze", "--trust-model", "-m", tmp_path / "lin.pt", "-i", tmp_path / "y.npy", "-o", tmp_path / "r"],
         capsys)
    met = json.loads((tmp_path / "r" / "metrics.json").read_text())
    lines = _answer(tmp_path / "r")
    assert met["r2_split"]["kind"] == "in-sample"
    assert "in-sample" in lines[0] and "held-out rows" not in lines[0]
    assert any(li.startswith("Warnings (") for li in lines) == bool(met["warnings"])
