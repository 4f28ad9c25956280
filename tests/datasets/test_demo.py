import inspect

import numpy as np
import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.tasks import add_test_noise, sample_patches
from bench_suite.datasets.demo import (
    COLOR_TEST,
    COLOR_TRAIN,
    DemoDenoise,
    DemoVessels,
    DenoiseParams,
    VesselParams,
    generate_fundus,
)
from bench_suite.metrics.segmentation import binary_segmentation_metrics


@pytest.fixture(scope="module")
def vessels(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return root, DemoVessels(VesselParams()).load(root, "smoke")


@pytest.fixture(scope="module")
def photos():
    return DemoDenoise(DenoiseParams()).load(None, "smoke")


def test_descriptions_are_the_first_docstring_line():
    assert inspect.getdoc(DemoVessels).splitlines()[0] == (
        "Generated branching vessel trees on a fundus-like disc with FOV mask, stored in the DRIVE layout."
    )
    assert inspect.getdoc(DemoDenoise).splitlines()[0] == (
        "Natural photographs bundled with scikit-image, with Gaussian noise, for denoising."
    )


def test_vessel_bundle_matches_its_task(vessels):
    root, bundle = vessels
    assert bundle.name == "demo-vessels"
    assert bundle.task.kind == "segmentation" and bundle.task.in_channels == 1 and bundle.task.n_classes == 2
    assert (len(bundle.train), len(bundle.test)) == (4, 2)
    assert bundle.patch_size == 32 and bundle.patch_size % 16 == 0
    assert [s.id for s in bundle.test] == ["01_test", "02_test"]
    assert [s.id for s in bundle.train] == ["03_training", "04_training", "05_training", "06_training"]
    for sample in bundle.train + bundle.test:
        assert sample.image.shape == (1, 64, 64) and sample.image.dtype == np.float32
        assert 0.0 <= sample.image.min() and sample.image.max() <= 1.0
        assert sample.target.shape == (64, 64) and set(np.unique(sample.target)) == {0, 1}
        assert sample.fov.dtype == bool and not sample.target[~sample.fov].any()
    images, targets = sample_patches(bundle.train, 3, bundle.patch_size, np.random.default_rng(0))
    assert images.shape == (12, 1, 32, 32) and targets.shape == (12, 32, 32)


def test_vessels_are_written_in_the_drive_layout_and_reused(vessels):
    root, bundle = vessels
    folder = root / "demo-vessels" / "seed0-smoke-4x2-64"
    assert bundle.source == str(folder)
    tif = folder / "training/images/03_training.tif"
    assert tif.is_file() and (folder / "test/1st_manual/01_manual1.gif").is_file()
    stamp = tif.stat().st_mtime_ns
    again = DemoVessels(VesselParams()).load(root, "smoke")
    assert tif.stat().st_mtime_ns == stamp  # read back, not regenerated
    assert np.array_equal(again.train[0].image, bundle.train[0].image)
    assert not [p for p in (root / "demo-vessels").iterdir() if p.name.startswith(".")]  # no staging left


def test_vessel_fraction_is_like_drive(vessels):
    _, bundle = vessels
    for sample in bundle.train + bundle.test:
        assert 0.07 < sample.target[sample.fov].mean() < 0.2


def test_vessels_are_deterministic_per_seed(tmp_path, vessels):
    _, bundle = vessels
    same = DemoVessels(VesselParams()).load(tmp_path, "smoke")
    for a, b in zip(same.train + same.test, bundle.train + bundle.test, strict=True):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.target, b.target)
    other = DemoVessels(VesselParams(data_seed=1)).load(tmp_path, "smoke")
    assert not np.array_equal(other.train[0].target, bundle.train[0].target)


def test_vessel_parameters_override_the_profile(tmp_path):
    bundle = DemoVessels(VesselParams(n_train=2, n_test=1, size=48)).load(tmp_path, "quick")
    assert (len(bundle.train), len(bundle.test)) == (2, 1)
    assert bundle.train[0].image.shape == (1, 48, 48) and bundle.patch_size == 48
    assert bundle.source.endswith("seed0-quick-2x1-48")


