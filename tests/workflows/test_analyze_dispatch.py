"""`linlens analyze`: one dispatch. Options × routes: each combination takes a route that uses every option
given, or is refused in one line naming the option and the route (exit 2), before any work."""

from __future__ import annotations

import html
import json
from dataclasses import fields

import numpy as np
import pytest
import torch

from linlens.cli import main
from linlens.errors import ConfigError
from linlens.workflows.analyze import AnalyzeOptions, plan
from linlens.workflows.analyze_options import ASSUME, FLAGS, OPTION_ROUTES, ROUTES

L, N = 8, 400  # 1-D signals of length 8


def _circulant(k: np.ndarray) -> np.ndarray:
    return np.stack([np.roll(k, j) for j in range(len(k))], axis=1)


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = tmp_path_factory.mktemp("dispatch")
    rng = np.random.default_rng(0)
    k = np.exp(-np.minimum(np.arange(L), L - np.arange(L)) ** 2 / 2.0)
    A = _circulant(k / k.sum())
    X = rng.normal(size=(N, L))
    Y = X @ A.T + 0.05 * rng.normal(size=(N, L))
    np.save(d / "y.npy", Y)
    np.save(d / "x.npy", X)
    np.save(d / "A_circ.npy", A)
    np.save(d / "A_dense.npy", A + 0.3 * np.triu(rng.normal(size=(L, L))))  # not shift-invariant
    np.save(d / "ref.npy", np.eye(L))
    np.save(d / "S.npy", np.eye(L))
    np.save(d / "ytr.npy", Y[:200])
    np.save(d / "xtr.npy", X[:200])
    lin = torch.nn.Linear(L, L).double()
    torch.jit.script(lin).save(str(d / "m.pt"))
    return d


def _base(d) -> dict[str, dict]:
    return {"dense": {}, "dask": {"dask": "local"}, "subspace": {"components": 2},
            "study": {"targets": d / "x.npy", "operator": str(d / "A_dense.npy")},
            "fourier": {"targets": d / "x.npy", "operator": str(d / "A_circ.npy")},
            "fourier_dask": {"targets": d / "x.npy", "operator": str(d / "A_circ.npy"), "dask": "local"},
            "subspace_dask": {"components": 2, "dask": "local"},
            "matrix_free": {"targets": d / "x.npy", "operator": str(d / "A_dense.npy"), "components": 2},
            "matrix_free_dask": {"targets": d / "x.npy", "operator": str(d / "A_dense.npy"), "components": 2,
                                 "dask": "local"}}


def _value(d, option: str, route: str):
    return {"reference": d / "ref.npy", "fit_intercept": False, "dask": "local", "output_index": 0,
            "output_key": "out", "max_memory": 10**9, "components": 2, "targets": d / "x.npy",
            "operator": str(d / ("A_dense.npy" if route in ("study", "matrix_free", "matrix_free_dask")
                                 else "A_circ.npy")),
            "noise_std": 0.05,
            "n_boot": 5, "train_inputs": d / "ytr.npy",
            "train_targets": d / "xtr.npy", "prior_covariance": d / "S.npy", "local_samples": 5,
            "assume": {"dense": "dense", "dask": "dense", "subspace": "subspace", "study": "dense",
                       "fourier": "shift-invariant", "fourier_dask": "shift-invariant",
                       "subspace_dask": "subspace", "matrix_free": "matrix-free",
                       "matrix_free_dask": "matrix-free"}[route],
            "force": True, "batch_size": 64, "device": "cpu", "seed": 3, "trust_model": True,
            "full_spectrum": True}[option]


ROUTE_OPTIONS = [f.name for f in fields(AnalyzeOptions) if f.name not in ("model", "inputs", "out")]


