import gzip

import nibabel as nib
import numpy as np
import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.params import build_params
from bench_suite.datasets.nifti import (
    ADNI,
    ADNIParams,
    Hippocampus,
    HippocampusParams,
    VolumeSample,
    box_slices,
)
from bench_suite.experiment.data import check

BOX = (32, 40, 32)  # the volumes below are 30–36 × 36–44 × 28–34: some axes cropped, some padded
SMALL = HippocampusParams(box=BOX)
IDS = [1, 3, 4, 6, 7, 8, 11]


def _save(path, array, spacing=(1.0, 1.0, 1.0)):
    affine = np.diag([*spacing, 1.0])
    nib.save(nib.Nifti1Image(array, affine), str(path))


def _volume(index: int):
    """A hippocampus-like pair: an image whose dtype and scale vary, a label {0, 1, 2} blob in the middle."""
    rng = np.random.default_rng(index)
    shape = tuple(int(s) for s in rng.integers((30, 36, 28), (37, 45, 35)))
    grid = np.indices(shape).astype(float)
    centre = np.array(shape)[:, None, None, None] / 2
    radius = np.sqrt((((grid - centre) / np.array([5, 8, 5])[:, None, None, None]) ** 2).sum(0))
    label = np.zeros(shape, np.uint8)
    label[radius < 1] = 1
    label[(radius < 1) & (grid[1] > centre[1])] = 2
    noisy = rng.random(shape) + label
    if index % 2:  # MSD mixes uint8 volumes with float32 ones of any scale
        image = (noisy * 80).astype(np.uint8)
    else:
        image = (noisy * 10.0 ** rng.uniform(2, 6)).astype(np.float32)
    return image, label


@pytest.fixture
def task04(tmp_path):
    folder = tmp_path / "Task04_Hippocampus"
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (folder / sub).mkdir(parents=True)
    truth = {}
    for n in IDS:
        image, label = _volume(n)
        name = f"hippocampus_{n:03d}.nii.gz"
        _save(folder / "imagesTr" / name, image, spacing=(1.0, 1.5, 2.0) if n == 3 else (1.0, 1.0, 1.0))
        _save(folder / "labelsTr" / name, label.astype(np.float32) if n == 4 else label)  # as in MSD: 2 float labels
        truth[name[:-7]] = (image, label)
    _save(folder / "imagesTs" / "hippocampus_002.nii.gz", _volume(2)[0])  # unlabelled: ignored
    (folder / "imagesTr" / "._hippocampus_001.nii.gz").write_bytes(b"\x00\x05\x16\x07")  # macOS fork: ignored
    return tmp_path, truth


def _error(plugin, root, profile="paper") -> str:
    with pytest.raises(BenchSuiteError) as info:
        plugin.load(root, profile)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_volumes_are_boxed_zscored_and_carry_their_spacing(task04):
    root, truth = task04
    bundle = Hippocampus(SMALL).load(root, "paper")
    assert bundle.task.spatial_dims == 3 and bundle.task.n_classes == 2 and bundle.task.in_channels == 1
    samples = {s.id: s for s in bundle.train + bundle.test}
    assert sorted(samples) == sorted(truth)
    for sample_id, sample in samples.items():
        image, label = truth[sample_id]
        assert isinstance(sample, VolumeSample)
        assert sample.image.shape == (1, *BOX) and sample.image.dtype == np.float32
        assert sample.target.shape == BOX and sample.target.dtype == np.int64
        assert set(np.unique(sample.target)) == {0, 1}  # binary: label > 0
        assert sample.target.sum() == np.count_nonzero(label)  # the box keeps the whole structure
        source, destination = box_slices(image.shape, BOX, tuple(s / 2 for s in image.shape))
        real = sample.image[0][destination]
        assert abs(real.mean()) < 1e-4 and abs(real.std() - 1) < 1e-3  # z-score over the real voxels
        padded = np.ones(BOX, bool)
        padded[destination] = False
        assert np.all(sample.image[0][padded] == 0)
    assert samples["hippocampus_003"].spacing == (1.0, 1.5, 2.0)
    assert samples["hippocampus_001"].spacing == (1.0, 1.0, 1.0)


