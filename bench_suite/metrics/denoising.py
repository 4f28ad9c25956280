"""Denoising metrics on the [0, 255] scale: PSNR and SSIM as the reference computes them.

Images come in as float ``[C, H, W]`` (or ``[H, W]``) in [0, 1]. Both are scaled by 255 and clipped to
[0, 255] without rounding, so a network output slightly outside [0, 1] is scored like the saved 8-bit
image would be, minus the quantization.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

#: SSIM constants of Wang et al. 2004 (and SPEC): 11×11 Gaussian window (σ = 1.5, truncated at 3.5σ),
#: population covariance, C1 = (K1·255)², C2 = (K2·255)².
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
DATA_RANGE = 255.0


def _to_255(clean: np.ndarray, denoised: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clean = np.asarray(clean, dtype=np.float64)
    denoised = np.asarray(denoised, dtype=np.float64)
    if clean.shape != denoised.shape:
        raise ValueError(f"denoised image shape {denoised.shape} differs from clean shape {clean.shape}")
    if clean.ndim == 2:
        clean, denoised = clean[None], denoised[None]
    if clean.ndim != 3:
        raise ValueError(f"expected an image [C, H, W] or [H, W], got shape {clean.shape}")
    if not (np.isfinite(clean).all() and np.isfinite(denoised).all()):
        raise ValueError("image holds NaN or infinite values")
    return np.clip(clean * 255.0, 0.0, 255.0), np.clip(denoised * 255.0, 0.0, 255.0)


def psnr(clean: np.ndarray, denoised: np.ndarray) -> float:
    """PSNR in dB, 20·log10(255 / √MSE) over all pixels and channels.

    Identical images (MSE = 0) give ``math.inf``: no finite cap is right for every table, and an
    infinite value is visible instead of silently shifting a mean.
    """
    a, b = _to_255(clean, denoised)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 20.0 * math.log10(DATA_RANGE / math.sqrt(mse))


def ssim(clean: np.ndarray, denoised: np.ndarray) -> float:
    """Mean SSIM, Gaussian window σ = 1.5 (11×11), population covariance; colour: mean over channels."""
    a, b = _to_255(clean, denoised)
    values = [
        structural_similarity(
            a[c],
            b[c],
            data_range=DATA_RANGE,
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
            K1=SSIM_K1,
            K2=SSIM_K2,
        )
        for c in range(a.shape[0])
    ]
    return float(np.mean(values))


def denoising_metrics(clean: np.ndarray, denoised: np.ndarray) -> dict[str, float]:
    """``{"psnr": ..., "ssim": ...}`` of one image."""
    return {"psnr": psnr(clean, denoised), "ssim": ssim(clean, denoised)}
