"""Benchmark: ``linlens analyze --reference`` at image size (64×64, d = 4096) with 10,000 probe inputs.

The case of issue 11: a user's MLP 4096 → 512 → 4096 (TorchScript file), 10,000 inputs that are blurred digits-like
images plus noise, and a dense reference R (the Tikhonov inverse of a Gaussian blur with zero boundary, which is
not circular, so the dense route runs). The whole ``analyze`` runs in-process exactly as the CLI runs it (probing,
streaming statistics, surrogate, held-out R², comparison with R, filter factors, figures, report written).

Peer, measured in the same run on the same probed outputs: scikit-learn ``LinearRegression().fit(Y, F)`` (the least
anybody would do to get a surrogate, with no comparison and no report) and one full ``numpy.linalg.svd`` of a
d × d matrix (the unit of dense work). Prints the wall time of ``analyze``, its ratio against each peer, the
time of each stage (from a cProfile of the run with ``--profile``), and whether the 5-minute target is met.

Every library is pinned to ONE thread (set before numpy/torch import; see shared/notes/performance.md): the
target is stated for 2 cores, and one thread is the reproducible lower bound of what 2 cores give here.

With ``--components m`` it runs the subspace route instead (``analyze --components m``: no d × d matrix, for
sizes such as 128×128, d = 16,384, where the dense statistics need ~50 GB), against scikit-learn's
``PCA(m, svd_solver="randomized")`` + ``LinearRegression`` on the scores + the pooled held-out R², on the same
training/held-out split, given the probed outputs in memory, as the peer; the model pass that produced them is timed
apart in the same run, and the ratio is printed against the peer alone and against the peer + that model pass
(analyze's own time includes reading the inputs and probing the model).

With ``--targets`` it runs the dense inverse-operator study instead (``analyze --targets --operator
--train-inputs --train-targets``, issue 19): the same blur A = B ⊗ B (dense, 4096 × 4096 at side 64), x smooth
random images, y = A x + 0.01 e, ``--n`` probe pairs plus ``--n`` separate training pairs, the whole study with
its intervals (multiplier bootstrap, 100 replicates, C_data and the Wiener estimator from estimated Σₓ and σ
resampled with their training rows), against a floor measured in the same run (one model pass over the probes,
one Gram matrix of the probes, one d × d SVD: CPU seconds, the study's CPU time / floor printed) and, unless
--no-peers, the same peers. Target: < 300 s on one thread. CPU time is the number to read on a shared machine;
local Jacobians (``--local-samples``, default 0 here) are timed only when asked for.

Usage: python benchmarks/bench_analyze.py [--side 64] [--n 10000] [--components M | --targets] [--profile]
[--keep DIR]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import importlib  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
import torch  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402

from linlens.workflows.analyze import run_analyze  # noqa: E402
from linlens.workflows.analyze_subspace import run_analyze_subspace  # noqa: E402

torch.set_num_threads(1)
TARGET_S = 300.0


def blur_1d(side: int, width: float) -> np.ndarray:
    """The 1-D Gaussian blur with zero boundary (rows normalized); the image blur is A = B ⊗ B (not circular)."""
    i = np.arange(side)
    B = np.exp(-0.5 * ((i[:, None] - i[None, :]) / width) ** 2)
    return B / B.sum(axis=1, keepdims=True)


REFOP = '''"""Tikhonov inverse R = V diag(s/(s² + λ)) Uᵀ of the separable blur A = B ⊗ B, matrix-free."""
import numpy as np
from scipy.sparse.linalg import LinearOperator

_z = np.load(__file__.replace(".py", ".npz"))
UB, VtB, F = _z["U"], _z["Vt"], _z["F"]
SIDE = UB.shape[0]


def _apply(M, left, right_t):
    X = np.asarray(M, dtype=np.float64).T.reshape(-1, SIDE, SIDE)
    Z = (left.T @ X @ left) * F  # coefficients in the first basis, filtered (batched BLAS products)
    return (right_t @ Z @ right_t.T).reshape(len(X), -1).T


R = LinearOperator((SIDE * SIDE, SIDE * SIDE), dtype=np.float64,
                   matvec=lambda v: _apply(v[:, None], UB, VtB.T)[:, 0],
                   rmatvec=lambda v: _apply(v[:, None], VtB.T, UB)[:, 0],
                   matmat=lambda M: _apply(M, UB, VtB.T), rmatmat=lambda M: _apply(M, VtB.T, UB))
'''


def make_case(folder: Path, side: int, n: int, seed: int = 0) -> tuple[Path, Path, str]:
    """Write the user's files: inputs.npy (n, 1, side, side) float32, model.pt (TorchScript) and the reference R
    (the Tikhonov inverse of the blur): ``reference.npy`` up to 64×64, else a matrix-free ``module:attr``
    operator (``refop_<side>.py``, a scipy LinearOperator; a 128×128 dense R would be 2 GiB)."""
    inputs, model = folder / "inputs.npy", folder / "model.pt"
    dense = side <= 64
    reference = str(folder / "reference.npy") if dense else f"refop_{side}:R"
    ref_file = folder / ("reference.npy" if dense else f"refop_{side}.py")
    if inputs.exists() and model.exists() and ref_file.exists() and np.load(inputs, mmap_mode="r").shape == (
            n, 1, side, side):  # a case kept with --keep is reused
        return inputs, model, reference
    rng = np.random.default_rng(seed)
    d = side * side
    x = gaussian_filter(rng.standard_normal((n, side, side)), sigma=(0, 2.0, 2.0), mode="constant")
    B = blur_1d(side, 1.5)
    # A x = B X Bᵀ per image, as batched BLAS products (a three-operand einsum would loop unblocked)
    y = B @ x @ B.T + 0.01 * rng.standard_normal((n, side, side))
    np.save(inputs, y.reshape(n, 1, side, side).astype(np.float32))
    UB, sB, VtB = np.linalg.svd(B)
    sA = np.outer(sB, sB)
    lam = 1e-2
    np.savez(folder / f"refop_{side}.npz", U=UB, Vt=VtB, F=sA / (sA**2 + lam))
    (folder / f"refop_{side}.py").write_text(REFOP)
    if dense:
        sys.path.insert(0, str(folder))
        np.save(folder / "reference.npy", importlib.import_module(f"refop_{side}").R.matmat(np.eye(d)))
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, 512), torch.nn.GELU(), torch.nn.Linear(512, d),
                              torch.nn.Unflatten(1, (1, side, side)))
    torch.jit.script(net.eval()).save(str(model))
    return inputs, model, reference


def make_targets_case(folder: Path, side: int, n: int, seed: int = 0) -> dict[str, Path]:
    """Files of the ``--targets`` study: probes (inputs.npy, targets.npy), separate training pairs (train_*.npy),
    the dense operator A.npy (the blur B ⊗ B with zero boundary) and the MLP of :func:`make_case` (model.pt)."""
    names = ("inputs", "targets", "train_inputs", "train_targets", "A")
    files = {k: folder / f"t_{k}.npy" for k in names} | {"model": folder / "model.pt"}
    if all(f.exists() for f in files.values()) and np.load(files["inputs"], mmap_mode="r").shape == (n, 1, side, side):
        return files
    rng = np.random.default_rng(seed + 7)
    B = blur_1d(side, 1.5)
    np.save(files["A"], np.kron(B, B))  # x.ravel() ↦ (B X Bᵀ).ravel() for row-major images
    for pre in ("", "train_"):
        x = gaussian_filter(rng.standard_normal((n, side, side)), sigma=(0, 2.0, 2.0), mode="constant")
        y = B @ x @ B.T + 0.01 * rng.standard_normal((n, side, side))
        np.save(files[pre + "inputs"], y.reshape(n, 1, side, side).astype(np.float32))
        np.save(files[pre + "targets"], x.reshape(n, 1, side, side).astype(np.float32))
    if not files["model"].exists():
        make_case(folder, side, 8, seed)  # the same MLP (its inputs file is not used here)
    return files


def _probe(inputs: Path, model: Path) -> tuple[np.ndarray, np.ndarray]:
    Y = np.load(inputs).reshape(len(np.load(inputs, mmap_mode="r")), -1).astype(np.float64)
    net = torch.jit.load(str(model))
    with torch.no_grad():
        F = np.concatenate([net(torch.from_numpy(np.load(inputs, mmap_mode="r")[i:i + 2048].copy())).reshape(
            min(2048, len(Y) - i), -1).double().numpy() for i in range(0, len(Y), 2048)])
    return Y, F


def _timed(f: Any) -> tuple[Any, float, float]:
    """(result, wall s, CPU s of this process) of f()."""
    t, c = time.perf_counter(), time.process_time()
    out = f()
    return out, time.perf_counter() - t, time.process_time() - c


def peers(inputs: Path, model: Path, reference: Path | None = None) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of: sklearn LinearRegression on the probed outputs; the floor of any surrogate with its
    spectrum = one model pass + the Gram matrix of [inputs | outputs] + one d × d SVD (of the fitted C); that SVD
    alone; C's singular values alone; and, with ``reference`` above the size rule, R's leading pairs as the report
    computes them (``svd_leading(R, 128, method="gram", n_values=129)``)."""
    from sklearn.linear_model import LinearRegression

    from linlens.linalg import DEFAULT_MAX_K, GramAccumulator, svd_leading
    from linlens.workflows.study import reference_n_values

    probed, w_pass, c_pass = _timed(lambda: _probe(inputs, model))
    Y, F = probed
    _, w_lr, c_lr = _timed(lambda: LinearRegression().fit(Y, F))
    acc, w_gram, c_gram = _timed(lambda: GramAccumulator().update(Y, F))
    d = Y.shape[1]
    C = scipy.linalg.solve(acc.S[:d, :d], acc.S[:d, d:], assume_a="pos").T  # the fitted C (this solve not timed)
    probed = acc = None  # the rows are not needed by the SVD
    _, w_svd, c_svd = _timed(lambda: np.linalg.svd(C))
    _, w_val, c_val = _timed(lambda: scipy.linalg.svd(C, compute_uv=False, lapack_driver="gesdd", check_finite=False))
    found = {"sklearn LinearRegression.fit": (w_lr, c_lr),
             "floor: one model pass + Gram + one SVD of C": (w_pass + w_gram + w_svd, c_pass + c_gram + c_svd),
             "numpy.linalg.svd (d × d)": (w_svd, c_svd),
             "singular values only (gesdd without vectors, d × d)": (w_val, c_val),
             "model pass + Gram": (w_pass + w_gram, c_pass + c_gram)}
    R = None if reference is None else np.load(reference)
    n_values = None if R is None else reference_n_values(R.shape, min(DEFAULT_MAX_K, *R.shape))
    if n_values is not None:
        _, w_lead, c_lead = _timed(lambda: svd_leading(R, min(DEFAULT_MAX_K, *R.shape), method="gram",
                                                       n_values=n_values))
        found[f"R's leading {n_values - 1} pairs + {n_values} values (svd_leading, Gram route)"] = (w_lead, c_lead)
    return found


