"""Tests of linlens.report.fibers_figures: the drawn figures say what the results say.

The basis flow diagram of a hand-built network whose barcode is known in closed form (diag(1, 0) then the identity:
bars [0,0], [0,2], [1,2]) is read back from its artists: one node per prebasis vector per layer, one edge per step
of a bar, thick edges exactly on the full bar; the Hasse diagram has one node per stratum at the height of its
dimension, one segment per covering relation, and labels that stay inside the axes.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from linlens.fibers.bases import prebasis  # noqa: E402
from linlens.fibers.network import LinearNetwork  # noqa: E402
from linlens.fibers.order import stratum_order  # noqa: E402
from linlens.report.fibers_figures import plot_basis_flow, plot_hasse  # noqa: E402


def _nodes(ax) -> np.ndarray:
    return np.concatenate([c.get_offsets() for c in ax.collections])


@pytest.mark.parametrize("max_nodes", [400, 1])
def test_basis_flow_draws_the_closed_form_barcode(max_nodes):
    """W₁ = diag(1, 0), W₂ = I: e₁ survives both layers (full bar [0,2]), e₂ dies at W₁ ([0,0]) and layer 1's e₂ is
    born there ([1,2]). Nodes: 2 per layer (6; collapsed: one per bar type per layer it spans, also 6 here);
    edges: 2 for [0,2] + 1 for [1,2] = 3, the thick one(s) those of the full bar; legend: the three bars ×1."""
    pb = prebasis(LinearNetwork([np.diag([1.0, 0.0]), np.eye(2)]))
    assert dict(pb.stratum.barcode) == {(0, 0): 1, (0, 2): 1, (1, 2): 1}  # the closed form the figure must show
    fig = plot_basis_flow(pb, max_nodes=max_nodes)
    ax = fig.axes[0]
    xy = _nodes(ax)
    assert sorted(np.bincount(xy[:, 0].astype(int)).tolist()) == [2, 2, 2]  # two nodes in each of layers 0, 1, 2
    segs = [(tuple(line.get_xdata()), line.get_linewidth()) for line in ax.lines]
    assert sorted(s for s, _ in segs) == [(0, 1), (1, 2), (1, 2)]
    assert sorted(s for s, w in segs if w > 2) == [(0, 1), (1, 2)]  # the full bar, thick, across both steps
    labels = sorted(t.get_text() for t in ax.get_legend().get_texts())
    assert labels == ["[0,0]×1", "[0,2]×1", "[1,2]×1"]
    assert ("×1" in "".join(t.get_text() for t in ax.texts)) == (max_nodes == 1)  # counts only when collapsed
    plt.close(fig)


def test_hasse_nodes_sit_at_their_dimension_with_one_segment_per_cover():
    order = stratum_order((3, 2, 3), 1)
    fig = plot_hasse(order)
    ax = fig.axes[0]
    xy = _nodes(ax)
    assert len(xy) == order.number_of_nodes() and len(ax.lines) == order.number_of_edges()
    dims = sorted(order.nodes[v]["dim"] for v in order)
    assert sorted(xy[:, 1].tolist()) == dims
    assert sorted(t.get_text() for t in ax.texts) == sorted(order.nodes[v]["label"] for v in order)
    plt.close(fig)


@pytest.mark.parametrize("widths,rank", [((2, 2, 2), 0), ((3, 2, 3), 1)])
def test_hasse_labels_are_not_clipped(widths, rank):
    from linlens.fibers.order import stratum_order
    from linlens.report.fibers_figures import plot_hasse

    fig = plot_hasse(stratum_order(widths, rank))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    box = ax.get_window_extent(renderer)
    texts = [t for t in ax.texts if t.get_text()]
    assert texts
    for t in texts:  # every barcode label lies inside the axes (not cut by its edge, not over the title)
        e = t.get_window_extent(renderer)
        assert box.x0 <= e.x0 and e.x1 <= box.x1 and box.y0 <= e.y0 and e.y1 <= box.y1, t.get_text()
    plt.close(fig)
