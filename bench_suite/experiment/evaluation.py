"""Run a trained network on the test samples: per-sample metrics and per-layer spike statistics."""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict

import numpy as np
import torch
from torch.nn import functional as F

from bench_suite.core.errors import PluginContractError
from bench_suite.core.tasks import DatasetBundle, Sample, Tiling, add_test_noise
from bench_suite.experiment.environment import autocast
from bench_suite.snn.network import TrainedNetwork
from bench_suite.snn.training import check_output


@dataclasses.dataclass
class Evaluation:
    sample_metrics: list[tuple[str, str, float]]
    layer_stats: list[dict]
    predictions: dict[str, np.ndarray]  # sample id → prediction (class map or denoised image)


def network_input(sample: Sample, bundle: DatasetBundle) -> np.ndarray:
    if bundle.task.kind == "denoising":
        return add_test_noise(sample, bundle.task.noise_sigma)
    return sample.image


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Reflect-pad every spatial side of ``[N, C, *spatial]`` up to a multiple of ``multiple``.

    Each level of the U-Net halves the sides; returns the padded tensor and the original sides.
    """
    sides = tuple(x.shape[2:])
    pads = [(-side) % multiple for side in sides]
    if any(pads):
        mode = "reflect" if all(p < s for p, s in zip(pads, sides, strict=True)) else "replicate"
        x = F.pad(x, [amount for pad in reversed(pads) for amount in (0, pad)], mode=mode)
    return x, sides


def _pad_end(x: torch.Tensor, pads: list[int]) -> torch.Tensor:
    if not any(pads):
        return x
    sides = x.shape[2:]
    mode = "reflect" if all(p < s for p, s in zip(pads, sides, strict=True)) else "replicate"
    return F.pad(x, [amount for pad in reversed(pads) for amount in (0, pad)], mode=mode)


def tiled_sides(sides: tuple[int, ...], tiling: Tiling) -> tuple[int, ...]:
    """The padded sides that ``tiling`` covers exactly: one tile, then whole strides."""
    return tuple(tiling.size + -(-max(side - tiling.size, 0) // tiling.stride) * tiling.stride for side in sides)


def tiles_per_image(sides: tuple[int, ...], tiling: Tiling) -> int:
    count = 1
    for side in tiled_sides(sides, tiling):
        count *= (side - tiling.size) // tiling.stride + 1
    return count


def to_tiles(x: torch.Tensor, tiling: Tiling) -> torch.Tensor:
    """``[N, C, H, W]`` → ``[N·L, C, t, t]``: the image padded (reflected) to cover, cut into L tiles."""
    if x.dim() != 4:
        raise ValueError(f"test-time tiling is for 2-D images [N, C, H, W]; got a {x.dim() - 2}-D input")
    n, channels = x.shape[:2]
    padded = tiled_sides(tuple(x.shape[2:]), tiling)
    x = _pad_end(x, [p - s for p, s in zip(padded, x.shape[2:], strict=True)])
    t = tiling.size
    columns = F.unfold(x, kernel_size=t, stride=tiling.stride)  # [N, C·t·t, L]
    return columns.transpose(1, 2).reshape(-1, channels, t, t)


def from_tiles(tiles: torch.Tensor, n: int, sides: tuple[int, ...], tiling: Tiling) -> torch.Tensor:
    """Tile outputs ``[N·L, K, t, t]`` → ``[N, K, H, W]``, overlapping outputs averaged, padding cut off."""
    padded = tiled_sides(sides, tiling)
    t = tiling.size
    channels = tiles.shape[1]
    columns = tiles.reshape(n, -1, channels * t * t).transpose(1, 2)
    summed = F.fold(columns, padded, kernel_size=t, stride=tiling.stride)
    if tiling.stride < t:  # overlaps: divide by how many tiles cover each pixel
        ones = torch.ones((1, 1, *padded), dtype=summed.dtype, device=summed.device)
        covered = F.fold(F.unfold(ones, kernel_size=t, stride=tiling.stride), padded, kernel_size=t,
                         stride=tiling.stride)
        summed = summed / covered
    return summed[(..., *(slice(0, side) for side in sides))]


def sample_metrics(
    bundle: DatasetBundle, sample: Sample, output: torch.Tensor, noisy: np.ndarray,
    decision_threshold: float | None = None,
):
    """Metrics of one sample from the network's raw output ``[K, *spatial]``; returns (metrics, prediction)."""
    from bench_suite.metrics.denoising import denoising_metrics
    from bench_suite.metrics.segmentation import binary_segmentation_metrics, multiclass_iou
    from bench_suite.metrics.volume import mean_over_classes, volume_metrics

    task = bundle.task
    if task.kind == "segmentation":
        if task.n_classes == 2 and output.shape[0] == 1:  # one foreground logit (binary losses)
            threshold = 0.5 if decision_threshold is None else decision_threshold
            prediction = (torch.sigmoid(output[0]) > threshold).long().numpy()
        elif decision_threshold is not None and task.n_classes == 2:
            prediction = (torch.softmax(output, 0)[1] > decision_threshold).long().numpy()
        else:
            prediction = output.argmax(0).numpy()
        if task.spatial_dims == 3:
            spacing = getattr(sample, "spacing", (1.0, 1.0, 1.0))
            orientation = getattr(sample, "orientation", None)  # names the axial axis of dice_2d
            if task.n_classes == 2:
                metrics = volume_metrics(prediction, sample.target, spacing, orientation)
            else:
                metrics = mean_over_classes(prediction, sample.target, spacing, range(1, task.n_classes),
                                            orientation)
        elif task.n_classes == 2:
            metrics = binary_segmentation_metrics(prediction, sample.target, sample.fov)
        else:
            # per-class counts are stored too, so that reports get the dataset-level mIoU from one
            # confusion matrix over the test set beside the per-image mean
            metrics = multiclass_iou(prediction, sample.target, task.n_classes, sample.fov,
                                     ignore_label=getattr(task, "ignore_label", None), with_counts=True)
        return metrics, prediction.astype(np.uint8)
    denoised = np.clip(noisy - output.numpy(), 0.0, 1.0)
    return denoising_metrics(sample.image, denoised), denoised


