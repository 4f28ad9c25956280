"""RS, real spike (Guo et al., ECCV 2022): binary spikes scaled by learnable per-channel reals in training.

Dynamics are those of IF (v ≥ θ fires, reset by subtracting θ); the output is θ·spike·s_c with a
learnable scale s_c per channel (initialized to 1). For inference the scales are re-parameterized
away: each scale is folded into whatever consumes the neuron's output — the input channels of the next
conv / ConvTranspose (at its offset inside a concatenation) or of the head, or, after an average pool,
the per-channel input gain of the re-spiking neuron — so the network runs on binary spikes and gives
the same output as before folding.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import fx, nn

from bench_suite.core.neuron import SpikingNeuron, SurrogateParams


@dataclasses.dataclass(frozen=True)
class RSParams(SurrogateParams):
    threshold: float = 1.0  # multiplies the layer's threshold

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.threshold > 0:
            raise ValueError(f"threshold must be positive, got {self.threshold}")


class RSNeuron(SpikingNeuron):
    """Real spike: IF spikes scaled by learnable per-channel reals, folded away for binary inference."""

    Params = RSParams

    def __init__(self, params: RSParams | None = None, threshold: float = 1.0, channels: int | None = None) -> None:
        params = params or RSParams()
        if channels is None:
            raise ValueError("the RS neuron needs the number of channels of its layer")
        super().__init__(params, threshold * params.threshold, reset="subtract", channels=channels)
        self.scale = nn.Parameter(torch.ones(channels))  # device: moved with the module
        self.register_buffer("input_gain", torch.ones(channels))  # device: moved with the module
        self.folded = False
        self._spike = None

    def _channelwise(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.view(1, -1, *([1] * (like.dim() - 2)))

    def neuronal_charge(self, x: torch.Tensor) -> None:
        self.v = self.v + x * self._channelwise(self.input_gain, x)

    def fire(self, v: torch.Tensor) -> torch.Tensor:
        theta = self.v_threshold
        spike = self.spike(v, theta) if v.requires_grad else (v >= theta).to(v.dtype)
        self._spike = spike
        if self.folded:
            return spike * theta
        return spike * theta * self._channelwise(self.scale, spike)

    def neuronal_reset(self, out: torch.Tensor) -> None:
        self.v = self.v - self._spike * self.v_threshold

    def _reset_in_place(self, out: torch.Tensor) -> None:
        self.v.sub_(self._spike * self.v_threshold)

    def level_spikes(self, out: torch.Tensor) -> torch.Tensor:
        return self._spike.sum()

    def recorded_output(self, out: torch.Tensor) -> torch.Tensor:
        return self._spike * self.v_threshold

    def flow_output(self, x: torch.Tensor) -> torch.Tensor:
        # ASF: the rate of unscaled spikes with the gated identity, times the scale, so that the
        # scales are fine-tuned too
        rate = super().flow_output(x)
        return rate if self.folded else rate * self._channelwise(self.scale, rate)

    @classmethod
    def finalize_network(cls, network) -> None:
        fold_real_spike_scales(network)


def _scale_input_channels(module: nn.Module, start: int, factor: torch.Tensor) -> None:
    dim = 0 if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) else 1
    shape = [1] * module.weight.dim()
    shape[dim] = len(factor)
    with torch.no_grad():
        module.weight.narrow(dim, start, len(factor)).mul_(factor.view(shape))


def fold_real_spike_scales(network) -> None:
    """Fold every RS scale into its consumers (see the module docstring); idempotent."""
    body: fx.GraphModule = network.body
    modules = dict(body.named_modules())

    def channels_of(node: fx.Node) -> int:
        module = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(module, SpikingNeuron) and module.channels is not None:
            return module.channels
        raise ValueError(f"cannot fold RS scales: unknown channel count of '{node.name}'")

    def fold(node: fx.Node, user: fx.Node, factor: torch.Tensor, offset: int) -> None:
        module = modules.get(user.target) if user.op == "call_module" else None
        if user.op == "output":
            _scale_input_channels(network.head, offset, factor)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            _scale_input_channels(module, offset, factor)
        elif isinstance(module, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
            for pooled_user in user.users:
                fold(user, pooled_user, factor, offset)
        elif isinstance(module, RSNeuron):
            module.input_gain.mul_(factor)
        elif user.op == "call_function" and user.target in (torch.cat, torch.concat):
            parts = user.args[0]
            start = offset + sum(channels_of(p) for p in parts[: parts.index(node)])
            for cat_user in user.users:
                fold(user, cat_user, factor, start)
        else:
            raise ValueError(f"cannot fold RS scales into '{user.name}' ({user.op} {user.target})")

    with torch.no_grad():
        for node in body.graph.nodes:
            module = modules.get(node.target) if node.op == "call_module" else None
            if isinstance(module, RSNeuron) and not module.folded:
                factor = module.scale.detach().clone()
                for user in list(node.users):
                    fold(node, user, factor, 0)
                module.folded = True
