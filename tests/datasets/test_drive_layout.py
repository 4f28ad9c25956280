import numpy as np
import pytest
from PIL import Image

from bench_suite.core.errors import BenchSuiteError
from bench_suite.datasets.drive_layout import CLAHE_CLIP_LIMIT, read_drive_layout, write_drive_layout

H, W = 40, 36


def _item(number: int, rng: np.random.Generator):
    yy, xx = np.mgrid[0:H, 0:W]
    fov = (yy - H / 2) ** 2 + (xx - W / 2) ** 2 < (0.45 * min(H, W)) ** 2
    label = (np.abs(yy - xx - number % 5) < 2) & fov
    rgb = np.stack([160 + 40 * np.sin(xx / 6), 80 + 20 * np.cos(yy / 5), np.full((H, W), 30.0)], -1)
    rgb = rgb * np.where(label, 0.6, 1.0)[..., None] * fov[..., None] + rng.normal(0, 3, (H, W, 3))
    return number, np.clip(rgb, 0, 255).astype(np.uint8), label, fov


@pytest.fixture
def drive(tmp_path):
    rng = np.random.default_rng(0)
    train = [_item(n, rng) for n in (22, 21, 23)]
    test = [_item(n, rng) for n in (1, 2)]
    root = write_drive_layout(tmp_path / "DRIVE", train, test)
    return root, {n: (label, fov) for n, _, label, fov in train + test}


def _error(root) -> str:
    with pytest.raises(BenchSuiteError) as info:
        read_drive_layout(root)
    message = str(info.value)
    assert "\n" not in message and message.strip()
    return message


def test_writer_makes_the_real_drive_files(drive):
    root, _ = drive
    assert (root / "training/images/21_training.tif").is_file()
    assert (root / "training/1st_manual/21_manual1.gif").is_file()
    assert (root / "training/mask/21_training_mask.gif").is_file()
    assert (root / "test/images/01_test.tif").is_file()
    assert (root / "test/mask/01_test_mask.gif").is_file()
    with Image.open(root / "test/1st_manual/02_manual1.gif") as label:
        assert set(np.unique(np.asarray(label.convert("L")))) == {0, 255}
    with Image.open(root / "training/images/21_training.tif") as image:
        assert image.mode == "RGB" and image.size == (W, H)


def test_read_back_pairs_files_by_number_and_preprocesses(drive):
    root, truth = drive
    train, test = read_drive_layout(root)
    assert [s.id for s in train] == ["21_training", "22_training", "23_training"]
    assert [s.id for s in test] == ["01_test", "02_test"]
    for sample in train + test:
        label, fov = truth[int(sample.id[:2])]
        assert sample.image.shape == (1, H, W) and sample.image.dtype == np.float32
        assert sample.image.min() >= 0.0 and sample.image.max() <= 1.0
        assert sample.image.max() - sample.image.min() > 0.9  # min-max, CLAHE and gamma span [0, 1]
        assert sample.target.dtype == np.int64 and np.array_equal(sample.target, label.astype(np.int64))
        assert sample.fov.dtype == bool and np.array_equal(sample.fov, fov)
        # Vessels are drawn darker, and stay darker after the preprocessing.
        inside = sample.fov
        assert sample.image[0][inside & (sample.target == 1)].mean() < sample.image[0][inside].mean()


def test_clahe_clip_matches_opencv_clip_limit_two():
    assert CLAHE_CLIP_LIMIT * 256 == pytest.approx(2.0)


def test_optional_second_observer_folder_is_ignored(drive):
    root, _ = drive
    (root / "test/2nd_manual").mkdir()
    (root / "test/2nd_manual/01_manual2.gif").write_bytes(b"not read")
    train, test = read_drive_layout(root)
    assert len(train) == 3 and len(test) == 2


def test_missing_root_folder(tmp_path):
    assert "nowhere" in _error(tmp_path / "nowhere")


def test_missing_subfolder(drive):
    root, _ = drive
    for path in (root / "test/mask").iterdir():
        path.unlink()
    (root / "test/mask").rmdir()
    message = _error(root)
    assert "test/mask" in message


def test_root_one_level_too_high_is_pointed_out(drive):
    root, _ = drive
    message = _error(root.parent)
    assert "has no training/images" in message and str(root) in message


def test_image_without_label_names_the_id(drive):
    root, _ = drive
    (root / "training/1st_manual/22_manual1.gif").unlink()
    message = _error(root)
    assert "22_training.tif" in message and "id 22" in message and "22_manual1.gif" in message


def test_image_without_mask_names_the_id(drive):
    root, _ = drive
    (root / "test/mask/02_test_mask.gif").unlink()
    message = _error(root)
    assert "02_test.tif" in message and "02_test_mask.gif" in message


def test_label_without_image(drive):
    root, _ = drive
    (root / "test/images/02_test.tif").unlink()
    assert "02_manual1.gif" in _error(root)


@pytest.mark.parametrize("name", ["training/images/23_training.tif", "test/1st_manual/01_manual1.gif"])
def test_truncated_file(drive, name):
    root, _ = drive
    path = root / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = _error(root)
    assert path.name in message and "truncated" in message


def test_empty_file(drive):
    root, _ = drive
    (root / "training/mask/21_training_mask.gif").write_bytes(b"")
    assert "21_training_mask.gif" in _error(root)


def test_label_values_other_than_0_and_255(drive):
    root, _ = drive
    values = np.zeros((H, W), dtype=np.uint8)
    values[:5] = 128
    values[5:10] = 255
    Image.fromarray(values).save(root / "test/1st_manual/02_manual1.gif")
    message = _error(root)
    assert "02_manual1.gif" in message and "128" in message


def test_shape_mismatch_between_image_and_label(drive):
    root, _ = drive
    Image.fromarray(np.zeros((H + 2, W), dtype=np.uint8)).save(root / "training/1st_manual/23_manual1.gif")
    message = _error(root)
    assert "23_training.tif" in message and "23_manual1.gif" in message and f"{H + 2}×{W}" in message


def test_all_black_mask(drive):
    root, _ = drive
    Image.fromarray(np.zeros((H, W), dtype=np.uint8)).save(root / "test/mask/01_test_mask.gif")
    assert "01_test_mask.gif" in _error(root)


def test_empty_split(drive):
    root, _ = drive
    for sub in ("images", "1st_manual", "mask"):
        for path in (root / "test" / sub).iterdir():
            path.unlink()
    message = _error(root)
    assert "test/images" in message and "empty" in message


def test_file_without_leading_number(drive):
    root, _ = drive
    (root / "training/images/extra.tif").write_bytes(b"")
    assert "extra.tif" in _error(root)


def test_writer_rejects_bad_items(tmp_path):
    rng = np.random.default_rng(0)
    number, rgb, label, fov = _item(1, rng)
    with pytest.raises(ValueError, match="twice"):
        write_drive_layout(tmp_path, [(number, rgb, label, fov)], [(number, rgb, label, fov)])
    with pytest.raises(ValueError, match="label"):
        write_drive_layout(tmp_path / "b", [(2, rgb, label[:-1], fov)], [])
