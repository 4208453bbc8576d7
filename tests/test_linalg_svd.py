"""Tests of linlens.linalg.svd against independent routes (numpy/scipy, torch, closed forms)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla_mod
import torch

from linlens.errors import ConfigError, NonFiniteError, NumericalWarning, ShapeError
from linlens.linalg import (
    SVDResult,
    fix_signs,
    pinv_svd,
    principal_angles,
    randomized_svd,
    sign_flips,
    spectral_norm,
    svd,
    svd_leading,
    top_eigh,
    truncated_svd,
)


def _with_spectrum(m: int, n: int, s: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.normal(size=(m, len(s))))[0]
    V = np.linalg.qr(rng.normal(size=(n, len(s))))[0]
    return (U * s) @ V.T


# -------------------------------------------------------------------------------------------------- svd
@pytest.mark.parametrize("shape", [(7, 4), (4, 7), (5, 5)])
def test_svd_reconstructs_with_sign_rule(shape):
    A = np.random.default_rng(1).normal(size=shape)
    U, s, Vt = svd(A)
    np.testing.assert_allclose((U * s) @ Vt, A, atol=1e-13)
    np.testing.assert_allclose(s, np.linalg.svd(A, compute_uv=False), rtol=1e-13)
    assert np.all(np.diff(s) <= 0)
    idx = np.argmax(np.abs(U), axis=0)
    assert np.all(U[idx, np.arange(U.shape[1])] > 0)
    # the same matrix with flipped columns of U (a different but valid SVD) gives the same factors
    U2, s2, Vt2 = svd(-A)
    np.testing.assert_allclose(U2, U, atol=1e-12)
    np.testing.assert_allclose(Vt2, -Vt, atol=1e-12)


def test_svd_full_matrices_orthogonal():
    A = np.random.default_rng(2).normal(size=(6, 3))
    U, s, Vt = svd(A, full_matrices=True)
    assert U.shape == (6, 6) and Vt.shape == (3, 3)
    np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-13)
    np.testing.assert_allclose(U[:, :3] * s @ Vt, A, atol=1e-13)


def test_svd_rejects_nan():
    with pytest.raises(NonFiniteError):
        svd(np.array([[1.0, np.nan]]))
    with pytest.raises(ShapeError):
        svd(np.ones(3))


# ------------------------------------------------------------------------------------------ truncated svd
@pytest.mark.parametrize("method", ["full", "arpack", "randomized", "auto"])
def test_truncated_svd_matches_full(method):
    s_true = np.logspace(0, -6, 40)
    A = _with_spectrum(300, 280, s_true, seed=3)
    U, s, Vt = truncated_svd(A, 8, method=method, seed=1)
    np.testing.assert_allclose(s, s_true[:8], rtol=1e-8)
    Uf, _, Vtf = np.linalg.svd(A)
    assert principal_angles(U, Uf[:, :8]).max() < 1e-6
    assert principal_angles(Vt.T, Vtf[:8].T).max() < 1e-6
    idx = np.argmax(np.abs(U), axis=0)
    assert np.all(U[idx, np.arange(8)] > 0)


def test_randomized_svd_torch_keeps_type_and_agrees():
    A = _with_spectrum(60, 50, np.logspace(0, -4, 20), seed=4)
    U, s, Vt = randomized_svd(torch.tensor(A), 5, seed=0)
    assert isinstance(U, torch.Tensor) and U.dtype == torch.float64
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(A, compute_uv=False)[:5], rtol=1e-10)
    Ut, st_, Vtt = truncated_svd(torch.tensor(A), 5, method="full")
    np.testing.assert_allclose(U.numpy(), Ut.numpy(), atol=1e-8)


def test_truncated_svd_bad_args():
    with pytest.raises(ConfigError):
        truncated_svd(np.eye(3), 0)
    with pytest.raises(ConfigError):
        truncated_svd(np.eye(3), 2, method="magic")


# ------------------------------------------------------------------------------------------- sign rule
def test_fix_signs_batched_numpy_torch_and_complex():
    rng = np.random.default_rng(5)
    J = rng.normal(size=(6, 4, 4))
    U, s, Vt = np.linalg.svd(J)
    Ub, Vtb = fix_signs(U, Vt)
    for i in range(len(J)):  # batched = one matrix at a time = the thin svd()
        Ui, Vti = fix_signs(U[i], Vt[i])
        np.testing.assert_array_equal(Ub[i], Ui)
        np.testing.assert_array_equal(Vtb[i], Vti)
        Us, _, Vts = svd(J[i])
        np.testing.assert_allclose(Ub[i], Us, atol=1e-12)
        np.testing.assert_allclose(Vtb[i], Vts, atol=1e-12)
    np.testing.assert_allclose(Ub * s[:, None, :] @ Vtb, J, atol=1e-12)
    Ut, Vtt = fix_signs(torch.as_tensor(U), torch.as_tensor(Vt))
    np.testing.assert_array_equal(Ut.numpy(), Ub)
    np.testing.assert_array_equal(Vtt.numpy(), Vtb)
    again = fix_signs(Ub, Vtb)  # idempotent
    np.testing.assert_array_equal(again[0], Ub)
    # complex: the largest entry of each column becomes real positive, the product is unchanged
    Z = rng.normal(size=(5, 3)) + 1j * rng.normal(size=(5, 3))
    Uz, sz, Vz = np.linalg.svd(Z, full_matrices=False)
    Uf, Vf = fix_signs(Uz, Vz)
    top = Uf[np.argmax(np.abs(Uf), axis=0), np.arange(3)]
    np.testing.assert_allclose(top.imag, 0, atol=1e-14)
    assert np.all(top.real > 0)
    np.testing.assert_allclose((Uf * sz) @ Vf, Z, atol=1e-12)
    assert sign_flips(np.zeros((3, 2))).tolist() == [1.0, 1.0]


# ------------------------------------------------------------------------------------ randomized svd
def test_randomized_svd_numpy_torch_float32_and_options():
    A = _with_spectrum(120, 90, np.logspace(0, -3, 30), seed=6)
    ref = np.linalg.svd(A, compute_uv=False)
    res, n_iter = randomized_svd(A, 6, return_n_iter=True)
    assert isinstance(res, SVDResult) and res.U.shape == (120, 6) and res.Vt.shape == (6, 90)
    np.testing.assert_allclose(res.s, ref[:6], rtol=1e-10)
    assert n_iter >= 1
    t = randomized_svd(torch.as_tensor(A), 6)
    np.testing.assert_allclose(t.U.numpy(), res.U, atol=1e-9)  # same sketch, same sign rule
    sk = randomized_svd(A, 6, n_oversamples=4, full_sketch=True)
    assert len(sk.s) == 10 and sk.U.shape == (120, 10)
    f32 = randomized_svd(torch.as_tensor(A, dtype=torch.float32), 6, dtype=torch.float32)
    assert f32.s.dtype == torch.float32
    np.testing.assert_allclose(f32.s.numpy(), ref[:6], rtol=1e-4)
    fixed, it = randomized_svd(A, 6, n_iter=0, return_n_iter=True)
    assert it == 0 and np.all(fixed.s <= ref[:6] * (1 + 1e-12))  # Ritz values never exceed the true ones
    with pytest.raises(NonFiniteError):
        randomized_svd(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), 1)


def test_randomized_svd_warns_when_not_converged():
    s = 1.0 / np.arange(1, 101)  # slow decay: the leading subspace needs many iterations
    A = _with_spectrum(200, 150, s, seed=7)
    with pytest.warns(NumericalWarning, match="did not converge"):
        randomized_svd(A, 10, n_oversamples=0, max_iter=1)


# ------------------------------------------------------------------------------- spectral norm, A⁺ from SVD
@pytest.mark.parametrize("shape", [(5, 3), (300, 520), (600, 400)])
def test_spectral_norm_matches_numpy(shape):
    """Both routes (all singular values for small, ARPACK for large) against numpy's 2-norm."""
    A = np.random.default_rng(1).normal(size=shape)
    assert spectral_norm(A) == pytest.approx(np.linalg.norm(A, 2), rel=1e-12)
    assert spectral_norm(np.zeros(shape)) == 0.0
    # a cluster at the top: ARPACK still returns the largest value
    B = _with_spectrum(*shape, np.r_[3.0, 3.0 - 1e-9, np.linspace(1.0, 0.1, min(shape) - 2)])
    assert spectral_norm(B) == pytest.approx(3.0, rel=1e-12)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5)])
