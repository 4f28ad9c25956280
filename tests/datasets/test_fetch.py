"""fetch() through pooch against a local HTTP server (127.0.0.1, with Range support): the MSD archive built
from ../shared/data, per-file sources at their raw GitHub paths, corruption, interruption and resume."""

import hashlib
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.registry import get_registry
from bench_suite.datasets.bsd import BSD68, CBSD68, Set12
from bench_suite.datasets.drive import Drive
from bench_suite.datasets.em import ISBI2012EM
from bench_suite.datasets.nifti import Hippocampus
from bench_suite.experiment.data import check, declared_sources, fetch, load_registry, mirrored

MSD_TAR = "/Task04_Hippocampus.tar"
SUBJECTS = ("001", "003", "004", "006", "007", "008", "011", "014", "015", "017")


class Server:
    """Serves ``files`` by path with Range support; can cut the next body after N bytes; records requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: int | None = None
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                body = server.files.get(self.path)
                requested = self.headers.get("Range")
                server.requests.append((self.path, requested))
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if requested and not server.ignore_range:
                    start = int(requested.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if server.cut_after is not None:  # a dropped connection: the promised length never arrives
                    self.wfile.write(part[: server.cut_after])
                    self.wfile.flush()
                    server.cut_after = None
                    self.close_connection = True
                    return
                self.wfile.write(part)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve_tree(self, base_url: str, prefix: str, folder: Path, pattern: str = "*.png") -> None:
        """Serve ``folder``'s files where ``base_url + prefix/…`` would put them on this mirror."""
        base = urlsplit(base_url).path.rstrip("/")
        for path in folder.rglob(pattern):
            self.files[f"{base}/{prefix}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("BENCH_SUITE_MIRROR", raising=False)
    instance = Server()
    yield instance
    instance.close()


def msd_tar(shared: Path, subjects=SUBJECTS) -> bytes:
    """A Task04_Hippocampus.tar in the MSD layout (imagesTr, labelsTr, imagesTs, dataset.json, ._ files)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))

        source = shared / "Task04_Hippocampus"
        for subject in subjects:
            file = f"hippocampus_{subject}.nii.gz"
            add(f"Task04_Hippocampus/imagesTr/{file}", (source / "imagesTr" / file).read_bytes())
            add(f"Task04_Hippocampus/labelsTr/{file}", (source / "labelsTr" / file).read_bytes())
            add(f"Task04_Hippocampus/imagesTr/._{file}", b"\x00\x05\x16\x07 resource fork")
        add("Task04_Hippocampus/imagesTs/hippocampus_002.nii.gz", (source / "imagesTr" / file).read_bytes())
        add("Task04_Hippocampus/dataset.json", json.dumps({"name": "Hippocampus"}).encode())
        add("._Task04_Hippocampus", b"\x00\x05\x16\x07")
    return buffer.getvalue()


def hippocampus_from(archive: bytes) -> type:
    """The hippocampus plugin with the test archive's MD5 in place of MSD's (same address, same layout)."""

    class TestHippocampus(Hippocampus):
        DOWNLOAD = {**Hippocampus.DOWNLOAD,
                    "registry": {"Task04_Hippocampus.tar": "md5:" + hashlib.md5(archive).hexdigest()}}

    return TestHippocampus


def leftovers(root: Path) -> list[str]:
    """Files and staging folders a failed fetch left in the data root (.part files excepted)."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".part")]
    staging = [p for p in root.iterdir() if p.name.startswith(".fetch-")] if root.is_dir() else []
    return [str(p.relative_to(root)) for p in [*files, *staging]]


@pytest.fixture
def archive(shared_data) -> bytes:
    return msd_tar(shared_data)


# ------------------------------------------------------------------------------------------ the MSD archive


def test_good_download_unpacks_into_the_layout_data_check_accepts(server, archive, tmp_path):
    server.files[MSD_TAR] = archive
    seen = []
    result = fetch("hippocampus", hippocampus_from(archive), tmp_path, mirror=server.url,
                   progress=lambda file, done, total: seen.append((file, done, total)))
    folder = tmp_path / "Task04_Hippocampus"
    assert result.report.ok, result.report.lines()
    assert result.written == [folder] and result.report.folder == str(folder)
    assert len(list((folder / "imagesTr").glob("hippocampus_*.nii.gz"))) == len(SUBJECTS)
    assert (folder / "dataset.json").is_file() and (folder / "imagesTs").is_dir()
    assert check("hippocampus", Hippocampus, tmp_path).ok  # the same check as `data check`
    assert server.requests == [(MSD_TAR, None)]
    assert seen[-1] == ("Task04_Hippocampus.tar", len(archive), len(archive))
    # the archive, the cache and the staging folder are gone; only the dataset folder is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Task04_Hippocampus"]


def test_a_dataset_that_passes_its_check_is_not_downloaded_again(server, archive, tmp_path):
    server.files[MSD_TAR] = archive
    plugin = hippocampus_from(archive)
    fetch("hippocampus", plugin, tmp_path, mirror=server.url)
    again = fetch("hippocampus", plugin, tmp_path, mirror=server.url)
    assert not again.downloaded and again.report.ok and len(server.requests) == 1
    assert again.lines() == [f"hippocampus is already in {tmp_path / 'Task04_Hippocampus'} and passes its check; "
                             "nothing to download"]


def test_mirror_from_the_environment(server, archive, tmp_path, monkeypatch):
    server.files[MSD_TAR] = archive
    monkeypatch.setenv("BENCH_SUITE_MIRROR", server.url + "/")
    assert fetch("hippocampus", hippocampus_from(archive), tmp_path).report.ok


def test_corrupted_archive_names_the_file_and_leaves_nothing(server, archive, tmp_path):
    corrupted = bytearray(archive)
    corrupted[len(corrupted) // 2] ^= 0xFF
    server.files[MSD_TAR] = bytes(corrupted)
    with pytest.raises(BenchSuiteError) as info:
        fetch("hippocampus", hippocampus_from(archive), tmp_path, mirror=server.url)
    message = str(info.value)
    assert message.startswith(f"checksum error: Task04_Hippocampus.tar downloaded from {server.url}{MSD_TAR} has MD5 ")
    assert hashlib.md5(corrupted).hexdigest() in message and hashlib.md5(archive).hexdigest() in message
    assert "\n" not in message and "nothing was unpacked" in message
    assert not (tmp_path / "Task04_Hippocampus").exists()
    assert leftovers(tmp_path) == [] and not list(tmp_path.rglob("*.part"))
    server.files[MSD_TAR] = archive  # the next try downloads it whole again
    assert fetch("hippocampus", hippocampus_from(archive), tmp_path, mirror=server.url).report.ok
    assert server.requests[-1] == (MSD_TAR, None)


def test_interrupted_download_resumes_with_a_range_request(server, archive, tmp_path):
    server.files[MSD_TAR] = archive
    plugin = hippocampus_from(archive)
    server.cut_after = len(archive) // 3
    with pytest.raises(BenchSuiteError, match="run fetch again to resume it") as info:
        fetch("hippocampus", plugin, tmp_path, mirror=server.url)
    part = tmp_path / ".downloads" / "hippocampus" / "Task04_Hippocampus.tar.part"
    kept = part.stat().st_size  # what arrived in whole read blocks before the connection dropped
    assert 0 < kept <= len(archive) // 3
    assert f"interrupted after {kept} of {len(archive)} bytes" in str(info.value)
    assert not (tmp_path / "Task04_Hippocampus").exists() and leftovers(tmp_path) == []
    result = fetch("hippocampus", plugin, tmp_path, mirror=server.url)
    assert server.requests == [(MSD_TAR, None), (MSD_TAR, f"bytes={kept}-")]
    assert result.report.ok and sorted(p.name for p in tmp_path.iterdir()) == ["Task04_Hippocampus"]


def test_server_that_ignores_range_sends_the_whole_file_again(server, archive, tmp_path):
    server.files[MSD_TAR] = archive
    cache = tmp_path / ".downloads" / "hippocampus"
    cache.mkdir(parents=True)
    (cache / "Task04_Hippocampus.tar.part").write_bytes(archive[:5000])
    server.ignore_range = True
    assert fetch("hippocampus", hippocampus_from(archive), tmp_path, mirror=server.url).report.ok
    assert server.requests == [(MSD_TAR, "bytes=5000-")]


def test_truncated_archive_with_a_matching_checksum_is_not_half_unpacked(server, archive, tmp_path):
    truncated = archive[: len(archive) * 3 // 5]  # the first members unpack, then the data ends
    server.files[MSD_TAR] = truncated
    with pytest.raises(BenchSuiteError, match="Task04_Hippocampus.tar cannot be unpacked"):
        fetch("hippocampus", hippocampus_from(truncated), tmp_path, mirror=server.url)
    assert not (tmp_path / "Task04_Hippocampus").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fetch-")]


def test_archive_escaping_the_data_root_is_refused(server, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo("../evil.txt")
        member.size = 1
        tar.addfile(member, io.BytesIO(b"x"))
    evil = buffer.getvalue()
    server.files[MSD_TAR] = evil
    root = tmp_path / "root"
    with pytest.raises(BenchSuiteError, match="not safe to unpack"):
        fetch("hippocampus", hippocampus_from(evil), root, mirror=server.url)
    assert not (tmp_path / "evil.txt").exists() and not (root / "Task04_Hippocampus").exists()


def test_archive_without_the_dataset_folder(server, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo("Other/x.txt")
        member.size = 1
        tar.addfile(member, io.BytesIO(b"x"))
    other = buffer.getvalue()
    server.files[MSD_TAR] = other
    with pytest.raises(BenchSuiteError, match="holds no folder Task04_Hippocampus"):
        fetch("hippocampus", hippocampus_from(other), tmp_path, mirror=server.url)
    assert not (tmp_path / "Other").exists()


def test_an_existing_folder_is_never_overwritten(server, tmp_path):
    (tmp_path / "Task04_Hippocampus").mkdir()
    result = fetch("hippocampus", hippocampus_from(b""), tmp_path, mirror=server.url)
    assert result.kept == [tmp_path / "Task04_Hippocampus"] and result.written == []
    assert not result.report.ok and server.requests == []
    assert result.lines() == [f"kept {tmp_path / 'Task04_Hippocampus'}: it was already there (fetch never "
                              "overwrites a folder)"]


def test_http_error_and_unreachable_server(server, tmp_path):
    with pytest.raises(BenchSuiteError, match=f"downloading {server.url}{MSD_TAR} failed with HTTP 404"):
        fetch("hippocampus", hippocampus_from(b""), tmp_path, mirror=server.url)
    with pytest.raises(BenchSuiteError, match="cannot reach http://127.0.0.1:9/Task04_Hippocampus.tar"):
        fetch("hippocampus", hippocampus_from(b""), tmp_path, mirror="http://127.0.0.1:9")


# ------------------------------------------------------------------------------------------ per-file sources


@pytest.mark.parametrize("name, plugin, served, expected", [
    ("set12", Set12, {"testsets/Set12": "denoising/Set12",
                      "TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400": "denoising/Train400"},
     ["denoising/Set12", "denoising/Train400"]),
    ("em", ISBI2012EM, {"data/membrane": "isbi2012-em"}, ["isbi2012-em"]),
])
def test_recorded_checksums_match_the_published_files(server, shared_data, tmp_path, name, plugin, served, expected):
    # ../shared/data holds the same bytes as the repositories at the recorded commits
    for source in declared_sources(plugin):
        for prefix, folder in served.items():
            if prefix in source["into"]:
                server.serve_tree(source["base_url"], prefix, shared_data / folder)
    result = fetch(name, plugin, tmp_path, mirror=server.url)
    assert result.report.ok, result.report.lines()
    assert result.written == [tmp_path / folder for folder in expected]
    registries = [load_registry(source) for source in declared_sources(plugin)]
    assert len(server.requests) == sum(map(len, registries))
    for folder in expected:
        copied = sorted(p.relative_to(tmp_path / folder) for p in (tmp_path / folder).rglob("*.png"))
        assert copied == sorted(p.relative_to(shared_data / folder) for p in (shared_data / folder).rglob("*.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({folder.split("/")[0] for folder in expected})


def test_a_corrupted_file_of_a_file_list_is_named_and_the_folder_is_not_written(server, shared_data, tmp_path):
    source, train = declared_sources(Set12)
    server.serve_tree(source["base_url"], "testsets/Set12", shared_data / "denoising" / "Set12")
    server.serve_tree(train["base_url"], "TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400",
                      shared_data / "denoising" / "Train400")
    path = next(p for p in server.files if p.endswith("testsets/Set12/05.png"))
    server.files[path] = server.files[path][:-10] + b"0123456789"
    with pytest.raises(BenchSuiteError, match=r"checksum error: testsets/Set12/05.png downloaded from .* has SHA256"):
        fetch("set12", Set12, tmp_path, mirror=server.url)
    assert not (tmp_path / "denoising").exists()
    # files 01–04 were verified and wait in the cache: the next try fetches only the rest
    server.files[path] = (shared_data / "denoising" / "Set12" / "05.png").read_bytes()
    before = len(server.requests)
    assert fetch("set12", Set12, tmp_path, mirror=server.url).report.ok
    assert len(server.requests) - before == 8 + 400


# ------------------------------------------------------------------------------------------ declarations


def test_every_declared_source_maps_into_the_folders_its_loader_reads(tmp_path):
    expected = {"hippocampus": 1, "bsd68": 68 + 400, "cbsd68": 68, "set12": 12 + 400, "em": 90}
    registry = get_registry()
    for name, count in expected.items():
        plugin = registry.get("dataset", name).obj()
        sources = declared_sources(plugin)
        total = 0
        for source in sources:
            files = load_registry(source)
            total += len(files)
            assert all(":" not in h or h.startswith("md5:") for h in files.values())
            for path in files:
                if not source.get("unpack"):
                    assert any(path.startswith(prefix + "/") for prefix in source["into"]), path
            url = source["base_url"]
            assert url.startswith(("https://raw.githubusercontent.com/", "https://msd-for-monai.s3")), url
            readable = [*plugin.candidates(tmp_path), *getattr(plugin, "train_candidates", lambda r: [])(tmp_path)]
            for target in source["into"].values():
                assert tmp_path / target in readable, (name, target)
        assert total == count, name
    assert load_registry(declared_sources(Hippocampus)[0]) == {
        "Task04_Hippocampus.tar": "md5:9d24dba78a72977dbd1d2e110310f31b"}
    assert declared_sources(BSD68)[0]["base_url"].endswith("/cszn/DnCNN/e93b27812d3ff523a3a79d19e5e50d233d7a8d0a/")
    assert "/cszn/IRCNN/d9dcd537bdac3ae5b753296cd675db8a303c8f72/" in declared_sources(CBSD68)[0]["base_url"]


def test_mirror_replaces_scheme_and_host_only():
    url = "https://raw.githubusercontent.com/cszn/DnCNN/abc/testsets/Set12/01.png"
    assert mirrored(url, "http://127.0.0.1:8000/") == "http://127.0.0.1:8000/cszn/DnCNN/abc/testsets/Set12/01.png"
    assert mirrored(url, "https://mirror.example/raw") == "https://mirror.example/raw/cszn/DnCNN/abc/testsets/Set12/01.png"
    assert mirrored(url, None) == url


@pytest.mark.parametrize("name, plugin, says", [
    ("drive", Drive, "register on the DRIVE"),
    ("camseq01", "camseq01", "download CamSeq01"),
    ("adni", "adni", "ADNI data needs an approved application"),
])
def test_datasets_without_a_public_source_say_where_to_get_them(tmp_path, name, plugin, says):
    if isinstance(plugin, str):
        plugin = get_registry().get("dataset", plugin).obj
    with pytest.raises(BenchSuiteError) as info:
        fetch(name, plugin, tmp_path)
    message = str(info.value)
    assert message.startswith(f"dataset '{name}' cannot be downloaded automatically: {says}")
    assert str(tmp_path) in message and "\n" not in message
