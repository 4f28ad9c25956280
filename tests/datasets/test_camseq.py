import numpy as np
import pytest
from PIL import Image

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.params import build_params
from bench_suite.datasets.camseq import CamSeq01, CamSeqParams, colors_to_ids, read_label_colors
from bench_suite.experiment.data import check

H, W = 64, 96  # frames; resized to 32×48 by the tests' Params
N_FRAMES, N_CLASSES = 6, 32
SMALL = CamSeqParams(height=32, width=48, patch_size=32)


def _palette() -> np.ndarray:
    rng = np.random.default_rng(1)
    colors = rng.choice(256**3, N_CLASSES, replace=False)
    return np.stack([colors >> 16, (colors >> 8) & 255, colors & 255], 1).astype(np.uint8)


PALETTE = _palette()


def _frame(index: int):
    """A frame and its class ids: 4×6 blocks of 16×16 pixels, one class per block."""
    rng = np.random.default_rng(index)
    blocks = rng.integers(0, N_CLASSES, (H // 16, W // 16))
    ids = np.kron(blocks, np.ones((16, 16), dtype=np.int64))
    rgb = np.clip(PALETTE[ids].astype(int) + rng.integers(-20, 20, (H, W, 3)), 0, 255).astype(np.uint8)
    return rgb, ids


@pytest.fixture
def camseq(tmp_path):
    folder = tmp_path / "CamSeq01"
    folder.mkdir()
    # The real file separates the colour and the name by a tab; some copies use two.
    lines = [f"{r} {g} {b}\t{'' if i % 2 else chr(9)}Class{i}" for i, (r, g, b) in enumerate(PALETTE)]
    (folder / "label_colors.txt").write_text("\n".join(lines) + "\n")
    truth = {}
    for i in range(N_FRAMES):
        stem = f"0016E5_{7959 + 2 * i:05d}"
        rgb, ids = _frame(i)
        Image.fromarray(rgb).save(folder / f"{stem}.png")
        Image.fromarray(PALETTE[ids]).save(folder / f"{stem}_L.png")
        truth[stem] = ids
    return tmp_path, truth


def _error(root, params=SMALL) -> str:
    with pytest.raises(BenchSuiteError) as info:
        CamSeq01(params).load(root, "paper")
    assert "\n" not in str(info.value)
    return str(info.value)


def test_colours_become_class_ids_and_are_resized_nearest(camseq):
    root, truth = camseq
    bundle = CamSeq01(SMALL).load(root, "paper")
    assert bundle.task.n_classes == N_CLASSES and bundle.task.in_channels == 3
    assert len(bundle.split["classes"]) == N_CLASSES and bundle.split["classes"][3] == "Class3"
    assert bundle.split["size"] == [32, 48] and bundle.patch_size == 32
    for sample in bundle.train + bundle.test:
        assert sample.image.shape == (3, 32, 48) and sample.image.dtype == np.float32
        assert 0.0 <= sample.image.min() and sample.image.max() <= 1.0
        assert sample.target.shape == (32, 48) and sample.target.dtype == np.int64
        # 16-pixel blocks become 8-pixel blocks: the centre of each keeps its class
        assert np.array_equal(sample.target[4::8, 4::8], truth[sample.id][8::16, 8::16])


def test_tail_split_takes_the_end_of_the_sequence(camseq):
    root, truth = camseq
    bundle = CamSeq01(SMALL).load(root, "paper")
    stems = sorted(truth)
    assert [s.id for s in bundle.test] == stems[-2:]  # ceil(0.2 * 6) = 2
    assert [s.id for s in bundle.train] == stems[:-2]
    random = CamSeq01(CamSeqParams(height=32, width=48, patch_size=32, split="random", split_seed=3))
    again = random.load(root, "paper")
    assert again.split == random.load(root, "paper").split
    assert "random" in again.split["rule"] and len(again.test) == 2


def test_smoke_profile_size_and_caps(camseq):
    root, _ = camseq
    bundle = CamSeq01().load(root, "smoke")
    assert len(bundle.train) == 4 and len(bundle.test) == 2
    assert bundle.train[0].image.shape == (3, 96, 128)


def test_vectorised_lookup_matches_a_loop():
    rgb, ids = _frame(0)
    exact = PALETTE[ids]
    assert np.array_equal(colors_to_ids(exact, PALETTE, "x.png"), ids)


def test_params_are_validated():
    with pytest.raises(BenchSuiteError, match="multiple"):
        build_params(CamSeqParams, {"height": "100", "width": "128"}, "dataset 'camseq01'")
    with pytest.raises(BenchSuiteError, match="both"):
        build_params(CamSeqParams, {"height": "96"}, "dataset 'camseq01'")
    with pytest.raises(BenchSuiteError, match="choices"):
        build_params(CamSeqParams, {"split": "shuffle"}, "dataset 'camseq01'")


# ------------------------------------------------------------------------------------------ bad input


def test_unknown_colour_names_the_file_and_the_colour(camseq):
    root, truth = camseq
    stem = sorted(truth)[1]
    label = PALETTE[truth[stem]].copy()
    label[:3, :3] = (1, 2, 3)
    if (PALETTE == (1, 2, 3)).all(1).any():
        pytest.skip("random palette happens to contain the test colour")
    Image.fromarray(label).save(root / "CamSeq01" / f"{stem}_L.png")
    message = _error(root)
    assert f"{stem}_L.png" in message and "(1, 2, 3)" in message and "9 pixels" in message


def test_missing_folder(tmp_path):
    message = _error(tmp_path)
    assert str(tmp_path / "CamSeq01") in message and "CamSeq01" in message


def test_missing_colour_list_and_bad_line(camseq):
    root, _ = camseq
    colours = root / "CamSeq01" / "label_colors.txt"
    text = colours.read_text()
    colours.write_text(text.replace("Class5", "").replace(f"{PALETTE[5][0]} ", "x ", 1))
    assert "line 6" in _error(root)
    colours.write_text(text + f"{PALETTE[0][0]} {PALETTE[0][1]} {PALETTE[0][2]}\tAgain\n")
    assert "repeats the colour" in _error(root)
    colours.unlink()
    assert "no label_colors.txt" in _error(root)
    with pytest.raises(BenchSuiteError, match="line 1"):
        bad = root / "bad.txt"
        bad.write_text("64 128\tAnimal\n")
        read_label_colors(bad)


def test_frame_without_label_and_truncated_frame(camseq):
    root, truth = camseq
    stems = sorted(truth)
    (root / "CamSeq01" / f"{stems[0]}_L.png").unlink()
    assert "has no label" in _error(root)
    Image.fromarray(PALETTE[truth[stems[0]]]).save(root / "CamSeq01" / f"{stems[0]}_L.png")
    frame = root / "CamSeq01" / f"{stems[2]}.png"
    frame.write_bytes(frame.read_bytes()[:300])
    message = _error(root)
    assert str(frame) in message and "truncated" in message


def test_shape_mismatch_and_gray_frame(camseq):
    root, truth = camseq
    stems = sorted(truth)
    Image.fromarray(PALETTE[truth[stems[0]]][:32]).save(root / "CamSeq01" / f"{stems[0]}_L.png")
    assert "is 32×96 but its frame" in _error(root)
    Image.fromarray(np.zeros((H, W), np.uint8)).save(root / "CamSeq01" / f"{stems[3]}.png")
    report = check("camseq01", CamSeq01(SMALL), root)
    assert len(report.problems) == 2 and any("gray image" in p for p in report.problems)


def test_empty_folder(tmp_path):
    (tmp_path / "CamSeq01").mkdir()
    assert "holds no .png frames" in _error(tmp_path)


def test_check_reports_counts_and_class_ids(camseq):
    root, _ = camseq
    report = check("camseq01", CamSeq01, root)
    assert report.ok, report.problems
    assert report.counts == {"frames": 6, "classes": 32, "train": 4, "test": 2}
    assert set(report.label_values["labels (class ids)"]) <= set(range(N_CLASSES))
    assert report.shapes["frames"] == {(H, W, 3): N_FRAMES}
