"""Time and memory per cell and stage: from the cell's stored measurements to `report --costs` and `show`."""

from __future__ import annotations

import io
import math

import pandas as pd
from typer.testing import CliRunner

from bench_suite.cli.app import app
from bench_suite.results.frames import stage_costs
from bench_suite.results.render import costs_text
from bench_suite.results.store import ResultStore


def config(neuron: str, trainer: str = "asf", T: int = 10) -> dict:
    return {"dataset": "demo-vessels", "model": "unet", "neuron": neuron, "norm": "cw", "trainer": trainer,
            "T": T, "seed": 0, "profile": "smoke"}


def make_store(path):
    store = ResultStore(path)
    run_id = store.create_run({"x": 1}, {})
    gpu = store.start_cell(run_id, "a", config("mt"))
    # stages stored out of their running order: the table puts them back in order
    # timings as StageMeter.timings() flattens them; info["memory"] as StageMeter.stages keeps them
    store.finish_cell(gpu, sample_metrics=[("s", "f1", 0.8)],
                      timings={"total_s": 9.0, "ann_s": 4.0, "ann_device_mib": 2048.0, "fine_tune_device_mib": 4096.0,
                               "fine_tune_rss_mib": 850.0},
                      info={"memory": {"evaluation": {"seconds": 1.0, "peak_rss_mib": 900.0, "peak_device_mib": 50.0},
                                       "ann": {"seconds": 4.0, "peak_rss_mib": 800.0, "peak_device_mib": 2048.0},
                                       "fine-tune": {"seconds": 3.0, "peak_rss_mib": 850.0,
                                                     "peak_device_mib": 4096.0},
                                       "calibration": {"seconds": 1.0, "peak_rss_mib": 820.0,
                                                       "peak_device_mib": 1024.0}},
                            "versions": {"device": "cuda:0", "device_name": "NVIDIA H200"},
                            "environment": {"precision": "bf16"}})
    cpu = store.start_cell(run_id, "b", config("-", "ann", 0))
    store.finish_cell(cpu, sample_metrics=[("s", "f1", 0.9)], timings={"ann_s": 2.0, "ann_rss_mib": 700.0},
                      info={"memory": {"ann": {"seconds": 2.0, "peak_rss_mib": 700.0}},
                            "versions": {"device": "cpu", "device_name": "AMD EPYC"}})
    return store, run_id


def test_stage_costs_one_row_per_cell_and_stage_in_running_order(tmp_path):
    store, run_id = make_store(tmp_path)
    costs = stage_costs(store, run_id)
    first = costs[costs["cell_id"] == costs["cell_id"].iloc[0]]
    assert list(first["stage"]) == ["ann", "calibration", "fine-tune", "evaluation"]
    assert first["peak_device_mib"].max() == 4096.0 and set(first["device"]) == {"NVIDIA H200"}
    ann = costs[costs["trainer"] == "ann"].iloc[0]
    assert ann["device"] == "AMD EPYC" and math.isnan(ann["peak_device_mib"]) and ann["seconds"] == 2.0
    markdown = costs_text(costs, "markdown")
    assert "| demo-vessels | asf | mt | cw | 10 | 0 | NVIDIA H200 (bf16) | fine-tune | 3.0 | 850 | 4096 |" in markdown
    assert "| AMD EPYC | ann | 2.0 | 700 | – |" in markdown
    frame = pd.read_csv(io.StringIO(costs_text(costs, "csv")))
    assert len(frame) == 5 and {"stage", "seconds", "peak_rss_mib", "peak_device_mib"} <= set(frame.columns)
    store.close()


def test_report_costs_and_show_print_the_measurements(tmp_path, compile_latex):
    store, run_id = make_store(tmp_path)
    store.close()
    result = CliRunner().invoke(app, ["report", run_id, "--costs", "--results", str(tmp_path)])
    assert result.exit_code == 0 and "4096" in result.stdout and "peak device (MiB)" in result.stdout
    latex = CliRunner().invoke(app, ["report", run_id, "--costs", "--format", "latex", "--results", str(tmp_path)])
    assert latex.exit_code == 0
    compile_latex(latex.stdout)
    shown = CliRunner().invoke(app, ["show", run_id, "--results", str(tmp_path)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    row = next(line for line in shown.stdout.splitlines() if "demo-vessels asf mt" in line)
    assert "4096" in row  # the largest device peak over the cell's stages
    assert "ann_rss_mib_s" not in store_columns(tmp_path, run_id)


def store_columns(path, run_id) -> list[str]:
    with ResultStore(path, create=False) as store:
        return list(store.cells_frame(run_id).columns)