def test_three_class_labels(task04):
    root, _ = task04
    bundle = Hippocampus(HippocampusParams(box=BOX, labels="three-class")).load(root, "paper")
    assert bundle.task.n_classes == 3
    assert set(np.unique(bundle.train[0].target)) == {0, 1, 2}


def test_folds_partition_the_subjects_and_are_stored(task04):
    root, truth = task04
    tests = []
    for fold in range(3):
        bundle = Hippocampus(HippocampusParams(box=BOX, folds=3, fold=fold)).load(root, "paper")
        assert bundle.split["folds"] == Hippocampus(HippocampusParams(box=BOX, folds=3)).folds(sorted(truth))
        assert set(bundle.split["test"]) == set(bundle.split["folds"][fold])
        assert not set(bundle.split["train"]) & set(bundle.split["test"])
        tests.extend(bundle.split["test"])
    assert sorted(tests) == sorted(truth)
    other_seed = Hippocampus(HippocampusParams(box=BOX, folds=3, split_seed=1)).folds(sorted(truth))
    assert other_seed != bundle.split["folds"]


def test_smoke_profile_caps_counts(task04):
    root, _ = task04
    bundle = Hippocampus(HippocampusParams(box=BOX, folds=3)).load(root, "smoke")
    assert len(bundle.train) <= 8 and len(bundle.test) == 2
    assert sum(len(f) for f in bundle.split["folds"]) == len(IDS)  # folds always from every subject


def test_params_are_validated():
    with pytest.raises(BenchSuiteError, match="multiple of 8"):
        build_params(HippocampusParams, {"box": "[40,50,40]"}, "dataset 'hippocampus'")
    with pytest.raises(BenchSuiteError, match="fold must be"):
        build_params(HippocampusParams, {"fold": "5"}, "dataset 'hippocampus'")
    with pytest.raises(BenchSuiteError, match="choices"):
        build_params(HippocampusParams, {"labels": "ternary"}, "dataset 'hippocampus'")
    assert build_params(HippocampusParams, {"box": "[48,64,48]"}, "x").box == (48, 64, 48)


# ------------------------------------------------------------------------------------------ bad input


def test_missing_folder_and_wrong_layout(tmp_path):
    assert str(tmp_path / "Task04_Hippocampus") in _error(Hippocampus(SMALL), tmp_path)
    (tmp_path / "Task04_Hippocampus").mkdir()
    _save(tmp_path / "Task04_Hippocampus" / "hippocampus_001.nii.gz", _volume(1)[0])
    assert "no imagesTr/ and labelsTr/" in _error(Hippocampus(SMALL), tmp_path)
    (tmp_path / "Task04_Hippocampus" / "imagesTr").mkdir()
    assert "has imagesTr/ but no labelsTr/" in _error(Hippocampus(SMALL), tmp_path)


def test_empty_dataset(tmp_path):
    for sub in ("imagesTr", "labelsTr"):
        (tmp_path / "Task04_Hippocampus" / sub).mkdir(parents=True)
    assert "holds no image/label pairs" in _error(Hippocampus(SMALL), tmp_path)


