"""The trainers' toolkit: training patches and batches, the epoch loop, task losses, output checks, conversion."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator, Sized

import numpy as np
import torch
from torch import nn

from bench_suite.core.contracts import TrainerContext
from bench_suite.core.errors import PluginContractError
from bench_suite.core.losses import make_loss
from bench_suite.core.neuron import SpikingNeuron
from bench_suite.core.profiles import Augment, Profile
from bench_suite.core.tasks import DatasetBundle, Task, sample_patches, stable_seed
from bench_suite.snn.convert import analyse, build_spiking_network
from bench_suite.snn.network import SpikingNetwork

#: training patches stay on a GPU when they take at most this share of its free memory
DEVICE_SHARE = 0.25


#: the batch stream of :meth:`TrainingPatches.validation` (training loops use streams ≥ 0)
VALIDATION_STREAM = -1


class TrainingPatches:
    """Training patches sampled once from the seed; batches reshuffled (and re-noised) every epoch.

    On a GPU the patches are kept in device memory where they fit (at most a quarter of the free memory:
    every batch is then an index into it, nothing crosses the bus); otherwise they stay in pinned host
    memory and a ``DataLoader`` copies each batch asynchronously (``placement`` says which). The batch
    order and the denoising noise are drawn on the CPU from the seed, so every device sees the same
    batches and the same noise.
    """

    def __init__(self, bundle: DatasetBundle, profile: Profile, seed: int, device: torch.device | str | None = None,
                 augment: Augment = "none") -> None:
        self.task = bundle.task
        self.augment = augment
        self.device = torch.device(device) if device is not None else torch.device("cpu")
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
        self.images = torch.from_numpy(images)  # device: a host copy, moved below where it fits
        self.targets = torch.from_numpy(targets) if targets is not None else None  # device: as images
        self.placement = "host"
        if self.device.type != "cpu":
            size = self.images.nbytes + (self.targets.nbytes if self.targets is not None else 0)
            free = torch.cuda.mem_get_info(self.device)[0] if self.device.type == "cuda" else 0
            if self.device.type != "cuda" or size <= DEVICE_SHARE * free:
                self.images = self.images.to(self.device)
                self.targets = self.targets.to(self.device) if self.targets is not None else None
                self.placement = "device"
            else:
                self.images = self.images.pin_memory()
                self.targets = self.targets.pin_memory() if self.targets is not None else None
                self.placement = "pinned host"
        self.batch_size = profile.batch_size
        self.seed = seed
        #: cross-entropy class weights from these patches' labels (profile ``class_weighting``), or None
        self.class_weights = None
        if profile.class_weighting == "median-frequency" and self.targets is not None:
            self.class_weights = median_frequency_weights(self.targets, bundle.task.n_classes).to(self.device)

    @classmethod
    def for_cell(cls, ctx: TrainerContext) -> TrainingPatches:
        """The cell's training patches, on the cell's device."""
        return cls(ctx.bundle, ctx.profile, ctx.seed, ctx.device)

    def __len__(self) -> int:
        return (len(self.images) + self.batch_size - 1) // self.batch_size

    def _order(self, generator: torch.Generator) -> list[torch.Tensor]:
        order = torch.randperm(len(self.images), generator=generator)  # device: CPU, the same order on every device
        return [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # device: a CPU stream for the order and the noise, the same on every device
        generator = torch.Generator().manual_seed(stable_seed("batches", self.seed, epoch))
        chunks = self._order(generator)
        if self.placement == "pinned host":
            dataset = torch.utils.data.TensorDataset(*(t for t in (self.images, self.targets) if t is not None))
            loader = torch.utils.data.DataLoader(dataset, batch_sampler=[c.tolist() for c in chunks],
                                                 pin_memory=False)  # the tensors are pinned already
            for tensors in loader:
                images = tensors[0].to(self.device, non_blocking=True)
                targets = tensors[1].to(self.device, non_blocking=True) if len(tensors) > 1 else None
                yield make_input_target(self.task, *self._augmented(images, targets, generator), generator)
            return
        for index in chunks:
            index = index.to(self.images.device)
            images, targets = self._augmented(self.images[index], None if self.targets is None else self.targets[index],
                                              generator)
            yield make_input_target(self.task, images, targets, generator)

    def _augmented(self, images: torch.Tensor, targets: torch.Tensor | None, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.augment == "none":
            return images, targets
        return dihedral(images, targets, generator)

    def validation(self, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``count`` fixed batches (inputs, targets) from a stream of their own, the same whatever trained
        before: a trainer compares its network before and after fine-tuning on them."""
        return list(itertools.islice(self.batches(VALIDATION_STREAM), count))

    def calibration(self, count: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(stable_seed("calibration", self.seed))  # device: CPU, as batches
        index = torch.randperm(len(self.images), generator=generator)[:count].to(self.images.device)  # device: CPU draw
        images = self.images[index].to(self.device)
        targets = None if self.targets is None else self.targets[index].to(self.device)
        x, _ = make_input_target(self.task, images, targets, generator)
        return x


class MixedPrecision:
    """Autocast and (for fp16) loss scaling for one training loop: ``with amp.autocast(): loss = ...`` then
    ``amp.step(loss, optimizer)``. fp32 is a plain backward and step."""

    def __init__(self, device: torch.device | str = "cpu", precision: str = "fp32") -> None:
        self.device = torch.device(device)
        self.precision = precision
        dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.dtype = dtype
        self.scaler = torch.amp.GradScaler(self.device.type) if precision == "fp16" else None

    @classmethod
    def for_cell(cls, ctx: TrainerContext) -> MixedPrecision:
        return cls(ctx.device, ctx.precision)

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, clip_norm: float = 0.0) -> None:
        """Backward and step; ``clip_norm`` > 0 first rescales the gradients of all the optimizer's
        parameters together to at most that L2 norm (on the unscaled gradients under fp16)."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()
        if clip_norm:
            if self.scaler is not None:
                self.scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()


FP32 = MixedPrecision()


def batches_per_epoch(patches: Sized, max_batches: int = 0) -> int:
    """The batches an epoch of ``train_epochs`` trains on under the cap ``max_batches`` (0: all of them)."""
    return min(len(patches), max_batches) if max_batches else len(patches)


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
    per_epoch = batches_per_epoch(patches, max_batches)
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


def learning_rate_schedule(optimizer: torch.optim.Optimizer, schedule: str, batches: int):
    """The per-batch scheduler of ``schedule`` over ``batches`` batches: ``cosine`` decays the rate to 0,
    ``onecycle`` warms up to it and decays; None for the rest (a constant rate, or a per-epoch plateau
    schedule that the caller steps itself)."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, batches))
    if schedule == "onecycle":
        # max_lr is the profile's rate; it starts at max_lr/25 and ends near 0 (PyTorch's defaults)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=optimizer.param_groups[0]["lr"],
                                                   total_steps=max(2, batches), pct_start=0.3)
    return None


