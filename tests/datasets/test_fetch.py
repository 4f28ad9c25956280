"""fetch() against a local threaded HTTP server with Range support: download, resume, checksum, unpack."""

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.datasets.drive import Drive
from bench_suite.experiment.data import fetch

PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()  # incompressible


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as handle:
        for name, data in entries.items():
            handle.writestr(name, data)
    return buffer.getvalue()


def _targz(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as handle:
        for name, data in entries.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            handle.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


ENTRIES = {"Remote/a.bin": PAYLOAD, "Remote/sub/b.txt": b"hello"}
ZIP = _zip(ENTRIES)
TARGZ = _targz(ENTRIES)


class Server:
    """Serves ``files`` by path; can cut the next body short or ignore Range, and records Range headers."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.ranges: list[str | None] = []
        self.cut_after: int | None = None
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                body = server.files.get(self.path)
                requested = self.headers.get("Range")
                server.ranges.append(requested)
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
                if server.cut_after is not None:
                    # A dropped connection: the promised length is never delivered.
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

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    instance = Server({"/remote.zip": ZIP, "/remote.tar.gz": TARGZ, "/evil.zip": _zip({"../evil.txt": b"x"})})
    yield instance
    instance.close()


def _plugin(url: str, data: bytes, archive: str = "zip", sha256: str | None = None):
    class Remote:
        """A dataset served by the test server."""

        DOWNLOAD = {
            "url": url, "sha256": sha256 or hashlib.sha256(data).hexdigest(), "archive": archive, "size": len(data),
        }
        HOW_TO_GET = "not needed"

        def candidates(self, data_root: Path) -> list[Path]:
            return [Path(data_root) / "Remote"]

    return Remote


def _assert_unpacked(folder: Path, data_root: Path) -> None:
    assert folder == data_root / "Remote"
    assert (folder / "a.bin").read_bytes() == PAYLOAD and (folder / "sub" / "b.txt").read_bytes() == b"hello"
    assert list((data_root / ".downloads").iterdir()) == []  # no archive or .part left behind
    assert [p.name for p in data_root.iterdir() if p.name.startswith(".extract")] == []


def test_download_verify_and_unpack_zip(server, tmp_path):
    seen = []
    plugin = _plugin(server.url("/remote.zip"), ZIP)
    folder = fetch("remote", plugin, tmp_path, progress=lambda done, total: seen.append((done, total)))
    _assert_unpacked(folder, tmp_path)
    assert seen[-1] == (len(ZIP), len(ZIP)) and all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))
    assert server.ranges == [None]


def test_tar_gz_archive(server, tmp_path):
    folder = fetch("remote", _plugin(server.url("/remote.tar.gz"), TARGZ, "tar.gz"), tmp_path)
    _assert_unpacked(folder, tmp_path)


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    plugin = _plugin(server.url("/remote.zip"), ZIP)
    server.cut_after = 100_000
    with pytest.raises(BenchSuiteError, match="run fetch again to resume") as info:
        fetch("remote", plugin, tmp_path)
    assert "100000 of" in str(info.value)
    part = tmp_path / ".downloads" / "remote.zip.part"
    assert part.stat().st_size == 100_000 and not (tmp_path / "Remote").exists()
    folder = fetch("remote", plugin, tmp_path)
    assert server.ranges == [None, "bytes=100000-"]
    _assert_unpacked(folder, tmp_path)


def test_server_that_ignores_range_restarts_the_file(server, tmp_path):
    (tmp_path / ".downloads").mkdir()
    (tmp_path / ".downloads" / "remote.zip.part").write_bytes(ZIP[:5000])
    server.ignore_range = True
    folder = fetch("remote", _plugin(server.url("/remote.zip"), ZIP), tmp_path)
    assert server.ranges == ["bytes=5000-"]
    _assert_unpacked(folder, tmp_path)


def test_complete_part_file_is_not_downloaded_again(server, tmp_path):
    (tmp_path / ".downloads").mkdir()
    (tmp_path / ".downloads" / "remote.zip.part").write_bytes(ZIP)
    folder = fetch("remote", _plugin(server.url("/remote.zip"), ZIP), tmp_path)
    assert server.ranges == [f"bytes={len(ZIP)}-"]  # answered 416: the part already holds every byte
    _assert_unpacked(folder, tmp_path)


def test_checksum_mismatch_deletes_the_file_and_says_so(server, tmp_path):
    plugin = _plugin(server.url("/remote.zip"), ZIP, sha256="0" * 64)
    with pytest.raises(BenchSuiteError, match="SHA-256") as info:
        fetch("remote", plugin, tmp_path)
    assert "0" * 64 in str(info.value) and hashlib.sha256(ZIP).hexdigest() in str(info.value)
    assert list((tmp_path / ".downloads").iterdir()) == [] and not (tmp_path / "Remote").exists()


def test_corrupt_partial_download_fails_the_checksum(server, tmp_path):
    (tmp_path / ".downloads").mkdir()
    (tmp_path / ".downloads" / "remote.zip.part").write_bytes(b"\x00" * 1000)  # not a prefix of the file
    plugin = _plugin(server.url("/remote.zip"), ZIP)
    with pytest.raises(BenchSuiteError, match="SHA-256"):
        fetch("remote", plugin, tmp_path)
    _assert_unpacked(fetch("remote", plugin, tmp_path), tmp_path)  # the next try starts over


def test_mirror_url_uses_the_declared_checksum(server, tmp_path):
    plugin = _plugin("http://127.0.0.1:9/unreachable.zip", ZIP)
    folder = fetch("remote", plugin, tmp_path, url=server.url("/remote.zip"))
    _assert_unpacked(folder, tmp_path)


def test_existing_folder_is_kept(server, tmp_path):
    (tmp_path / "Remote").mkdir()
    assert fetch("remote", _plugin(server.url("/remote.zip"), ZIP), tmp_path) == tmp_path / "Remote"
    assert server.ranges == []


def test_http_error_and_unreachable_server(server, tmp_path):
    with pytest.raises(BenchSuiteError, match="HTTP 404"):
        fetch("remote", _plugin(server.url("/nothing.zip"), ZIP), tmp_path)
    with pytest.raises(BenchSuiteError, match="cannot reach"):
        fetch("remote", _plugin("http://127.0.0.1:9/x.zip", ZIP), tmp_path)


def test_archive_escaping_the_data_root_is_refused(server, tmp_path):
    evil = server.files["/evil.zip"]
    root = tmp_path / "root"
    with pytest.raises(BenchSuiteError, match="not safe to unpack"):
        fetch("remote", _plugin(server.url("/evil.zip"), evil), root)
    assert not (tmp_path / "evil.txt").exists()


def test_archive_without_the_dataset_folder(server, tmp_path):
    other = _zip({"Other/x.txt": b"x"})
    server.files["/other.zip"] = other
    with pytest.raises(BenchSuiteError, match="holds none of the folders Remote"):
        fetch("remote", _plugin(server.url("/other.zip"), other), tmp_path)


def test_plugins_without_download_explain_how_to_get_the_data(tmp_path):
    with pytest.raises(BenchSuiteError) as info:
        fetch("drive", Drive, tmp_path)
    message = str(info.value)
    assert message.startswith("dataset 'drive' cannot be downloaded automatically: register on the DRIVE")
    assert str(tmp_path / "DRIVE") in message
