"""Issue 25, operators: one conversion rule (linlens.operators.as_operator) on every route and in the Python API —
float64 computations with the operator's own precision kept (a float32 zero is not exactly zero), linearity
(affine and nonlinear maps refused), realness (complex output refused unless its imaginary part is rounding),
private copies (an operator that modifies its input cannot clobber the caller's arrays), sys.exit caught."""

from __future__ import annotations

import sys
import textwrap
import uuid

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

from linlens.cli import main
from linlens.errors import ComplexInputError, ConfigError, ModelError
from linlens.operators import as_operator, circulant, load_operator, operator_matrix
from linlens.spectral import SpectralSurrogate, spectral_analysis
from linlens.surrogate import compare_operators, filter_factors

L = 16
# (1 + z)·(0.7 + 1.7z + …)/4: H(π) = 0 exactly in exact arithmetic; rounding the weights to float32 moves it to ~3e-8
KERNEL = np.r_[np.array([0.7, 1.7, 1.3, 0.3]) / 4, np.zeros(L - 4)]


class _Blur(torch.nn.Module):
    """A deepinv-style circular blur whose weights are stored in ``dtype`` (as most real operators: float32)."""

    def __init__(self, dtype):
        super().__init__()
        self.register_buffer("h", torch.tensor(KERNEL, dtype=dtype))

    def A(self, x):
        return torch.fft.irfft(torch.fft.rfft(x, dim=-1) * torch.fft.rfft(self.h), n=L, dim=-1)

    def A_adjoint(self, y):
        return torch.fft.irfft(torch.fft.rfft(y, dim=-1) * torch.conj(torch.fft.rfft(self.h)), n=L, dim=-1)


def _fourier_case():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, L))
    Y = circulant(np.fft.rfft(KERNEL), (L,)).matvec(X) + 0.05 * rng.normal(size=X.shape)
    return X, SpectralSurrogate(image_shape=(L,), n_boot=0).fit(Y, X)


def test_float32_operator_keeps_the_inverse_comparison_of_the_exact_operator():
    """Truth: the float64 operator (exact zero at π, cut by 1/H's pseudo-inverse). A float32 copy of it moves that
    zero to rounding noise; naively inverted (the old behaviour, reproduced here with the float64 cut) the error
    vs A⁻¹ becomes ~1, with the float32 operator's own rounding level it equals the exact operator's."""
    X, sur = _fourier_case()
    exact = spectral_analysis(sur, circulant(np.fft.rfft(KERNEL), (L,)), 0.05, targets=X).errors["A⁻¹"]
    op32 = as_operator(_Blur(torch.float32), in_shape=(L,))
    assert op32.native_dtype == "float32" and op32.notes and "float32" in op32.notes[0]
    assert 0 < abs(op32.transfer_function()[-1]) < 1e-6  # the zero is rounding now
    got = spectral_analysis(sur, op32, 0.05, targets=X).errors["A⁻¹"]
    naive = spectral_analysis(sur, op32.transfer_function(), 0.05, targets=X).errors["A⁻¹"]
    assert got == pytest.approx(exact, rel=1e-4)
    assert naive > 0.99 and abs(naive - exact) > 0.4  # what the cut prevents
    # a float32 matrix (.npy) follows the same rule, and so does the dense pseudo-inverse through rank_tol
    M32 = circulant(np.fft.rfft(KERNEL), (L,)).to_dense().astype(np.float32)
    M, op = operator_matrix(M32)
    assert op.native_dtype == "float32" and M.dtype == np.float64
    s = np.linalg.svd(M, compute_uv=False)
    assert s[-1] > 0 and s[-1] < op.rank_tol(s) * s[0]  # the rounded zero is below the cut
    assert np.linalg.svd(circulant(np.fft.rfft(KERNEL), (L,)).to_dense(), compute_uv=False)[-1] < 1e-15


