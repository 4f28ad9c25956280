"""Suites: every SPEC suite is shipped, loads, validates and expands; errors name the file and the key;
third-party suite folders come in through the entry-point group; a stored suite resumes as it was."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.params import label_matches
from bench_suite.core.profiles import PROFILES, resolve_profile
from bench_suite.core.registry import get_registry
from bench_suite.experiment import suite as suites_module
from bench_suite.experiment.suite import Suite, list_suites, load_suite, parse_suite

SPEC_SUITES = [
    "spiking-unet/table1", "spiking-unet/table2", "spiking-unet/table3", "spiking-unet/table4",
    "spiking-unet/table5", "spiking-unet/table6", "spiking-unet/table7",
    "three-stage/table1", "three-stage/table2", "three-stage/table3", "three-stage/table5", "three-stage/fig6a",
]
# the suites whose smoke profile must stay runnable in about a minute on 2 CPU cores
FAST_SMOKE = ["spiking-unet/table2", "spiking-unet/table5", "spiking-unet/table6", "spiking-unet/table7"]

MINIMAL = """
description = "a tiny suite"
[[grid]]
plugins = ["trainer=asf", "neuron=mt"]
datasets = ["demo-vessels"]
time_steps = [2]
[table]
rows = ["neuron"]
metrics = ["f1"]
"""


def test_every_spec_suite_is_listed_with_its_distribution():
    infos = {info.name: info for info in list_suites()}
    for name in SPEC_SUITES:
        assert name in infos, name
        assert infos[name].distribution == "bench-suite"
        assert infos[name].description
        assert infos[name].error is None


@pytest.mark.parametrize("name", SPEC_SUITES)
def test_suite_loads_and_expands_for_every_profile(name):
    suite = load_suite(name)
    assert suite.reproduces.get("paper") and suite.reproduces.get("table")
    registry = get_registry()
    for profile in PROFILES:
        specs = suite.run_specs(profile)
        assert specs and all(spec.profile == profile for spec in specs)
        # the registry checks every plugin name and parameter of every grid
        cells = suite.cells(profile, registry)
        assert cells and len({cell.key for cell in cells}) == len(cells)
    for entry in suite.published:
        assert entry.metric in suite.table.metrics


def test_smoke_profiles_use_demo_data():
    registry = get_registry()
    for name in SPEC_SUITES:
        for cell in load_suite(name).cells("smoke", registry):
            assert cell.dataset.name.startswith("demo-"), (name, cell.title())


@pytest.mark.parametrize("name", FAST_SMOKE)
def test_fast_smoke_profiles_stay_tiny(name):
    suite = load_suite(name)
    cells = suite.cells("smoke", get_registry())
    profile = resolve_profile("smoke", suite.overrides("smoke"))
    assert len(cells) <= 8
    assert max(cell.time_steps for cell in cells) <= 6
    assert profile.asf_epochs == 1 and profile.dt_epochs == 1 and profile.calibration_samples <= 8
    assert profile.ann_epochs == PROFILES["smoke"].ann_epochs  # the smoke ANN learns (see core/profiles.py)


def test_table2_published_values_match_the_spec():
    entries = load_suite("spiking-unet/table2").published
    published = {(e.dataset, tuple(sorted(e.row.items())), e.metric): e.value for e in entries}
    assert published[("drive", (("trainer", "ann"),), "f1")] == 0.806
    assert published[("drive", (("neuron", "mt"), ("trainer", "asf")), "f1")] == 0.794
    assert published[("drive", (("neuron", "rs"), ("trainer", "asf")), "f1")] == 0.771
    assert published[("drive", (("neuron", "ml"), ("trainer", "asf")), "f1")] == 0.740
    assert published[("em", (("trainer", "ann"),), "f1")] == 0.948
    assert published[("em", (("neuron", "mt"), ("trainer", "asf")), "f1")] == 0.947
    assert published[("camseq01", (("trainer", "ann"),), "miou")] == 0.620
    assert published[("camseq01", (("neuron", "mt"), ("trainer", "asf")), "miou")] == 0.651
    assert len(published) == 8
    table3 = {(e.dataset, e.row.get("trainer"), e.value) for e in load_suite("spiking-unet/table3").published}
    assert table3 == {("bsd68(sigma=25)", "ann", 28.61), ("bsd68(sigma=25)", "asf", 28.72),
                      ("cbsd68(sigma=25)", "ann", 30.59), ("cbsd68(sigma=25)", "asf", 30.57)}


def test_grids_are_a_union_and_profiles_replace_per_kind():
    suite = load_suite("spiking-unet/table2")
    paper = suite.run_specs("paper")
    assert [spec.choices["dataset"][0].name for spec in paper] == ["drive", "em", "camseq01"]
    assert [spec.time_steps for spec in paper] == [(10,), (50,), (20,)]
    smoke = suite.run_specs("smoke")
    assert {spec.choices["dataset"][0].name for spec in smoke} == {"demo-vessels"}
    assert smoke[0].overrides == {"calibration_samples": "8", "asf_epochs": "1", "dt_epochs": "1"}
    # three grids collapse into one set of cells on demo data: ANN + 3 neurons × (DT, FT)
    assert len(suite.cells("smoke", get_registry())) == 7
    three = load_suite("three-stage/table1")
    spec = three.run_specs("smoke")[0]
    assert [c.name for c in spec.choices["model"]] == ["unet2d"]  # replaced by the smoke profile
    assert [c.name for c in spec.choices["neuron"]] == ["if"]  # kept from the grid
    folds = three.run_specs("paper")[0].choices["dataset"]
    assert [dict(c.params)["fold"] for c in folds] == ["0", "1", "2", "3", "4"]


def test_seeds_and_data_root_options():
    suite = load_suite("spiking-unet/table7")
    specs = suite.run_specs("quick", data_root="/data", seeds=[3, 4])
    assert all(spec.seeds == (3, 4) and spec.data_root == "/data" for spec in specs)
    assert {cell.seed for cell in suite.cells("quick", get_registry(), seeds=[3, 4])} == {3, 4}


def test_spec_dict_round_trip_survives_a_key_sorting_store():
    suite = load_suite("spiking-unet/table2")
    stored = json.loads(json.dumps(suite.spec_dict("smoke", seeds=[0]), sort_keys=True))
    again = Suite.from_stored(stored)
    registry = get_registry()
    assert [c.key for c in again.cells("smoke", registry, seeds=stored["seeds"])] == [
        c.key for c in suite.cells("smoke", registry, seeds=[0])]
    assert list(again.table.labels) == list(suite.table.labels)  # label order is the row order
    assert stored["profile"] == "smoke" and len(stored["specs"]) == 3
    _, cells, spec = Suite.plan_stored(stored, registry)
    assert [c.key for c in cells] == [c.key for c in suite.cells("smoke", registry)]
    assert spec.profile == "smoke" and spec.overrides == suite.overrides("smoke")
    with pytest.raises(BenchSuiteError, match="not started from a suite"):
        Suite.from_stored({"choices": {}})


def test_unknown_suite_suggests_the_closest_name():
    with pytest.raises(BenchSuiteError, match="did you mean 'spiking-unet/table2'"):
        load_suite("spiking-unet/tabel2")


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(BenchSuiteError, match="unknown profile 'quik'"):
        load_suite("spiking-unet/table2").run_specs("quik")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.replace("time_steps = [2]", "time_step = [2]"),
         r"grid\[0\]\.time_step: unknown key — did you mean 'time_steps'"),
        (lambda t: t.replace('"neuron=mt"', '"neuronn=mt"'), r"grid\[0\]\.plugins\[1\]: unknown kind 'neuronn'"),
        (lambda t: t.replace("time_steps = [2]", "time_steps = [0]"), r"grid\[0\]\.time_steps"),
        (lambda t: t.replace('metrics = ["f1"]', 'metrics = ["f1"]\nbaseline = "mt"'), r"table\.baseline"),
        (lambda t: t.replace('rows = ["neuron"]', 'rows = ["neurons"]'), r"did you mean 'neuron'"),
        (lambda t: t + '[profiles.smoke]\noverrides = { ann_epoch = 1 }\n', r"profiles\.smoke\.overrides"),
        (lambda t: t + '[profiles.fast]\n', r"unknown profile 'fast'"),
        (lambda t: t + '[[published]]\nmetric = "miou"\nvalue = 0.5\n', r"published\[0\]\.metric"),
        (lambda t: t.replace('description = "a tiny suite"', ""), "description: missing"),
    ],
)
def test_validation_errors_name_the_file_and_the_key(tmp_path, edit, match):
    path = tmp_path / "broken.toml"
    path.write_text(edit(MINIMAL))
    with pytest.raises(BenchSuiteError, match=match) as info:
        load_suite(str(path))
    assert str(path) in str(info.value)


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("description = \n")
    with pytest.raises(BenchSuiteError, match="is not valid TOML"):
        load_suite(str(path))


def test_unknown_plugin_names_the_grid():
    suite = parse_suite("x", __import__("tomllib").loads(MINIMAL.replace("neuron=mt", "neuron=mtt")), "", "x.toml")
    with pytest.raises(BenchSuiteError, match=r"grid '0'.*unknown neuron 'mtt'"):
        suite.cells("smoke", get_registry())


def test_label_matching_is_by_name_and_parameter_subset():
    assert label_matches("three-stage(loss=bce)", "three-stage(loss=bce,conversion_steps=10)")
    assert not label_matches("three-stage(loss=bce)", "three-stage(loss=bce-dice)")
    assert label_matches("mt", "mt(thresholds=[2,1])")
    assert label_matches("mt(thresholds=[2,1])", "mt(thresholds=[2, 1])")
    assert not label_matches("mt", "-") and label_matches("-", "-")


class _Dist:
    def __init__(self, name):
        self.metadata = {"Name": name}
        self.version = "1.0"


class _EntryPoint:
    def __init__(self, name, dist, target):
        self.name, self.dist, self._target = name, _Dist(dist), target

    def load(self):
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


def _fake_entry_points(monkeypatch, points):
    real = importlib.metadata.entry_points

    def entry_points(**kwargs):
        if kwargs.get("group") == suites_module.ENTRY_POINT_GROUP:
            return points
        return real(**kwargs)

    monkeypatch.setattr(suites_module.importlib.metadata, "entry_points", entry_points)


def test_third_party_suites_come_from_an_entry_point_folder(tmp_path, monkeypatch):
    folder = tmp_path / "suites" / "mylab"
    folder.mkdir(parents=True)
    (folder / "sweep.toml").write_text(MINIMAL)
    _fake_entry_points(monkeypatch, [
        _EntryPoint("mylab", "mylab-suites", tmp_path / "suites"),
        _EntryPoint("broken", "broken-suites", ImportError("no module named broken")),
    ])
    infos = {(i.name, i.distribution): i for i in list_suites()}
    assert infos[("mylab/sweep", "mylab-suites")].description == "a tiny suite"
    assert "no module named broken" in infos[("broken", "broken-suites")].error
    assert infos[("spiking-unet/table2", "bench-suite")].error is None  # nothing else breaks
    assert load_suite("mylab/sweep").distribution == "mylab-suites"


def test_two_suites_with_one_name_is_an_error_naming_both(tmp_path, monkeypatch):
    folder = tmp_path / "spiking-unet"
    folder.mkdir()
    (folder / "table2.toml").write_text(MINIMAL)
    _fake_entry_points(monkeypatch, [_EntryPoint("copy", "copycat", Path(tmp_path))])
    with pytest.raises(BenchSuiteError, match="'bench-suite' and 'copycat'"):
        load_suite("spiking-unet/table2")
    clash = [i for i in list_suites() if i.name == "spiking-unet/table2"]
    assert len(clash) == 2 and all(i.error for i in clash)


def test_only_grids_keeps_the_named_blocks_and_is_stored_for_resume():
    suite = load_suite("spiking-unet/table7").only_grids(["em"])
    specs = suite.run_specs("quick")
    assert [c.name for spec in specs for c in spec.choices["dataset"]] == ["em"]
    stored = suite.spec_dict("quick")
    assert stored["grids"] == ["em"]
    resumed, cells, _ = Suite.plan_stored(stored)
    assert {c.dataset.name for c in cells} == {"em"} and [g.name for g in resumed.grids] == ["em"]


def test_only_grids_names_the_grids_on_a_typo():
    with pytest.raises(BenchSuiteError, match=r"no grid 'emm' — did you mean 'em'\?; its grids: drive, em, camseq01"):
        load_suite("spiking-unet/table7").only_grids(["emm"])
