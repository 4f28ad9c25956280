"""The conformance kit over every registered plugin, and the kit catching the contract bugs it exists for."""

import numpy as np
import pytest
import torch
from PIL import Image

from bench_suite.core.registry import get_registry
from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.testing import ConformanceError, check_dataset, check_neuron, run_checks

REGISTRY = get_registry()


@pytest.mark.parametrize("kind", ["neuron", "norm", "trainer", "model"])
def test_every_registered_plugin_passes_its_kind_checks(kind):
    failures = {}
    for info in REGISTRY.list(kind):
        failed = [r.line() for r in run_checks(kind, info.obj) if not r.passed]
        if failed:
            failures[f"{info.name} ({info.distribution})"] = failed
    assert failures == {}
    assert len(REGISTRY.list(kind)) >= 2


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _write_layout(name, root):
    """A minimal folder in the layout each real-data loader reads (the real sets are not redistributable)."""
    rng = np.random.default_rng(0)
    if name == "drive":
        from bench_suite.datasets.drive_layout import write_drive_layout

        def item(number):
            label = (rng.random((64, 64)) > 0.9).astype(np.uint8)
            rgb = (rng.random((64, 64, 3)) * 200).astype(np.uint8)
            return number, rgb, label, np.ones((64, 64), bool)

        write_drive_layout(root / "DRIVE", [item(21), item(22)], [item(1), item(2)])
        return None
    if name == "em":
        for i in range(6):
            _png(root / "isbi2012-em" / "train" / "image" / f"{i}.png", (rng.random((64, 64)) * 255).astype(np.uint8))
            _png(root / "isbi2012-em" / "train" / "label" / f"{i}.png",
                 np.where(rng.random((64, 64)) > 0.3, 255, 0).astype(np.uint8))
        return "em(n_test=2,patch_size=32)"
    if name == "camseq01":
        folder = root / "CamSeq01"
        folder.mkdir(parents=True)
        palette = np.array([[0, 0, 0], [128, 0, 0], [0, 128, 0]], np.uint8)
        (folder / "label_colors.txt").write_text("0 0 0\tVoid\n128 0 0\tRoad\n0 128 0\tTree\n")
        for i in range(4):
            ids = rng.integers(0, 3, (4, 6)).repeat(16, 0).repeat(16, 1)
            _png(folder / f"0016E5_{7959 + 2 * i:05d}.png", (rng.random((64, 96, 3)) * 255).astype(np.uint8))
            _png(folder / f"0016E5_{7959 + 2 * i:05d}_L.png", palette[ids])
        return "camseq01(height=32,width=48,patch_size=32)"
    if name in ("bsd68", "set12", "cbsd68"):
        color = name == "cbsd68"
        shape = (64, 64, 3) if color else (64, 64)
        test = {"bsd68": "BSD68", "set12": "Set12", "cbsd68": "CBSD68"}[name]
        train = "CBSD432" if color else "Train400"
        for i in range(3):
            _png(root / "denoising" / test / f"{i:02d}.png", (rng.random(shape) * 255).astype(np.uint8))
        for i in range(4):
            _png(root / "denoising" / train / f"t{i}.png", (rng.random(shape) * 255).astype(np.uint8))
        return f"{name}(patch_size=32)"
    if name in ("hippocampus", "adni"):
        import nibabel as nib

        folder = root / ("Task04_Hippocampus" if name == "hippocampus" else "ADNI")
        images, labels = ("imagesTr", "labelsTr") if name == "hippocampus" else ("images", "masks")
        for sub in (images, labels):
            (folder / sub).mkdir(parents=True)
        for i in range(6):
            label = np.zeros((30, 40, 30), np.uint8)
            label[10:20, 15:25, 10:20] = 1
            image = (rng.random(label.shape) + label).astype(np.float32)
            nib.save(nib.Nifti1Image(image, np.eye(4)), folder / images / f"s_{i:03d}.nii.gz")
            nib.save(nib.Nifti1Image(label, np.eye(4)), folder / labels / f"s_{i:03d}.nii.gz")
        return f"{name}(folds=2,box=[16,16,16])"
    raise AssertionError(f"no layout for {name}")


