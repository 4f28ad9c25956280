"""The DRIVE retina vessel dataset (``drive``), read from ``<data_root>/DRIVE`` by the DRIVE layout reader.

The reading, validation and reference preprocessing live in :mod:`bench_suite.datasets.drive_layout`
(shared with ``demo-vessels``); this module adds the plugin, the profile caps and the full-folder check.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np

from bench_suite.core.checks import CheckReport, shape_text
from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.tasks import DatasetBundle, Task, Tiling
from bench_suite.datasets import drive_layout as layout
from bench_suite.datasets.files import begin_check, cap, check_patch_size, check_profile, locate

#: profile → (training images, test images); None = all. Preprocessing statistics always use every image
#: of a split, so a capped profile sees the same pixels as the paper profile.
PROFILE_CAPS: dict[str, tuple[int | None, int | None]] = {
    "smoke": (4, 2),
    "quick": (None, None),
    "paper": (None, None),
}


TestInference = Literal["tiles", "whole"]


@dataclasses.dataclass(frozen=True)
class DriveParams:
    patch_size: int = 48  # training patch side (reference 48), also the test tile's side
    # the reference tests on patch_size tiles cut without overlap (156 per image); "whole": padded images
    test_inference: TestInference = "tiles"
    test_stride: int = 0  # pixels between test tiles; 0: the tile side (no overlap, as the reference)

    def __post_init__(self) -> None:
        check_patch_size(self.patch_size)
        tiling_from_params(self.test_inference, self.patch_size, self.test_stride)  # checks the stride


def tiling_from_params(inference: str, size: int, stride: int) -> Tiling | None:
    """The bundle's test tiling from a dataset's parameters (``stride`` 0: the tile side)."""
    if inference == "whole":
        return None
    if stride < 0 or stride > size:
        raise ValueError(f"test_stride must be 0 (the tile side) or between 1 and the tile side {size}, got {stride}")
    return Tiling(size, stride or size)


class Drive:
    """DRIVE retinal vessels (40 fundus photographs, 20 train / 20 test as released), 2 classes, FOV masks.

    Looked for in ``<data_root>/DRIVE`` holding ``training/`` and ``test/`` as the download unpacks.
    The split is DRIVE's own (training/ vs test/); profiles cap counts: smoke 4 train / 2 test images.
    """

    Params = DriveParams
    FOLDERS = ("DRIVE",)
    HOW_TO_GET = (
        "register on the DRIVE challenge page ('DRIVE: Digital Retinal Images for Vessel Extraction', "
        "drive.grand-challenge.org), download the training and test sets with their manual labels and unpack them "
        "so that <data_root>/DRIVE/training/images and <data_root>/DRIVE/test/images exist"
    )

    def __init__(self, params: DriveParams | None = None) -> None:
        self.params = params or DriveParams()

    def candidates(self, data_root: Path) -> list[Path]:
        return [Path(data_root) / name for name in self.FOLDERS]

    def load(self, data_root: Path, profile: str) -> DatasetBundle:
        check_profile(profile)
        folder = locate("DRIVE", self.candidates(data_root), self.HOW_TO_GET, data_root)
        train, test = layout.read_drive_layout(folder)
        n_train, n_test = PROFILE_CAPS[profile]
        train, test = cap(train, n_train), cap(test, n_test)
        for sample in train:
            if min(sample.image.shape[1:]) < self.params.patch_size:
                raise BenchSuiteError(
                    f"DRIVE training image {sample.id} in {folder} is {shape_text(sample.image.shape[1:])}, "
                    f"smaller than the {self.params.patch_size}-pixel training patch; set a smaller patch_size"
                )
        return DatasetBundle(
            name="drive",
            task=Task("segmentation", in_channels=1, n_classes=2),
            train=train,
            test=test,
            patch_size=self.params.patch_size,
            test_tiling=tiling_from_params(self.params.test_inference, self.params.patch_size, self.params.test_stride),
            split={
                "train": [s.id for s in train], "test": [s.id for s in test],
                "rule": "DRIVE's own split: training/ vs test/", "profile": profile,
            },
            source=str(folder),
        )

    def check(self, data_root: Path) -> CheckReport:
        report, folder = begin_check("drive", "DRIVE", self, data_root)
        if folder is None:
            return report
        for split in layout.SPLITS:
            folders = report.attempt(layout._locate_split, folder, split)
            if folders is None:
                continue
            indexes = {}
            for sub, suffixes in (("images", layout._IMAGE_SUFFIXES), ("1st_manual", (".gif",)), ("mask", (".gif",))):
                indexes[sub] = report.attempt(layout._index_folder, folders[sub], suffixes) or {}
            images, labels, masks = indexes["images"], indexes["1st_manual"], indexes["mask"]
            report.counts[f"{split} images"] = len(images)
            if not images:
                report.problems.append(
                    f"DRIVE folder {folders['images']} contains no .tif images, so the {split} split is empty; "
                    f"put the {split} images there"
                )
            for kind, found in (("label", labels), ("mask", masks)):
                for number, path in images.items():
                    if number not in found:
                        report.problems.append(
                            f"DRIVE image {path} (id {number:02d}) has no {kind}; add it or remove the image"
                        )
                for number, path in found.items():
                    if number not in images:
                        report.problems.append(
                            f"DRIVE {kind} {path} (id {number:02d}) has no image; add the image or remove the {kind}"
                        )
            for number, image_path in images.items():
                self._check_one(report, split, image_path, labels.get(number), masks.get(number))
        return report

    @staticmethod
    def _check_one(report: CheckReport, split: str, image_path: Path, label_path, mask_path) -> None:
        gray = report.attempt(layout._read_rgb, image_path)
        if gray is not None:
            report.add_shape(f"{split} images", gray.shape)
            if gray.size == 0 or float(gray.max()) == float(gray.min()):
                report.problems.append(
                    f"DRIVE image {image_path} is one flat color with nothing to segment; replace it"
                )
        for path, what in ((label_path, "label"), (mask_path, "mask")):
            if path is None:
                continue
            values = report.attempt(layout._read_binary_gif, path, what)
            if values is None:
                continue
            if what == "label":
                report.add_labels(split, np.unique(values.astype(np.int64)))
            elif not values.any():
                report.problems.append(f"DRIVE mask {path} is all black, so no pixel would be evaluated; replace it")
            if gray is not None and values.shape != gray.shape:
                report.problems.append(
                    f"DRIVE {what} {path} is {shape_text(values.shape)} but its image {image_path} is "
                    f"{shape_text(gray.shape)}; replace the mismatched file"
                )
