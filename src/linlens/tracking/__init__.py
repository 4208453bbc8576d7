"""Watch the linear picture form during training: surrogates, filter factors, Jacobians and strata per step.

:class:`Tracker` (``tracker.update(model, step)`` in a plain torch loop), :class:`~linlens.tracking.lightning.
TrackerCallback` (when ``lightning`` is installed) and ``linlens track`` over saved state dicts compute the same
numbers (:mod:`linlens.tracking.tracker`); :mod:`linlens.tracking.saxe` holds the closed-form learning curves of
deep linear networks the worked example compares with.
"""

from linlens.tracking.checkpoints import checkpoint_step, ordered_checkpoints, track_checkpoints
from linlens.tracking.saxe import decoupled_init, saxe_mode_strength
from linlens.tracking.tracker import (
    SpectralBias,
    Tracker,
    TrackingResult,
    TrackPoint,
    TrackSetup,
    deep_linear_weights,
    half_rise_steps,
    spectral_bias,
)

__all__ = ["Tracker", "TrackPoint", "TrackSetup", "TrackingResult", "deep_linear_weights", "half_rise_steps",
           "SpectralBias", "spectral_bias",
           "checkpoint_step", "ordered_checkpoints", "track_checkpoints", "saxe_mode_strength", "decoupled_init"]
