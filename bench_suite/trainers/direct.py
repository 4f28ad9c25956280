"""Trainer ``dt``: direct training of the spiking U-Net (STBP / BPTT, Wu 2018) from random weights.

The network is the same spiking U-Net the converter builds (static first conv, neurons after every
conv and pool, non-spiking head reading the rate), without weight normalization; the loss of the
rate-read head is back-propagated through all T steps with each neuron's surrogate gradient.
Memory grows with T (every step's activations are kept for the backward pass). Reference: Adam,
100 epochs (the paper profile); smoke and quick run fewer.
"""

from __future__ import annotations

import copy
import dataclasses

import torch

from bench_suite.core.contracts import TrainerContext
from bench_suite.core.tasks import Task
from bench_suite.snn.convert import analyse, build_spiking_network
from bench_suite.snn.network import TrainedNetwork
from bench_suite.snn.training import TrainingPatches, task_loss, train_epochs


def bptt_step(network, x: torch.Tensor, target: torch.Tensor, time_steps: int, task: Task,
              optimizer: torch.optim.Optimizer, loss_name: str | None = None) -> float:
    """One STBP update: simulate T steps with autograd on, back-propagate through all of them."""
    optimizer.zero_grad(set_to_none=True)
    loss = task_loss(task, network.simulate(x, time_steps), target, loss_name)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"direct training diverged (loss {loss.item()})")
    loss.backward()
    optimizer.step()
    return loss.item()


@dataclasses.dataclass(frozen=True)
class DTParams:
    lr: float = 0.0  # 0: the profile's dt_lr (reference Adam 1e-3)
    epochs: int = 0  # 0: the profile's dt_epochs (reference 100)

    def __post_init__(self) -> None:
        if self.lr < 0 or self.epochs < 0:
            raise ValueError("lr and epochs must not be negative (0 means the profile's value)")


class DirectTrainer:
    """Direct training (STBP/BPTT through all T steps, surrogate gradients) from random initialization."""

    Params = DTParams
    uses = frozenset({"neuron", "T"})

    def __init__(self, params: DTParams | None = None) -> None:
        self.params = params or DTParams()

    def run(self, ctx: TrainerContext) -> TrainedNetwork:
        torch.manual_seed(ctx.seed)
        model = ctx.model_plugin.build(ctx.bundle.task, ctx.profile.width)
        patches = TrainingPatches(ctx.bundle, ctx.profile, ctx.seed)
        structure = analyse(model, patches.calibration(2))
        network = build_spiking_network(structure, copy.deepcopy(structure.graph), ctx.make_neuron)
        optimizer = torch.optim.Adam(network.parameters(), lr=self.params.lr or ctx.profile.dt_lr)
        epochs = self.params.epochs or ctx.profile.dt_epochs
        network.train()
        train_epochs(ctx, patches, epochs, "dt", "direct training (BPTT)",
                     lambda x, y: bptt_step(network, x, y, ctx.time_steps, ctx.bundle.task, optimizer), 2000,
                     max_batches=ctx.profile.max_train_batches)
        return TrainedNetwork(network.eval(), ctx.time_steps)
