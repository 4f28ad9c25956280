"""``bench-suite data info|check|fetch NAME``: where a dataset is looked for, whether it is valid, its download."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench_suite.core.checks import CheckReport
from bench_suite.core.errors import BenchSuiteError
from bench_suite.datasets.files import fill_root, is_ignored


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
