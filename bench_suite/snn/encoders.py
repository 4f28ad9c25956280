"""Input coding of a spiking network, one call per time step: ``encode(x, t, generator) -> Tensor``.

- ``direct``: the input itself at every step (static current; the Spiking-UNet's first conv sees it).
- ``poisson``: binary rate coding of x ∈ [0, 1]: spike = [U < x], U ~ U[0, 1) drawn fresh each step, so
  the firing rate is x (Diehl 2015; the three-stage study's binary SNN).
- ``ternary``: rate coding of zero-mean x ∈ [−1, 1]: spike = sign(x)·[U < |x|] ∈ {−1, 0, +1}, so the mean
  spike is x (Perez-Carrasco 2013, Rathi 2020; the three-stage study's ternary SNN).

Spikes depend only on the generator's state, never on the global RNG, so a run is reproducible from its
seed. Poisson coding is memoryless: ``t`` is accepted for a uniform interface (a coder that depends on time,
e.g. latency coding, would use it) and is ignored here.
"""

from __future__ import annotations

import torch

from bench_suite.core.errors import unknown_name_message


def _check_range(x: torch.Tensor, low: float, high: float, who: str) -> None:
    if not x.is_floating_point():
        raise ValueError(f"{who} needs a floating-point input in [{low:g}, {high:g}], got dtype {x.dtype}")
    if x.numel() == 0:
        return
    found_min, found_max = (float(v) for v in torch.aminmax(x))
    # Written as "not inside" so that NaN (which fails every comparison) is rejected too.
    if not (found_min >= low and found_max <= high):
        raise ValueError(
            f"{who} needs inputs in [{low:g}, {high:g}] but found min {found_min:g} and max {found_max:g}; "
            f"rescale the images to [{low:g}, {high:g}] (or use the 'direct' encoder)"
        )


def _uniform(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)


class DirectEncoder:
    """Returns ``x`` unchanged at every step: a constant input current."""

    name = "direct"

    def encode(self, x: torch.Tensor, t: int, generator: torch.Generator) -> torch.Tensor:
        return x


class PoissonBinaryEncoder:
    """Binary spikes {0, 1} with probability ``x`` per step; ``x`` must lie in [0, 1]."""

    name = "poisson"

    def encode(self, x: torch.Tensor, t: int, generator: torch.Generator) -> torch.Tensor:
        _check_range(x, 0.0, 1.0, "the Poisson (binary) encoder")
        return (_uniform(x, generator) < x).to(x.dtype)


class PoissonTernaryEncoder:
    """Ternary spikes sign(x)·[U < |x|] ∈ {−1, 0, 1}; ``x`` must lie in [−1, 1]."""

    name = "ternary"

    def encode(self, x: torch.Tensor, t: int, generator: torch.Generator) -> torch.Tensor:
        _check_range(x, -1.0, 1.0, "the ternary Poisson encoder")
        return torch.sign(x) * (_uniform(x, generator) < x.abs()).to(x.dtype)


Encoder = DirectEncoder | PoissonBinaryEncoder | PoissonTernaryEncoder

ENCODERS: dict[str, type[Encoder]] = {
    "direct": DirectEncoder,
    "poisson": PoissonBinaryEncoder,
    "ternary": PoissonTernaryEncoder,
}


def make_encoder(name: str) -> Encoder:
    """A new encoder registered as ``name``; ValueError naming the choices otherwise."""
    try:
        return ENCODERS[name]()
    except KeyError:
        raise ValueError(unknown_name_message("encoder", name, ENCODERS)) from None
