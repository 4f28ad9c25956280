"""ML, multi-level firing (Feng et al., IJCAI 2022): K parallel units sharing one input.

Unit k has its own membrane u_k and threshold θ_k = θ·(θ₀ + (k−1)·a) (reference K = 3, θ₀ = 0.6,
a = 1); each step u_k ← τ·u_k + x (leak τ = 0.25), fires when u_k ≥ θ_k and is then reset to 0 (hard
reset). The output is θ times the number of units that fired (0 … K). In direct training each unit's
surrogate is rectangular with width a (the reference's choice), unless another surrogate is set.
"""

from __future__ import annotations

import dataclasses

import torch

from bench_suite.core.neuron import SpikingNeuron, SurrogateParams
from bench_suite.core.surrogates import SurrogateName, make_surrogate


@dataclasses.dataclass(frozen=True)
class MLParams(SurrogateParams):
    units: int = 3
    theta0: float = 0.6
    spacing: float = 1.0  # a: threshold step between units, also the rectangular surrogate's width
    tau: float = 0.25
    surrogate: SurrogateName = "rectangular"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.units <= 16:
            raise ValueError(f"units must be between 1 and 16, got {self.units}")
        if self.theta0 <= 0 or self.spacing <= 0:
            raise ValueError("theta0 and spacing must be positive")
        if not 0.0 <= self.tau <= 1.0:
            raise ValueError(f"tau (leak) must be in [0, 1], got {self.tau}")


class MLNeuron(SpikingNeuron):
    """Multi-level firing: K leaky units with thresholds θ₀ + (k−1)a, output the number that fired."""

    Params = MLParams

    def __init__(self, params: MLParams | None = None, threshold: float = 1.0, channels: int | None = None) -> None:
        params = params or MLParams()
        super().__init__(params, threshold, reset="zero", channels=channels)
        if params.surrogate == "rectangular" and not params.alpha:
            # rectangular of width a in membrane units = width a/θ in threshold units: α = θ/a
            self.surrogate_function = make_surrogate("rectangular", 1.0 / params.spacing)
        self.register_buffer(
            "unit_thresholds",
            # device: a buffer, built on the CPU like the module's parameters and moved with it
            torch.tensor([params.theta0 + k * params.spacing for k in range(params.units)], device="cpu") * threshold,
            persistent=False,
        )
        self._fired = None

    def _per_unit(self, like: torch.Tensor) -> torch.Tensor:
        return self.unit_thresholds.view(-1, *([1] * (like.dim() - 1))).to(like.dtype)

    def neuronal_charge(self, x: torch.Tensor) -> None:
        self.v = self.params.tau * self.v + x.unsqueeze(0)

    def fire(self, v: torch.Tensor) -> torch.Tensor:
        thresholds = self._per_unit(v)
        if v.requires_grad:
            fired = self.surrogate_function((v - thresholds) / self.v_threshold)
        else:
            fired = (v >= thresholds).to(v.dtype)
        self._fired = fired
        return fired.sum(0) * self.v_threshold

    def neuronal_reset(self, out: torch.Tensor) -> None:
        self.v = self.v * (1.0 - self._fired)

    def level_spikes(self, out: torch.Tensor) -> torch.Tensor:
        return self._fired.sum()

    @classmethod
    def converted_threshold(cls, threshold: float, params: MLParams | None) -> float:
        """θ/K: K units firing together give K·θ per step, so θ/K makes the largest output per step the
        normalization's unit, as an IF neuron's θ does. Left at θ, a unit fires only for inputs above
        θ₀(1 − τ) = 0.45 of the unit (the leak τ = 0.25 settles a constant input x at x/(1 − τ)), which
        most normalized activations are not: the converted network was silent (demo-vessels, quick, T = 10:
        F1 0.000 converted, 0.213 after ASF; at θ/K 0.745 and 0.796)."""
        return threshold / (params or MLParams()).units
