"""Simulation speed and training memory, measured in one run on this machine.

Prints, for a U-Net of stated size and input, at T = 10, in inference mode:
- spiking forward ÷ (T × ANN forward) for IF and MT, both in the same layout (channels-last) and fp32;
- IF spiking forward (exact fp32) ÷ (T × ANN forward in PyTorch's default fp32 NCHW layout);
- the bf16 simulation (SpikingNetwork.with_precision) ÷ the same NCHW fp32 baseline, its relative output
  error, and (unless --no-demo) the F1 change it causes on demo-vessels with a quick-profile ANN;
- SpikingJelly's per-step IF loop (its IFNode in single-step mode, the whole network every step, in
  whichever layout is faster for it) ÷ ours, on the same converted network and input;
- ASF vs STBP training step time and peak memory at T = 10, 20, 50, each in a fresh subprocess (the peak
  RSS during one step, in a peak window opened just before it; and its growth over the RSS before it),
  and ASF's peak memory at T = 50 ÷ at T = 10.
On ``--device cuda`` the same ratios are measured on the GPU, the training steps report the peak GPU memory
(torch.cuda.max_memory_allocated) beside the RSS, and two more variants of the IF forward are timed,
each checked against the eager output: a CUDA graph of one time step replayed T − 1 times, and
torch.compile of the body. The last line is one JSON object with the ratios.
Usage: python benchmarks/speed_memory.py [--device cpu|cuda] [--no-demo]
Where the time goes: python benchmarks/profile_simulation.py.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

from spikingjelly.activation_based import functional  # noqa: E402
from spikingjelly.activation_based import neuron as sj_neuron  # noqa: E402

from bench_suite.core.tasks import Task  # noqa: E402
from bench_suite.models.unet import UNet  # noqa: E402
from bench_suite.neurons.integrate_fire import IFNeuron  # noqa: E402
from bench_suite.neurons.multi_threshold import MTNeuron  # noqa: E402
from bench_suite.norms.scaling import ConnectionWiseNorm  # noqa: E402
from bench_suite.snn.convert import analyse, build_spiking_network  # noqa: E402
from bench_suite.snn.network import replace_neurons  # noqa: E402
from bench_suite.trainers.asf import asf_step  # noqa: E402
from bench_suite.trainers.direct import bptt_step  # noqa: E402

DEVICE = torch.device("cpu")


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def build(width: int, batch: int, side: int, neuron_cls):
    """ANN (channels-last, as the model plugin builds it), its CW-converted SNN, and an input."""
    torch.manual_seed(0)
    ann = UNet(1, 2, width=width).eval().to(DEVICE)
    ann = ann.to(memory_format=ann.memory_format)
    x = torch.rand(batch, 1, side, side).to(DEVICE)
    structure = analyse(ann, x)
    normalized = ConnectionWiseNorm().normalize(structure, x)
    snn = build_spiking_network(structure, normalized.graph,
                                lambda th, ch: neuron_cls(threshold=th, channels=ch).to(DEVICE)).eval()
    return ann, snn.to(DEVICE), x


def spikingjelly_copy(snn):
    """The same converted network with SpikingJelly's IFNode (single-step, reset by subtraction) in
    place of ours; the converted networks here have θ = 1, where both output the binary spike."""
    return replace_neurons(
        snn, lambda neuron: sj_neuron.IFNode(v_threshold=neuron.v_threshold, v_reset=None, step_mode="s"))


def spikingjelly_forward(net, x: torch.Tensor, time_steps: int) -> torch.Tensor:
    """SpikingJelly's usual inference loop: the whole network every step, outputs averaged over T."""
    functional.reset_net(net)
    total = 0.0
    for _ in range(time_steps):
        total = total + net.head(net.body(net.encoder(x)))
    return total / time_steps


