"""Norm ``tb``: threshold balancing (Sengupta et al. 2019) as a norm plugin.

Weights stay as trained; each neuron layer gets its own threshold, the maximum (or a percentile of the)
input current it receives over T simulated steps, times a scaling factor (reference 0.7). The algorithm
is :func:`bench_suite.snn.calibration.balance_thresholds`.
"""

from __future__ import annotations

import copy
import dataclasses

import torch

from bench_suite.core.errors import BenchSuiteError
from bench_suite.snn.calibration import Normalized, balance_thresholds, samples_within_budget
from bench_suite.snn.convert import NetworkStructure, build_spiking_network, respike_name


@dataclasses.dataclass(frozen=True)
class TBParams:
    steps: int = 200  # simulated steps (Sengupta: 1000; the three-stage method stops early at 200)
    scale: float = 0.7  # multiplies every balanced threshold (reference 0.7; 0.6–0.8)
    samples: int = 4  # calibration samples used (memory grows with steps × samples; see FOLDED_ELEMENTS)
    # 100: the maximum input (Sengupta's rule); below 100 that percentile of the inputs, which a few outliers
    # cannot inflate (the 3-D hippocampus U-Net's last decoder layers have maxima ~25× their 99.9th percentile)
    percentile: float = 100.0

    def __post_init__(self) -> None:
        if not 50 <= self.percentile <= 100:
            raise ValueError(f"percentile must be between 50 and 100, got {self.percentile}")
        if not 1 <= self.steps <= 5000:
            raise ValueError(f"steps must be between 1 and 5000, got {self.steps}")
        if not 0 < self.scale <= 2:
            raise ValueError(f"scale must be in (0, 2], got {self.scale}")
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")


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
        graph = copy.deepcopy(structure.graph)
        network = build_spiking_network(structure, graph, make_neuron)
        samples = samples_within_budget(self.params.samples, self.params.steps, calibration[0].numel())
        by_module = balance_thresholds(network, calibration[:samples], self.params.steps, make_neuron,
                                       self.params.percentile)
        # a ReLU's neuron sits at the ReLU's module path; a pool's re-spiking neuron has its own name
        nodes = {n.name: n for n in structure.graph.graph.nodes}
        thresholds = {site: by_module[nodes[site].target] * self.params.scale for site in structure.sites}
        for pool in structure.pools:
            thresholds[pool] = by_module[respike_name(nodes[pool].target)] * self.params.scale
        return Normalized(graph, thresholds, by_module)
