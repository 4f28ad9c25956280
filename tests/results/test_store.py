"""The results store: round trips, resume semantics, error messages and crash consistency."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.results.store import DB_FILENAME, ResultStore

REPO_ROOT = Path(__file__).resolve().parents[2]


def config(seed: int = 0, neuron: str = "mt") -> dict:
    return {
        "dataset": "drive",
        "model": "unet",
        "neuron": neuron,
        "norm": "cw",
        "trainer": "asf",
        "T": 10,
        "seed": seed,
        "profile": "smoke",
        "neuron_params": {"thresholds": 4, "base": 0.5},
    }


@pytest.fixture
def store(tmp_path: Path):
    with ResultStore(tmp_path / "results") as opened:
        yield opened


@pytest.fixture
def run_id(store: ResultStore) -> str:
    return store.create_run({"suite": "demo", "seeds": [0, 1]}, {"bench-suite": "0.1.0", "torch": "2.4"})


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection beside the store's, committed and closed on exit."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def test_run_round_trip(store: ResultStore, run_id: str) -> None:
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", run_id)
    run = store.get_run(run_id)
    assert run["id"] == run_id
    assert run["status"] == "running"
    assert run["spec"] == {"suite": "demo", "seeds": [0, 1]}
    assert run["versions"] == {"bench-suite": "0.1.0", "torch": "2.4"}

    second = store.create_run({}, {})
    assert second != run_id
    assert store.latest_run_id() == second
    assert [run["id"] for run in store.list_runs()] == [second, run_id]

    store.set_run_status(run_id, "done")
    assert store.get_run(run_id)["status"] == "done"
    with pytest.raises(BenchSuiteError, match="unknown run status 'finished'"):
        store.set_run_status(run_id, "finished")


def test_folder_and_wal_mode(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "a" / "b") as store:
        assert store.path == tmp_path / "a" / "b" / DB_FILENAME
        assert store.path.exists()
        assert store.latest_run_id() is None
        with raw(store.path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]


def test_finish_cell_reads_back(store: ResultStore, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # a frozen clock: start_cell reads it once, finish_cell once, so the duration is known exactly
    clock = iter(["2026-01-02T03:04:05.250+00:00", "2026-01-02T03:04:17.750+00:00"])
    monkeypatch.setattr("bench_suite.results.store._now", lambda: next(clock))
    cell_id = store.start_cell(run_id, "drive/mt/seed0", config())
    store.finish_cell(
        cell_id,
        sample_metrics=[("01_test", "f1", 0.8), ("01_test", "tp", 120.0), ("02_test", "f1", 0.75)],
        curves=[("ann", 0, "loss", 0.9), ("ann", 1, "loss", 0.5), ("asf", 0, "loss", 0.4)],
        layer_stats=[
            {
                "layer": "enc1",
                "kind": "conv",
                "neurons": 64,
                "time_steps": 10,
                "events": 5.0,
                "spikes": 4.0,
                "synops": 100.0,
                "firing_rate": 0.25,
            },
            {"layer": "head", "kind": "conv", "neurons": 2, "time_steps": 10, "events": 1.0},
        ],
        timings={"train": 12.5, "evaluate": 3.0},
        info={"note": "ok"},
    )

    cells = store.cells_frame(run_id)
    assert len(cells) == 1
    cell = cells.iloc[0]
    assert (cell["cell_id"], cell["cell_key"], cell["status"]) == (cell_id, "drive/mt/seed0", "done")
    assert (cell["started"].isoformat(), cell["finished"].isoformat()) == (
        "2026-01-02T03:04:05.250000+00:00",
        "2026-01-02T03:04:17.750000+00:00",
    )
    assert cell["duration_s"] == 12.5
    assert (cell["train_s"], cell["evaluate_s"]) == (12.5, 3.0)
    for key in ("dataset", "model", "neuron", "norm", "trainer", "T", "seed", "profile"):
        assert cell[key] == config()[key]
    assert cell["neuron_params"] == '{"base": 0.5, "thresholds": 4}'

    metrics = store.sample_metrics_frame(run_id)
    assert list(metrics.columns[:3]) == ["cell_id", "cell_key", "status"]
    assert list(zip(metrics["sample"], metrics["metric"], metrics["value"], strict=True)) == [
        ("01_test", "f1", 0.8),
        ("01_test", "tp", 120.0),
        ("02_test", "f1", 0.75),
    ]
    assert set(metrics["dataset"]) == {"drive"}

    curves = store.curves_frame(run_id)
    assert list(zip(curves["stage"], curves["epoch"], curves["value"], strict=True)) == [
        ("ann", 0, 0.9),
        ("ann", 1, 0.5),
        ("asf", 0, 0.4),
    ]

    layers = store.layer_stats_frame(run_id)
    assert list(layers["layer"]) == ["enc1", "head"]
    assert list(layers["neurons"]) == [64, 2]
    assert layers["firing_rate"].iloc[0] == 0.25
    assert math.isnan(layers["firing_rate"].iloc[1])
    assert math.isnan(layers["synops"].iloc[1])


def test_nan_round_trip(store: ResultStore, run_id: str) -> None:
    cell_id = store.start_cell(run_id, "k", config())
    store.finish_cell(
        cell_id,
        sample_metrics=[("a", "miou", math.nan), ("b", "miou", 0.5)],
        curves=[("ann", 0, "loss", float("nan"))],
        layer_stats=[{"layer": "x", "events": math.nan}],
    )
    metrics = store.sample_metrics_frame(run_id)
    assert math.isnan(metrics["value"].iloc[0])
    assert metrics["value"].iloc[1] == 0.5
    assert math.isnan(store.curves_frame(run_id)["value"].iloc[0])
    assert math.isnan(store.layer_stats_frame(run_id)["events"].iloc[0])
    with raw(store.path) as conn:
        assert conn.execute("SELECT value FROM sample_metrics WHERE sample = 'a'").fetchone() == (None,)


def test_restarting_a_running_cell_reuses_its_row_and_clears_partial_rows(
    store: ResultStore, run_id: str
) -> None:
    cell_id = store.start_cell(run_id, "k", config())
    # what a writer that bypassed the one-transaction rule could have left behind
    with raw(store.path) as conn:
        conn.execute("INSERT INTO sample_metrics VALUES (?, 'a', 'f1', 0.1)", (cell_id,))
        conn.execute("INSERT INTO curves VALUES (?, 'ann', 0, 'loss', 1.0)", (cell_id,))
    assert store.start_cell(run_id, "k", config()) == cell_id

    cells = store.cells_frame(run_id)
    assert len(cells) == 1
    assert cells["attempts"].iloc[0] == 2
    assert cells["status"].iloc[0] == "running"
    assert store.sample_metrics_frame(run_id).empty
    assert store.curves_frame(run_id).empty
    with raw(store.path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO cells (run_id, cell_key, config, status, started) "
            "VALUES (?, 'k', '{}', 'running', 'x')",
            (run_id,),
        )


def test_done_cells_cannot_restart_and_are_listed(store: ResultStore, run_id: str) -> None:
    done = store.start_cell(run_id, "done-cell", config(seed=0))
    store.finish_cell(done, sample_metrics=[("a", "f1", 0.9)])
    failed = store.start_cell(run_id, "failed-cell", config(seed=1))
    store.fail_cell(failed, "boom: out of memory", "Traceback ...")
    store.start_cell(run_id, "running-cell", config(seed=2))

    assert store.done_cell_keys(run_id) == {"done-cell"}
    with pytest.raises(BenchSuiteError, match="'done-cell'.*already done"):
        store.start_cell(run_id, "done-cell", config(seed=0))
    with pytest.raises(BenchSuiteError, match="'done'"):
        store.finish_cell(done, sample_metrics=[("b", "f1", 0.1)])
    assert len(store.sample_metrics_frame(run_id)) == 1

    cells = store.cells_frame(run_id).set_index("cell_key")
    assert cells.loc["failed-cell", "status"] == "failed"
    assert cells.loc["failed-cell", "error"] == "boom: out of memory"
    assert cells.loc["failed-cell", "traceback"] == "Traceback ..."
    # a failed cell is retried on resume
    assert store.start_cell(run_id, "failed-cell", config(seed=1)) == failed
    run = store.list_runs()[0]
    assert (run["cells"], run["done"], run["failed"], run["running"]) == (3, 1, 0, 2)


def test_duplicate_sample_metric_rolls_back_the_whole_cell(store: ResultStore, run_id: str) -> None:
    cell_id = store.start_cell(run_id, "k", config())
    with pytest.raises(BenchSuiteError, match="same \\(sample, metric\\) twice"):
        store.finish_cell(
            cell_id, sample_metrics=[("a", "f1", 0.5), ("a", "f1", 0.6)], timings={"train": 1.0}
        )
    assert store.done_cell_keys(run_id) == set()
    assert store.sample_metrics_frame(run_id).empty
    store.finish_cell(cell_id, sample_metrics=[("a", "f1", 0.5)])
    assert store.done_cell_keys(run_id) == {"k"}


def test_unknown_run_id_names_the_id_folder_and_recent_runs(store: ResultStore, run_id: str) -> None:
    with pytest.raises(BenchSuiteError) as caught:
        store.get_run("20990101-000000-dead")
    message = str(caught.value)
    assert "'20990101-000000-dead'" in message
    assert str(store.results_dir) in message
    assert run_id in message
    assert "bench-suite report" in message
    with pytest.raises(BenchSuiteError, match="unknown run id 'nope'"):
        store.sample_metrics_frame("nope")


def test_recent_ids_are_capped_at_five(store: ResultStore) -> None:
    ids = [store.create_run({"i": i}, {}) for i in range(7)]
    with pytest.raises(BenchSuiteError) as caught:
        store.get_run("x")
    listed = re.findall(r"\d{8}-\d{6}-[0-9a-f]{4}", str(caught.value).split("latest runs:")[1].split(";")[0])
    assert listed == ids[::-1][:5]


def test_missing_database_is_said(tmp_path: Path) -> None:
    with pytest.raises(BenchSuiteError, match="no results database in"):
        ResultStore(tmp_path / "typo", create=False)
    assert not (tmp_path / "typo").exists()
    with (
        ResultStore(tmp_path / "fresh") as store,
        pytest.raises(BenchSuiteError, match="no results database"),
    ):
        store.get_run("20260101-000000-abcd")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    ResultStore(tmp_path).close()
    with raw(tmp_path / DB_FILENAME) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(BenchSuiteError, match="schema version 99"):
        ResultStore(tmp_path)


def test_artifacts_are_stored_once_and_relative_to_the_folder(store: ResultStore, run_id: str) -> None:
    checkpoint = store.results_dir / "checkpoints" / "ann-seed0.pt"
    store.add_artifact(run_id, "k", "checkpoint", checkpoint)
    store.add_artifact(run_id, "k", "checkpoint", checkpoint)
    store.add_artifact(run_id, None, "figure", "/elsewhere/rates.png")
    store.add_artifact(run_id, None, "figure", "/elsewhere/rates.png")
    found = store.artifacts(run_id)
    assert [(a["cell_key"], a["kind"], a["path"]) for a in found] == [
        ("k", "checkpoint", checkpoint),
        (None, "figure", Path("/elsewhere/rates.png")),
    ]
    with raw(store.path) as conn:
        assert conn.execute("SELECT path FROM artifacts ORDER BY id").fetchone() == (
            "checkpoints/ann-seed0.pt",
        )


_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from bench_suite.results.store import ResultStore

    results, run_id, how = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    store = ResultStore(results)
    committed = store.start_cell(run_id, "committed", {"seed": 0})
    store.finish_cell(committed, sample_metrics=[("a", "f1", 0.9)])
    victim = store.start_cell(run_id, "victim", {"seed": 1})

    def rows():
        for i in range(100_000):
            if i == 5_000:
                if how == "exit":
                    os._exit(3)
                print("mid-transaction", flush=True)
                time.sleep(120)
            yield (f"s{i}", "f1", 0.5)

    store.finish_cell(victim, sample_metrics=rows(), timings={"train": 1.0})
    """
)


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_killed_mid_transaction_leaves_a_consistent_database(tmp_path: Path, how: str) -> None:
    results = tmp_path / "results"
    with ResultStore(results) as store:
        run_id = store.create_run({}, {})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(results), run_id, how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        if how == "sigkill":
            assert child.stdout.readline().strip() == "mid-transaction", child.stderr.read()
            # a reader is not blocked by the open write transaction and does not see its rows
            with ResultStore(results) as reader:
                assert set(reader.sample_metrics_frame(run_id)["sample"]) == {"a"}
            child.kill()
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == (3 if how == "exit" else -9)

    with raw(results / DB_FILENAME) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with ResultStore(results) as store:
        assert store.done_cell_keys(run_id) == {"committed"}
        cells = store.cells_frame(run_id).set_index("cell_key")
        assert cells.loc["victim", "status"] == "running"
        metrics = store.sample_metrics_frame(run_id)
        assert list(metrics["cell_key"]) == ["committed"]
        # resume: the victim starts again and finishes normally
        victim = store.start_cell(run_id, "victim", {"seed": 1})
        store.finish_cell(victim, sample_metrics=[("a", "f1", 0.7)])
        assert store.done_cell_keys(run_id) == {"committed", "victim"}
