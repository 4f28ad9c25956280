"""Device check: every stage on the given device, and the same results as on the CPU.

    python benchmarks/device_check.py --device cuda [--precision fp32] [-T 10]

Runs a smoke grid (IF and MT neurons, CW normalization, conversion and ASF fine-tuning, demo-vessels,
T = 10) twice with the same seed, on DEV and on the CPU, and prints per cell the largest metric
difference, each layer's spike counts on both devices, and per stage (ANN, calibration, fine-tuning,
evaluation) the time, peak RSS and peak device memory. It also runs the stages one by one on DEV and
checks after each that every parameter and buffer is on DEV (a stage that silently ran on the CPU is
an error). Exit status 1 where a stage left the device or where the converted networks' spikes differ
beyond float tolerance (a few spikes flipped at the threshold by rounding: 0.5 % of a layer's events,
or 2 events); 0 otherwise. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile

import torch

logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

from bench_suite.core.contracts import TrainerContext  # noqa: E402
from bench_suite.core.params import PluginChoice  # noqa: E402
from bench_suite.core.profiles import resolve_profile  # noqa: E402
from bench_suite.core.registry import get_registry  # noqa: E402
from bench_suite.experiment.cells import (  # noqa: E402
    CellJob,
    load_bundle,
    neuron_factory,
    run_cell,
    write_checkpoint,
)
from bench_suite.experiment.environment import Environment, apply, cpu_model  # noqa: E402
from bench_suite.experiment.evaluation import evaluate  # noqa: E402
from bench_suite.experiment.spec import RunSpec, expand  # noqa: E402
from bench_suite.norms.scaling import ConnectionWiseNorm  # noqa: E402
from bench_suite.snn.network import TrainedNetwork  # noqa: E402
from bench_suite.snn.training import MixedPrecision, TrainingPatches, convert  # noqa: E402
from bench_suite.trainers.ann import train_ann  # noqa: E402
from bench_suite.trainers.asf import asf_step  # noqa: E402

SPIKE_TOLERANCE = (0.005, 2)  # relative to a layer's events, and absolute


def grid_cells(time_steps: int):
    choices = {
        "dataset": (PluginChoice("dataset", "demo-vessels"),), "model": (PluginChoice("model", "unet2d"),),
        "trainer": (PluginChoice("trainer", "ann"), PluginChoice("trainer", "conv"), PluginChoice("trainer", "asf")),
        "neuron": (PluginChoice("neuron", "if"), PluginChoice("neuron", "mt")),
        "norm": (PluginChoice("norm", "cw"),),
    }
    spec = RunSpec(choices, (time_steps,), (0,), "smoke")
    return spec, expand(spec, get_registry())


def off_device(modules: dict[str, torch.nn.Module], device: torch.device) -> list[str]:
    found = []
    for owner, module in modules.items():
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if tensor.device.type != device.type:
                found.append(f"{owner}: {name} on {tensor.device}")
    return found


def stage_audit(device: torch.device, precision: str, time_steps: int, data_root: str) -> dict[str, list[str]]:
    """The stages one by one on ``device``; after each, every parameter and buffer must be there."""
    spec, cells = grid_cells(time_steps)
    cell = next(c for c in cells if c.trainer.name == "asf" and c.neuron.name == "mt")
    bundle = load_bundle(cell, "smoke", data_root)
    profile = resolve_profile("smoke", {}, 2)
    model_plugin = get_registry().get("model", "unet2d").obj(None)
    torch.manual_seed(0)
    ann = model_plugin.build(bundle.task, profile.width).to(device)
    problems: dict[str, list[str]] = {}
    train_ann(ann, bundle, profile, 0, lambda *row: None, _Silent(), None, precision)
    problems["ANN training"] = off_device({"ann": ann}, device)
    ctx = TrainerContext(bundle=bundle, profile=profile, model_plugin=model_plugin, get_ann=lambda loss=None: ann,
                         make_neuron=neuron_factory(cell, device), norm=ConnectionWiseNorm(), seed=0,
                         time_steps=time_steps, device=device, precision=precision)
    patches = TrainingPatches.for_cell(ctx)
    problems["training patches"] = [] if patches.images.device.type == device.type else [
        f"patches on {patches.images.device}"]
    network = convert(ctx, patches.calibration(profile.calibration_samples))
    problems["conversion and calibration"] = off_device({"snn": network}, device)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    x, y = next(patches.batches(0))
    asf_step(network, x, y, time_steps, bundle.task, optimizer, MixedPrecision(device, precision))
    problems["ASF fine-tuning"] = off_device({"snn": network}, device) + [
        f"optimizer state {k} on {v.device}" for state in optimizer.state.values() for k, v in state.items()
        if torch.is_tensor(v) and v.dim() and v.device.type != device.type]
    evaluate(TrainedNetwork(network.eval(), time_steps), bundle, 16, 4, precision=precision)
    problems["evaluation"] = off_device({"snn": network}, device)
    return problems


class _Silent:
    def stage(self, description, total):
        return lambda advance=1: None


def run_grid(device: str, precision: str, time_steps: int, data_root: str) -> dict[str, dict]:
    spec, cells = grid_cells(time_steps)
    out = {}
    with tempfile.TemporaryDirectory() as results:
        environment = Environment(device=device, precision=precision)
        for cell in cells:
            result = run_cell(CellJob(cell, "smoke", {}, data_root, results, environment))
            for weights in result.anns.values():
                write_checkpoint(results, weights)  # as the coordinator does: one ANN for the grid
            if result.status != "done":
                raise SystemExit(f"{cell.title()} failed on {device}: {result.message}")
            metrics: dict[str, list[float]] = {}
            for _, metric, value in result.sample_metrics:
                metrics.setdefault(metric, []).append(value)
            out[cell.title()] = {
                "metrics": {m: sum(v) / len(v) for m, v in metrics.items() if m in ("f1", "jaccard", "accuracy")},
                "spikes": {s["layer"]: s["spikes"] for s in result.layer_stats},
                "stages": result.info.get("memory", {}),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("-T", "--time-steps", type=int, default=10)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    device = apply(Environment(device=args.device))
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else cpu_model()}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, precision {args.precision}")
    with tempfile.TemporaryDirectory() as scratch:
        data_root = args.data_root or scratch
        failures = []
        for stage, problems in stage_audit(device, args.precision, args.time_steps, data_root).items():
            where = f"on {device}" if not problems else "LEFT THE DEVICE: " + "; ".join(problems[:3])
            print(f"stage {stage}: {where}")
            failures += [f"{stage}: {p}" for p in problems]
        on_device = run_grid(str(device), args.precision, args.time_steps, data_root)
        on_cpu = on_device if device.type == "cpu" else run_grid("cpu", "fp32", args.time_steps, data_root)
    largest = 0.0
    spike_mismatch = []
    for title, measured in on_device.items():
        reference = on_cpu[title]
        difference = max((abs(v - reference["metrics"][m]) for m, v in measured["metrics"].items()), default=0.0)
        largest = max(largest, difference)
        print(f"{title}: largest metric difference {difference:.2e}")
        for layer, spikes in measured["spikes"].items():
            cpu_spikes = reference["spikes"].get(layer, 0.0)
            allowed = max(SPIKE_TOLERANCE[0] * max(cpu_spikes, spikes), SPIKE_TOLERANCE[1])
            if abs(spikes - cpu_spikes) > allowed and args.precision == "fp32":
                spike_mismatch.append(f"{title} {layer}: {spikes:.0f} vs {cpu_spikes:.0f} on the CPU")
        for stage, cost in measured["stages"].items():
            memory = f", peak device {cost['peak_device_mib']:.0f} MiB" if "peak_device_mib" in cost else ""
            print(f"    {stage}: {cost['seconds']:.2f} s, peak RSS {cost['peak_rss_mib']:.0f} MiB{memory}")
    for line in spike_mismatch:
        print(f"spikes differ beyond float tolerance: {line}")
    ok = not failures and not spike_mismatch
    print(json.dumps({"device": str(device), "precision": args.precision, "largest_metric_difference": largest,
                      "stages_off_device": len(failures), "spike_mismatches": len(spike_mismatch), "ok": ok}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
