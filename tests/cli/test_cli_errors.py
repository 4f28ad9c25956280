"""Every CLI error path: one clear sentence on stderr, a non-zero exit, no traceback."""

import pytest
from typer.testing import CliRunner

from bench_suite.cli.app import app


def invoke(*args):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "--plugin", "neuron=mtt"], "unknown neuron 'mtt' — did you mean 'mt'?"),
        (["run", "--plugin", "neuron"], "is not of the form KIND=NAME"),
        (["run", "--plugin", "neurons=mt"], "unknown kind 'neurons'"),
        (["run", "--plugin", "norm=cw(percentile=5)"], "percentile must be between 50 and 100"),
        (["run", "--plugin", "norm=cw(percentil=99)"], "did you mean 'percentile'"),
        (["run", "--plugin", "neuron=mt(thresholds=optimal:x)"], "thresholds must be"),
        (["run", "--dataset", "drivee"], "unknown dataset 'drivee'"),
        (["run", "-T", "0"], "must be at least 1"),
        (["run", "-T", "ten"], "is not a whole number"),
        (["run", "--seeds", "x"], "--seeds 'x' is neither a count"),
        (["run", "--set", "ann_epoch=3"], "did you mean 'ann_epochs'"),
        (["run", "--set", "ann_epochs=-1"], "must be positive"),
        (["run", "--set", "ann_epochs"], "is not KEY=VALUE"),
        (["run", "--grid", "em"], "use it with --suite NAME"),
        (["run", "--suite", "spiking-unet/table7", "--grid", "emm"], "no grid 'emm' — did you mean 'em'?"),
        (["list", "neuronz"], "unknown kind 'neuronz'"),
    ],
)
def test_error_is_one_sentence_and_non_zero_exit(args, expected, tmp_path):
    code, output = invoke(*args, *(["--results", str(tmp_path)] if args[0] in ("run", "report") else []))
    assert code != 0
    assert expected in output
    assert "Traceback" not in output
    assert len([line for line in output.splitlines() if line.startswith("error:")]) == 1


def test_report_without_store_and_with_unknown_run(tmp_path):
    code, output = invoke("report", "--results", str(tmp_path))
    assert code != 0 and "no results store" in output and "Traceback" not in output
    from bench_suite.results.store import ResultStore

    with ResultStore(tmp_path) as store:
        store.create_run({"x": 1}, {})
    code, output = invoke("report", "nope-123", "--results", str(tmp_path))
    assert code != 0 and "nope-123" in output and "Traceback" not in output


def test_resume_unknown_run_and_resume_with_grid_options(tmp_path):
    code, output = invoke("run", "--resume", "missing-run", "--results", str(tmp_path))
    assert code != 0 and "missing-run" in output
    code, output = invoke("run", "--resume", "x", "-T", "5", "--results", str(tmp_path))
    assert code != 0 and "give no other grid option" in output


def test_unknown_option_is_a_usage_error():
    code, output = invoke("run", "--frobnicate")
    assert code == 2 and "No such option" in output and "Traceback" not in output


def test_list_shows_builtins_with_distribution():
    code, output = invoke("list", "neurons")
    assert code == 0
    assert "mt" in output and "bench-suite" in output and "Multi-threshold" in output
