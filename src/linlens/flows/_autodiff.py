"""Jacobian rows of a batched encoder from one forward graph (private; reused by training and components).

Each sample's z depends only on its own x (no batch-coupled layers such as train-mode BatchNorm), so the
Jacobian row i of every sample is ∂(Σ_b z_b,i)/∂x: d reverse passes give the whole (B, d, d) batch and the
same forward pass also gives the NLL. Hutchinson probes use one vector-Jacobian product each.

Why not ``linlens.jacobian.jacobians`` (vmap of jacrev): for square flows with small d this route needs d
reverse passes of the whole batch and reuses the NLL's forward graph. Measured on 500 points, d = 3 (one
shared core, float64): invertible MLP 1 ms here against 12.7 s through vmap (slogdet per vmapped sample),
zuko spline flows 0.11 s against 0.37 s. The two routes agree to 1e-14 (tested in tests/test_flows.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__: list[str] = []


def jacobian_from_graph(z: Tensor, x: Tensor, create_graph: bool = False) -> Tensor:
    """(B, d_out, d_in) Jacobian of z w.r.t. x (x must require grad and z be computed from it)."""
    rows = []
    for i in range(z.shape[1]):
        (g,) = torch.autograd.grad(z[:, i].sum(), x, retain_graph=True, create_graph=create_graph)
        rows.append(g)
    return torch.stack(rows, dim=1)


def frobenius_sq_from_graph(
    z: Tensor, x: Tensor, method: str = "exact", n_probes: int = 1, generator: torch.Generator | None = None,
    create_graph: bool = True,
) -> Tensor:
    """‖J‖_F² per sample (B,): exact (d reverse passes) or Hutchinson E_v‖Jᵀv‖² with Rademacher v.

    Rademacher probes (E[vvᵀ] = I) make ‖Jᵀv‖² unbiased for tr(JJᵀ) = ‖J‖_F², with the smallest variance among
    i.i.d. probe distributions; vector-Jacobian products reuse the forward graph of the NLL.
    """
    if method == "exact":
        return jacobian_from_graph(z, x, create_graph=create_graph).pow(2).sum(dim=(1, 2))
    total = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    for _ in range(n_probes):
        v = torch.randint(0, 2, z.shape, generator=generator).to(device=z.device, dtype=z.dtype) * 2 - 1
        (g,) = torch.autograd.grad((z * v).sum(), x, retain_graph=True, create_graph=create_graph)
        total = total + g.pow(2).sum(-1)
    return total / n_probes
