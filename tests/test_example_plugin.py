"""The example third-party package, installed with pip, is found through its entry points and runs."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLE = Path(__file__).parents[1] / "plugins" / "bench-suite-example"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True, text=True,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "250"}
    return env


def bench(env, *args, check=True):
    result = subprocess.run([sys.executable, "-m", "bench_suite", *args], env=env, capture_output=True,
                            text=True)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_plugins_listed_with_their_distribution(installed):
    output = bench(installed, "list").stdout
    lif = next(line for line in output.splitlines() if " lif " in line)
    assert "bench-suite-example" in lif and "neuron" in lif
    stripes = next(line for line in output.splitlines() if "tiny-stripes" in line)
    assert "bench-suite-example" in stripes and "dataset" in stripes


def test_benchmark_runs_with_third_party_neuron_and_dataset(installed, tmp_path):
    bench(installed, "run", "--plugin", "neuron=lif(beta=0.95)", "--plugin", "neuron=if",
          "--dataset", "tiny-stripes", "--plugin", "trainer=conv", "--profile", "smoke", "-T", "8",
          "--results", str(tmp_path))
    csv = bench(installed, "report", "--format", "csv", "--results", str(tmp_path)).stdout
    frame = pd.read_csv(io.StringIO(csv))
    assert set(frame["dataset"]) == {"tiny-stripes"}
    assert {"lif(beta=0.95)", "if"} <= set(frame["neuron"])


def test_plugin_parameter_validation_reaches_third_party_plugins(installed, tmp_path):
    result = bench(installed, "run", "--plugin", "neuron=lif(beta=2)", "--dataset", "tiny-stripes",
                   "--results", str(tmp_path), check=False)
    assert result.returncode != 0
    assert "beta must be in (0, 1]" in result.stderr and "Traceback" not in result.stderr
