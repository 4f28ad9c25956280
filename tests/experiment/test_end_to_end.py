"""End-to-end through the CLI on demo data: grid, CSV report, determinism, resume after kill -9."""

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench_suite.cli.app import app

FAST = ["--profile", "smoke", "--set", "ann_epochs=1", "--set", "patches_per_image=8"]
GRID = ["--plugin", "neuron=if", "--plugin", "neuron=mt", "--plugin", "norm=lw", "--plugin", "norm=cw",
        "--plugin", "trainer=conv", "--plugin", "trainer=asf", "--dataset", "demo-vessels", "-T", "10"]


def cli(*args):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    data = tmp_path_factory.mktemp("data")
    output = cli("run", *GRID, *FAST, "--results", str(results), "--data-root", str(data))
    return results, data, output


def test_grid_prints_run_id_location_and_table(smoke_run):
    results, _, output = smoke_run
    lines = output.splitlines()
    run_line = next(i for i, line in enumerate(lines) if line.startswith("run id: "))
    first_done = next(i for i, line in enumerate(lines) if line.startswith("done: "))
    assert run_line < first_done  # the id is printed before any cell finishes
    assert f"results: {results}" in output
    assert "| dataset |" in output and "| conv |" in output.replace("  ", " ")


def test_csv_report_is_tidy_with_required_columns(smoke_run):
    results, _, _ = smoke_run
    frame = pd.read_csv(io.StringIO(cli("report", "--format", "csv", "--results", str(results))))
    for column in ["dataset", "neuron", "norm", "trainer", "T", "seed", "metric", "value", "n"]:
        assert column in frame.columns
    assert set(frame["neuron"]) == {"if", "mt"}
    assert set(frame["norm"]) == {"lw", "cw"}
    assert set(frame["trainer"]) == {"conv", "asf"}
    assert {"f1", "jaccard", "accuracy"} <= set(frame["metric"])
    assert len(frame.groupby(["neuron", "norm", "trainer"])) == 8
    per_sample = pd.read_csv(io.StringIO(cli("report", "--format", "csv", "--per-sample", "--results",
                                             str(results))))
    assert "sample" in per_sample.columns and per_sample["n"].eq(1).all()


def test_latex_and_markdown_reports(smoke_run, tmp_path):
    results, _, _ = smoke_run
    out = tmp_path / "table.tex"
    cli("report", "--format", "latex", "--out", str(out), "--results", str(results))
    latex = out.read_text()
    assert "\\toprule" in latex and "\\bottomrule" in latex and "\\textbf" in latex
    assert "| trainer |" in cli("report", "--format", "markdown", "--results", str(results)).replace("  ", " ")


def test_same_seed_gives_same_numbers(smoke_run, tmp_path):
    results, data, _ = smoke_run
    cli("run", *GRID, *FAST, "--results", str(tmp_path), "--data-root", str(data))
    first = pd.read_csv(io.StringIO(cli("report", "--format", "csv", "--results", str(results))))
    second = pd.read_csv(io.StringIO(cli("report", "--format", "csv", "--results", str(tmp_path))))
    pd.testing.assert_frame_equal(first, second)


def cells(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("select cell_key, status, finished from cells order by id").fetchall()


def test_resume_after_kill_recomputes_nothing_and_duplicates_nothing(tmp_path):
    results, data = tmp_path / "results", tmp_path / "data"
    command = [sys.executable, "-m", "bench_suite", "run", *GRID, *FAST, "--results", str(results),
               "--data-root", str(data)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    db = results / "bench-suite.sqlite"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if db.exists() and sum(status == "done" for _, status, _ in cells(db)) >= 3:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {key: finished for key, status, finished in cells(db) if status == "done"}
    assert 3 <= len(before) < 8, "the run should have been killed part-way"
    with sqlite3.connect(db) as conn:
        run_id = conn.execute("select id from runs").fetchone()[0]

    output = cli("run", "--resume", run_id, "--results", str(results), "--data-root", str(data))
    assert f"run id: {run_id}" in output
    after = cells(db)
    assert len(after) == 8 and len({key for key, _, _ in after}) == 8
    assert all(status == "done" for _, status, _ in after)
    for key, _, finished in after:
        if key in before:
            assert finished == before[key], "a finished cell was recomputed"
    with sqlite3.connect(db) as conn:
        duplicates = conn.execute(
            "select count(*) from (select cell_id, sample, metric, count(*) c from sample_metrics "
            "group by 1, 2, 3 having c > 1)").fetchone()[0]
    assert duplicates == 0
