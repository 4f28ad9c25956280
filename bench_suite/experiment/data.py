"""``bench-suite data info|check|fetch NAME``: where a dataset is looked for, whether it is valid, its download.

Downloads go through pooch. A dataset plugin with a public source declares ``DOWNLOAD``: one source or a
tuple of them, each a dict

- ``base_url``: where the files lie, e.g. ``https://raw.githubusercontent.com/OWNER/REPO/COMMIT/``;
- ``registry``: the files and their checksums as a pooch registry (``<path under base_url> <hash>`` lines,
  a bare hash being SHA-256, ``md5:…`` where only an MD5 is published): the name of a file in
  ``bench_suite/datasets/sources/``, a path, or a ``{path: hash}`` dict;
- ``into``: ``{source folder: folder under the data root}``: where each folder of the source (a folder of
  the repository, or a top folder inside the archive) goes, i.e. the layout the loader reads;
- ``unpack``: ``"tar"`` or ``"zip"`` when the registry's files are archives (absent for plain files).

:func:`fetch` downloads every file with ``pooch.Pooch.fetch`` into ``<data_root>/.downloads/<name>/``
through a downloader that resumes an interrupted file with an HTTP Range request (its bytes wait in
``<file>.part``); pooch verifies each file's hash and deletes one that does not match. Archives are
unpacked by pooch's ``Untar``/``Unzip`` into a staging folder inside the data root (entries that would land
outside it are refused first), plain files are moved into one; each target folder is then renamed into
place in one step, so a failure leaves no half-written dataset folder. A target folder that already exists
is never overwritten. Last, the dataset is checked with :func:`check`, the code behind ``data check``.
A mirror (``mirror=`` or ``$BENCH_SUITE_MIRROR``) replaces the scheme and host of every address and keeps
its path: ``https://raw.githubusercontent.com/cszn/DnCNN/<commit>/testsets/Set12/01.png`` is fetched from
``<mirror>/cszn/DnCNN/<commit>/testsets/Set12/01.png``; the declared checksums still apply.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import tarfile
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from bench_suite.core.checks import CheckReport
from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.paths import data_root_option
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
            lines.append(f"`bench-suite data fetch {name}{data_root_option(data_root)}` downloads it")
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


# ---------------------------------------------------------------------------------------------- fetch

CHUNK = 1 << 16  # read size: small enough for a live progress bar, large enough to be cheap
TIMEOUT = 30.0  # seconds without a byte before a download counts as interrupted
MIRROR_ENV = "BENCH_SUITE_MIRROR"
ARCHIVES = ("tar", "zip")

Progress = Callable[[str, int, "int | None"], None]  # (file, bytes so far, total bytes or None)


@dataclasses.dataclass
class FetchResult:
    """What :func:`fetch` did: the folders it wrote, those it left alone, and the check afterwards."""

    name: str
    report: CheckReport
    written: list[Path] = dataclasses.field(default_factory=list)
    kept: list[Path] = dataclasses.field(default_factory=list)  # target folders that were already there
    downloaded: bool = True  # False: the dataset already passed its check, nothing was fetched

    def lines(self) -> list[str]:
        if not self.downloaded:
            return [f"{self.name} is already in {self.report.folder} and passes its check; nothing to download"]
        return [f"downloaded {folder}" for folder in self.written] + [
            f"kept {folder}: it was already there (fetch never overwrites a folder)" for folder in self.kept
        ]


def declared_sources(plugin: Any) -> list[dict[str, Any]]:
    """The plugin's ``DOWNLOAD`` as a list of source dicts (empty when it declares none)."""
    spec = getattr(_instance(plugin), "DOWNLOAD", None)
    if not spec:
        return []
    sources = [spec] if isinstance(spec, Mapping) else list(spec)
    for source in sources:
        missing = [key for key in ("base_url", "registry", "into") if not source.get(key)]
        if missing or source.get("unpack") not in (None, *ARCHIVES):
            raise BenchSuiteError(
                f"the DOWNLOAD declaration {dict(source)} lacks {', '.join(missing) or 'a known unpack'}; give "
                f"base_url, registry and into (and unpack = {' or '.join(ARCHIVES)} for archives)"
            )
    return sources


def load_registry(source: Mapping[str, Any]) -> dict[str, str]:
    """``{path under base_url: hash}`` of a source (its ``registry``: a packaged file, a path or a dict)."""
    import pooch

    registry = source["registry"]
    if isinstance(registry, Mapping):
        return {str(k): str(v).lower() for k, v in registry.items()}
    packaged = resources.files("bench_suite.datasets").joinpath("sources", str(registry))
    loader = pooch.create(path=".", base_url="")
    if packaged.is_file():
        with packaged.open("r", encoding="utf-8") as handle:
            loader.load_registry(handle)
    else:
        try:
            loader.load_registry(Path(registry))
        except OSError as error:
            raise BenchSuiteError(
                f"the download registry '{registry}' is neither in bench_suite/datasets/sources/ nor a readable "
                f"file ({error.strerror or error}); reinstall bench-suite or fix the plugin's DOWNLOAD"
            ) from None
    return dict(loader.registry)


