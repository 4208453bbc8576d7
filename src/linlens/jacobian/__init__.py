"""Jacobians of trained networks: dense, streamed over a data set, matrix-free, and their local reading.

One idea per module, all public names re-exported here (``from linlens.jacobian import jacobians`` works as
before the package was split):

- :mod:`linlens.jacobian.dense`: ``jacobians`` (n_samples, d_out, d_in) within a memory budget and
  ``jacobian_frobenius_sq`` (exact or Hutchinson, differentiable);
- :mod:`linlens.jacobian.memory`: the memory model that sizes chunks (``estimate_chunk_size``);
- :mod:`linlens.jacobian.field`: ``JacobianField`` (streamed statistics) and ``LocalVsGlobal``;
- :mod:`linlens.jacobian.matrix_free`: ``jacobian_svd``, top-k singular pairs of J(y) without forming J;
- :mod:`linlens.jacobian.local`: ``effective_dimension``, ``euler_test``, ``adaptive_filters``.

``f`` may be a module or callable working on batches (n, d_in) → (n, d_out), or a function of one sample
(d_in,) → (d_out,) (dense and field); the matrix-free and local functions take batches of any shape
(n_inputs, *in_shape) → (n_inputs, *out_shape).

Example:
    >>> import torch
    >>> A = torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
    >>> J = jacobians(lambda x: x @ A.T, torch.randn(5, 3))
    >>> J.shape, bool(torch.allclose(J[0], A))
    (torch.Size([5, 2, 3]), True)
"""

from linlens.jacobian.dense import jacobian_frobenius_sq, jacobians
from linlens.jacobian.field import JacobianField, LocalVsGlobal
from linlens.jacobian.local import AdaptiveFilters, EulerTest, adaptive_filters, effective_dimension, euler_test
from linlens.jacobian.matrix_free import JacobianSVD, jacobian_svd
from linlens.jacobian.memory import DEFAULT_WORK_MEMORY, FIXED_OVERHEAD, estimate_chunk_size

__all__ = [
    "jacobians",
    "jacobian_frobenius_sq",
    "estimate_chunk_size",
    "DEFAULT_WORK_MEMORY",
    "FIXED_OVERHEAD",
    "JacobianField",
    "LocalVsGlobal",
    "jacobian_svd",
    "JacobianSVD",
    "effective_dimension",
    "euler_test",
    "EulerTest",
    "adaptive_filters",
    "AdaptiveFilters",
]
