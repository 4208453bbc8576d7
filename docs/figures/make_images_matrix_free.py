"""Worked examples of the matrix-free route (docs/images.md): a CNN that undoes a reflect-boundary blur, and one
that fills an inpainting mask, on natural-image patches, analysed from the command line.

    python docs/figures/make_images_matrix_free.py --case blur64 --work /tmp/mf     # data, training, analyze
    python docs/figures/make_images_matrix_free.py --case mask64 --work /tmp/mf
    python docs/figures/make_images_matrix_free.py --figure --work /tmp/mf     # images_matrix_free.png

Each case writes, in its work folder, ``ops.py`` (the operator as a deepinv-style object: ``A``/``A_adjoint`` on
(B, 1, H, W) tensors; deepinv is not installed, these follow its interface), ``y.npy``/``x.npy`` (4,000 pairs:
2,000 training pairs and 2,000 probes for ``analyze``), the network ``cnn.pt`` (a 5-layer, 16-channel residual
CNN trained on 2,000 other pairs, one thread) and the report of

    linlens analyze -m cnn.pt --trust-model -i y.npy -t x.npy -A ops:<op> -o report

run under ``/usr/bin/time -v`` with one thread, whose CPU time, wall time and peak memory it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OPS = '''
import torch
import torch.nn.functional as F


class ReflectBlur:
    """Gaussian blur with reflecting boundaries (deepinv's Blur(padding="reflect")): not circular. float32, as
    deepinv's default: linlens calls it in float32 and keeps its precision in mind."""

    def __init__(self, size=9, width=1.5, image=(64, 64)):
        r = size // 2
        t = torch.arange(size, dtype=torch.float32) - r
        g = torch.exp(-t ** 2 / (2 * width ** 2))
        k = torch.outer(g, g)
        self.k, self.r = (k / k.sum())[None, None], r
        # reflect padding as an index map (padded position -> image position), for the adjoint's fold
        self.rows, self.cols = (torch.arange(-r, n + r).abs() for n in image)
        self.rows = torch.where(self.rows >= image[0], 2 * image[0] - 2 - self.rows, self.rows)
        self.cols = torch.where(self.cols >= image[1], 2 * image[1] - 2 - self.cols, self.cols)

    def A(self, x):
        return F.conv2d(F.pad(x, (self.r,) * 4, mode="reflect"), self.k)

    def A_adjoint(self, y):
        # adjoint of the valid correlation: the full convolution, i.e. a correlation with the flipped kernel on y
        # zero-padded by 2r (the padded image); 7x faster on CPU than conv_transpose2d, the same numbers
        p = F.conv2d(y, self.k.flip((-2, -1)), padding=2 * self.r)
        h, w = len(self.rows) - 2 * self.r, len(self.cols) - 2 * self.r
        z = torch.zeros((*p.shape[:2], h, p.shape[3]), dtype=p.dtype).index_add_(2, self.rows, p)
        return torch.zeros((*p.shape[:2], h, w), dtype=p.dtype).index_add_(3, self.cols, z)  # adjoint of the pad


class Inpainting:
    """Multiply by a fixed 0/1 mask (deepinv's Inpainting): 40% of the pixels are lost."""

    def __init__(self, image=(64, 64), keep=0.6, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.mask = (torch.rand(image, generator=g) < keep).double()[None, None]

    def A(self, x):
        return x * self.mask.to(x.dtype)

    def A_adjoint(self, y):
        return y * self.mask.to(y.dtype)


import os as _os
_S = int(_os.environ.get("LINLENS_EXAMPLE_SIZE", "64"))
blur = ReflectBlur(image=(_S, _S))
mask = Inpainting(image=(_S, _S))
'''

#: case → (operator, image size, σ, network training pairs, rows for analyze, epochs); at 256×256 fewer pairs and
#: epochs (one thread: a 256×256 image costs 16× a 64×64 one) and 2,000 rows for analyze
CASES = {"blur64": ("blur", 64, 0.02, 2000, 4000, 6), "mask64": ("mask", 64, 0.02, 2000, 4000, 6),
         "blur128": ("blur", 128, 0.02, 400, 2000, 1), "blur256": ("blur", 256, 0.02, 400, 2000, 3)}


def make_data(work: Path, op_name: str, size: int, sigma: float, n_net: int, n_rows: int, seed: int = 0) -> None:
    """Patches of the scikit-image photographs, the operator applied, Gaussian noise of σ."""
    import torch

    from linlens.data.natural_images import load_natural_images, random_patches

    sys.path.insert(0, str(work))
    os.environ["LINLENS_EXAMPLE_SIZE"] = str(size)
    (work / "ops.py").write_text(OPS)
    import ops  # noqa: PLC0415

    op = getattr(ops, op_name)
    rng = np.random.default_rng(seed)
    n_total = n_net + n_rows
    X = random_patches(load_natural_images("train"), size, n_total, rng)
    with torch.no_grad():
        Y = np.concatenate([op.A(torch.as_tensor(X[s:s + 100], dtype=torch.float32)).double().numpy()
                            for s in range(0, n_total, 100)])
    Y = Y + sigma * rng.normal(size=Y.shape)
    np.save(work / "x_net.npy", X[:n_net].astype(np.float32))
    np.save(work / "y_net.npy", Y[:n_net].astype(np.float32))
    np.save(work / "x.npy", X[n_net:].astype(np.float32))  # float32 on disk, as images are: linlens reads them
    np.save(work / "y.npy", Y[n_net:].astype(np.float32))  # memory-mapped, in float64 chunks


def train_cnn(work: Path, epochs: int, seed: int = 0) -> float:
    """A 5-layer, 16-channel residual CNN (float32) trained by Adam on the 2,000 network pairs; returns CPU s."""
    import torch

    torch.manual_seed(seed)
    c0 = time.process_time()

    class CNN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            ch = 16
            layers = [torch.nn.Conv2d(1, ch, 3, padding=1), torch.nn.ReLU()]
            for _ in range(3):
                layers += [torch.nn.Conv2d(ch, ch, 3, padding=1), torch.nn.ReLU()]
            layers += [torch.nn.Conv2d(ch, 1, 3, padding=1)]
            self.body = torch.nn.Sequential(*layers)

        def forward(self, y: torch.Tensor) -> torch.Tensor:
            return y + self.body(y)

    net = CNN()
    X = torch.as_tensor(np.load(work / "x_net.npy"))
    Y = torch.as_tensor(np.load(work / "y_net.npy"))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for ep in range(epochs):
        perm = torch.randperm(len(X))
        tot = 0.0
        for s in range(0, len(X), 32):
            i = perm[s:s + 32]
            loss = torch.mean((net(Y[i]) - X[i]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss) * len(i)
        print(f"epoch {ep + 1}/{epochs}: training MSE {tot / len(X):.3g}", flush=True)
    net.eval()
    torch.jit.script(net).save(str(work / "cnn.pt"))
    return time.process_time() - c0


def run_analyze(work: Path, op_name: str, extra: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "LINLENS_EXAMPLE_SIZE": os.environ.get("LINLENS_EXAMPLE_SIZE", "64")}
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "linlens", "analyze", "-m", "cnn.pt", "--trust-model", "-i",
           "y.npy", "-t", "x.npy", "-A", f"ops:{op_name}", "-o", "report", "--force", *extra]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    print(p.stdout)
    if p.returncode != 0:
        print(p.stderr)
        raise SystemExit(p.returncode)
    tv = {ln.split(":", 1)[0].strip(): ln.split(":", 1)[1].strip() for ln in p.stderr.splitlines() if ":" in ln}
    out = {"user_s": float(tv["User time (seconds)"]), "sys_s": float(tv["System time (seconds)"]), "wall_s": wall,
           "peak_rss_gib": int(tv["Maximum resident set size (kbytes)"]) / 2**20}
    print(f"analyze: CPU {out['user_s'] + out['sys_s']:.1f} s (user + sys), wall {wall:.1f} s, peak RSS "
          f"{out['peak_rss_gib']:.2f} GiB (/usr/bin/time -v; one thread; shared machine)")
    (work / "timing.json").write_text(json.dumps(out))
    return out


def figure(root: Path, dest: Path) -> None:
    """Held-out examples of each case: input, target, network, Wiener (from the reports' arrays)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [c for c in CASES if (root / c / "report" / "example_images.npy").exists()]
    fig, axes = plt.subplots(len(cases), 5, figsize=(10, 2.2 * len(cases)), squeeze=False)
    for r, c in enumerate(cases):
        met = json.loads((root / c / "report" / "metrics.json").read_text())
        ex = dict(zip(met["example_images"], np.load(root / c / "report" / "example_images.npy"), strict=True))
        for j, k in enumerate(("input y", "target x", "network", "Wiener", "C_data")):
            ax = axes[r, j]
            if k in ex:
                ax.imshow(ex[k], cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(k)
        axes[r, 0].set_ylabel(f"{c}\nverdict: {met['verdict_text']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    print(f"wrote {dest}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=list(CASES))
    ap.add_argument("--work", type=Path, default=Path("/tmp/linlens-matrix-free"))
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the case's)")
    ap.add_argument("--figure", action="store_true")
    ap.add_argument("analyze_args", nargs="*", help="extra options for linlens analyze (after --)")
    a = ap.parse_args()
    if a.figure:
        figure(a.work, Path(__file__).resolve().parent / "images_matrix_free.png")
        return
    op_name, size, sigma, n_net, n_rows, epochs = CASES[a.case]
    os.environ["LINLENS_EXAMPLE_SIZE"] = str(size)
    work = a.work / a.case
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "y.npy").exists():
        make_data(work, op_name, size, sigma, n_net, n_rows)
    if not (work / "cnn.pt").exists():
        print(f"training the CNN: {train_cnn(work, a.epochs or epochs):.0f} s CPU")
    run_analyze(work, op_name, a.analyze_args)


if __name__ == "__main__":
    main()
