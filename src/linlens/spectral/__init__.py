"""The Fourier route (being split into one module per idea: see the next commit)."""

from linlens.spectral.surrogate import *  # noqa: F403
from linlens.spectral.surrogate import __all__  # noqa: F401
