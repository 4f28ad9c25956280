"""Threshold balancing (Sengupta et al. 2019, as used by Rathi 2020 and the three-stage method).

Weights stay as trained; each neuron layer gets its own threshold: layer by layer in execution order,
simulate T steps with the thresholds found so far, set θ_l to the maximum input current that layer l
receives over all steps and elements, and finally multiply every θ by a scaling factor (reference 0.7).

One pass does it: the body graph is interpreted once with the T steps folded into the batch
(convolutions, pools and concatenations act per sample), and at each neuron the T steps are unfolded
and simulated in order. When a neuron is reached every earlier threshold is already set, which is
exactly the layer-by-layer procedure, at the cost of one simulation instead of one per layer.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from spikingjelly.activation_based import functional
from torch import fx

from bench_suite.convert import NetworkStructure, build_spiking_network, respike_name
from bench_suite.errors import BenchSuiteError
from bench_suite.neurons.base import SpikingNeuron
from bench_suite.norms.scaling import Normalized

#: cap on steps × samples × input elements of the time-folded pass: the first layers' activations are
#: width × this many floats, so 2**24 keeps a width-16 pass near 1 GiB per tensor (one 40×56×40 volume
#: at 200 steps is 1.8e7 elements; four 48×48 patches at 200 steps are 1.8e6)
FOLDED_ELEMENTS = 2**24


def samples_within_budget(requested: int, steps: int, sample_elements: int) -> int:
    """How many calibration samples the time-folded pass may use: at most ``requested``, at least one."""
    return max(1, min(requested, FOLDED_ELEMENTS // max(1, steps * sample_elements)))


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
    network, x: torch.Tensor, steps: int, make_neuron, percentile: float = 100.0
) -> dict[str, float]:
    """θ per neuron module name of ``network.body``: the maximum (or a percentile of the) input over
    ``steps`` steps."""
    body: fx.GraphModule = network.body
    found: dict[str, float] = {}
    batch = x.shape[0]

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
            return outputs.reshape(steps * batch, *outputs.shape[2:])

    with torch.no_grad():
        current = network.encoder(x)
        folded = current.unsqueeze(0).expand(steps, *current.shape).reshape(steps * batch, *current.shape[1:])
        TimeFolded(body).run(folded)
    return found


class ThresholdBalancing:
    """Threshold balancing: per layer θ = max (or a percentile of the) input current over T simulated
    steps, then × scale (0.7)."""

    Params = TBParams
    needs_neurons = True

    def __init__(self, params: TBParams | None = None) -> None:
        self.params = params or TBParams()

    def normalize(
        self, structure: NetworkStructure, calibration: torch.Tensor, cache=None, make_neuron=None
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
