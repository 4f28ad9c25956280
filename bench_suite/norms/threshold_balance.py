"""Norm ``tb``: threshold balancing (Sengupta et al. 2019) as a norm plugin.

Weights stay as trained; each neuron layer gets its own threshold, the maximum (or a percentile of the)
input current it receives over T simulated steps, times a scaling factor (reference 0.7). The algorithm
is :func:`bench_suite.snn.calibration.threshold_balanced`.
"""

from __future__ import annotations

import dataclasses

import torch

from bench_suite.core.errors import BenchSuiteError
from bench_suite.snn.calibration import BalancingSettings, Normalized, threshold_balanced
from bench_suite.snn.convert import NetworkStructure


@dataclasses.dataclass(frozen=True)
class TBParams(BalancingSettings):
    """steps (reference 200 with early stop, 1000 in full), scale (0.7), samples, percentile (100 = max)."""


class ThresholdBalancing:
    """Threshold balancing: per layer θ = max (or a percentile of the) input current over T simulated
    steps, then × scale (0.7)."""

    Params = TBParams

    def __init__(self, params: TBParams | None = None) -> None:
        self.params = params or TBParams()

    def normalize(
        self, structure: NetworkStructure, calibration: torch.Tensor, *, cache=None, make_neuron=None
    ) -> Normalized:
        if make_neuron is None:
            raise BenchSuiteError("threshold balancing needs the cell's neuron; use it with a spiking trainer")
        return threshold_balanced(structure, calibration, make_neuron, self.params)
