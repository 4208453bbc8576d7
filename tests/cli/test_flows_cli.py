"""`linlens flows` on users' flows (closed forms, zuko, bad input); `linlens reproduce flows-* --quick`:
tests/workflows/test_reproduce_flows_*.py."""

import json
import sys

import numpy as np
import pytest
import torch

from linlens.cli import main


# ------------------------------------------------------------------------------------- `linlens flows` (user's flow)
class _Whiten(torch.nn.Module):
    """Plain-torch linear flow z = W x + b with log|det W| (no linlens builders)."""

    def __init__(self, W, b):
        super().__init__()
        self.W = torch.nn.Parameter(torch.as_tensor(W))
        self.b = torch.nn.Parameter(torch.as_tensor(b))

    def forward(self, x):
        z = x @ self.W.T + self.b
        return z, torch.linalg.slogdet(self.W)[1].expand([x.shape[0]])


class _ZOnly(torch.nn.Module):
    def forward(self, x):
        return 2.0 * x


class _Cube(torch.nn.Module):
    """z = x³ elementwise: invertible, but J = diag(3x²) is singular wherever a coordinate is 0."""

    def forward(self, x):
        return x**3, torch.log(3 * x * x).sum(-1)


def _gaussian(tmp_path, sample, n=400, d=3):
    X = sample(n, d)
    f = tmp_path / "x.npy"
    np.save(f, X)
    return X, f


def _flows(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["flows", *argv, "--device", "cpu"])
    return exc.value.code, capsys.readouterr()


def _exit2(argv, capsys, *match):
    code, cap = _flows(argv, capsys)
    err = cap.err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    for m in match:
        assert m in err, err


def test_flows_linear_whitening_flow_is_pca(tmp_path, capsys, gaussian_sample):
    # closed form: a linear flow W = R Λ^(-1/2) Vᵀ (PCA whitening, any rotation R) has local std = PCA std at
    # every point and un-whitened components = PCA scores, whose variances are the eigenvalues of S
    X, f = _gaussian(tmp_path, gaussian_sample)
    S = np.cov(X.T, bias=True)
    lam, V = np.linalg.eigh(S)
    R = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    W = R @ np.diag(lam**-0.5) @ V.T
    model = tmp_path / "whiten.pt"
    torch.jit.script(_Whiten(W, -W @ X.mean(0))).save(str(model))
    out = tmp_path / "rep"
    code, cap = _flows(["--trust-model", "--model", str(model), "--data", str(f), "--out", str(out), "--alpha",
                        "0.05"], capsys)
    assert code in (0, None), cap.err
    m = json.loads((out / "metrics.json").read_text())
    truth = np.sqrt(lam[::-1])
    np.testing.assert_allclose(m["median_local_std"], truth, rtol=1e-9)
    np.testing.assert_allclose(m["pca_std"], truth, rtol=1e-9)
    np.testing.assert_allclose(m["component_variance"], lam[::-1], rtol=1e-9)
    np.testing.assert_allclose(m["abs_corr_component_vs_pca_score"], 1.0, atol=1e-12)
    np.testing.assert_allclose(m["mean_abs_cos_local_direction_vs_pca_axis"], 1.0, atol=1e-12)
    assert m["mean_local_covariance_vs_data_covariance_rel_frobenius"] < 1e-10
    assert m["n_singular_left_out"] == 0 and m["logdet"]["consistent"]
    # σ_max(J) = 1/√λ_min everywhere; 1/√(2α) = 3.16 lies above it iff λ_min > 2α
    smax = 1 / np.sqrt(lam[0])
    assert m["sigma_max"]["median"] == pytest.approx(smax, rel=1e-9)
    assert m["tikhonov_bound"]["n_above"] == (400 if smax > 1 / np.sqrt(0.1) else 0)
    # first-order traversals of a linear flow are exact: step c moves along PCA axis k by c·std_k
    t = np.array(m["traversals"]["flow"])
    p = np.array(m["traversals"]["pca"])
    np.testing.assert_allclose(np.abs(t - t[:, :, 2:3]), np.abs(p - p[:, :, 2:3]), atol=1e-9)
    for png in ("local_covariance", "traversals", "spectrum", "components_vs_pca", "sigma_max"):
        assert (out / f"{png}.png").is_file()
    assert "PCA" in cap.out