def bf16_on_demo(time_steps: int) -> dict[str, float]:
    """F1 on demo-vessels of the IF and MT networks (quick-profile ANN, CW), fp32 against bf16."""
    from bench_suite.core.contracts import NullProgress
    from bench_suite.core.profiles import PROFILES
    from bench_suite.datasets.demo import DemoVessels
    from bench_suite.experiment.evaluation import evaluate
    from bench_suite.snn.network import TrainedNetwork
    from bench_suite.snn.training import TrainingPatches
    from bench_suite.trainers.ann import train_ann

    profile = PROFILES["quick"]
    with tempfile.TemporaryDirectory() as data_root:
        bundle = DemoVessels().load(Path(data_root), "quick")
    torch.manual_seed(0)
    ann = UNet(1, 2, width=profile.width)
    ann = ann.to(memory_format=ann.memory_format)
    train_ann(ann, bundle, profile, 0, lambda *row: None, NullProgress())
    ann.eval()
    calibration = TrainingPatches(bundle, profile, 0).calibration(profile.calibration_samples)
    structure = analyse(ann, calibration)
    graph = ConnectionWiseNorm().normalize(structure, calibration).graph
    result = {}
    for name, neuron_cls in (("if", IFNeuron), ("mt", MTNeuron)):
        snn = build_spiking_network(structure, graph, lambda th, ch, n=neuron_cls: n(threshold=th, channels=ch))
        scores = {}
        for precision, network in (("fp32", snn.eval()), ("bf16", snn.with_precision(torch.bfloat16))):
            rows = evaluate(TrainedNetwork(network, time_steps), bundle, 16, 16).sample_metrics
            f1 = [value for _, metric, value in rows if metric == "f1"]
            scores[precision] = sum(f1) / len(f1)
        print(f"demo-vessels F1 at T={time_steps}, {name.upper()}: fp32 {scores['fp32']:.4f}, "
              f"bf16 {scores['bf16']:.4f} (change {scores['bf16'] - scores['fp32']:+.4f})")
        result[f"bf16_f1_change_{name}"] = round(scores["bf16"] - scores["fp32"], 4)
    return result


def best_times(candidates: dict, repeats: int) -> dict[str, float]:
    """Best time of each candidate over ``repeats`` rounds, each round timing every candidate once, so
    that a slow phase of the machine (another process, frequency) hits all of them alike."""
    for fn in candidates.values():
        fn()  # warm-up: oneDNN creates its primitives on the first call, cuDNN autotunes
    sync()
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            sync()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


class GraphedSimulation:
    """The IF simulation with one time step captured as a CUDA graph (the neurons update their membranes
    in place after the first step, so a step is replayable): the first step eagerly, then T − 1 replays."""

    def __init__(self, snn, x: torch.Tensor) -> None:
        self.snn = snn
        self.current = snn.encoder(x.contiguous(memory_format=snn.memory_format(x))).clone()
        functional.reset_net(snn.body)
        snn.body(self.current)  # step 1 eagerly: the membranes become tensors
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                snn.body(self.current)  # warm-up on a side stream, as CUDA graph capture requires
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = snn.body(self.current)

    def __call__(self, x: torch.Tensor, time_steps: int) -> torch.Tensor:
        self.current.copy_(self.snn.encoder(x.contiguous(memory_format=self.snn.memory_format(x))))
        functional.reset_net(self.snn.body)
        # reset_net replaced the membranes by floats: step 1 eagerly recreates them, then copy them into the
        # graph's own tensors (the captured step reads and writes those)
        total = self.snn.body(self.current).float()
        for (_, neuron), captured in zip(self.snn.neurons(), self.captured_v, strict=True):
            captured.copy_(neuron.v)
            neuron.v = captured
        for _ in range(time_steps - 1):
            self.graph.replay()
            total = total + self.out
        return self.snn.head(total / time_steps)

    def remember_membranes(self) -> None:
        self.captured_v = [neuron.v for _, neuron in self.snn.neurons()]


