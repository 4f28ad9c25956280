"""Trainer ``conv``: ANN → SNN conversion only (normalize, swap ReLUs for neurons), no fine-tuning."""

from __future__ import annotations

from bench_suite.core.contracts import TrainerContext
from bench_suite.snn.network import TrainedNetwork
from bench_suite.snn.training import TrainingPatches, convert


class ConversionTrainer:
    """Conversion only: normalize the trained ANN and replace each ReLU with the chosen neuron."""

    Params = None
    uses = frozenset({"neuron", "norm", "T"})

    def __init__(self, params=None) -> None:
        self.params = params

    def run(self, ctx: TrainerContext) -> TrainedNetwork:
        patches = TrainingPatches.for_cell(ctx)
        calibration = patches.calibration(ctx.profile.calibration_samples)
        return TrainedNetwork(convert(ctx, calibration), ctx.time_steps)
