"""linlens: look at trained neural networks through linear algebra.

Example:
    >>> import linlens as ll
    >>> ll.__version__
    '0.1.0'
"""

from linlens import errors

__version__ = "0.1.0"

__all__ = ["errors", "__version__"]
