"""Fibers of linear networks: rank lists, barcodes, strata and their order, bases, moves.

Modules import one way: ``barcode`` (rank lists, barcodes, strata) → ``order`` (closure order, combinatorial
barcode moves) → ``network`` (weights, numerical rank lists) → ``bases`` (prebases, tangent and normal
spaces) → ``moves`` (weight-space moves). Their figures are in :mod:`linlens.report.fibers_figures`.

References:
    | The Geometry of the Set of Equivalent Linear Neural Networks (Bhattacharya & Shewchuk, 2024)
    | https://arxiv.org/abs/2404.14855
"""

from linlens.fibers.barcode import (
    Stratum,
    barcode_from_ranks,
    count_strata,
    format_barcode,
    ranks_from_barcode,
    strata,
)
from linlens.fibers.bases import (
    Prebasis,
    normal_basis,
    orthogonal_complement,
    prebasis,
    subspace_A,
    subspace_B,
    tangent_basis,
    tangent_normal,
)
from linlens.fibers.moves import (
    apply_barcode_move,
    end_move,
    gl_move,
    is_valid_rank_one,
    rank_one_move,
)
from linlens.fibers.network import LinearNetwork, RankEntry, RankList
from linlens.fibers.order import BarcodeMove, barcode_moves, stratum_order

__all__ = [
    "LinearNetwork",
    "RankEntry",
    "RankList",
    "Stratum",
    "strata",
    "count_strata",
    "stratum_order",
    "barcode_from_ranks",
    "ranks_from_barcode",
    "format_barcode",
    "Prebasis",
    "prebasis",
    "subspace_A",
    "subspace_B",
    "tangent_basis",
    "normal_basis",
    "tangent_normal",
    "orthogonal_complement",
    "BarcodeMove",
    "barcode_moves",
    "gl_move",
    "end_move",
    "rank_one_move",
    "is_valid_rank_one",
    "apply_barcode_move",
]
