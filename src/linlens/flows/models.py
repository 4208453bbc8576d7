"""Flow encoders x → (z, log|det ∂z/∂x|): a linear flow, an invertible MLP, zuko flows behind one interface.

Every encoder in linlens is a torch callable mapping a batch ``x`` of shape ``(n_samples, d)`` to
``(z, logabsdet)`` with ``z`` of shape ``(n_samples, d)`` and ``logabsdet`` of shape ``(n_samples,)``:
the *encoder* (inverse-flow, data → latent) direction, as zuko's ``NormalizingFlow.transform`` and the
authors' code use it. The base density is a standard normal N(0, I).

References:
    | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
    | https://arxiv.org/abs/1907.06496

Example:
    >>> import torch
    >>> enc = InvertibleMLP(3, n_layers=2, seed=0).double()
    >>> z, ladj = enc(torch.randn(5, 3, dtype=torch.float64))
    >>> z.shape, ladj.shape
    (torch.Size([5, 3]), torch.Size([5]))
"""

from __future__ import annotations

import math
from typing import Any

import torch
import zuko
from torch import Tensor, nn

from linlens.errors import ConfigError, ModelError, ShapeError

__all__ = [
    "LinearFlow",
    "InvertibleMLP",
    "ZukoEncoder",
    "TransformEncoder",
    "as_encoder",
    "encode",
    "coupling_flow",
    "spline_flow",
    "nll",
]

_LOG2PI = math.log(2 * math.pi)


def _generator(seed: int | None) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(0 if seed is None else int(seed))
    return g


def _random_orthogonal(d: int, g: torch.Generator) -> Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).float()


