"""`linlens analyze --components m`: the subspace surrogate on the user's files, checked against closed forms
(inputs of exact rank m), the dense route (m = d) and a direct numpy evaluation on the held-out rows."""

import json
import textwrap
import uuid
import warnings

import numpy as np
import pytest
import torch

from linlens.cli import main
from linlens.workflows import analyze_subspace
from linlens.workflows.analyze_common import holdout_mask


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _script(module, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(module).save(str(path))


def test_inputs_of_rank_m_are_fitted_exactly_and_match_the_reference(tmp_path, capsys, monkeypatch):
    """y = Z Wᵀ + offset with Z of rank m; a linear model M y + b: the subspace surrogate reproduces the model on
    the data (R² = 1 held out), nothing lies outside the subspace, and (C − M)y = 0 on every input, so the
    data-weighted error against M is 0 — with M as a .npy matrix or as a scipy LinearOperator (module:attr)."""
    rng = np.random.default_rng(0)
    d, m, n = 40, 5, 1500
    Y = rng.normal(size=(n, m)) @ rng.normal(size=(m, d)) + 3.0
    np.save(tmp_path / "y.npy", Y)
    lin = torch.nn.Linear(d, 7).double()
    _script(lin, tmp_path / "m.pt")
    M = lin.weight.detach().numpy()
    np.save(tmp_path / "M.npy", M)
    name = f"refop_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(f"""
        import numpy as np
        from scipy.sparse.linalg import aslinearoperator
        R = aslinearoperator(np.load(r"{tmp_path / 'M.npy'}"))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    for ref, rep in ((tmp_path / "M.npy", "a"), (f"{name}:R", "b")):
        code, out, err = _run(["analyze", "--trust-model", "-m", tmp_path / "m.pt", "-i", tmp_path / "y.npy",
                               "--components", m,
                               "-r", ref, "-o", tmp_path / rep], capsys)
        assert code in (0, None), err
        met = json.loads((tmp_path / rep / "metrics.json").read_text())
        assert met["route"] == "subspace" and met["n_components"] == m
        assert met["r2"] == pytest.approx(1.0, abs=1e-10)
        assert met["outside_variance_fraction"] < 1e-12
        assert met["data_weighted_error"] < 1e-18
        # an exactly linear model has no residuals: no estimation noise, a zero bias correction (to the rounding of
        # the groups' expanded u_g u_gᵀ, ~eps relative to ‖R y‖²), verdict R
        assert abs(met["data_weighted_error_corrected"]["estimate"]) < 1e-15
        assert met["verdict"]["verdict"] == "R"
        C = np.load(tmp_path / rep / "coef_subspace.npy") @ np.load(tmp_path / rep / "components.npy")
        Yc = Y - Y.mean(axis=0)
        np.testing.assert_allclose(Yc @ C.T, Yc @ M.T, atol=1e-8)  # C agrees with M on the data's span


def test_full_subspace_equals_the_dense_route_and_a_direct_evaluation(tmp_path, capsys):
    """m = d: the subspace surrogate is ordinary least squares by another algorithm, so its held-out R² equals
    the dense route's; its data-weighted error against a random R equals a numpy evaluation on the held-out rows."""
    rng = np.random.default_rng(1)
    d, n = 12, 2000
    Y = rng.normal(size=(n, d)) * np.linspace(1.0, 0.2, d)
    np.save(tmp_path / "y.npy", Y)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, 6)).double()
    _script(net, tmp_path / "m.pt")
    R = rng.normal(size=(6, d))
    np.save(tmp_path / "R.npy", R)
    code, _, err = _run(["analyze", "--trust-model", "-m", tmp_path / "m.pt", "-i", tmp_path / "y.npy",
                         "--components", d,
                         "-r", tmp_path / "R.npy", "-o", tmp_path / "sub"], capsys)
    assert code in (0, None), err
    code, _, err = _run(["analyze", "--trust-model", "-m", tmp_path / "m.pt", "-i", tmp_path / "y.npy", "-o",
                         tmp_path / "dense"],
                        capsys)
    assert code in (0, None), err
    sub = json.loads((tmp_path / "sub" / "metrics.json").read_text())
    dense = json.loads((tmp_path / "dense" / "metrics.json").read_text())
    assert sub["r2"] == pytest.approx(dense["r2"], abs=1e-9)
    assert sub["n_held_out"] == dense["r2_split"]["n_held_out"]
    C = np.load(tmp_path / "sub" / "coef_subspace.npy") @ np.load(tmp_path / "sub" / "components.npy")
    held = Y[holdout_mask(0, n, 0)]
    yc = held - held.mean(axis=0)
    expected = np.sum((yc @ (C - R).T) ** 2) / np.sum((yc @ R.T) ** 2)
    assert sub["data_weighted_error"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", ["randomized", "krylov"])
@pytest.mark.parametrize("d, n", [(60, 1500), (300, 200)])
def test_float32_randomized_route_gives_the_exact_routes_numbers(tmp_path, capsys, monkeypatch, method, d, n):
    """Inputs with a clear gap at m (plus noise), a nonlinear model: the route's float32 randomized subspace (power
    iterations or block Krylov, forced here; Krylov is chosen by the cost rule at large n) gives the numbers of the
    exact Gram route, which is checked against a numpy SVD of the centred training rows: the same subspace to float32
    accuracy, R², outside-variance and error. Fewer training rows than inputs (160 × 300), Krylov iterates on Xᵀ and
    reports the other side's residual (metrics' ``subspace_residual``)."""
    rng = np.random.default_rng(3)
    m = 6
    Y = (rng.normal(size=(n, m)) * np.linspace(5, 2, m)) @ rng.normal(size=(m, d)) + 0.05 * rng.normal(size=(n, d))
    np.save(tmp_path / "y.npy", Y)
    torch.manual_seed(0)
    _script(torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, 5)).double(),
            tmp_path / "m.pt")
    np.save(tmp_path / "R.npy", rng.normal(size=(5, d)))
    base = ["analyze", "--trust-model", "-m", tmp_path / "m.pt", "-i", tmp_path / "y.npy", "--components", m,
            "-r", tmp_path / "R.npy"]
    monkeypatch.setattr(analyze_subspace, "subspace_method", lambda *a, **k: "gram")
    code, _, err = _run([*base, "-o", tmp_path / "exact"], capsys)
    assert code in (0, None), err
    monkeypatch.setattr(analyze_subspace, "subspace_method", lambda *a, **k: method)
    code, _, err = _run([*base, "-o", tmp_path / "rand"], capsys)
    assert code in (0, None), err
    a = json.loads((tmp_path / "exact" / "metrics.json").read_text())
    b = json.loads((tmp_path / "rand" / "metrics.json").read_text())
    assert (a["subspace_method"], b["subspace_method"]) == ("gram", method) and b["subspace_converged"]
    assert 0 < b["subspace_max_residual"] < 1e-3 and a["subspace_max_residual"] < 1e-10
    if method == "krylov":
        assert b["subspace_residual"] == ("‖X vᵢ − sᵢuᵢ‖/sᵢ" if n < d else "‖Xᵀuᵢ − sᵢvᵢ‖/sᵢ")
    Yt = Y[~holdout_mask(0, n, 0)]
    Vt = np.linalg.svd(Yt - Yt.mean(0), full_matrices=False)[2][:m]
    for rep, tol in (("exact", 1e-10), ("rand", 1e-5)):
        V = np.load(tmp_path / rep / "components.npy")
        assert np.abs(np.linalg.svd(V @ Vt.T, compute_uv=False) - 1).max() < tol, rep  # cos of principal angles
    for k in ("r2", "outside_variance_fraction", "data_weighted_error"):
        assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-9), k
    ea, eb = a["data_weighted_error_corrected"], b["data_weighted_error_corrected"]
    for k in ("estimate", "low", "high"):
        assert eb[k] == pytest.approx(ea[k], rel=1e-4), k
    assert b["verdict"]["verdict"] == a["verdict"]["verdict"]