def network_device(network: torch.nn.Module) -> torch.device:
    """The device a network's weights are on (the CPU for one without any)."""
    for tensor in itertools.chain(network.parameters(), network.buffers()):
        return tensor.device
    return torch.device("cpu")


def evaluate(
    trained: TrainedNetwork, bundle: DatasetBundle, multiple: int, batch_size: int, progress=None,
    who: str = "network", precision: str = "fp32", tile_batch: int = 128,
) -> Evaluation:
    """Predict every test sample (grouped by shape into batches), score it, gather spike statistics.

    Whole images go ``batch_size`` at a time, padded to ``multiple``; with ``bundle.test_tiling`` each image
    is cut into tiles that go ``tile_batch`` at a time and the outputs are put back together.

    Networks of the trainer's intermediate stages (``trained.stages``) are scored too, their metrics
    named ``stage/metric`` (e.g. ``converted/dice``).
    """
    result = _evaluate_one(trained, bundle, multiple, batch_size, progress, who, precision, tile_batch)
    for stage, network in trained.stages.items():
        extra = _evaluate_one(network, bundle, multiple, batch_size, None, f"{who} ({stage})", precision,
                              tile_batch)
        result.sample_metrics.extend((s, f"{stage}/{m}", v) for s, m, v in extra.sample_metrics)
    return result