def test_affine_nonlinear_and_complex_operators_are_refused():
    M = torch.tensor(np.random.default_rng(1).normal(size=(5, 5)))
    with pytest.raises(ConfigError, match="affine"):
        as_operator((lambda x: x @ M.T + 0.5, lambda y: y @ M), shape=(5, 5))
    with pytest.raises(ConfigError, match="not linear"):
        as_operator((lambda x: torch.tanh(x @ M.T), lambda y: y @ M), shape=(5, 5))
    with pytest.raises(ComplexInputError, match="complex"):
        as_operator((lambda x: (x @ M.T) * (1 + 1j), lambda y: y @ M), shape=(5, 5))
    cplx = spla.LinearOperator((5, 5), matvec=lambda v: (1 + 2j) * v, rmatvec=lambda v: v, dtype=np.complex128)
    with pytest.raises(ComplexInputError):
        as_operator(cplx)
    # an FFT-based operator whose imaginary part is rounding is accepted (its real part, explicitly)
    op = as_operator((lambda x: torch.fft.ifft(torch.fft.fft(x @ M.T)), lambda y: y @ M), shape=(5, 5))
    np.testing.assert_allclose(op.to_dense(), M.numpy(), atol=1e-12)


def test_operator_that_modifies_its_input_cannot_clobber_the_callers_arrays():
    M = np.random.default_rng(2).normal(size=(4, 4))
    Mt = torch.tensor(M)

    def mutating(x):
        r = x @ Mt.T
        x.zero_()  # in place, on what it was given
        return r

    def scipy_mutating(V):
        r = M @ V
        V[...] = 0
        return r

    X = np.random.default_rng(3).normal(size=(6, 4))
    before = X.copy()
    for op in (as_operator((mutating, lambda y: y @ Mt), shape=(4, 4)),
               as_operator(spla.LinearOperator((4, 4), matvec=scipy_mutating, matmat=scipy_mutating,
                                               rmatvec=lambda v: M.T @ v, dtype=np.float64))):
        np.testing.assert_allclose(op.matvec(X), before @ M.T, atol=1e-12)
        np.testing.assert_array_equal(X, before)


def test_python_api_takes_the_operators_the_cli_takes():
    """compare_operators, filter_factors (and inverse_study through the same operator_matrix) accept a scipy
    LinearOperator, an (A, Aᵀ) pair and a deepinv-like object; results equal those for the matrix itself."""
    rng = np.random.default_rng(4)
    A = rng.normal(size=(6, 6))
    At = torch.tensor(A)
    C = np.linalg.inv(A) + 0.01 * rng.normal(size=(6, 6))
    Y = rng.normal(size=(300, 6))

    class DeepinvLike:
        in_shape = (6,)

        def A(self, x):
            return x @ At.T

        def A_adjoint(self, y):
            return y @ At

    ref = filter_factors(C, A).factors
    for form in (spla.aslinearoperator(A), (lambda x: x @ At.T, lambda y: y @ At),
                 as_operator(DeepinvLike(), in_shape=(6,))):
        np.testing.assert_allclose(filter_factors(C, form).factors, ref, atol=1e-10)
    inv = np.linalg.inv(A)
    r0 = compare_operators(C, inv, probes=Y).data_weighted_error
    r1 = compare_operators(C, spla.aslinearoperator(inv), probes=Y).data_weighted_error
    assert r1 == pytest.approx(r0, rel=1e-10)
    with pytest.raises(ConfigError, match="in_shape"):
        filter_factors(C, DeepinvLike())  # its image size is not part of its interface: said so