def test_pinv_svd_matches_numpy_pinv_also_when_rank_deficient(shape):
    rng = np.random.default_rng(2)
    for s in (np.array([4.0, 2.0, 0.5, 0.1]), np.array([4.0, 1.0])):  # full rank / rank 2
        A = _with_spectrum(*shape, s)
        U, sp, Vt = pinv_svd(svd(A), A.shape)
        assert U.shape == (shape[1], min(shape)) and Vt.shape == (min(shape), shape[0])
        np.testing.assert_allclose((U * sp) @ Vt, np.linalg.pinv(A), atol=1e-10)
        assert np.all(np.diff(sp[sp > 0]) <= 0) and np.all(sp[len(s):] == 0)
        np.testing.assert_allclose(np.sort(sp[: len(s)]), np.sort(1 / s), rtol=1e-10)
        np.testing.assert_array_equal(sign_flips(U), np.ones(U.shape[1]))  # the one sign rule
    with pytest.raises(ShapeError, match="thin SVD"):
        pinv_svd(svd(rng.normal(size=(3, 3))), (4, 3))


def test_randomized_svd_of_an_operator_known_only_by_its_products():
    """Data read from disk is an operator (matmat/rmatmat passes): same triplets as the full SVD, same signs."""
    from scipy.sparse.linalg import LinearOperator

    A = _with_spectrum(300, 80, np.r_[np.geomspace(10.0, 1.0, 6), 1e-3 * np.ones(74)], seed=4)
    op = LinearOperator(A.shape, matvec=lambda v: A @ v, rmatvec=lambda v: A.T @ v, matmat=lambda M: A @ M,
                        rmatmat=lambda M: A.T @ M, dtype=np.float64)
    (U, s, Vt), n_iter = randomized_svd(op, 6, return_n_iter=True)
    Uf, sf, Vtf = svd(A)
    np.testing.assert_allclose(s, sf[:6], rtol=1e-10)
    np.testing.assert_allclose(Vt, Vtf[:6], atol=1e-8)
    np.testing.assert_allclose(U, Uf[:, :6], atol=1e-8)
    assert n_iter >= 1


