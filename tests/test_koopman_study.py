"""linlens.koopman.study on models built with plain torch.

Independent routes: a replaced layer that is linear must be reproduced EXACTLY by a hybrid (closed form:
the layer is affine in the window, so DMD with the exact readout and a constant observable is exact);
the trained-scaled-layers + least-squares baseline agrees with numpy's lstsq on the same features; rivals are
chosen on validation, not on test; McNemar p-values in the comparisons match scipy's binomial test.
"""

import numpy as np
import pytest
import torch
from _cases import koopman_mlp as _net
from _cases import koopman_split as _split
from scipy import stats as sps
from torch import nn

from linlens.koopman import fit_least_squares, scale_layer
from linlens.koopman.study import Task, compare_layer, study_layer


def test_linear_replaced_layer_is_reproduced_exactly():
    """Layer 1 is Linear(6, 4) + Identity: x_{N+1} = W x_N + b is affine in the window, so the exact-readout
    hybrid with a constant observable reproduces the network to round-off (scaled layers = identity)."""
    net = _net()
    data = {"train": _split(net, 400, 0), "val": _split(net, 200, 1), "test": _split(net, 300, 2)}
    grid = {"n_scaled": [2], "noise": [0.0], "delays": lambda N: [N], "ranks": [None], "readouts": ["exact"],
            "constant": [True]}
    res = study_layer(net, 1, data, grid, {"epochs": 0, "batch_size": 100, "lr": 1e-3}, task=Task("regression"))
    best = res["selected"]["best"]
    # targets ARE the network's outputs: the per-point squared error is the squared distance to the original
    assert np.sqrt(res["points"][best["id"]].max()) < 1e-8
    hyb = res["hybrids"]["best"]
    x = torch.as_tensor(np.random.default_rng(5).random((50, 2)))
    with torch.no_grad():
        assert torch.allclose(hyb(x), net(x), rtol=0, atol=1e-8)
    # the hybrid holds no Linear(6, 4): the replaced layer is never run
    assert not any(isinstance(m, nn.Linear) and (m.in_features, m.out_features) == (6, 4) for m in hyb.modules())


def test_trained_scaled_ls_baseline_matches_numpy_lstsq():
    net = _net(torch.float64, nn.ReLU)
    X = np.random.default_rng(0).random((300, 2))
    sm = scale_layer(net, 1, 3, X, epochs=5, noise=0.2, seed=0, progress=False)
    ls = fit_least_squares(net, 1, X, layers=list(sm.scaled)[:2])
    with torch.no_grad():
        x0 = net[:2](torch.as_tensor(X))
        x1 = sm.scaled[0](x0)
        x2 = sm.scaled[1](x1)
        F = torch.cat([x2, x1, x0, torch.ones(300, 1, dtype=x0.dtype)], 1).numpy()
        target = net[2:4](x0).numpy()
        ours = ls.readout(ls.features(torch.as_tensor(X))).numpy()
    coef = np.linalg.lstsq(F, target, rcond=None)[0]
    np.testing.assert_allclose(ours, F @ coef, atol=1e-8)
    assert ls.replacement_params() == 2 * (6 * 6 + 6) + (18 * 4 + 4)


def test_rivals_chosen_on_validation_and_mcnemar_p_matches_scipy():
    rng = np.random.default_rng(0)
    n = 200

    def pts(acc):
        return np.where(rng.random(n) < acc, True, False)

    res = {"original_layer_params": 10, "points": {}, "selected": {}, "rows": [], "baseline_rows": []}
    hyb = {"id": "h", "kind": "koopman hybrid", "accuracy": 0.9, "val_accuracy": 0.95, "n_scaled": 4,
           "init_noise": 0.1, "delays": 4, "nonlinear_layers_at_inference": 4, "params": 99, "dmd_steps": 1}
    res["rows"].append(hyb)
    res["selected"] = {"best": hyb, "best_one_step": hyb}
    res["points"]["h"] = pts(0.9)
    # two controls with 4 nonlinear layers: the better on TEST has the worse VALIDATION accuracy
    for rid, val, test_acc in (("c_val", 0.94, 0.80), ("c_test", 0.90, 0.99)):
        res["baseline_rows"].append({"id": rid, "family": "control", "kind": rid, "accuracy": test_acc,
                                     "val_accuracy": val, "nonlinear_layers_at_inference": 4, "params": 1})
        res["points"][rid] = pts(test_acc)
    cmp = compare_layer(res, Task("classification"), pts(0.95))
    ctrl = [c for c in cmp if c["baseline"] == "control"]
    assert {c["rival_id"] for c in ctrl} == {"c_val"}
    c = ctrl[0]
    a, b = res["points"]["h"], res["points"]["c_val"]
    nb, nc = int((a & ~b).sum()), int((~a & b).sum())
    assert c["test"]["p_value"] == pytest.approx(sps.binomtest(nb, nb + nc, 0.5).pvalue)
    # Holm over the layer's distinct (hybrid, rival) pairs: best and best_one_step are the same hybrid here
    pairs = {(x["hybrid_id"], x["rival_id"]): x["test"]["p_value"] for x in cmp}
    m = len(pairs)
    assert all(x["test"]["family_size"] == m for x in cmp)
    raw = sorted(pairs.values())
    p = c["test"]["p_value"]
    holm = min(1.0, max(min(1.0, (m - j) * raw[j]) for j in range(m) if raw[j] <= p))
    assert c["test"]["p_adjusted"] == pytest.approx(holm)
    word = "beats" if c["test"]["p_adjusted"] < 0.05 and nb > nc else None
    assert (word is not None) == c["verdict"].startswith("beats")
