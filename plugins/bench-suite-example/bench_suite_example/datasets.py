"""A tiny generated segmentation dataset: noisy images of bright stripes, label = stripe pixels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from bench_suite.core.tasks import DatasetBundle, Sample, Task


@dataclasses.dataclass(frozen=True)
class TinyStripesParams:
    n_train: int = 6
    n_test: int = 2
    data_seed: int = 0

    def __post_init__(self) -> None:
        if self.n_train < 1 or self.n_test < 1:
            raise ValueError("n_train and n_test must be at least 1")


class TinyStripes:
    """Tiny generated stripes segmentation set (32×32), for trying plugins in seconds."""

    Params = TinyStripesParams

    def __init__(self, params: TinyStripesParams | None = None) -> None:
        self.params = params or TinyStripesParams()

    def _sample(self, rng: np.random.Generator, sample_id: str) -> Sample:
        label = np.zeros((32, 32), dtype=np.int64)
        for _ in range(rng.integers(1, 4)):
            row, width = rng.integers(0, 28), rng.integers(2, 5)
            label[row : row + width] = 1
        if rng.random() < 0.5:
            label = label.T.copy()
        image = 0.25 + 0.5 * label + rng.normal(0, 0.15, label.shape)
        return Sample(sample_id, np.clip(image, 0, 1).astype(np.float32)[None], label)

    def load(self, data_root: Path, profile: str) -> DatasetBundle:
        rng = np.random.default_rng(self.params.data_seed)
        train = [self._sample(rng, f"train-{i}") for i in range(self.params.n_train)]
        test = [self._sample(rng, f"test-{i}") for i in range(self.params.n_test)]
        return DatasetBundle("tiny-stripes", Task("segmentation", 1, 2), train, test, patch_size=32,
                             source="generated in memory")