def test_svd_leading_equals_the_full_svd_on_an_ill_conditioned_blur():
    """Every singular value (gesdd without vectors) and the leading vectors (ARPACK) of a Gaussian blur with
    κ ≈ 1e8 equal the full SVD's: values to rounding relative to σ_max (the accuracy class of any SVD; the tiny ones
    are not more accurate in the full SVD either), leading vector pairs to 1e-10."""
    from linlens.problems import gaussian_blur

    A = gaussian_blur(600, width=2.0)
    full = svd(A)
    assert 1e7 < full.s[0] / full.s[-1] < 1e10  # ill-conditioned, as the blurs users invert
    lead = svd_leading(A, 128)  # 128 ≤ 600/4: the values-only + ARPACK path
    assert lead.U.shape == (600, 128) and lead.s.shape == (600,) and lead.Vt.shape == (128, 600)
    np.testing.assert_allclose(lead.s, full.s, rtol=0, atol=1e-13 * full.s[0])
    # each pair up to one common sign (the sign rule's largest |entry| is a tie in a symmetric blur's vectors)
    sign = np.sign(np.sum(lead.U * full.U[:, :128], axis=0))
    np.testing.assert_allclose(lead.U * sign, full.U[:, :128], atol=1e-10)
    np.testing.assert_allclose(lead.Vt * sign[:, None], full.Vt[:128], atol=1e-10)
    B = _with_spectrum(600, 600, np.geomspace(1.0, 1e-8, 600), seed=4)  # no ties: the same signs as well
    np.testing.assert_allclose(svd_leading(B, 128).U, svd(B).U[:, :128], atol=1e-10)
    small = svd_leading(A[:200, :200], 10)  # small matrices take the full SVD, sliced
    np.testing.assert_array_equal(small.U, svd(A[:200, :200]).U[:, :10])
    with pytest.raises(ConfigError):
        svd_leading(A, 0)


