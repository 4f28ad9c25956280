import numpy as np
import pytest
from PIL import Image

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.params import build_params
from bench_suite.datasets.bsd import BSD68, CBSD68, ColorDenoisingParams, GrayDenoisingParams, Set12
from bench_suite.experiment.data import check


def _write(folder, names, shape, seed=0, fmt="png"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in names:
        array = rng.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(array).save(folder / f"{name}.{fmt}")
        arrays[name] = array
    return arrays


@pytest.fixture
def gray(tmp_path):
    test = _write(tmp_path / "denoising" / "Set12", ["01", "02", "03"], (40, 56))  # not a multiple of 16
    _write(tmp_path / "denoising" / "Set12", ["04"], (72, 64), seed=1)
    train = _write(tmp_path / "denoising" / "Train400", [f"test_{i:03d}" for i in range(1, 7)], (64, 64), seed=2)
    return tmp_path, test, train


def _error(plugin, root, profile="paper") -> str:
    with pytest.raises(BenchSuiteError) as info:
        plugin.load(root, profile)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_set12_loads_clean_images_at_their_own_size(gray):
    root, test, train = gray
    bundle = Set12(GrayDenoisingParams(sigma=15)).load(root, "paper")
    assert bundle.task.kind == "denoising" and bundle.task.in_channels == 1 and bundle.task.noise_sigma == 15.0
    assert [s.id for s in bundle.test] == ["01", "02", "03", "04"]
    assert bundle.test[0].image.shape == (1, 40, 56) and bundle.test[3].image.shape == (1, 72, 64)
    np.testing.assert_allclose(bundle.test[1].image[0], test["02"] / 255.0, atol=1e-7)
    assert all(s.target is None for s in bundle.train + bundle.test)
    assert len(bundle.train) == 6 and bundle.train[0].id == "train/test_001"
    np.testing.assert_allclose(bundle.train[0].image[0], train["test_001"] / 255.0, atol=1e-7)
    assert bundle.patch_size == 48 and bundle.split["sigma"] == 15.0


def test_smoke_caps_and_the_flat_folder_name(tmp_path, gray):
    root, _, _ = gray
    (root / "denoising" / "Set12").rename(root / "BSD68")  # <data_root>/<Set> works too
    bundle = BSD68().load(root, "smoke")
    assert len(bundle.train) == 4 and len(bundle.test) == 2 and bundle.name == "bsd68"


def test_any_positive_sigma_and_validation():
    assert build_params(GrayDenoisingParams, {"sigma": "35"}, "dataset 'set12'").sigma == 35.0
    with pytest.raises(BenchSuiteError, match="sigma"):
        build_params(GrayDenoisingParams, {"sigma": "0"}, "dataset 'set12'")
    with pytest.raises(BenchSuiteError, match="sigma"):
        build_params(GrayDenoisingParams, {"sigma": "nan"}, "dataset 'set12'")


def test_colour_set_with_a_bsds500_release(tmp_path):
    _write(tmp_path / "CBSD68", ["3096", "8023"], (48, 64, 3))
    images = tmp_path / "denoising" / "BSR" / "BSDS500" / "data" / "images"
    _write(images / "train", ["100075", "100080"], (64, 80, 3), seed=1, fmt="jpg")
    _write(images / "test", ["100007"], (64, 80, 3), seed=2, fmt="jpg")
    _write(images / "val", ["3096"], (64, 80, 3), seed=3, fmt="jpg")  # BSD68 comes from here
    bundle = CBSD68(ColorDenoisingParams(train="BSR")).load(tmp_path, "paper")
    assert bundle.task.in_channels == 3 and bundle.test[0].image.shape == (3, 48, 64)
    assert sorted(s.id for s in bundle.train) == ["train/100007", "train/100075", "train/100080"]
    assert "val/ left out" in bundle.split["rule"]


def test_bsds300_layout_uses_train_only(tmp_path, gray):
    root, _, _ = gray
    images = root / "BSDS300" / "images"
    _write(images / "train", ["1", "2"], (64, 64, 3), seed=1)
    _write(images / "test", ["3"], (64, 64, 3), seed=2)  # BSDS300's test set holds BSD68's images
    bundle = Set12(GrayDenoisingParams(train="BSDS300")).load(root, "paper")
    assert [s.id for s in bundle.train] == ["train/1", "train/2"]
    assert bundle.train[0].image.shape == (1, 64, 64)  # colour training images become gray (luma)


def test_absolute_training_folder(tmp_path, gray):
    root, _, _ = gray
    elsewhere = tmp_path / "elsewhere"
    _write(elsewhere, ["a", "b"], (50, 50))
    bundle = Set12(GrayDenoisingParams(train=str(elsewhere))).load(root, "paper")
    assert [s.id for s in bundle.train] == ["train/a", "train/b"]


# ------------------------------------------------------------------------------------------ bad input


def test_missing_test_folder(tmp_path):
    message = _error(BSD68(), tmp_path)
    assert str(tmp_path / "denoising" / "BSD68") in message and "BSD68" in message


def test_missing_training_folder(gray):
    root, _, _ = gray
    message = _error(Set12(GrayDenoisingParams(train="Train999")), root)
    assert "Train999" in message and "train=" in message


def test_empty_test_folder_and_wrong_training_layout(tmp_path, gray):
    root, _, _ = gray
    (root / "denoising" / "BSD68").mkdir()
    assert "holds no images" in _error(BSD68(), root)
    (root / "denoising" / "Odd" / "subfolder").mkdir(parents=True)
    assert "no BSDS train/" in _error(Set12(GrayDenoisingParams(train="Odd")), root)


def test_truncated_image(gray):
    root, _, _ = gray
    path = root / "denoising" / "Set12" / "03.png"
    path.write_bytes(path.read_bytes()[:100])
    message = _error(Set12(), root)
    assert str(path) in message and "truncated" in message


def test_gray_image_in_a_colour_set(tmp_path):
    _write(tmp_path / "CBSD68", ["1"], (48, 48))
    _write(tmp_path / "CBSD432", ["2"], (64, 64, 3))
    assert "gray image but this dataset is colour" in _error(CBSD68(), tmp_path)


def test_training_image_smaller_than_the_patch(gray):
    root, _, _ = gray
    _write(root / "denoising" / "Train400", ["tiny"], (32, 32))
    assert "smaller than the 48-pixel" in _error(Set12(), root)


def test_check_collects_all_problems(gray):
    root, _, _ = gray
    (root / "denoising" / "Set12" / "01.png").write_bytes(b"junk")
    Image.fromarray(np.zeros((40, 40), np.uint16)).save(root / "denoising" / "Train400" / "deep.png")
    report = check("set12", Set12, root)
    assert not report.ok and len(report.problems) == 2
    assert any("01.png cannot be read" in p for p in report.problems)
    assert any("deep.png holds uint16 pixels" in p for p in report.problems)
    assert report.counts == {"test": 4, "train": 7}


# ------------------------------------------------------------------------------------------ real data


@pytest.mark.realdata
def test_real_set12_with_train400(shared_data):
    bundle = Set12(GrayDenoisingParams(train="Train400", sigma=25)).load(shared_data, "quick")
    assert len(bundle.test) == 12 and len(bundle.train) == 100
    assert {s.image.shape for s in bundle.test} == {(1, 256, 256), (1, 512, 512)}
    assert {s.image.shape for s in bundle.train} == {(1, 180, 180)}
    report = check("set12", Set12, shared_data)
    assert report.ok, report.problems
    assert report.counts == {"test": 12, "train": 400}
    assert report.shapes["training images"] == {(180, 180): 400}
