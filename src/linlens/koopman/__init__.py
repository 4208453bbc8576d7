"""Koopman layer linearization: scale a layer, record trajectories, fit Hankel DMD, run the hybrid, compare.

References:
    N. Aswani, S. Jabari, M. Shafique, "Representing Neural Network Layers as Linear Operations via Koopman
    Operator Theory", arXiv:2409.01308.
"""

from linlens.koopman.dmd import HankelDMD, delay_embed, optimal_hard_threshold_rank, randomized_svd
from linlens.koopman.hybrid import (
    KoopmanHybrid,
    LeastSquaresReplacement,
    fit_hybrid,
    fit_least_squares,
    linearize_layer,
)
from linlens.koopman.scaling import ScaledModel, near_identity_layers, scale_layer, split_layers
from linlens.koopman.study import (
    ALPHA,
    FAMILIES,
    Task,
    compare_layer,
    layer_name,
    run_study,
    study_layer,
    verdict,
)
from linlens.koopman.trajectories import pad_state, record_trajectories

__all__ = [
    "HankelDMD",
    "delay_embed",
    "optimal_hard_threshold_rank",
    "randomized_svd",
    "KoopmanHybrid",
    "LeastSquaresReplacement",
    "fit_hybrid",
    "fit_least_squares",
    "linearize_layer",
    "ScaledModel",
    "near_identity_layers",
    "scale_layer",
    "split_layers",
    "pad_state",
    "record_trajectories",
    "Task",
    "FAMILIES",
    "ALPHA",
    "layer_name",
    "study_layer",
    "verdict",
    "compare_layer",
    "run_study",
]
