"""Test-set evaluation of one spiking cell: whole padded images against tiles, measured in one run.

    python benchmarks/eval_speed.py [--images 4] [--tile-batches 32 128 512] [-T 10] [--width 16]

On demo-vessels generated at DRIVE's size (565 × 584, ``--images`` test images) it converts a width-16
U-Net to MT + CW (seeded random weights, normalized on test crops: the simulation's cost does not depend
on what the weights learned, MT and IF are dense per step) and times ``evaluate`` — the runner's
evaluation, spike statistics and event maps included — with whole images in batches of
``--whole-batch`` (the profiles' ``eval_batch_size``) and with the reference's 48 × 48 tiles (stride 48,
156 per image) in forward passes of each ``--tile-batches`` size (``eval_tile_batch``). It prints seconds
per image, each way's ratio to whole images, and the size of one layer's activations per forward pass
(the memory each step streams through). The last line is JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

from common import cpu_flags  # noqa: E402

from bench_suite.core.tasks import Tiling  # noqa: E402
from bench_suite.datasets.demo import DemoVessels, VesselParams  # noqa: E402
from bench_suite.experiment.environment import cpu_model  # noqa: E402
from bench_suite.experiment.evaluation import evaluate, tiles_per_image  # noqa: E402
from bench_suite.models.unet import UNet  # noqa: E402
from bench_suite.neurons.multi_threshold import MTNeuron  # noqa: E402
from bench_suite.norms.scaling import ConnectionWiseNorm  # noqa: E402
from bench_suite.snn.convert import analyse, build_spiking_network  # noqa: E402
from bench_suite.snn.network import TrainedNetwork  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="test images of 565 × 584 (DRIVE has 20)")
    parser.add_argument("--tile-batches", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--whole-batch", type=int, default=16)
    parser.add_argument("-T", "--time-steps", type=int, default=10)
    parser.add_argument("--width", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; {cpu_flags()}")

    with tempfile.TemporaryDirectory() as data_root:
        params = VesselParams(n_train=1, n_test=args.images, size=584, width=565)
        bundle = DemoVessels(params).load(Path(data_root), "quick")
    torch.manual_seed(0)
    ann = UNet(1, 2, width=args.width).eval()
    ann = ann.to(memory_format=ann.memory_format)
    rng = np.random.default_rng(0)
    crops = []
    for sample in bundle.test:
        r, c = rng.integers(0, 584 - 48), rng.integers(0, 565 - 48)
        crops.append(sample.image[:, r : r + 48, c : c + 48])
    calibration = torch.from_numpy(np.stack(crops * 4))
    structure = analyse(ann, calibration)
    graph = ConnectionWiseNorm().normalize(structure, calibration).graph
    snn = build_spiking_network(structure, graph, lambda th, ch: MTNeuron(threshold=th, channels=ch)).eval()
    trained = TrainedNetwork(snn, args.time_steps)

    tiling = Tiling(48, 48)
    per_image = tiles_per_image((584, 565), tiling)
    byte = 4 * args.width
    print(f"{args.images} test images of 565 × 584, MT + CW, T = {args.time_steps}, width {args.width}; "
          f"{per_image} tiles of 48 × 48 per image")
    ways = {f"whole images, batches of {args.whole_batch}": (bundle, args.whole_batch, 128,
                                                              args.whole_batch * 592 * 576 * byte)}
    for tile_batch in args.tile_batches:
        ways[f"48 × 48 tiles, {tile_batch} per pass"] = (dataclasses.replace(bundle, test_tiling=tiling),
                                                        args.whole_batch, tile_batch, tile_batch * 48 * 48 * byte)
    seconds, scores = {}, {}
    for name, (way_bundle, batch, tile_batch, layer_bytes) in ways.items():
        started = time.perf_counter()
        result = evaluate(trained, way_bundle, 16, batch, tile_batch=tile_batch)
        seconds[name] = (time.perf_counter() - started) / args.images
        f1 = [value for _, metric, value in result.sample_metrics if metric == "f1"]
        scores[name] = float(np.mean(f1))
        print(f"  {name}: {seconds[name]:.2f} s per image (one first-level activation per pass "
              f"{layer_bytes / 2**20:.0f} MiB)", flush=True)
    whole = next(iter(seconds.values()))
    ratios = {name: round(value / whole, 3) for name, value in seconds.items()}
    for name, ratio in ratios.items():
        print(f"  {name} ÷ whole images = {ratio:.3f}; a 20-image DRIVE test set: {seconds[name] * 20:.0f} s")
    print(json.dumps({"seconds_per_image": {k: round(v, 3) for k, v in seconds.items()}, "ratio_to_whole": ratios}))


if __name__ == "__main__":
    main()
