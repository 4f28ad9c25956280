"""MT neuron (Spiking-UNet): several thresholds checked from high to low within one time step.

With thresholds {2, 1, 0.5, 0.25}·θ a step fires 2θ if v > 2θ (and subtracts it), then θ if the rest
is > θ, then 0.5θ, then 0.25θ: each level at most once, output 0 … 3.75θ, negative v kept. For any
*halving* set (each threshold half the previous one) the greedy loop is a clamped quantization,
out = q·clamp(⌈v/q⌉ − 1, 0, 2^N − 1) with q the smallest threshold, which costs one fused expression
instead of N comparisons; other sets use the loop.

Direct training needs a gradient through the levels. By default (``gradient=levels``) each level's comparison
gets its own surrogate (the greedy loop, differentiated step by step); ``straight-through``
treats one step's firing as the quantizer it is and passes the gradient unchanged wherever the output
is not clamped, 0 < v ≤ (Σ levels + smallest level)·θ (the straight-through estimator of quantized-ANN
training, Bengio 2013; Esser 2020), so a step's derivative is that of a clipped ReLU rather than a
sum of narrow bumps at the thresholds.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing
from typing import Literal

import torch

from bench_suite.core.neuron import SpikingNeuron, SurrogateParams


def optimal_thresholds(n: int) -> tuple[float, ...]:
    """Theorem 1 of Spiking-UNet, as we read its proof: 1/2, 1/4, …, 1/2^N for v ~ U[0, 1]."""
    return tuple(2.0 ** -(k + 1) for k in range(n))


def resolve_thresholds(value: tuple[float, ...] | str) -> tuple[float, ...]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("optimal:") and text[len("optimal:"):].isdigit():
            n = int(text[len("optimal:"):])
            if not 1 <= n <= 12:
                raise ValueError(f"optimal:N needs 1 ≤ N ≤ 12, got {n}")
            return optimal_thresholds(n)
        raise ValueError(f"thresholds must be a list like [2,1,0.5,0.25] or optimal:N, got '{value}'")
    levels = tuple(sorted((float(t) for t in value), reverse=True))
    if any(not math.isfinite(t) or t <= 0 for t in levels):
        raise ValueError(f"thresholds must be positive numbers, got {list(value)}")
    if len(set(levels)) != len(levels):
        raise ValueError(f"thresholds must be distinct, got {list(value)}")
    return levels


def _memory_order(tensor: torch.Tensor) -> torch.Tensor:
    """The elements as one flat view in memory order (channels-last included): counting them that way is
    1.7× cheaper than along the tensor's logical strides."""
    order = sorted(range(tensor.dim()), key=tensor.stride, reverse=True)
    return tensor.permute(order).reshape(-1)


def is_halving(levels: tuple[float, ...]) -> bool:
    return all(math.isclose(a, 2 * b, rel_tol=1e-9) for a, b in itertools.pairwise(levels))


MTGradient = Literal["levels", "straight-through"]


@dataclasses.dataclass(frozen=True)
class MTParams(SurrogateParams):
    thresholds: tuple[float, ...] | str = (2.0, 1.0, 0.5, 0.25)
    # direct training's gradient: one surrogate per level, or straight through the whole quantizer (on
    # demo-vessels, quick DT, T = 10, lr 2e-3: straight-through F1 0.711 in 117 s, per-level 0.696 in 237 s)
    gradient: MTGradient = "levels"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gradient not in typing.get_args(MTGradient):
            raise ValueError(f"gradient must be 'levels' or 'straight-through', got '{self.gradient}'")
        object.__setattr__(self, "thresholds", resolve_thresholds(self.thresholds))


class MTNeuron(SpikingNeuron):
    """Multi-threshold: levels {2,1,0.5,0.25}·θ (an option) fired high to low, each at most once per step."""

    Params = MTParams

    def __init__(self, params: MTParams | None = None, threshold: float = 1.0, channels: int | None = None) -> None:
        params = params or MTParams()
        super().__init__(params, threshold, reset="subtract", channels=channels)
        self.levels = params.thresholds
        self.halving = is_halving(self.levels)
        self.n_levels = len(self.levels)
        if self.n_levels > 16:
            self.halving = False  # the fp32 quantization index stays exact with room to spare up to 2^16 − 1
        self._index_dtype = torch.uint8 if self.n_levels <= 8 else torch.int32

    def fire(self, v: torch.Tensor) -> torch.Tensor:
        theta = self.v_threshold
        if v.requires_grad and self.params.gradient == "straight-through":
            with torch.no_grad():
                quantized = self._fire_levels(v.detach())
            # the forward is exactly the levels fired; the backward is 1 inside the unclamped range
            top = (sum(self.levels) + self.levels[-1]) * theta
            passing = v.clamp(0.0, top)
            return passing + (quantized - passing).detach()
        if v.requires_grad:
            # direct training: the greedy loop with one surrogate per level (strict > vs ≥ differs only
            # on a set of measure zero)
            out = torch.zeros_like(v)
            rest = v
            for level in self.levels:
                fired = self.spike(rest, level * theta) * (level * theta)
                out = out + fired
                rest = rest - fired
            return out
        return self._fire_levels(v)

    def _fire_levels(self, v: torch.Tensor) -> torch.Tensor:
        theta = self.v_threshold
        if self.halving:
            step = self.levels[-1] * theta
            # one new tensor, then in place: much faster on CPU than the out-of-place chain
            index = v.div(step).ceil_().sub_(1.0).clamp_(0.0, 2**self.n_levels - 1)
            if self.record == "stats":
                # kept for level_spikes, which then need not divide and round the output again
                self._index = index.to(self._index_dtype)
            return index.mul_(step)
        out = torch.zeros_like(v)
        rest = v
        for level in self.levels:
            amount = level * theta
            fired = (rest > amount).to(v.dtype) * amount
            out = out + fired
            rest = rest - fired
        return out

    def level_spikes(self, out: torch.Tensor) -> torch.Tensor:
        theta = self.v_threshold
        if self.halving:
            # the quantization index's bits are the levels that fired: count each bit plane's non-zeros, in
            # the narrowest integer (3.4× cheaper than a popcount table indexed by int64, 16 vs 55 ms on a
            # channels-last 128×16×48×48, 2 threads, even with the index recomputed from out)
            index = self.__dict__.pop("_index", None)
            if index is None or index.shape != out.shape:
                index = torch.round(out / (self.levels[-1] * theta)).to(self._index_dtype)
            index = _memory_order(index)
            return sum(torch.count_nonzero(index & (1 << bit)) for bit in range(self.n_levels))
        count = torch.zeros((), dtype=torch.long, device=out.device)
        rest = out
        # out is a sum of fired levels; decoding it level by level, the subtractions' rounding adds up (at
        # θ = 0.7, 2.625 − 1.4 − 0.7 − 0.35 falls 2e-7 short of 0.175), so compare with half the smallest spacing
        spacing = min(self.levels + tuple(a - b for a, b in itertools.pairwise(sorted(self.levels)) if a > b))
        tolerance = 0.5 * spacing * theta
        for level in self.levels:
            fired = rest >= level * theta - tolerance
            count = count + fired.sum()
            rest = rest - fired.to(out.dtype) * level * theta
        return count
