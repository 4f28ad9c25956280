"""3-D NIfTI segmentation datasets: ``hippocampus`` (MSD Task04 layout) and ``adni`` (image/mask pairs).

Both give volumes in a fixed box, z-scored, with a k-fold split by subject:

- volumes keep nibabel's array axes (i, j, k) as ``[D, H, W]``; a size-1 fourth axis is dropped, any
  other 4-D file is an error (pick one volume), and so are NaN/inf voxels;
- the box is cut around a centre (``hippocampus``: the volume's centre, so the test labels play no part in
  where the network looks; ``adni``: the centre of the mask's bounding box, as in Yue et al. 2023) and
  padded where the volume is smaller;
- intensities are z-scored over the real voxels inside the box (images mix uint8 and float32 with maxima
  from about 100 to 10⁶, so no global scale works); padding is 0, i.e. the mean;
- subjects are shuffled with ``split_seed`` and dealt into ``folds`` folds; fold ``fold`` is the test set.
  The bundle's split stores every fold, so all runs of one seed agree on the folds;
- every sample is a :class:`VolumeSample` carrying its voxel spacing (mm, from the header) for HD95/ASSD.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from bench_suite.core.checks import CheckReport, shape_text
from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.tasks import DatasetBundle, Sample, Task, stable_seed
from bench_suite.datasets.files import (
    IGNORED_PREFIXES,
    begin_check,
    cap,
    check_profile,
    first_problem,
    is_ignored,
    locate,
)

NIFTI_SUFFIXES = (".nii.gz", ".nii")

#: profile → (training volumes, test volumes) taken from the fold; None = all
PROFILE_CAPS: dict[str, tuple[int | None, int | None]] = {
    "smoke": (8, 2),
    "quick": (None, None),
    "paper": (None, None),
}


@dataclasses.dataclass
class VolumeSample(Sample):
    """A volume: image float32 ``[1, D, H, W]``, target int64 ``[D, H, W]``, the voxel spacing in mm, and
    the orientation of its array axes (``nibabel.aff2axcodes`` of the image affine, e.g. ``("R", "A", "S")``;
    None when unknown), which names the axial slice axis for 2-D Dice."""

    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    orientation: tuple[str, str, str] | None = None


def _check_split_params(box: tuple[int, ...], folds: int, fold: int) -> None:
    if len(box) != 3 or any(side < 8 or side % 8 for side in box):
        raise ValueError(f"box must be three sides, each a multiple of 8 (a 3-level 3-D U-Net), got {list(box)}")
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be between 0 and folds-1 = {folds - 1}, got {fold}")


@dataclasses.dataclass(frozen=True)
class HippocampusParams:
    labels: Literal["binary", "three-class"] = "binary"  # binary: hippocampus = label > 0
    box: tuple[int, ...] = (40, 56, 40)
    folds: int = 5
    fold: int = 0
    split_seed: int = 0

    def __post_init__(self) -> None:
        _check_split_params(self.box, self.folds, self.fold)


@dataclasses.dataclass(frozen=True)
class ADNIParams:
    box: tuple[int, ...] = (24, 56, 48)
    folds: int = 5
    fold: int = 0
    split_seed: int = 0
    # Scans whose id contains the same match belong to one subject (ADNI's PTID, e.g. 002_S_0295), so
    # that follow-up scans of a test subject never sit in training. No match: the id is the subject.
    subject_pattern: str = r"\d{3}_S_\d{4}"

    def __post_init__(self) -> None:
        _check_split_params(self.box, self.folds, self.fold)
        try:
            re.compile(self.subject_pattern)
        except re.error as error:
            raise ValueError(f"subject_pattern '{self.subject_pattern}' is not a valid regex ({error})") from None


# ---------------------------------------------------------------------------------------------- reading


def nifti_stem(path: Path) -> str | None:
    """``hippocampus_001`` for ``hippocampus_001.nii.gz``; None for files that are not NIfTI."""
    lowered = path.name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lowered.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def nifti_files(folder: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(folder.iterdir()):
        stem = nifti_stem(path)
        if stem is not None and path.is_file() and not is_ignored(path):
            found[stem] = path
    return found


def read_volume(path: Path, what: str) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The 3-D array as stored (dtype kept) and the voxel spacing; errors name the file and the fix."""
    try:
        image = nib.load(str(path))
        data = np.asanyarray(image.dataobj)
        zooms = image.header.get_zooms()
    except Exception as error:  # any decoder failure means the same thing to the user: the file is not usable
        raise BenchSuiteError(
            f"{what} {path} cannot be read as NIfTI ({type(error).__name__}: {error}); the file is damaged or "
            "truncated, replace it with a good copy"
        ) from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise BenchSuiteError(
            f"{what} {path} is {data.ndim}-D (shape {shape_text(data.shape)}) but a 3-D volume is expected; "
            "save a single 3-D volume (e.g. the first channel or time point) instead"
        )
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise BenchSuiteError(
            f"{what} {path} holds {data.dtype} voxels, not real numbers; re-export it as a number volume"
        )
    spacing = tuple(float(z) for z in zooms[:3])
    return data, (spacing + (1.0, 1.0, 1.0))[:3]


