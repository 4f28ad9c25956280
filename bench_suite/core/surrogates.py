"""Surrogate gradients for direct training: SpikingJelly's where it has them, the triangle of Yue 2023.

A neuron fires ``H(z)`` with ``z = (v − θ)/θ``, the distance to threshold in units of θ. The forward is
the Heaviside step (z ≥ 0); the backward is the derivative of a smooth stand-in:

- ``sigmoid``:     α·σ(αz)·(1 − σ(αz))                      (SpikingJelly ``Sigmoid``, α = 4)
- ``atan``:        α / (2·(1 + (π/2·α·z)²))                 (SpikingJelly ``ATan``, α = 2)
- ``rectangular``: α where |z| < 1/(2α), else 0 (width 1/α) (SpikingJelly ``Rect``, α = 1)
- ``triangle``:    α·max(0, 1 − |z|)                         (the "linear" surrogate of Yue 2023 / Rathi
  2020, α = 0.3; in membrane units ∂o/∂v = α·max(0, 1 − |v/θ − 1|)/θ, exactly their formula)
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from bench_suite.core.requirements import spikingjelly

sj_surrogate = spikingjelly("activation_based.surrogate")

SurrogateName = Literal["sigmoid", "atan", "rectangular", "triangle"]
DEFAULT_ALPHA: dict[str, float] = {"sigmoid": 4.0, "atan": 2.0, "rectangular": 1.0, "triangle": 0.3}


class _Triangle(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(z)
        ctx.alpha = alpha
        return (z >= 0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (z,) = ctx.saved_tensors
        return grad * ctx.alpha * torch.clamp(1.0 - z.abs(), min=0.0), None


class Triangle(torch.nn.Module):
    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _Triangle.apply(z, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


def make_surrogate(name: str, alpha: float = 0.0) -> torch.nn.Module:
    """Heaviside forward with the named surrogate backward; ``alpha`` 0 means the default above."""
    alpha = alpha or DEFAULT_ALPHA[name]
    if name == "sigmoid":
        return sj_surrogate.Sigmoid(alpha=alpha)
    if name == "atan":
        return sj_surrogate.ATan(alpha=alpha)
    if name == "rectangular":
        return sj_surrogate.Rect(alpha=alpha)
    if name == "triangle":
        return Triangle(alpha)
    raise ValueError(f"unknown surrogate '{name}'; choices: {', '.join(DEFAULT_ALPHA)}")


def surrogate_derivative(name: str, alpha: float, z: torch.Tensor) -> torch.Tensor:
    """The closed form of each backward, for documentation and tests."""
    alpha = alpha or DEFAULT_ALPHA[name]
    if name == "sigmoid":
        s = torch.sigmoid(alpha * z)
        return alpha * s * (1 - s)
    if name == "atan":
        return alpha / (2 * (1 + (math.pi / 2 * alpha * z) ** 2))
    if name == "rectangular":
        return alpha * (z.abs() < 1 / (2 * alpha)).to(z.dtype)
    if name == "triangle":
        return alpha * torch.clamp(1 - z.abs(), min=0)
    raise ValueError(name)
