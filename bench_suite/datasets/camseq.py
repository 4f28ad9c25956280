"""CamSeq01 road-scene segmentation (``camseq01``): 101 video frames, 32 classes given by label colours.

Layout, as the download unpacks (``<data_root>/CamSeq01``)::

    0016E5_07959.png      960×720 RGB frame
    0016E5_07959_L.png    its label: every pixel one of the colours of label_colors.txt
    label_colors.txt      one class a line, "R G B name" (32 lines); class id = line order, from 0

Labels are turned into class ids by colour at full resolution, then resized with nearest neighbour;
frames are resized bicubically (PIL, which low-pass filters when shrinking). The sizes are Params
(multiples of 16 for a 4-level U-Net); the reference resize is not published, so the profile defaults
are a choice: smoke 96×128, quick 240×320, paper 480×640 (all 3:4 like the frames).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from bench_suite.core.checks import CheckReport, shape_text
from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.tasks import DatasetBundle, Sample, Task, stable_seed
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

#: profile → (training frames, test frames, (height, width)); None = all frames
PROFILES: dict[str, tuple[int | None, int | None, tuple[int, int]]] = {
    "smoke": (4, 2, (96, 128)),
    "quick": (None, None, (240, 320)),
    "paper": (None, None, (480, 640)),
}

COLORS_FILE = "label_colors.txt"
LABEL_SUFFIX = "_L"


@dataclasses.dataclass(frozen=True)
class CamSeqParams:
    height: int = 0  # resized frame height; 0 = the profile's default
    width: int = 0  # resized frame width; 0 = the profile's default
    split: Literal["tail", "random"] = "tail"  # tail: the last frames of the sequence are the test set
    test_fraction: float = 0.2
    split_seed: int = 0  # only for split=random
    patch_size: int = 64

    def __post_init__(self) -> None:
        if (self.height == 0) != (self.width == 0):
            raise ValueError(f"give both height and width (or neither), got {self.height}×{self.width}")
        for side in (self.height, self.width):
            if side and (side < 32 or side % 16):
                raise ValueError(f"height and width must be multiples of 16 and at least 32, got {side}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be between 0 and 1, got {self.test_fraction}")
        check_patch_size(self.patch_size)
        if self.height and self.patch_size > min(self.height, self.width):
            raise ValueError(f"patch_size {self.patch_size} is larger than the {self.height}×{self.width} frames")


def read_label_colors(path: Path) -> tuple[np.ndarray, list[str]]:
    """Colours ``[K, 3]`` uint8 and names from ``label_colors.txt`` ("R G B name", tabs or spaces)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise BenchSuiteError(
            f"CamSeq01 colour list {path} cannot be read ({error.strerror or error}); copy it from the download"
        ) from None
    colors, names = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            rgb = [int(v) for v in parts[:3]]
        except ValueError:
            rgb = []
        if len(parts) < 4 or len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise BenchSuiteError(
                f"CamSeq01 colour list {path} line {number} ('{line.strip()}') is not 'R G B name' with R, G, B "
                "in 0-255; fix that line"
            )
        if rgb in colors:
            raise BenchSuiteError(
                f"CamSeq01 colour list {path} line {number} repeats the colour {tuple(rgb)} of "
                f"'{names[colors.index(rgb)]}'; every class needs its own colour, so fix that line"
            )
        colors.append(rgb)
        names.append(" ".join(parts[3:]))
    if len(colors) < 2:
        raise BenchSuiteError(
            f"CamSeq01 colour list {path} lists {len(colors)} classes; use the file from the download"
        )
    return np.array(colors, dtype=np.uint8), names