def _dataset(label):
    from bench_suite.core.params import parse_plugin_option
    from bench_suite.experiment.spec import resolve

    resolved = resolve(REGISTRY, parse_plugin_option(f"dataset={label}"))
    return REGISTRY.get("dataset", resolved.name).obj, resolved.params


@pytest.mark.parametrize("name", [info.name for info in REGISTRY.list("dataset")])
def test_every_registered_dataset_passes_the_dataset_checks(name, tmp_path):
    needs_files = hasattr(REGISTRY.get("dataset", name).obj, "candidates")
    label = _write_layout(name, tmp_path) if needs_files else None
    plugin, params = _dataset(label or name)
    results = check_dataset(plugin, params, data_root=tmp_path)
    assert all(r.passed for r in results) and len(results) == 6


@pytest.mark.parametrize("name", ["em", "hippocampus", "set12"])
def test_real_datasets_pass_the_dataset_checks(name, shared_data):
    plugin, params = _dataset(name)
    assert all(r.passed for r in check_dataset(plugin, params, data_root=shared_data))


# -- the kit catches what it exists for ------------------------------------------------------------------------


class HalvingReset(IFNeuron):
    """Written from the README: halves v where it fired instead of subtracting θ."""

    def neuronal_reset(self, out):
        self.v = torch.where(out != 0, self.v / 2, self.v)


class OldBaseHalvingReset(HalvingReset):
    """The no-grad path of the base class before the fix: an in-place subtraction, not the override."""

    def _step_no_grad(self, x):
        if not torch.is_tensor(self.v):
            self.neuronal_charge(x)
        else:
            self.v.add_(x)
        out = self.fire(self.v)
        self.v.sub_(out)
        return out


def test_a_neuron_whose_no_grad_path_bypasses_its_reset_fails_the_kit():
    check_neuron(HalvingReset)  # the override now runs on both paths
    with pytest.raises(ConformanceError, match="same dynamics with and without autograd: .*differ"):
        check_neuron(OldBaseHalvingReset)


def test_the_old_leaky_gate_fails_the_kit(example_package):
    from bench_suite_example.neurons import LIFNeuron

    check_neuron(LIFNeuron)

    class OldLIF(LIFNeuron):
        """The example LIF as it was: Σ input read off v + Σ out, which leak breaks."""

    OldLIF._input_from_membrane = True  # what `subtracts_output = True` promised
    with pytest.raises(ConformanceError, match="ASF accumulated input equals the sum of inputs"):
        check_neuron(OldLIF)


def test_a_neuron_of_the_wrong_shape_fails_the_kit_naming_the_shapes():
    class Flattening(IFNeuron):
        """Returns the wrong shape."""

        def fire(self, v):
            return super().fire(v).flatten(1)

    with pytest.raises(ConformanceError, match=r"returned an output of shape \(2, 60\) for an input of shape"):
        check_neuron(Flattening)


def test_a_dataset_whose_test_tile_the_model_cannot_take_fails_the_kit(tmp_path):
    import dataclasses

    from bench_suite.core.tasks import Tiling
    from bench_suite.datasets.demo import DemoVessels

    odd = object.__new__(Tiling)  # Tiling(40, 40) itself refuses; a plugin may still build one by hand
    object.__setattr__(odd, "size", 40)
    object.__setattr__(odd, "stride", 40)

    class OddTiles(DemoVessels):
        """demo-vessels with 40-pixel test tiles, which a 4-level U-Net cannot take."""

        def load(self, data_root, profile):
            return dataclasses.replace(super().load(data_root, profile), test_tiling=odd)

    with pytest.raises(ConformanceError, match="test tile side 40 is not a multiple of 16"):
        check_dataset(OddTiles, data_root=tmp_path)


def test_a_dataset_with_bad_profile_settings_fails_the_kit(tmp_path):
    from bench_suite.datasets.demo import DemoVessels

    class Misspelt(DemoVessels):
        """demo-vessels asking quick for a setting that does not exist."""

        profile_settings = {"quick": {"ann_schedul": "cosine"}}

    with pytest.raises(ConformanceError, match="no setting 'ann_schedul' — did you mean 'ann_schedule'"):
        check_dataset(Misspelt, data_root=tmp_path)