class LinearFlow(nn.Module):
    """Linear flow z = W x + b with log|det W| (the PCA-whitening flow of the paper's linear theory).

    References:
        | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
        | https://arxiv.org/abs/1907.06496

    Arguments:
        features: the dimension d.
        init_scale: W starts as ``init_scale`` times a random well-conditioned matrix (not the identity, so
            that tests see the rotation ambiguity); None starts at the identity.
        seed: seed of the initial W.

    Example:
        >>> import torch
        >>> f = LinearFlow(2, seed=0).double()
        >>> z, ladj = f(torch.zeros(1, 2, dtype=torch.float64))
        >>> bool(torch.allclose(ladj, torch.linalg.slogdet(f.weight)[1]))
        True
    """

    def __init__(self, features: int, init_scale: float | None = 1.0, seed: int | None = 0):
        super().__init__()
        if features < 1:
            raise ConfigError(f"features must be >= 1; got {features}")
        self.features = features
        g = _generator(seed)
        if init_scale is None:
            w = torch.eye(features)
        else:
            w = init_scale * (_random_orthogonal(features, g) @ torch.diag(torch.rand(features, generator=g) + 0.5))
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = x @ self.weight.T + self.bias
        ladj = torch.linalg.slogdet(self.weight)[1]
        return z, ladj.expand(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        """Generator x = W⁻¹ (z − b); ``z`` has shape ``(n_samples, d)``."""
        return torch.linalg.solve(self.weight, (z - self.bias).T).T


class _Affine(nn.Module):
    """Full (``"full"``) or lower-triangular with positive diagonal (``"tril"``) affine layer."""

    def __init__(self, d: int, mode: str, g: torch.Generator):
        super().__init__()
        self.mode = mode
        if mode == "full":
            self.weight = nn.Parameter(_random_orthogonal(d, g))
        else:
            self.lower = nn.Parameter(0.1 * torch.randn(d, d, generator=g) / math.sqrt(d))
            self.log_diag = nn.Parameter(torch.zeros(d))
        self.bias = nn.Parameter(torch.zeros(d))

    def matrix(self) -> Tensor:
        if self.mode == "full":
            return self.weight
        return torch.tril(self.lower, -1) + torch.diag(torch.exp(self.log_diag))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        w = self.matrix()
        ladj = torch.linalg.slogdet(w)[1] if self.mode == "full" else self.log_diag.sum()
        return x @ w.T + self.bias, ladj.expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        w = self.matrix()
        if self.mode == "tril":
            return torch.linalg.solve_triangular(w, (y - self.bias).T, upper=False).T
        return torch.linalg.solve(w, (y - self.bias).T).T


class _PReLU(nn.Module):
    """Elementwise PReLU with a positive learnable slope softplus(a) per feature (bijective)."""

    def __init__(self, d: int):
        super().__init__()
        self.a = nn.Parameter(torch.full((d,), math.log(math.e**0.5 - 1)))  # slope 0.5

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        slope = nn.functional.softplus(self.a)
        neg = x < 0
        y = torch.where(neg, slope * x, x)
        ladj = (neg * torch.log(slope)).sum(-1)
        return y, ladj

    def inverse(self, y: Tensor) -> Tensor:
        slope = nn.functional.softplus(self.a)
        return torch.where(y < 0, y / slope, y)


class _Asinh(nn.Module):
    """Elementwise asinh, d/dx = (1 + x²)^(-1/2); inverse sinh."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return torch.asinh(x), (-0.5 * torch.log1p(x * x)).sum(-1)

    def inverse(self, y: Tensor) -> Tensor:
        return torch.sinh(y)


class InvertibleMLP(nn.Module):
    """Invertible MLP encoder: ``n_layers`` × [affine → bijective activation] → affine (the authors' ``Flow``).

    References:
        | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
        | https://arxiv.org/abs/1907.06496

    Arguments:
        features: the dimension d (every layer is d × d, as invertibility requires).
        n_layers: number of affine + activation blocks before the output affine layer.
        activation: ``"prelu"`` (positive learnable slope) or ``"asinh"``.
        affine: ``"full"`` (d × d matrices, log|det| by ``slogdet``) or ``"tril"`` (lower triangular with a
            positive diagonal, log|det| in O(d)).
        seed: seed of the initial weights (random orthogonal, so the initial flow is well conditioned).

    Example:
        >>> import torch
        >>> enc = InvertibleMLP(2, n_layers=1, activation="asinh", seed=0).double()
        >>> x = torch.randn(4, 2, dtype=torch.float64)
        >>> bool(torch.allclose(enc.inverse(enc(x)[0]), x))
        True
    """

    def __init__(
        self, features: int, n_layers: int = 2, activation: str = "prelu", affine: str = "full", seed: int | None = 0
    ):
        super().__init__()
        if activation not in ("prelu", "asinh"):
            raise ConfigError(f"activation must be 'prelu' or 'asinh'; got {activation!r}")
        if affine not in ("full", "tril"):
            raise ConfigError(f"affine must be 'full' or 'tril'; got {affine!r}")
        if features < 1 or n_layers < 0:
            raise ConfigError(f"features must be >= 1 and n_layers >= 0; got {features}, {n_layers}")
        self.features, self.n_layers, self.activation, self.affine = features, n_layers, activation, affine
        g = _generator(seed)
        layers: list[nn.Module] = []
        for _ in range(n_layers):
            layers.append(_Affine(features, affine, g))
            layers.append(_PReLU(features) if activation == "prelu" else _Asinh())
        layers.append(_Affine(features, affine, g))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        ladj = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for layer in self.layers:
            x, l_k = layer(x)
            ladj = ladj + l_k
        return x, ladj

    def inverse(self, z: Tensor) -> Tensor:
        """Generator x = g⁻¹(z); ``z`` has shape ``(n_samples, d)``."""
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z


class ZukoEncoder(nn.Module):
    """Wraps a zuko flow (``zuko.flows.Flow`` / ``LazyDistribution`` or a ``NormalizingFlow``) as an encoder.

    The encoder is the flow's ``transform`` (x → z) with ``call_and_ladj``; the base must be a standard normal
    for :func:`nll` to be the flow's exact NLL (zuko's flows default to one).

    Arguments:
        flow: an unconditional zuko flow.

    Example:
        >>> import torch, zuko
        >>> enc = ZukoEncoder(zuko.flows.NSF(2, transforms=1, hidden_features=(8,)))
        >>> enc(torch.randn(3, 2))[0].shape
        torch.Size([3, 2])
    """

    def __init__(self, flow: Any):
        super().__init__()
        self.flow = flow

    def _transform(self) -> Any:
        dist = self.flow() if isinstance(self.flow, nn.Module) else self.flow
        return dist.transform

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._transform().call_and_ladj(x)

    def inverse(self, z: Tensor) -> Tensor:
        """Generator x = g⁻¹(z) through zuko's inverse transform."""
        return self._transform().inv(z)


class TransformEncoder(nn.Module):
    """Wraps a transform x → z that has ``call_and_ladj`` (a zuko ``Transform``) as an encoder.

    Arguments:
        transform: the transform; its ``inv`` (when present) is the generator.

    Example:
        >>> import torch, zuko
        >>> enc = TransformEncoder(zuko.transforms.MonotonicAffineTransform(torch.tensor(1.0), torch.tensor(0.5)))
        >>> enc(torch.zeros(2, 3))[1].shape
        torch.Size([2])
    """

    def __init__(self, transform: Any):
        super().__init__()
        self.transform = transform

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z, ladj = self.transform.call_and_ladj(x)
        if ladj.shape == x.shape:  # elementwise transforms give per-coordinate log-derivatives
            ladj = ladj.sum(-1)
        return z, ladj

    def inverse(self, z: Tensor) -> Tensor:
        """Generator x = g⁻¹(z) through the transform's ``inv``."""
        return self.transform.inv(z)


def as_encoder(obj: Any) -> Any:
    """Return ``obj`` as a linlens encoder (callable x → (z, logabsdet)); zuko flows are wrapped.

    Arguments:
        obj: a linlens flow (:class:`LinearFlow`, :class:`InvertibleMLP`, :class:`ZukoEncoder`), a zuko
            ``Flow``/``LazyDistribution`` or ``NormalizingFlow``, a transform with ``call_and_ladj`` (zuko's or
            torch.distributions-like), or any callable returning ``(z, logabsdet)`` (e.g. a TorchScript encoder).

    Returns:
        The encoder.

    Example:
        >>> as_encoder(LinearFlow(2)).features
        2
    """
    if isinstance(obj, (LinearFlow, InvertibleMLP, ZukoEncoder)):
        return obj
    if isinstance(obj, (zuko.lazy.LazyDistribution, zuko.distributions.NormalizingFlow)):
        return ZukoEncoder(obj)
    if isinstance(obj, zuko.transforms.Transform) or (
        not isinstance(obj, nn.Module) and callable(getattr(obj, "call_and_ladj", None))
    ):
        return TransformEncoder(obj)
    if not callable(obj):
        raise ModelError(f"encoder must be a callable x -> (z, logabsdet); got {type(obj).__name__}")
    return obj


def encode(encoder: Any, x: Tensor) -> tuple[Tensor, Tensor]:
    """Call ``encoder`` on ``x`` and check that it behaves like an invertible flow encoder.

    Example:
        >>> import torch
        >>> z, ladj = encode(LinearFlow(2, init_scale=None), torch.ones(3, 2))
        >>> z.shape, ladj.tolist()
        (torch.Size([3, 2]), [0.0, 0.0, 0.0])
        >>> try:
        ...     encode(torch.nn.Linear(2, 2), torch.ones(3, 2))
        ... except ModelError as e:
        ...     print(str(e)[:48])
        encoder must return a tuple (z, logabsdet) of te
    """
    try:
        out = encoder(x)
    except Exception as exc:  # noqa: BLE001 - report any model failure as a ModelError
        text = str(exc).strip()
        first = text.splitlines()[0][:200] if text else ""  # TorchScript errors span many lines
        raise ModelError(
            f"encoder raised {type(exc).__name__} on inputs of shape {tuple(x.shape)}: {first}"
        ) from exc
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, Tensor) for t in out)):
        found = type(out).__name__
        if isinstance(out, (tuple, list)):
            found += f" of {len(out)}"
        raise ModelError(
            f"encoder must return a tuple (z, logabsdet) of tensors, the latent and the log-determinant of its "
            f"Jacobian; got {found} (a network that returns no log-determinant is not a flow encoder)"
        )
    out = tuple(out)
    z, ladj = out
    if z.shape != x.shape:
        raise ShapeError(
            f"encoder must map (n_samples, d) to (n_samples, d) to be invertible; inputs {tuple(x.shape)} "
            f"gave z of shape {tuple(z.shape)}"
        )
    if ladj.shape != (x.shape[0],):
        raise ShapeError(f"encoder logabsdet must have shape ({x.shape[0]},); got {tuple(ladj.shape)}")
    return z, ladj


