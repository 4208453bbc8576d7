"""The package version: one place, read by ``pyproject.toml`` (dynamic version), ``linlens.__version__`` and
``linlens --version``."""

__all__ = ["__version__"]

__version__ = "0.1.0"