@pytest.mark.parametrize("shape", [(625, 625), (700, 540), (540, 700)])
def test_svd_leading_gram_vectors_equal_the_full_svd_on_clustered_and_rectangular_spectra(shape):
    """method="gram" (the Gram matrix's leading eigenvectors by syevr + Rayleigh–Ritz, a cost that does not depend on
    the spectrum) gives the full SVD's leading pairs: a Kronecker blur B ⊗ B (every value twice, as the 2-D blurs the
    study inverts: only the pairs' subspaces are defined, compared by projectors) and distinct spectra of both
    orientations (vectors themselves, with the sign rule)."""
    if shape == (625, 625):
        from linlens.problems import gaussian_blur

        B1 = gaussian_blur(25, width=1.5)
        A = np.kron(B1, B1)  # σᵢσⱼ = σⱼσᵢ: paired values
    else:
        A = _with_spectrum(*shape, np.geomspace(1.0, 1e-8, min(shape)), seed=5)
    full, lead = svd(A), svd_leading(A, 128, method="gram")
    assert lead.U.shape == (shape[0], 128) and lead.Vt.shape == (128, shape[1])
    np.testing.assert_allclose(lead.s, full.s, rtol=0, atol=1e-13 * full.s[0])
    k = 128
    while k < min(shape) and full.s[k - 1] - full.s[k] < 1e-6 * full.s[0]:  # cut between clusters
        k -= 1
    for X, Y in ((lead.U[:, :k], full.U[:, :k]), (lead.Vt[:k].T, full.Vt[:k].T)):
        np.testing.assert_allclose(X @ X.T, Y @ Y.T, atol=1e-9)
    if shape != (625, 625):
        np.testing.assert_allclose(lead.U, full.U[:, :128], atol=1e-10)
        np.testing.assert_allclose(lead.Vt, full.Vt[:128], atol=1e-10)
    with pytest.raises(ConfigError, match="method"):
        svd_leading(A, 5, method="lanczos")


def test_svd_leading_gram_falls_back_to_arpack_on_steep_spectra():
    """The Gram route squares the spectrum (vector errors ~ε(σ₁/σ_k)²/gap): on a 600 × 600 rank-60 matrix with σ from
    1 to 1e-6 its top-60 subspace was 2.6e-5 rad off. Below σ_k/σ₁ = GRAM_MIN_RATIO the vectors come from ARPACK:
    the top-k subspaces must then match the full SVD's (second algorithm) to 1e-7, C against 1.0001·C must read a
    principal angle ≈ 0, and above the ratio the Gram route keeps the full SVD's accuracy."""
    from linlens.linalg import GRAM_MIN_RATIO, subspace_comparison

    s = np.r_[np.geomspace(1.0, 1e-6, 60), np.zeros(540)]  # rank 60, σ₁₂₈ = 0 < ratio: ARPACK
    C = _with_spectrum(600, 600, s, seed=7)
    full = svd(C)
    for A, s_k in ((C, 0.0), (_with_spectrum(600, 600, np.geomspace(1.0, 1e-2, 600), seed=8), None)):
        f = full if A is C else svd(A)
        lead = svd_leading(A, 128, method="gram")
        if s_k is None:  # σ₁₂₈/σ₁ ≈ 0.35 ≥ the ratio: the Gram route
            assert lead.s[127] >= GRAM_MIN_RATIO * lead.s[0]
        k = 60
        for X, Y in ((lead.U[:, :k], f.U[:, :k]), (lead.Vt[:k].T, f.Vt[:k].T)):
            sin = np.linalg.norm(X - Y @ (Y.T @ X), 2)  # sine of the largest principal angle
            assert sin < 1e-7
    same = subspace_comparison(C, 1.0001 * C, k=60, svd_C=svd_leading(C, 128, method="gram"),
                               svd_R=svd_leading(1.0001 * C, 128, method="gram"))
    assert same.max_angle < 1e-8