SELECTS_ROUTE = ("targets", "components", "dask")  # options that take another route when added


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("option", ROUTE_OPTIONS)
def test_options_times_routes(d, route, option):
    """One option added to the options that name a route: an option the route uses keeps that route; any other
    is refused in one line naming it and the route (or, for an option that selects a route, takes a route
    that uses every option given, or refuses one of them)."""
    kw = {**_base(d)[route], option: _value(d, option, route)}
    if option == "full_spectrum" and route in OPTION_ROUTES["reference"]:  # it needs --reference (refused without)
        kw["reference"] = _value(d, "reference", route)
    o = AnalyzeOptions(model=str(d / "m.pt"), inputs=d / "y.npy", out=d / "never", **kw)
    if route in OPTION_ROUTES[option]:
        assert plan(o).name == route
        return
    if option not in SELECTS_ROUTE:
        with pytest.raises(ConfigError) as exc:
            plan(o)
        msg = str(exc.value)
        assert msg.startswith(f"{FLAGS[option]} is not used by the ") and "\n" not in msg, msg
        assert ROUTES[route] in msg or (route in ("study", "fourier", "fourier_dask", "matrix_free", "matrix_free_dask")
                                       and "inverse study" in msg), msg
        return
    try:
        got = plan(o)
    except ConfigError as exc:
        msg = str(exc)
        assert any(msg.startswith(FLAGS[k] + " is not used by the ") for k in o.given()), msg
    else:
        assert all(got.name in OPTION_ROUTES[k] for k in o.given()), (got, o.given())


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("assume", list(ASSUME))
def test_assume_names_the_route_or_is_refused(d, route, assume):
    o = AnalyzeOptions(model=str(d / "m.pt"), inputs=d / "y.npy", assume=assume, **_base(d)[route])
    if route in ASSUME[assume]:
        assert plan(o).name == route
    elif assume == "shift-invariant" and route == "study":
        assert plan(o).name == "fourier"  # the user's assertion wins; the test's error is in the reason
        assert "shift-equivariance error" in plan(o).reason
    elif assume == "dense" and route == "fourier":
        assert plan(o).name == "study"
    elif assume == "dense" and route == "fourier_dask":  # the dense study, which does not read from Dask
        with pytest.raises(ConfigError, match="^--dask is not used by the inverse study \\(dense\\) route"):
            plan(o)
    elif assume == "matrix-free" and route in ("study", "fourier"):
        assert plan(o).name == "matrix_free"  # the user's assertion wins over the operator's structure
    elif assume == "matrix-free" and route == "fourier_dask":  # the matrix-free route on Dask
        assert plan(o).name == "matrix_free_dask"
    elif route in ("matrix_free", "matrix_free_dask"):  # --components with --targets: other families refuse one
        with pytest.raises(ConfigError, match="^--(assume|components|targets|dask) "):
            plan(o)
    else:
        with pytest.raises(ConfigError, match="^--assume"):
            plan(o)


def _cli(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.mark.parametrize("extra, flag, route", [
    # the first example: exited 0 with a surrogate-only report
    (["--operator", "does-not-exist.npy", "--noise-std", "-5", "--train-targets", "nope.npy"], "--operator",
     "dense (in memory)"),
    (["--noise-std", "-5"], "--noise-std", "dense (in memory)"),
    (["--train-targets", "nope.npy"], "--train-targets", "dense (in memory)"),
    # the second example: silently ignored with --targets
    (["--targets", "x.npy", "--reference", "missing.npy"], "--reference", "inverse study"),
    (["--targets", "x.npy", "--no-intercept"], "--no-intercept", "inverse study"),
    (["--targets", "x.npy", "--output-key", "foo"], "--output-key", "inverse study"),
    (["--targets", "x.npy", "--dask", "local"], "--dask", "inverse study"),
    (["--targets", "x.npy", "--operator", "A_circ.npy", "--train-inputs", "ytr.npy"], "--train-inputs",
     "Fourier (shift-invariant inverse study)"),
    (["--components", "2", "--no-intercept"], "--no-intercept", "subspace"),
    (["--targets", "x.npy", "--operator", "A_dense.npy", "--components", "2", "--train-inputs", "ytr.npy"],
     "--train-inputs", "matrix-free"),
    (["--targets", "x.npy", "--assume", "matrix-free"], "--assume", "matrix-free"),
    (["--assume", "shift-invariant"], "--assume", "dense (in memory)"),
])
def test_cli_refuses_unused_options_before_any_work(d, capsys, monkeypatch, extra, flag, route):
    monkeypatch.chdir(d)
    # a model that does not exist: the refusal must come before the model (or anything else) is read
    code, out, err = _cli(["analyze", "-m", "no-such-model.pt", "-i", "y.npy", "-o", "rep", *extra], capsys)
    assert code == 2 and err.startswith(f"error: {flag} ") and route in err, err
    assert len(err.strip().splitlines()) == 1 and not (d / "rep").exists()


def test_study_route_refuses_a_memory_budget_below_its_estimate_before_the_model(d, capsys, monkeypatch):
    """--max-memory on the dense study: its estimate (workflows.inverse.study_memory) against the budget, one line
    naming the estimate and the option, before the model is read (it does not exist here)."""
    monkeypatch.chdir(d)
    code, out, err = _cli(["analyze", "-m", "no-such-model.pt", "-i", "y.npy", "-t", "x.npy", "-o", "rep",
                           "--max-memory", "1K"], capsys)
    assert code == 2 and "--max-memory" in err and "needs about" in err and "dense study" in err, err
    assert len(err.strip().splitlines()) == 1 and not (d / "rep").exists()


@pytest.mark.parametrize("route, extra", [
    ("dense", ["--reference", "ref.npy"]),
    ("subspace", ["--components", "3"]),
    ("study", ["--targets", "x.npy", "--operator", "A_dense.npy", "--n-boot", "5", "--max-memory", "4G"]),
    ("fourier", ["--targets", "x.npy", "--operator", "A_circ.npy", "--n-boot", "5"]),
    ("matrix_free", ["--targets", "x.npy", "--operator", "A_dense.npy", "--components", "3", "--n-boot", "5"]),
])
def test_each_route_runs_and_says_so_first(d, capsys, monkeypatch, route, extra):
    monkeypatch.chdir(d)
    code, out, err = _cli(["analyze", "-m", "m.pt", "--trust-model", "-i", "y.npy", "-o", f"rep-{route}", *extra],
                          capsys)
    assert code in (0, None), err
    first = out.strip().splitlines()[0]
    assert first.startswith(f"route: {ROUTES[route]} — "), first
    met = json.loads((d / f"rep-{route}" / "metrics.json").read_text())
    assert met["route"] == route and met["route_reason"] in first
    assert html.escape(first) in (d / f"rep-{route}" / "report.html").read_text()


def test_dense_and_subspace_routes_agree_at_m_equal_d(d, capsys, monkeypatch):
    """At m = d the subspace surrogate is the dense one: the same held-out rows give the same R² (one rule)."""
    monkeypatch.chdir(d)
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(L, L), torch.nn.Tanh()).double()
    torch.jit.script(net).save("tanh.pt")
    r2 = {}
    for name, extra in (("dense", []), ("subspace", ["--components", str(L)])):
        code, _, err = _cli(["analyze", "-m", "tanh.pt", "--trust-model", "-i", "y.npy", "-o", f"x-{name}", *extra],
                            capsys)
        assert code in (0, None), err
        r2[name] = json.loads((d / f"x-{name}" / "metrics.json").read_text())["r2"]
    assert 0.5 < r2["dense"] < 0.999  # a nonlinear model: the test can tell the surrogates apart
    assert r2["subspace"] == pytest.approx(r2["dense"], rel=1e-9)


