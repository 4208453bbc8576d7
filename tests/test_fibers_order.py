"""linlens.fibers.order and the fibers layout: closure order, strata counted without listing, imports one way."""

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linlens.fibers as F
from linlens.fibers import count_strata, strata
from linlens.fibers.order import barcode_moves, stratum_order

FIBERS = Path(F.__file__).parent
LAYERS = ["barcode", "order", "network", "bases", "moves"]


@settings(max_examples=40, deadline=None)
@given(widths=st.lists(st.integers(1, 3), min_size=2, max_size=5), data=st.data())
def test_count_equals_enumeration(widths, data):
    rank = data.draw(st.integers(0, min(widths)))
    assert count_strata(widths, rank) == len(strata(widths, rank))


@pytest.mark.parametrize(
    "widths, rank, n",
    [((1, 1, 1), 0, 3), ((1, 1, 1), 1, 1), ((2, 2, 2), 0, 6), ((2, 2, 2), 1, 3), ((3, 3), 1, 1), ((3, 3), 0, 1)],
)
def test_count_matches_the_worked_examples(widths, rank, n):
    # the note's §7 tables (d = (1,1,1), (2,2,2)); a single matrix (L = 1): one stratum
    assert count_strata(widths, rank) == n


def test_count_stops_early_on_huge_fibers():
    # 12 layers of width 12: far more than 10⁴ strata; the count must stop soon after 10⁴ and say "more"
    got = count_strata((12,) * 12, 0, stop_above=10_000)
    assert got > 10_000
    # two sizes the old command took minutes or gigabytes on: counted exactly and at once
    assert count_strata((5, 5, 5, 5, 5), 0) == len(strata((5, 5, 5, 5, 5), 0))


def test_order_covers_are_single_down_moves():
    g = stratum_order((2, 3, 2), 1)
    for lo, hi in g.edges:
        targets = {m.target for m in barcode_moves(g.nodes[hi]["stratum"], "down")}
        assert g.nodes[lo]["stratum"] in targets


def _fiber_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("linlens.fibers."):
            out.add(node.module.split(".")[2])
    return out


def test_fibers_imports_run_one_way():
    for k, name in enumerate(LAYERS):
        deps = _fiber_imports(FIBERS / f"{name}.py")
        later = deps & set(LAYERS[k:])
        assert not later, f"{name}.py imports {later}, which come after it in {LAYERS}"
    assert {p.stem for p in FIBERS.glob("*.py")} == set(LAYERS) | {"__init__"}


def test_public_api_unchanged():
    for name in ["LinearNetwork", "Stratum", "strata", "stratum_order", "barcode_moves", "BarcodeMove",
                 "apply_barcode_move", "prebasis", "tangent_normal", "gl_move"]:
        assert name in F.__all__ and hasattr(F, name)