def nll(encoder: Any, x: Tensor) -> Tensor:
    """Exact negative log-likelihood per sample under a standard-normal base: ½‖z‖² + ½ d log 2π − log|det J|.

    Arguments:
        encoder: a flow encoder.
        x: inputs ``(n_samples, d)``.

    Returns:
        NLL per sample ``(n_samples,)``.

    Example:
        >>> import torch
        >>> f = LinearFlow(1, init_scale=None).double()
        >>> float(nll(f, torch.zeros(1, 1, dtype=torch.float64))[0].detach()) == 0.5 * math.log(2 * math.pi)
        True
    """
    z, ladj = encode(as_encoder(encoder), x)
    return 0.5 * (z * z).sum(-1) + 0.5 * z.shape[-1] * _LOG2PI - ladj


def coupling_flow(features: int, transforms: int = 4, hidden_features: tuple[int, ...] = (64, 64),
                  bins: int = 8) -> ZukoEncoder:
    """A coupling flow from zuko: rational-quadratic spline couplings (NSF with ``passes=2``), as an encoder.

    References:
        | Neural Spline Flows (Durkan et al., 2019)
        | https://arxiv.org/abs/1906.04032

    Arguments:
        features: the dimension d.
        transforms: number of coupling transforms.
        hidden_features: hidden widths of each coupling network.
        bins: spline bins.

    Returns:
        A :class:`ZukoEncoder`.

    Example:
        >>> coupling_flow(3, transforms=2, hidden_features=(8,)).flow.transform.transforms.__len__()
        2
    """
    return ZukoEncoder(zuko.flows.NSF(features, transforms=transforms, hidden_features=hidden_features,
                                      bins=bins, passes=2))


def spline_flow(features: int, transforms: int = 3, hidden_features: tuple[int, ...] = (64, 64),
                bins: int = 8) -> ZukoEncoder:
    """zuko's autoregressive neural spline flow (NSF) as an encoder (one pass x → z, inverse in d passes).

    References:
        | Neural Spline Flows (Durkan et al., 2019)
        | https://arxiv.org/abs/1906.04032

    Arguments:
        features: the dimension d.
        transforms: number of autoregressive transforms.
        hidden_features: hidden widths of each MADE network.
        bins: spline bins.

    Returns:
        A :class:`ZukoEncoder`.

    Example:
        >>> spline_flow(2, transforms=1, hidden_features=(8,))(__import__("torch").zeros(1, 2))[1].shape
        torch.Size([1])
    """
    return ZukoEncoder(zuko.flows.NSF(features, transforms=transforms, hidden_features=hidden_features, bins=bins))
