"""Where a dataset is looked for, whether every file of it is valid, and its download.

Used by ``bench-suite data info|check|fetch NAME``. A dataset plugin that reads real files declares:

- ``FOLDERS``: the folder names under the data root it accepts, canonical name first;
- ``candidates(data_root) -> list[Path]``: every folder it looks at, in order;
- ``check(data_root) -> CheckReport``: reads every file and collects *all* problems;
- ``HOW_TO_GET``: one sentence saying where to get the data, or ``DOWNLOAD`` (``url``, ``sha256``,
  ``archive`` = ``"zip"`` | ``"tar.gz"``, ``size``) when a public archive with a known checksum exists.

The helpers below (reading images, the profile caps, the report) are shared by the dataset modules.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image

from bench_suite.errors import BenchSuiteError, unknown_name_message

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


def shape_text(shape: Sequence[int]) -> str:
    return "×".join(str(int(s)) for s in shape)


# ------------------------------------------------------------------------------------------ report


@dataclasses.dataclass
class CheckReport:
    """What ``check`` found: counts, shapes, label values and every problem (empty when all is well)."""

    dataset: str
    folder: str | None = None
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    shapes: dict[str, dict[tuple[int, ...], int]] = dataclasses.field(default_factory=dict)  # group → shape → n
    label_values: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # group → sorted values
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  # facts worth knowing that are not errors

    @property
    def ok(self) -> bool:
        return not self.problems and self.folder is not None

    def add_shape(self, group: str, shape: Sequence[int]) -> None:
        key = tuple(int(s) for s in shape)
        per_group = self.shapes.setdefault(group, {})
        per_group[key] = per_group.get(key, 0) + 1

    def add_labels(self, group: str, values: Iterable[int]) -> None:
        merged = set(self.label_values.get(group, [])) | {int(v) for v in values}
        self.label_values[group] = sorted(merged)

    def attempt(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)``, or None with its BenchSuiteError recorded as a problem."""
        try:
            return function(*args)
        except BenchSuiteError as error:
            self.problems.append(str(error))
            return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (shape tuples become "35×51×35" keys)."""
        return {
            "dataset": self.dataset, "folder": self.folder, "ok": self.ok, "counts": dict(self.counts),
            "shapes": {g: {shape_text(s): n for s, n in d.items()} for g, d in self.shapes.items()},
            "label_values": dict(self.label_values), "problems": list(self.problems), "notes": list(self.notes),
        }

    def lines(self, max_problems: int = 20) -> list[str]:
        out = [f"{self.dataset}: {'OK' if self.ok else 'PROBLEMS FOUND'} ({self.folder or 'no folder found'})"]
        if self.counts:
            out.append("counts: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()))
        for group, shapes in self.shapes.items():
            out.append(f"shapes of {group}: {_summarize_shapes(shapes)}")
        for group, values in self.label_values.items():
            shown = ", ".join(map(str, values[:40])) + (", ..." if len(values) > 40 else "")
            out.append(f"label values of {group}: {{{shown}}}")
        out.extend(f"note: {note}" for note in self.notes)
        if self.problems:
            out.append(f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}:")
            out.extend(f"  - {p}" for p in self.problems[:max_problems])
            if len(self.problems) > max_problems:
                out.append(f"  ... and {len(self.problems) - max_problems} more")
        return out


def _summarize_shapes(shapes: dict[tuple[int, ...], int]) -> str:
    if len(shapes) <= 3:
        return ", ".join(f"{shape_text(s)} ({n})" for s, n in sorted(shapes.items()))
    arrays = np.array(list(shapes))
    total = sum(shapes.values())
    low, high = shape_text(arrays.min(0)), shape_text(arrays.max(0))
    return f"{len(shapes)} different, per axis from {low} to {high} ({total} files)"


# ------------------------------------------------------------------------------------------ info / check


def _instance(plugin: Any) -> Any:
    return plugin() if isinstance(plugin, type) else plugin


def _inventory(folder: Path, depth: int = 3, limit: int = 12) -> list[str]:
    """"train/image: 30 .png" lines: what files a folder holds, by subfolder and suffix."""
    lines: list[str] = []

    def visit(current: Path, level: int) -> None:
        if len(lines) >= limit:
            return
        try:
            entries = sorted(current.iterdir())
        except OSError as error:
            lines.append(f"{current}: cannot be listed ({error.strerror or error})")
            return
        by_suffix: dict[str, int] = {}
        for entry in entries:
            if entry.is_file() and not is_ignored(entry):
                suffix = "".join(entry.suffixes[-2:]) if entry.name.endswith(".nii.gz") else entry.suffix
                by_suffix[suffix or "(no suffix)"] = by_suffix.get(suffix or "(no suffix)", 0) + 1
        if by_suffix:
            where = current.relative_to(folder).as_posix() if current != folder else "."
            lines.append(f"{where}: " + ", ".join(f"{n} {s}" for s, n in sorted(by_suffix.items())))
        if level < depth:
            for entry in entries:
                if entry.is_dir() and not is_ignored(entry):
                    visit(entry, level + 1)

    visit(folder, 0)
    return lines[:limit] if len(lines) <= limit else [*lines[:limit], "..."]


def info(name: str, plugin: Any, data_root: Path) -> list[str]:
    """Human-readable lines: where ``name`` is looked for, which candidate folders exist, what they hold."""
    dataset = _instance(plugin)
    data_root = Path(data_root)
    lines = [f"{name}: {(type(dataset).__doc__ or '').strip().splitlines()[0] if type(dataset).__doc__ else ''}"]
    lines.append(f"data root: {data_root.resolve()}")
    if not hasattr(dataset, "candidates"):
        lines.append("this plugin does not read a folder (its data is generated or bundled); nothing to look for")
        return lines
    found = False
    for folder in dataset.candidates(data_root):
        exists = folder.is_dir()
        lines.append(f"looked in {folder}: {'exists' if exists else 'absent'}")
        if exists and not found:
            found = True
            lines.extend(f"  {line}" for line in _inventory(folder) or ["(empty folder)"])
    if not found:
        how = fill_root(getattr(dataset, "HOW_TO_GET", ""), data_root)
        lines.append(f"not found; {how}" if how else "not found")
        if getattr(dataset, "DOWNLOAD", None):
            lines.append(f"`bench-suite data fetch {name}` downloads it")
    return lines


def check(name: str, plugin: Any, data_root: Path) -> CheckReport:
    """Read and validate every file of ``name`` under ``data_root``; all problems are collected."""
    dataset = _instance(plugin)
    data_root = Path(data_root)
    if hasattr(dataset, "check"):
        report = dataset.check(data_root)
        report.dataset = name
        return report
    # A plugin without its own check (e.g. a third-party one) is checked by loading it in full.
    report = CheckReport(name)
    bundle = report.attempt(dataset.load, data_root, "paper")
    if bundle is not None:
        report.folder = bundle.source or str(data_root)
        report.counts = {"train": len(bundle.train), "test": len(bundle.test)}
        for group, samples in (("train", bundle.train), ("test", bundle.test)):
            for sample in samples:
                report.add_shape(f"{group} images", sample.image.shape)
                if sample.target is not None:
                    report.add_labels(group, np.unique(sample.target))
    return report


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

CHUNK = 1 << 16  # read size: small enough for a live progress bar, large enough to be cheap
TIMEOUT = 30.0

Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


def fetch(
    name: str, plugin: Any, data_root: Path, url: str | None = None, progress: Progress | None = None
) -> Path:
    """Download and unpack ``name`` into ``data_root``; returns the dataset folder.

    Only for plugins that declare ``DOWNLOAD``; the others raise :class:`BenchSuiteError` with their
    ``HOW_TO_GET``. ``url`` replaces the declared address (a mirror): the declared checksum still applies.
    An interrupted download leaves ``<data_root>/.downloads/<file>.part``; the next call resumes it with
    an HTTP Range request. ``progress(done, total)`` is called as bytes arrive.
    """
    dataset = _instance(plugin)
    data_root = Path(data_root)
    spec = getattr(dataset, "DOWNLOAD", None)
    if not spec:
        how = fill_root(getattr(dataset, "HOW_TO_GET", ""), data_root) or "see the dataset's README for where to get it"
        raise BenchSuiteError(f"dataset '{name}' cannot be downloaded automatically: {how}")
    candidates = dataset.candidates(data_root) if hasattr(dataset, "candidates") else []
    for folder in candidates:
        if folder.is_dir():
            return folder  # already there: `data check` validates it, fetch never overwrites a user's files
    source = url or spec["url"]
    archive = spec.get("archive", "zip")
    if archive not in ("zip", "tar.gz"):
        raise BenchSuiteError(f"dataset '{name}' declares archive type '{archive}'; use 'zip' or 'tar.gz'")
    downloads = data_root / ".downloads"
    try:
        downloads.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BenchSuiteError(
            f"cannot create {downloads} ({error.strerror or error}); choose a writable data root"
        ) from None
    target = downloads / f"{name}.{archive}"
    if not (target.is_file() and _sha256(target) == spec.get("sha256")):
        _download(source, target, spec.get("size"), progress)
        digest = _sha256(target)
        if spec.get("sha256") and digest != spec["sha256"]:
            target.unlink()
            raise BenchSuiteError(
                f"the download of '{name}' from {source} has SHA-256 {digest}, not the expected {spec['sha256']}; "
                "the file was deleted — run fetch again, and if it keeps failing the server serves a "
                "different file: download it by hand (see the dataset's README)"
            )
    _extract(target, archive, data_root, name)
    for folder in candidates:
        if folder.is_dir():
            target.unlink(missing_ok=True)
            return folder
    raise BenchSuiteError(
        f"the archive {target} was unpacked into {data_root} but holds none of the folders "
        f"{', '.join(c.name for c in candidates)}; unpack it by hand following the dataset's README"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path, size: int | None, progress: Progress | None) -> None:
    part = target.with_name(target.name + ".part")
    done = part.stat().st_size if part.is_file() else 0
    if size is not None and done > size:
        part.unlink()  # longer than the file can be: not a prefix of it
        done = 0
    request = urllib.request.Request(url, headers={"User-Agent": "bench-suite"})
    if done:
        request.add_header("Range", f"bytes={done}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        if error.code == 416 and done and (size is None or done == size):
            part.replace(target)  # the part already holds every byte; the checksum decides
            return
        raise BenchSuiteError(
            f"downloading {url} failed with HTTP {error.code} {error.reason}; check the address, "
            "or download the file by hand (see the dataset's README)"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise BenchSuiteError(
            f"cannot reach {url} ({reason}); check the network connection and run fetch again"
        ) from None
    with response:
        if done and response.status != 206:
            done = 0  # the server ignored the Range header and sends the whole file again
        elif done:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != done:
                done = 0
                response.close()
                part.unlink()
                _download(url, target, size, progress)
                return
        length = response.headers.get("Content-Length")
        total = done + int(length) if length and length.isdigit() else size
        try:
            with open(part, "ab" if done else "wb") as handle:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    handle.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
        except (TimeoutError, OSError, http.client.HTTPException) as error:
            raise BenchSuiteError(
                f"the download of {url} was interrupted after {done} of {total or '?'} bytes ({error}); "
                "run fetch again to resume it"
            ) from None
    if total is not None and done < total:
        raise BenchSuiteError(
            f"the download of {url} stopped after {done} of {total} bytes; run fetch again to resume it"
        )
    part.replace(target)


def _content_range_start(header: str) -> int | None:
    # "bytes 100-999/1000"
    try:
        return int(header.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _extract(archive_path: Path, archive: str, data_root: Path, name: str) -> None:
    """Unpack into a staging folder inside ``data_root``, then move its top-level entries into place.

    Staging keeps a failed extraction from leaving half a dataset that later looks complete; members
    that would land outside the data root (``../``, absolute paths, links) are refused.
    """
    staging = data_root / f".extract-{name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        try:
            if archive == "zip":
                with zipfile.ZipFile(archive_path) as handle:
                    for member in handle.namelist():
                        _refuse_outside(staging, member, archive_path)
                    handle.extractall(staging)
            else:
                with tarfile.open(archive_path, "r:gz") as handle:
                    for member in handle.getmembers():
                        _refuse_outside(staging, member.name, archive_path)
                    handle.extractall(staging, filter="data")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
            raise BenchSuiteError(
                f"the archive {archive_path} cannot be unpacked ({error}); delete it and run fetch again"
            ) from None
        for entry in sorted(staging.iterdir()):
            if is_ignored(entry):
                continue
            destination = data_root / entry.name
            if destination.exists():
                raise BenchSuiteError(
                    f"unpacking {archive_path} would overwrite {destination}; move that away and run fetch again"
                )
            entry.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _refuse_outside(staging: Path, member: str, archive_path: Path) -> None:
    resolved = (staging / member).resolve()
    if not resolved.is_relative_to(staging.resolve()) or os.path.isabs(member):
        raise BenchSuiteError(
            f"the archive {archive_path} holds the entry '{member}' that points outside the data folder; "
            "it is not safe to unpack, download the dataset from its official source"
        )