def test_images_and_bad_input(tmp_path, capsys):
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, padding=1), torch.nn.Tanh()).double()
    _script(conv, tmp_path / "c.pt")
    np.save(tmp_path / "y.npy", np.random.default_rng(0).normal(size=(600, 1, 8, 8)))
    base = ["analyze", "--trust-model", "-m", tmp_path / "c.pt", "-i", tmp_path / "y.npy"]
    code, _, err = _run([*base, "--components", 10, "-o", tmp_path / "img"], capsys)
    assert code in (0, None), err
    for fig in ("components.png", "operator_rows.png", "input_spectrum.png"):
        assert (tmp_path / "img" / fig).is_file()
    # white-noise images have no clear spectral gap at m; the subspace is the exact one (Gram route at this size),
    # and the report gives its check: the residuals (rounding) and the gap at m, equal to a numpy SVD's of the
    # centred training rows (the independent truth)
    met = json.loads((tmp_path / "img" / "metrics.json").read_text())
    Y = np.load(tmp_path / "y.npy").reshape(600, 64)
    Yt = Y[~holdout_mask(0, 600, 0)]
    s = np.linalg.svd(Yt - Yt.mean(0), compute_uv=False)
    assert met["subspace_method"] == "gram" and met["subspace_converged"] is True
    assert met["subspace_max_residual"] < 1e-10
    assert met["subspace_relative_gap"] == pytest.approx((s[9] - s[10]) / s[9], rel=1e-9)
    assert met["singular_value_next"] == pytest.approx(s[10], rel=1e-12)
    assert "Subspace check" in (tmp_path / "img" / "report.html").read_text()
    np.save(tmp_path / "bad_R.npy", np.zeros((64, 63)))
    for extra, msg in (([0], "positive integer"), ([65], "at most"),
                       ([4, "--targets", tmp_path / "y.npy"],
                        "--components is not used by the inverse study (dense) route"),
                       ([4, "-r", tmp_path / "bad_R.npy"], "reference must")):
        code, _, err = _run([*base, "--components", *extra, "-o", tmp_path / "x"], capsys)
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "x").exists()


