"""Every built-in neuron runs in both regimes (DT and FT) on both demo datasets through the CLI."""

import io

import pandas as pd
from typer.testing import CliRunner

from bench_suite.cli.app import app


def test_all_neurons_direct_training_and_fine_tuning_on_both_demo_datasets(tmp_path):
    args = ["run", "--dataset", "demo-vessels", "--dataset", "demo-denoise", "--plugin", "trainer=dt",
            "--plugin", "trainer=asf", "-T", "4", "--profile", "smoke", "--set", "ann_epochs=1",
            "--set", "patches_per_image=8", "--results", str(tmp_path / "r"), "--data-root", str(tmp_path / "d")]
    for neuron in ("if", "mt", "ml", "rs"):
        args += ["--plugin", f"neuron={neuron}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    csv = CliRunner().invoke(app, ["report", "--format", "csv", "--results", str(tmp_path / "r")]).output
    frame = pd.read_csv(io.StringIO(csv))
    cells = frame.groupby(["dataset", "trainer", "neuron"]).size()
    assert len(cells) == 2 * 2 * 4
    assert frame.loc[frame["dataset"] == "demo-denoise", "metric"].isin(["psnr", "ssim"]).all()
    assert frame["value"].notna().all()
