"""A leaky integrate-and-fire neuron as a bench-suite neuron plugin."""

from __future__ import annotations

import dataclasses

import torch

from bench_suite.core.neuron import SpikingNeuron, SurrogateParams


@dataclasses.dataclass(frozen=True)
class LIFParams(SurrogateParams):  # inherits surrogate= and alpha= (direct training)
    beta: float = 0.9  # membrane decay per step; 1.0 is the IF neuron

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.beta <= 1.0:
            raise ValueError(f"beta must be in (0, 1], got {self.beta}")


class LIFNeuron(SpikingNeuron):
    """Leaky integrate-and-fire: v ← β·v + x, spike at v ≥ θ, output θ·spike, reset by subtraction."""

    Params = LIFParams

    def __init__(self, params: LIFParams | None = None, threshold: float = 1.0, channels: int | None = None) -> None:
        super().__init__(params or LIFParams(), threshold, channels=channels)

    # Only the charge differs from IF, as in SpikingJelly's own LIF: override that step alone.
    def neuronal_charge(self, x: torch.Tensor) -> None:
        self.v = self.params.beta * self.v + x

    def fire(self, v: torch.Tensor) -> torch.Tensor:
        if v.requires_grad:  # direct training / BPTT: Heaviside forward, the declared surrogate backward
            return self.spike(v, self.v_threshold) * self.v_threshold
        return (v >= self.v_threshold).to(v.dtype) * self.v_threshold