def test_vessels_at_drive_size_with_its_test_tiles(tmp_path):
    params = VesselParams(n_train=1, n_test=1, size=584, width=565, test_inference="tiles", test_stride=24)
    bundle = DemoVessels(params).load(tmp_path, "quick")
    assert bundle.test[0].image.shape == (1, 584, 565) and bundle.test[0].fov.shape == (584, 565)
    assert bundle.test[0].fov[:, 0].sum() == 0 and bundle.test[0].fov.any()  # the disc fits inside the crop
    assert (bundle.test_tiling.size, bundle.test_tiling.stride) == (48, 24)
    assert bundle.source.endswith("seed0-quick-1x1-584x565")
    assert DemoVessels(VesselParams()).load(tmp_path, "smoke").test_tiling is None  # the demo: whole images
    with pytest.raises(BenchSuiteError, match="between 1 and the tile side 32"):
        DemoVessels(VesselParams(test_inference="tiles", test_stride=40)).load(tmp_path, "smoke")


def test_brightness_threshold_alone_does_not_find_the_vessels():
    rgb, label, fov = generate_fundus(np.random.default_rng(0), 128)
    gray = rgb.astype(float) @ np.array([0.299, 0.587, 0.114])
    best = max(
        binary_segmentation_metrics((gray < t).astype(int), label.astype(int), fov)["f1"]
        for t in np.percentile(gray[fov], np.arange(2, 40, 2))
    )
    assert best < 0.65


@pytest.mark.parametrize(
    "kwargs", [{"width": 64}, {"size": 16}, {"size": -16}, {"size": 64, "width": 20}, {"n_train": -1},
               {"n_test": -2}, {"data_seed": -1}, {"test_stride": -1}]
)
def test_bad_vessel_parameters(kwargs):
    with pytest.raises(ValueError):
        VesselParams(**kwargs)


def test_unknown_profile(tmp_path):
    with pytest.raises(BenchSuiteError, match="profile"):
        DemoVessels(VesselParams()).load(tmp_path, "smok")


def test_denoise_bundle_matches_its_task(photos):
    assert photos.name == "demo-denoise"
    assert photos.task.kind == "denoising" and photos.task.in_channels == 1
    assert photos.task.noise_sigma == 25.0
    assert [s.id for s in photos.test] == ["camera", "astronaut"]
    assert len(photos.train) == 4 and not {s.id for s in photos.train} & {s.id for s in photos.test}
    assert photos.patch_size == 32
    for sample in photos.train + photos.test:
        assert sample.image.shape == (1, 64, 64) and sample.image.dtype == np.float32
        assert 0.0 <= sample.image.min() and sample.image.max() <= 1.0 and sample.image.std() > 0.02
        assert sample.target is None
    noisy = add_test_noise(photos.test[0], photos.task.noise_sigma)
    assert noisy.shape == photos.test[0].image.shape


def test_denoise_colour_uses_colour_photographs_only():
    bundle = DemoDenoise(DenoiseParams(color=True, sigma=15)).load(None, "smoke")
    assert bundle.task.in_channels == 3 and bundle.task.noise_sigma == 15
    assert {s.id for s in bundle.test} <= set(COLOR_TEST) and {s.id for s in bundle.train} <= set(COLOR_TRAIN)
    assert all(s.image.shape == (3, 64, 64) for s in bundle.train + bundle.test)


def test_denoise_is_deterministic_per_seed(photos):
    same = DemoDenoise(DenoiseParams()).load(None, "smoke")
    assert all(np.array_equal(a.image, b.image) for a, b in zip(same.test, photos.test, strict=True))
    other = DemoDenoise(DenoiseParams(data_seed=5)).load(None, "smoke")
    assert not np.array_equal(other.test[0].image, photos.test[0].image)


def test_denoise_size_parameter():
    bundle = DemoDenoise(DenoiseParams(size=32)).load(None, "quick")
    assert bundle.test[0].image.shape == (1, 32, 32) and bundle.patch_size == 32


@pytest.mark.parametrize(
    "kwargs", [{"sigma": 0}, {"sigma": -5}, {"sigma": 101}, {"size": 50}, {"data_seed": -1}]
)
def test_bad_denoise_parameters(kwargs):
    with pytest.raises(ValueError):
        DenoiseParams(**kwargs)
