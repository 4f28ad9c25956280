"""The spiking network a conversion (or direct training) produces, and what a trainer returns.

:class:`SpikingNetwork` is a static encoder (the first conv, computed once), a spiking body run T steps
and a non-spiking head applied to the rate. :class:`TrainedNetwork` wraps the ANN or a spiking network
with the time steps it is evaluated at.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import torch
from torch import fx, nn

from bench_suite.core.neuron import SpikingNeuron
from bench_suite.core.requirements import spikingjelly

functional = spikingjelly("activation_based.functional")

WEIGHTED_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
TRANSPOSED_TYPES = (nn.ConvTranspose2d, nn.ConvTranspose3d)
POOL_TYPES = (nn.AvgPool2d, nn.AvgPool3d)


class SpikingNetwork(nn.Module):
    """A converted network: static encoder (computed once), spiking body run T steps, rate-read head.

    ``forward(x, T)`` returns the head applied to the mean over T steps of the body's output, which is
    the accumulated head output divided by T (segmentation: its argmax is the prediction; denoising:
    the predicted noise).
    """

    def __init__(self, encoder: nn.Module, body: fx.GraphModule, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.body = body
        self.head = head
        # None: direct (static) coding, the first conv's output computed once for all steps; else an
        # object with encode(x, t, generator) giving each step's input (Poisson rate coding)
        self.input_coding = None
        self.coding_seed = 0
        self._generators: dict[str, torch.Generator] = {}

    def coding_generator(self, device: torch.device) -> torch.Generator:
        """The input coding's random stream on ``device`` (random numbers are drawn where the input is;
        the streams of two devices differ, so random input coding agrees across devices in rate only)."""
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.coding_seed)
        return self._generators[key]

    def restart_coding(self, seed: int | None = None) -> None:
        """Restart the input coding's random stream (from ``coding_seed``), so that an evaluation gives the
        same spikes however often the network was simulated before (training, earlier stages)."""
        if seed is not None:
            self.coding_seed = seed
        self._generators.clear()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_generators"] = {}  # generators are not picklable; they restart from coding_seed
        return state

    def __deepcopy__(self, memo):
        copied = SpikingNetwork.__new__(SpikingNetwork)
        memo[id(self)] = copied
        for key, value in self.__dict__.items():
            copied.__dict__[key] = {} if key == "_generators" else copy.deepcopy(value, memo)
        return copied

    def neurons(self) -> list[tuple[str, SpikingNeuron]]:
        """Every neuron of the body in network order (the order of the traced graph, not of registration:
        the re-spiking neurons after the pools are registered last but run inside the encoder)."""
        modules = dict(self.body.named_modules())
        found: dict[str, SpikingNeuron] = {}
        for node in self.body.graph.nodes:
            module = modules.get(node.target) if node.op == "call_module" else None
            if isinstance(module, SpikingNeuron):
                found.setdefault(node.target, module)
        # neurons the graph does not call directly (inside a submodule) keep registration order, after
        for name, module in modules.items():
            if isinstance(module, SpikingNeuron) and name not in found:
                found[name] = module
        return list(found.items())

    def set_record(self, record: bool | str) -> None:
        """True: accumulate what ASF needs; "stats": count events and spikes per layer (evaluation)."""
        for _, neuron in self.neurons():
            neuron.record = record

    def simulate(self, x: torch.Tensor, time_steps: int, record: bool | str = False) -> torch.Tensor:
        functional.reset_net(self.body)
        self.set_record(record)
        x = x.contiguous(memory_format=self.memory_format(x))
        # the body's outputs are summed in fp32 whatever the body computes in (see with_precision)
        if self.input_coding is not None:
            total = 0.0
            for step in range(time_steps):
                coded = self.input_coding.encode(x, step, self.coding_generator(x.device))
                total = total + self.body(self.encoder(coded)).float()
            return self.head(total / time_steps)
        current = self.encoder(x)
        total = self.body(current).float()
        for _ in range(time_steps - 1):
            total = total + self.body(current)
        return self.head(total / time_steps)

    def forward(self, x: torch.Tensor, time_steps: int) -> torch.Tensor:
        return self.simulate(x, time_steps)

    def memory_format(self, x: torch.Tensor) -> torch.memory_format:
        """The layout of the converted ANN's weights (channels-last where the ANN used it).

        Read off the body's convolutions: the encoder's one-input-channel weight is contiguous in both
        layouts, so it cannot tell them apart."""
        channels_last = {4: torch.channels_last, 5: torch.channels_last_3d}.get(x.dim())
        for module in self.body.modules():
            weight = getattr(module, "weight", None)
            if isinstance(weight, torch.Tensor) and weight.dim() == x.dim() and not weight.is_contiguous():
                return channels_last if weight.is_contiguous(memory_format=channels_last) else torch.contiguous_format
        return torch.contiguous_format

    def with_precision(self, dtype: torch.dtype) -> SpikingNetwork:
        """An inference copy whose body convolutions compute in ``dtype`` (e.g. ``torch.bfloat16``).

        Spikes and the MT/ML levels (multiples of 2^-k·θ with θ = 1 after weight normalization) are exact
        in bf16, so only the rounded weights change the result; membrane potentials, the encoder (run once)
        and the head (which reads the fp32 sum over T) stay fp32. For inference only: train in fp32.
        """
        copy_ = copy.deepcopy(self).eval()
        for module in copy_.body.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, *TRANSPOSED_TYPES)):
                module.to(dtype)
        for _, neuron in copy_.neurons():
            neuron.output_dtype = None if dtype == torch.float32 else dtype
        return copy_

    def finalize(self) -> SpikingNetwork:
        """Prepare a trained network for inference: each neuron type's ``finalize_network`` (RS folds)."""
        for neuron_type in {type(neuron) for _, neuron in self.neurons()}:
            neuron_type.finalize_network(self)
        return self

    def flow_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The ASF pass: one non-temporal pass over the rates recorded by the last ``simulate(record=True)``."""
        neurons = self.neurons()
        for _, neuron in neurons:
            neuron.mode = "flow"
        try:
            return self.head(self.body(self.encoder(x.contiguous(memory_format=self.memory_format(x)))))
        finally:
            for _, neuron in neurons:
                neuron.mode = "simulate"


def replace_neurons(network: SpikingNetwork, make: Callable[[SpikingNeuron], nn.Module]) -> SpikingNetwork:
    """A copy of ``network`` with every neuron replaced by ``make(neuron)`` (e.g. another library's
    neuron, to compare implementations on the same converted weights)."""
    replaced = copy.deepcopy(network)
    for name, module in list(replaced.body.named_modules()):
        if isinstance(module, SpikingNeuron):
            parent, _, attr = name.rpartition(".")
            setattr(replaced.body.get_submodule(parent), attr, make(module))
    return replaced


@dataclasses.dataclass
class TrainedNetwork:
    """A trainer's result: the ANN, or a spiking network evaluated at ``time_steps``."""

    network: nn.Module
    time_steps: int = 0
    decision_threshold: float | None = None  # binary segmentation: P(foreground) above this is foreground
    stages: dict[str, TrainedNetwork] = dataclasses.field(default_factory=dict)  # evaluated too, as stage/metric

    def __post_init__(self) -> None:
        if self.spiking is not None:
            self.spiking.finalize()

    @property
    def spiking(self) -> SpikingNetwork | None:
        return self.network if isinstance(self.network, SpikingNetwork) else None

    def __call__(self, x: torch.Tensor, record: bool | str = False) -> torch.Tensor:
        if self.spiking is not None:
            return self.spiking.simulate(x, self.time_steps, record=record)
        return self.network(x)