class _CastToFloat32(torch.nn.Module):
    """Exactly linear, x = W y in float64 from whatever inputs it gets; a float32 parameter makes linlens cast the
    probes to float32 for it (as for any float32 model)."""

    def __init__(self, W):
        super().__init__()
        self.register_buffer("W", torch.as_tensor(W, dtype=torch.float64))
        self.scale = torch.nn.Parameter(torch.ones((), dtype=torch.float32))

    def forward(self, y):
        return y.to(torch.float64) @ self.W.T


def test_fitted_on_exactly_the_inputs_the_model_received(tmp_path, capsys):
    """Issue 21: an exactly linear model given float32-cast probes, inputs of condition number 1e5: the surrogate
    C = B V_mᵀ (m = d) recovers the model's own W to 1e-5 (measured 3.7e-6: it is fitted on the cast inputs; on the
    uncast ones least squares is 7e-5 away, computed here too), and the report says the inputs were cast."""
    from linlens.surrogate import LinearSurrogate

    rng = np.random.default_rng(0)
    n, d = 600, 5
    Q1, _ = np.linalg.qr(rng.normal(size=(n, d)))
    Q2, _ = np.linalg.qr(rng.normal(size=(d, d)))
    Y = Q1 @ np.diag(np.logspace(0, -5, d)) @ Q2 * np.sqrt(n) + 3.0
    W = np.random.default_rng(1).normal(size=(3, d))
    np.save(tmp_path / "y.npy", Y)
    _script(_CastToFloat32(W), tmp_path / "m.pt")
    uncast = LinearSurrogate(solver="qr").fit(Y, Y.astype(np.float32).astype(np.float64) @ W.T).coef_
    assert np.linalg.norm(uncast - W) / np.linalg.norm(W) > 3e-5
    code, _, err = _run(["analyze", "--trust-model", "-m", tmp_path / "m.pt", "-i", tmp_path / "y.npy",
                         "--components", d, "-o", tmp_path / "sub"], capsys)
    assert code in (0, None), err
    C = np.load(tmp_path / "sub" / "coef_subspace.npy") @ np.load(tmp_path / "sub" / "components.npy")
    assert np.linalg.norm(C - W) / np.linalg.norm(W) < 1e-5  # normal equations on the scores: ≈ κ²·eps, not 0
    met = json.loads((tmp_path / "sub" / "metrics.json").read_text())
    assert "float32" in met["input_cast"]


def test_numbers_do_not_depend_on_the_chunk_size(tmp_path, capsys, monkeypatch):
    """The rows are read, cast and probed in chunks (CHUNK_VALUES values) inside each --batch-size batch: chunks of 7
    rows (batches of 64 rows, so ragged chunks) give the numbers of one chunk per batch, to rounding — R², error,
    interval, the subspace."""
    rng = np.random.default_rng(4)
    d, n, m = 30, 900, 5
    Y = (rng.normal(size=(n, m)) * np.linspace(4, 2, m)) @ rng.normal(size=(m, d)) + 0.1 * rng.normal(size=(n, d))
    np.save(tmp_path / "y.npy", Y.astype(np.float32))
    torch.manual_seed(1)
    _script(torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)).double(),
            tmp_path / "m.pt")  # float64: a float32 model's outputs depend on its batch size at 1e-7
    np.save(tmp_path / "R.npy", rng.normal(size=(4, d)))
    base = ["analyze", "--trust-model", "-m", tmp_path / "m.pt", "-i", tmp_path / "y.npy", "--components", m,
            "-r", tmp_path / "R.npy", "--batch-size", 64]
    code, _, err = _run([*base, "-o", tmp_path / "one"], capsys)
    assert code in (0, None), err
    monkeypatch.setattr(analyze_subspace, "CHUNK_VALUES", 7 * d)
    code, _, err = _run([*base, "-o", tmp_path / "many"], capsys)
    assert code in (0, None), err
    a = json.loads((tmp_path / "one" / "metrics.json").read_text())
    b = json.loads((tmp_path / "many" / "metrics.json").read_text())
    for k in ("r2", "outside_variance_fraction", "data_weighted_error"):
        assert b[k] == pytest.approx(a[k], rel=1e-10), k
    for k in ("estimate", "low", "high", "bias"):
        assert b["data_weighted_error_corrected"][k] == pytest.approx(a["data_weighted_error_corrected"][k],
                                                                      rel=1e-9), k
    np.testing.assert_allclose(np.load(tmp_path / "many" / "components.npy"),
                               np.load(tmp_path / "one" / "components.npy"), atol=1e-10)


