"""What trainers share: the context a runner hands them, training batches, task losses, conversion."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from bench_suite.convert import SpikingNetwork, analyse, build_spiking_network
from bench_suite.errors import PluginContractError
from bench_suite.losses import make_loss
from bench_suite.neurons.base import SpikingNeuron
from bench_suite.spec import Cell, Profile
from bench_suite.tasks import DatasetBundle, Task, sample_patches, stable_seed


class NullProgress:
    """Progress sink used when nobody watches (tests, library use)."""

    def stage(self, description: str, total: int) -> Callable[[int], None]:
        return lambda advance=1: None


@dataclasses.dataclass
class CellContext:
    """Everything a trainer may use for one cell; built by the runner."""

    cell: Cell
    bundle: DatasetBundle
    profile: Profile
    model_plugin: Any
    get_ann: Callable[..., nn.Module]  # get_ann(loss=None): the trained ANN, cached per loss
    make_neuron: Callable[[float], SpikingNeuron] | None
    norm: Any | None
    calibration_cache: Any | None
    progress: Any = dataclasses.field(default_factory=NullProgress)
    curves: list[tuple[str, int, str, float]] = dataclasses.field(default_factory=list)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.cell.seed

    @property
    def time_steps(self) -> int:
        return self.cell.time_steps

    def log_curve(self, stage: str, epoch: int, metric: str, value: float) -> None:
        self.curves.append((stage, epoch, metric, float(value)))


@dataclasses.dataclass
class TrainedNetwork:
    """A trainer's result: the ANN, or a spiking network evaluated at ``time_steps``."""

    network: nn.Module
    time_steps: int = 0
    decision_threshold: float | None = None  # binary segmentation: P(foreground) above this is foreground
    stages: dict[str, TrainedNetwork] = dataclasses.field(default_factory=dict)  # evaluated too, as stage/metric

    def __post_init__(self) -> None:
        if self.spiking is not None:
            self.spiking.finalize()

    @property
    def spiking(self) -> SpikingNetwork | None:
        return self.network if isinstance(self.network, SpikingNetwork) else None

    def __call__(self, x: torch.Tensor, record: bool | str = False) -> torch.Tensor:
        if self.spiking is not None:
            return self.spiking.simulate(x, self.time_steps, record=record)
        return self.network(x)


class TrainingPatches:
    """Training patches sampled once from the seed; batches reshuffled (and re-noised) every epoch."""

    def __init__(self, bundle: DatasetBundle, profile: Profile, seed: int) -> None:
        self.task = bundle.task
        rng = np.random.default_rng(stable_seed("patches", seed))
        if bundle.task.spatial_dims == 3:
            # volumes are boxed to one shape by their loader and trained whole, as in the reference
            images = np.stack([s.image for s in bundle.train]).astype(np.float32)
            targets = np.stack([s.target for s in bundle.train]).astype(np.int64)
        else:
            per_image = profile.patches_per_image
            if profile.max_patches:
                per_image = max(1, min(per_image, profile.max_patches // max(1, len(bundle.train))))
            images, targets = sample_patches(bundle.train, per_image, bundle.patch_size, rng)
        self.images = torch.from_numpy(images)
        self.targets = torch.from_numpy(targets) if targets is not None else None
        self.batch_size = profile.batch_size
        self.seed = seed

    def __len__(self) -> int:
        return (len(self.images) + self.batch_size - 1) // self.batch_size

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(stable_seed("batches", self.seed, epoch))
        order = torch.randperm(len(self.images), generator=generator)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield make_input_target(self.task, self.images[index],
                                    None if self.targets is None else self.targets[index], generator)

    def calibration(self, count: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(stable_seed("calibration", self.seed))
        index = torch.randperm(len(self.images), generator=generator)[:count]
        x, _ = make_input_target(self.task, self.images[index],
                                 None if self.targets is None else self.targets[index], generator)
        return x


def train_epochs(
    ctx: CellContext, patches: TrainingPatches, epochs: int, stage: str, description: str,
    step: Callable[[torch.Tensor, torch.Tensor], float], batch_stream: int,
    after_epoch: Callable[[float], None] | None = None, max_batches: int = 0,
) -> None:
    """The epoch loop every trainer shares: batches, progress, the mean loss per epoch as a curve.

    ``batch_stream`` keeps each method's batch order its own (and the same for a seed). ``max_batches``
    (0: all) ends an epoch early; the batch order is reshuffled each epoch, so the cut takes a different
    random part of the training set every time.
    """
    per_epoch = min(len(patches), max_batches) if max_batches else len(patches)
    advance = ctx.progress.stage(description, epochs * per_epoch)
    for epoch in range(epochs):
        total, count = 0.0, 0
        for x, y in itertools.islice(patches.batches(batch_stream + epoch), per_epoch):
            total += step(x, y) * len(x)
            count += len(x)
            advance(1)
        ctx.log_curve(stage, epoch + 1, "loss", total / count)
        if after_epoch is not None:
            after_epoch(total / count)


def make_input_target(
    task: Task, images: torch.Tensor, targets: torch.Tensor | None, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Segmentation: (image, class map). Denoising: (image + noise, noise) — the network predicts the noise."""
    if task.kind == "segmentation":
        return images, targets
    noise = torch.randn(images.shape, generator=generator) * (task.noise_sigma / 255.0)
    return images + noise, noise


def task_loss(task: Task, output: torch.Tensor, target: torch.Tensor, loss: str | None = None) -> torch.Tensor:
    """The named loss, or the reference's: cross-entropy for segmentation, L1 to the noise for denoising."""
    name = loss or ("ce" if task.kind == "segmentation" else "l1")
    return make_loss(name)(output, target)


def check_output(output: torch.Tensor, batch: torch.Tensor, task: Task, who: str) -> None:
    """A plugin that returns the wrong shape or NaN fails its cell with one clear sentence."""
    expected = (batch.shape[0], task.out_channels, *batch.shape[2:])
    binary_head = task.kind == "segmentation" and task.n_classes == 2 and output.shape[1:2] == (1,)
    if tuple(output.shape) != expected and not (binary_head and tuple(output.shape[2:]) == expected[2:]):
        raise PluginContractError(
            f"{who} returned an output of shape {tuple(output.shape)}, expected {expected}; "
            "check the plugin's forward"
        )
    if not torch.isfinite(output).all():
        raise PluginContractError(f"{who} produced NaN or infinite values; check the plugin's dynamics")


def convert(ctx: CellContext, calibration: torch.Tensor) -> SpikingNetwork:
    """Trained ANN → normalized → spiking network with the cell's neuron."""
    ann = ctx.get_ann()
    structure = analyse(ann, calibration)
    normalized = ctx.norm.normalize(structure, calibration, ctx.calibration_cache)
    ctx.info["scales"] = normalized.scales
    network = build_spiking_network(structure, normalized.graph, ctx.make_neuron, normalized.thresholds)
    return network.eval()
