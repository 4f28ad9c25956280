"""ISBI 2012 EM membrane segmentation (``em``): 30 labelled 512×512 slices, split by a declared rule.

Two layouts are read, the challenge's TIFF stacks and the per-slice PNG folders many copies use::

    <folder>/train-volume.tif   30-page 8-bit TIFF           <folder>/train/image/0.png … 29.png
    <folder>/train-labels.tif   30 pages, values {0, 255}    <folder>/train/label/0.png … 29.png

``<folder>`` is ``<data_root>/isbi2012-em`` (also ``ISBI2012`` or ``em``). When both layouts are present
the TIFF stacks win. Slices are numbered 0… in page order (TIFF) or in the numeric order of the PNG names.
Images are used as they are (/255); labels 255 (cell interior) → 1, 0 (membrane) → 0, as the reference.
Only the 30 training slices have public labels, so the test slices are taken from them: by default the
last ``n_test`` slices (one block at the end of the stack: neighbouring slices look alike, and a block
has only one test slice next to a training slice), or the explicit ``test_slices``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tifffile

from bench_suite.core.checks import CheckReport, shape_text
from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.tasks import DatasetBundle, Sample, Task
from bench_suite.datasets.files import (
    begin_check,
    cap,
    check_patch_size,
    check_profile,
    first_problem,
    list_files,
    locate,
    read_image,
)

PROFILE_CAPS: dict[str, tuple[int | None, int | None]] = {
    "smoke": (4, 2),
    "quick": (None, None),
    "paper": (None, None),
}

TIFF_IMAGES, TIFF_LABELS = "train-volume.tif", "train-labels.tif"


@dataclasses.dataclass(frozen=True)
class EMParams:
    n_test: int = 5  # the last n_test labelled slices are the test set
    test_slices: tuple[int, ...] = ()  # explicit test slice numbers (0-based); overrides n_test
    patch_size: int = 64

    def __post_init__(self) -> None:
        if self.n_test < 1:
            raise ValueError(f"n_test must be at least 1, got {self.n_test}")
        if any(i < 0 for i in self.test_slices):
            raise ValueError(f"test_slices are 0-based slice numbers, got {list(self.test_slices)}")
        if len(set(self.test_slices)) != len(self.test_slices):
            raise ValueError(f"test_slices lists a slice twice: {list(self.test_slices)}")
        check_patch_size(self.patch_size)


@dataclasses.dataclass(frozen=True)
class _Slice:
    index: int
    image: tuple[Path, int | None]  # file and page (None: a single-image file)
    label: tuple[Path, int | None]

    @property
    def id(self) -> str:
        return f"slice{self.index:02d}"


class ISBI2012EM:
    """ISBI 2012 EM neuronal membranes: 30 labelled 512×512 slices, 2 classes; test slices declared by a Param.

    Default split: slices 0–24 train, 25–29 test (``n_test=5``); ``test_slices=[0,10,20]`` picks others.
    """

    Params = EMParams
    FOLDERS = ("isbi2012-em", "ISBI2012", "em")
    HOW_TO_GET = (
        "download train-volume.tif and train-labels.tif from the ISBI 2012 challenge 'Segmentation of neuronal "
        "structures in EM stacks' into <data_root>/isbi2012-em/ (per-slice PNGs in train/image/ and train/label/ "
        "work too: `bench-suite data fetch em` downloads them)"
    )
    #: the per-slice PNGs of zhixuhao/unet (data/membrane/: train/image, train/label, test) at a fixed commit
    DOWNLOAD = {
        "base_url": "https://raw.githubusercontent.com/zhixuhao/unet/b45af4d458437d8281cc218a07fd4380818ece4a/",
        "registry": "em.txt",
        "into": {"data/membrane": "isbi2012-em"},
    }

    def __init__(self, params: EMParams | None = None) -> None:
        self.params = params or EMParams()

    def candidates(self, data_root: Path) -> list[Path]:
        return [Path(data_root) / name for name in self.FOLDERS]

    # -------------------------------------------------------------------------------------- structure

    def _scan(self, folder: Path) -> tuple[list[_Slice], list[str]]:
        """The labelled slices and the structural problems (missing partner files, wrong layout)."""
        tiff_images, tiff_labels = folder / TIFF_IMAGES, folder / TIFF_LABELS
        if tiff_images.is_file() or tiff_labels.is_file():
            if not tiff_images.is_file() or not tiff_labels.is_file():
                have, missing = (tiff_images, tiff_labels) if tiff_images.is_file() else (tiff_labels, tiff_images)
                return [], [f"EM folder {folder} has {have.name} but not {missing.name}; put both stacks there"]
            return self._scan_tiff(tiff_images, tiff_labels)
        image_dir, label_dir = folder / "train" / "image", folder / "train" / "label"
        if not image_dir.is_dir() or not label_dir.is_dir():
            return [], [
                f"EM folder {folder} has neither {TIFF_IMAGES} + {TIFF_LABELS} nor train/image/ + train/label/; "
                "put the ISBI 2012 training stacks (or their per-slice PNGs) there"
            ]
        suffixes = (".png", ".tif", ".tiff")
        images = {p.name.split(".")[0]: p for p in list_files(image_dir, suffixes)}
        labels = {p.name.split(".")[0]: p for p in list_files(label_dir, suffixes)}
        problems = [
            f"EM image {path} has no label; add {label_dir / path.name} or remove the image"
            for stem, path in images.items() if stem not in labels
        ] + [
            f"EM label {path} has no image; add {image_dir / path.name} or remove the label"
            for stem, path in labels.items() if stem not in images
        ]
        paired = [stem for stem in images if stem in labels]
        if not images:
            problems.append(f"EM folder {image_dir} holds no .png images; put the 30 training slices there")
        non_numeric = [images[s] for s in paired if not s.isdigit()]
        if non_numeric:
            problems.append(
                f"EM image {non_numeric[0]} is not named by its slice number; rename the slices 0.png, 1.png, …"
            )
            return [], problems
        slices = [
            _Slice(i, (images[s], None), (labels[s], None))
            for i, s in enumerate(sorted(paired, key=int))
        ]
        return slices, problems

    @staticmethod
    def _scan_tiff(images: Path, labels: Path) -> tuple[list[_Slice], list[str]]:
        counts = []
        for path in (images, labels):
            try:
                with tifffile.TiffFile(path) as handle:
                    counts.append(len(handle.pages))
            except Exception as error:  # any decoder failure means the stack is not usable
                return [], [
                    f"EM stack {path} cannot be read ({type(error).__name__}: {error}); the file is damaged or "
                    "truncated, download it again"
                ]
        if counts[0] != counts[1]:
            return [], [
                f"EM stack {images} has {counts[0]} pages but {labels} has {counts[1]}; each slice needs its label, "
                "so use the matching pair of stacks"
            ]
        if counts[0] == 0:
            return [], [f"EM stack {images} has no pages; download it again"]
        return [_Slice(i, (images, i), (labels, i)) for i in range(counts[0])], []

    # -------------------------------------------------------------------------------------- reading

    @staticmethod
    def _read_page(path: Path, page: int | None, what: str) -> np.ndarray:
        if page is None:
            return read_image(path, f"EM {what}", "L")
        try:
            array = np.asarray(tifffile.imread(path, key=page))
        except Exception as error:  # any decoder failure means the stack is not usable
            raise BenchSuiteError(
                f"EM stack {path} page {page} cannot be read ({type(error).__name__}: {error}); the file is "
                "damaged or truncated, download it again"
            ) from None
        if array.ndim == 3 and array.shape[-1] in (3, 4):
            array = array[..., 0]
        if array.ndim != 2 or array.dtype != np.uint8:
            raise BenchSuiteError(
                f"EM stack {path} page {page} is {array.dtype} {array.shape}, not an 8-bit gray image; "
                "use the original ISBI 2012 stack"
            )
        return array

    def _read(self, item: _Slice) -> tuple[np.ndarray, np.ndarray]:
        image = self._read_page(*item.image, "image")
        label = self._read_page(*item.label, "label")
        label_where = f"{item.label[0]}" + (f" page {item.label[1]}" if item.label[1] is not None else "")
        image_where = f"{item.image[0]}" + (f" page {item.image[1]}" if item.image[1] is not None else "")
        if image.shape != label.shape:
            raise BenchSuiteError(
                f"EM label {label_where} is {shape_text(label.shape)} but its image {image_where} is "
                f"{shape_text(image.shape)}; replace the mismatched file"
            )
        values = np.unique(label)
        if set(values.tolist()) <= {0, 255}:
            target = (label == 255).astype(np.int64)
        elif set(values.tolist()) <= {0, 1}:
            target = label.astype(np.int64)  # already mapped to class ids
        else:
            bad = [int(v) for v in values if v not in (0, 1, 255)][:6]
            raise BenchSuiteError(
                f"EM label {label_where} holds values {bad} besides 0 and 255; labels must be 0 (membrane) "
                "and 255 (cell interior), so replace it with the original label"
            )
        return image, target

    # -------------------------------------------------------------------------------------- split

    def _split(self, count: int, where: Path) -> tuple[list[int], list[int], str]:
        p = self.params
        if p.test_slices:
            out_of_range = [i for i in p.test_slices if i >= count]
            if out_of_range:
                raise BenchSuiteError(
                    f"EM test_slices {out_of_range} do not exist in {where}, which has slices 0–{count - 1}; "
                    "choose slice numbers in that range"
                )
            test = sorted(p.test_slices)
            rule = f"test_slices {test}"
        else:
            if p.n_test >= count:
                raise BenchSuiteError(
                    f"EM n_test={p.n_test} leaves no training slice in {where}, which has {count} labelled slices; "
                    f"set n_test below {count}"
                )
            test = list(range(count - p.n_test, count))
            rule = f"last {p.n_test} of {count} labelled slices"
        train = [i for i in range(count) if i not in set(test)]
        if not train:
            raise BenchSuiteError(f"EM test_slices take all {count} slices of {where}; leave some for training")
        return train, test, rule

    def load(self, data_root: Path, profile: str) -> DatasetBundle:
        check_profile(profile)
        folder = locate("ISBI 2012 EM", self.candidates(data_root), self.HOW_TO_GET, data_root)
        slices, problems = self._scan(folder)
        if problems:
            raise first_problem(problems, "em")
        if not slices:
            raise BenchSuiteError(f"EM folder {folder} holds no labelled slices; put the 30 training slices there")
        train_idx, test_idx, rule = self._split(len(slices), folder)
        n_train, n_test = PROFILE_CAPS[profile]
        train_idx, test_idx = cap(train_idx, n_train), cap(test_idx, n_test)

        def samples(indices: list[int]) -> list[Sample]:
            out = []
            for i in indices:
                image, target = self._read(slices[i])
                if min(image.shape) < self.params.patch_size:
                    raise BenchSuiteError(
                        f"EM slice {slices[i].image[0]} is {shape_text(image.shape)}, smaller than the "
                        f"{self.params.patch_size}-pixel patch; set a smaller patch_size"
                    )
                out.append(Sample(id=slices[i].id, image=(image.astype(np.float32) / 255.0)[None], target=target))
            return out

        train, test = samples(train_idx), samples(test_idx)
        return DatasetBundle(
            name="em",
            task=Task("segmentation", in_channels=1, n_classes=2),
            train=train,
            test=test,
            patch_size=self.params.patch_size,
            split={
                "train": [s.id for s in train], "test": [s.id for s in test], "rule": rule,
                "test_slices": test_idx, "profile": profile,
            },
            source=str(folder),
        )

    def check(self, data_root: Path) -> CheckReport:
        report, folder = begin_check("em", "ISBI 2012 EM", self, data_root)
        if folder is None:
            return report
        slices, problems = self._scan(folder)
        report.problems.extend(problems)
        report.counts["labelled slices"] = len(slices)
        if (folder / TIFF_IMAGES).is_file() and (folder / "train" / "image").is_dir():
            report.notes.append(f"both {TIFF_IMAGES} and train/image/ exist; the TIFF stacks are used")
        unlabelled = folder / "test"
        if unlabelled.is_dir():
            count = len(list_files(unlabelled, (".png", ".tif")))
            report.notes.append(f"{count} unlabelled slices in test/ are not used (their labels were never released)")
        for item in slices:
            pair = report.attempt(self._read, item)
            if pair is not None:
                report.add_shape("images", pair[0].shape)
                report.add_labels("labels (after 255→1)", np.unique(pair[1]))
        if slices:
            split = report.attempt(self._split, len(slices), folder)
            if split is not None:
                report.counts["train"], report.counts["test"] = len(split[0]), len(split[1])
                report.notes.append(f"split: {split[2]}")
        elif not problems:
            report.problems.append(f"EM folder {folder} holds no labelled slices; put the 30 training slices there")
        return report
