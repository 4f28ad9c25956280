"""The trainers' toolkit: training patches and batches, the epoch loop, task losses, output checks, conversion."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import numpy as np
import torch

from bench_suite.core.contracts import TrainerContext
from bench_suite.core.errors import PluginContractError
from bench_suite.core.losses import make_loss
from bench_suite.core.profiles import Profile
from bench_suite.core.tasks import DatasetBundle, Task, sample_patches, stable_seed
from bench_suite.snn.convert import analyse, build_spiking_network
from bench_suite.snn.network import SpikingNetwork


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
    ctx: TrainerContext, patches: TrainingPatches, epochs: int, stage: str, description: str,
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


def convert(ctx: TrainerContext, calibration: torch.Tensor) -> SpikingNetwork:
    """Trained ANN → normalized → spiking network with the cell's neuron."""
    ann = ctx.get_ann()
    structure = analyse(ann, calibration)
    normalized = ctx.norm.normalize(structure, calibration, cache=ctx.calibration_cache, make_neuron=ctx.make_neuron)
    ctx.info["scales"] = normalized.scales
    network = build_spiking_network(structure, normalized.graph, ctx.make_neuron, normalized.thresholds)
    return network.eval()
