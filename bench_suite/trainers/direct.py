"""Trainer ``dt``: direct training of the spiking U-Net (STBP / BPTT, Wu 2018) from random weights.

The network is the same spiking U-Net the converter builds (static first conv, neurons after every
conv and pool, non-spiking head reading the rate), without weight normalization; the loss of the
rate-read head is back-propagated through all T steps with each neuron's surrogate gradient.
Memory grows with T (every step's activations are kept for the backward pass). Reference: Adam 1e-3,
100 epochs from default random weights (the paper profile). From default weights a deep spiking U-Net
trained for a few epochs stays silent past its first layers and predicts all background (demo-vessels
F1 0.000 for if, mt, ml and rs after quick's 3 epochs), so smoke and quick start from *normalized*
random weights (``dt_init``): the random ANN is normalized on the training patches exactly as a
conversion would (connection-wise, 99.9th percentile), so each layer's activity starts at its
threshold and gradients reach every layer, with the head's bias at the foreground prior; and they
decay the learning rate to 0 on a cosine over all batches (``dt_schedule``) from Adam 5e-3 at quick: on
demo-vessels, T = 10, 192 batches, 5e-3 gave MT 0.797, RS 0.798, ML 0.736 F1 against 0.700, 0.728 and
0.684 at 2e-3 (smoke keeps 2e-3). Quick also caps an epoch at 64 batches (``dt_max_batches``, the
size of a demo-vessels epoch), since a BPTT batch costs T passes each way: on Train400 (256 batches per
epoch) an uncapped cell would take about 25 min on 2 cores; capped, MT DT reached 27.85 dB on Set12
(σ = 25) in 364 s.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Optional

import torch

from bench_suite.core.contracts import TrainerContext
from bench_suite.core.profiles import DTInit, Schedule
from bench_suite.core.registry import get_registry
from bench_suite.core.tasks import Task
from bench_suite.snn.convert import analyse, build_spiking_network
from bench_suite.snn.network import SpikingNetwork, TrainedNetwork
from bench_suite.snn.training import (
    FP32,
    MixedPrecision,
    TrainingPatches,
    batches_per_epoch,
    conversion_neurons,
    init_foreground_prior,
    learning_rate_schedule,
    task_loss,
    train_epochs,
)


def bptt_step(network, x: torch.Tensor, target: torch.Tensor, time_steps: int, task: Task,
              optimizer: torch.optim.Optimizer, loss_name: str | None = None, amp: MixedPrecision = FP32,
              class_weights: torch.Tensor | None = None, clip_norm: float = 0.0) -> float:
    """One STBP update: simulate T steps with autograd on, back-propagate through all of them."""
    optimizer.zero_grad(set_to_none=True)
    with amp.autocast():
        loss = task_loss(task, network.simulate(x, time_steps), target, loss_name, class_weights)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"direct training diverged (loss {loss.item()})")
    amp.step(loss, optimizer, clip_norm)
    return loss.item()


@dataclasses.dataclass(frozen=True)
class DTParams:
    lr: float = 0.0  # 0: the profile's dt_lr (reference Adam 1e-3)
    epochs: int = 0  # 0: the profile's dt_epochs (reference 100)
    init: Optional[DTInit] = None  # None: the profile's dt_init
    schedule: Optional[Schedule] = None  # None: the profile's dt_schedule

    def __post_init__(self) -> None:
        if self.lr < 0 or self.epochs < 0:
            raise ValueError("lr and epochs must not be negative (0 means the profile's value)")


class DirectTrainer:
    """Direct training (STBP/BPTT through all T steps, surrogate gradients) from random initialization."""

    Params = DTParams
    uses = frozenset({"neuron", "T"})

    def __init__(self, params: DTParams | None = None) -> None:
        self.params = params or DTParams()

    def ann_losses(self) -> tuple:
        return ()  # trains from random weights: no ANN to wait for

    def run(self, ctx: TrainerContext) -> TrainedNetwork:
        torch.manual_seed(ctx.seed)
        model = ctx.model_plugin.build(ctx.bundle.task, ctx.profile.width).to(ctx.device)
        patches = TrainingPatches.for_cell(ctx)
        init = self.params.init or ctx.profile.dt_init
        network = (normalized_start(ctx, model, patches) if init == "normalized"
                   else random_start(ctx, model, patches))
        optimizer = torch.optim.Adam(network.parameters(), lr=self.params.lr or ctx.profile.dt_lr)
        epochs = self.params.epochs or ctx.profile.dt_epochs
        cap = min((c for c in (ctx.profile.max_train_batches, ctx.profile.dt_max_batches) if c), default=0)
        per_epoch = batches_per_epoch(patches, cap)
        schedule = self.params.schedule or ctx.profile.dt_schedule
        scheduler = learning_rate_schedule(optimizer, schedule, epochs * per_epoch)
        amp = MixedPrecision.for_cell(ctx)
        ctx.info["dt"] = {"init": init, "schedule": schedule, "lr": optimizer.param_groups[0]["lr"],
                          "epochs": epochs, "batches": epochs * per_epoch,
                          "grad_clip": ctx.profile.dt_grad_clip}

        def step(x: torch.Tensor, y: torch.Tensor) -> float:
            loss = bptt_step(network, x, y, ctx.time_steps, ctx.bundle.task, optimizer, amp=amp,
                             class_weights=patches.class_weights, clip_norm=ctx.profile.dt_grad_clip)
            if scheduler is not None:
                scheduler.step()
            return loss

        network.train()
        with ctx.stage("fine-tune"):
            train_epochs(ctx, patches, epochs, "dt", "direct training (BPTT)", step, 2000, max_batches=cap)
        return TrainedNetwork(network.eval(), ctx.time_steps)


def random_start(ctx: TrainerContext, model: torch.nn.Module, patches: TrainingPatches) -> SpikingNetwork:
    """The reference: the spiking U-Net with the model's default random weights, every threshold 1."""
    structure = analyse(model, patches.calibration(2))
    return build_spiking_network(structure, copy.deepcopy(structure.graph), ctx.make_neuron).to(ctx.device)


def normalized_start(ctx: TrainerContext, model: torch.nn.Module, patches: TrainingPatches) -> SpikingNetwork:
    """Random weights normalized as a conversion would: connection-wise, on ``calibration_samples``
    training patches, so each layer's 99.9th-percentile activation sits at its threshold (the neurons'
    own conversion rule included, e.g. ML's θ₀/K), and a binary head's bias at the foreground prior."""
    init_foreground_prior(model, patches)
    calibration = patches.calibration(ctx.profile.calibration_samples)
    make_neuron = conversion_neurons(ctx.make_neuron)
    with ctx.stage("calibration"):
        structure = analyse(model.eval(), calibration)
        # the built-in `cw` norm through the registry (a plugin room does not import another)
        normalized = get_registry().get("norm", "cw").obj().normalize(structure, calibration, make_neuron=make_neuron)
        network = build_spiking_network(structure, normalized.graph, make_neuron, normalized.thresholds)
    return network.to(ctx.device)