def cuda_variants(snn, x: torch.Tensor, time_steps: int, repeats: int) -> dict[str, float]:
    """Eager, CUDA-graph and torch.compile IF forwards on the GPU: times and the largest output difference."""
    results: dict[str, float] = {}
    with torch.inference_mode():
        eager = snn(x, time_steps)
        candidates = {"eager": lambda: snn(x, time_steps)}
        try:
            graphed = GraphedSimulation(snn, x)
            graphed.remember_membranes()
            graphed_out = graphed(x, time_steps)
            results["cuda_graph_max_diff"] = float((graphed_out - eager).abs().max())
            candidates["cuda_graph"] = lambda: graphed(x, time_steps)
        except Exception as exc:  # a capture that fails is reported, not fatal
            print(f"CUDA graph capture failed: {type(exc).__name__}: {exc}")
        try:
            compiled_body = torch.compile(snn.body, dynamic=False)
            compiled = copy.copy(snn)
            compiled.body = compiled_body
            results["compile_max_diff"] = float((compiled(x, time_steps) - eager).abs().max())
            candidates["compiled"] = lambda: compiled(x, time_steps)
        except Exception as exc:
            print(f"torch.compile failed: {type(exc).__name__}: {exc}")
        times = best_times(candidates, repeats)
    for name, seconds in times.items():
        results[f"{name}_ms"] = seconds * 1e3
    for name in ("cuda_graph", "compiled"):
        if name in times:
            results[f"{name}_over_eager"] = times[name] / times["eager"]
    return results


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> None:
    """Start a new peak-RSS window (Linux ≥ 4.0: writing 5 to clear_refs resets VmHWM), so that an earlier
    transient peak (building and normalizing the network) does not count as the step's."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


STEPS = {"asf": asf_step, "stbp": bptt_step}


def measure_training_step(method: str, width: int, batch: int, side: int, time_steps: int) -> tuple:
    """Peak RSS (bytes) during one training step, its growth over the RSS before the step, and the step's
    time (s); after a warm-up step at T = 1 that allocates the optimizer state, so that the growth is the
    step's own activations and the peak is what the process needs to train (model, optimizer, step)."""
    _, snn, x = build(width, batch, side, MTNeuron)
    snn.train()
    target = torch.randint(0, 2, (batch, side, side))
    optimizer = torch.optim.Adam(snn.parameters(), lr=1e-5)
    task = Task("segmentation", 1, 2)
    target = target.to(DEVICE)
    STEPS[method](snn, x, target, 1, task, optimizer)
    sync()
    reset_peak_rss()
    if DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats(DEVICE)
    before = rss_bytes()
    start = time.perf_counter()
    STEPS[method](snn, x, target, time_steps, task, optimizer)
    sync()
    seconds = time.perf_counter() - start
    peak = peak_rss_bytes()
    device_peak = torch.cuda.max_memory_allocated(DEVICE) if DEVICE.type == "cuda" else 0
    return peak, max(peak - before, 0), seconds, device_peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--train-width", type=int, default=16,
                        help="width for the training-step comparison (STBP at T=50 needs ~T× the memory)")
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--no-demo", action="store_true",
                        help="skip training a demo-vessels ANN for the bf16 F1 change (about a minute)")
    parser.add_argument("--no-training", action="store_true", help="skip the ASF/STBP training-step part")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--measure", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if args.measure:
        peak, growth, seconds, device_peak = measure_training_step(args.measure[0], args.width, args.batch,
                                                                   args.side, int(args.measure[1]))
        print(peak, growth, seconds, device_peak)
        return
    from bench_suite.experiment.environment import cpu_model

    flags = open("/proc/cpuinfo").read() if Path("/proc/cpuinfo").exists() else ""
    print(f"CPU: {cpu_model()} (AMX: {'yes' if 'amx_bf16' in flags else 'no'}, AVX-512: "
          f"{'yes' if 'avx512f' in flags else 'no'}); device: {DEVICE}"
          + (f" ({torch.cuda.get_device_name(DEVICE)})" if DEVICE.type == "cuda" else ""))

    time_steps = 10
    ann, snn_if, x = build(args.width, args.batch, args.side, IFNeuron)
    _, snn_mt, _ = build(args.width, args.batch, args.side, MTNeuron)
    ann_nchw = copy.deepcopy(ann).to(memory_format=torch.contiguous_format)
    x_nchw = x.contiguous()
    params = sum(p.numel() for p in ann.parameters())
    print(f"U-Net width {args.width}, depth 4, {params / 1e6:.2f} M parameters; input {args.batch}×1×"
          f"{args.side}×{args.side}; T = {time_steps}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; best of {args.repeats}")
    with torch.inference_mode():
        x_cl = x.contiguous(memory_format=torch.channels_last)
        if_bf16_net, mt_bf16_net = snn_if.with_precision(torch.bfloat16), snn_mt.with_precision(torch.bfloat16)
        sj_cl = spikingjelly_copy(snn_if)  # channels-last, as ours
        sj_nchw = spikingjelly_copy(snn_if).to(memory_format=torch.contiguous_format)

        def ann_bf16():
            with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
                return ann(x_cl)

        times = best_times({
            "ann_naive": lambda: ann_nchw(x_nchw), "ann": lambda: ann(x_cl), "ann_bf16": ann_bf16,
            "if": lambda: snn_if(x, time_steps), "mt": lambda: snn_mt(x, time_steps),
            "if_bf16": lambda: if_bf16_net(x, time_steps), "mt_bf16": lambda: mt_bf16_net(x, time_steps),
            "sj_nchw": lambda: spikingjelly_forward(sj_nchw, x_nchw, time_steps),
            "sj_cl": lambda: spikingjelly_forward(sj_cl, x_cl, time_steps),
            # the same shortcuts as ours (first conv and head once): the neuron implementation alone
            "sj_our_loop": lambda: sj_cl.simulate(x, time_steps),
        }, args.repeats)
        ann_naive_s, ann_s, ann_bf16_s = times["ann_naive"], times["ann"], times["ann_bf16"]
        if_s, mt_s, if_bf16_s, mt_bf16_s = times["if"], times["mt"], times["if_bf16"], times["mt_bf16"]
        sj_times = {"NCHW": times["sj_nchw"], "channels-last": times["sj_cl"]}
        sj_same_loop_s = times["sj_our_loop"]
        exact, rounded = snn_if(x, time_steps), if_bf16_net(x, time_steps)
        bf16_rel_err = float((rounded - exact).norm() / exact.norm())
        mt_exact = snn_mt(x, time_steps)
        mt_bf16_rel_err = float((mt_bf16_net(x, time_steps) - mt_exact).norm() / mt_exact.norm())
        sj_difference = float((spikingjelly_forward(sj_cl, x_cl, time_steps) - exact).abs().max())
    sj_layout = min(sj_times, key=sj_times.get)
    print(f"ANN forward: NCHW fp32 {ann_naive_s * 1e3:.1f} ms; channels-last fp32 {ann_s * 1e3:.1f} ms; "
          f"channels-last bf16 autocast {ann_bf16_s * 1e3:.1f} ms")
    print(f"spiking T={time_steps}, channels-last: IF {if_s * 1e3:.1f} ms, MT {mt_s * 1e3:.1f} ms (fp32); "
          f"IF {if_bf16_s * 1e3:.1f} ms, MT {mt_bf16_s * 1e3:.1f} ms (bf16)")
    if_ratio, mt_ratio = if_s / (time_steps * ann_s), mt_s / (time_steps * ann_s)
    naive_ratio = if_s / (time_steps * ann_naive_s)
    bf16_ratio = if_bf16_s / (time_steps * ann_naive_s)
    print(f"IF forward ÷ (T × ANN forward), same layout and precision = {if_ratio:.3f} (target ≤ 1.05)")
    print(f"MT forward ÷ (T × ANN forward), same layout and precision = {mt_ratio:.3f} (target ≤ 1.15)")
    print(f"IF forward, exact fp32 ÷ (T × ANN forward, NCHW fp32) = {naive_ratio:.3f} (target ≤ 0.8)")
    print(f"IF forward, bf16 ÷ (T × ANN forward, NCHW fp32) = {bf16_ratio:.3f} (target ≤ 0.4); "
          f"÷ (T × ANN bf16 autocast) = {if_bf16_s / (time_steps * ann_bf16_s):.3f}; MT bf16 ÷ NCHW fp32 "
          f"= {mt_bf16_s / (time_steps * ann_naive_s):.3f}")
    print(f"bf16 relative output error: IF {bf16_rel_err:.2e}, MT {mt_bf16_rel_err:.2e}")
    print(f"SpikingJelly IFNode per-step loop: NCHW {sj_times['NCHW'] * 1e3:.1f} ms, channels-last "
          f"{sj_times['channels-last'] * 1e3:.1f} ms; its best ({sj_layout}) ÷ ours = "
          f"{sj_times[sj_layout] / if_s:.3f} (target ≥ 1.25); max output difference {sj_difference:.1e}")
    print(f"SpikingJelly IFNode in our loop (first conv and head once, channels-last): "
          f"{sj_same_loop_s * 1e3:.1f} ms, ÷ ours = {sj_same_loop_s / if_s:.3f} (the neuron update alone)")
    demo = {} if args.no_demo or DEVICE.type != "cpu" else bf16_on_demo(time_steps)
    if DEVICE.type == "cuda":
        variants = cuda_variants(snn_if, x, time_steps, args.repeats)
        print("IF forward on CUDA: " + ", ".join(f"{k} {v:.4g}" for k, v in variants.items()))
        demo.update({k: round(v, 4) for k, v in variants.items() if k.endswith(("_over_eager", "_max_diff"))})

    ratios = {
        "if_fwd_over_T_ann": round(if_ratio, 4), "mt_fwd_over_T_ann": round(mt_ratio, 4),
        "if_fwd_over_T_ann_naive": round(naive_ratio, 4), "if_bf16_over_T_ann_naive": round(bf16_ratio, 4),
        "bf16_rel_err": float(f"{bf16_rel_err:.3g}"), "sj_if_over_ours": round(sj_times[sj_layout] / if_s, 4),
        **demo,
    }
    if args.no_training:
        print(json.dumps(ratios))
        return
    measured: dict[tuple[str, int], tuple[int, int, float]] = {}
    print(f"training step (MT neuron, width {args.train_width}, batch {args.train_batch}×1×{args.side}×"
          f"{args.side}), each in a fresh process; memory = the process's peak RSS during the step "
          f"(growth over the RSS before it in brackets):")
    for steps in (10, 20, 50):
        for method in ("asf", "stbp"):
            command = [sys.executable, __file__, "--width", str(args.train_width), "--batch",
                       str(args.train_batch), "--side", str(args.side), "--device", args.device,
                       "--measure", method, str(steps)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"{method} at T={steps} failed (exit {result.returncode}; out of memory?): "
                                 f"{result.stderr.strip().splitlines()[-1:] or ''}")
            out = result.stdout.split()
            measured[method, steps] = (int(out[-4]), int(out[-3]), float(out[-2]), int(out[-1]))
        asf, stbp = measured["asf", steps], measured["stbp", steps]
        gpu = (f"; GPU peak ASF {asf[3] / 2**20:.0f} MiB, STBP {stbp[3] / 2**20:.0f} MiB "
               f"(÷ {asf[3] / max(stbp[3], 1):.3f})" if DEVICE.type == "cuda" else "")
        print(f"  T={steps}: ASF {asf[2]:.2f} s, {asf[0] / 2**20:.0f} MiB (+{asf[1] / 2**20:.0f}); "
              f"STBP {stbp[2]:.2f} s, {stbp[0] / 2**20:.0f} MiB (+{stbp[1] / 2**20:.0f}); "
              f"ASF ÷ STBP time {asf[2] / stbp[2]:.3f}, memory {asf[0] / stbp[0]:.3f}{gpu}")
    mem_ratio = measured["asf", 50][0] / measured["asf", 10][0]
    print(f"ASF peak memory T=50 ÷ T=10 = {mem_ratio:.3f} (growth {measured['asf', 50][1] / 2**20:.0f} vs "
          f"{measured['asf', 10][1] / 2**20:.0f} MiB)")
    print(json.dumps({
        **ratios,
        "asf_mem_T50_over_T10": round(mem_ratio, 4),
        "asf_over_stbp_time": round(measured["asf", 10][2] / measured["stbp", 10][2], 4),
        "asf_over_stbp_mem": round(measured["asf", 10][0] / measured["stbp", 10][0], 4),
        "asf_over_stbp_mem_growth": round(measured["asf", 10][1] / max(measured["stbp", 10][1], 1), 4),
        **({f"gpu_peak_mib_{m}_T{s}": round(v[3] / 2**20, 1) for (m, s), v in measured.items()}
           if DEVICE.type == "cuda" else {}),
    }))


if __name__ == "__main__":
    main()