def test_image_without_label(task04):
    root, _ = task04
    (root / "Task04_Hippocampus" / "labelsTr" / "hippocampus_006.nii.gz").unlink()
    message = _error(Hippocampus(SMALL), root)
    assert "hippocampus_006.nii.gz has no label" in message and "labelsTr/hippocampus_006.nii.gz" in message


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("4d", "is 4-D (shape"),
        ("nan", "NaN or infinite"),
        ("label3", "values [3] outside the classes"),
        ("fraction", "fractional values"),
        ("mismatch", "but its image"),
        ("truncated", "cannot be read as NIfTI"),
        ("flat", "one constant value"),
    ],
)
def test_bad_volumes_name_the_file(task04, case, expected):
    root, truth = task04
    folder = root / "Task04_Hippocampus"
    image, label = truth["hippocampus_007"]
    image_path = folder / "imagesTr" / "hippocampus_007.nii.gz"
    label_path = folder / "labelsTr" / "hippocampus_007.nii.gz"
    bad_path = image_path
    if case == "4d":
        _save(image_path, np.stack([image, image], -1))
    elif case == "nan":
        broken = image.astype(np.float32)
        broken[3, 4, 5] = np.nan
        _save(image_path, broken)
    elif case == "label3":
        broken = label.copy()
        broken[0, 0, 0] = 3
        _save(label_path, broken)
        bad_path = label_path
    elif case == "fraction":
        _save(label_path, label.astype(np.float32) * 0.5)
        bad_path = label_path
    elif case == "mismatch":
        _save(label_path, label[:-2])
        bad_path = label_path
    elif case == "truncated":
        data = image_path.read_bytes()
        image_path.write_bytes(data[: len(data) // 2])
    elif case == "flat":
        _save(image_path, np.full(image.shape, 7, np.uint8))
    message = _error(Hippocampus(SMALL), root)
    assert str(bad_path) in message and expected in message


def test_singleton_fourth_axis_is_accepted(task04):
    root, truth = task04
    image, _ = truth["hippocampus_001"]
    _save(root / "Task04_Hippocampus" / "imagesTr" / "hippocampus_001.nii.gz", image[..., None])
    bundle = Hippocampus(SMALL).load(root, "paper")
    assert all(s.image.shape == (1, *BOX) for s in bundle.train + bundle.test)


def test_plain_nii_and_the_images_labels_layout(tmp_path):
    folder = tmp_path / "Task04_Hippocampus"
    for sub in ("images", "labels"):
        (folder / sub).mkdir(parents=True)
    for n in range(5):
        image, label = _volume(n)
        _save(folder / "images" / f"case{n}.nii", image)
        _save(folder / "labels" / f"case{n}.nii", label)
    bundle = Hippocampus(SMALL).load(tmp_path, "paper")
    assert len(bundle.train) == 4 and len(bundle.test) == 1


def test_fewer_subjects_than_folds(tmp_path):
    for sub in ("imagesTr", "labelsTr"):
        (tmp_path / "Task04_Hippocampus" / sub).mkdir(parents=True)
    for n in range(3):
        image, label = _volume(n)
        _save(tmp_path / "Task04_Hippocampus" / "imagesTr" / f"h{n}.nii.gz", image)
        _save(tmp_path / "Task04_Hippocampus" / "labelsTr" / f"h{n}.nii.gz", label)
    assert "fewer than folds=5" in _error(Hippocampus(SMALL), tmp_path)


def test_check_collects_every_problem(task04):
    root, truth = task04
    folder = root / "Task04_Hippocampus"
    (folder / "labelsTr" / "hippocampus_006.nii.gz").unlink()
    broken = truth["hippocampus_008"][0].astype(np.float32)
    broken[0, 0, 0] = np.inf
    _save(folder / "imagesTr" / "hippocampus_008.nii.gz", broken)
    (folder / "labelsTr" / "hippocampus_011.nii.gz").write_bytes(gzip.compress(b"not nifti"))
    report = check("hippocampus", Hippocampus(SMALL), root)
    assert not report.ok and len(report.problems) == 3, report.problems
    assert report.counts["pairs"] == len(IDS) - 1
    text = "\n".join(report.lines())
    assert "hippocampus_006" in text and "hippocampus_008" in text and "hippocampus_011" in text


def test_check_reports_dtypes_spacing_and_folds(task04):
    root, _ = task04
    report = check("hippocampus", Hippocampus(HippocampusParams(box=BOX, folds=3)), root)
    assert report.ok, report.problems
    assert report.label_values == {"labels (stored)": [0, 1, 2]}
    assert report.counts["subjects"] == len(IDS)
    notes = "\n".join(report.notes)
    assert "label dtypes: float32 1, uint8 6" in notes and "image dtypes: float32 3, uint8 4" in notes
    assert "1×1.5×2 mm (1)" in notes


# ------------------------------------------------------------------------------------------ adni


def _adni_pair(index: int, shape=(60, 80, 70), centre=(20, 50, 30)):
    rng = np.random.default_rng(index)
    image = rng.normal(100, 20, shape).astype(np.float32)
    mask = np.zeros(shape, np.uint8)
    c = np.array(centre)
    mask[c[0] - 4 : c[0] + 4, c[1] - 10 : c[1] + 10, c[2] - 6 : c[2] + 6] = 17 if index % 2 else 1
    image[mask > 0] += 80
    return image, mask


def test_adni_pairs_by_suffix_groups_scans_by_subject(tmp_path):
    folder = tmp_path / "ADNI"
    ids = [f"{site:03d}_S_{subject:04d}_{visit}" for site, subject in ((2, 295), (11, 21), (23, 96), (5, 1))
           for visit in ("m00", "m12")]
    for n, pair_id in enumerate(ids):
        sub = folder / pair_id[:10]  # one subfolder per subject: pairs are found at any depth
        sub.mkdir(parents=True, exist_ok=True)
        image, mask = _adni_pair(n)
        _save(sub / f"{pair_id}_image.nii.gz", image)
        _save(sub / f"{pair_id}_mask.nii", mask)
    for fold in range(2):
        bundle = ADNI(ADNIParams(folds=2, fold=fold)).load(tmp_path, "paper")
        subjects = {i[:10] for i in bundle.split["test"]}
        assert not subjects & {i[:10] for i in bundle.split["train"]}  # both visits on one side
        assert len(bundle.test) == 4
    sample = bundle.test[0]
    assert sample.image.shape == (1, 24, 56, 48) and set(np.unique(sample.target)) == {0, 1}
    # the box is centred on the structure's bounding box: 8×20×12 voxels in the middle of 24×56×48
    where = np.nonzero(sample.target)
    assert [int(a.min()) for a in where] == [8, 18, 18] and [int(a.max()) for a in where] == [15, 37, 29]


def test_adni_images_masks_layout_and_empty_mask(tmp_path):
    folder = tmp_path / "ADNI"
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
    for n in range(4):
        image, mask = _adni_pair(n, shape=(20, 50, 40), centre=(10, 25, 20))  # smaller than the box: padded
        _save(folder / "images" / f"s{n}.nii.gz", image)
        _save(folder / "masks" / f"s{n}.nii.gz", mask)
    bundle = ADNI(ADNIParams(folds=2)).load(tmp_path, "paper")
    assert len(bundle.train) == 2 and bundle.train[0].image.shape == (1, 24, 56, 48)
    _save(folder / "masks" / "s0.nii.gz", np.zeros((20, 50, 40), np.uint8))
    message = _error(ADNI(ADNIParams(folds=2)), tmp_path)
    assert "s0.nii.gz is empty" in message


def test_adni_wrong_layout_and_unpaired(tmp_path):
    (tmp_path / "ADNI").mkdir()
    _save(tmp_path / "ADNI" / "brain.nii.gz", np.zeros((4, 4, 4), np.float32))
    assert "no <id>_image/<id>_mask" in _error(ADNI(), tmp_path)
    _save(tmp_path / "ADNI" / "x_image.nii.gz", np.zeros((4, 4, 4), np.float32))
    message = _error(ADNI(), tmp_path)
    assert "x_image.nii.gz has no mask" in message and "x_mask.nii.gz" in message


# ------------------------------------------------------------------------------------------ real data


@pytest.mark.realdata
def test_real_task04_hippocampus(shared_data):
    bundle = Hippocampus().load(shared_data, "smoke")
    assert len(bundle.train) == 8 and len(bundle.test) == 2
    assert sum(len(f) for f in bundle.split["folds"]) == 260
    for sample in bundle.train + bundle.test:
        assert sample.image.shape == (1, 40, 56, 40) and np.isfinite(sample.image).all()
        assert set(np.unique(sample.target)) == {0, 1} and sample.spacing == (1.0, 1.0, 1.0)
    report = check("hippocampus", Hippocampus, shared_data)
    assert report.ok, report.problems
    assert report.counts["pairs"] == 260 and report.counts["test (fold)"] == 52
    assert report.label_values == {"labels (stored)": [0, 1, 2]}
