"""Mirroring stored runs into MLflow (bench_suite.results.tracking), read back with MlflowClient from a local
``sqlite:///`` tracking store: one parent per run, one child per cell, curves as metric steps, artifacts."""

import importlib.util
import json
import os

import pytest
from typer.testing import CliRunner

from bench_suite.core.errors import BenchSuiteError
from bench_suite.results.store import ResultStore
from bench_suite.results.tracking import INSTALL_HINT, MLflowTracker, mirror_run, parse_track

if importlib.util.find_spec("mlflow") is None:  # an optional extra: tox installs it (extras = test, mlflow)
    if os.environ.get("CI"):
        raise RuntimeError(f"mlflow is missing on CI; tox installs the mlflow extra ({INSTALL_HINT})")
    pytest.skip(f"mlflow is not installed ({INSTALL_HINT})", allow_module_level=True)

from mlflow.tracking import MlflowClient  # noqa: E402


def _uri(folder) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def _runs(uri: str) -> tuple[MlflowClient, list, list]:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("bench-suite")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A two-cell smoke grid (ANN, IF conversion) run through the CLI: (results folder, run id)."""
    pytest.importorskip("spikingjelly")
    base = tmp_path_factory.mktemp("tracking")
    results = base / "results"
    from bench_suite.cli.app import app

    result = CliRunner().invoke(app, [
        "run", "--plugin", "trainer=ann", "--plugin", "trainer=conv", "--plugin", "neuron=if", "--profile", "smoke",
        "--set", "ann_epochs=2", "--results", str(results), "--data-root", str(base / "data")])
    assert result.exit_code == 0, result.output
    run_id = next(line for line in result.output.splitlines() if line.startswith("run id: ")).split(": ")[1]
    return results, run_id


@pytest.fixture(scope="module")
def mirrored(smoke_run, tmp_path_factory):
    results, run_id = smoke_run
    uri = _uri(tmp_path_factory.mktemp("mlflow"))
    with ResultStore(results, create=False) as store:
        parent = mirror_run(store, run_id, parse_track(f"mlflow:{uri}"))
    return uri, parent, results, run_id


def test_one_parent_and_one_child_per_cell(mirrored):
    uri, parent_id, results, run_id = mirrored
    _, parents, children = _runs(uri)
    assert [p.info.run_id for p in parents] == [parent_id]
    parent = parents[0]
    assert parent.data.tags["bench_suite.run_id"] == run_id and parent.info.run_name == run_id
    assert parent.info.status == "FINISHED"
    assert parent.data.params["trainer"] == "ann,conv" and parent.data.params["neuron"] == "if"
    assert parent.data.params["profile"] == "smoke" and parent.data.params["set.ann_epochs"] == "2"
    assert parent.data.tags["bench_suite.version.torch"].startswith("2.")
    assert len(children) == 2 and {c.data.tags["mlflow.parentRunId"] for c in children} == {parent_id}
    by_trainer = {c.data.params["trainer"]: c for c in children}
    assert set(by_trainer) == {"ann", "conv"}
    conv = by_trainer["conv"]
    assert conv.info.run_name == "demo-vessels conv if cw T=10 seed=0" and conv.info.status == "FINISHED"
    assert conv.data.params["neuron"] == "if" and conv.data.params["norm"] == "cw" and conv.data.params["T"] == "10"
    assert "norm.percentile" in conv.data.params and conv.data.tags["bench_suite.status"] == "done"
    with ResultStore(results, create=False) as store:
        samples = store.sample_metrics_frame(run_id)
        keys = set(store.cells_frame(run_id)["cell_key"])
    assert {c.data.tags["bench_suite.cell_key"] for c in children} == keys
    for trainer, child in by_trainer.items():
        expected = samples[samples["trainer"] == trainer].groupby("metric")["value"].mean()
        for metric, value in expected.items():
            assert child.data.metrics[metric] == pytest.approx(value)
        assert child.data.metrics["timings/total_s"] > 0


def test_curves_are_metric_history_steps(mirrored):
    uri, _, results, run_id = mirrored
    client, _, children = _runs(uri)
    ann = next(c for c in children if c.data.params["trainer"] == "ann")
    history = client.get_metric_history(ann.info.run_id, "ann/loss")
    with ResultStore(results, create=False) as store:
        curves = store.curves_frame(run_id)
    stored = curves[(curves["trainer"] == "ann") & (curves["metric"] == "loss")]
    assert [m.step for m in history] == stored["epoch"].tolist() == [1, 2]
    assert [m.value for m in history] == pytest.approx(stored["value"].tolist())


def test_tables_figures_and_cell_info_are_artifacts(mirrored):
    uri, parent_id, _, _ = mirrored
    client, _, children = _runs(uri)
    top = {a.path for a in client.list_artifacts(parent_id)}
    outputs = {a.path for a in client.list_artifacts(parent_id, "outputs")}
    assert {"spec.json", "outputs"} <= top
    assert {"outputs/table.md", "outputs/table.tex", "outputs/table.csv", "outputs/samples.csv",
            "outputs/convergence.png", "outputs/convergence.pdf"} <= outputs
    table = client.download_artifacts(parent_id, "outputs/table.md")
    assert "| demo-vessels | conv | if | cw | 10 |" in open(table).read()
    spec = json.load(open(client.download_artifacts(parent_id, "spec.json")))
    assert spec["profile"] == "smoke" and spec["overrides"] == {"ann_epochs": "2"}
    for child in children:
        assert {a.path for a in client.list_artifacts(child.info.run_id)} == {"info.json"}


def test_mirroring_again_logs_nothing_twice(mirrored):
    uri, parent_id, results, run_id = mirrored
    with ResultStore(results, create=False) as store:
        assert mirror_run(store, run_id, parse_track(f"mlflow:{uri}")) == parent_id
    client, parents, children = _runs(uri)
    assert len(parents) == 1 and len(children) == 2
    ann = next(c for c in children if c.data.params["trainer"] == "ann")
    assert len(client.get_metric_history(ann.info.run_id, "ann/loss")) == 2


def test_incremental_mirror_of_a_running_failed_then_resumed_run(tmp_path):
    """After each cell (run still running), then a failed cell redone on resume, then the end."""
    uri = _uri(tmp_path / "mlflow")
    tracker = parse_track(f"mlflow:{uri}")

    def config(trainer: str) -> dict:
        return {"dataset": "demo-vessels", "dataset_params": {}, "fold": None, "model": "unet2d",
                "model_params": {"width": 0}, "trainer": trainer, "trainer_params": {"lr": 0.001}, "neuron": "-",
                "neuron_params": {}, "norm": "-", "norm_params": {}, "T": 0, "seed": 0, "profile": "smoke"}

    keys = {t: json.dumps(config(t), sort_keys=True) for t in ("ann", "asf")}
    with ResultStore(tmp_path / "results") as store:
        run_id = store.create_run({"choices": {"trainer": [["trainer", "ann", []], ["trainer", "asf", []]]},
                                   "time_steps": [10], "seeds": [0], "profile": "smoke", "overrides": {},
                                   "data_root": None}, {"bench-suite": "0.1.0"})
        store.plan_cells(run_id, [(keys["ann"], "ann"), (keys["asf"], "asf")])
        ann = store.start_cell(run_id, keys["ann"], config("ann"))
        store.finish_cell(ann, sample_metrics=[("a", "f1", 0.5), ("b", "f1", 0.7)],
                          curves=[("ann", 1, "loss", 0.9), ("ann", 2, "loss", 0.4), ("ann", 3, "loss", 0.2)],
                          timings={"total_s": 1.5}, info={"note": "x"})
        parent_id = mirror_run(store, run_id, tracker)
        client, parents, children = _runs(uri)
        assert parents[0].info.status == "RUNNING" and len(children) == 1
        assert children[0].data.metrics["f1"] == pytest.approx(0.6)
        assert [m.step for m in client.get_metric_history(children[0].info.run_id, "ann/loss")] == [1, 2, 3]
        asf = store.start_cell(run_id, keys["asf"], config("asf"))
        store.fail_cell(asf, "neuron returned NaN", "Traceback ...")
        store.set_run_status(run_id, "failed")
        mirror_run(store, run_id, tracker)
        _, parents, children = _runs(uri)
        failed = next(c for c in children if c.data.params["trainer"] == "asf")
        assert failed.info.status == "FAILED" and failed.data.tags["bench_suite.error"] == "neuron returned NaN"
        assert parents[0].info.status == "FAILED"
        # --resume: the failed cell runs again and succeeds; a suite-like recorded file is an artifact
        store.set_run_status(run_id, "running")
        asf = store.start_cell(run_id, keys["asf"], config("asf"))
        store.finish_cell(asf, sample_metrics=[("a", "f1", 0.8)], timings={"total_s": 2.0})
        (tmp_path / "results" / run_id).mkdir()
        (tmp_path / "results" / run_id / "table.md").write_text("| a |\n")
        store.add_artifact(run_id, None, "md", tmp_path / "results" / run_id / "table.md")
        store.set_run_status(run_id, "done")
        assert mirror_run(store, run_id, parse_track(f"mlflow:{uri}")) == parent_id  # a new process, same parent
    client, parents, children = _runs(uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(c.data.params["trainer"] for c in children) == ["ann", "asf"]  # the failed attempt is replaced
    redone = next(c for c in children if c.data.params["trainer"] == "asf")
    assert redone.info.status == "FINISHED" and redone.data.metrics["f1"] == pytest.approx(0.8)
    assert "bench_suite.error" not in redone.data.tags
    # the failed end rendered the tables from the store; the recorded file of the resumed run replaces its own
    assert "outputs/table.md" in {a.path for a in client.list_artifacts(parent_id, "outputs")}
    assert open(client.download_artifacts(parent_id, "outputs/table.md")).read() == "| a |\n"


def test_parse_track(tmp_path, monkeypatch):
    default = parse_track("mlflow", tmp_path / "results")
    assert default.uri == f"sqlite:///{tmp_path / 'results' / 'mlruns' / 'mlflow.db'}"
    assert default.artifact_location == (tmp_path / "results" / "mlruns" / "artifacts").as_uri()
    assert not (tmp_path / "results").exists()  # nothing is created before the run starts
    given = parse_track(f"mlflow:sqlite:///{tmp_path}/t.db")
    assert isinstance(given, MLflowTracker) and given.uri == f"sqlite:///{tmp_path}/t.db"
    assert parse_track("mlflow:http://127.0.0.1:5000").uri == "http://127.0.0.1:5000"
    assert parse_track(f"mlflow:{tmp_path / 'store'}").uri == (tmp_path / "store").as_uri()
    with pytest.raises(BenchSuiteError, match="unknown tracker 'wandb'; available: mlflow"):
        parse_track("wandb")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(BenchSuiteError) as info:
        parse_track("mlflow")
    assert str(info.value).endswith("install it with pip install 'bench-suite[mlflow]' (or pip install mlflow)")


def test_a_bad_tracking_uri_is_one_sentence(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    tracker = MLflowTracker(f"sqlite:///{tmp_path / 'file' / 'x.db'}")
    with pytest.raises(BenchSuiteError, match="cannot open the MLflow tracking store"):
        tracker.start_run("r", {}, {})


def test_run_with_track_mirrors_every_cell_from_the_coordinator(tmp_path):
    from bench_suite.cli.app import app

    uri = _uri(tmp_path)
    result = CliRunner().invoke(app, [
        "run", "--plugin", "trainer=ann", "--plugin", "trainer=asf", "--plugin", "neuron=if", "--plugin", "neuron=mt",
        "--profile", "smoke", "--set", "ann_epochs=2", "-T", "4", "--track", f"mlflow:{uri}",
        "--results", str(tmp_path / "results"), "--data-root", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert f"tracked in MLflow: {uri}" in result.output
    run_id = next(line for line in result.output.splitlines() if line.startswith("run id: ")).split(": ")[1]
    client, parents, children = _runs(uri)
    assert [p.data.tags["bench_suite.run_id"] for p in parents] == [run_id]
    assert parents[0].info.status == "FINISHED"
    assert len(children) == 3 and {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    asf = next(c for c in children if c.data.params.get("trainer") == "asf" and c.data.params.get("neuron") == "mt")
    assert [m.step for m in client.get_metric_history(asf.info.run_id, "asf/loss")] == [1]
    ann = next(c for c in children if c.data.params.get("trainer") == "ann")
    assert [m.step for m in client.get_metric_history(ann.info.run_id, "ann/loss")] == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id, "outputs")}
    assert {"outputs/table.md", "outputs/table.tex", "outputs/table.csv"} <= artifacts
