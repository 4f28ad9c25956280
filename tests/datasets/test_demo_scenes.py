"""demo-scenes: a generated 32-class road-scene sequence in the CamSeq01 layout, read by the camseq01 reader."""

import numpy as np
import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.datasets.camseq import CamSeq01, CamSeqParams
from bench_suite.datasets.demo_scenes import CLASSES, ID, DemoScenes, SceneParams


@pytest.fixture(scope="module")
def quick_sized(tmp_path_factory):
    """40 frames at quick's 240×320: enough of the drive to see every frequent class."""
    root = tmp_path_factory.mktemp("scenes")
    return root, DemoScenes(SceneParams(n_frames=40)).load(root, "quick")


def test_scenes_are_a_32_class_task_in_the_camseq_layout(quick_sized):
    root, bundle = quick_sized
    assert bundle.name == "demo-scenes" and bundle.task.n_classes == 32 and bundle.task.in_channels == 3
    assert bundle.split["classes"] == [name for name, _ in CLASSES]
    assert bundle.train[0].image.shape == (3, 240, 320) and bundle.train[0].target.shape == (240, 320)
    # the camseq01 reader reads the written folder as it would a download
    again = CamSeq01(CamSeqParams(height=240, width=320)).load(root / "demo-scenes" / "seed0-40-240x320", "paper")
    assert [s.id for s in again.test] == [s.id for s in bundle.test]


def test_the_test_set_is_the_tail_of_the_drive(quick_sized):
    _, bundle = quick_sized
    ids = [s.id for s in bundle.train] + [s.id for s in bundle.test]
    assert ids == sorted(ids) and len(bundle.test) == 8  # 20 % of 40 frames, the last ones


def test_classes_are_as_unbalanced_as_camvid(quick_sized):
    _, bundle = quick_sized
    labels = np.stack([s.target for s in bundle.train + bundle.test])
    share = np.bincount(labels.ravel(), minlength=32) / labels.size
    big = share[[ID["Road"], ID["Sky"], ID["Building"], ID["Sidewalk"]]].sum()
    assert big > 0.6  # a few classes take most pixels
    for rare in ("Column_Pole", "Pedestrian", "SignSymbol", "TrafficLight", "TrafficCone"):
        assert 0 < share[ID[rare]] < 0.02, (rare, share[ID[rare]])
    assert (share > 0).sum() >= 20


def test_consecutive_frames_are_near_duplicates_and_distant_ones_are_not(quick_sized):
    _, bundle = quick_sized
    frames = [s.target for s in bundle.train]
    near = np.mean(frames[0] == frames[1])
    far = np.mean(frames[0] == frames[25])
    assert near > 0.9 and far < near


def test_a_class_is_not_given_away_by_its_colour_alone(quick_sized):
    """Cars and SUVs (and trees and vegetation) overlap in colour: the nearest class colour is often wrong."""
    _, bundle = quick_sized
    sample = bundle.train[3]
    pixels = sample.image.reshape(3, -1).T
    labels = sample.target.ravel()
    car, suv = labels == ID["Car"], labels == ID["SUVPickupTruck"]
    if car.any() and suv.any():
        gap = np.linalg.norm(pixels[car].mean(0) - pixels[suv].mean(0))
        spread = pixels[car].std(0).mean()
        assert gap < 4 * spread


def test_scenes_are_deterministic_and_reused(tmp_path):
    first = DemoScenes(SceneParams(n_frames=4)).load(tmp_path / "a", "smoke")
    second = DemoScenes(SceneParams(n_frames=4)).load(tmp_path / "b", "smoke")
    assert all(np.array_equal(a.image, b.image) and np.array_equal(a.target, b.target)
               for a, b in zip(first.train + first.test, second.train + second.test, strict=True))
    other = DemoScenes(SceneParams(n_frames=4, data_seed=1)).load(tmp_path / "a", "smoke")
    assert not np.array_equal(other.train[0].image, first.train[0].image)
    folder = tmp_path / "a" / "demo-scenes" / "seed0-4-96x128" / "CamSeq01"
    assert len(list(folder.glob("*_L.png"))) == 4 and (folder / "label_colors.txt").is_file()


@pytest.mark.parametrize("kwargs", [{"n_frames": 1}, {"data_seed": -1}, {"height": 40, "width": 64},
                                    {"height": 64}, {"test_fraction": 1.0}])
def test_bad_scene_parameters(kwargs):
    with pytest.raises(ValueError):
        SceneParams(**kwargs)


def test_unknown_profile(tmp_path):
    with pytest.raises(BenchSuiteError, match="profile"):
        DemoScenes().load(tmp_path, "fast")
