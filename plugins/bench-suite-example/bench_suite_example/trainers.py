"""A training method as a bench-suite trainer plugin: sgd-finetune.

Convert the trained ANN with the cell's norm and neuron, then fine-tune the spiking network with
accumulated spiking flow (ASF, the built-in ``asf`` trainer's update step), but with SGD with momentum
and a cosine learning-rate schedule (annealed per batch to 0 over all fine-tuning batches) instead of
Adam at a constant rate. Everything comes from the public toolkit: ``TrainingPatches``, ``convert`` and
``train_epochs`` (:mod:`bench_suite.snn.training`) and ``asf_step`` (:mod:`bench_suite.trainers.asf`).

``convert`` works on a copy of the shared ANN (``ctx.get_ann()`` is cached for every cell of the
dataset × model × seed), so fine-tuning changes only this cell's spiking network.
"""

from __future__ import annotations

import dataclasses

import torch

from bench_suite.core.contracts import TrainerContext
from bench_suite.snn.network import TrainedNetwork
from bench_suite.snn.training import TrainingPatches, batches_per_epoch, convert, train_epochs
from bench_suite.trainers.asf import asf_step


@dataclasses.dataclass(frozen=True)
class SGDFinetuneParams:
    lr: float = 1e-3  # initial learning rate, annealed to 0 with a cosine
    momentum: float = 0.9
    epochs: int = 0  # 0: the profile's ASF fine-tuning epochs (asf_epochs)

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.epochs < 0:
            raise ValueError(f"epochs must not be negative (0 means the profile's value), got {self.epochs}")


class SGDFinetuneTrainer:
    """Convert, then ASF fine-tuning with SGD + momentum and a cosine learning-rate schedule."""

    Params = SGDFinetuneParams
    # the cells differ by neuron, norm and T (all three are used); ctx.make_neuron and ctx.norm are set
    uses = frozenset({"neuron", "norm", "T"})

    def __init__(self, params: SGDFinetuneParams | None = None) -> None:
        self.params = params or SGDFinetuneParams()

    def run(self, ctx: TrainerContext) -> TrainedNetwork:
        patches = TrainingPatches(ctx.bundle, ctx.profile, ctx.seed)
        network = convert(ctx, patches.calibration(ctx.profile.calibration_samples))  # a copy of the ANN
        epochs = self.params.epochs or ctx.profile.asf_epochs
        max_batches = ctx.profile.max_train_batches
        per_epoch = batches_per_epoch(patches, max_batches)
        optimizer = torch.optim.SGD(network.parameters(), lr=self.params.lr, momentum=self.params.momentum)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs * per_epoch))
        epoch = [0]

        def step(x: torch.Tensor, y: torch.Tensor) -> float:
            loss = asf_step(network, x, y, ctx.time_steps, ctx.bundle.task, optimizer)
            schedule.step()
            return loss

        def after_epoch(mean_loss: float) -> None:  # train_epochs logs the loss; add the learning rate
            epoch[0] += 1
            ctx.log_curve("sgd-finetune", epoch[0], "lr", schedule.get_last_lr()[0])

        torch.manual_seed(ctx.seed)
        train_epochs(ctx, patches, epochs, "sgd-finetune", "SGD ASF fine-tune", step, 3000,
                     after_epoch=after_epoch, max_batches=max_batches)
        ctx.info["sgd_finetune"] = {"lr": self.params.lr, "momentum": self.params.momentum, "epochs": epochs}
        return TrainedNetwork(network.eval(), ctx.time_steps)
