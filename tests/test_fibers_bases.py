"""Tangent/normal spaces and prebases, checked against the dimension formula, torch.func derivatives of the
product map and of the group action, and the defining properties of a prebasis."""

import numpy as np
import pytest
import scipy.linalg as sla
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from linlens.errors import ConfigError
from linlens.fibers import (
    LinearNetwork,
    orthogonal_complement,
    prebasis,
    strata,
    subspace_A,
    subspace_B,
    tangent_normal,
)


def _mx(M):
    return float(np.abs(M).max()) if M.size else 0.0


SMALL = [((1, 1, 1), 0), ((1, 1, 1), 1), ((2, 2, 2), 0), ((2, 2, 2), 1), ((2, 3, 2), 1), ((3, 2, 3), 1),
         ((2, 2, 2, 2), 0), ((2, 2, 2, 2), 1), ((1, 2, 2, 1), 1), ((2, 3, 3, 2), 1), ((3, 2, 2), 0)]


def _dmu(weights):
    """Jacobian of θ ↦ W_L⋯W_1 by torch.func (independent of linlens' Kronecker blocks), (d_L d_0, D)."""
    ts = [torch.tensor(w) for w in weights]
    shapes = [t.shape for t in ts]
    sizes = [t.numel() for t in ts]

    def f(theta):
        parts = torch.split(theta, sizes)
        M = parts[0].reshape(shapes[0])
        for p, s in zip(parts[1:], shapes[1:], strict=True):
            M = p.reshape(s) @ M
        return M.reshape(-1)

    theta = torch.cat([t.reshape(-1) for t in ts])
    return torch.func.jacrev(f)(theta).numpy()


def _orbit_dim_torch(weights):
    """Dimension of the orbit of {G : G_L W G_0^{-1} = W} through θ: rank of the Jacobian of the action
    X ↦ (exp(X_k) W_k exp(−X_{k−1})) restricted to the linearized stabilizer of W (via scipy null_space)."""
    ts = [torch.tensor(w) for w in weights]
    d = [ts[0].shape[1]] + [t.shape[0] for t in ts]
    sizes = [n * n for n in d]
    W = ts[0]
    for t in ts[1:]:
        W = t @ W

    def act(x):
        X = [p.reshape(n, n) for p, n in zip(torch.split(x, sizes), d, strict=True)]
        return torch.cat([(torch.matrix_exp(X[k + 1]) @ ts[k] @ torch.matrix_exp(-X[k])).reshape(-1)
                          for k in range(len(ts))])

    def stab(x):
        X = [p.reshape(n, n) for p, n in zip(torch.split(x, sizes), d, strict=True)]
        return (torch.matrix_exp(X[-1]) @ W @ torch.matrix_exp(-X[0])).reshape(-1)

    x0 = torch.zeros(sum(sizes), dtype=torch.float64)
    Ja = torch.func.jacfwd(act)(x0).numpy()
    Js = torch.func.jacfwd(stab)(x0).numpy()
    K = sla.null_space(Js, rcond=1e-10)
    return np.linalg.matrix_rank(Ja @ K, tol=1e-8)


@pytest.mark.parametrize("widths,rank", SMALL)
def test_tangent_normal_every_stratum(widths, rank):
    for n, s in enumerate(strata(widths, rank)):
        w = s.random_point(seed=n + 7)
        net = LinearNetwork(w)
        T, N = tangent_normal(net, method="orbit")
        D = net.weight_dim
        assert T.shape == (D, s.dim)  # numerical tangent rank = dimension formula
        assert T.shape[1] + N.shape[1] == D
        assert _mx(T.T @ T - np.eye(T.shape[1])) < 1e-10
        assert _mx(N.T @ N - np.eye(N.shape[1])) < 1e-10
        assert _mx(N.T @ T) < 1e-10
        J = _dmu(w)
        if T.size:
            assert np.abs(J @ T).max() < 1e-10 * max(1.0, np.abs(J).max())  # the stratum lies in the fiber
        # the row space of dμ lies in the normal space
        assert np.linalg.norm(J.T - N @ (N.T @ J.T)) < 1e-9 * max(1.0, np.linalg.norm(J))
        if s.excess_codim == 0:
            T2, N2 = tangent_normal(net, method="kernel")
            assert _mx(T2 @ T2.T - T @ T.T) < 1e-9
            assert _mx(T2.T @ T2 - np.eye(T2.shape[1])) < 1e-10
        else:
            with pytest.raises(ConfigError, match="excess"):
                tangent_normal(net, method="kernel")


@pytest.mark.parametrize("widths,rank", [((2, 2, 2), 0), ((2, 2, 2), 1), ((2, 3, 2), 1), ((1, 2, 1), 0),
                                         ((2, 2, 2, 2), 1)])
