import numpy as np
import pytest
from PIL import Image

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.params import build_params
from bench_suite.core.tasks import Tiling
from bench_suite.datasets.drive import Drive, DriveParams
from bench_suite.datasets.drive_layout import write_drive_layout
from bench_suite.experiment.data import check, info

SIDE = 64


def _item(number: int, rng: np.random.Generator):
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    fov = (yy - SIDE / 2) ** 2 + (xx - SIDE / 2) ** 2 < (0.45 * SIDE) ** 2
    label = (np.abs(yy - xx - number % 7) < 2) & fov
    rgb = np.stack([160 + 40 * np.sin(xx / 6), 80 + 20 * np.cos(yy / 5), np.full((SIDE, SIDE), 30.0)], -1)
    rgb = rgb * np.where(label, 0.6, 1.0)[..., None] * fov[..., None] + rng.normal(0, 3, (SIDE, SIDE, 3))
    return number, np.clip(rgb, 0, 255).astype(np.uint8), label, fov


@pytest.fixture
def drive(tmp_path):
    rng = np.random.default_rng(0)
    train = [_item(n, rng) for n in range(21, 27)]
    test = [_item(n, rng) for n in range(1, 4)]
    write_drive_layout(tmp_path / "DRIVE", train, test)
    return tmp_path


def _error(root, profile="paper", params=None) -> str:
    with pytest.raises(BenchSuiteError) as info_:
        Drive(params).load(root, profile)
    assert "\n" not in str(info_.value)
    return str(info_.value)


def test_loads_drive_with_its_own_split(drive):
    bundle = Drive().load(drive, "paper")
    assert [s.id for s in bundle.train] == [f"{n}_training" for n in range(21, 27)]
    assert [s.id for s in bundle.test] == ["01_test", "02_test", "03_test"]
    assert bundle.task.n_classes == 2 and bundle.patch_size == 48 and bundle.name == "drive"
    sample = bundle.test[0]
    assert sample.image.shape == (1, SIDE, SIDE) and sample.fov.dtype == bool
    assert set(np.unique(sample.target)) == {0, 1}
    assert bundle.source == str(drive / "DRIVE")


def test_drive_tests_on_the_reference_tiles_or_on_whole_images(drive):
    assert Drive().load(drive, "paper").test_tiling == Tiling(48, 48)  # 156 tiles per DRIVE image
    overlapping = Drive(build_params(DriveParams, {"test_stride": "16"}, "dataset 'drive'")).load(drive, "paper")
    assert overlapping.test_tiling == Tiling(48, 16)
    assert Drive(DriveParams(test_inference="whole")).load(drive, "paper").test_tiling is None
    with pytest.raises(BenchSuiteError, match="test_stride"):
        build_params(DriveParams, {"test_stride": "64"}, "dataset 'drive'")


def test_smoke_caps_counts(drive):
    bundle = Drive().load(drive, "smoke")
    assert len(bundle.train) == 4 and len(bundle.test) == 2
    assert bundle.split["train"] == [s.id for s in bundle.train]


def test_patch_size_is_validated_and_checked_against_the_images(drive):
    with pytest.raises(BenchSuiteError, match="multiple of 16"):
        build_params(DriveParams, {"patch_size": "40"}, "dataset 'drive'")
    assert "smaller than the 80-pixel" in _error(drive, params=DriveParams(patch_size=80))


def test_missing_folder_explains_how_to_get_it(tmp_path):
    message = _error(tmp_path)
    assert str(tmp_path / "DRIVE") in message and "DRIVE: Digital Retinal Images" in message


def test_wrong_layout_image_without_label_and_bad_values(drive):
    root = drive / "DRIVE"
    (root / "training" / "1st_manual" / "22_manual1.gif").unlink()
    assert "has no label" in _error(drive)
    Image.fromarray(np.full((SIDE, SIDE), 128, np.uint8)).save(root / "training" / "1st_manual" / "22_manual1.gif")
    assert "holds values 128" in _error(drive)


def test_check_collects_every_problem(drive):
    root = drive / "DRIVE"
    (root / "training" / "mask" / "23_training_mask.gif").unlink()
    (root / "test" / "images" / "02_test.tif").write_bytes(b"II*\x00broken")
    Image.fromarray(np.zeros((SIDE, SIDE // 2), np.uint8)).save(root / "test" / "1st_manual" / "03_manual1.gif")
    Image.fromarray(np.zeros((SIDE, SIDE), np.uint8)).save(root / "training" / "mask" / "24_training_mask.gif")
    report = check("drive", Drive, drive)
    assert not report.ok and len(report.problems) == 4, report.problems
    text = "\n".join(report.problems)
    assert "23" in text and "02_test.tif" in text and "03_manual1.gif" in text and "all black" in text
    assert report.counts == {"training images": 6, "test images": 3}


def test_check_and_info_on_a_good_folder(drive):
    report = check("drive", Drive, drive)
    assert report.ok, report.problems
    assert report.shapes == {"training images": {(SIDE, SIDE): 6}, "test images": {(SIDE, SIDE): 3}}
    assert report.label_values == {"training": [0, 1], "test": [0, 1]}
    lines = info("drive", Drive, drive)
    assert any(str(drive / "DRIVE") in line and "exists" in line for line in lines)
    assert any("training/images: 6 .tif" in line for line in lines)
