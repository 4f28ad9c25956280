"""The benchmark scripts run end to end (tiny sizes) and print what the README and issues rely on."""

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
KEYS = {"if_fwd_over_T_ann", "mt_fwd_over_T_ann", "if_fwd_over_T_ann_naive", "if_bf16_over_T_ann_naive",
        "bf16_rel_err", "sj_if_over_ours", "asf_over_stbp_time", "asf_over_stbp_mem", "asf_mem_T50_over_T10"}


def run(script, *args):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                            cwd=BENCHMARKS, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_speed_memory_prints_every_ratio_as_json():
    output = run("speed_memory.py", "--width", "4", "--batch", "1", "--side", "32", "--repeats", "1",
                 "--no-demo", "--train-width", "4", "--train-batch", "1")
    ratios = json.loads(output.strip().splitlines()[-1])
    assert KEYS <= set(ratios)
    assert all(value > 0 for key, value in ratios.items() if key != "bf16_rel_err")
    assert 0 <= ratios["bf16_rel_err"] < 0.1
    assert "threads" in output and "M parameters" in output


def test_profile_names_where_the_time_goes():
    output = run("profile_simulation.py", "--width", "4", "--batch", "1", "--side", "32", "--rows", "3")
    assert "convolutions" in output and "IF, T=10" in output and "MT, T=10" in output


def test_device_check_passes_on_the_cpu():
    output = run("device_check.py", "--device", "cpu", "-T", "4")
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary == {"device": "cpu", "precision": "fp32", "largest_metric_difference": 0.0,
                       "stages_off_device": 0, "spike_mismatches": 0, "ok": True}
    for stage in ("ANN training", "training patches", "conversion and calibration", "ASF fine-tuning", "evaluation"):
        assert f"stage {stage}: on cpu" in output


def test_device_check_on_cuda_where_there_is_one():
    import pytest
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here; benchmarks/device_check.py --device cuda runs on a GPU machine")
    summary = json.loads(run("device_check.py", "--device", "cuda").strip().splitlines()[-1])
    assert summary["ok"], summary


def test_grid_speed_compares_in_process_and_workers_on_identical_tables():
    import pytest

    pytest.importorskip("distributed", reason="the dask extra is not installed")
    ratios = json.loads(run("grid_speed.py", "--grids", "smoke", "--fast").strip().splitlines()[-1])
    assert ratios["smoke_identical"] is True
    assert ratios["smoke_workers_over_in_process"] > 0 and ratios["smoke_workers_over_one_thread"] > 0


def test_eval_speed_times_whole_images_and_tiles():
    output = run("eval_speed.py", "--images", "1", "--tile-batches", "64", "-T", "2", "--width", "4",
                 "--whole-batch", "1")
    summary = json.loads(output.strip().splitlines()[-1])
    assert set(summary["ratio_to_whole"]) == {"whole images, batches of 1", "48 × 48 tiles, 64 per pass"}
    assert summary["ratio_to_whole"]["whole images, batches of 1"] == 1.0
    assert "156 tiles of 48 × 48 per image" in output and "CPU:" in output


def test_ann_recipe_scores_each_recipe_against_the_reference():
    output = run("ann_recipe.py", "--datasets", "demo-vessels", "--recipes", "reference", "median-frequency",
                 "--fast")
    summary = json.loads(output.strip().splitlines()[-1])
    assert set(summary) == {"demo-vessels/reference", "demo-vessels/median-frequency"}
    reference, other = summary["demo-vessels/reference"], summary["demo-vessels/median-frequency"]
    assert reference["metric"] == other["metric"] == "f1"
    assert reference["gain"] == 0 and reference["time_ratio"] == 1
    assert 0 <= other["value"] <= 1 and other["seconds"] > 0
    assert abs(other["gain"] - (other["value"] - reference["value"])) <= 2e-4
    assert "CPU:" in output
