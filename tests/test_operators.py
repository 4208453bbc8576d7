"""Tests of linlens.operators: the four kinds of operator agree, checks catch wrong adjoints and
non-convolutions, transfer functions match the closed form, and loading fails cleanly."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse.linalg as spla
import torch

from linlens.errors import ConfigError, InputFileError, ModelError, ShapeError
from linlens.operators import LinearMap, apply_transfer, as_operator, circulant, load_operator
from linlens.problems import CircularBlur

N = 8


def _blur_matrix(blur: CircularBlur, n: int = N) -> np.ndarray:
    """Dense A by applying the blur to every basis image (torch, no linlens code in the route)."""
    E = torch.eye(n * n, dtype=torch.float64).reshape(n * n, 1, n, n)
    return blur.A(E).reshape(n * n, n * n).T.numpy()


def _kinds(blur: CircularBlur):
    M = _blur_matrix(blur)
    return {
        "dense": as_operator(M, in_shape=(1, N, N)),
        "scipy": as_operator(spla.aslinearoperator(M)),
        "torch-pair": as_operator((blur.A, blur.A_adjoint), in_shape=(1, N, N)),
        "deepinv-like": as_operator(blur, in_shape=(1, N, N)),
        "torch-dense-pair": as_operator((lambda x: x @ torch.as_tensor(M).T, lambda y: y @ torch.as_tensor(M)),
                                        shape=M.shape),
    }


class _Shifted(CircularBlur):
    """A blur followed by a one-pixel roll: not self-adjoint, so a wrong adjoint is detectable."""

    def A(self, x):
        return torch.roll(super().A(x), 1, dims=-1)

    def A_adjoint(self, y):
        return super().A_adjoint(torch.roll(y, -1, dims=-1))


def test_four_kinds_agree_on_matvec_and_rmatvec():
    blur = _Shifted(1.3, size=5)
    ops = _kinds(blur)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((5, N * N)), rng.standard_normal((5, N * N))
    M = _blur_matrix(blur)
    for name, op in ops.items():
        assert op.shape == (N * N, N * N), name
        np.testing.assert_allclose(op.matvec(X), X @ M.T, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(op.rmatvec(Y), Y @ M, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(op.matvec(X[0]), M @ X[0], atol=1e-12, err_msg=name)
        assert op.adjoint_check().passed, name
    np.testing.assert_allclose(ops["deepinv-like"].to_dense(), M, atol=1e-12)
    assert ops["deepinv-like"].out_shape == (1, N, N)
    dense = as_operator(M)  # a matrix's to_dense is the matrix (no products with basis vectors), a copy
    D = dense.to_dense()
    np.testing.assert_array_equal(D, M)
    D[0, 0] += 1.0
    np.testing.assert_array_equal(dense.matvec(X), X @ M.T)


def test_adjoint_check_catches_a_wrong_adjoint():
    blur = _Shifted(1.0, size=3)
    good = as_operator(blur, in_shape=(1, N, N)).adjoint_check()
    bad = as_operator((blur.A, blur.A), in_shape=(1, N, N)).adjoint_check()  # A used as its own adjoint
    assert good.passed and good.max_error < 1e-12
    assert not bad.passed and bad.max_error > 1e-3
    assert set(bad.to_dict()) == {"errors", "max_error", "tol", "passed"}
    # float32 operators get a float32 tolerance and still pass
    f32 = as_operator(blur, in_shape=(1, N, N), dtype=torch.float32).adjoint_check()
    assert f32.passed and f32.tol >= 1e-5


def test_transfer_function_of_blur_is_the_kernel_fft():
    blur = CircularBlur(1.2, size=5)
    k = blur.filter[0, 0].numpy()
    h = np.zeros((N, N))
    h[:5, :5] = k
    h = np.roll(h, (-2, -2), axis=(0, 1))  # kernel centred on pixel (0, 0), wrapped
    H = as_operator(blur, in_shape=(1, N, N)).transfer_function()
    np.testing.assert_allclose(H, np.fft.rfft2(h), atol=1e-13)
    # ... and the circulant built from it reproduces the blur (an independent pixel-domain route)
    x = np.random.default_rng(1).standard_normal((3, N * N))
    ref = blur.A(torch.as_tensor(x).reshape(3, 1, N, N)).reshape(3, -1).numpy()
    np.testing.assert_allclose(circulant(H, (N, N)).matvec(x), ref, atol=1e-12)
    np.testing.assert_allclose(apply_transfer(x, H, (N, N)), ref, atol=1e-12)


def test_circulant_1d_matches_scipy_circulant():
    c = np.random.default_rng(2).standard_normal(16)
    op = circulant(np.fft.rfft(c), (16,))
    np.testing.assert_allclose(op.to_dense(), sla.circulant(c), atol=1e-12)
    np.testing.assert_allclose(op.T.to_dense(), sla.circulant(c).T, atol=1e-12)


def test_shift_invariance_detection():
    blur = as_operator(CircularBlur(1.0), in_shape=(1, N, N))
    assert blur.shift_invariance_check().passed and blur.is_circular()
    rnd = as_operator(np.random.default_rng(3).standard_normal((N * N, N * N)), in_shape=(N, N))
    chk = rnd.shift_invariance_check()
    assert not chk.passed and chk.max_error > 0.1
    with pytest.raises(ConfigError, match="not a circular convolution"):
        rnd.transfer_function()
    rect = as_operator(np.ones((3, 5)))
    assert not rect.shift_invariance_check().passed


def test_to_dense_refuses_large_and_scipy_view_solves():
    op = as_operator(CircularBlur(0.7), in_shape=(1, N, N))
    with pytest.raises(ConfigError, match="max_dim"):
        op.to_dense(max_dim=10)
    M = _blur_matrix(CircularBlur(0.7))
    b = np.random.default_rng(4).standard_normal(N * N)
    x = spla.lsqr(op.to_scipy(), b, atol=1e-14, btol=1e-14, iter_lim=2000)[0]
    np.testing.assert_allclose(x, np.linalg.solve(M, b), rtol=1e-6)


def test_bad_inputs_fail_with_typed_errors():
    with pytest.raises(ConfigError, match="in_shape"):
        as_operator(CircularBlur(1.0))
    with pytest.raises(ConfigError, match="shape"):
        as_operator((lambda x: x, lambda y: y))
    with pytest.raises(ConfigError, match="cannot use"):
        as_operator("not an operator")
    with pytest.raises(ShapeError):
        as_operator(np.eye(4)).matvec(np.ones((2, 3)))
    with pytest.raises(ShapeError):
        as_operator(np.eye(4), in_shape=(3, 3))

    def boom(x):
        raise RuntimeError("kaboom\nsecond line")

    with pytest.raises(ModelError, match="kaboom"):
        as_operator((boom, boom), shape=(2, 2)).matvec(np.ones(2))
    with pytest.raises(ConfigError, match="no adjoint"):
        LinearMap(lambda X: X, None, (2,), (2,), "custom").rmatvec(np.ones(2))


def test_load_operator(tmp_path, monkeypatch):
    M = np.random.default_rng(5).standard_normal((4, 3))
    np.save(tmp_path / "A.npy", M)
    np.testing.assert_allclose(load_operator(tmp_path / "A.npy").to_dense(), M)
    (tmp_path / "myops.py").write_text(
        "import numpy as np\n"
        "from linlens.problems import CircularBlur\n"
        "blur = CircularBlur(1.0)\n"
        "blur.in_shape = (1, 8, 8)\n"
        "pair = (blur.A, blur.A_adjoint, (1, 8, 8))\n"
        "M = np.eye(3)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        a, b = load_operator("myops:blur"), load_operator("myops:pair")
        x = np.random.default_rng(6).standard_normal((2, 64))
        np.testing.assert_allclose(a.matvec(x), b.matvec(x), atol=1e-13)
        assert load_operator("myops:M").shape == (3, 3)
        with pytest.raises(ModelError, match="no attribute"):
            load_operator("myops:missing")
        with pytest.raises(ModelError, match="cannot import"):
            load_operator("no_such_module_xyz:attr")
    finally:
        sys.modules.pop("myops", None)
    with pytest.raises(InputFileError, match="not found"):
        load_operator(tmp_path / "missing.npy")
    (tmp_path / "bad.npy").write_text("garbage")
    with pytest.raises(InputFileError, match="cannot read"):
        load_operator(tmp_path / "bad.npy")
    np.save(tmp_path / "v.npy", np.ones(3))
    with pytest.raises(InputFileError, match="2-D"):
        load_operator(tmp_path / "v.npy")
