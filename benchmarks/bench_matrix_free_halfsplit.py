"""Independent check of the matrix-free route's bias estimates on the 64×64 blur example (docs/images.md): half-
sample fits (the 32 row groups split in two at random) give E‖K₁ − K₂‖²_S = 4 × the full-sample estimation bias
(variance ∝ 1/n), without the cluster-robust sandwich (B̂) or the bootstrap (Ŵ, Ĉ_data).

Run in the example's work folder (``docs/figures/make_images_matrix_free.py --case blur64``):
``PYTHONPATH=src python benchmarks/bench_matrix_free_halfsplit.py`` from there, with src on the path.
"""

import sys
import time

import numpy as np

sys.path.insert(0, ".")  # the work folder's ops.py
from linlens.loaders import load_model  # noqa: E402
from linlens.probing import FlatModel, probe_all  # noqa: E402
from linlens.stats import noise_std_estimate  # noqa: E402
from linlens.surrogate.grouped import GroupedFit  # noqa: E402
from linlens.surrogate.matrix_free import LowRankDiagCovariance, MatrixFreeWiener, WienerRefits  # noqa: E402
from linlens.surrogate.subspace import SubspaceSurrogate  # noqa: E402
from linlens.workflows.analyze_common import holdout_mask  # noqa: E402
from linlens.workflows.analyze_matrix_free import _held_moments, _quad, _score_cov  # noqa: E402
from linlens.workflows.inverse import load_forward_operator, split_rows  # noqa: E402

c0 = time.process_time()
Y = np.load("y.npy")
X = np.load("x.npy")
n = len(Y)
Yf, Xf = Y.reshape(n, -1), X.reshape(n, -1)
train, probe = split_rows(n, 0)
probe = np.sort(probe)
held = holdout_mask(0, len(probe), 0)
fit_rows, held_rows = probe[~held], probe[held]
net = FlatModel(load_model("cnn.pt", device="cpu", trust_model=True), (1, 64, 64))
Yfit, Ffit = probe_all(net, Yf[fit_rows].astype(float), batch_size=256, device="cpu")
Yh, Fh = probe_all(net, Yf[held_rows].astype(float), batch_size=256, device="cpu")
G = 32
m = 64
sur = SubspaceSurrogate(n_components=m, seed=0).fit(Yfit, Ffit)
Vt = sur.components_
grp = GroupedFit(m, Xf.shape[1], G)
grp.update_train((Yfit - sur.mean_in_) @ Vt.T, Ffit, fit_rows % G)
B = grp.coef()
Zh = (Yh - sur.mean_in_) @ Vt.T
S = _score_cov(_held_moments(Zh, held_rows % G, G), np.ones(G))
op = load_forward_operator("ops:blur", (1, 64, 64), (1, 64, 64))
Ytr, Xtr = Yf[train].astype(float), Xf[train].astype(float)
sigma = noise_std_estimate(Ytr - op.matvec(Xtr)).value
cov0 = LowRankDiagCovariance(rank=m).fit(Xtr)
mom = cov0.group_moments(Xtr, train % G, G)
W = MatrixFreeWiener(op, mom.covariance(np.ones(G)), sigma)
ref = WienerRefits(W, mom, Vt)
KW = W.apply_centred(Vt).T
cd = SubspaceSurrogate(n_components=m, seed=1).fit(Ytr, Xtr)
cg = GroupedFit(m, Xf.shape[1], G)
cg.update_train((Ytr - cd.mean_in_) @ cd.components_.T, Xtr, train % G)
VcVt = cd.components_ @ Vt.T
KC = cg.coef() @ VcVt
rng = np.random.default_rng(1)
dB, dW, dC, bW, bC = [], [], [], [], []
for _s in range(20):
    p = rng.permutation(G)
    w1 = np.zeros(G)
    w1[p[:G // 2]] = 2.0
    w2 = 2.0 - w1
    dB.append(_quad(grp.coef(w1) - grp.coef(w2), S))
    dW.append(_quad(ref.apply(ref.covariance(w1), sigma**2).T - ref.apply(ref.covariance(w2), sigma**2).T, S))
    dC.append(_quad((cg.coef(w1) - cg.coef(w2)) @ VcVt, S))
for _ in range(100):
    u = rng.multinomial(G, np.full(G, 1 / G)).astype(float)
    full = ref.apply(ref.covariance(np.ones(G)), sigma**2).T
    bW.append(_quad(ref.apply(ref.covariance(u), sigma**2).T - full, S))
    bC.append(_quad(cg.coef(u) @ VcVt - KC, S))
denW, denC = _quad(KW, S), _quad(KC, S)
f = G / (G - 1)


def line(name, boot, halves, den):
    se = np.std(halves) / 4 / den / np.sqrt(len(halves))
    print(f"bias of {name}: {boot:.5f}; half-splits {np.mean(halves) / 4 / den:.5f} ± {se:.5f}")


print(f"plug-in vs Wiener {_quad(B - KW, S) / denW:.5f}, vs C_data {_quad(B - KC, S) / denC:.5f}")
line("B̂ (÷ den_W), sandwich", grp.estimation_bias(S, B) / denW, dB, denW)
line("Ŵ, bootstrap", f * np.mean(bW) / denW, dW, denW)
line("Ĉ_data, bootstrap", f * np.mean(bC) / denC, dC, denC)
print(f"{time.process_time() - c0:.0f} s CPU")
