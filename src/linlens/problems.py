"""Linear inverse problems with known spectra: operators A, priors for x, white noise, and the closed-form
Wiener (linear minimum-mean-square-error) estimator.

A problem is y = A x + σ e with x drawn from a prior of known covariance Σ_x and e ~ N(0, I). A network
trained to output x from y approaches E[x | y]; its best linear fit is the Wiener estimator
C* = Σ_x Aᵀ (A Σ_x Aᵀ + σ² I)⁻¹, not A⁻¹ (guide page "The inverse-operator study").

Example:
    >>> A = gaussian_blur(16, width=1.0)
    >>> prob = InverseProblem(A, GaussianPrior(16), noise_std=1e-2)
    >>> X, Y = prob.sample(100, seed=0)
    >>> X.shape, Y.shape, prob.wiener().shape
    ((100, 16), (100, 16), (16, 16))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import scipy.linalg as sla
import torch
import torch.nn.functional as tF

from linlens.errors import ConfigError
from linlens.validation import as_array

__all__ = [
    "gaussian_blur",
    "second_difference",
    "prescribed_spectrum",
    "vandermonde",
    "Prior",
    "GaussianPrior",
    "SmoothPrior",
    "SparsePrior",
    "PiecewiseConstantPrior",
    "InverseProblem",
    "wiener_estimator",
    "CircularBlur",
]


def _check_n(n: int, name: str = "n") -> int:
    if int(n) != n or n < 1:
        raise ConfigError(f"{name} must be a positive integer; got {n!r}")
    return int(n)


# ----------------------------------------------------------------------------------------------- operators
def gaussian_blur(n: int, width: float = 2.0, normalize: bool = True) -> np.ndarray:
    """Toeplitz Gaussian convolution on n points: A_ij = exp(−(i−j)²/(2w²)) / (√(2π) w).

    Smooth and severely ill-conditioned: with n = 64 and w = 2, κ(A) ≈ 1.5e8.

    Returns:
        A of shape (n, n), symmetric.

    Example:
        >>> A = gaussian_blur(64, 2.0)
        >>> bool(np.allclose(A, A.T)), f"{np.linalg.cond(A):.1e}"
        (True, '1.5e+08')
    """
    n = _check_n(n)
    if not width > 0:
        raise ConfigError(f"width must be positive; got {width}")
    i = np.arange(n)
    A = np.exp(-((i[:, None] - i[None, :]) ** 2) / (2.0 * width**2))
    return A / (np.sqrt(2 * np.pi) * width) if normalize else A


def second_difference(n: int) -> np.ndarray:
    """Dirichlet Laplacian tridiag(−1, 2, −1) on n points; eigenvalues 2 − 2cos(kπ/(n+1)), k = 1..n,
    eigenvectors sin(jkπ/(n+1)).

    Returns:
        A of shape (n, n), symmetric positive definite.

    Example:
        >>> n = 5
        >>> k = np.arange(1, n + 1)
        >>> bool(np.allclose(np.linalg.eigvalsh(second_difference(n)), np.sort(2 - 2 * np.cos(k * np.pi / (n + 1)))))
        True
    """
    n = _check_n(n)
    return 2.0 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)


def prescribed_spectrum(
    singular_values: np.ndarray, n_rows: int | None = None, n_cols: int | None = None, seed: int = 0
) -> np.ndarray:
    """A = U diag(s) Vᵀ with Haar-random orthogonal U, V (seeded) and the given singular values.

    Arguments:
        singular_values: (k,) non-negative values (any order; used as given on the diagonal).
        n_rows, n_cols: shape of A (default k × k); both must be ≥ k.

    Returns:
        A of shape (n_rows, n_cols).

    Example:
        >>> A = prescribed_spectrum([3.0, 1.0, 0.5], n_rows=5, n_cols=4)
        >>> A.shape, np.linalg.svd(A, compute_uv=False).round(12).tolist()
        ((5, 4), [3.0, 1.0, 0.5, 0.0])
    """
    s = as_array(singular_values, "singular_values", ndim=1)
    if (s < 0).any():
        raise ConfigError("singular_values must be non-negative")
    k = len(s)
    m = k if n_rows is None else int(n_rows)
    n = k if n_cols is None else int(n_cols)
    if m < k or n < k:
        raise ConfigError(f"shape ({m}, {n}) cannot hold {k} singular values")
    rng = np.random.default_rng(seed)
    from scipy.stats import ortho_group

    U = ortho_group.rvs(m, random_state=rng) if m > 1 else np.ones((1, 1))
    V = ortho_group.rvs(n, random_state=rng) if n > 1 else np.ones((1, 1))
    return (U[:, :k] * s) @ V[:, :k].T


def vandermonde(nodes: np.ndarray, degree: int) -> np.ndarray:
    """Polynomial fitting operator: A_ij = t_i^j, j = 0..degree (maps coefficients to values at nodes).

    Returns:
        A of shape (len(nodes), degree + 1).

    Example:
        >>> vandermonde(np.array([0.0, 1.0, 2.0]), 2) @ [1.0, 0.0, 3.0]  # values of 1 + 3t² at t = 0, 1, 2
        array([ 1.,  4., 13.])
    """
    t = as_array(nodes, "nodes", ndim=1)
    if degree < 0:
        raise ConfigError(f"degree must be ≥ 0; got {degree}")
    return np.vander(t, degree + 1, increasing=True)


# ----------------------------------------------------------------------------------------------- priors
class Prior(Protocol):
    """A zero-mean distribution for x with a known covariance.

    Example:
        >>> prior: Prior = GaussianPrior(3, variance=2.0)
        >>> prior.sample(4, np.random.default_rng(0)).shape, np.diag(prior.covariance()).tolist()
        ((4, 3), [2.0, 2.0, 2.0])
    """

    n: int

    def sample(self, m: int, rng: np.random.Generator) -> np.ndarray: ...

    def covariance(self) -> np.ndarray: ...


@dataclass(frozen=True)
class GaussianPrior:
    """Isotropic Gaussian x ~ N(0, λ I).

    Example:
        >>> X = GaussianPrior(2, variance=4.0).sample(20000, np.random.default_rng(0))
        >>> np.abs(np.round(np.cov(X.T), 1)).tolist()
        [[4.0, 0.0], [0.0, 4.0]]
    """

    n: int
    variance: float = 1.0

    def sample(self, m: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((m, self.n)) * np.sqrt(self.variance)

    def covariance(self) -> np.ndarray:
        return self.variance * np.eye(self.n)


@dataclass(frozen=True)
class SmoothPrior:
    """Gaussian process with squared-exponential kernel: Σ_ij = v exp(−(i−j)²/(2ℓ²)) (+ jitter·v on the
    diagonal so that Σ is positive definite).

    Example:
        >>> prior = SmoothPrior(8, length_scale=2.0)
        >>> round(float(prior.covariance()[0, 2]), 6), round(float(np.exp(-0.5)), 6)  # exp(−2²/(2·2²))
        (0.606531, 0.606531)
        >>> X = prior.sample(40000, np.random.default_rng(0))
        >>> bool(np.abs(np.cov(X.T) - prior.covariance()).max() < 0.05)
        True
    """

    n: int
    length_scale: float = 4.0
    variance: float = 1.0
    jitter: float = 1e-8
    _chol: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.length_scale > 0 or not self.variance > 0:
            raise ConfigError("length_scale and variance must be positive")
        # Eigen-decomposition, not Cholesky: the SE kernel is numerically rank-deficient.
        w, V = np.linalg.eigh(self.covariance())
        object.__setattr__(self, "_chol", V * np.sqrt(np.clip(w, 0, None)))

    def covariance(self) -> np.ndarray:
        i = np.arange(self.n)
        K = self.variance * np.exp(-((i[:, None] - i[None, :]) ** 2) / (2.0 * self.length_scale**2))
        return K + self.jitter * self.variance * np.eye(self.n)

    def sample(self, m: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((m, self.n)) @ self._chol.T


@dataclass(frozen=True)
class SparsePrior:
    """Bernoulli–Laplace: each entry is nonzero with probability p, then Laplace(0, scale).
    Covariance 2 p scale² I (entries independent, zero mean).

    Example:
        >>> prior = SparsePrior(3, p=0.2, scale=1.0)
        >>> X = prior.sample(100000, np.random.default_rng(0))
        >>> round(float((X != 0).mean()), 2), np.round(np.diag(np.cov(X.T)), 1).tolist()
        (0.2, [0.4, 0.4, 0.4])
    """

    n: int
    p: float = 0.1
    scale: float = 1.0

    def sample(self, m: int, rng: np.random.Generator) -> np.ndarray:
        mask = rng.random((m, self.n)) < self.p
        return mask * rng.laplace(0.0, self.scale, size=(m, self.n))

    def covariance(self) -> np.ndarray:
        return 2.0 * self.p * self.scale**2 * np.eye(self.n)


@dataclass(frozen=True)
class PiecewiseConstantPrior:
    """Piecewise-constant signals: between consecutive points a jump occurs independently with probability
    q; each constant piece takes an independent N(0, v) value.

    Covariance (closed form): Σ_ij = v (1 − q)^{|i−j|} — two points share a piece iff no jump lies
    between them.

    Example:
        >>> prior = PiecewiseConstantPrior(6, jump_probability=0.5)
        >>> prior.covariance()[0, :3].tolist()
        [1.0, 0.5, 0.25]
        >>> X = prior.sample(40000, np.random.default_rng(0))
        >>> bool(np.abs(np.cov(X.T) - prior.covariance()).max() < 0.03)
        True
    """

    n: int
    jump_probability: float = 0.08
    variance: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.jump_probability <= 1:
            raise ConfigError(f"jump_probability must be in (0, 1]; got {self.jump_probability}")

    def sample(self, m: int, rng: np.random.Generator) -> np.ndarray:
        jumps = rng.random((m, self.n)) < self.jump_probability
        jumps[:, 0] = True
        piece = np.cumsum(jumps, axis=1) - 1  # piece index of every point
        values = rng.standard_normal((m, self.n)) * np.sqrt(self.variance)
        return np.take_along_axis(values, piece, axis=1)

    def covariance(self) -> np.ndarray:
        i = np.arange(self.n)
        return self.variance * (1.0 - self.jump_probability) ** np.abs(i[:, None] - i[None, :])


# ----------------------------------------------------------------------------------------------- problems
def wiener_estimator(A: np.ndarray, prior_covariance: np.ndarray, noise_std: float) -> np.ndarray:
    """The linear MMSE (Wiener) estimator C* = Σ_x Aᵀ (A Σ_x Aᵀ + σ² I)⁻¹ for zero-mean x and white noise.

    Arguments:
        A: (n_y, n_x) forward operator.
        prior_covariance: (n_x, n_x) covariance of x.
        noise_std: σ ≥ 0 (σ = 0 needs A Σ_x Aᵀ invertible).

    Returns:
        C* of shape (n_x, n_y).

    Example:
        >>> wiener_estimator(np.eye(2), np.eye(2), 1.0)  # scalar case: Σ/(Σ + σ²) = 1/2
        array([[0.5, 0. ],
               [0. , 0.5]])
    """
    A = as_array(A, "A")
    S = as_array(prior_covariance, "prior_covariance")
    if S.shape != (A.shape[1], A.shape[1]):
        raise ConfigError(f"prior_covariance must be {(A.shape[1],) * 2}; got {S.shape}")
    G = A @ S @ A.T + noise_std**2 * np.eye(A.shape[0])
    # C* = S Aᵀ G⁻¹; G is symmetric positive (semi)definite: solve G C*ᵀ = A S with a symmetric solver.
    try:
        return sla.solve(G, A @ S, assume_a="pos").T
    except (np.linalg.LinAlgError, sla.LinAlgError):
        return (np.linalg.pinv(G, hermitian=True) @ (A @ S)).T


@dataclass(frozen=True)
class InverseProblem:
    """y = A x + σ e, x ~ prior, e ~ N(0, I).

    Arguments:
        A: (n_y, n_x) forward operator.
        prior: a :class:`Prior` of dimension n_x.
        noise_std: σ ≥ 0.
        name: a label for reports.

    Example:
        >>> prob = InverseProblem(2.0 * np.eye(3), GaussianPrior(3), noise_std=1.0)
        >>> round(prob.mmse_linear(), 12), np.diag(prob.wiener()).round(12).tolist()  # 3 · 1/(1 + 4), 2/(4 + 1)
        (0.6, [0.4, 0.4, 0.4])
        >>> X, Y = prob.sample(20000, seed=0)
        >>> round(float(np.mean(np.sum((X - Y @ prob.wiener().T) ** 2, axis=1))), 1)
        0.6
    """

    A: np.ndarray
    prior: Prior
    noise_std: float
    name: str = "problem"

    def __post_init__(self) -> None:
        A = as_array(self.A, "A")
        object.__setattr__(self, "A", A)
        if self.prior.n != A.shape[1]:
            raise ConfigError(f"prior dimension {self.prior.n} does not match A's {A.shape[1]} columns")
        if self.noise_std < 0:
            raise ConfigError(f"noise_std must be ≥ 0; got {self.noise_std}")

    @property
    def n_x(self) -> int:
        return self.A.shape[1]

    @property
    def n_y(self) -> int:
        return self.A.shape[0]

    def sample(self, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Draw m pairs. Returns (X (m, n_x) signals, Y (m, n_y) observations), float64, seeded."""
        rng = np.random.default_rng(seed)
        X = self.prior.sample(int(m), rng)
        Y = X @ self.A.T + self.noise_std * rng.standard_normal((int(m), self.n_y))
        return X, Y

    def wiener(self) -> np.ndarray:
        """Closed-form Wiener estimator (n_x, n_y)."""
        return wiener_estimator(self.A, self.prior.covariance(), self.noise_std)

    def pinv(self) -> np.ndarray:
        """A⁻¹ for square invertible A, else the pseudo-inverse A⁺ (n_x, n_y)."""
        if self.A.shape[0] == self.A.shape[1]:
            try:
                return np.linalg.solve(self.A, np.eye(self.n_y))
            except np.linalg.LinAlgError:
                pass
        return np.linalg.pinv(self.A)

    def mmse_linear(self) -> float:
        """Expected squared error per sample, E‖x − C* y‖², of the Wiener estimator (closed form):
        tr(Σ_x − C* A Σ_x)."""
        S = self.prior.covariance()
        return float(np.trace(S - self.wiener() @ self.A @ S))


