"""``demo-hippocampus``: small generated MRI-like volumes with a curved tubular structure, as NIfTI.

Each volume is a noisy, smoothly shaded head-like ellipsoid with a bright curved tube (a bent cylinder
along a random arc, anterior half labelled 1, posterior half 2 like MSD Task04). The volumes are written
once in the MSD Task04 layout (``Task04_Hippocampus/imagesTr`` + ``labelsTr``) under the data root and
read back through the ``hippocampus`` reader, so the demo exercises the real NIfTI path: boxing,
per-volume normalization and the k-fold split by subject. Deterministic from ``data_seed``.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
from scipy import ndimage

from bench_suite.core.tasks import DatasetBundle
from bench_suite.datasets.nifti import Hippocampus, HippocampusParams

#: profile → number of subjects written
SUBJECTS = {"smoke": 10, "quick": 40, "paper": 120}
SHAPE = (36, 50, 36)  # about the size of a Task04 crop


@dataclasses.dataclass(frozen=True)
class DemoHippocampusParams:
    data_seed: int = 0
    labels: Literal["binary", "three-class"] = "binary"
    folds: int = 5
    fold: int = 0

    def __post_init__(self) -> None:
        HippocampusParams(labels=self.labels, folds=self.folds, fold=self.fold)  # same validation


def generate_volume(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(image float32, label uint8 with 0/1/2) of one synthetic subject."""
    zz, yy, xx = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in SHAPE), indexing="ij")
    centre = np.array(SHAPE, dtype=np.float32) / 2 + rng.normal(0, 1.5, 3)
    head = (((zz - centre[0]) / 16) ** 2 + ((yy - centre[1]) / 23) ** 2 + ((xx - centre[2]) / 16) ** 2) < 1
    # the tube: points along a bent arc in the y direction, radius 2.4–3.4 voxels
    t = np.linspace(0, 1, 80)
    length, bend, radius = rng.uniform(22, 32), rng.uniform(-6, 6), rng.uniform(2.4, 3.4)
    path = np.stack([centre[0] + bend * np.sin(np.pi * t) + rng.normal(0, 1),
                     centre[1] - length / 2 + length * t,
                     centre[2] + rng.uniform(-4, 4) + 3 * np.cos(np.pi * t)], axis=1)
    distance = np.full(SHAPE, np.inf, dtype=np.float32)
    along = np.zeros(SHAPE, dtype=np.float32)
    for position, point in zip(t, path, strict=True):
        d = np.sqrt((zz - point[0]) ** 2 + (yy - point[1]) ** 2 + (xx - point[2]) ** 2)
        closer = d < distance
        distance[closer] = d[closer]
        along[closer] = position
    tube = distance < radius
    label = np.where(tube, np.where(along < 0.5, 1, 2), 0).astype(np.uint8)
    shading = ndimage.gaussian_filter(rng.normal(0, 1, SHAPE).astype(np.float32), 6) * 8
    image = 40 * head + 25 * tube + shading + rng.normal(0, 9, SHAPE)
    return np.clip(image, 0, None).astype(np.float32), label


class DemoHippocampus:
    """Generated 3-D volumes with a curved tubular structure, in the MSD Task04 NIfTI layout (no download)."""

    Params = DemoHippocampusParams
    spatial_dims = 3

    def __init__(self, params: DemoHippocampusParams | None = None) -> None:
        self.params = params or DemoHippocampusParams()

    def write(self, folder: Path, subjects: int) -> None:
        """Write ``subjects`` volumes into ``folder/Task04_Hippocampus`` (atomically: a finished folder)."""
        rng = np.random.default_rng(self.params.data_seed)
        staging = Path(tempfile.mkdtemp(prefix=".writing-", dir=folder.parent))
        affine = np.diag([1.0, 1.0, 1.0, 1.0])
        for kind in ("imagesTr", "labelsTr"):
            (staging / "Task04_Hippocampus" / kind).mkdir(parents=True)
        for index in range(1, subjects + 1):
            image, label = generate_volume(rng)
            name = f"hippocampus_{index:03d}.nii.gz"
            nib.save(nib.Nifti1Image(image, affine), staging / "Task04_Hippocampus" / "imagesTr" / name)
            nib.save(nib.Nifti1Image(label, affine), staging / "Task04_Hippocampus" / "labelsTr" / name)
        try:
            staging.rename(folder)
        except OSError:  # another process finished the same folder first
            shutil.rmtree(staging, ignore_errors=True)

    def load(self, data_root: Path, profile: str) -> DatasetBundle:
        subjects = SUBJECTS.get(profile, SUBJECTS["quick"])
        folder = Path(data_root) / "demo-hippocampus" / f"seed{self.params.data_seed}-{subjects}"
        if not folder.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)
            self.write(folder, subjects)
        reader = Hippocampus(HippocampusParams(labels=self.params.labels, box=(40, 56, 40),
                                               folds=self.params.folds, fold=self.params.fold))
        bundle = reader.load(folder, profile)
        bundle.name = "demo-hippocampus"
        return bundle
