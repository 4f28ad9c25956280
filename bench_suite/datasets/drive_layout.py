"""The DRIVE retina folder layout: read (with validation and the reference preprocessing) and write.

Layout, as the DRIVE download unpacks::

    <root>/training/images/21_training.tif      RGB TIFF
    <root>/training/1st_manual/21_manual1.gif   vessel label, values {0, 255}
    <root>/training/mask/21_training_mask.gif   field-of-view mask, values {0, 255}
    <root>/test/images/01_test.tif
    <root>/test/1st_manual/01_manual1.gif
    <root>/test/mask/01_test_mask.gif
    <root>/test/2nd_manual/01_manual2.gif        optional second observer, not used

Files are paired by their leading number. Preprocessing follows the Spiking-UNet / retina-unet code
(``pre_processing.my_PreProc``), with each split normalized by its own statistics as the reference does:

1. gray = 0.299 R + 0.587 G + 0.114 B;
2. z-score with the mean and standard deviation of all pixels of the split (all images together);
3. per-image min-max to [0, 255] (this undoes step 2 up to rounding; kept for fidelity);
4. CLAHE with OpenCV's settings clipLimit 2.0 and an 8×8 tile grid, done with scikit-image (no OpenCV):
   OpenCV clips each tile histogram at ``clipLimit · tile_pixels / 256`` counts per bin, scikit-image
   at ``clip_limit · tile_pixels``, so with 256 bins the same clip is ``clip_limit = 2.0 / 256``;
   the tile is ``ceil(side / 8)`` pixels so that the grid is 8×8 like OpenCV's. Remaining differences
   (clip redistribution details, scikit-image's final stretch to the full range, no uint8 rounding
   between steps) move values by a few gray levels;
5. gamma: the reference's lookup table maps i → 255·(i/255)^(1/1.2), i.e. exponent 1/1.2 (brightening),
   and that is what is applied here;
6. / 255 → image float32 ``[1, H, W]`` in [0, 1].

Targets are int64 ``label > 127`` and the FOV is ``mask > 127``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from skimage.exposure import adjust_gamma, equalize_adapthist

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.tasks import Sample

SPLITS = ("training", "test")
CLAHE_CLIP_LIMIT = 2.0 / 256  # OpenCV clipLimit 2.0 expressed in scikit-image's units (see module doc)
CLAHE_TILES = 8
GAMMA = 1.2

# (id, RGB uint8 [H, W, 3], vessel label bool [H, W], FOV bool [H, W])
DriveItem = tuple[str | int, np.ndarray, np.ndarray, np.ndarray]

_LEADING_NUMBER = re.compile(r"^(\d+)_")
_IMAGE_SUFFIXES = (".tif", ".tiff")


def _image_name(number: str, split: str) -> str:
    return f"{number}_{split}.tif"


def _label_name(number: str) -> str:
    return f"{number}_manual1.gif"


def _mask_name(number: str, split: str) -> str:
    return f"{number}_{split}_mask.gif"


# ---------------------------------------------------------------------------------------------- writing


def _normalize_id(item_id: str | int) -> str:
    text = str(item_id)
    if not text.isdigit():
        raise ValueError(f"DRIVE ids are numbers (files are paired by their leading number), got {item_id!r}")
    return f"{int(text):02d}"


def _write_gif(path: Path, values: np.ndarray) -> None:
    Image.fromarray(np.where(np.asarray(values, dtype=bool), 255, 0).astype(np.uint8)).save(path)


def write_drive_layout(
    root: str | os.PathLike, train: Sequence[DriveItem], test: Sequence[DriveItem]
) -> Path:
    """Write images, labels and masks as real DRIVE files (RGB .tif, {0, 255} .gif) under ``root``."""
    root = Path(root)
    seen: set[str] = set()
    for split, items in (("training", train), ("test", test)):
        folders = {sub: root / split / sub for sub in ("images", "1st_manual", "mask")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for item_id, rgb, label, fov in items:
            number = _normalize_id(item_id)
            if number in seen:
                raise ValueError(f"DRIVE id {number} is used twice; ids must be unique across both splits")
            seen.add(number)
            rgb = np.asarray(rgb)
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
                raise ValueError(f"image {number} must be uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
            if np.shape(label) != rgb.shape[:2] or np.shape(fov) != rgb.shape[:2]:
                raise ValueError(
                    f"image {number} is {rgb.shape[:2]} but its label is {np.shape(label)} "
                    f"and its FOV {np.shape(fov)}"
                )
            tifffile.imwrite(folders["images"] / _image_name(number, split), rgb, photometric="rgb")
            _write_gif(folders["1st_manual"] / _label_name(number), label)
            _write_gif(folders["mask"] / _mask_name(number, split), fov)
    return root


# ---------------------------------------------------------------------------------------------- reading


def _index_folder(folder: Path, suffixes: tuple[str, ...]) -> dict[int, Path]:
    """Leading number → file, for the files of ``folder`` with one of ``suffixes``."""
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in suffixes:
            continue
        match = _LEADING_NUMBER.match(path.name)
        if match is None:
            raise BenchSuiteError(
                f"DRIVE file {path} does not start with a number and an underscore, so it "
                "cannot be paired with its image, label and mask; rename it like 21_training.tif or remove it"
            )
        number = int(match.group(1))  # "1_" and "01_" name the same image
        if number in found:
            raise BenchSuiteError(
                f"DRIVE files {found[number]} and {path} share the "
                f"number {number}; keep only one of them"
            )
        found[number] = path
    return found


def _read_rgb(path: Path) -> np.ndarray:
    try:
        array = tifffile.imread(path)
    except Exception as tiff_error:  # any decoder failure means the same thing: the file is not usable
        try:
            with Image.open(path) as image:
                image.load()
                array = np.asarray(image)
        except Exception:
            raise BenchSuiteError(
                f"DRIVE image {path} cannot be read ({tiff_error}); the file is damaged "
                "or truncated, replace it with a good copy from the dataset download"
            ) from None
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]  # an alpha channel carries nothing for the vessels
    if array.ndim == 2:
        return array.astype(np.float64)
    if array.ndim != 3 or array.shape[2] != 3:
        raise BenchSuiteError(
            f"DRIVE image {path} has shape {array.shape}, not an RGB image [H, W, 3]; "
            "replace it with the RGB TIFF from the dataset download"
        )
    rgb = array.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _read_binary_gif(path: Path, what: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.load()
            array = np.asarray(image.convert("L"))
    except Exception as error:  # any decoder failure means the same thing: the file is not usable
        raise BenchSuiteError(
            f"DRIVE {what} {path} cannot be read ({error}); the file is damaged or "
            "truncated, replace it with a good copy from the dataset download"
        ) from None
    values = np.unique(array)
    bad = values[(values != 0) & (values != 255)]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:8]) + (", ..." if bad.size > 8 else "")
        raise BenchSuiteError(
            f"DRIVE {what} {path} holds values {shown} besides 0 and 255; "
            "a label or mask must be black (0) and white (255) only, so replace it with the original file"
        )
    return array > 127


def _locate_split(root: Path, split: str) -> dict[str, Path]:
    folders = {}
    for sub in ("images", "1st_manual", "mask"):
        folder = root / split / sub
        if not folder.is_dir():
            nested = root / "DRIVE" / split / sub
            if nested.is_dir():
                hint = f"point to {root / 'DRIVE'} instead"
            elif split == "test" and sub == "1st_manual" and (root / split / "images").is_dir():
                # The grand-challenge.org release ships the test images without their manual labels.
                hint = "use a DRIVE release that includes the test labels (test/1st_manual/01_manual1.gif)"
            else:
                hint = (
                    f"unpack DRIVE so that {root} holds training/ and test/, each with images/, "
                    "1st_manual/ and mask/"
                )
            raise BenchSuiteError(f"DRIVE folder {root} has no {split}/{sub} subfolder; {hint}")
        folders[sub] = folder
    return folders


def _read_split(root: Path, split: str) -> list[tuple[Path, np.ndarray, np.ndarray, np.ndarray]]:
    folders = _locate_split(root, split)
    images = _index_folder(folders["images"], _IMAGE_SUFFIXES)
    labels = _index_folder(folders["1st_manual"], (".gif",))
    masks = _index_folder(folders["mask"], (".gif",))
    if not images:
        example = _image_name("21" if split == "training" else "01", split)
        raise BenchSuiteError(
            f"DRIVE folder {folders['images']} contains no .tif images, so the {split} split is empty; "
            f"put the {split} images there, named like {example}"
        )
    for number, path in images.items():
        tag = f"{number:02d}"
        for kind, found, expected in (
            ("label", labels, folders["1st_manual"] / _label_name(tag)),
            ("mask", masks, folders["mask"] / _mask_name(tag, split)),
        ):
            if number not in found:
                raise BenchSuiteError(
                    f"DRIVE image {path} (id {tag}) has no {kind}; add {expected} or remove the image"
                )
    for kind, found in (("label", labels), ("mask", masks)):
        for number, path in found.items():
            if number not in images:
                expected = folders["images"] / _image_name(f"{number:02d}", split)
                raise BenchSuiteError(
                    f"DRIVE {kind} {path} (id {number:02d}) has no image; add {expected} or remove the {kind}"
                )

    items = []
    for number in sorted(images):
        image_path, label_path, mask_path = images[number], labels[number], masks[number]
        gray = _read_rgb(image_path)
        label = _read_binary_gif(label_path, "label")
        fov = _read_binary_gif(mask_path, "mask")
        if label.shape != gray.shape or fov.shape != gray.shape:
            raise BenchSuiteError(
                f"DRIVE image {image_path} is {_hw(gray)} but its label {label_path} is {_hw(label)} and its "
                f"mask {mask_path} is {_hw(fov)}; replace the mismatched file so that all three have one size"
            )
        if not fov.any():
            raise BenchSuiteError(
                f"DRIVE mask {mask_path} is all black, so no pixel of image {image_path.name} would be "
                "evaluated; replace it with the original field-of-view mask"
            )
        items.append((image_path, gray, label, fov))
    return items


def _hw(array: np.ndarray) -> str:
    return f"{array.shape[0]}×{array.shape[1]}"


def _clahe(image_255: np.ndarray) -> np.ndarray:
    kernel = tuple(max(1, math.ceil(side / CLAHE_TILES)) for side in image_255.shape)
    return equalize_adapthist(image_255 / 255.0, kernel_size=kernel, clip_limit=CLAHE_CLIP_LIMIT, nbins=256)


def preprocess_split(grays: Sequence[np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
    """The reference preprocessing of one split's gray images ([0, 255] scale) → float32 [1, H, W].

    ``names`` (one per image, e.g. the file) only serve error messages.
    """
    for gray, name in zip(grays, names, strict=True):
        # A flat image would make the min-max step divide by zero (and the split std too if all are flat).
        if gray.size == 0 or float(gray.max()) == float(gray.min()):
            raise BenchSuiteError(
                f"DRIVE image {name} is one flat color with nothing to segment; replace it with a real image"
            )
    pixels = np.concatenate([g.ravel() for g in grays])
    mean, std = float(pixels.mean()), float(pixels.std())
    out = []
    for gray in grays:
        z = (gray - mean) / std
        low, high = float(z.min()), float(z.max())
        scaled = (z - low) / (high - low) * 255.0
        equalized = _clahe(scaled)
        brightened = adjust_gamma(equalized, 1.0 / GAMMA)
        out.append(np.clip(brightened, 0.0, 1.0).astype(np.float32)[None])
    return out


def read_drive_layout(root: str | os.PathLike) -> tuple[list[Sample], list[Sample]]:
    """Validate a DRIVE folder and return (train, test) samples, preprocessed like the reference.

    Sample ids are the image file stems (``21_training``, ``01_test``), unique across both splits.
    Every problem (missing folder, unpaired or unreadable file, bad label values, shape mismatch, empty
    split) raises :class:`BenchSuiteError` naming the file and the fix.
    """
    root = Path(root)
    if not root.is_dir():
        raise BenchSuiteError(
            f"DRIVE folder {root} does not exist or is not a folder; download DRIVE and give the folder "
            "that holds training/ and test/"
        )
    result = []
    for split in SPLITS:
        items = _read_split(root, split)
        names = [str(path) for path, *_ in items]
        images = preprocess_split([gray for _, gray, _, _ in items], names)
        result.append(
            [
                Sample(id=path.stem, image=image, target=label.astype(np.int64), fov=fov)
                for (path, _, label, fov), image in zip(items, images, strict=True)
            ]
        )
    return result[0], result[1]