def test_sys_exit_in_an_operator_is_one_line(tmp_path, monkeypatch, capsys):
    name = f"opmod_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        import sys, torch
        A = (lambda x: sys.exit(0), lambda y: y)
        B = (lambda x: x * 1.0 + 0.5, lambda y: y)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError, match="sys.exit"):
        load_operator(f"{name}:A", shape=(3, 3))
    (tmp_path / f"{name}x.py").write_text("import sys\nsys.exit(0)\n")
    with pytest.raises(ModelError, match="sys.exit"):
        load_operator(f"{name}x:A")
    # through the CLI: an affine operator is refused in one line before any work
    rng = np.random.default_rng(0)
    np.save(tmp_path / "y.npy", rng.normal(size=(40, 3)))
    np.save(tmp_path / "x.npy", rng.normal(size=(40, 3)))
    with pytest.raises(SystemExit) as e:
        main(["analyze", "-m", "torch.nn:Identity", "-i", str(tmp_path / "y.npy"), "-t", str(tmp_path / "x.npy"),
              "--operator", f"{name}:B", "-o", str(tmp_path / "rep")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "affine" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "rep").exists()
    sys.modules.pop(name, None)


def test_dense_study_with_a_float32_operator_matches_the_exact_one():
    """Truth: a rank-deficient float64 A (an exact zero singular value, cut by the pseudo-inverse). Its float32 copy
    has that singular value at ~1e-8 σ_max; the study's error vs A⁻¹ with the float32 A (cut at its rounding) equals
    the exact one's, where a float64 cut would invert the rounding (error ≈ 1)."""
    from linlens.linalg import pinv_svd, svd
    from linlens.workflows.study import inverse_study

    n = 8
    rng = np.random.default_rng(5)
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    V, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A64 = (U * np.r_[np.linspace(1.0, 0.2, n - 1), 0.0]) @ V.T
    A32 = A64.astype(np.float32)
    assert np.linalg.svd(A32.astype(np.float64), compute_uv=False)[-1] > 1e-12  # rounding, far above a float64 cut
    X = rng.normal(size=(1200, n))
    Y = X @ A64.T + 0.05 * rng.normal(size=X.shape)
    net = torch.nn.Linear(n, n, bias=False, dtype=torch.float64)
    with torch.no_grad():
        net.weight.copy_(torch.from_numpy(np.linalg.pinv(A64)))
    kw = dict(noise_std=0.05, n_boot=5, seed=0)
    e64 = inverse_study({"net": net}, Y[:600], X[:600], X[600:], Y[600:], A=A64, **kw).models["net"].errors
    e32 = inverse_study({"net": net}, Y[:600], X[:600], X[600:], Y[600:], A=A32, **kw).models["net"].errors
    key = "A⁻¹"
    assert e32[key]["estimate"] == pytest.approx(e64[key]["estimate"], rel=1e-3, abs=1e-6)
    U_, s_, Vt_ = pinv_svd(svd(A32.astype(np.float64)), (n, n))  # the float64 cut keeps the rounding's 1/σ
    assert s_.max() > 1e6


def test_cli_reader_keeps_a_float32_files_precision(tmp_path):
    """--operator / --reference files go through analyze_common.load_linear_map: a float32 .npy is read as float64
    values but its map keeps native_dtype float32 (so the A⁺ cut above applies on the CLI routes too)."""
    from linlens.workflows.analyze_common import load_linear_map

    A = np.random.default_rng(0).normal(size=(4, 4))
    np.save(tmp_path / "a32.npy", A.astype(np.float32))
    np.save(tmp_path / "a64.npy", A)
    op32, op64 = load_linear_map(tmp_path / "a32.npy", "operator"), load_linear_map(tmp_path / "a64.npy", "operator")
    assert (op32.native_dtype, op64.native_dtype) == ("float32", "float64")
    np.testing.assert_array_equal(op32.to_dense(), A.astype(np.float32).astype(np.float64))


def test_operator_output_of_the_wrong_size_is_one_line():
    with pytest.raises(ModelError, match="returned 8 values for 4 input"):  # caught by the first probe
        as_operator((lambda x: x[:, :2], lambda y: y), shape=(4, 4), out_shape=(4,))
