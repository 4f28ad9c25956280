import numpy as np
import pytest
import tifffile
from PIL import Image

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.params import build_params
from bench_suite.datasets.em import ISBI2012EM, EMParams
from bench_suite.experiment.data import check

N, SIDE = 8, 64


def _stack(seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (N, SIDE, SIDE), dtype=np.uint8)
    labels = np.where(rng.random((N, SIDE, SIDE)) < 0.75, 255, 0).astype(np.uint8)
    return images, labels


def write_png_layout(folder, images, labels):
    for sub in ("image", "label"):
        (folder / "train" / sub).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(image).save(folder / "train" / "image" / f"{i}.png")
        Image.fromarray(label).save(folder / "train" / "label" / f"{i}.png")
    return folder


@pytest.fixture
def em(tmp_path):
    images, labels = _stack()
    write_png_layout(tmp_path / "isbi2012-em", images, labels)
    return tmp_path, images, labels


def _error(root, params=None, profile="paper") -> str:
    with pytest.raises(BenchSuiteError) as info:
        ISBI2012EM(params).load(root, profile)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_png_layout_loads_with_the_declared_split(em):
    root, images, labels = em
    bundle = ISBI2012EM(EMParams(n_test=2)).load(root, "paper")
    assert [s.id for s in bundle.train] == [f"slice{i:02d}" for i in range(6)]
    assert [s.id for s in bundle.test] == ["slice06", "slice07"]
    assert bundle.split["test_slices"] == [6, 7] and "last 2 of 8" in bundle.split["rule"]
    sample = bundle.test[0]
    assert sample.image.shape == (1, SIDE, SIDE) and sample.image.dtype == np.float32
    np.testing.assert_allclose(sample.image[0], images[6] / 255.0, atol=1e-7)  # inputs as they are
    assert np.array_equal(sample.target, (labels[6] == 255).astype(np.int64))  # 255 → 1
    assert bundle.task.n_classes == 2 and bundle.patch_size == 64


def test_png_names_sort_numerically_and_test_slices_override(tmp_path):
    images, labels = _stack()
    folder = write_png_layout(tmp_path / "em", images, labels)
    for sub in ("image", "label"):  # 1-based names 1..8: slice numbers are positions, 10 after 9
        for i in reversed(range(N)):
            (folder / "train" / sub / f"{i}.png").rename(folder / "train" / sub / f"{i + 3}.png")
    bundle = ISBI2012EM(EMParams(test_slices=(0, 5))).load(tmp_path, "paper")
    assert [s.id for s in bundle.test] == ["slice00", "slice05"]
    np.testing.assert_allclose(bundle.test[1].image[0], images[5] / 255.0, atol=1e-7)
    assert len(bundle.train) == N - 2


def test_tiff_stacks_load_like_the_png_slices(tmp_path, em):
    root, images, labels = em
    folder = tmp_path / "tiff" / "ISBI2012"
    folder.mkdir(parents=True)
    tifffile.imwrite(folder / "train-volume.tif", images)
    tifffile.imwrite(folder / "train-labels.tif", labels)
    from_tiff = ISBI2012EM(EMParams(n_test=3)).load(tmp_path / "tiff", "paper")
    from_png = ISBI2012EM(EMParams(n_test=3)).load(root, "paper")
    for a, b in zip(from_tiff.train + from_tiff.test, from_png.train + from_png.test, strict=True):
        assert a.id == b.id and np.array_equal(a.image, b.image) and np.array_equal(a.target, b.target)


def test_smoke_profile_caps_counts(em):
    root, _, _ = em
    bundle = ISBI2012EM(EMParams(n_test=3)).load(root, "smoke")
    assert len(bundle.train) == 4 and len(bundle.test) == 2
    assert bundle.split["train"] == [s.id for s in bundle.train]


def test_params_are_validated():
    with pytest.raises(BenchSuiteError, match="n_test"):
        build_params(EMParams, {"n_test": "0"}, "dataset 'em'")
    with pytest.raises(BenchSuiteError, match="twice"):
        build_params(EMParams, {"test_slices": "[1,1]"}, "dataset 'em'")
    with pytest.raises(BenchSuiteError, match="multiple of 16"):
        build_params(EMParams, {"patch_size": "50"}, "dataset 'em'")
    assert build_params(EMParams, {"test_slices": "[0,10]"}, "dataset 'em'").test_slices == (0, 10)


