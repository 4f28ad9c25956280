"""Trainer ``ann``: train the ANN U-Net (shared by every method that converts it) and evaluate it."""

from __future__ import annotations

import torch
from torch import nn

from bench_suite.spec import Profile
from bench_suite.tasks import DatasetBundle
from bench_suite.trainers.common import CellContext, TrainedNetwork, TrainingPatches, task_loss


def train_ann(
    model: nn.Module, bundle: DatasetBundle, profile: Profile, seed: int, log_curve, progress,
    loss_name: str | None = None,
) -> nn.Module:
    """Reference: RMSprop lr 1e-3 (segmentation) / Adam with L1 on the noise (denoising), batch 8.

    The paper profile uses those; smoke and quick use Adam for both, which converges in the few epochs
    a CPU allows.
    """
    patches = TrainingPatches(bundle, profile, seed)
    if profile.name == "paper" and bundle.task.kind == "segmentation":
        optimizer = torch.optim.RMSprop(model.parameters(), lr=profile.ann_lr)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=profile.ann_lr)
    advance = progress.stage("train ANN", profile.ann_epochs * len(patches))
    model.train()
    for epoch in range(profile.ann_epochs):
        total, count = 0.0, 0
        for x, y in patches.batches(epoch):
            optimizer.zero_grad(set_to_none=True)
            loss = task_loss(bundle.task, model(x), y, loss_name)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"ANN training diverged at epoch {epoch + 1} (loss {loss.item()})")
            loss.backward()
            optimizer.step()
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

    def run(self, ctx: CellContext) -> TrainedNetwork:
        return TrainedNetwork(ctx.get_ann())