def test_flows_zuko_flow_module_attr(tmp_path, capsys, monkeypatch):
    # a zuko flow named as module:attr; its local std checked against Jacobians from torch.autograd.functional
    (tmp_path / "userflows.py").write_text(
        "import torch, zuko\n"
        "torch.manual_seed(0)\n"
        "flow = zuko.flows.NSF(2, transforms=2, hidden_features=(16,))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2)) * [1.5, 0.5]
    f = tmp_path / "x.npy"
    np.save(f, X)
    out = tmp_path / "rep"
    code, cap = _flows(["--model", "userflows:flow", "--data", str(f), "--out", str(out), "--alpha", "0.1"], capsys)
    assert code in (0, None), cap.err
    m = json.loads((out / "metrics.json").read_text())
    import userflows

    t = userflows.flow.double()().transform
    J = np.stack([torch.autograd.functional.jacobian(t, torch.as_tensor(x)).numpy() for x in X])
    s = np.linalg.svd(J, compute_uv=False)
    np.testing.assert_allclose(m["median_local_std"], np.median(1 / s[:, ::-1], axis=0), rtol=1e-8)
    assert m["sigma_max"]["median"] == pytest.approx(np.median(s[:, 0]), rel=1e-8)
    assert m["tikhonov_bound"]["n_above"] == int(np.sum(s[:, 0] > 1 / np.sqrt(0.2)))
    assert m["logdet"]["consistent"] and m["dtype"] == "float64"
    assert m["traversals"]["decoded_by"] == "exact inverse"
    assert np.array(m["pca_std"]) == pytest.approx(np.sqrt(np.linalg.eigvalsh(np.cov(X.T, bias=True))[::-1]))


def test_flows_singular_points_are_counted_and_left_out(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    X[[3, 10, 11], 0] = 0.0  # J = diag(3x²) is singular exactly here
    f = tmp_path / "x.npy"
    np.save(f, X)
    model = tmp_path / "cube.pt"
    torch.jit.script(_Cube()).save(str(model))
    out = tmp_path / "rep"
    code, cap = _flows(["--trust-model", "--model", str(model), "--data", str(f), "--out", str(out)], capsys)
    assert code in (0, None), cap.err
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_singular_left_out"] == 3 and m["n_used"] == 57
    ok = np.ones(60, bool)
    ok[[3, 10, 11]] = False
    std = np.sort(1 / (3 * X[ok] ** 2), axis=1)[:, ::-1]  # closed form: local std 1/(3x²) per coordinate
    np.testing.assert_allclose(m["median_local_std"], np.median(std, axis=0), rtol=1e-9)


def test_flows_bad_input_one_line_exit_2(tmp_path, capsys, gaussian_sample):
    X, f = _gaussian(tmp_path, gaussian_sample, n=50)
    out = str(tmp_path / "o")
    zonly = tmp_path / "zonly.pt"
    torch.jit.script(_ZOnly()).save(str(zonly))
    _exit2(["--trust-model", "--model", str(zonly), "--data", str(f), "--out", out], capsys, "log-determinant")
    whiten = tmp_path / "w4.pt"
    torch.jit.script(_Whiten(np.eye(4), np.zeros(4))).save(str(whiten))
    _exit2(["--trust-model", "--model", str(whiten), "--data", str(f), "--out", out], capsys, "d = 3")
    sing = tmp_path / "sing.pt"
    torch.jit.script(_Whiten(np.diag([1.0, 1.0, 0.0]), np.zeros(3))).save(str(sing))
    _exit2(["--trust-model", "--model", str(sing), "--data", str(f), "--out", out], capsys, "singular", "all 50 points")
    (tmp_path / "zf.py").write_text("import zuko\nflow = zuko.flows.NSF(2, transforms=1, hidden_features=(8,))\n")
    sys.path.insert(0, str(tmp_path))
    try:
        _exit2(["--model", "zf:flow", "--data", str(f), "--out", out], capsys, "d = 3", "2 features")
    finally:
        sys.path.remove(str(tmp_path))
    _exit2(["--trust-model", "--model", str(whiten), "--data", str(f), "--out", out, "--alpha", "-1"], capsys,
           "--alpha")
    _exit2(["--trust-model", "--model", str(whiten), "--data", str(f), "--out", out, "--max-points", "0"], capsys,
           "--max-points")
    big = tmp_path / "big.npy"
    np.save(big, np.zeros((3, 5000)))
    _exit2(["--trust-model", "--model", str(whiten), "--data", str(big), "--out", out], capsys, "--max-points")
    assert not (tmp_path / "o").exists()
