"""Benchmark: linlens.jacobians under a memory budget vs a loop of autograd.functional.jacobian and plain vmap(jacrev).

Model: MLP 784-256-128-10 (ReLU, float32, eval mode), 8192 random inputs (1024 with --quick); Jacobians
(n, 10, 784). Variants:

  ours  — ``linlens.jacobians(net, x, max_memory=M)`` (reverse mode, chunks sized from the memory model);
  vmap  — plain ``torch.func.vmap(torch.func.jacrev(f))(x)`` on the whole batch;
  loop  — a Python loop of ``torch.autograd.functional.jacobian`` over single inputs, timed on a SUBSET of
          the inputs (256; 64 with --quick) and extrapolated per input to the full batch (its cost is
          linear in the number of inputs: ≈1 ms of overhead per call).

Every library is pinned to ONE thread (OMP/OPENBLAS/MKL env vars before the torch import and
torch.set_num_threads(1)): on the shared 2-core machine more threads make timings erratic; ratios against the
peer measured in the same run are what counts. Times: ``--repeats`` rounds in one process, each round running
every variant once (interleaved, so they share the machine's noise); min and median; ratios use the min.

Peak memory, measured in a fresh subprocess per variant during one call (output included): on CPU the increase
of the process's peak resident set (VmHWM, reset through /proc/self/clear_refs) over its resident set before
the call; on CUDA ``torch.cuda.max_memory_allocated`` over the allocation before the call. With ``--device cuda`` the
variants run on the GPU and ``ours`` is also run on the CPU to print the GPU/CPU speed ratio.

Usage: python benchmarks/bench_jacobian.py [--quick] [--device cpu|cuda] [--repeats 3] [--work-mib 96]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

torch.set_num_threads(1)

D_IN, H1, H2, D_OUT = 784, 256, 128, 10


def build(device: str, n: int) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(D_IN, H1), torch.nn.ReLU(), torch.nn.Linear(H1, H2), torch.nn.ReLU(), torch.nn.Linear(H2, D_OUT)
    ).eval().to(device)
    x = torch.randn(n, D_IN, generator=torch.Generator().manual_seed(1)).to(device)
    return net, x


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


class PeakMemory:
    """Peak extra memory (bytes) during a block: RSS high-water mark on CPU, allocator peak on CUDA."""

    def __init__(self, device: str):
        self.device = device
        self.peak = 0

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # reset VmHWM to the current RSS
            self.base = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self.peak = _status_kib("VmHWM") * 1024 - self.base


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def make_variant(variant: str, net: torch.nn.Module, x: torch.Tensor, loop_n: int, max_memory: float):
    """(callable, inputs it runs on) for one variant."""
    from linlens.jacobian import jacobians

    def per_sample(v: torch.Tensor) -> torch.Tensor:
        return net(v.unsqueeze(0)).squeeze(0)

    if variant == "ours":
        return (lambda xx: jacobians(net, xx, max_memory=max_memory)), x
    if variant == "vmap":
        return (lambda xx: torch.func.vmap(torch.func.jacrev(per_sample))(xx)), x
    if variant == "loop":
        def loop(xx: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                return torch.stack([torch.autograd.functional.jacobian(per_sample, xi) for xi in xx])

        return loop, x[:loop_n]
    raise SystemExit(f"unknown variant {variant}")


def peak_of_variant(variant: str, device: str, n: int, loop_n: int, max_memory: float) -> dict:
    """Child process: peak extra memory of one call of one variant (after a small warm-up)."""
    net, x = build(device, n)
    fn, inputs = make_variant(variant, net, x, loop_n, max_memory)
    with torch.no_grad():
        fn(inputs[:32])
        sync(device)
        with PeakMemory(device) as pm:
            J = fn(inputs)
            sync(device)
    del J
    return {"variant": variant, "device": device, "peak_bytes": int(pm.peak)}


def time_variants(variants: list[str], device: str, n: int, loop_n: int, repeats: int, max_memory: float) -> dict:
    """Interleaved timing in this process (each round runs every variant once: they share the noise)."""
    net, x = build(device, n)
    fns = {v: make_variant(v, net, x, loop_n, max_memory) for v in variants}
    times: dict[str, list[float]] = {v: [] for v in variants}
    with torch.no_grad():
        for fn, inputs in fns.values():
            fn(inputs[:32])  # warm-up
        for _ in range(repeats):
            for v, (fn, inputs) in fns.items():
                gc.collect()
                sync(device)
                t = time.perf_counter()
                J = fn(inputs)
                sync(device)
                scale = n / inputs.shape[0]  # extrapolation factor (1 except for the loop)
                times[v].append((time.perf_counter() - t) * scale)
                del J
    return {v: {"min_s": min(t), "median_s": statistics.median(t)} for v, t in times.items()}


def check_correctness(device: str, n: int, max_memory: float) -> tuple[int, float]:
    from linlens.jacobian import estimate_chunk_size, jacobians

    net, x = build(device, n)
    ref = torch.stack([torch.autograd.functional.jacobian(lambda v: net(v[None])[0], xi) for xi in x[:16]])
    err = float((jacobians(net, x[:16]) - ref).abs().max())
    return estimate_chunk_size(net, x, max_memory=max_memory), err


def spawn_peak(variant: str, device: str, n: int, loop_n: int, max_memory: float) -> int:
    cmd = [
        sys.executable, __file__, "--variant", variant, "--device", device, "--n", str(n), "--loop-n",
        str(loop_n), "--max-memory", str(max_memory),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"variant {variant} on {device} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"]


def mb(b: float) -> str:
    return f"{b / 2**20:8.1f} MiB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1024 inputs, loop on 64, 2 repeats")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--work-mib", type=float, default=96.0, help="max_memory = result size + this (MiB)")
    p.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--loop-n", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--max-memory", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.variant is not None:  # child process: peak memory of one variant
        print(json.dumps(peak_of_variant(args.variant, args.device, args.n, args.loop_n, args.max_memory)))
        return

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but torch.cuda.is_available() is False")
    n = 1024 if args.quick else 8192
    loop_n = 64 if args.quick else 256
    repeats = args.repeats or (2 if args.quick else 3)
    out_bytes = n * D_OUT * D_IN * 4
    max_memory = out_bytes + args.work_mib * 2**20
    print(f"MLP {D_IN}-{H1}-{H2}-{D_OUT} ReLU float32, {n} inputs, device={args.device}, threads pinned to 1 "
          f"(torch.get_num_threads()={torch.get_num_threads()}), repeats={repeats} (interleaved)")
    print(f"result {mb(out_bytes)}; max_memory = result + {args.work_mib:g} MiB = {mb(max_memory)}")
    print(f"loop timed on {loop_n} inputs and extrapolated per input to {n}")

    variants = ["ours", "vmap", "loop"]
    peaks = {v: spawn_peak(v, args.device, n, loop_n, max_memory) for v in variants}
    times = time_variants(variants, args.device, n, loop_n, repeats, max_memory)
    chunk, err = check_correctness(args.device, n, max_memory)
    print(f"{'variant':8s} {'min s':>9s} {'median s':>9s} {'peak mem':>13s}")
    for v in variants:
        note = " (time extrapolated, memory for the subset)" if v == "loop" else ""
        print(f"{v:8s} {times[v]['min_s']:9.3f} {times[v]['median_s']:9.3f} {mb(peaks[v])}{note}")
    print(f"ours: chunk_size={chunk}, max |J - loop J| on 16 inputs = {err:.2e}")
    r_loop = times["loop"]["min_s"] / times["ours"]["min_s"]
    r_vmap = times["vmap"]["min_s"] / times["ours"]["min_s"]
    r_vmap_med = times["vmap"]["median_s"] / times["ours"]["median_s"]
    within = peaks["ours"] <= max_memory
    print(f"ratio={r_loop:.1f} vs autograd.functional.jacobian loop (min; target >= 10)  "
          f"{'PASS' if r_loop >= 10 else 'FAIL'}")
    print(f"ratio={r_vmap:.2f} vs plain vmap(jacrev) (min; median {r_vmap_med:.2f}; target >= 1.0)  "
          f"{'PASS' if r_vmap >= 1.0 else 'FAIL'}")
    print(f"peak memory ours {mb(peaks['ours'])} vs max_memory {mb(max_memory)}: "
          f"{'within' if within else 'EXCEEDED'}; plain vmap(jacrev) {mb(peaks['vmap'])}")
    if args.device == "cuda":
        cpu = time_variants(["ours"], "cpu", n, loop_n, repeats, max_memory)["ours"]
        print(f"ratio={cpu['min_s'] / times['ours']['min_s']:.1f} GPU/CPU speed-up of ours "
              f"(cpu {cpu['min_s']:.3f} s on 1 thread; gpu {times['ours']['min_s']:.4f} s)")


if __name__ == "__main__":
    main()
