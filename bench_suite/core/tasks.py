"""The data contract between dataset plugins and the rest: tasks, samples, bundles, patches, noise.

Images are float32 ``[C, H, W]`` (volumes ``[C, D, H, W]``) in [0, 1].
Segmentation targets are int64 ``[H, W]`` class ids.
For denoising a sample holds the *clean* image and no target: noise is added by the task
(training: fresh noise per batch from the run's generator; test: a fixed seed per image id), and the
network learns the noise residual.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Literal

import numpy as np

TaskKind = Literal["segmentation", "denoising"]


@dataclasses.dataclass(frozen=True)
class Task:
    kind: TaskKind
    in_channels: int
    n_classes: int = 2
    noise_sigma: float = 25.0  # denoising only, on the [0, 255] scale
    spatial_dims: int = 2  # 3 for volumes: images [C, D, H, W], targets [D, H, W]

    @property
    def out_channels(self) -> int:
        return self.n_classes if self.kind == "segmentation" else self.in_channels

    def output_channels(self, loss: str | None = None) -> int:
        """Output channels of a network trained with ``loss``: one foreground logit for the binary losses
        (as in the three-stage study: a per-voxel sigmoid), else ``out_channels``.

        For an SNN this matters: with two class logits only their difference is trained, so their
        common part drifts to large values that the spiking decoder must carry too (measured on the
        3-D hippocampus U-Net: logits ±60 around a decisive difference of a few units)."""
        from bench_suite.core.losses import BINARY_LOSSES

        if self.kind == "segmentation" and self.n_classes == 2 and loss in BINARY_LOSSES:
            return 1
        return self.out_channels


@dataclasses.dataclass
class Sample:
    id: str
    image: np.ndarray  # float32 [C, H, W] in [0, 1]
    target: np.ndarray | None = None  # segmentation: int64 [H, W]; denoising: None
    fov: np.ndarray | None = None  # bool [H, W]: metrics only inside (DRIVE field of view)


@dataclasses.dataclass(frozen=True)
class Tiling:
    """Test-time inference on ``size``×``size`` tiles every ``stride`` pixels (2-D images), overlapping
    outputs averaged: the Spiking-UNet reference's DRIVE protocol (48×48, stride 48: 156 tiles per image)."""

    size: int
    stride: int

    def __post_init__(self) -> None:
        if self.size < 16 or self.size % 16:
            raise ValueError(f"the test tile must be a multiple of 16 pixels (a 4-level U-Net), got {self.size}")
        if not 1 <= self.stride <= self.size:
            raise ValueError(f"the test stride must be between 1 and the tile size {self.size}, got {self.stride}")


@dataclasses.dataclass
class DatasetBundle:
    """What a dataset plugin's ``load`` returns: the task, the train and test samples, the split."""

    name: str
    task: Task
    train: list[Sample]
    test: list[Sample]
    patch_size: int  # training patch side; divisible by 16 for a 4-level U-Net
    split: dict[str, Any] = dataclasses.field(default_factory=dict)  # stored with the run
    source: str = ""  # where the files came from (a folder), stored with the run
    test_tiling: Tiling | None = None  # None: whole (padded) test images

    def __post_init__(self) -> None:
        if not self.split:
            self.split = {"train": [s.id for s in self.train], "test": [s.id for s in self.test]}


def stable_seed(*parts: object) -> int:
    """A 32-bit seed from any parts, the same in every process (unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def add_test_noise(sample: Sample, sigma: float) -> np.ndarray:
    """The noisy test input of a denoising sample: fixed noise per image id, σ on the [0, 255] scale."""
    rng = np.random.default_rng(stable_seed("test-noise", sample.id, sigma))
    noise = rng.standard_normal(sample.image.shape).astype(np.float32) * np.float32(sigma / 255.0)
    return sample.image + noise


def sample_patches(
    samples: list[Sample], n_per_image: int, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Random ``size``×``size`` patches, ``n_per_image`` from each sample (reference: DRIVE 600).

    Returns images ``[N, C, size, size]`` and, for segmentation, targets ``[N, size, size]``.
    """
    images, targets = [], []
    for sample in samples:
        _, height, width = sample.image.shape
        if height < size or width < size:
            raise ValueError(f"sample {sample.id} is {height}×{width}, smaller than the {size}-pixel patch")
        rows = rng.integers(0, height - size + 1, n_per_image)
        cols = rng.integers(0, width - size + 1, n_per_image)
        for r, c in zip(rows, cols, strict=True):
            images.append(sample.image[:, r : r + size, c : c + size])
            if sample.target is not None:
                targets.append(sample.target[r : r + size, c : c + size])
    image_array = np.stack(images).astype(np.float32)
    target_array = np.stack(targets).astype(np.int64) if targets else None
    return image_array, target_array
