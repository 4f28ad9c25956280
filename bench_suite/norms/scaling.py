"""Weight normalizations for ANN→SNN conversion: none, layer-wise (LW) and connection-wise (CW).

Both scale the weights so that every neuron can use threshold 1: with λ_l the chosen percentile of
ReLU l's output on calibration data, W ← W·λ_in/λ_out and b ← b/λ_out (Diehl 2015, Rueckauer 2017).
They differ after a concatenation: LW takes one λ_in over the whole concatenated tensor, CW scales the
input channels that came from each branch by that branch's own λ (Spiking-UNet).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from torch import fx

from bench_suite.convert import (
    NetworkStructure,
    WeightedLayer,
    activation_scale,
    record_activations,
    scale_input_channels,
    scale_output,
)


@dataclasses.dataclass
class Normalized:
    """A norm's result: the rescaled graph, neuron thresholds by site (default 1) and the λ found."""

    graph: fx.GraphModule
    thresholds: dict[str, float]
    scales: dict[str, float]


class CalibrationCache:
    """λ values on disk, keyed by the exact weights, calibration data and method: it cannot go stale."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    @staticmethod
    def key(graph: fx.GraphModule, data: torch.Tensor, method: dict) -> str:
        digest = hashlib.sha256(json.dumps(method, sort_keys=True).encode())
        for name, tensor in sorted(graph.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        digest.update(data.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:24]

    def get_or_compute(self, key: str, compute) -> dict[str, float]:
        path = self.folder / f"calibration-{key}.json" if self.folder else None
        if path is not None and path.exists():
            return json.loads(path.read_text())
        values = compute()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(values, sort_keys=True))
            tmp.replace(path)
        return values


def percentile_scales(
    structure: NetworkStructure, calibration: torch.Tensor, percentile: float,
    cache: CalibrationCache | None, include_concats: bool,
) -> dict[str, float]:
    names = set(structure.sites) | (set(structure.concats) if include_concats else set())
    method = {"percentile": percentile, "names": sorted(names)}

    def compute() -> dict[str, float]:
        return record_activations(
            structure.graph, calibration, names, lambda t: activation_scale(t, percentile)
        )

    if cache is None:
        return compute()
    return cache.get_or_compute(CalibrationCache.key(structure.graph, calibration, method), compute)


def rescale(
    structure: NetworkStructure, scales: dict[str, float], part_scale, author_compat: bool = False
) -> fx.GraphModule:
    """Apply W[:, part] ← W[:, part]·part_scale(layer, part), then W, b ← ·/λ_out, on a copy."""
    gm = copy.deepcopy(structure.graph)
    for layer in structure.layers:
        module = gm.get_submodule(layer.target)
        for part in layer.parts:
            factor = part_scale(layer, part)
            stop = part.stop - 1 if author_compat and layer.concat else part.stop
            if factor != 1.0 and stop > part.start:
                scale_input_channels(module, part.start, stop, factor)
        out_scale = scales[layer.activation] if layer.activation else 1.0
        scale_output(module, 1.0 / out_scale)
    return gm


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

    def normalize(self, structure: NetworkStructure, calibration: torch.Tensor, cache=None) -> Normalized:
        return Normalized(copy.deepcopy(structure.graph), {}, {})


class LayerWiseNorm:
    """Layer-wise normalization: λ = a percentile of each ReLU's output, one λ_in per layer."""

    Params = PercentileParams

    def __init__(self, params: PercentileParams | None = None) -> None:
        self.params = params or PercentileParams()

    def normalize(self, structure: NetworkStructure, calibration: torch.Tensor, cache=None) -> Normalized:
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

    def normalize(self, structure: NetworkStructure, calibration: torch.Tensor, cache=None) -> Normalized:
        scales = percentile_scales(structure, calibration, self.params.percentile, cache, False)

        def part_scale(layer: WeightedLayer, part) -> float:
            return scales[part.site] if part.site else 1.0

        graph = rescale(structure, scales, part_scale, author_compat=self.params.author_compat)
        return Normalized(graph, {}, scales)
