"""Trainer ``three-stage`` (Yue et al. 2023, after Rathi et al. 2020).

1. ANN: the U-Net trained with the chosen loss (BCE-Dice by default), cached like every ANN.
2. Early-stop conversion: threshold balancing (``tb``) over ``conversion_steps`` simulated steps — by
   default the cell's T, the length the network then runs and is fine-tuned at (reference 200, where full
   balancing runs 1000+) — thresholds × ``tb_scale`` (0.7).
3. Spike-based fine-tuning: BPTT through the cell's T steps with the linear (triangle) surrogate
   ∂o/∂u = α·max(0, 1 − |u/θ − 1|)/θ, α = 0.3; the output layer does not fire: it accumulates membrane
   potential (the head reads the mean over T), then sigmoid per pixel/voxel; Adam with ReduceLROnPlateau
   (the reference; ``schedule=cosine`` decays the rate to 0 over the batches instead, for short budgets).

Inputs are coded as ternary spikes sign(x)·[U < |x|] from zero-mean [−1, 1] inputs (the default, as in
the reference's segmentation networks, after Rathi 2020), as Poisson binary spikes from [0, 1] inputs, or
directly (static current). The ANN and the converted network are
scored too (metrics ``ann/…`` and ``converted/…``), so one cell gives the study's three columns.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Literal, Optional

import torch

from bench_suite.core.contracts import TrainerContext
from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.profiles import ThreeStageSchedule
from bench_suite.core.surrogates import make_surrogate
from bench_suite.snn.calibration import BalancingSettings, samples_within_budget, threshold_balanced
from bench_suite.snn.convert import analyse, build_spiking_network
from bench_suite.snn.encoders import make_encoder
from bench_suite.snn.network import TrainedNetwork
from bench_suite.snn.training import (
    MixedPrecision,
    TrainingPatches,
    batches_per_epoch,
    learning_rate_schedule,
    train_epochs,
)
from bench_suite.trainers.direct import bptt_step


@dataclasses.dataclass(frozen=True)
class ThreeStageParams:
    loss: Literal["bce-dice", "bce", "dice", "ce"] = "bce-dice"
    encoder: Literal["direct", "poisson", "ternary"] = "ternary"  # the reference's segmentation networks
    # 0: the cell's T. Balancing over more steps than the network runs sets thresholds it cannot reach: on
    # the 3-D hippocampus U-Net, TB over 200 steps left every layer past the fourth silent at T = 20
    # (constant output, no gradient for fine-tuning), TB over 20 steps kept all of them firing
    conversion_steps: int = 0
    tb_scale: float = 0.7
    tb_percentile: float = 100.0  # 100: θ = the maximum input (the reference); e.g. 99.9: robust to outliers
    surrogate_alpha: float = 0.3
    lr: float = 0.0  # 0: the profile's three_stage_lr (reference Adam 1e-3)
    epochs: int = 0  # 0: the profile's three_stage_epochs (reference 35 SNN epochs)
    schedule: Optional[ThreeStageSchedule] = None  # None: the profile's three_stage_schedule
    output_threshold: float = 0.5  # sigmoid output above this is foreground (Yue Table 2 sweeps 0.1–0.6)

    def __post_init__(self) -> None:
        if self.conversion_steps < 0:
            raise ValueError(f"conversion_steps must not be negative (0 = the cell's T), got {self.conversion_steps}")
        BalancingSettings(steps=self.conversion_steps or 200, scale=self.tb_scale, percentile=self.tb_percentile)
        if self.surrogate_alpha <= 0:
            raise ValueError(f"surrogate_alpha must be positive, got {self.surrogate_alpha}")
        if not 0 < self.output_threshold < 1:
            raise ValueError(f"output_threshold must be in (0, 1), got {self.output_threshold}")
        if self.lr < 0 or self.epochs < 0:
            raise ValueError("lr and epochs must not be negative (0 means the profile's value)")


class ThreeStageTrainer:
    """Three-stage: ANN → threshold-balanced early-stop conversion → BPTT fine-tuning (linear surrogate)."""

    Params = ThreeStageParams
    uses = frozenset({"neuron", "T"})

    def __init__(self, params: ThreeStageParams | None = None) -> None:
        self.params = params or ThreeStageParams()

    def ann_losses(self) -> tuple:
        return (self.params.loss,)  # the ANN trained with the method's loss

    def run(self, ctx: TrainerContext) -> TrainedNetwork:
        task = ctx.bundle.task
        if task.kind != "segmentation" or task.n_classes != 2:
            raise BenchSuiteError(
                f"the three-stage method is for binary segmentation; dataset '{ctx.bundle.name}' is "
                f"{task.kind} with {task.n_classes} classes — use trainer asf or dt for it"
            )
        p = self.params
        patches = TrainingPatches.for_cell(ctx)
        ann = ctx.get_ann(loss=p.loss)
        calibration = patches.calibration(ctx.profile.calibration_samples)
        with ctx.stage("calibration"):
            structure = analyse(ann, calibration)
            tb = BalancingSettings(steps=p.conversion_steps or ctx.time_steps, scale=p.tb_scale,
                                   percentile=p.tb_percentile)
            balanced = threshold_balanced(structure, calibration, ctx.make_neuron, tb, ctx.progress)
        ctx.info["thresholds"] = balanced.thresholds
        ctx.info["tb_samples"] = samples_within_budget(tb.samples, tb.steps, calibration[0].numel())
        ctx.info["tb_steps"] = tb.steps
        network = build_spiking_network(structure, balanced.graph, ctx.make_neuron, balanced.thresholds)
        network = network.to(ctx.device)
        if p.encoder != "direct":
            network.input_coding = RescaledCoding.fit(make_encoder(p.encoder), patches.images, p.encoder)
            network.input_coding.absorb_into(network.encoder)
            network.restart_coding(ctx.seed)
            coding = network.input_coding
            ctx.info["input_coding"] = {"encoder": p.encoder, "shift": coding.shift, "scale": coding.scale}
        converted = TrainedNetwork(copy.deepcopy(network).eval(), ctx.time_steps, p.output_threshold)

        for _, neuron in network.neurons():
            neuron.surrogate_function = make_surrogate("triangle", p.surrogate_alpha)
        optimizer = torch.optim.Adam(network.parameters(), lr=p.lr or ctx.profile.three_stage_lr)
        epochs = p.epochs or ctx.profile.three_stage_epochs
        per_epoch = batches_per_epoch(patches, ctx.profile.max_train_batches)
        schedule = p.schedule or ctx.profile.three_stage_schedule
        # plateau (the reference): halve the rate after 2 epochs without improvement — over 35 epochs; a
        # CPU budget of one or two epochs never reaches it, so there cosine decays the rate per batch
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
        cosine = learning_rate_schedule(optimizer, schedule, epochs * per_epoch)
        ctx.info["three_stage"] = {"lr": optimizer.param_groups[0]["lr"], "schedule": schedule, "epochs": epochs,
                                   "batches_per_epoch": per_epoch}
        amp = MixedPrecision.for_cell(ctx)
        network.train()
        batches_done = [0]

        def step(x: torch.Tensor, y: torch.Tensor) -> float:
            lr = optimizer.param_groups[0]["lr"]  # the rate this batch is trained at
            loss = bptt_step(network, x, y, ctx.time_steps, task, optimizer, p.loss, amp, patches.class_weights)
            if cosine is not None:
                cosine.step()
            batches_done[0] += 1
            ctx.log_curve("three-stage", batches_done[0], "batch_loss", loss)  # convergence by batch
            ctx.log_curve("three-stage", batches_done[0], "batch_lr", lr)  # "batch_": plotted by batch
            return loss

        with ctx.stage("fine-tune"):
            train_epochs(ctx, patches, epochs, "three-stage", "three-stage fine-tune (BPTT)", step, 3000,
                         after_epoch=None if cosine is not None else plateau.step,
                         max_batches=ctx.profile.max_train_batches)
        stages = {"ann": TrainedNetwork(ann, 0, p.output_threshold), "converted": converted}
        return TrainedNetwork(network.eval(), ctx.time_steps, p.output_threshold, stages)



@dataclasses.dataclass
class RescaledCoding:
    """Map the network's inputs into the encoder's range, and the first conv back, so the shared ANN fits.

    Poisson binary coding needs inputs in [0, 1], ternary zero-mean inputs in [−1, 1]; images (and
    z-scored volumes) are mapped by x' = clamp((x − shift)/scale) with shift and scale from the training
    inputs' 1st/99th percentiles. The first conv absorbs the inverse map (W' = W·scale, b' = b + shift·ΣW),
    which is exact except where zero padding meets the border and where the clamp cuts.
    """

    shift: float
    scale: float
    low: float
    high: float
    encoder: object = dataclasses.field(repr=False, default=None)

    @classmethod
    def fit(cls, encoder, images: torch.Tensor, kind: str) -> RescaledCoding:
        values = images.flatten()[:: max(1, images.numel() // 1_000_000)].float()
        p01, p50, p99 = (float(torch.quantile(values, q)) for q in (0.01, 0.5, 0.99))
        if kind == "ternary":
            scale = max(abs(p99 - p50), abs(p50 - p01), 1e-6)
            return cls(p50, scale, -1.0, 1.0, encoder)
        return cls(p01, max(p99 - p01, 1e-6), 0.0, 1.0, encoder)

    def absorb_into(self, conv: torch.nn.Module) -> None:
        with torch.no_grad():
            weight_sum = conv.weight.sum(dim=tuple(range(1, conv.weight.dim())))
            if conv.bias is not None:
                conv.bias.add_(self.shift * weight_sum)
            conv.weight.mul_(self.scale)

    def encode(self, x: torch.Tensor, t: int, generator: torch.Generator) -> torch.Tensor:
        return self.encoder.encode(((x - self.shift) / self.scale).clamp(self.low, self.high), t, generator)