BLUR32 = '''
import torch
import torch.nn.functional as F


class Blur:
    """deepinv-style circular blur: a float32 filter, A / A_adjoint on (B, 1, H, W) by conv2d (as deepinv's Blur)."""

    def __init__(self):
        i = torch.arange(5) - 2
        k = torch.exp(-(i[:, None] ** 2 + i[None, :] ** 2).float() / 2)
        self.filter = (k / k.sum())[None, None].to(torch.float32)

    def A(self, x):
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="circular"), self.filter)

    def A_adjoint(self, y):
        return F.conv2d(F.pad(y, (2, 2, 2, 2), mode="circular"), self.filter.flip(-1, -2))


physics = Blur()
'''


def test_a_float32_deepinv_style_circular_blur_takes_the_fourier_route(tmp_path, capsys, monkeypatch):
    """Its shift-invariance probe used to raise a dtype error that was swallowed: the dense route ran."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dispatch_blur32.py").write_text(BLUR32)
    monkeypatch.syspath_prepend(str(tmp_path))
    from dispatch_blur32 import physics

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 1, 8, 8))
    with torch.no_grad():
        Y = physics.A(torch.as_tensor(X, dtype=torch.float32)).double().numpy() + 0.05 * rng.normal(size=X.shape)
    np.save("y.npy", Y)
    np.save("x.npy", X)
    torch.jit.script(torch.nn.Identity()).save("id.pt")
    o = AnalyzeOptions(model="id.pt", inputs="y.npy", targets="x.npy", operator="dispatch_blur32:physics")
    route = plan(o)
    assert route.name == "fourier" and "float32" in route.reason, route
    code, out, err = _cli(["analyze", "-m", "id.pt", "--trust-model", "-i", "y.npy", "-t", "x.npy", "-A",
                           "dispatch_blur32:physics", "--n-boot", "5", "-o", "rep"], capsys)
    assert code in (0, None), err
    assert out.splitlines()[0].startswith("route: Fourier")
    met = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert met["route"] == "fourier"
    assert met["noise_std_interval"][0] <= 0.05 <= met["noise_std_interval"][1]  # A applied right, in float32


def test_reference_is_read_by_one_loader_on_every_route(d, capsys, monkeypatch):
    """A module:attr reference (once only on the subspace route) and a .csv matrix give the .npy's numbers."""
    monkeypatch.chdir(d)
    monkeypatch.syspath_prepend(str(d))
    R = np.random.default_rng(5).normal(size=(L, L))
    np.save("R.npy", R)
    np.savetxt("R.csv", R, delimiter=",", fmt="%.17g")
    (d / "dispatch_ref.py").write_text("import numpy as np\nR = np.load('R.npy')\n")
    errs = []
    for k, spec in enumerate(("R.npy", "R.csv", "dispatch_ref:R")):
        code, _, err = _cli(["analyze", "-m", "m.pt", "--trust-model", "-i", "y.npy", "-r", spec, "-o", f"ref{k}"],
                            capsys)
        assert code in (0, None), err
        errs.append(json.loads((d / f"ref{k}" / "metrics.json").read_text())["comparison"]["data_weighted_error"])
    assert errs[0] > 0.1 and errs[1] == pytest.approx(errs[0], rel=1e-12) and errs[2] == errs[0]
