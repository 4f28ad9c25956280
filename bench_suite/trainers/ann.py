"""Trainer ``ann``: train the ANN U-Net (shared by every method that converts it) and evaluate it."""

from __future__ import annotations

import torch
from torch import nn

from bench_suite.core.contracts import TrainerContext
from bench_suite.core.profiles import Profile
from bench_suite.core.tasks import DatasetBundle
from bench_suite.snn.network import TrainedNetwork
from bench_suite.snn.training import (
    MixedPrecision,
    TrainingPatches,
    init_foreground_prior,
    learning_rate_schedule,
    task_loss,
)

OPTIMIZERS = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}


def train_ann(
    model: nn.Module, bundle: DatasetBundle, profile: Profile, seed: int, log_curve, progress,
    loss_name: str | None = None, precision: str = "fp32",
) -> nn.Module:
    """Train ``model`` on the bundle's training patches with the profile's ANN settings.

    Reference: RMSprop lr 1e-3 (segmentation) / Adam with L1 on the noise (denoising), batch 8: the paper
    profile's ``ann_optimizer`` and ``ann_optimizer_denoising``. Smoke and quick use Adam for both, which
    converges in the few epochs a CPU allows. The model trains on the device it is on, under autocast for
    ``precision`` bf16 or fp16 (with loss scaling for fp16). ``ann_schedule`` sets the rate per batch,
    ``ann_augment`` turns each patch by a random symmetry of the square and ``class_weighting`` weighs the
    cross-entropy by class (all three off in the reference).
    """
    device = next(model.parameters()).device
    amp = MixedPrecision(device, precision)
    patches = TrainingPatches(bundle, profile, seed, device, augment=profile.ann_augment)
    init_foreground_prior(model, patches)
    name = profile.ann_optimizer if bundle.task.kind == "segmentation" else profile.ann_optimizer_denoising
    optimizer = OPTIMIZERS[name](model.parameters(), lr=profile.ann_lr)
    scheduler = learning_rate_schedule(optimizer, profile.ann_schedule, profile.ann_epochs * len(patches))
    advance = progress.stage("train ANN", profile.ann_epochs * len(patches))
    model.train()
    for epoch in range(profile.ann_epochs):
        total, count = 0.0, 0
        for x, y in patches.batches(epoch):
            optimizer.zero_grad(set_to_none=True)
            with amp.autocast():
                loss = task_loss(bundle.task, model(x), y, loss_name, patches.class_weights)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"ANN training diverged at epoch {epoch + 1} (loss {loss.item()})")
            amp.step(loss, optimizer)
            if scheduler is not None:
                scheduler.step()
            total += loss.item() * len(x)
            count += len(x)
            advance(1)
        log_curve("ann", epoch + 1, "loss", total / count)
    return model.eval()


class ANNTrainer:
    """The ANN U-Net itself: trained once per dataset × model × seed × profile and reused by conversions."""

    Params = None
    uses = frozenset()

    def __init__(self, params=None) -> None:
        self.params = params

    def run(self, ctx: TrainerContext) -> TrainedNetwork:
        return TrainedNetwork(ctx.get_ann())