def colors_to_ids(rgb: np.ndarray, colors: np.ndarray, where: Path) -> np.ndarray:
    """Class ids ``[H, W]`` (uint8) of an RGB label; a colour not in ``colors`` is an error naming it."""
    codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    palette = (colors[:, 0].astype(np.int32) << 16) | (colors[:, 1].astype(np.int32) << 8) | colors[:, 2]
    order = np.argsort(palette)
    sorted_palette = palette[order]
    position = np.clip(np.searchsorted(sorted_palette, codes), 0, len(palette) - 1)
    known = sorted_palette[position] == codes
    if not known.all():
        unknown, counts = np.unique(codes[~known], return_counts=True)
        worst = unknown[np.argsort(-counts)][:3]
        shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in worst.tolist())
        raise BenchSuiteError(
            f"CamSeq01 label {where} has {len(unknown)} colour{'s' if len(unknown) > 1 else ''} not listed in "
            f"{COLORS_FILE} ({shown}, in {int((~known).sum())} pixels); replace the label with the original "
            f"file (it may have been saved lossily) or add the colour to {COLORS_FILE}"
        )
    return order[position].astype(np.uint8)


#: quick's ANN and ASF on 32 classes, measured on demo-scenes (MT + CW, T = 20, mIoU pooled over the test
#: frames): a constant Adam 2e-3 left the ANN at 0.583, below its own converted network after one ASF epoch
#: (0.773); one-cycle reached 0.761 in the same 12 epochs (cosine 0.728), and ASF at 5e-4 then brings the
#: converted network (0.590) to the ANN's level, 0.761 (1e-4: 0.722, 2e-3: 0.589). Two-class sets keep the
#: constant rate, which one-cycle did not beat on demo-vessels or EM.
MULTI_CLASS_QUICK = {"quick": {"ann_schedule": "onecycle", "asf_lr": 5e-4}}