def dihedral(images: torch.Tensor, targets: torch.Tensor | None, generator: torch.Generator
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each sample turned by its own draw of the 8 symmetries of the square (quarter turns of the last two
    axes, then a flip of the last); where those axes differ in length only the flip is drawn. Targets (class
    maps without the channel axis) are turned with their images."""
    square = images.shape[-1] == images.shape[-2]
    codes = torch.randint(0, 8 if square else 2, (len(images),), generator=generator)  # device: CPU, as the order
    images, targets = images.clone(), None if targets is None else targets.clone()
    for code in codes.unique().tolist():
        turns, flip = (code % 4, code // 4) if square else (0, code)
        if turns == 0 and flip == 0:
            continue
        chosen = (codes == code).nonzero().flatten().to(images.device)
        for tensor in (images, targets):
            if tensor is None:
                continue
            part = torch.rot90(tensor[chosen], turns, dims=(-2, -1))
            tensor[chosen] = part.flip(-1) if flip else part
    return images, targets


def make_input_target(
    task: Task, images: torch.Tensor, targets: torch.Tensor | None, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Segmentation: (image, class map). Denoising: (image + noise, noise) — the network predicts the noise."""
    if task.kind == "segmentation":
        return images, targets
    # drawn on the CPU from the seed: every device trains on the same noise
    noise = torch.randn(images.shape, generator=generator)  # device: CPU draw, the same noise on every device
    noise = (noise * (task.noise_sigma / 255.0)).to(images.device)
    return images + noise, noise


def task_loss(task: Task, output: torch.Tensor, target: torch.Tensor, loss: str | None = None,
              class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The named loss, or the reference's: cross-entropy for segmentation, L1 to the noise for denoising.
    ``class_weights`` (see :func:`median_frequency_weights`) weigh the cross-entropy; the binary losses of
    the three-stage study and L1 have no class weights and ignore them."""
    name = loss or ("ce" if task.kind == "segmentation" else "l1")
    if name == "ce" and class_weights is not None:
        return make_loss(name)(output, target, class_weights)
    return make_loss(name)(output, target)


def median_frequency_weights(targets: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Median-frequency balancing (Eigen & Fergus 2015): w_c = median_k f_k / f_c, where f_c is class c's
    pixels over all pixels of the samples (patches, volumes) that contain c, the median taken over the
    classes present (the lower middle value for an even count: the weighted-mean cross-entropy divides by
    the weights it met, so only their ratios matter). A class absent from ``targets`` gets weight 1.
    ``targets``: integer class maps ``[N, ...]``; returns float32 ``[n_classes]`` on the targets' device."""
    flat = targets.reshape(len(targets), -1).long()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= n_classes):
        raise ValueError(f"class maps hold values outside 0 … {n_classes - 1}; check the dataset's labels")
    offsets = torch.arange(len(flat), device=flat.device).unsqueeze(1) * n_classes  # one bincount for all samples
    per_sample = torch.bincount((flat + offsets).flatten(), minlength=len(flat) * n_classes)
    per_sample = per_sample.view(len(flat), n_classes).double()
    pixels = per_sample.sum(0)
    present = per_sample.gt(0).double().mul(flat.shape[1]).sum(0)  # pixels of the samples that contain c
    seen = pixels > 0
    weights = torch.ones(n_classes, dtype=torch.float64, device=targets.device)
    if seen.any():
        frequency = pixels[seen] / present[seen]
        weights[seen] = frequency.median() / frequency
    return weights.float()


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


def conversion_neurons(make_neuron):
    """The cell's neuron factory for a converted network: each threshold the norm sets passes through the
    neuron class's ``converted_threshold`` (ML: θ/K), for the norm's own simulations too."""
    probe = make_neuron(1.0, 1)
    kind, params = type(probe), probe.params
    if kind.converted_threshold.__func__ is SpikingNeuron.converted_threshold.__func__:
        return make_neuron
    return lambda threshold, channels: make_neuron(kind.converted_threshold(threshold, params), channels)


def convert(ctx: TrainerContext, calibration: torch.Tensor) -> SpikingNetwork:
    """Trained ANN → normalized → spiking network with the cell's neuron, on the calibration's device."""
    ann = ctx.get_ann()
    make_neuron = conversion_neurons(ctx.make_neuron)
    with ctx.stage("calibration"):
        structure = analyse(ann, calibration)
        normalized = ctx.norm.normalize(structure, calibration, cache=ctx.calibration_cache, make_neuron=make_neuron)
        ctx.info["scales"] = normalized.scales
        network = build_spiking_network(structure, normalized.graph, make_neuron, normalized.thresholds)
    return network.to(calibration.device).eval()


def init_foreground_prior(model: nn.Module, patches: TrainingPatches) -> None:
    """A binary segmentation head starts at the training foreground fraction π (Lin et al. 2017).

    One logit: bias = log(π / (1 − π)); two class logits: biases (0, log(π / (1 − π))), so that the
    softmax starts at π too. Without it the Dice loss on the hippocampus (π = 3.7 %) settled on
    "everything is foreground" (ANN Dice 0.07 after 12 epochs; 0.84 after 4 with it), and the smoke
    profile's vessel U-Net (π ≈ 12 %) predicted all background or all foreground (F1 0.00 or 0.19 after
    15 epochs; 0.70 with it). Multi-class and denoising heads are left as built."""
    head = getattr(model, "head", None)
    if patches.targets is None or not isinstance(head, nn.modules.conv._ConvNd) or head.bias is None:
        return
    if head.out_channels not in (1, 2) or int(patches.targets.max()) > 1:
        return
    fraction = float((patches.targets > 0).float().mean().clamp(1e-4, 1 - 1e-4))
    with torch.no_grad():
        if head.out_channels == 1:
            head.bias.fill_(math.log(fraction / (1 - fraction)))
        else:
            head.bias.copy_(torch.tensor([0.0, math.log(fraction / (1 - fraction))], device=head.bias.device))
