"""Weight normalizations for ANN→SNN conversion: none, layer-wise (LW) and connection-wise (CW).

Both scale the weights so that every neuron can use threshold 1 (W ← W·λ_in/λ_out, b ← b/λ_out). They
differ after a concatenation: LW takes one λ_in over the whole concatenated tensor, CW scales the input
channels that came from each branch by that branch's own λ (Spiking-UNet).
"""

from __future__ import annotations

import copy
import dataclasses

import torch

from bench_suite.snn.calibration import Normalized, percentile_scales, rescale
from bench_suite.snn.convert import (
    NetworkStructure,
    WeightedLayer,
)


@dataclasses.dataclass(frozen=True)
class PercentileParams:
    percentile: float = 99.9

    def __post_init__(self) -> None:
        if not 50.0 <= self.percentile <= 100.0:
            raise ValueError(f"percentile must be between 50 and 100 (100 = max), got {self.percentile}")


@dataclasses.dataclass(frozen=True)
class CWParams(PercentileParams):
    author_compat: bool = False  # reproduce the reference code's unscaled last channel of each part


class NoNorm:
    """No normalization: weights as trained, every threshold 1."""

    Params = None

    def __init__(self, params=None) -> None:
        self.params = params

    def normalize(
        self, structure: NetworkStructure, calibration: torch.Tensor, *, cache=None, make_neuron=None
    ) -> Normalized:
        return Normalized(copy.deepcopy(structure.graph), {}, {})


class LayerWiseNorm:
    """Layer-wise normalization: λ = a percentile of each ReLU's output, one λ_in per layer."""

    Params = PercentileParams

    def __init__(self, params: PercentileParams | None = None) -> None:
        self.params = params or PercentileParams()

    def normalize(
        self, structure: NetworkStructure, calibration: torch.Tensor, *, cache=None, make_neuron=None
    ) -> Normalized:
        scales = percentile_scales(structure, calibration, self.params.percentile, cache, True)

        def part_scale(layer: WeightedLayer, part) -> float:
            if layer.concat is not None:
                return scales[layer.concat]
            return scales[part.site] if part.site else 1.0

        return Normalized(rescale(structure, scales, part_scale), {}, scales)


class ConnectionWiseNorm:
    """Connection-wise normalization: after a concatenation each branch's channels get their own λ."""

    Params = CWParams

    def __init__(self, params: CWParams | None = None) -> None:
        self.params = params or CWParams()

    def normalize(
        self, structure: NetworkStructure, calibration: torch.Tensor, *, cache=None, make_neuron=None
    ) -> Normalized:
        scales = percentile_scales(structure, calibration, self.params.percentile, cache, False)

        def part_scale(layer: WeightedLayer, part) -> float:
            return scales[part.site] if part.site else 1.0

        graph = rescale(structure, scales, part_scale, author_compat=self.params.author_compat)
        return Normalized(graph, {}, scales)
