"""A dataset's profile_settings reach its cells (before --set), and a bad one stops the run up front."""

import json
import sqlite3

from typer.testing import CliRunner

from bench_suite.cli.app import app
from bench_suite.core.profiles import PROFILES
from bench_suite.core.registry import get_registry
from bench_suite.datasets.demo import DemoVessels


class TwoEpochVessels(DemoVessels):
    """demo-vessels whose smoke ANN trains 2 epochs."""

    profile_settings = {"smoke": {"ann_epochs": 2}}


class BadVessels(DemoVessels):
    """demo-vessels with an invalid smoke setting."""

    profile_settings = {"smoke": {"ann_lr": -1}}


def invoke(tmp_path, dataset, *extra):
    args = ["run", "--dataset", dataset, "--plugin", "trainer=ann", "--profile", "smoke",
            "--set", "patches_per_image=4", *extra,
            "--results", str(tmp_path / "r"), "--data-root", str(tmp_path / "d")]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def ann_epochs_logged(tmp_path) -> int:
    with sqlite3.connect(tmp_path / "r" / "bench-suite.sqlite") as db:
        return db.execute("SELECT COUNT(DISTINCT epoch) FROM curves WHERE stage = 'ann'").fetchone()[0]


def test_dataset_settings_reach_the_cell_and_set_wins(tmp_path):
    registry = get_registry()
    registry.register("dataset", "two-epoch-test", TwoEpochVessels, "test-package")
    try:
        code, output = invoke(tmp_path / "a", "two-epoch-test")
        assert code == 0, output
        assert ann_epochs_logged(tmp_path / "a") == 2 != PROFILES["smoke"].ann_epochs
        with sqlite3.connect(tmp_path / "a" / "r" / "bench-suite.sqlite") as db:
            info = json.loads(db.execute("SELECT info FROM cells").fetchone()[0])
        assert info["dataset_profile_settings"] == {"ann_epochs": 2}  # recorded with the cell
        code, output = invoke(tmp_path / "b", "two-epoch-test", "--set", "ann_epochs=1")
        assert code == 0, output
        assert ann_epochs_logged(tmp_path / "b") == 1
    finally:
        registry._plugins["dataset"].pop("two-epoch-test")


def test_bad_dataset_settings_stop_the_run_before_any_cell(tmp_path):
    registry = get_registry()
    registry.register("dataset", "bad-settings-test", BadVessels, "test-package")
    try:
        code, output = invoke(tmp_path, "bad-settings-test")
    finally:
        registry._plugins["dataset"].pop("bad-settings-test")
    assert code == 2  # as for any other bad option, before the run exists
    assert "profile_settings of dataset 'bad-settings-test', smoke: --set ann_lr=-1: the value must be positive" \
        in " ".join(output.split())
    assert "Traceback" not in output and not (tmp_path / "r" / "bench-suite.sqlite").exists()


def test_bad_dataset_settings_stop_a_suite_run_before_any_cell(tmp_path):
    suite = tmp_path / "bad.toml"
    suite.write_text('description = "x"\n[[grid]]\nplugins = ["trainer=ann"]\ndatasets = ["bad-settings-test"]\n'
                     'time_steps = [2]\n[table]\nrows = ["trainer"]\nmetrics = ["f1"]\n')
    registry = get_registry()
    registry.register("dataset", "bad-settings-test", BadVessels, "test-package")
    try:
        result = CliRunner().invoke(app, ["run", "--suite", str(suite), "--profile", "smoke",
                                          "--results", str(tmp_path / "r"), "--data-root", str(tmp_path / "d")])
    finally:
        registry._plugins["dataset"].pop("bad-settings-test")
    assert result.exit_code == 2, result.output
    assert "profile_settings of dataset 'bad-settings-test', smoke" in " ".join(result.output.split())
    assert not (tmp_path / "r" / "bench-suite.sqlite").exists()


def test_multi_class_scene_datasets_use_one_cycle_and_a_higher_asf_rate_at_quick():
    from bench_suite.experiment.cells import cell_profile

    class Named:
        def __init__(self, name):
            self.name = name

    for name in ("camseq01", "demo-scenes"):
        cell = type("CellStub", (), {"dataset": Named(name)})()
        quick = cell_profile(cell, "quick", {}, 2)
        assert (quick.ann_schedule, quick.asf_lr) == ("onecycle", 5e-4)
        assert cell_profile(cell, "paper", {}, 2) == PROFILES["paper"]  # the reference stays
    vessels = type("CellStub", (), {"dataset": Named("demo-vessels")})()
    assert cell_profile(vessels, "quick", {}, 2) == PROFILES["quick"]