def subspace_peer(inputs: Path, model: Path, m: int) -> dict[str, tuple[float, float]]:
    """The peer of ``analyze --components m``, on the same split as the route (the seeded hash holds out one row in
    five): scikit-learn's ``PCA(m, svd_solver="randomized")`` fitted on the training rows, ``LinearRegression`` of
    the outputs on their scores, and the pooled held-out R² (predict + r2_score) — given the probed outputs in
    memory (float64), as (wall, CPU) s; and, timed apart, the model pass that produced those outputs (analyze's
    own time includes reading the inputs and probing the model, so the comparable peer is the sum)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    from linlens.workflows.analyze_common import holdout_mask

    (Y, F), w_pass, c_pass = _timed(lambda: _probe(inputs, model))
    held = holdout_mask(0, len(Y), 0)

    def fit() -> float:
        pca = PCA(n_components=m, svd_solver="randomized", random_state=0).fit(Y[~held])
        lr = LinearRegression().fit(pca.transform(Y[~held]), F[~held])
        return r2_score(F[held], lr.predict(pca.transform(Y[held])), multioutput="variance_weighted")

    r2, w, c = _timed(fit)
    print(f"  peer's held-out R² (pooled): {r2:.6g}")
    return {"sklearn PCA(randomized) + LinearRegression + held-out R²": (w, c),
            "model pass over the inputs (what the peer was given)": (w_pass, c_pass),
            "peer + the model pass": (w + w_pass, c + c_pass)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--profile", action="store_true", help="print the 25 most expensive calls")
    ap.add_argument("--keep", type=Path, default=None, help="write the case and the report here")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--components", type=int, default=None, help="run the subspace route with this m")
    ap.add_argument("--targets", action="store_true", help="run the dense inverse study (--targets) instead")
    ap.add_argument("--max-memory", type=lambda v: int(float(v) * 2**30), default=None,
                    help="GiB the --targets study may use (default: the study's own limit, half the physical memory)")
    ap.add_argument("--local-samples", type=int, default=0,
                    help="Jacobian rows of the --targets study (default 0: the study with its intervals alone)")
    args = ap.parse_args()
    if args.targets:
        return main_targets(args)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        inputs, model, reference = make_case(folder, args.side, args.n)
        print(f"case: d = {args.side ** 2}, n = {args.n}, MLP {args.side ** 2}-512-{args.side ** 2}; written in "
              f"{time.perf_counter() - t:.1f} s; one thread per library")
        prof = cProfile.Profile(time.process_time) if args.profile else None  # CPU seconds: the machine is shared
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        load0 = os.getloadavg()
        t, c = time.perf_counter(), time.process_time()
        if prof:
            prof.enable()
        sys.path.insert(0, str(folder))  # a module:attr reference lives in the case folder
        if args.components is None:
            if not reference.endswith(".npy"):
                raise SystemExit(f"the dense route needs a d × d reference; at side {args.side} use --components")
            summary = run_analyze(str(model), inputs, Path(reference), out=folder / "report", force=True, seed=0,
                                  trust_model=True)
        else:
            summary = run_analyze_subspace(str(model), inputs, args.components, reference,
                                           out=folder / "report", force=True, seed=0, trust_model=True)
        if prof:
            prof.disable()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 2**20
        route = "--reference" if args.components is None else f"--components {args.components} --reference"
        print(f"load average (1, 5, 15 min) over analyze: {', '.join(f'{x:.1f}' for x in load0)} at the start, "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end (shared machine: CPU time is the number "
              "to compare)")
        if args.components is not None:
            print("analyze includes: reading the inputs, the principal subspace, the model pass over every row, the "
                  "surrogate, held-out R², the reference on the held-out rows, the bias-corrected error with its "
                  "row-group bootstrap (100 replicates) and verdict, figures and the report; the peer below gets "
                  "the probed outputs in memory and fits PCA + LinearRegression and its held-out R² only")
        print(f"linlens analyze {route}: {wall:.1f} s wall, {cpu:.1f} s CPU (target {TARGET_S:.0f} s: "
              f"{'met' if wall <= TARGET_S else 'NOT met'}), peak RSS growth {rss:.2f} GiB")
        for k in ("R² (pooled, held-out)", "data-weighted error vs R", "principal angles",
                  "data-weighted error vs R (held-out rows)", "inputs' variance outside the subspace"):
            if k in summary:
                print(f"  {k}: {summary[k]}")
        if prof:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            pstats.Stats(prof).sort_stats("tottime").print_stats(20)
            if args.keep:
                prof.dump_stats(str(folder / "analyze.prof"))
        if not args.no_peers:
            found = (peers(inputs, model, Path(reference)) if args.components is None
                     else subspace_peer(inputs, model, args.components))
            for name, (w, cp) in found.items():
                print(f"peer {name}: {w:.1f} s wall, {cp:.1f} s CPU; peer / analyze = {w / wall:.2f} (wall), "
                      f"{cp / cpu:.2f} (CPU)", flush=True)
            goal = {"sklearn LinearRegression.fit": ("≥ 2", lambda r: r >= 2),
                    "floor: one model pass + Gram + one SVD of C": ("≥ 1/1.5 = 0.67", lambda r: r >= 1 / 1.5),
                    "sklearn PCA(randomized) + LinearRegression + held-out R²": ("≥ 1.5", lambda r: r >= 1.5),
                    "peer + the model pass": ("≥ 1.5", lambda r: r >= 1.5)}
            for name, (w, cp) in found.items():
                if name in goal:
                    want, ok = goal[name]
                    print(f"target peer / analyze {want} against {name}: {'met' if ok(cp / cpu) else 'NOT met'} "
                          f"(CPU), {'met' if ok(w / wall) else 'NOT met'} (wall)")
            if args.components is None:  # what the report's statistics need at least
                floor = found["floor: one model pass + Gram + one SVD of C"][1]
                values = found["singular values only (gesdd without vectors, d × d)"][1]
                lead = [k for k in found if k.startswith("R's leading")]
                lr = found["sklearn LinearRegression.fit"][1]
                if lead:  # above the size rule: R's leading pairs, C's every value
                    least = found["model pass + Gram"][1] + values + found[lead[0]][1]
                    what = ("model pass + Gram + C's singular values without vectors (the report shows every one, as "
                            f"the study keeps the surrogate's) + {lead[0]} (the size rule REFERENCE_SPECTRUM_MAX_D: "
                            "their filter factors)")
                else:
                    least = floor + values
                    what = ("model pass + Gram + R's full SVD, whose singular vectors give the filter factors, in "
                            "place of the floor's SVD of C + C's singular values without vectors")
                print(f"least work of the report's statistics ({what}): {least:.1f} s CPU, so sklearn / analyze ≤ "
                      f"{lr / least:.2f} and analyze / floor ≥ {least / floor:.2f} (CPU) whatever the rest costs")


def targets_floor(f: dict[str, Path]) -> dict[str, float]:
    """The floor of the dense study, CPU seconds, measured in the same process: one model pass over the probes, one
    Gram matrix of the probes (n × d) and one SVD of a d × d matrix — the least any dense study of this size does."""
    from linlens.linalg import svd

    out = {}
    c = time.process_time()
    Y, F = _probe(f["inputs"], f["model"])
    out["model pass"] = time.process_time() - c
    c = time.process_time()
    Yc = Y - Y.mean(axis=0)
    G = Yc.T @ Yc
    out["Gram of the probes"] = time.process_time() - c
    c = time.process_time()
    svd(G + np.eye(len(G)))
    out["one d × d SVD"] = time.process_time() - c
    return out


def main_targets(args: argparse.Namespace) -> None:
    """The d = side² dense ``--targets`` study with intervals, timed (wall and CPU), against a floor measured in the
    same run (one model pass + one Gram + one d × d SVD) and, unless --no-peers, the same peers."""
    from linlens.workflows.inverse import run_inverse

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        f = make_targets_case(folder, args.side, args.n)
        print(f"case: d = {args.side ** 2}, {args.n} probe pairs + {args.n} training pairs, A dense (blur B ⊗ B), "
              f"MLP {args.side ** 2}-512-{args.side ** 2}; written in {time.perf_counter() - t:.1f} s; one thread per "
              "library", flush=True)
        floor = targets_floor(f)
        floor_cpu = sum(floor.values())
        print("floor (CPU s): " + ", ".join(f"{k} {v:.1f}" for k, v in floor.items()) + f"; total {floor_cpu:.1f}",
              flush=True)
        prof = cProfile.Profile(time.process_time) if args.profile else None
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        load0 = os.getloadavg()
        t, c = time.perf_counter(), time.process_time()
        if prof:
            prof.enable()
        summary = run_inverse(str(f["model"]), f["inputs"], f["targets"], folder / "report_targets",
                              operator=str(f["A"]), train_inputs=f["train_inputs"], train_targets=f["train_targets"],
                              force=True, seed=0, local_samples=args.local_samples, max_memory=args.max_memory,
                              load_model_kwargs={"trust_model": True})  # the bench wrote this file itself
        if prof:
            prof.disable()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        local = (f"local Jacobians at {args.local_samples} rows" if args.local_samples else
                 "no local Jacobians (--local-samples 0: each Jacobian row adds a d × d Jacobian and a d³ product)")
        print(f"linlens analyze --targets (dense study with intervals: 100 multiplier-bootstrap replicates; {local}): "
              f"{cpu:.1f} s CPU, {wall:.1f} s wall (target {TARGET_S:.0f} s one thread, CPU: "
              f"{'met' if cpu <= TARGET_S else 'NOT met'}); study / floor = {cpu / floor_cpu:.1f} (CPU); peak RSS "
              f"{rss:.2f} GiB (was {rss0 / 2**20:.2f} before the study)")
        for k, v in summary.items():
            print(f"  {k}: {v}")
        if prof:
            pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
              f"(at the start: {', '.join(f'{x:.1f}' for x in load0)}); CPU time is the number to compare")
        if not args.no_peers:
            for name, (w, cp) in peers(f["inputs"], f["model"]).items():
                print(f"peer {name}: {w:.1f} s wall, {cp:.1f} s CPU; analyze --targets / peer = {cpu / cp:.1f} (CPU)")


if __name__ == "__main__":
    main()
