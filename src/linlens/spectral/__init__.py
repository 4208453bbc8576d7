"""The Fourier route for shift-invariant problems (1-D signals and 2-D images, circular boundaries).

For a circular convolution A, a stationary prior and a shift-equivariant network, every reference and the
surrogate are diagonal in the Fourier basis, so the analysis costs O(n d log d) instead of O(d³). The package
re-exports the public names of its modules, one idea each:

- :mod:`linlens.spectral.surrogate`: :class:`SpectralSurrogate`, the transfer function Ĉ(k) = S_fy / S_yy and
  the coherence γ²(k) from probe pairs, with Poisson-bootstrap intervals (:func:`poisson_weights`,
  :func:`coherence_interval`);
- :mod:`linlens.spectral.wiener`: the prior's spectrum, the Wiener filter and circular filtering;
- :mod:`linlens.spectral.radial`: the rfftn layout's frequency geometry and radial profiles;
- :mod:`linlens.spectral.analysis`: :func:`spectral_analysis` (is the surrogate close to A⁻¹, to Wiener, to
  C_data?) and test errors of predictors.

Example:
    >>> import numpy as np
    >>> from linlens.spectral import SpectralSurrogate
    >>> Y = np.random.default_rng(0).standard_normal((50, 16))
    >>> bool(np.allclose(SpectralSurrogate(n_boot=0).fit(Y, 3 * Y).transfer_, 3.0))
    True
"""

from linlens.spectral.analysis import SpectralAnalysis, errors_from_squares, prediction_errors, spectral_analysis
from linlens.spectral.radial import frequency_radii, full_plane, radial_average, self_conjugate
from linlens.spectral.surrogate import (
    RadialProfile,
    SpectralSurrogate,
    SpectralSurrogateResult,
    coherence_interval,
    poisson_weights,
)
from linlens.spectral.wiener import apply_filter, prior_spectrum, wiener_filter

__all__ = [
    "SpectralSurrogate",
    "SpectralSurrogateResult",
    "RadialProfile",
    "SpectralAnalysis",
    "spectral_analysis",
    "wiener_filter",
    "prior_spectrum",
    "radial_average",
    "coherence_interval",
    "self_conjugate",
    "prediction_errors",
    "apply_filter",
    "errors_from_squares",
    "poisson_weights",
    "frequency_radii",
    "full_plane",
]
