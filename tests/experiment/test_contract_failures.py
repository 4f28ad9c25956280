"""A plugin that breaks its contract fails its own cell with a clear message; the other cells finish."""

import torch
from typer.testing import CliRunner

from bench_suite.cli.app import app
from bench_suite.core.neuron import SpikingNeuron
from bench_suite.core.registry import get_registry


class NaNNeuron(SpikingNeuron):
    """A neuron whose dynamics produce NaN."""

    def fire(self, v):
        return torch.full_like(v, float("nan"))


def test_nan_neuron_fails_its_cell_and_others_finish(tmp_path):
    registry = get_registry()
    registry.register("neuron", "nan-test", NaNNeuron, "test-package")
    try:
        result = CliRunner().invoke(app, [
            "run", "--plugin", "neuron=nan-test", "--plugin", "neuron=if", "--plugin", "trainer=conv",
            "--profile", "smoke", "--set", "ann_epochs=1", "--set", "patches_per_image=8",
            "--results", str(tmp_path / "r"), "--data-root", str(tmp_path / "d"),
        ])
    finally:
        registry._plugins["neuron"].pop("nan-test")
    assert result.exit_code == 1
    assert "produced NaN or infinite values" in result.output
    assert "| if |" in result.output.replace("  ", " ")  # the healthy cell finished and is in the table
    assert "Traceback" not in result.output
