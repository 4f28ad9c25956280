"""A weight normalization as a bench-suite norm plugin: max-norm.

Data-based max normalization (Diehl et al. 2015): λ_l is the largest output of ReLU l on the calibration
batch, and every weighted layer is rescaled W ← W·λ_in/λ_out, b ← b/λ_out so that each neuron can fire
at threshold 1. Where a concatenation feeds a layer, each branch's input channels get that branch's own
λ (the connection-wise rule), so the rescaled ANN computes the same function as the trained one.

Two options make it differ from the built-in ``lw`` / ``cw`` (which take a percentile of all the
activations of the batch):

- ``robust=True``: λ is the *median over the calibration samples* of each sample's maximum, so that one
  unusually bright patch does not lower every firing rate (the batch maximum is set by a single sample;
  a pooled percentile still mixes all samples);
- ``scale``: multiplies every λ. Below 1 the neurons fire faster (fewer time steps needed) and the
  largest activations saturate at one spike per step (the trade-off of Rueckauer et al. 2017); above 1
  it leaves headroom for test inputs brighter than the calibration batch.
"""

from __future__ import annotations

import dataclasses
import statistics

import torch

from bench_suite.snn.calibration import CalibrationCache, Normalized, percentile_scales, rescale
from bench_suite.snn.convert import NetworkStructure, WeightedLayer


@dataclasses.dataclass(frozen=True)
class MaxNormParams:
    scale: float = 1.0  # λ = scale · max; below 1 fires faster (and saturates), above 1 leaves headroom
    robust: bool = False  # λ = median over the calibration samples of each sample's max

    def __post_init__(self) -> None:
        if not 0.1 <= self.scale <= 10.0:
            raise ValueError(f"scale must be between 0.1 and 10, got {self.scale}")


class MaxNorm:
    """Max normalization: λ = (scale ×) the max of each ReLU's output, per branch after a concatenation."""

    Params = MaxNormParams

    def __init__(self, params: MaxNormParams | None = None) -> None:
        self.params = params or MaxNormParams()

    def maxima(
        self, structure: NetworkStructure, calibration: torch.Tensor, cache: CalibrationCache | None
    ) -> dict[str, float]:
        """λ per ReLU site (before ``scale``): the batch maximum, or the median of per-sample maxima."""
        if not self.params.robust:
            return percentile_scales(structure, calibration, 100.0, cache, False)
        per_sample = [percentile_scales(structure, calibration[i : i + 1], 100.0, cache, False)
                      for i in range(len(calibration))]
        return {site: statistics.median(found[site] for found in per_sample) for site in structure.sites}

    def normalize(
        self, structure: NetworkStructure, calibration: torch.Tensor, *, cache: CalibrationCache | None = None,
        make_neuron=None,
    ) -> Normalized:
        scales = {site: lam * self.params.scale for site, lam in self.maxima(structure, calibration, cache).items()}

        def part_scale(layer: WeightedLayer, part) -> float:
            # the channels a part of the input came from were divided by their site's λ: multiply it back
            return scales[part.site] if part.site else 1.0  # None: the network input, not rescaled

        # rescale works on a copy of the traced graph: the ANN given to a norm is shared and never changed
        return Normalized(rescale(structure, scales, part_scale), {}, scales)