def test_split_that_cannot_work_is_an_error(em):
    root, _, _ = em
    assert "n_test=8" in _error(root, EMParams(n_test=8))
    assert "test_slices [9]" in _error(root, EMParams(test_slices=(9,)))


# ------------------------------------------------------------------------------------------ bad input


def test_missing_folder_names_every_candidate(tmp_path):
    message = _error(tmp_path)
    assert str(tmp_path / "isbi2012-em") in message and str(tmp_path / "ISBI2012") in message
    assert "train-volume.tif" in message


def test_wrong_layout(tmp_path):
    (tmp_path / "isbi2012-em" / "images").mkdir(parents=True)
    assert "neither train-volume.tif" in _error(tmp_path)


def test_only_one_tiff_stack(tmp_path):
    (tmp_path / "em").mkdir()
    tifffile.imwrite(tmp_path / "em" / "train-volume.tif", np.zeros((2, 8, 8), np.uint8))
    assert "not train-labels.tif" in _error(tmp_path)


def test_tiff_page_counts_differ(tmp_path):
    (tmp_path / "em").mkdir()
    tifffile.imwrite(tmp_path / "em" / "train-volume.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    tifffile.imwrite(tmp_path / "em" / "train-labels.tif", np.zeros((2, 8, 8), np.uint8), photometric="minisblack")
    assert "3 pages" in _error(tmp_path)


def test_image_without_label(em):
    root, _, _ = em
    (root / "isbi2012-em" / "train" / "label" / "3.png").unlink()
    message = _error(root)
    assert "3.png has no label" in message


def test_truncated_png(em):
    root, _, _ = em
    path = root / "isbi2012-em" / "train" / "image" / "7.png"
    path.write_bytes(path.read_bytes()[:200])
    message = _error(root)
    assert str(path) in message and "damaged or truncated" in message


def test_label_values_outside_the_classes(em):
    root, _, labels = em
    bad = labels[7].copy()
    bad[0, :4] = 128
    Image.fromarray(bad).save(root / "isbi2012-em" / "train" / "label" / "7.png")
    message = _error(root)
    assert "7.png" in message and "[128]" in message


def test_shape_mismatch(em):
    root, _, labels = em
    Image.fromarray(labels[6][:32]).save(root / "isbi2012-em" / "train" / "label" / "6.png")
    message = _error(root)
    assert "6.png is 32×64" in message and "64×64" in message


def test_empty_dataset(tmp_path):
    for sub in ("image", "label"):
        (tmp_path / "em" / "train" / sub).mkdir(parents=True)
    assert "holds no .png images" in _error(tmp_path)


def test_check_collects_every_problem(em):
    root, _, labels = em
    folder = root / "isbi2012-em"
    (folder / "train" / "label" / "1.png").unlink()
    (folder / "train" / "image" / "2.png").write_bytes(b"not a png")
    Image.fromarray(np.full((SIDE, SIDE), 7, np.uint8)).save(folder / "train" / "label" / "5.png")
    report = check("em", ISBI2012EM, root)
    assert not report.ok and len(report.problems) == 3
    text = "\n".join(report.lines())
    assert "1.png has no label" in text and "2.png cannot be read" in text and "5.png holds values [7]" in text
    assert report.counts["labelled slices"] == N - 1
    # load stops at the first problem it meets and points to the rest
    (folder / "train" / "label" / "3.png").unlink()
    message = _error(root)
    assert "1.png has no label" in message and "(1 more problem: `bench-suite data check em` lists all)" in message


def test_check_passes_on_a_good_folder(em):
    root, _, _ = em
    report = check("em", ISBI2012EM, root)
    assert report.ok, report.problems
    assert report.label_values == {"labels (after 255→1)": [0, 1]}
    assert report.shapes["images"] == {(SIDE, SIDE): N}


# ------------------------------------------------------------------------------------------ real data


@pytest.mark.realdata
def test_real_isbi2012(shared_data):
    bundle = ISBI2012EM().load(shared_data, "paper")
    assert len(bundle.train) + len(bundle.test) == 30 and len(bundle.test) == 5
    assert {s.image.shape for s in bundle.train + bundle.test} == {(1, 512, 512)}
    values = set()
    for sample in bundle.train + bundle.test:
        values |= set(np.unique(sample.target).tolist())
    assert values == {0, 1}
    report = check("em", ISBI2012EM, shared_data)
    assert report.ok, report.problems
    assert report.counts["labelled slices"] == 30
