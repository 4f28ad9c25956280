"""Trainer ``asf``: convert, then fine-tune with accumulated spiking flow (Spiking-UNet, after Wu 2021).

Per batch: (1) simulate T steps without gradients, each neuron recording its accumulated input and
output; (2) one differentiable non-temporal pass in which a neuron's value is its output rate and its
gradient the identity gated by (accumulated input > 0), the head reading the rate; (3) one backward.
Nothing is kept per time step, so memory does not grow with T.

Fine-tuning can make a converted network worse (a learning rate too high for the task, rare classes):
the loss on a fixed set of training batches is measured before fine-tuning and after each epoch, and by
default the network of the lowest loss is kept (``keep=best``; epoch 0 is the converted network). The
losses and the kept epoch are stored with the cell (``info["asf"]``), so a table can say when fine-tuning
did not help.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Literal

import torch

from bench_suite.core.contracts import TrainerContext
from bench_suite.core.tasks import Task
from bench_suite.snn.network import SpikingNetwork, TrainedNetwork
from bench_suite.snn.training import FP32, MixedPrecision, TrainingPatches, convert, task_loss, train_epochs


def asf_step(
    network: SpikingNetwork, x: torch.Tensor, target: torch.Tensor, time_steps: int, task: Task,
    optimizer: torch.optim.Optimizer, amp: MixedPrecision = FP32, class_weights: torch.Tensor | None = None,
) -> float:
    """One ASF update on a batch; returns the loss."""
    with torch.no_grad(), amp.autocast():
        network.simulate(x, time_steps, record=True)
    optimizer.zero_grad(set_to_none=True)
    with amp.autocast():
        loss = task_loss(task, network.flow_forward(x), target, class_weights=class_weights)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"ASF fine-tuning diverged (loss {loss.item()})")
    amp.step(loss, optimizer)
    network.set_record(False)
    return loss.item()


@dataclasses.dataclass(frozen=True)
class ASFParams:
    lr: float = 0.0  # 0: the profile's fine-tuning learning rate (reference 1e-6 with 100 epochs)
    epochs: int = 0  # 0: the profile's fine-tuning epochs
    keep: Literal["best", "last"] = "best"  # the epoch of lowest validation loss (0: as converted), or the last

    def __post_init__(self) -> None:
        if self.lr < 0 or self.epochs < 0:
            raise ValueError("lr and epochs must not be negative (0 means the profile's value)")


#: batches of the fixed validation draw (each one T-step simulation before and after every epoch)
VALIDATION_BATCHES = 4


class ASFTrainer:
    """Convert, then fine-tune with accumulated spiking flow (ASF); memory independent of T."""

    Params = ASFParams
    uses = frozenset({"neuron", "norm", "T"})

    def __init__(self, params: ASFParams | None = None) -> None:
        self.params = params or ASFParams()

    def run(self, ctx: TrainerContext) -> TrainedNetwork:
        patches = TrainingPatches.for_cell(ctx)
        network = convert(ctx, patches.calibration(ctx.profile.calibration_samples))
        lr = self.params.lr or ctx.profile.asf_lr
        epochs = self.params.epochs or ctx.profile.asf_epochs
        optimizer = torch.optim.Adam(network.parameters(), lr=lr)
        amp = MixedPrecision.for_cell(ctx)
        torch.manual_seed(ctx.seed)
        validation = patches.validation(VALIDATION_BATCHES) if epochs else []

        def validation_loss() -> float:
            with torch.no_grad(), amp.autocast():
                losses = [task_loss(ctx.bundle.task, network.simulate(x, ctx.time_steps), y,
                                    class_weights=patches.class_weights).item() * len(x)
                          for x, y in validation]
            return sum(losses) / sum(len(x) for x, _ in validation)

        losses = [validation_loss()] if validation else []
        best = (losses[0], 0, copy.deepcopy(network.state_dict())) if losses else None

        def after_epoch(_: float) -> None:
            nonlocal best
            losses.append(validation_loss())
            ctx.log_curve("asf", len(losses) - 1, "validation_loss", losses[-1])
            if self.params.keep == "best" and losses[-1] < best[0]:
                best = (losses[-1], len(losses) - 1, copy.deepcopy(network.state_dict()))

        with ctx.stage("fine-tune"):
            train_epochs(ctx, patches, epochs, "asf", "ASF fine-tune",
                         lambda x, y: asf_step(network, x, y, ctx.time_steps, ctx.bundle.task, optimizer, amp,
                                               patches.class_weights),
                         1000, after_epoch=after_epoch if validation else None,
                         max_batches=ctx.profile.max_train_batches)
        if losses:
            kept = best[1] if self.params.keep == "best" else epochs
            if kept != epochs:
                network.load_state_dict(best[2])
            ctx.info["asf"] = {"validation_loss": losses, "kept_epoch": kept, "epochs": epochs,
                               "validation": f"{len(validation)} fixed batches of training patches",
                               "improved": bool(min(losses[1:]) < losses[0])}
        return TrainedNetwork(network.eval(), ctx.time_steps)