def _non_finite(data: np.ndarray, path: Path, what: str) -> None:
    if np.issubdtype(data.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise BenchSuiteError(
                f"{what} {path} has {bad} NaN or infinite voxels; re-export the volume with finite values "
                "(or replace those voxels) before using it"
            )


def label_ids(data: np.ndarray, path: Path, what: str, allowed: tuple[int, ...] | None) -> np.ndarray:
    """Integral class ids as int64; float-stored labels are fine when their values are whole numbers."""
    _non_finite(data, path, what)
    rounded = np.rint(data) if np.issubdtype(data.dtype, np.floating) else data
    if np.issubdtype(data.dtype, np.floating) and not np.array_equal(rounded, data):
        raise BenchSuiteError(
            f"{what} {path} holds fractional values (e.g. {float(data[rounded != data].flat[0]):g}), not class ids; "
            "use the original label volume, not a resampled or probability map"
        )
    values = np.unique(rounded)
    if allowed is not None:
        bad = [v for v in values.tolist() if v not in allowed]
        if bad:
            raise BenchSuiteError(
                f"{what} {path} holds values {[int(v) for v in bad[:6]]} outside the classes "
                f"{list(allowed)}; use the original label file"
            )
    elif values.size and values[0] < 0:
        raise BenchSuiteError(f"{what} {path} holds negative values ({int(values[0])}); a mask is 0 outside, >0 inside")
    return rounded.astype(np.int64)


def box_slices(shape: tuple[int, ...], box: tuple[int, ...], centre: tuple[float, ...]):
    """(source, destination) slices that put a ``box`` around ``centre``, cropping or padding each axis."""
    source, destination = [], []
    for size, side, middle in zip(shape, box, centre, strict=True):
        if size >= side:
            start = int(np.clip(round(middle - side / 2), 0, size - side))
            source.append(slice(start, start + side))
            destination.append(slice(0, side))
        else:
            offset = (side - size) // 2
            source.append(slice(0, size))
            destination.append(slice(offset, offset + size))
    return tuple(source), tuple(destination)


# ---------------------------------------------------------------------------------------------- base


class _NiftiDataset:
    DISPLAY = ""
    NAME = ""
    FOLDERS: tuple[str, ...] = ()
    spatial_dims = 3  # lets the CLI default to the 3-D U-Net for these datasets
    HOW_TO_GET = ""
    ALLOWED: tuple[int, ...] | None = None

    def __init__(self, params=None) -> None:
        self.params = params or self.Params()

    def candidates(self, data_root: Path) -> list[Path]:
        return [Path(data_root) / name for name in self.FOLDERS]

    # subclasses: _scan(folder) -> (pairs [(id, image, label)], problems), _centre, _n_classes, _target
    def subject(self, pair_id: str) -> str:
        return pair_id

    def _read_pair(self, pair: tuple[str, Path, Path]):
        """(image as stored, label ids, spacing, (image dtype, label dtype)) after every per-file check."""
        _, image_path, label_path = pair
        image, spacing = read_volume(image_path, f"{self.DISPLAY} image")
        _non_finite(image, image_path, f"{self.DISPLAY} image")
        raw_label, _ = read_volume(label_path, f"{self.DISPLAY} label")
        label = label_ids(raw_label, label_path, f"{self.DISPLAY} label", self.ALLOWED)
        if image.shape != label.shape:
            raise BenchSuiteError(
                f"{self.DISPLAY} label {label_path} is {shape_text(label.shape)} but its image {image_path} is "
                f"{shape_text(image.shape)}; use the label that belongs to this image"
            )
        return image, label, spacing, (str(image.dtype), str(raw_label.dtype))

    def _prepare(self, pair: tuple[str, Path, Path], read=None) -> tuple[VolumeSample, int]:
        """The boxed, z-scored sample and how many foreground voxels fell outside the box."""
        image, label, spacing, _ = read if read is not None else self._read_pair(pair)
        box = tuple(self.params.box)
        source, destination = box_slices(image.shape, box, self._centre(image, label, pair))
        region = image[source].astype(np.float64)
        std = float(region.std())
        if std == 0.0:
            raise BenchSuiteError(
                f"{self.DISPLAY} image {pair[1]} is one constant value inside the {shape_text(box)} box; "
                "replace it with a real scan"
            )
        volume = np.zeros(box, dtype=np.float32)
        volume[destination] = ((region - region.mean()) / std).astype(np.float32)
        target = np.zeros(box, dtype=np.int64)
        target[destination] = self._target(label[source])
        lost = int(np.count_nonzero(label)) - int(np.count_nonzero(label[source]))
        try:  # the header only (nibabel loads lazily); boxing keeps the array axes, so their codes hold
            codes = tuple(str(c) for c in nib.aff2axcodes(nib.load(str(pair[1])).affine))
            orientation = codes if len(codes) == 3 and None not in codes and "None" not in codes else None
        except Exception:  # no usable affine: the slice axis falls back to axis 0, as volume_metrics states
            orientation = None
        sample = VolumeSample(id=pair[0], image=volume[None], target=target, spacing=spacing,
                              orientation=orientation)
        return sample, lost

    def folds(self, ids: list[str]) -> list[list[str]]:
        """Subjects shuffled with split_seed and dealt into ``folds`` folds (each sorted)."""
        subjects = sorted({self.subject(i) for i in ids})
        if len(subjects) < self.params.folds:
            raise BenchSuiteError(
                f"{self.DISPLAY} data has {len(subjects)} subject{'s' if len(subjects) != 1 else ''}, fewer than "
                f"folds={self.params.folds}; add subjects or set folds to at most {max(2, len(subjects))}"
            )
        rng = np.random.default_rng(stable_seed(self.NAME, "folds", self.params.split_seed))
        order = [subjects[i] for i in rng.permutation(len(subjects))]
        return [sorted(part.tolist()) for part in np.array_split(np.array(order, dtype=object), self.params.folds)]

    def _locate_pairs(self, data_root: Path):
        folder = locate(self.DISPLAY, self.candidates(data_root), self.HOW_TO_GET, data_root)
        pairs, problems = self._scan(folder)
        if problems:
            raise first_problem(problems, self.NAME)
        if not pairs:
            raise BenchSuiteError(f"{self.DISPLAY} folder {folder} holds no image/label pairs; {self._layout_hint()}")
        return folder, pairs

    def load(self, data_root: Path, profile: str) -> DatasetBundle:
        check_profile(profile)
        folder, pairs = self._locate_pairs(Path(data_root))
        folds = self.folds([p[0] for p in pairs])
        test_subjects = set(folds[self.params.fold])
        train_pairs = [p for p in pairs if self.subject(p[0]) not in test_subjects]
        test_pairs = [p for p in pairs if self.subject(p[0]) in test_subjects]
        n_train, n_test = PROFILE_CAPS[profile]
        train = [self._prepare(p)[0] for p in cap(train_pairs, n_train)]
        test = [self._prepare(p)[0] for p in cap(test_pairs, n_test)]
        box = list(self.params.box)
        return DatasetBundle(
            name=self.NAME,
            task=Task("segmentation", in_channels=1, n_classes=self._n_classes(), spatial_dims=3),
            train=train,
            test=test,
            # Volumes are trained whole, in the box; the smallest side stands where 2-D plugins give a patch.
            patch_size=min(box),
            split={
                "train": [s.id for s in train], "test": [s.id for s in test],
                "rule": f"{self.params.folds}-fold by subject, fold {self.params.fold}, "
                f"split_seed {self.params.split_seed}",
                "fold": self.params.fold, "folds": folds, "split_seed": self.params.split_seed,
                "box": box, "profile": profile,
            },
            source=str(folder),
        )

    def check(self, data_root: Path) -> CheckReport:
        report, folder = begin_check(self.NAME, self.DISPLAY, self, data_root)
        if folder is None:
            return report
        pairs, problems = self._scan(folder)
        report.problems.extend(problems)
        report.counts["pairs"] = len(pairs)
        if not pairs and not problems:
            report.problems.append(f"{self.DISPLAY} folder {folder} holds no image/label pairs; {self._layout_hint()}")
        dtypes: dict[str, dict[str, int]] = {"image": {}, "label": {}}
        spacings: dict[tuple[float, ...], int] = {}
        clipped = []
        for pair in pairs:
            read = report.attempt(self._read_pair, pair)
            if read is None:
                continue
            image, label, spacing, stored = read
            report.add_shape("images", image.shape)
            report.add_labels("labels (stored)", np.unique(label))
            spacings[spacing] = spacings.get(spacing, 0) + 1
            for kind, dtype in zip(("image", "label"), stored, strict=True):
                dtypes[kind][dtype] = dtypes[kind].get(dtype, 0) + 1
            prepared = report.attempt(self._prepare, pair, read)
            if prepared is not None and prepared[1]:
                clipped.append((pair[0], prepared[1]))
        for kind, counts in dtypes.items():
            if counts:
                report.notes.append(f"{kind} dtypes: " + ", ".join(f"{d} {n}" for d, n in sorted(counts.items())))
        if spacings:
            shown = ", ".join(
                "×".join(f"{v:g}" for v in s) + f" mm ({n})" for s, n in sorted(spacings.items())[:4]
            )
            report.notes.append(f"voxel spacing: {shown}" + (" ..." if len(spacings) > 4 else ""))
        if clipped:
            worst = max(clipped, key=lambda c: c[1])
            report.notes.append(
                f"{len(clipped)} volumes lose foreground voxels outside the {shape_text(self.params.box)} box "
                f"(most: {worst[0]}, {worst[1]} voxels); a larger box keeps them"
            )
        if pairs:
            folds = report.attempt(self.folds, [p[0] for p in pairs])
            if folds is not None:
                test_subjects = set(folds[self.params.fold])
                report.counts["subjects"] = sum(len(f) for f in folds)
                report.counts["test (fold)"] = sum(self.subject(p[0]) in test_subjects for p in pairs)
                report.counts["train (fold)"] = len(pairs) - report.counts["test (fold)"]
                report.notes.append(
                    f"split: {self.params.folds}-fold by subject, fold {self.params.fold}, "
                    f"split_seed {self.params.split_seed}"
                )
        return report


# ---------------------------------------------------------------------------------------------- plugins


class Hippocampus(_NiftiDataset):
    """MSD Task04 hippocampus MRI (260 labelled volumes), binary or 3-class, boxed 40×56×40, k-fold by subject.

    Layout ``<data_root>/Task04_Hippocampus/imagesTr/hippocampus_XXX.nii.gz`` with ``labelsTr/`` of the
    same names (labels 0 background, 1 anterior, 2 posterior); the ``images/`` + ``labels/`` folders of
    some copies are read too. MSD's unlabelled ``imagesTs/`` and ``._`` resource-fork files are ignored.
    """

    Params = HippocampusParams
    DISPLAY = "Task04_Hippocampus"
    NAME = "hippocampus"
    FOLDERS = ("Task04_Hippocampus",)
    ALLOWED = (0, 1, 2)
    HOW_TO_GET = (
        "run `bench-suite data fetch hippocampus`, or download Task04_Hippocampus.tar from the Medical "
        "Segmentation Decathlon (medicaldecathlon.com) and unpack it into <data_root>/ so that "
        "<data_root>/Task04_Hippocampus/imagesTr and labelsTr exist"
    )
    #: the MSD archive as MONAI's DecathlonDataset downloads it, with the MD5 MONAI publishes (sources/)
    DOWNLOAD = {
        "base_url": "https://msd-for-monai.s3-us-west-2.amazonaws.com/",
        "registry": "hippocampus.txt",
        "unpack": "tar",
        "into": {"Task04_Hippocampus": "Task04_Hippocampus"},
    }
    LAYOUTS = (("imagesTr", "labelsTr"), ("images", "labels"))

    def _layout_hint(self) -> str:
        return "put hippocampus_XXX.nii.gz volumes in imagesTr/ and their labels, same names, in labelsTr/"

    def _scan(self, folder: Path):
        for image_name, label_name in self.LAYOUTS:
            image_dir, label_dir = folder / image_name, folder / label_name
            if image_dir.is_dir() or label_dir.is_dir():
                break
        else:
            return [], [
                f"{self.DISPLAY} folder {folder} has no imagesTr/ and labelsTr/ subfolders; {self._layout_hint()}"
            ]
        if not image_dir.is_dir() or not label_dir.is_dir():
            have, missing = (image_dir, label_dir) if image_dir.is_dir() else (label_dir, image_dir)
            hint = self._layout_hint()
            return [], [f"{self.DISPLAY} folder {folder} has {have.name}/ but no {missing.name}/; {hint}"]
        return _pair_by_name(self.DISPLAY, nifti_files(image_dir), nifti_files(label_dir), label_dir, "label")

    def _centre(self, image, label, pair):
        return tuple(s / 2 for s in image.shape)

    def _n_classes(self) -> int:
        return 2 if self.params.labels == "binary" else 3

    def _target(self, label: np.ndarray) -> np.ndarray:
        return (label > 0).astype(np.int64) if self.params.labels == "binary" else label


class ADNI(_NiftiDataset):
    """Hippocampus masks from ADNI MRI (any NIfTI image/mask pairs), binary, boxed 24×56×48, k-fold by subject.

    ``<data_root>/ADNI`` holds either ``<id>_image.nii[.gz]`` + ``<id>_mask.nii[.gz]`` side by side (in any
    subfolders) or ``images/`` + ``masks/`` with the same file names. A mask's nonzero voxels are the
    structure (left/right or FreeSurfer label numbers all count); the box is centred on its bounding box.
    """

    Params = ADNIParams
    DISPLAY = "ADNI"
    NAME = "adni"
    FOLDERS = ("ADNI",)
    ALLOWED = None
    HOW_TO_GET = (
        "ADNI data needs an approved application to the Alzheimer's Disease Neuroimaging Initiative (ADNI, LONI "
        "Image and Data Archive, adni.loni.usc.edu); export hippocampus image/mask pairs as NIfTI into "
        "<data_root>/ADNI/ as <id>_image.nii.gz + <id>_mask.nii.gz, or as images/ + masks/ with the same names"
    )

    def _layout_hint(self) -> str:
        return (
            "name the pairs <id>_image.nii.gz and <id>_mask.nii.gz, or put them in images/ and masks/ "
            "with the same names"
        )

    def subject(self, pair_id: str) -> str:
        match = re.search(self.params.subject_pattern, pair_id) if self.params.subject_pattern else None
        return match.group(0) if match else pair_id

    def _scan(self, folder: Path):
        if (folder / "images").is_dir() or (folder / "masks").is_dir():
            if not (folder / "images").is_dir() or not (folder / "masks").is_dir():
                have = "images" if (folder / "images").is_dir() else "masks"
                return [], [f"ADNI folder {folder} has {have}/ but not its partner folder; {self._layout_hint()}"]
            return _pair_by_name("ADNI", nifti_files(folder / "images"), nifti_files(folder / "masks"),
                                 folder / "masks", "mask")
        images: dict[str, Path] = {}
        masks: dict[str, Path] = {}
        problems = []
        for path in sorted(folder.rglob("*")):
            stem = nifti_stem(path)
            hidden = any(part.startswith(IGNORED_PREFIXES) for part in path.relative_to(folder).parts)
            if stem is None or hidden or not path.is_file():
                continue
            for suffix, found in (("_image", images), ("_mask", masks)):
                if stem.endswith(suffix):
                    key = stem[: -len(suffix)]
                    if key in found:
                        problems.append(
                            f"ADNI files {found[key]} and {path} share the id '{key}'; keep only one of them"
                        )
                    found[key] = path
        if not images and not masks:
            return [], [f"ADNI folder {folder} holds no <id>_image/<id>_mask NIfTI pairs and no images/ + masks/; "
                        f"{self._layout_hint()}"]
        pairs, pair_problems = _pair_by_name("ADNI", images, masks, None, "mask")
        return pairs, problems + pair_problems

    def _centre(self, image, label, pair):
        where = np.nonzero(label)
        if not where[0].size:
            raise BenchSuiteError(
                f"ADNI mask {pair[2]} is empty, so there is no structure to centre the box on; use the right mask"
            )
        return tuple((float(axis.min()) + float(axis.max()) + 1) / 2 for axis in where)

    def _n_classes(self) -> int:
        return 2

    def _target(self, label: np.ndarray) -> np.ndarray:
        return (label > 0).astype(np.int64)


def _pair_by_name(display: str, images: dict[str, Path], labels: dict[str, Path], label_dir: Path | None, kind: str):
    problems = []
    for stem, path in images.items():
        if stem not in labels:
            partner = label_dir / path.name if label_dir is not None else path.parent / f"{stem}_{kind}.nii.gz"
            where = f"add {partner}"
            problems.append(f"{display} image {path} has no {kind}; {where} or remove the image")
    for stem, path in labels.items():
        if stem not in images:
            problems.append(f"{display} {kind} {path} has no image; add the image or remove the {kind}")
    pairs = [(stem, images[stem], labels[stem]) for stem in sorted(images) if stem in labels]
    return pairs, problems
