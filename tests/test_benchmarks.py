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