@pytest.mark.parametrize("method", ["gram", "randomized", "krylov"])
def test_more_components_than_the_inputs_rank_and_constant_inputs(tmp_path, capsys, monkeypatch, method):
    """Inputs of rank 3, --components 5, each subspace route forced: 5 orthonormal components (the Krylov route
    returned 3: 'shape mismatch (711,3) vs (711,5)'), the first 3 spanning the inputs' centred row space (numpy SVD),
    a linear model fitted exactly (held-out R² = 1, no variance outside); constant inputs: the one-line 'all
    identical' refusal (exit 2), not a crash ('need at least one array to concatenate')."""
    rng = np.random.default_rng(1)
    d, n = 30, 900
    Y = rng.normal(size=(n, 3)) @ rng.normal(size=(3, d)) + 2.0
    np.save(tmp_path / "y.npy", Y)
    np.save(tmp_path / "c.npy", np.full((n, d), 2.0))
    _script(torch.nn.Linear(d, 4).double(), tmp_path / "m.pt")
    monkeypatch.setattr(analyze_subspace, "subspace_method", lambda *a, **k: method)
    base = ["analyze", "--trust-model", "-m", tmp_path / "m.pt", "--components", 5]
    code, _, err = _run([*base, "-i", tmp_path / "y.npy", "-o", tmp_path / "o"], capsys)
    assert code in (0, None), err
    met = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert met["subspace_method"] == method and met["n_components"] == 5
    assert met["r2"] == pytest.approx(1.0, abs=1e-8) and met["outside_variance_fraction"] < 1e-10
    V = np.load(tmp_path / "o" / "components.npy")
    assert V.shape == (5, d) and np.allclose(V @ V.T, np.eye(5), atol=1e-10)
    Yt = Y[~holdout_mask(0, n, 0)]
    Vt = np.linalg.svd(Yt - Yt.mean(0), full_matrices=False)[2][:3]
    assert np.abs(np.linalg.svd(V[:3] @ Vt.T, compute_uv=False) - 1).max() < 1e-6
    code, _, err = _run([*base, "-i", tmp_path / "c.npy", "-o", tmp_path / "c"], capsys)
    assert code == 2 and "all identical" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_outputs_wider_than_the_inputs(tmp_path, capsys):
    """d_out = 50 > d_in = 6 (the cached inputs' memory is too small to hold the outputs' batch buffer, which is then
    allocated afresh): a linear model M y + b on inputs of rank m = 6 is reproduced exactly (R² = 1, error 0 against
    M), and the error against a random R equals a direct numpy evaluation on the held-out rows."""
    rng = np.random.default_rng(5)
    d, d_out, n = 6, 50, 1200
    Y = rng.normal(size=(n, d)) * np.linspace(2.0, 0.5, d) + 1.0
    np.save(tmp_path / "y.npy", Y)
    lin = torch.nn.Linear(d, d_out).double()
    _script(lin, tmp_path / "m.pt")
    M = lin.weight.detach().numpy()
    R = M + 0.1 * rng.normal(size=M.shape)
    np.save(tmp_path / "M.npy", M)
    np.save(tmp_path / "R.npy", R)
    for ref, rep in (("M.npy", "a"), ("R.npy", "b")):
        code, _, err = _run(["analyze", "--trust-model", "-m", tmp_path / "m.pt", "-i", tmp_path / "y.npy",
                             "--components", d, "-r", tmp_path / ref, "-o", tmp_path / rep], capsys)
        assert code in (0, None), err
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a["r2"] == pytest.approx(1.0, abs=1e-10) and a["data_weighted_error"] < 1e-18
    held = Y[holdout_mask(0, n, 0)]
    yc = held - held.mean(axis=0)
    expected = np.sum((yc @ (M - R).T) ** 2) / np.sum((yc @ R.T) ** 2)
    assert b["data_weighted_error"] == pytest.approx(expected, rel=1e-9)