def mirrored(url: str, mirror: str | None) -> str:
    """``url`` served from ``mirror``: the mirror replaces scheme and host, the path stays."""
    if not mirror:
        return url
    path = urlsplit(url).path.lstrip("/")
    return f"{mirror.rstrip('/')}/{path}"


def fetch(
    name: str, plugin: Any, data_root: Path, mirror: str | None = None, progress: Progress | None = None
) -> FetchResult:
    """Download ``name`` into ``data_root`` in the layout its loader reads, then check it.

    Only for plugins that declare ``DOWNLOAD``; the others raise :class:`BenchSuiteError` with their
    ``HOW_TO_GET``. A dataset that already passes its check is not downloaded again. ``mirror`` (default
    ``$BENCH_SUITE_MIRROR``) serves every file from another host. An interrupted download resumes on the
    next call; a file whose checksum does not match is deleted and named in the error.
    ``progress(file, done, total)`` is called as bytes arrive.
    """
    dataset = _instance(plugin)
    data_root = Path(data_root)
    sources = declared_sources(dataset)
    if not sources:
        how = fill_root(getattr(dataset, "HOW_TO_GET", ""), data_root) or "see the dataset's README for where to get it"
        raise BenchSuiteError(f"dataset '{name}' cannot be downloaded automatically: {how}")
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    try:
        data_root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BenchSuiteError(
            f"cannot create the data root {data_root} ({error.strerror or error}); choose a writable --data-root"
        ) from None
    before = check(name, dataset, data_root)
    if before.ok:
        return FetchResult(name, before, downloaded=False)
    downloads = data_root / ".downloads" / name
    result = FetchResult(name, before)
    with _quiet_pooch():
        for source in sources:
            targets = {prefix.strip("/"): data_root / target for prefix, target in source["into"].items()}
            result.kept += [target for target in targets.values() if target.exists()]
            missing = {prefix: target for prefix, target in targets.items() if not target.exists()}
            if missing:
                result.written += _fetch_source(name, source, missing, downloads, data_root, mirror, progress)
    shutil.rmtree(downloads, ignore_errors=True)  # every file reached its folder: the cache is empty
    with contextlib.suppress(OSError):
        downloads.parent.rmdir()  # .downloads, unless another dataset's download waits there
    result.report = check(name, dataset, data_root)
    return result


