"""Training losses by name: ``ce``, ``bce``, ``dice``, ``bce-dice``, ``l1``.

Every loss is ``loss(output, target) -> scalar tensor``.

- ``ce``: cross-entropy of class logits ``[N, K, ...]`` against integer class maps ``[N, ...]`` (the
  Spiking-UNet reference for segmentation); with ``class_weights`` ``[K]`` each pixel counts by its
  class's weight (PyTorch's weighted mean).
- ``bce``, ``dice``, ``bce-dice``: binary tasks as in the three-stage study (Yue 2023), whose network has ONE
  output channel followed by a per-pixel sigmoid. They accept either that 1-channel logit or a 2-class head
  (see :func:`binary_logits`), so a model built for ``ce`` can be trained with them unchanged. Targets are
  ``{0, 1}`` maps shaped ``[N, ...]`` or ``[N, 1, ...]``.
- ``dice`` = 1 − (2·Σ p·t + ε) / (Σ p + Σ t + ε), p = sigmoid(logit), ε = 1e-5 (the paper's value). The sums
  run over the whole batch, not per sample: a sample (patch) without foreground then does not score a
  degenerate 0/0 that would pull the loss towards "predict nothing".
- ``bce-dice`` = 0.3·BCE + 0.7·Dice (the paper's weights).
- ``l1``: mean absolute error (denoising: the predicted noise map against the true one).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench_suite.core.errors import unknown_name_message

DICE_EPS = 1e-5
#: losses on one foreground logit: a network trained with them gets one output channel (see output_channels)
BINARY_LOSSES = frozenset({"bce", "dice", "bce-dice"})
BCE_DICE_WEIGHTS = (0.3, 0.7)  # (BCE, Dice), Yue et al. 2023, section 3.2

Loss = Callable[..., torch.Tensor]


def binary_logits(output: torch.Tensor) -> torch.Tensor:
    """The foreground logit ``[N, 1, ...]`` of a 1-channel head, or of a 2-class head ``[N, 2, ...]``.

    For two classes the foreground-minus-background logit z₁ − z₀ is returned: its sigmoid equals the
    softmax probability of class 1, so the binary losses see the same probabilities either way.
    """
    if output.ndim < 2:
        raise ValueError(f"expected a network output [N, C, ...], got shape {tuple(output.shape)}")
    channels = output.shape[1]
    if channels == 1:
        return output
    if channels == 2:
        return output[:, 1:2] - output[:, 0:1]
    raise ValueError(
        f"a binary loss needs 1 output channel (sigmoid) or 2 (two-class logits), got {channels} channels in "
        f"an output of shape {tuple(output.shape)}; use 'ce' for more classes"
    )


def _binary_target(target: torch.Tensor, logit: torch.Tensor) -> torch.Tensor:
    """The target as a float tensor shaped like ``logit`` ([N, 1, ...]); class maps [N, ...] gain the axis."""
    if target.ndim == logit.ndim - 1:
        target = target.unsqueeze(1)
    if target.shape != logit.shape:
        raise ValueError(
            f"binary target of shape {tuple(target.shape)} does not match the output {tuple(logit.shape)}; "
            "give a {0,1} map shaped [N, ...] or [N, 1, ...]"
        )
    return target.to(logit.dtype)


def ce_loss(output: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of class logits ``[N, K, ...]`` against integer classes ``[N, ...]`` (mean over pixels,
    weighted by ``class_weights[target]`` where given)."""
    if target.ndim == output.ndim and target.shape[1] == 1:
        target = target.squeeze(1)  # a class map stored with a channel axis
    if class_weights is not None:
        class_weights = class_weights.to(device=output.device, dtype=output.dtype)
    return F.cross_entropy(output, target.long(), weight=class_weights)


def bce_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on the logit (numerically stable form of BCE after a sigmoid), mean over pixels."""
    logit = binary_logits(output)
    return F.binary_cross_entropy_with_logits(logit, _binary_target(target, logit))


def dice_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss 1 − (2·Σp·t + ε)/(Σp + Σt + ε), p = sigmoid(logit), sums over the whole batch."""
    logit = binary_logits(output)
    t = _binary_target(target, logit)
    p = torch.sigmoid(logit)
    return 1.0 - (2.0 * (p * t).sum() + DICE_EPS) / (p.sum() + t.sum() + DICE_EPS)


def bce_dice_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """0.3·BCE + 0.7·Dice (Yue 2023)."""
    w_bce, w_dice = BCE_DICE_WEIGHTS
    return w_bce * bce_loss(output, target) + w_dice * dice_loss(output, target)


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error; shapes must match (broadcasting would silently average the wrong pairs)."""
    if output.shape != target.shape:
        raise ValueError(f"L1 loss: output shape {tuple(output.shape)} differs from target {tuple(target.shape)}")
    return F.l1_loss(output, target.to(output.dtype))


LOSSES: dict[str, Loss] = {
    "ce": ce_loss,
    "bce": bce_loss,
    "dice": dice_loss,
    "bce-dice": bce_dice_loss,
    "l1": l1_loss,
}


def make_loss(name: str) -> Loss:
    """The loss registered as ``name``; ValueError naming the choices otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(unknown_name_message("loss", name, LOSSES)) from None
