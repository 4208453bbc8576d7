"""Normalizing flows through linear algebra: encoders, training with Jacobian Tikhonov, local covariance.

References:
    | A Linear Systems Theory of Normalizing Flows (Feinman & Parthasarathy, 2019)
    | https://arxiv.org/abs/1907.06496
"""

from linlens.flows.components import (
    LocalCovariance,
    UnwhitenedComponents,
    align_signs,
    encoder_jacobians,
    local_covariance,
    unwhitened_components,
)
from linlens.flows.models import (
    InvertibleMLP,
    LinearFlow,
    TransformEncoder,
    ZukoEncoder,
    as_encoder,
    coupling_flow,
    encode,
    nll,
    spline_flow,
)
from linlens.flows.train import FlowHistory, flow_loss, train_flow

__all__ = [
    "LinearFlow",
    "InvertibleMLP",
    "ZukoEncoder",
    "TransformEncoder",
    "as_encoder",
    "encode",
    "nll",
    "coupling_flow",
    "spline_flow",
    "FlowHistory",
    "flow_loss",
    "train_flow",
    "encoder_jacobians",
    "LocalCovariance",
    "local_covariance",
    "UnwhitenedComponents",
    "unwhitened_components",
    "align_signs",
]