def _evaluate_one(
    trained: TrainedNetwork, bundle: DatasetBundle, multiple: int, batch_size: int, progress, who: str,
    precision: str = "fp32", tile_batch: int = 128,
) -> Evaluation:
    groups: dict[tuple[int, ...], list[Sample]] = defaultdict(list)
    for sample in bundle.test:
        groups[sample.image.shape].append(sample)
    if trained.spiking is not None:
        trained.spiking.restart_coding()  # the same test spikes whatever ran before
    advance = progress.stage("evaluate", len(bundle.test)) if progress else (lambda n=1: None)
    rows: list[tuple[str, str, float]] = []
    predictions: dict[str, np.ndarray] = {}
    totals: dict[str, dict] = {}
    device = network_device(trained.network)
    tiling = bundle.test_tiling
    if tiling and tiling.size % multiple:
        raise PluginContractError(f"{bundle.name}'s test tile of {tiling.size} pixels is not a multiple of "
                                  f"{multiple}, which the model needs; choose a tile size that is")
    with torch.inference_mode():
        for shape, samples in groups.items():
            # tiled: batch_size whole images at a time are cut into tiles, which go tile_batch at a time
            # (across image borders, so that only the last pass of a chunk is short)
            per_image = tiles_per_image(shape[1:], tiling) if tiling else 1
            for start in range(0, len(samples), batch_size):
                chunk = samples[start : start + batch_size]
                inputs = [network_input(s, bundle) for s in chunk]
                stacked = torch.from_numpy(np.stack(inputs)).float()  # device: moved below
                if tiling:
                    output = _tiled_forward(trained, stacked, tiling, tile_batch, device, precision, bundle, who,
                                            totals, per_image)
                else:
                    x, sides = pad_to_multiple(stacked, multiple)
                    x = x.to(device, non_blocking=True)
                    with autocast(device, precision):
                        output = trained(x, record="stats")
                    check_output(output, x, bundle.task, who)
                    output = output[(..., *(slice(0, side) for side in sides))]
                    if trained.spiking is not None:
                        accumulate_layer_stats(trained, len(chunk), totals)
                # metrics are computed on the CPU in fp32, whatever the network ran on
                output = output.float().cpu()
                for sample, noisy, out in zip(chunk, inputs, output, strict=True):
                    metrics, prediction = sample_metrics(bundle, sample, out, noisy, trained.decision_threshold)
                    rows.extend((sample.id, name, float(value)) for name, value in metrics.items())
                    predictions[sample.id] = prediction
                advance(len(chunk))
    if not rows:
        raise PluginContractError(f"{who} produced no metrics: the dataset has no test samples")
    return Evaluation(rows, list(totals.values()), predictions)


def _tiled_forward(trained, images: torch.Tensor, tiling: Tiling, tile_batch: int, device, precision: str,
                   bundle: DatasetBundle, who: str, totals: dict[str, dict], per_image: int) -> torch.Tensor:
    tiles = to_tiles(images, tiling)
    outputs = []
    for start in range(0, len(tiles), tile_batch):
        x = tiles[start : start + tile_batch].to(device, non_blocking=True)
        with autocast(device, precision):
            out = trained(x, record="stats")
        check_output(out, x, bundle.task, who)
        outputs.append(out.float())
        if trained.spiking is not None:
            accumulate_layer_stats(trained, len(x), totals, tiles_per_sample=per_image)
    return from_tiles(torch.cat(outputs), len(images), tuple(images.shape[2:]), tiling)


def accumulate_layer_stats(trained: TrainedNetwork, batch: int, totals: dict[str, dict],
                           tiles_per_sample: int = 1) -> None:
    """Add one forward pass of ``batch`` inputs; with tiling, inputs are tiles and a sample (an image) is
    ``tiles_per_sample`` of them, so that neurons and events stay per image."""
    for name, neuron in trained.spiking.neurons():
        per_input = int(neuron.v.numel() // batch) if torch.is_tensor(neuron.v) else 0
        neurons_per_sample = per_input * tiles_per_sample
        entry = totals.setdefault(name, {
            "layer": name, "kind": type(neuron).__name__, "neurons": neurons_per_sample,
            "time_steps": trained.time_steps, "events": 0.0, "spikes": 0.0, "samples": 0,
            "synops": float("nan"),
        })
        entry["events"] += float(neuron.events)
        entry["spikes"] += float(neuron.spikes)
        entry["samples"] += batch / tiles_per_sample
        total = entry["neurons"] * entry["time_steps"] * entry["samples"]
        entry["firing_rate"] = entry["spikes"] / total if total else float("nan")
