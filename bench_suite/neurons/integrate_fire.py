"""IF neuron: integrate, spike when v ≥ θ, output θ·spike, reset by subtraction (or to zero)."""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from bench_suite.core.neuron import SpikingNeuron, SurrogateParams


@dataclasses.dataclass(frozen=True)
class IFParams(SurrogateParams):
    reset: Literal["subtract", "zero"] = "subtract"
    threshold: float = 1.0  # multiplies the layer's threshold (1 after weight normalization)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.threshold > 0:
            raise ValueError(f"threshold must be positive, got {self.threshold}")


class IFNeuron(SpikingNeuron):
    """Integrate-and-fire: spike when v ≥ θ, output θ·spike, reset by subtraction (or to zero)."""

    Params = IFParams

    def __init__(self, params: IFParams | None = None, threshold: float = 1.0, channels: int | None = None) -> None:
        params = params or IFParams()
        super().__init__(params, threshold * params.threshold, reset=params.reset, channels=channels)

    def fire(self, v: torch.Tensor) -> torch.Tensor:
        theta = self.v_threshold
        if v.requires_grad:
            return self.spike(v, theta) * theta
        if theta == 1.0:
            # clamp(floor(v), 0, 1) equals (v ≥ 1) for every finite v and is about 3× faster on CPU than
            # a comparison followed by a bool → float copy (converted networks all have θ = 1)
            return torch.floor(v).clamp_(0.0, 1.0)
        return (v >= theta).to(v.dtype) * theta
