"""Simulation speed and ASF memory, measured in one run on this machine.

Prints, for a U-Net of stated size and input:
- spiking forward time ÷ (T × ANN forward time) for IF and MT at T = 10 (inference mode, fp32);
- ASF fine-tuning peak memory at T = 50 ÷ at T = 10 (each in a fresh subprocess: peak RSS growth
  during one training step over the RSS before it);
- STBP (BPTT through T steps) vs ASF training step time and peak memory at T = 10, 20, 50.
The last line is one JSON object with the ratios. Usage: python benchmarks/speed_memory.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time

import torch

logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

from bench_suite.convert import analyse, build_spiking_network  # noqa: E402
from bench_suite.models.unet import UNet  # noqa: E402
from bench_suite.neurons.integrate_fire import IFNeuron  # noqa: E402
from bench_suite.neurons.multi_threshold import MTNeuron  # noqa: E402
from bench_suite.norms.scaling import ConnectionWiseNorm  # noqa: E402
from bench_suite.tasks import Task  # noqa: E402
from bench_suite.trainers.asf import asf_step  # noqa: E402
from bench_suite.trainers.direct import bptt_step  # noqa: E402


def build(width: int, batch: int, side: int, neuron_cls):
    torch.manual_seed(0)
    ann = UNet(1, 2, width=width).eval()
    x = torch.rand(batch, 1, side, side)
    structure = analyse(ann, x)
    normalized = ConnectionWiseNorm().normalize(structure, x)
    snn = build_spiking_network(structure, normalized.graph,
                                lambda th, ch: neuron_cls(threshold=th, channels=ch)).eval()
    return ann, snn, x


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


STEPS = {"asf": asf_step, "stbp": bptt_step}


def measure_training_step(method: str, width: int, batch: int, side: int, time_steps: int) -> tuple[int, float]:
    """Peak RSS growth (bytes) and time (s) of one training step, after a warm-up step at T = 1 that
    allocates the optimizer state (so the growth is the step's own activations)."""
    _, snn, x = build(width, batch, side, MTNeuron)
    snn.train()
    target = torch.randint(0, 2, (batch, side, side))
    optimizer = torch.optim.Adam(snn.parameters(), lr=1e-5)
    task = Task("segmentation", 1, 2)
    STEPS[method](snn, x, target, 1, task, optimizer)
    before = rss_bytes()
    start = time.perf_counter()
    STEPS[method](snn, x, target, time_steps, task, optimizer)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return max(peak - before, 1), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-width", type=int, default=16,
                        help="width for the training-step comparison (STBP at T=50 needs ~T× the memory)")
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--measure", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        memory, seconds = measure_training_step(args.measure[0], args.width, args.batch, args.side,
                                                int(args.measure[1]))
        print(memory, seconds)
        return

    time_steps = 10
    ann, snn_if, x = build(args.width, args.batch, args.side, IFNeuron)
    _, snn_mt, _ = build(args.width, args.batch, args.side, MTNeuron)
    params = sum(p.numel() for p in ann.parameters())
    print(f"U-Net width {args.width}, depth 4, {params / 1e6:.2f} M parameters; input {args.batch}×1×"
          f"{args.side}×{args.side}; T = {time_steps}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    with torch.inference_mode():
        ann_s = best_time(lambda: ann(x), args.repeats)
        if_s = best_time(lambda: snn_if(x, time_steps), args.repeats)
        mt_s = best_time(lambda: snn_mt(x, time_steps), args.repeats)
    if_ratio = if_s / (time_steps * ann_s)
    mt_ratio = mt_s / (time_steps * ann_s)
    print(f"ANN forward {ann_s * 1e3:.1f} ms; IF T={time_steps} {if_s * 1e3:.1f} ms; "
          f"MT T={time_steps} {mt_s * 1e3:.1f} ms")
    print(f"IF forward ÷ (T × ANN forward) = {if_ratio:.3f}")
    print(f"MT forward ÷ (T × ANN forward) = {mt_ratio:.3f}")

    measured: dict[tuple[str, int], tuple[int, float]] = {}
    print(f"training step (MT neuron, width {args.train_width}, batch {args.train_batch}×1×{args.side}×"
          f"{args.side}), each in a fresh process:")
    for steps in (10, 20, 50):
        for method in ("asf", "stbp"):
            command = [sys.executable, __file__, "--width", str(args.train_width), "--batch",
                       str(args.train_batch), "--side", str(args.side), "--measure", method, str(steps)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"{method} at T={steps} failed (exit {result.returncode}; out of memory?): "
                                 f"{result.stderr.strip().splitlines()[-1:] or ''}")
            out = result.stdout.split()
            measured[method, steps] = (int(out[-2]), float(out[-1]))
        asf, stbp = measured["asf", steps], measured["stbp", steps]
        print(f"  T={steps}: ASF {asf[1]:.2f} s, {asf[0] / 2**20:.0f} MiB; STBP {stbp[1]:.2f} s, "
              f"{stbp[0] / 2**20:.0f} MiB; ASF ÷ STBP time {asf[1] / stbp[1]:.3f}, memory {asf[0] / stbp[0]:.3f}")
    mem_ratio = measured["asf", 50][0] / measured["asf", 10][0]
    print(f"ASF peak memory T=50 ÷ T=10 = {mem_ratio:.3f}")
    print(json.dumps({
        "if_fwd_over_T_ann": round(if_ratio, 4), "mt_fwd_over_T_ann": round(mt_ratio, 4),
        "asf_mem_T50_over_T10": round(mem_ratio, 4),
        "asf_over_stbp_time": round(measured["asf", 10][1] / measured["stbp", 10][1], 4),
        "asf_over_stbp_mem": round(measured["asf", 10][0] / measured["stbp", 10][0], 4),
    }))


if __name__ == "__main__":
    main()
