"""End-to-end through the CLI on demo data: grid, CSV report, determinism, resume after kill -9, smoke learns."""

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench_suite.cli.app import app
from bench_suite.core.tasks import add_test_noise
from bench_suite.datasets.demo import DemoDenoise
from bench_suite.metrics.denoising import psnr

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


def test_latex_and_markdown_reports(smoke_run, tmp_path, compile_latex):
    results, _, _ = smoke_run
    out = tmp_path / "table.tex"
    cli("report", "--format", "latex", "--out", str(out), "--results", str(results))
    latex = out.read_text()
    assert latex.startswith("% bench-suite table: needs \\usepackage{booktabs}")
    compile_latex(latex)
    compile_latex(cli("report", "--format", "latex", "--caption", "Demo 100% & more", "--results", str(results)))
    baseline = cli("report", "--baseline", "neuron=mt", "--format", "latex", "--results", str(results))
    assert "p\\_holm" not in baseline and "p (Holm)" in baseline
    compile_latex(baseline)
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


# Run in a child process: the CLI with `ResultStore.finish_cell` wrapped so that the process SIGKILLs
# itself right after the given number of cells are committed — a kill -9 at a known point, no polling.
KILL_AFTER_CELLS = """
import json, os, signal, sys

from bench_suite.results.store import ResultStore

kill_after, argv = int(sys.argv[1]), json.loads(sys.argv[2])
original = ResultStore.finish_cell
finished = 0


def finish_cell(self, *args, **kwargs):
    global finished
    original(self, *args, **kwargs)  # returns once the cell's transaction is committed
    finished += 1
    if finished == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)


ResultStore.finish_cell = finish_cell
from bench_suite.cli import main

sys.argv = ["bench-suite", *argv]
main()
"""


def test_resume_after_kill_recomputes_nothing_and_duplicates_nothing(tmp_path):
    results, data = tmp_path / "results", tmp_path / "data"
    argv = ["run", *GRID, *FAST, "--results", str(results), "--data-root", str(data)]
    process = subprocess.run([sys.executable, "-c", KILL_AFTER_CELLS, "3", json.dumps(argv)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "COLUMNS": "200"}, timeout=600)
    assert process.returncode == -signal.SIGKILL, process.stdout
    db = results / "bench-suite.sqlite"
    before = {key: finished for key, status, finished in cells(db) if status == "done"}
    assert len(before) == 3, "the run should have been killed right after its third cell"
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
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
    assert duplicates == 0
    assert integrity == [("ok",)]


def report_means(results):
    """The tidy CSV report as ``{(trainer, neuron, metric): value}``."""
    frame = pd.read_csv(io.StringIO(cli("report", "--format", "csv", "--results", str(results))))
    return {(row.trainer, row.neuron, row.metric): row.value for row in frame.itertuples()}


@pytest.mark.slow
def test_smoke_profile_learns_the_default_demo_grid(tmp_path):
    # the default grid (ann, conv and asf; if and mt; cw; T=10) at the plain smoke profile, not FAST
    results = tmp_path / "results"
    cli("run", "--profile", "smoke", "--results", str(results), "--data-root", str(tmp_path / "data"))
    value = report_means(results)
    assert value["ann", "-", "f1"] >= 0.6
    assert value["conv", "mt", "f1"] > value["conv", "if", "f1"]
    assert value["asf", "mt", "f1"] >= value["conv", "mt", "f1"] - 0.02


@pytest.mark.slow
def test_smoke_profile_ann_denoises_better_than_the_noisy_input(tmp_path):
    results, data = tmp_path / "results", tmp_path / "data"
    cli("run", "--profile", "smoke", "--dataset", "demo-denoise", "--plugin", "trainer=ann",
        "--results", str(results), "--data-root", str(data))
    bundle = DemoDenoise().load(data, "smoke")
    assert bundle.task.noise_sigma == 25.0
    noisy = [psnr(sample.image, add_test_noise(sample, 25.0)) for sample in bundle.test]
    assert report_means(results)["ann", "-", "psnr"] > float(np.mean(noisy))