@pytest.mark.parametrize("case", ["pairs", "tall", "wide", "steep"])
def test_svd_leading_partial_values_equal_the_leading_values_of_numpy_svd(case):
    """svd_leading(n_values=p) returns the leading p values from the vectors' own route (no gesdd): they must equal
    numpy's SVD's leading p values (independent route) to rounding relative to σ₁, on paired values (a Kronecker
    blur), both orientations, and a steep rank-60 spectrum (the ARPACK fallback below GRAM_MIN_RATIO); the vectors
    are those of the call without n_values, and n_values outside [k, min(m, n)] is refused."""
    if case == "pairs":
        from linlens.problems import gaussian_blur

        B1 = gaussian_blur(25, width=1.5)
        A = np.kron(B1, B1)
    elif case == "steep":
        A = _with_spectrum(600, 600, np.r_[np.geomspace(1.0, 1e-6, 60), np.zeros(540)], seed=9)
    else:
        A = _with_spectrum(*((700, 540) if case == "tall" else (540, 700)), np.geomspace(1.0, 1e-8, 540), seed=6)
    ref = np.linalg.svd(A, compute_uv=False)
    part, whole = svd_leading(A, 128, method="gram", n_values=129), svd_leading(A, 128, method="gram")
    assert part.s.shape == (129,) and whole.s.shape == (min(A.shape),)
    np.testing.assert_allclose(part.s, ref[:129], rtol=0, atol=1e-13 * ref[0])
    if case != "pairs":  # distinct values: the same vectors (pairs: only the pairs' subspaces are defined; steep:
        r = 60 if case == "steep" else 128  # beyond its rank 60 any null vectors)
        np.testing.assert_allclose(part.U[:, :r], whole.U[:, :r], atol=1e-9)
        np.testing.assert_allclose(part.Vt[:r], whole.Vt[:r], atol=1e-9)
    assert svd_leading(A, 128, n_values=min(A.shape)).s.shape == (min(A.shape),)  # n_values = all: every value
    for bad in (127, min(A.shape) + 1, 129.0, True):
        with pytest.raises(ConfigError, match="n_values"):
            svd_leading(A, 128, n_values=bad)


def test_top_eigh_equals_full_eigh_and_its_fallback(monkeypatch):
    """top_eigh's m largest pairs equal numpy's full eigh (values, and vectors up to sign), and the syevd fallback
    taken when syevr raises gives the same pairs."""
    rng = np.random.default_rng(3)
    B = rng.standard_normal((40, 30))
    K = B @ B.T  # rank 30: 10 zero eigenvalues, the top 12 distinct
    w_ref, E_ref = np.linalg.eigh(K)
    w_ref, E_ref = w_ref[::-1][:12], E_ref[:, ::-1][:, :12]

    def check(w, E):
        assert w.shape == (12,) and E.shape == (40, 12)
        np.testing.assert_allclose(w, w_ref, rtol=1e-10)
        np.testing.assert_allclose(np.abs(np.sum(E * E_ref, axis=0)), 1.0, atol=1e-10)

    check(*top_eigh(K, 12))

    def fail(*args, **kwargs):
        raise np.linalg.LinAlgError("internal error")

    monkeypatch.setattr(sla_mod, "eigh", fail)
    check(*top_eigh(K, 12))
