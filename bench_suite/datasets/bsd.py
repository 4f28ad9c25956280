"""Gaussian denoising test sets (``bsd68``, ``cbsd68``, ``set12``) with a BSD-derived training set.

A test set is a folder of images, ``<data_root>/denoising/<Set>`` or ``<data_root>/<Set>``. The training
set is the folder named by the ``train`` Param, looked up the same way (or an absolute path):

- a flat folder of images, e.g. ``Train400`` (400 gray 180×180 crops, DnCNN) or ``CBSD432`` (colour);
- a BSDS release: a folder with ``train/`` (and ``val/``, ``test/``) image folders, at its top or under
  ``images/``, ``data/images/``, ``BSDS500/data/images/`` or ``BSR/BSDS500/data/images/``. ``train/`` is
  always used; ``test/`` only when a ``val/`` sits beside it (BSDS500: train + test = 400 images). Never
  ``val/``: BSDS500's val set is BSDS300's test set, from which BSD68 was drawn.

Samples hold the clean images in [0, 1] at their own sizes (the evaluator pads by reflection to a
multiple of 16); the task adds Gaussian noise σ on the [0, 255] scale, fixed per test image id.
Colour images in a gray set are converted with the ITU-R 601 luma weights.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from bench_suite.core.checks import CheckReport, shape_text
from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.tasks import DatasetBundle, Sample, Task
from bench_suite.datasets.files import cap, check_patch_size, check_profile, fill_root, list_files, read_image

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")

#: profile → (training images, test images); None = all
PROFILE_CAPS: dict[str, tuple[int | None, int | None]] = {
    "smoke": (4, 2),
    "quick": (100, None),
    "paper": (None, None),
}

BSDS_ROOTS = (".", "images", "data/images", "BSDS500/data/images", "BSR/BSDS500/data/images")


def _check_common(sigma: float, train: str, patch_size: int) -> None:
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be > 0 (on the [0, 255] scale; the papers use 15, 25, 50), got {sigma}")
    if not train.strip():
        raise ValueError("train must name a training folder, e.g. Train400")
    check_patch_size(patch_size)


@dataclasses.dataclass(frozen=True)
class GrayDenoisingParams:
    sigma: float = 25.0  # Gaussian noise σ on the [0, 255] scale (papers: 15, 25, 50)
    train: str = "Train400"  # training folder under <data_root>/denoising or <data_root>, or absolute
    patch_size: int = 48

    def __post_init__(self) -> None:
        _check_common(self.sigma, self.train, self.patch_size)


@dataclasses.dataclass(frozen=True)
class ColorDenoisingParams:
    sigma: float = 25.0  # Gaussian noise σ on the [0, 255] scale (papers: 15, 25, 50)
    train: str = "CBSD432"  # colour training folder (CBSD432, or a BSDS500 release)
    patch_size: int = 48

    def __post_init__(self) -> None:
        _check_common(self.sigma, self.train, self.patch_size)


class _DenoisingSet:
    SET: str = ""
    COLOR: bool = False
    HOW_TO_GET: str = ""
    Params: type = GrayDenoisingParams

    def __init__(self, params=None) -> None:
        self.params = params or self.Params()

    @property
    def name(self) -> str:
        return self.SET.lower()

    FOLDERS: tuple[str, ...] = ()

    def candidates(self, data_root: Path) -> list[Path]:
        return [Path(data_root) / name for name in self.FOLDERS]

    def train_candidates(self, data_root: Path) -> list[Path]:
        train = Path(self.params.train)
        if train.is_absolute():
            return [train]
        return [Path(data_root) / "denoising" / train, Path(data_root) / train]

    def _how(self, data_root: Path) -> str:
        return fill_root(self.HOW_TO_GET, data_root)

    # -------------------------------------------------------------------------------------- folders

    def _test_folder(self, data_root: Path) -> Path:
        for folder in self.candidates(data_root):
            if folder.is_dir():
                return folder
        looked = ", ".join(str(c) for c in self.candidates(data_root))
        raise BenchSuiteError(f"{self.SET} test set not found: none of {looked} is a folder; {self._how(data_root)}")

    def _train_files(self, data_root: Path) -> tuple[Path, list[Path], str]:
        """(folder, image files, how they were chosen) of the training set."""
        candidates = self.train_candidates(data_root)
        folder = next((c for c in candidates if c.is_dir()), None)
        if folder is None:
            looked = ", ".join(str(c) for c in candidates)
            raise BenchSuiteError(
                f"{self.SET} training set '{self.params.train}' not found: none of {looked} is a folder; put the "
                f"training images there or name another folder with train=... ({self._how(data_root)})"
            )
        files = list_files(folder, IMAGE_SUFFIXES)
        if files:
            return folder, files, f"all {len(files)} images of {folder}"
        for sub in BSDS_ROOTS:
            base = folder / sub
            if (base / "train").is_dir() and list_files(base / "train", IMAGE_SUFFIXES):
                parts = ["train", "test"] if (base / "val").is_dir() and (base / "test").is_dir() else ["train"]
                chosen = [f for part in parts for f in list_files(base / part, IMAGE_SUFFIXES)]
                rule = f"BSDS {' + '.join(parts)} of {base.resolve()} ({len(chosen)} images; val/ left out)"
                return folder, chosen, rule
        raise BenchSuiteError(
            f"{self.SET} training folder {folder} holds no images and no BSDS train/ folder; put the training "
            f"images ({', '.join(IMAGE_SUFFIXES)}) there or name another folder with train=..."
        )

    def _read(self, path: Path, what: str) -> np.ndarray:
        array = read_image(path, f"{self.SET} {what}", "RGB" if self.COLOR else "L")
        return array if array.ndim == 3 else array[..., None]

    # -------------------------------------------------------------------------------------- plugin API

    def load(self, data_root: Path, profile: str) -> DatasetBundle:
        check_profile(profile)
        test_folder = self._test_folder(data_root)
        test_files = list_files(test_folder, IMAGE_SUFFIXES)
        if not test_files:
            raise BenchSuiteError(
                f"{self.SET} test folder {test_folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                f"put the {self.SET} images there"
            )
        train_folder, train_files, rule = self._train_files(data_root)
        n_train, n_test = PROFILE_CAPS[profile]
        train_files, test_files = cap(train_files, n_train), cap(test_files, n_test)
        patch = self.params.patch_size

        train = []
        for path in train_files:
            array = self._read(path, "training image")
            if min(array.shape[:2]) < patch:
                raise BenchSuiteError(
                    f"{self.SET} training image {path} is {shape_text(array.shape[:2])}, smaller than the "
                    f"{patch}-pixel training patch; set a smaller patch_size or remove the image"
                )
            train.append(_sample(f"train/{path.stem}", array))
        test = [_sample(path.stem, self._read(path, "test image")) for path in test_files]
        return DatasetBundle(
            name=self.name,
            task=Task("denoising", in_channels=3 if self.COLOR else 1, noise_sigma=float(self.params.sigma)),
            train=train,
            test=test,
            patch_size=patch,
            split={
                "train": [s.id for s in train], "test": [s.id for s in test],
                "rule": f"test: {self.SET} ({test_folder}); train: {rule}", "profile": profile,
                "sigma": float(self.params.sigma),
            },
            source=str(test_folder),
        )

    def check(self, data_root: Path) -> CheckReport:
        report = CheckReport(self.name)
        test_folder = report.attempt(self._test_folder, data_root)
        if test_folder is not None:
            report.folder = str(test_folder)
            test_files = list_files(test_folder, IMAGE_SUFFIXES)
            report.counts["test"] = len(test_files)
            if not test_files:
                report.problems.append(
                    f"{self.SET} test folder {test_folder} holds no images; put the {self.SET} images there"
                )
            for path in test_files:
                array = report.attempt(self._read, path, "test image")
                if array is not None:
                    report.add_shape("test images", array.shape[:2])
        trained = report.attempt(self._train_files, data_root)
        if trained is not None:
            _, files, rule = trained
            report.counts["train"] = len(files)
            report.notes.append(f"training set: {rule}")
            for path in files:
                array = report.attempt(self._read, path, "training image")
                if array is None:
                    continue
                report.add_shape("training images", array.shape[:2])
                if min(array.shape[:2]) < self.params.patch_size:
                    report.problems.append(
                        f"{self.SET} training image {path} is {shape_text(array.shape[:2])}, smaller than the "
                        f"{self.params.patch_size}-pixel patch; set a smaller patch_size or remove the image"
                    )
        return report


def _sample(sample_id: str, array: np.ndarray) -> Sample:
    image = np.ascontiguousarray(array.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0))
    return Sample(id=sample_id, image=image)


_HOW = (
    "{fetch}copy the {set} test images (as distributed with the DnCNN and KAIR denoising code, testsets/{set}) "
    "into <data_root>/denoising/{set}/ and the {train} training images ({source}) into "
    "<data_root>/denoising/{train}/"
)

#: raw files of the repositories that publish the sets, at fixed commits; checksums in sources/*.txt
_DNCNN = "https://raw.githubusercontent.com/cszn/DnCNN/e93b27812d3ff523a3a79d19e5e50d233d7a8d0a/"
_IRCNN = "https://raw.githubusercontent.com/cszn/IRCNN/d9dcd537bdac3ae5b753296cd675db8a303c8f72/"
_TRAIN400 = {
    "base_url": _DNCNN,
    "registry": "train400.txt",
    "into": {"TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400": "denoising/Train400"},
}


class BSD68(_DenoisingSet):
    """BSD68 gray denoising test set (68 Berkeley images), σ by Param; trained on Train400 or a BSDS folder."""

    SET = "BSD68"
    FOLDERS = ("denoising/BSD68", "BSD68")
    Params = GrayDenoisingParams
    HOW_TO_GET = _HOW.format(set="BSD68", train="Train400", source="from DnCNN",
                             fetch="run `bench-suite data fetch bsd68` (both sets), or ")
    DOWNLOAD = ({"base_url": _DNCNN, "registry": "bsd68.txt", "into": {"testsets/BSD68": "denoising/BSD68"}},
                _TRAIN400)


class CBSD68(_DenoisingSet):
    """CBSD68 colour denoising test set (BSD68 in colour), σ by Param; trained on CBSD432 or BSDS500."""

    SET = "CBSD68"
    FOLDERS = ("denoising/CBSD68", "CBSD68")
    COLOR = True
    Params = ColorDenoisingParams
    HOW_TO_GET = _HOW.format(
        set="CBSD68", train="CBSD432", source="BSDS500 without CBSD68; or name a BSDS500 release with train=...",
        fetch="`bench-suite data fetch cbsd68` downloads the test set (no public source with a checksum is "
              "recorded for the training set); ",
    )
    DOWNLOAD = {"base_url": _IRCNN, "registry": "cbsd68.txt", "into": {"testsets/CBSD68": "denoising/CBSD68"}}


class Set12(_DenoisingSet):
    """Set12 gray denoising test set (12 classic images, 256² and 512²), σ by Param; trained on Train400."""

    SET = "Set12"
    FOLDERS = ("denoising/Set12", "Set12")
    Params = GrayDenoisingParams
    HOW_TO_GET = _HOW.format(set="Set12", train="Train400", source="from DnCNN",
                             fetch="run `bench-suite data fetch set12` (both sets), or ")
    DOWNLOAD = ({"base_url": _DNCNN, "registry": "set12.txt", "into": {"testsets/Set12": "denoising/Set12"}},
                _TRAIN400)
