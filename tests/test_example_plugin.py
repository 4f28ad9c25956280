"""The example third-party package, installed with pip, is found through its entry points and runs."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench_suite.cli.app import app
from bench_suite.core.registry import get_registry

EXAMPLE = Path(__file__).parents[1] / "plugins" / "bench-suite-example"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example package pip-installed (not editable) into a folder of its own."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True, text=True,
    )
    return target


@pytest.fixture(scope="module")
def installed(site):
    """The environment of a subprocess that sees the installed package."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
            "COLUMNS": "250"}


@pytest.fixture
def registered(site):
    """The installed package on this process's path, and the registry rebuilt to find its entry points."""
    sys.path.insert(0, str(site))
    get_registry(reload=True)
    yield
    sys.path.remove(str(site))
    get_registry(reload=True)


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def bench(env, *args, check=True):
    result = subprocess.run([sys.executable, "-m", "bench_suite", *args], env=env, capture_output=True,
                            text=True)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_plugins_listed_with_their_distribution(installed):
    output = bench(installed, "list").stdout
    for name, kind in [(" lif ", "neuron"), ("max-norm", "norm"), ("sgd-finetune", "trainer"),
                       ("tiny-stripes", "dataset")]:
        line = next(line for line in output.splitlines() if name in line)
        assert "bench-suite-example" in line and kind in line
    assert not [line for line in output.splitlines() if "BROKEN" in line and "bench-suite-example" in line]


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


def test_example_package_tests_pass(installed):
    # the package's own tests: one conformance-kit call per plugin, run as its author would
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                            cwd=EXAMPLE, env=installed, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout


@pytest.mark.parametrize("kind, name", [
    ("neuron", "lif"), ("norm", "max-norm"), ("norm", "max-norm(scale=0.8, robust=true)"),
    ("trainer", "sgd-finetune"), ("dataset", "tiny-stripes"),
])
def test_check_plugin_passes_for_example_plugins(registered, kind, name):
    output = invoke("check-plugin", kind, name)
    assert "bench-suite-example" in output and "checks passed" in output and "FAIL" not in output


def test_smoke_run_with_example_trainer_norm_neuron_and_dataset(registered, tmp_path):
    # ann_epochs and max_patches keep the shared ANN's training to seconds; only the plumbing is checked
    output = invoke("run", "--plugin", "trainer=sgd-finetune", "--plugin", "norm=max-norm", "--plugin",
                    "neuron=lif", "--dataset", "tiny-stripes", "--profile", "smoke", "-T", "4",
                    "--set", "ann_epochs=2", "--set", "max_patches=48",
                    "--results", str(tmp_path / "results"), "--data-root", str(tmp_path))
    row = next(line for line in output.splitlines() if line.startswith("| tiny-stripes |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:5] == ["sgd-finetune", "lif", "max-norm", "4"]
