import math

import numpy as np
import pytest
from scipy import ndimage

from bench_suite.metrics.denoising import denoising_metrics, psnr, ssim


def test_psnr_of_a_known_mse():
    clean = np.zeros((1, 4, 4))
    denoised = np.full((1, 4, 4), 10 / 255)  # MSE = 100 on the [0, 255] scale
    assert psnr(clean, denoised) == pytest.approx(20 * math.log10(255 / 10))


def test_psnr_of_one_wrong_pixel():
    clean = np.zeros((2, 2, 2))
    denoised = clean.copy()
    denoised[1, 0, 1] = 1.0  # one of 8 values off by 255 → MSE = 255² / 8
    assert psnr(clean, denoised) == pytest.approx(10 * math.log10(8))


def test_psnr_of_identical_images_is_infinite():
    image = np.random.default_rng(0).random((3, 8, 8))
    assert psnr(image, image) == math.inf


def test_values_are_clipped_to_the_valid_range_before_scoring():
    clean = np.ones((1, 4, 4))
    assert psnr(clean, np.full((1, 4, 4), 1.7)) == math.inf
    assert psnr(np.zeros((4, 4)), np.full((4, 4), -0.3)) == math.inf  # [H, W] accepted too


def test_ssim_of_identical_images_is_one():
    image = np.random.default_rng(1).random((1, 24, 24))
    assert ssim(image, image) == pytest.approx(1.0)


def test_ssim_of_two_flat_images_is_the_luminance_term():
    a, b = 100.0, 120.0
    c1 = (0.01 * 255) ** 2  # variances are 0, so the contrast-structure term is C2 / C2 = 1
    expected = (2 * a * b + c1) / (a**2 + b**2 + c1)
    assert ssim(np.full((1, 16, 16), a / 255), np.full((1, 16, 16), b / 255)) == pytest.approx(expected)


def _reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2004 written out: Gaussian σ = 1.5 window of 11×11, population moments."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(v):
        return ndimage.gaussian_filter(v, 1.5, truncate=3.5, mode="reflect")

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s[5:-5, 5:-5].mean())  # the border half-window is left out, as scikit-image does


def test_ssim_matches_an_independent_computation():
    rng = np.random.default_rng(2)
    clean = ndimage.gaussian_filter(rng.random((40, 40)), 2)
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    expected = _reference_ssim(clean * 255, noisy * 255)
    assert ssim(clean[None], noisy[None]) == pytest.approx(expected, abs=1e-6)


def test_colour_ssim_is_the_mean_over_channels():
    rng = np.random.default_rng(3)
    clean = rng.random((3, 20, 20))
    noisy = np.clip(clean + rng.normal(0, 0.2, clean.shape), 0, 1)
    per_channel = [ssim(clean[c], noisy[c]) for c in range(3)]
    assert ssim(clean, noisy) == pytest.approx(np.mean(per_channel))


def test_denoising_metrics_and_bad_shapes():
    clean = np.zeros((1, 16, 16))
    metrics = denoising_metrics(clean, clean + 5 / 255)
    assert set(metrics) == {"psnr", "ssim"}
    assert metrics["psnr"] == pytest.approx(20 * math.log10(255 / 5))
    with pytest.raises(ValueError, match="shape"):
        psnr(clean, np.zeros((1, 16, 15)))
