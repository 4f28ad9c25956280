import numpy as np
import pytest
from PIL import Image

from bench_suite.core.checks import CheckReport
from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.registry import get_registry
from bench_suite.core.tasks import DatasetBundle, Sample, Task
from bench_suite.datasets.files import first_problem, read_image
from bench_suite.experiment.data import check, info

OURS = ("drive", "em", "camseq01", "bsd68", "cbsd68", "set12", "hippocampus", "adni")


def test_report_lines_summarize_shapes_labels_and_problems():
    report = CheckReport("x", folder="/data/x")
    assert report.ok and report.lines()[0] == "x: OK (/data/x)"
    for shape in [(31, 40, 24), (43, 59, 47), (35, 50, 36), (35, 51, 35)]:
        report.add_shape("images", shape)
    report.add_labels("labels", [2, 0])
    report.add_labels("labels", np.array([1]))
    report.problems.extend(f"problem {i}" for i in range(25))
    report.counts["pairs"] = 4
    lines = report.lines()
    assert not report.ok and lines[0].startswith("x: PROBLEMS FOUND")
    assert "shapes of images: 4 different, per axis from 31×40×24 to 43×59×47 (4 files)" in lines
    assert "label values of labels: {0, 1, 2}" in lines
    assert "25 problems:" in lines and "  ... and 5 more" in lines
    assert report.to_dict()["shapes"]["images"]["35×50×36"] == 1


def test_no_folder_is_not_ok():
    assert not CheckReport("x").ok


def test_first_problem_points_to_the_rest():
    assert str(first_problem(["a is bad; fix a"], "em")) == "a is bad; fix a"
    message = str(first_problem(["a", "b", "c"], "em"))
    assert message == "a (2 more problems: `bench-suite data check em` lists all)"


class _Fake:
    """A third-party dataset without check() or candidates()."""

    def __init__(self, params=None):
        pass

    def load(self, data_root, profile):
        sample = Sample("s", np.zeros((1, 16, 16), np.float32), np.ones((16, 16), np.int64))
        return DatasetBundle("fake", Task("segmentation", 1), [sample], [sample], 16, source="somewhere")


class _Broken(_Fake):
    def load(self, data_root, profile):
        raise BenchSuiteError("fake folder x is missing; create it")


def test_check_falls_back_to_loading_plugins_without_their_own(tmp_path):
    report = check("fake", _Fake, tmp_path)
    assert report.ok and report.counts == {"train": 1, "test": 1} and report.label_values == {"train": [1], "test": [1]}
    broken = check("fake", _Broken(), tmp_path)
    assert not broken.ok and broken.problems == ["fake folder x is missing; create it"]


def test_info_for_a_plugin_that_reads_no_folder(tmp_path):
    lines = info("fake", _Fake, tmp_path)
    assert lines[0].startswith("fake: A third-party dataset")
    assert any("does not read a folder" in line for line in lines)


def test_info_lists_candidates_and_how_to_get(tmp_path):
    from bench_suite.datasets.em import ISBI2012EM

    lines = info("em", ISBI2012EM, tmp_path)
    assert sum("absent" in line for line in lines) == 3
    assert any(line.startswith("not found; download train-volume.tif") for line in lines)
    (tmp_path / "em" / "train" / "image").mkdir(parents=True)
    (tmp_path / "em" / "train" / "image" / "0.png").write_bytes(b"")
    lines = info("em", ISBI2012EM, tmp_path)
    assert f"looked in {tmp_path / 'em'}: exists" in lines and "  train/image: 1 .png" in lines


def test_every_builtin_dataset_exposes_the_check_api(tmp_path):
    registry = get_registry()
    for name in OURS:
        cls = registry.get("dataset", name).obj
        plugin = cls()
        candidates = plugin.candidates(tmp_path)
        assert candidates and all(str(p).startswith(str(tmp_path)) for p in candidates)
        assert isinstance(cls.HOW_TO_GET, str) and cls.HOW_TO_GET  # downloads: tests/datasets/test_fetch.py
        report = check(name, cls, tmp_path)
        assert not report.ok and len(report.problems) >= 1 and "\n" not in report.problems[0]
        with pytest.raises(BenchSuiteError):
            plugin.load(tmp_path, "smoke")
        with pytest.raises(BenchSuiteError, match="profile"):
            plugin.load(tmp_path, "huge")


# ------------------------------------------------------------------------------------------ read_image


def test_read_image_modes(tmp_path):
    gray_rgb = np.repeat(np.arange(48, dtype=np.uint8).reshape(6, 8)[..., None], 3, -1)
    Image.fromarray(gray_rgb).save(tmp_path / "grayish.png")
    assert np.array_equal(read_image(tmp_path / "grayish.png", "x", "L"), gray_rgb[..., 0])  # lossless
    colour = np.zeros((6, 8, 3), np.uint8)
    colour[..., 0] = 200
    Image.fromarray(colour).save(tmp_path / "red.png")
    assert read_image(tmp_path / "red.png", "x", "L")[0, 0] == 60  # 0.299 · 200, rounded
    Image.fromarray(colour).convert("P").save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png", "x", "RGB").shape == (6, 8, 3)
    Image.fromarray(np.dstack([colour, np.full((6, 8), 255, np.uint8)])).save(tmp_path / "alpha.png")
    assert np.array_equal(read_image(tmp_path / "alpha.png", "x", "RGB"), colour)
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(tmp_path / "gray.png")
    with pytest.raises(BenchSuiteError, match="gray image but this dataset is colour"):
        read_image(tmp_path / "gray.png", "x", "RGB")
    Image.fromarray(np.zeros((6, 8), np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(BenchSuiteError, match="uint16 pixels, not 8-bit"):
        read_image(tmp_path / "deep.png", "x", "L")
    with pytest.raises(BenchSuiteError, match="cannot be read"):
        read_image(tmp_path / "missing.png", "x", "L")
