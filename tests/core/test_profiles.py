"""Profiles: volumes get their own CPU-sized settings, --set still wins, and the spiking-training cap holds."""

import re

import pytest

from bench_suite.core.contracts import TrainerContext
from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.profiles import PROFILES, VOLUME_SETTINGS, resolve_profile
from bench_suite.snn.training import train_epochs


def test_volume_settings_apply_only_to_3d_and_user_overrides_win():
    flat = resolve_profile("quick")
    volume = resolve_profile("quick", spatial_dims=3)
    assert flat == PROFILES["quick"]
    assert volume.width == VOLUME_SETTINGS["quick"]["width"] != flat.width
    assert volume.batch_size == VOLUME_SETTINGS["quick"]["batch_size"] < flat.batch_size
    assert volume.ann_epochs == flat.ann_epochs
    assert resolve_profile("quick", {"width": "12"}, spatial_dims=3).width == 12
    assert resolve_profile("paper", spatial_dims=3) == PROFILES["paper"]


def test_bad_max_train_batches_is_one_sentence():
    with pytest.raises(BenchSuiteError, match="max_train_batches=-1: give a positive cap, or 0 for none"):
        resolve_profile("quick", {"max_train_batches": "-1"})


@pytest.mark.parametrize("key", ["max_patches", "max_train_batches", "dt_max_batches", "dt_grad_clip"])
def test_zero_cap_means_no_cap_as_documented(key):
    assert PROFILES["quick"].max_patches == 4096
    assert getattr(resolve_profile("quick", {key: "0"}), key) == 0


@pytest.mark.parametrize("key", ["width", "ann_epochs", "asf_lr", "batch_size"])
def test_other_settings_refuse_zero(key):
    with pytest.raises(BenchSuiteError, match=f"--set {key}=0: the value must be positive"):
        resolve_profile("quick", {key: "0"})


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
def test_non_finite_settings_are_refused(raw):
    with pytest.raises(BenchSuiteError, match=f"--set dt_grad_clip={raw}: give a finite number"):
        resolve_profile("quick", {"dt_grad_clip": raw})


def test_renamed_setting_names_its_new_name():
    with pytest.raises(BenchSuiteError, match="now called asf_epochs; use --set asf_epochs=3"):
        resolve_profile("quick", {"finetune_epochs": "3"})


def test_ann_optimizer_is_a_profile_field_with_fixed_choices():
    assert PROFILES["paper"].ann_optimizer == "rmsprop" and PROFILES["paper"].ann_optimizer_denoising == "adam"
    assert PROFILES["quick"].ann_optimizer == "adam"
    assert resolve_profile("quick", {"ann_optimizer": "rmsprop"}).ann_optimizer == "rmsprop"
    with pytest.raises(BenchSuiteError, match="choose one of adam, rmsprop"):
        resolve_profile("quick", {"ann_optimizer": "sgd"})


def test_each_trainer_reads_its_own_profile_fields():
    """three-stage used to read dt_lr and the ASF epochs: each method now has its own settings."""
    import inspect

    from bench_suite.trainers import asf, direct, three_stage

    assert "asf_lr" in inspect.getsource(asf) and "asf_epochs" in inspect.getsource(asf)
    source = inspect.getsource(three_stage.ThreeStageTrainer.run)
    assert "three_stage_lr" in source and "three_stage_epochs" in source
    assert "dt_lr" not in source and "asf_epochs" not in source
    assert "dt_lr" in inspect.getsource(direct.DirectTrainer.run)


class FakePatches:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def batches(self, epoch):
        for i in range(self.n):
            yield [epoch], [i]


@pytest.mark.parametrize(("cap", "expected"), [(0, 5), (3, 3), (9, 5)])
def test_train_epochs_stops_each_epoch_at_the_cap(cap, expected):
    ctx = TrainerContext(bundle=None, profile=None, model_plugin=None, get_ann=None, make_neuron=None,
                         norm=None, calibration_cache=None)
    seen = []
    train_epochs(ctx, FakePatches(5), 2, "s", "d", lambda x, y: seen.append((x, y)) or 1.0, 0, max_batches=cap)
    assert seen == [([e], [i]) for e in range(2) for i in range(expected)]
    assert [c[1] for c in ctx.curves] == [1, 2]


def test_ann_checkpoint_key_follows_only_the_settings_that_shape_the_ann(tmp_path):
    import dataclasses
    from types import SimpleNamespace

    from bench_suite.experiment.cells import ann_key

    plugin = SimpleNamespace(label="x", params_dict=dict)
    cell = SimpleNamespace(dataset=plugin, model=plugin, seed=0)
    from bench_suite.core.tasks import Task

    bundle = SimpleNamespace(split={"train": ["a"], "test": ["b"]}, task=Task("segmentation", 1, 2))
    quick = PROFILES["quick"]
    key = ann_key(cell, bundle, quick)
    unrelated = dataclasses.replace(quick, asf_epochs=7, three_stage_epochs=5, max_train_batches=3)
    assert ann_key(cell, bundle, unrelated) == key
    assert ann_key(cell, bundle, dataclasses.replace(quick, ann_epochs=7)) != key
    assert ann_key(cell, bundle, dataclasses.replace(quick, ann_optimizer="rmsprop")) != key
    assert ann_key(cell, bundle, quick, loss="dice") != key
    assert ann_key(cell, bundle, quick, loss="ce") != key


def test_dataset_profile_settings_apply_to_their_profile_only_and_set_still_wins():
    settings = {"quick": {"ann_schedule": "onecycle", "ann_epochs": 20}}
    adjusted = resolve_profile("quick", None, 2, settings)
    assert (adjusted.ann_schedule, adjusted.ann_epochs) == ("onecycle", 20)
    assert resolve_profile("smoke", None, 2, settings) == PROFILES["smoke"]
    assert resolve_profile("quick", {"ann_schedule": "constant"}, 2, settings).ann_schedule == "constant"
    volume = resolve_profile("quick", None, 3, settings)  # the volume sizes, then the dataset's settings
    assert volume.width == VOLUME_SETTINGS["quick"]["width"] and volume.ann_schedule == "onecycle"


@pytest.mark.parametrize("settings, message", [
    ({"fast": {"ann_epochs": 1}}, ": unknown profile 'fast'"),
    ({"quick": {"ann_epoch": 1}}, ", quick: no setting 'ann_epoch' — did you mean 'ann_epochs'?"),
    ({"quick": {"ann_schedule": "linear"}}, ", quick: --set ann_schedule=linear: choose one of"),
    ({"quick": {"ann_lr": 0}}, ", quick: --set ann_lr=0: the value must be positive"),
])
def test_bad_dataset_profile_settings_are_one_sentence_naming_the_dataset(settings, message):
    from bench_suite.core.profiles import check_dataset_settings

    with pytest.raises(BenchSuiteError, match=re.escape("profile_settings of dataset 'x'" + message)):
        check_dataset_settings(settings, "dataset 'x'")