# ------------------------------------------------------------------------------------- image operators
class CircularBlur:
    """A Gaussian blur of images with circular boundaries and deepinv's interface (``A``, ``A_adjoint`` on
    (B, C, H, W) tensors): a stand-in for ``deepinv.physics.Blur(filter, padding="circular")``, computed in
    the pixel domain (circular padding + ``conv2d``), so it is an independent route to the Fourier one.

    Arguments:
        sigma: standard deviation of the Gaussian in pixels.
        size: odd kernel size (default the odd number ≥ 6σ + 1).
        noise_std: σ of the white noise that ``__call__`` adds (``A`` and ``A_adjoint`` add none).

    Example:
        >>> op = CircularBlur(1.0)
        >>> x = torch.zeros(1, 1, 8, 8, dtype=torch.float64); x[0, 0, 0, 0] = 1.0
        >>> round(float(op.A(x).sum()), 12), tuple(op.A_adjoint(op.A(x)).shape)
        (1.0, (1, 1, 8, 8))
    """

    def __init__(self, sigma: float = 1.0, size: int | None = None, noise_std: float = 0.0):
        if not sigma > 0:
            raise ConfigError(f"sigma must be positive; got {sigma}")
        size = int(size) if size is not None else 2 * int(np.ceil(3 * sigma)) + 1
        if size < 1 or size % 2 == 0:
            raise ConfigError(f"size must be a positive odd integer; got {size}")
        u = np.arange(size) - size // 2
        g = np.exp(-(u[:, None] ** 2 + u[None, :] ** 2) / (2 * sigma**2))
        self.filter = torch.as_tensor(g / g.sum())[None, None]  # (1, 1, size, size), sums to 1
        self.sigma, self.noise_std = float(sigma), float(noise_std)

    def _corr(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        p = k.shape[-1] // 2
        c = x.shape[1]
        xp = tF.pad(x, (p, p, p, p), mode="circular")
        return tF.conv2d(xp, k.to(x.dtype).expand(c, 1, -1, -1).contiguous(), groups=c)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        """Blur (B, C, H, W) → (B, C, H, W)."""
        return self._corr(x, self.filter.to(x.device))

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Adjoint of :meth:`A` (correlation with the flipped kernel)."""
        return self._corr(y, torch.flip(self.filter, dims=(-2, -1)).to(y.device))

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noisy measurement A x + σ e."""
        y = self.A(x)
        if self.noise_std > 0:
            y = y + self.noise_std * torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        return y