def _fetch_source(
    name: str, source: Mapping[str, Any], missing: dict[str, Path], downloads: Path, data_root: Path,
    mirror: str | None, progress: Progress | None,
) -> list[Path]:
    import pooch

    registry = load_registry(source)
    unpack = source.get("unpack")
    if unpack:
        wanted = list(registry)  # every archive: each may hold any of the folders
    else:
        wanted = [path for path in registry if any(_under(path, prefix) for prefix in missing)]
    base_url = mirrored(source["base_url"], mirror)
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    fetcher = pooch.create(path=downloads, base_url=base_url, registry={p: registry[p] for p in wanted},
                           retry_if_failed=0)
    staging = data_root / f".fetch-{name}-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
        fetched = []
        for number, path in enumerate(wanted, 1):
            label = f"{PurePosixPath(path).name} ({number}/{len(wanted)})" if len(wanted) > 1 else path
            processor = _Unpack(unpack, staging) if unpack else None
            fetched.append(_pooch_fetch(fetcher, path, base_url + path, processor, label, progress))
        if not unpack:  # every file is verified (and stays in the cache until now): build the folders
            for path, file in zip(wanted, fetched, strict=True):
                destination = staging / path
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.replace(file, destination)
        sources = {prefix: staging / prefix for prefix in missing}
        absent = [prefix for prefix, folder in sources.items() if not folder.is_dir()]
        if absent:
            raise BenchSuiteError(
                f"the download of '{name}' from {base_url} holds no folder {', '.join(absent)}; the source has "
                "changed: download the dataset by hand following its README"
            )
        written = []
        for prefix, target in missing.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            sources[prefix].rename(target)  # one step per folder: complete or absent
            written.append(target)
        if unpack:
            for path in wanted:
                (downloads / path).unlink(missing_ok=True)  # unpacked: the archive is not needed
        return written
    except OSError as error:
        raise BenchSuiteError(
            f"cannot write the '{name}' download under {data_root} ({error.strerror or error}); free some space "
            "or choose another --data-root, then run fetch again"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _pooch_fetch(fetcher, path: str, url: str, processor, label: str, progress: Progress | None) -> Path:
    part = Path(fetcher.abspath) / f"{path}.part"
    downloader = _ResumingDownloader(part, label, progress)
    try:
        fetcher.fetch(path, processor=processor, downloader=downloader)
    except ValueError as error:  # pooch's hash check: the file was deleted
        text = str(error)
        got = re.search(r"but got (\w+)", text)
        expected = fetcher.registry[path]
        raise BenchSuiteError(
            f"checksum error: {path} downloaded from {url} has "
            f"{(expected.split(':')[0] if ':' in expected else 'sha256').upper()} "
            f"{got.group(1) if got else '(another value)'}, not the expected {expected.split(':')[-1]}; the file "
            "was deleted and nothing was unpacked — run fetch again, and if it fails again the server sends "
            "another file (check the mirror, or download it by hand following the dataset's README)"
        ) from None
    return Path(fetcher.abspath) / path


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """pooch logs every download at INFO; bench-suite shows its own progress instead."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class _ResumingDownloader:
    """A pooch downloader that keeps what arrived in ``part`` and asks only for the rest next time."""

    def __init__(self, part: Path, label: str, progress: Progress | None) -> None:
        self.part, self.label, self.progress = part, label, progress

    def __call__(self, url: str, output_file: str, pooch_instance: Any = None, check_only: bool = False) -> Any:
        import requests

        from bench_suite import __version__

        headers = {"User-Agent": f"bench-suite/{__version__}", "Accept-Encoding": "identity"}
        if check_only:
            try:
                return requests.head(url, headers=headers, allow_redirects=True, timeout=TIMEOUT).ok
            except requests.RequestException:
                return False
        done = self.part.stat().st_size if self.part.is_file() else 0
        if done:
            headers["Range"] = f"bytes={done}-"
        try:
            response = requests.get(url, headers=headers, stream=True, timeout=TIMEOUT)
        except requests.RequestException as error:
            raise BenchSuiteError(
                f"cannot reach {url} ({type(error).__name__}); check the network connection (or the mirror "
                "address) and run fetch again"
            ) from None
        with response:
            if response.status_code == 416 and done:
                os.replace(self.part, output_file)  # the part already holds every byte; the checksum decides
                return None
            if response.status_code >= 400:
                raise BenchSuiteError(
                    f"downloading {url} failed with HTTP {response.status_code} {response.reason}; check the "
                    "address (or the mirror), or download the file by hand following the dataset's README"
                )
            if done and (response.status_code != 206 or _range_start(response) != done):
                done = 0  # the server ignored the Range header: it sends the whole file again
            length = response.headers.get("Content-Length", "")
            total = done + int(length) if length.isdigit() else None
            try:
                with open(self.part, "ab" if done else "wb") as handle:
                    for block in response.iter_content(CHUNK):
                        handle.write(block)
                        done += len(block)
                        if self.progress is not None:
                            self.progress(self.label, done, total)
            except requests.RequestException as error:
                raise BenchSuiteError(
                    f"the download of {url} was interrupted after {done} of {total or '?'} bytes "
                    f"({type(error).__name__}); run fetch again to resume it"
                ) from None
        if total is not None and done < total:
            raise BenchSuiteError(
                f"the download of {url} stopped after {done} of {total} bytes; run fetch again to resume it"
            )
        os.replace(self.part, output_file)
        return None


def _range_start(response: Any) -> int | None:
    # "bytes 100-999/1000"
    try:
        return int(response.headers.get("Content-Range", "").split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


class _Unpack:
    """pooch's Untar/Unzip into ``extract_dir``, after refusing entries that would land outside it."""

    def __init__(self, kind: str, extract_dir: Path) -> None:
        self.kind, self.extract_dir = kind, Path(extract_dir)

    def __call__(self, fname: str, action: str, pooch_instance: Any) -> list[str]:
        import pooch

        try:
            self._refuse_unsafe(Path(fname))
            processor = (pooch.Untar if self.kind == "tar" else pooch.Unzip)(extract_dir=str(self.extract_dir))
            return processor(fname, action, pooch_instance)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
            raise BenchSuiteError(
                f"the archive {Path(fname).name} cannot be unpacked ({error}); nothing was unpacked — delete "
                f"{fname} and run fetch again"
            ) from None

    def _refuse_unsafe(self, archive: Path) -> None:
        if self.kind == "tar":
            with tarfile.open(archive) as handle:
                entries = [(m.name, not (m.isfile() or m.isdir())) for m in handle.getmembers()]
        else:
            with zipfile.ZipFile(archive) as handle:
                entries = [(name, False) for name in handle.namelist()]
        root = self.extract_dir.resolve()
        for member, special in entries:
            outside = os.path.isabs(member) or not (root / member).resolve().is_relative_to(root)
            if outside or special:
                raise BenchSuiteError(
                    f"the archive {archive.name} holds the entry '{member}' "
                    f"({'outside the data folder' if outside else 'a link or device'}); it is not safe to "
                    "unpack, so nothing was unpacked: download the dataset from its official source"
                )
