"""`bench-suite data info|check|fetch` through the CLI."""

import functools
import hashlib
import io
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from bench_suite.cli.app import app
from bench_suite.datasets.nifti import Hippocampus


def invoke(*args):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_info_says_where_it_looked(tmp_path):
    code, output = invoke("data", "info", "drive", "--data-root", str(tmp_path))
    assert code == 0
    assert f"looked in {tmp_path / 'DRIVE'}: absent" in output and "register" in output


def test_check_missing_dataset_is_one_error_and_non_zero(tmp_path):
    code, output = invoke("data", "check", "em", "--data-root", str(tmp_path))
    assert code != 0 and "Traceback" not in output
    assert len([line for line in output.splitlines() if line.startswith("error:")]) == 1


def test_fetch_registration_only_dataset_explains_how_to_get_it(tmp_path):
    for name in ("drive", "camseq01", "adni"):
        code, output = invoke("data", "fetch", name, "--data-root", str(tmp_path))
        assert code != 0 and "cannot be downloaded automatically" in output and "Traceback" not in output
        assert len([line for line in output.splitlines() if line.startswith("error:")]) == 1


@pytest.fixture
def msd_server(shared_data, tmp_path, monkeypatch):
    """A local server (127.0.0.1) with a Task04_Hippocampus.tar of 8 subjects in the MSD layout, and the
    hippocampus plugin's registry pointed at its MD5; yields ``(url, archive folder)``."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    source = shared_data / "Task04_Hippocampus"
    with tarfile.open(www / "Task04_Hippocampus.tar", "w") as tar:
        for image in sorted((source / "imagesTr").glob("*.nii.gz"))[:8]:
            for folder in ("imagesTr", "labelsTr"):
                tar.add(source / folder / image.name, f"Task04_Hippocampus/{folder}/{image.name}")
        member = tarfile.TarInfo("Task04_Hippocampus/dataset.json")
        member.size = 2
        tar.addfile(member, io.BytesIO(b"{}"))
    md5 = hashlib.md5((www / "Task04_Hippocampus.tar").read_bytes()).hexdigest()
    monkeypatch.setattr(Hippocampus, "DOWNLOAD",
                        {**Hippocampus.DOWNLOAD, "registry": {"Task04_Hippocampus.tar": f"md5:{md5}"}})
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    httpd.shutdown()
    httpd.server_close()


def test_fetch_hippocampus_gives_a_folder_that_data_check_accepts(msd_server, tmp_path):
    url, _ = msd_server
    root = tmp_path / "data"
    code, output = invoke("data", "fetch", "hippocampus", "--data-root", str(root), "--mirror", url)
    assert code == 0, output
    assert f"downloaded {root / 'Task04_Hippocampus'}" in output and "hippocampus: OK" in output
    code, output = invoke("data", "check", "hippocampus", "--data-root", str(root))
    assert code == 0 and "hippocampus: OK" in output and "counts: " in output
    assert sorted(p.name for p in root.iterdir()) == ["Task04_Hippocampus"]


def test_fetch_takes_the_mirror_from_the_environment(msd_server, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_SUITE_MIRROR", msd_server[0])
    code, output = invoke("data", "fetch", "hippocampus", "--data-root", str(tmp_path / "data"))
    assert code == 0 and "hippocampus: OK" in output, output


def test_fetch_of_a_corrupted_archive_is_one_sentence_and_leaves_no_dataset(msd_server, tmp_path):
    url, www = msd_server
    archive = www / "Task04_Hippocampus.tar"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    root = tmp_path / "data"
    code, output = invoke("data", "fetch", "hippocampus", "--data-root", str(root), "--mirror", url)
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code != 0 and len(errors) == 1 and "Traceback" not in output
    assert errors[0].startswith("error: checksum error: Task04_Hippocampus.tar downloaded from")
    assert not (root / "Task04_Hippocampus").exists()
    assert [p for p in root.rglob("*") if p.is_file()] == []


def test_unknown_dataset_suggests_a_name(tmp_path):
    code, output = invoke("data", "check", "set13", "--data-root", str(tmp_path))
    assert code != 0 and "did you mean 'set12'" in output


def test_check_passes_on_real_data(shared_data):
    for name in ("em", "set12", "hippocampus"):
        code, output = invoke("data", "check", name, "--data-root", str(shared_data))
        assert code == 0, output
        assert f"{name}: OK" in output
