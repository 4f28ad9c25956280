"""Where a spiking forward spends its time: torch.profiler over one IF and one MT simulation.

Same network and input as benchmarks/speed_memory.py (U-Net width 32, batch 8×1×64×64, T = 10, fp32,
channels-last, inference mode). Prints the operators by self CPU time, and the share of time spent in
convolutions against everything else (the neuron updates, pooling, concatenation, Python).
Usage: python benchmarks/profile_simulation.py [--width W] [--batch B] [--side S] [--rows N]
"""

from __future__ import annotations

import argparse
import logging

import torch
from torch.profiler import ProfilerActivity, profile

logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

from speed_memory import build  # noqa: E402  (same network and input)

from bench_suite.neurons.integrate_fire import IFNeuron  # noqa: E402
from bench_suite.neurons.multi_threshold import MTNeuron  # noqa: E402

CONVOLUTION_OPS = ("aten::mkldnn_convolution", "aten::convolution", "aten::_convolution", "aten::conv2d",
                   "aten::conv_transpose2d", "aten::_slow_conv2d_forward")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--rows", type=int, default=12)
    args = parser.parse_args()
    time_steps = 10
    for name, neuron in (("IF", IFNeuron), ("MT", MTNeuron)):
        ann, snn, x = build(args.width, args.batch, args.side, neuron)
        with torch.inference_mode():
            snn(x, time_steps)  # warm-up (oneDNN primitive creation)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                snn(x, time_steps)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        conv = sum(e.self_cpu_time_total for e in events if e.key in CONVOLUTION_OPS)
        print(f"\n{name}, T={time_steps}: {total / 1e3:.1f} ms of operator self time; convolutions "
              f"{100 * conv / total:.1f} %, everything else {100 * (total - conv) / total:.1f} %")
        print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
