"""Reading a dataset's files with clear errors, shared by the dataset plugins.

A dataset plugin that reads real files declares:

- ``FOLDERS``: the folder names under the data root it accepts, canonical name first;
- ``candidates(data_root) -> list[Path]``: every folder it looks at, in order;
- ``check(data_root) -> CheckReport``: reads every file and collects *all* problems;
- ``HOW_TO_GET``: one sentence saying where to get the data and how to lay it out;
- ``DOWNLOAD`` (optional): the public source(s) with their checksums, for ``bench-suite data fetch``
  (``base_url``, ``registry``, ``into``, ``unpack``: see :mod:`bench_suite.experiment.data`).

The helpers below (reading images, the profile caps, locating the folder) are shared by the dataset modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image

from bench_suite.core.checks import CheckReport
from bench_suite.core.errors import BenchSuiteError, unknown_name_message

PROFILES = ("smoke", "quick", "paper")

#: Files a download or an archive may leave beside the real ones (macOS resource forks, Finder data).
IGNORED_PREFIXES = (".", "__MACOSX")


def check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise BenchSuiteError(unknown_name_message("profile", profile, PROFILES))


def cap(items: Sequence, limit: int | None) -> list:
    """The first ``limit`` items (all when ``limit`` is None): profiles cap counts, never reorder."""
    return list(items) if limit is None else list(items)[:limit]


def check_patch_size(patch_size: int) -> None:
    if patch_size < 16 or patch_size % 16:
        raise ValueError(f"patch_size must be a multiple of 16 and at least 16, got {patch_size}")


def is_ignored(path: Path) -> bool:
    return path.name.startswith(IGNORED_PREFIXES)


def numeric_key(path: Path) -> tuple[int, str]:
    """Sort key that puts ``2.png`` before ``10.png`` (numbers first, then names)."""
    stem = path.name.split(".")[0]
    return (int(stem), "") if stem.isdigit() else (1 << 62, stem)


def list_files(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    """Files of ``folder`` (not recursive) whose name ends with one of ``suffixes``, hidden ones skipped."""
    wanted = tuple(s.lower() for s in suffixes)
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and not is_ignored(p) and p.name.lower().endswith(wanted)),
        key=numeric_key,
    )


def first_problem(problems: list[str], name: str) -> BenchSuiteError:
    """The error ``load`` raises for a folder with problems: the first, and a pointer to the rest."""
    more = len(problems) - 1
    if not more:
        return BenchSuiteError(problems[0])
    plural = "s" if more > 1 else ""
    return BenchSuiteError(f"{problems[0]} ({more} more problem{plural}: `bench-suite data check {name}` lists all)")


# ------------------------------------------------------------------------------------------ reading


def read_image(path: Path, what: str, mode: str) -> np.ndarray:
    """An 8-bit image as uint8 ``[H, W]`` (``mode="L"``) or ``[H, W, 3]`` (``mode="RGB"``).

    A colour file read as ``L`` keeps one channel when its channels are equal (a gray image stored as
    RGB loses nothing) and is converted with the ITU-R 601 luma weights otherwise. A gray file read as
    ``RGB`` is an error: colour cannot be made up.
    """
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            array = np.asarray(tifffile.imread(path))
        else:
            with Image.open(path) as image:
                image.load()
                if image.mode in ("P", "PA"):
                    image = image.convert("RGBA" if "transparency" in image.info else "RGB")
                array = np.asarray(image)
    except Exception as error:  # any decoder failure means the same thing to the user: the file is not usable
        raise BenchSuiteError(
            f"{what} {path} cannot be read ({type(error).__name__}: {error}); the file is damaged or truncated, "
            "replace it with a good copy from the dataset download"
        ) from None
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        raise BenchSuiteError(
            f"{what} {path} holds {array.dtype} pixels, not 8-bit; save it as an 8-bit image (values 0-255)"
        )
    if array.ndim == 3 and array.shape[2] in (2, 4):
        array = array[..., :-1]  # alpha carries no image content
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        if mode == "RGB":
            raise BenchSuiteError(
                f"{what} {path} is a gray image but this dataset is colour; use the colour version of the file"
            )
        return array
    if array.ndim != 3 or array.shape[2] != 3:
        raise BenchSuiteError(
            f"{what} {path} has shape {array.shape}, not a 2-D gray or RGB image; replace it with the original file"
        )
    if mode == "RGB":
        return array
    if (array[..., 0] == array[..., 1]).all() and (array[..., 0] == array[..., 2]).all():
        return np.ascontiguousarray(array[..., 0])
    luma = array.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------ report


# ------------------------------------------------------------------------------------------ info / check


def fill_root(text: str, data_root: Path) -> str:
    """``HOW_TO_GET`` texts say ``<data_root>``; messages show the real folder."""
    return text.replace("<data_root>", str(data_root))


def begin_check(name: str, display: str, dataset: Any, data_root: Path) -> tuple[CheckReport, Path | None]:
    """A report for ``name`` and the dataset's folder (None, with the problem recorded, where it is absent)."""
    report = CheckReport(name)
    folder = report.attempt(locate, display, dataset.candidates(data_root), dataset.HOW_TO_GET, data_root)
    if folder is not None:
        report.folder = str(folder)
    return report, folder


def locate(display: str, candidates: Sequence[Path], how_to_get: str, data_root: Path) -> Path:
    """The first existing candidate folder, or an error naming every place looked at."""
    for folder in candidates:
        if folder.is_dir():
            return folder
    looked = ", ".join(str(c) for c in candidates)
    raise BenchSuiteError(f"{display} data not found: none of {looked} is a folder; {fill_root(how_to_get, data_root)}")


# ------------------------------------------------------------------------------------------ fetch


