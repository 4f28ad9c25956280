"""Embedded demo datasets, so that ``bench-suite run`` works on a fresh machine with no download.

``demo-vessels`` draws retina-like images and goes through the real DRIVE writer and reader, so the demo
exercises the same validation and preprocessing as the real dataset. ``demo-denoise`` uses the natural
photographs shipped inside scikit-image. Both are deterministic functions of their parameters.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import color, data, transform
from skimage.util import img_as_float

from bench_suite.core.errors import BenchSuiteError, unknown_name_message
from bench_suite.core.tasks import DatasetBundle, Sample, Task, stable_seed
from bench_suite.datasets.drive import TestInference, tiling_from_params
from bench_suite.datasets.drive_layout import read_drive_layout, write_drive_layout

PROFILES = ("smoke", "quick", "paper")


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise BenchSuiteError(unknown_name_message("profile", profile, PROFILES))


def _check_size(size: int) -> None:
    if size < 0:
        raise ValueError(f"size must be 0 (profile default) or a positive multiple of 16, got {size}")
    if size and (size < 32 or size % 16):
        raise ValueError(f"size must be a multiple of 16 and at least 32 (a 4-level U-Net), got {size}")


def _patch_for(size: int, patch: int) -> int:
    """The profile's patch side, shrunk (to a multiple of 16) when the images are smaller."""
    return min(patch, size // 16 * 16)


# ------------------------------------------------------------------------------------------ demo-vessels


@dataclasses.dataclass(frozen=True)
class VesselParams:
    data_seed: int = 0
    n_train: int = 0  # 0: the profile's default
    n_test: int = 0  # 0: the profile's default
    size: int = 0  # image height in pixels (any side ≥ 32 with width); 0: the profile's default
    width: int = 0  # image width; 0: square (DRIVE's photographs: size=584, width=565)
    # as drive: "tiles" runs the test images as patch-sized tiles; the demo's default is whole images
    test_inference: TestInference = "whole"
    test_stride: int = 0  # pixels between test tiles; 0: the tile side (no overlap)

    def __post_init__(self) -> None:
        for name in ("data_seed", "n_train", "n_test", "test_stride"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if self.width and not self.size:
            raise ValueError(f"width={self.width} needs a size (the height) too, e.g. size=584,width=565")
        for name in ("size", "width"):
            if getattr(self, name) and getattr(self, name) < 32:
                raise ValueError(f"{name} must be 0 (profile default) or at least 32 pixels, got {getattr(self, name)}")


#: profile → (n_train, n_test, image side, training patch side)
VESSEL_PROFILES: dict[str, tuple[int, int, int, int]] = {
    "smoke": (4, 2, 64, 32),
    "quick": (16, 6, 128, 48),
    "paper": (20, 20, 256, 48),
}


R0_FRACTION = 0.014  # trunk radius / image side (DRIVE: about 8 px wide at 565 px)
VESSEL_FRACTION = (0.10, 0.14)  # of the FOV, DRIVE's range
# The summed drawn area overestimates the label (crossings and branch points overlap): measured on 60
# images of sides 64-256, the label comes out at about 1/1.5 of the budget.
AREA_OVERLAP = 1.5


def _blob(yy: np.ndarray, xx: np.ndarray, where: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-((yy - where[0]) ** 2 + (xx - where[1]) ** 2) / (2.0 * sigma**2))


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return field / (field.std() + 1e-12)


def _grow_trees(
    rng: np.random.Generator,
    centre: np.ndarray,
    radius: float,
    optic_disc: np.ndarray,
    side: float,
    r0: float,
    area_budget: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Centre-line points ``[N, 2]`` and vessel radii ``[N]``, one entry per branching generation.

    Trunks leave the optic disc in four directions like the retinal arcades; each segment wanders with a
    slight curvature and ends in a bifurcation into a continuation and a thinner side branch. Growth is
    breadth-first and stops when the drawn area reaches ``area_budget`` pixels, so the vessel fraction
    is set by the budget instead of depending on the image size and the luck of the branching.
    """
    towards_fovea = math.pi if side > 0 else 0.0
    bend = 1.0 if side > 0 else -1.0
    trunks = [
        (towards_fovea - bend * rng.uniform(0.9, 1.2), r0, -bend * 0.006),  # upper temporal arcade
        (towards_fovea + bend * rng.uniform(0.9, 1.2), r0, bend * 0.006),  # lower temporal arcade
        (towards_fovea + math.pi - bend * rng.uniform(0.5, 0.8), 0.8 * r0, 0.0),  # nasal
        (towards_fovea + math.pi + bend * rng.uniform(0.5, 0.8), 0.8 * r0, 0.0),
    ]
    generations: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    queue = collections.deque((optic_disc.astype(float), angle, r, c, 0) for angle, r, c in trunks)
    area = 0.0
    while queue and area < area_budget:
        start, angle, r, curvature, depth = queue.popleft()
        length = radius * rng.uniform(0.15, 0.3) * (0.5 + 0.5 * min(1.0, r / r0))
        n_steps = max(2, int(length))
        angles = angle + np.cumsum(curvature + rng.normal(0.0, 0.06, n_steps))
        points = start + np.cumsum(np.stack([np.sin(angles), np.cos(angles)], axis=1), axis=0)
        inside = np.linalg.norm(points - centre, axis=1) < radius - 1.0
        # A vessel that reaches the FOV border stops there, like DRIVE's vessels at the image edge.
        leaves = not inside.all()
        if leaves:
            points = points[: int(np.argmin(inside))]
        if len(points) == 0:
            continue
        radii = np.linspace(r, 0.92 * r, len(points))
        # Pixels covered by a centre line of radius r: 1 for r = 0.5, about 2r + 0.5 across otherwise.
        area += float(np.sum(np.maximum(1.0, 2.0 * radii + 0.5)))
        points_list, radii_list = generations.setdefault(depth, ([], []))
        points_list.append(points)
        radii_list.append(radii)
        if leaves or len(points) < 2:
            continue
        end, end_angle, end_r = points[-1], angles[len(points) - 1], radii[-1]
        sign = rng.choice((-1.0, 1.0))
        # Radii never drop below half a pixel: the finest vessels stay one pixel wide, as in DRIVE.
        continuation_r = max(0.5, end_r * rng.uniform(0.82, 0.94))
        side_r = max(0.5, end_r * rng.uniform(0.55, 0.75))
        continuation_angle = end_angle + sign * rng.uniform(0.05, 0.3)
        side_angle = end_angle - sign * rng.uniform(0.6, 1.2)
        queue.append((end, continuation_angle, continuation_r, curvature, depth + 1))
        queue.append((end, side_angle, side_r, rng.normal(0.0, 0.01), depth + 1))
    return [
        (np.concatenate(generations[d][0]), np.concatenate(generations[d][1])) for d in sorted(generations)
    ]


def _render_vessels(
    trees: list[tuple[np.ndarray, np.ndarray]], size: int, r0: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Vessel label (bool) and darkening (0..1, a cylinder's absorption profile) from centre lines.

    Each generation is rendered on its own so that a thin branch crossing near a thick vessel does not
    cut a notch into it (a nearest-centre-line lookup across all vessels would).
    """
    label = np.zeros((size, size), dtype=bool)
    darkness = np.zeros((size, size))
    for points, radii in trees:
        rows = np.clip(np.rint(points[:, 0]).astype(int), 0, size - 1)
        cols = np.clip(np.rint(points[:, 1]).astype(int), 0, size - 1)
        radius_map = np.zeros((size, size))
        np.maximum.at(radius_map, (rows, cols), radii)
        distance, (near_r, near_c) = ndimage.distance_transform_edt(radius_map == 0, return_indices=True)
        r = radius_map[near_r, near_c]
        label |= distance <= r
        # Thin vessels are fainter than thick ones, as in fundus photographs.
        contrast = (0.35 + 0.65 * np.minimum(1.0, r / r0)) * rng.uniform(0.85, 1.15)
        profile = np.sqrt(np.clip(1.0 - (distance / (r + 0.6)) ** 2, 0.0, 1.0))
        np.maximum(darkness, contrast * profile, out=darkness)
    return label, np.clip(darkness, 0.0, 1.0)


def generate_fundus(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One fundus-like image: RGB uint8 ``[H, W, 3]``, vessel label and FOV disc, both bool ``[H, W]``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    centre = size / 2 - 0.5 + rng.normal(0.0, 0.01 * size, 2)
    radius = size * rng.uniform(0.45, 0.48)
    rho = np.hypot(yy - centre[0], xx - centre[1]) / radius
    fov = rho <= 1.0

    side = rng.choice((-1.0, 1.0))  # left or right eye: optic disc on one side, fovea on the other
    disc = centre + np.array([rng.normal(0.0, 0.05), side * rng.uniform(0.45, 0.6)]) * radius
    fovea = centre + np.array([rng.normal(0.0, 0.05), -side * rng.uniform(0.25, 0.4)]) * radius
    r0 = max(1.5, R0_FRACTION * size)
    budget = rng.uniform(*VESSEL_FRACTION) * math.pi * radius**2 * AREA_OVERLAP
    trees = _grow_trees(rng, centre, radius, disc, side, r0, budget)
    label, darkness = _render_vessels(trees, size, r0, rng)
    label &= fov

    # Illumination that varies more across the disc than the vessels darken it, so no global threshold
    # on brightness separates vessels from background.
    vignette = 1.0 - rng.uniform(0.35, 0.55) * rho**2
    low_freq = 1.0 + rng.uniform(0.08, 0.14) * _smooth_noise(rng, size, size / 6)
    tilt = rng.uniform(-0.15, 0.15, 2)
    gradient = 1.0 + (tilt[0] * (yy - size / 2) + tilt[1] * (xx - size / 2)) / size
    texture = 1.0 + 0.03 * _smooth_noise(rng, size, 1.5)
    illumination = vignette * low_freq * gradient * texture
    disc_glow = _blob(yy, xx, disc, 0.08 * radius)
    fovea_shade = _blob(yy, xx, fovea, 0.14 * radius)

    base = np.array([rng.uniform(0.72, 0.88), rng.uniform(0.33, 0.44), rng.uniform(0.12, 0.2)])
    rgb = base * illumination[..., None]
    rgb = rgb * (1.0 - 0.3 * fovea_shade[..., None]) + disc_glow[..., None] * np.array([0.35, 0.45, 0.25])

    # Small dark spots (haemorrhage-like) that look like vessel cross-sections but are not vessels.
    spots = np.zeros((size, size))
    for _ in range(rng.integers(2, 6)):
        where = centre + rng.uniform(-0.7, 0.7, 2) * radius
        spot_r = rng.uniform(1.0, 2.5) * max(1.0, size / 128)
        spots = np.maximum(spots, rng.uniform(0.3, 0.6) * _blob(yy, xx, where, spot_r))

    absorption = np.array([0.3, 0.7, 0.55])  # vessels show best in the green channel
    rgb = rgb * (1.0 - np.maximum(darkness, spots)[..., None] * absorption)
    rgb = ndimage.gaussian_filter(rgb, sigma=(0.6, 0.6, 0.0))
    rgb = rgb + rng.normal(0.0, 0.015, rgb.shape)
    edge = np.clip((1.0 - rho) * radius + 0.5, 0.0, 1.0)  # soft FOV rim, black outside
    rgb = rgb * edge[..., None] + rng.normal(0.0, 0.004, rgb.shape)
    image = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    return image, label, fov


def _centre(side: int, length: int) -> slice:
    start = (side - length) // 2
    return slice(start, start + length)


class DemoVessels:
    """Generated branching vessel trees on a fundus-like disc with FOV mask, stored in the DRIVE layout.

    Each image is a function of (data_seed, split, index, size), so growing ``n_train`` keeps the first
    images. Test images take DRIVE numbers 01…, training images follow, as in DRIVE (01–20 test, 21–40
    training). The files are written once under ``<data_root>/demo-vessels/`` and read back with the
    DRIVE reader, so the demo gets DRIVE's validation and preprocessing.
    """

    Params = VesselParams

    def __init__(self, params: VesselParams | None = None) -> None:
        self.params = params or VesselParams()

    def resolve(self, profile: str) -> tuple[int, int, int, int]:
        """(n_train, n_test, size, patch_size) for ``profile``, explicit parameters winning."""
        _check_profile(profile)
        n_train, n_test, size, patch = VESSEL_PROFILES[profile]
        p = self.params
        size = p.size or size
        return p.n_train or n_train, p.n_test or n_test, size, _patch_for(min(size, p.width or size), patch)

    def folder(self, data_root: Path, profile: str) -> Path:
        n_train, n_test, size, _ = self.resolve(profile)
        sides = f"{size}x{self.params.width}" if self.params.width and self.params.width != size else f"{size}"
        name = f"seed{self.params.data_seed}-{profile}-{n_train}x{n_test}-{sides}"
        return Path(data_root) / "demo-vessels" / name

    def load(self, data_root: Path, profile: str) -> DatasetBundle:
        n_train, n_test, size, patch = self.resolve(profile)
        folder = self.folder(data_root, profile)
        if not folder.is_dir():
            self._write(folder, n_train, n_test, size)
        train, test = read_drive_layout(folder)
        try:
            tiling = tiling_from_params(self.params.test_inference, patch, self.params.test_stride)
        except ValueError as error:  # the tile is the profile's patch, known only now
            raise BenchSuiteError(f"demo-vessels at the {profile} profile (tiles of {patch} pixels): {error}") from None
        return DatasetBundle(
            name="demo-vessels",
            task=Task("segmentation", in_channels=1, n_classes=2),
            train=train,
            test=test,
            patch_size=patch,
            test_tiling=tiling,
            source=str(folder),
        )

    def _items(self, split: str, count: int, first_number: int, size: int) -> list:
        width = self.params.width or size
        items = []
        for index in range(count):
            seed = stable_seed("demo-vessels", self.params.data_seed, split, index, size)
            rng = np.random.default_rng(seed)
            image, label, fov = generate_fundus(rng, max(size, width))
            # a non-square image is the square one's centre (the FOV disc, 0.90-0.96 of the side, fits)
            rows, cols = _centre(max(size, width), size), _centre(max(size, width), width)
            items.append((first_number + index, image[rows, cols], label[rows, cols], fov[rows, cols]))
        return items

    def _write(self, folder: Path, n_train: int, n_test: int, size: int) -> None:
        # Written next to the target and renamed into place: a run interrupted while writing, or two
        # runs writing at once, never leave a half-written folder that later looks complete.
        test = self._items("test", n_test, 1, size)
        train = self._items("training", n_train, n_test + 1, size)
        staging = folder.with_name(f".{folder.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            write_drive_layout(staging, train, test)
            try:
                staging.rename(folder)
            except OSError:
                if not folder.is_dir():
                    raise
        except OSError as error:
            raise BenchSuiteError(
                f"cannot write the demo-vessels data to {folder} ({error.strerror or error}); "
                "choose a writable data folder"
            ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)


# ------------------------------------------------------------------------------------------ demo-denoise

#: Photographs in skimage.data that need no download. The split is fixed: test images first.
GRAY_TEST = ("camera", "astronaut", "coffee")
GRAY_TRAIN = (
    "brick", "grass", "gravel", "coins", "moon", "page", "text", "clock",
    "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
)  # fmt: skip
COLOR_TEST = ("astronaut", "coffee")
COLOR_TRAIN = ("chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")

#: profile → (image side, training patch side, number of test images, number of training images or 0 = all)
DENOISE_PROFILES: dict[str, tuple[int, int, int, int]] = {
    "smoke": (64, 32, 2, 4),
    "quick": (128, 48, 3, 0),
    "paper": (256, 48, 3, 0),
}


@dataclasses.dataclass(frozen=True)
class DenoiseParams:
    sigma: float = 25.0  # Gaussian noise σ on the [0, 255] scale
    data_seed: int = 0  # 0: centred square crops; other seeds: random square crops
    size: int = 0  # image side in pixels; 0: the profile's default
    color: bool = False  # colour photographs only, 3 channels

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sigma) and 0.0 < self.sigma <= 100.0):
            raise ValueError(f"sigma must be > 0 and ≤ 100 (on the [0, 255] scale), got {self.sigma}")
        if self.data_seed < 0:
            raise ValueError(f"data_seed must be ≥ 0, got {self.data_seed}")
        _check_size(self.size)


def _load_photo(name: str, color_mode: bool) -> np.ndarray:
    """``[H, W, C]`` float in [0, 1]: gray (C = 1) unless ``color_mode``."""
    image = img_as_float(getattr(data, name)())
    if color_mode:
        return image
    if image.ndim == 3:
        image = color.rgb2gray(image)
    return image[..., None]


def _square_crop(image: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    height, width = image.shape[:2]
    if rng is None:
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
    else:
        side = int(min(height, width) * rng.uniform(0.6, 1.0))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    return image[top : top + side, left : left + side]


class DemoDenoise:
    """Natural photographs bundled with scikit-image, with Gaussian noise, for denoising.

    Fixed split: test = camera, astronaut, coffee (smoke: the first two), training = the other twelve
    (smoke: the first four); with ``color=true`` only the colour photographs, test = astronaut, coffee.
    Each photograph is cropped to a square (centred for data_seed 0, a seeded random crop otherwise) and
    resized with anti-aliasing to the profile's side (smoke 64, quick 128, paper 256). Samples hold the
    clean images; the task adds the noise (fixed per test image).
    """

    Params = DenoiseParams

    def __init__(self, params: DenoiseParams | None = None) -> None:
        self.params = params or DenoiseParams()

    def load(self, data_root: Path, profile: str) -> DatasetBundle:
        _check_profile(profile)
        size, patch, n_test, n_train = DENOISE_PROFILES[profile]
        p = self.params
        size = p.size or size
        test_names = (COLOR_TEST if p.color else GRAY_TEST)[:n_test]
        train_names = COLOR_TRAIN if p.color else GRAY_TRAIN
        if n_train:
            train_names = train_names[:n_train]
        train = [self._sample(name, size) for name in train_names]
        test = [self._sample(name, size) for name in test_names]
        return DatasetBundle(
            name="demo-denoise",
            task=Task("denoising", in_channels=3 if p.color else 1, noise_sigma=p.sigma),
            train=train,
            test=test,
            patch_size=_patch_for(size, patch),
            source="skimage.data",
        )

    def _sample(self, name: str, size: int) -> Sample:
        p = self.params
        rng = np.random.default_rng(stable_seed("demo-denoise", p.data_seed, name)) if p.data_seed else None
        photo = _square_crop(_load_photo(name, p.color), rng)
        resized = transform.resize(photo, (size, size), order=3, anti_aliasing=True, mode="reflect")
        image = np.clip(resized, 0.0, 1.0).astype(np.float32).transpose(2, 0, 1)
        return Sample(id=name, image=np.ascontiguousarray(image))