class CamSeq01:
    """CamSeq01 road scenes: 101 frames 960×720, 32 classes from label colours; split tail/random by Param.

    Default split: the last 20 % of the sequence (21 frames) is the test set, so test frames are not
    interleaved with the near-identical frames around them; ``split=random`` draws them with ``split_seed``.
    """

    Params = CamSeqParams
    FOLDERS = ("CamSeq01",)
    profile_settings = MULTI_CLASS_QUICK
    HOW_TO_GET = (
        "download CamSeq01 (Fauqueur, Brostow and Cipolla, University of Cambridge, 'CamSeq01 dataset', "
        "mi.eng.cam.ac.uk/research/projects/VideoRec/CamSeq01/, under its terms of use) and unpack its "
        "frame/label PNG pairs and label_colors.txt into <data_root>/CamSeq01/"
    )

    def __init__(self, params: CamSeqParams | None = None) -> None:
        self.params = params or CamSeqParams()

    def candidates(self, data_root: Path) -> list[Path]:
        return [Path(data_root) / name for name in self.FOLDERS]

    def _scan(self, folder: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
        files = list_files(folder, (".png",))
        labels = {p.name[: -len(LABEL_SUFFIX) - 4]: p for p in files if p.stem.endswith(LABEL_SUFFIX)}
        frames = {p.stem: p for p in files if not p.stem.endswith(LABEL_SUFFIX)}
        if not files:
            return [], [
                f"CamSeq01 folder {folder} holds no .png frames; unpack the CamSeq01 download there "
                "(0016E5_07959.png, 0016E5_07959_L.png, …, label_colors.txt)"
            ]
        problems = []
        if not (folder / COLORS_FILE).is_file():
            problems.append(
                f"CamSeq01 folder {folder} has no {COLORS_FILE}; copy it from the download (it maps colours to classes)"
            )
        for stem, path in frames.items():
            if stem not in labels:
                problems.append(
                    f"CamSeq01 frame {path} has no label; add {folder / (stem + LABEL_SUFFIX + '.png')} or remove it"
                )
        for stem, path in labels.items():
            if stem not in frames:
                problems.append(f"CamSeq01 label {path} has no frame; add {folder / (stem + '.png')} or remove it")
        pairs = [(frames[s], labels[s]) for s in sorted(frames) if s in labels]
        return pairs, problems

    @staticmethod
    def _read(pair: tuple[Path, Path], colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frame_path, label_path = pair
        rgb = read_image(frame_path, "CamSeq01 frame", "RGB")
        label_rgb = read_image(label_path, "CamSeq01 label", "RGB")
        if label_rgb.shape != rgb.shape:
            raise BenchSuiteError(
                f"CamSeq01 label {label_path} is {shape_text(label_rgb.shape[:2])} but its frame {frame_path} is "
                f"{shape_text(rgb.shape[:2])}; replace the mismatched file"
            )
        return rgb, colors_to_ids(label_rgb, colors, label_path)

    def _split(self, count: int) -> tuple[list[int], list[int], str]:
        p = self.params
        n_test = min(count - 1, max(1, math.ceil(p.test_fraction * count)))
        if p.split == "tail":
            test = list(range(count - n_test, count))
            rule = f"tail: the last {n_test} of {count} frames"
        else:
            rng = np.random.default_rng(stable_seed("camseq01-split", p.split_seed))
            test = sorted(rng.permutation(count)[:n_test].tolist())
            rule = f"random: {n_test} of {count} frames, split_seed {p.split_seed}"
        return [i for i in range(count) if i not in set(test)], test, rule

    def load(self, data_root: Path, profile: str) -> DatasetBundle:
        check_profile(profile)
        folder = locate("CamSeq01", self.candidates(data_root), self.HOW_TO_GET, data_root)
        pairs, problems = self._scan(folder)
        if problems:
            raise first_problem(problems, "camseq01")
        if len(pairs) < 2:
            raise BenchSuiteError(f"CamSeq01 folder {folder} holds {len(pairs)} frame; a split needs at least 2")
        colors, names = read_label_colors(folder / COLORS_FILE)
        n_train, n_test, (height, width) = PROFILES[profile]
        if self.params.height:
            height, width = self.params.height, self.params.width
        train_idx, test_idx, rule = self._split(len(pairs))
        train_idx, test_idx = cap(train_idx, n_train), cap(test_idx, n_test)
        patch = min(self.params.patch_size, height // 16 * 16, width // 16 * 16)

        def samples(indices: list[int]) -> list[Sample]:
            out = []
            for i in indices:
                rgb, ids = self._read(pairs[i], colors)
                image = Image.fromarray(rgb).resize((width, height), Image.Resampling.BICUBIC)
                target = Image.fromarray(ids).resize((width, height), Image.Resampling.NEAREST)
                out.append(Sample(
                    id=pairs[i][0].stem,
                    image=np.ascontiguousarray((np.asarray(image, dtype=np.float32) / 255.0).transpose(2, 0, 1)),
                    target=np.asarray(target, dtype=np.int64),
                ))
            return out

        train, test = samples(train_idx), samples(test_idx)
        return DatasetBundle(
            name="camseq01",
            task=Task("segmentation", in_channels=3, n_classes=len(names)),
            train=train,
            test=test,
            patch_size=patch,
            split={
                "train": [s.id for s in train], "test": [s.id for s in test], "rule": rule,
                "size": [height, width], "classes": names, "profile": profile,
            },
            source=str(folder),
        )

    def check(self, data_root: Path) -> CheckReport:
        report, folder = begin_check("camseq01", "CamSeq01", self, data_root)
        if folder is None:
            return report
        pairs, problems = self._scan(folder)
        report.problems.extend(problems)
        report.counts["frames"] = len(pairs)
        colors_file = folder / COLORS_FILE
        parsed = report.attempt(read_label_colors, colors_file) if colors_file.is_file() else None
        if parsed is not None:
            report.counts["classes"] = len(parsed[1])
        for pair in pairs:
            if parsed is None:
                frame = report.attempt(read_image, pair[0], "CamSeq01 frame", "RGB")
                if frame is not None:
                    report.add_shape("frames", frame.shape)
                continue
            result = report.attempt(self._read, pair, parsed[0])
            if result is not None:
                report.add_shape("frames", result[0].shape)
                report.add_labels("labels (class ids)", np.unique(result[1]))
        if len(pairs) >= 2:
            train, test, rule = self._split(len(pairs))
            report.counts["train"], report.counts["test"] = len(train), len(test)
            report.notes.append(f"split: {rule}")
        return report
