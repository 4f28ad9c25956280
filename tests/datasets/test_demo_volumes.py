import numpy as np

from bench_suite.datasets.demo_volumes import DemoHippocampus, DemoHippocampusParams


def test_demo_hippocampus_volumes_are_deterministic_boxed_and_labelled(tmp_path):
    first = DemoHippocampus().load(tmp_path / "a", "smoke")
    second = DemoHippocampus().load(tmp_path / "b", "smoke")
    assert first.task.spatial_dims == 3 and first.task.n_classes == 2
    assert [s.id for s in first.test] == [s.id for s in second.test]
    for a, b in zip(first.train, second.train, strict=True):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.target, b.target)
    sample = first.train[0]
    assert sample.image.shape == (1, 40, 56, 40) and sample.target.shape == (40, 56, 40)
    assert set(np.unique(sample.target)) == {0, 1}
    assert 0.003 < np.mean([s.target.mean() for s in first.train]) < 0.1
    assert not set(first.split["train"]) & set(first.split["test"])
    assert (tmp_path / "a" / "demo-hippocampus").is_dir()  # written as NIfTI, read back by the MSD reader


def test_demo_hippocampus_three_classes_and_other_fold(tmp_path):
    bundle = DemoHippocampus(DemoHippocampusParams(labels="three-class", fold=1)).load(tmp_path, "smoke")
    assert bundle.task.n_classes == 3
    assert set(np.unique(np.concatenate([s.target.ravel() for s in bundle.train]))) == {0, 1, 2}
    fold0 = DemoHippocampus().load(tmp_path, "smoke")
    assert set(bundle.split["test"]) != set(fold0.split["test"])
