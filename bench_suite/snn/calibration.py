"""Calibration for ANN→SNN conversion: activation percentiles (λ) and threshold balancing.

Weight normalizations scale the weights so that every neuron can use threshold 1: with λ_l the chosen
percentile of ReLU l's output on calibration data, W ← W·λ_in/λ_out and b ← b/λ_out (Diehl 2015,
Rueckauer 2017). :func:`percentile_scales` finds the λ (cached by :class:`CalibrationCache`) and
:func:`rescale` applies per-part factors; the LW and CW plugins in ``norms/`` choose the parts.

Threshold balancing (Sengupta et al. 2019, as used by Rathi 2020 and the three-stage method) keeps the
weights and sets each neuron layer's threshold: layer by layer in execution order, simulate T steps with
the thresholds found so far and take the maximum input current that layer receives. One pass does it:
the body graph is interpreted once with the T steps folded into the batch, and at each neuron the T
steps are unfolded and simulated in order, so when a neuron is reached every earlier threshold is set.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from torch import fx

from bench_suite.core.neuron import SpikingNeuron
from bench_suite.core.requirements import spikingjelly
from bench_suite.snn.convert import (
    NetworkStructure,
    activation_scale,
    build_spiking_network,
    record_activations,
    respike_name,
    scale_input_channels,
    scale_output,
)

functional = spikingjelly("activation_based.functional")


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


#: cap on steps × samples × input elements of the time-folded pass: the first layers' activations are
#: width × this many floats, so 2**24 keeps a width-16 pass near 1 GiB per tensor (one 40×56×40 volume
#: at 200 steps is 1.8e7 elements; four 48×48 patches at 200 steps are 1.8e6)
FOLDED_ELEMENTS = 2**24


def samples_within_budget(requested: int, steps: int, sample_elements: int) -> int:
    """How many calibration samples the time-folded pass may use: at most ``requested``, at least one."""
    return max(1, min(requested, FOLDED_ELEMENTS // max(1, steps * sample_elements)))


#: inputs beyond this many elements are subsampled (evenly strided) for a percentile
PERCENTILE_ELEMENTS = 2**24


def input_level(inputs: torch.Tensor, percentile: float) -> float:
    """The maximum of ``inputs``, or their ``percentile`` (on an evenly strided subsample if large)."""
    if percentile >= 100:
        return float(inputs.max())
    values = inputs.flatten()
    values = values[:: values.numel() // PERCENTILE_ELEMENTS + 1]
    return float(torch.quantile(values.float(), percentile / 100))


def balance_thresholds(
    network, x: torch.Tensor, steps: int, make_neuron, percentile: float = 100.0, progress=None,
) -> dict[str, float]:
    """θ per neuron module name of ``network.body``: the maximum (or a percentile of the) input over
    ``steps`` steps. ``progress`` (``stage(description, total)``) advances once per neuron layer."""
    body: fx.GraphModule = network.body
    found: dict[str, float] = {}
    batch = x.shape[0]
    layers = sum(isinstance(m, SpikingNeuron) for m in body.modules())
    advance = progress.stage("threshold balancing", layers) if progress is not None else (lambda n=1: None)

    class TimeFolded(fx.Interpreter):
        def call_module(self, target, args, kwargs):
            module = self.fetch_attr(target)
            if not isinstance(module, SpikingNeuron):
                return super().call_module(target, args, kwargs)
            inputs = args[0].reshape(steps, batch, *args[0].shape[1:])
            theta = input_level(inputs, percentile)
            theta = theta if theta > 0 else 1.0  # a silent layer keeps threshold 1, never 0
            found[target] = theta
            neuron = make_neuron(theta, module.channels)
            functional.reset_net(neuron)
            outputs = torch.stack([neuron(step) for step in inputs])
            advance(1)
            return outputs.reshape(steps * batch, *outputs.shape[2:])

    with torch.no_grad():
        current = network.encoder(x)
        folded = current.unsqueeze(0).expand(steps, *current.shape).reshape(steps * batch, *current.shape[1:])
        TimeFolded(body).run(folded)
    return found


@dataclasses.dataclass(frozen=True)
class BalancingSettings:
    """How threshold balancing runs (validated here, shared by the ``tb`` norm and the three-stage trainer)."""

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


def threshold_balanced(
    structure: NetworkStructure, calibration: torch.Tensor, make_neuron, settings: BalancingSettings,
    progress=None,
) -> Normalized:
    """Weights as trained, one balanced threshold per neuron site (× ``settings.scale``)."""
    graph = copy.deepcopy(structure.graph)
    network = build_spiking_network(structure, graph, make_neuron)
    samples = samples_within_budget(settings.samples, settings.steps, calibration[0].numel())
    by_module = balance_thresholds(network, calibration[:samples], settings.steps, make_neuron, settings.percentile,
                                   progress)
    # a ReLU's neuron sits at the ReLU's module path; a pool's re-spiking neuron has its own name
    nodes = {n.name: n for n in structure.graph.graph.nodes}
    thresholds = {site: by_module[nodes[site].target] * settings.scale for site in structure.sites}
    for pool in structure.pools:
        thresholds[pool] = by_module[respike_name(nodes[pool].target)] * settings.scale
    return Normalized(graph, thresholds, by_module)