def test_dimension_formula_equals_group_orbit_dimension(widths, rank):
    for n, s in enumerate(strata(widths, rank)):
        assert _orbit_dim_torch(s.random_point(seed=n)) == s.dim


def test_kernel_route_generic_larger_network():
    rng = np.random.default_rng(0)
    w = [rng.standard_normal((6, 5)), rng.standard_normal((7, 6)), rng.standard_normal((4, 7))]
    net = LinearNetwork(w)
    T, N = tangent_normal(net)  # auto → kernel (generic point, no excess codimension)
    J = _dmu(w)
    assert T.shape[1] == net.weight_dim - np.linalg.matrix_rank(J)
    assert np.abs(J @ T).max() < 1e-10 * np.abs(J).max()
    assert _mx(T.T @ T - np.eye(T.shape[1])) < 1e-10


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 40), st.integers(0, 40), st.integers(0, 1000))
def test_orthogonal_complement_property(D, k, seed):
    k = min(k, D)
    rng = np.random.default_rng(seed)
    N = np.linalg.qr(rng.standard_normal((D, k)))[0] if k else np.zeros((D, 0))
    T = orthogonal_complement(N)
    assert T.shape == (D, D - k)
    assert _mx(T.T @ T - np.eye(D - k)) < 1e-10
    if k and D - k:
        assert np.abs(N.T @ T).max() < 1e-10


@pytest.mark.parametrize("widths,rank", SMALL)
def test_prebasis_follows_the_bars(widths, rank):
    for n, s in enumerate(strata(widths, rank)):
        net = LinearNetwork(s.random_point(seed=n))
        pb = prebasis(net)
        assert pb.stratum == s
        for j, U in enumerate(pb.bases):
            assert U.shape == (widths[j], widths[j])
            assert np.linalg.matrix_rank(U) == widths[j]
        for j in range(net.L):
            Wn = net.weights[j]  # W_{j+1}: layer j → j+1
            for col, (bar, c) in enumerate(pb.labels[j]):
                img = Wn @ pb.bases[j][:, col]
                scale = np.linalg.norm(Wn, 2) * np.linalg.norm(pb.bases[j][:, col])
                if bar[1] == j:
                    assert np.linalg.norm(img) < 1e-10 * max(scale, 1.0)
                else:
                    assert np.linalg.norm(img - pb.vector(j + 1, bar, c)) < 1e-10 * max(scale, 1.0)
        assert sum(sum(d.values()) for d in pb.decomposition()) == sum(widths)


def test_subspaces_A_B_dimensions_and_containment():
    widths = (2, 3, 3, 2)
    for n, s in enumerate(strata(widths, 1)):
        net = LinearNetwork(s.random_point(seed=n))
        L = net.L
        r = s.rank_list

        def rr(b, a, L=L, r=r):
            return 0 if b > L else (widths[b] if a == b else r[(b, a)])

        for i in range(L + 1):
            for j in range(i, L + 1):
                for k in range(j, L + 2):
                    A = subspace_A(net, k, j, i)
                    assert A.shape[1] == rr(j, i) - rr(k, i)
                    if A.size and k <= L:
                        assert np.abs(net.subproduct(k, j) @ A).max() < 1e-9
                    B = subspace_B(net, k, j, i)
                    assert B.shape[1] == (rr(k, j) - rr(k, i) if k <= L else 0)
                    if B.size:
                        assert np.abs(net.subproduct(j, i).T @ B).max() < 1e-9
                    # orthogonality A_kji ⊥ B_k'ji' for i ≤ i' (here i' = i, k' = k)
                    if A.size and B.size:
                        assert np.abs(A.T @ B).max() < 1e-9


@pytest.mark.parametrize("widths,rank", [((2, 3, 2), 1), ((2, 3, 3, 2), 1), ((3, 2, 2), 0)])
def test_transpose_duality(widths, rank):
    for n, s in enumerate(strata(widths, rank)):
        net = LinearNetwork(s.random_point(seed=n))
        L = net.L
        tnet = LinearNetwork([w.T for w in reversed(net.weights)])
        mirrored = {(L - b, L - a): m for (a, b), m in s.barcode}
        assert tnet.stratum().multiplicities == mirrored
        pb = prebasis(net)
        duals = [np.linalg.inv(U).T for U in pb.bases]  # columns: a prebasis of the transposed network
        for j in range(L):
            Wt = net.weights[j].T  # maps layer j+1 back to layer j
            for col, (bar, c) in enumerate(pb.labels[j + 1]):
                img = Wt @ duals[j + 1][:, col]
                if bar[0] == j + 1:  # the bar is born at j+1: dead in the transposed direction
                    assert np.linalg.norm(img) < 1e-9 * max(1.0, np.linalg.norm(duals[j + 1][:, col]))
                else:
                    assert np.allclose(img, duals[j][:, pb.column(j, bar, c)], atol=1e-9)
