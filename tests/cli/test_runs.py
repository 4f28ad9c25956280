"""`bench-suite runs`: every run newest first with its options in CLI syntax, cell counts and status."""

import json
import re
import shlex

import pytest
from typer.testing import CliRunner

from bench_suite.cli.app import app, build_spec, run_command_summary
from bench_suite.results.store import ResultStore

GRID = ["--plugin", "trainer=ann", "--plugin", "trainer=conv", "--plugin", "neuron=if", "--profile", "smoke"]


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def spec_of(args: list[str]) -> dict:
    """The stored spec `run ARGS` creates (build_spec is what `run` calls)."""
    options: dict[str, list[str]] = {}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        options.setdefault(flag, []).append(value)
    spec, _ = build_spec(options.get("--plugin", []), options.get("--dataset", []), options.get("-T", []),
                         (options.get("--seeds") or [None])[0], (options.get("--profile") or [None])[0],
                         options.get("--set", []), None,
                         int(options["--folds"][0]) if "--folds" in options else None)
    return spec.to_dict()


def _cells(store, run_id, statuses, spec):
    keys = [json.dumps({"cell": i}) for i in range(len(statuses))]
    store.plan_cells(run_id, [(key, f"cell {i}") for i, key in enumerate(keys)])
    for key, status in zip(keys, statuses, strict=True):
        if status == "pending":
            continue
        cell = store.start_cell(run_id, key, {"cell": key})
        if status == "done":
            store.finish_cell(cell, sample_metrics=[("a", "f1", 0.5)])
        elif status == "failed":
            store.fail_cell(cell, "boom", "Traceback ...")


def _row(output: str, run_id: str) -> list[str]:
    line = next(line for line in output.splitlines() if run_id in line)
    return [cell.strip() for cell in re.split("[│┃]", line.strip("│┃ "))]


def test_runs_lists_newest_first_with_done_failed_pending_and_status(tmp_path):
    results = tmp_path / "results"
    spec = spec_of(GRID)
    with ResultStore(results) as store:
        finished = store.create_run(spec, {})
        _cells(store, finished, ["done", "done"], spec)
        store.set_run_status(finished, "done")
        interrupted = store.create_run(spec_of([*GRID, "-T", "10", "-T", "20", "--seeds", "2"]), {})
        _cells(store, interrupted, ["done", "failed", "pending", "pending", "pending"], spec)
        store.set_run_status(interrupted, "interrupted")
        running = store.create_run(spec_of(["--dataset", "demo-vessels(size=64)", "--set", "ann_epochs=1"]), {})
        _cells(store, running, ["running", "pending", "pending"], spec)
    code, output = invoke("runs", "--results", results)
    assert code == 0, output
    order = [run_id for run_id in re.findall(r"\d{8}-\d{6}-[0-9a-f]{4}", output)]
    assert order == [running, interrupted, finished]
    header = _row(output, "run id")
    assert header == ["run id", "started (UTC)", "command", "done", "failed", "pending", "status"]
    assert _row(output, finished)[3:] == ["2", "0", "0", "done"]
    assert _row(output, interrupted)[3:] == ["1", "1", "3", "interrupted"]
    assert _row(output, running)[3:] == ["0", "0", "3", "running"]  # the running cell is not finished yet
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", _row(output, finished)[1])
    assert f"bench-suite show RUN_ID --results {results}" in output
    assert f"bench-suite run --resume RUN_ID --results {results}" in output


@pytest.mark.parametrize("args", [
    GRID,
    [*GRID, "--set", "ann_epochs=1", "--set", "patches_per_image=4"],
    ["--plugin", "neuron=if", "--plugin", "neuron=mt", "-T", "10", "-T", "50", "--seeds", "3"],
    ["--plugin", "neuron=mt(thresholds=[2,1,0.5])", "--plugin", "norm=lw", "--seeds", "0,7"],
    ["--seeds", "5,"],
    ["--dataset", "hippocampus(labels=three-class)", "--plugin", "trainer=three-stage", "--plugin", "neuron=if",
     "--folds", "5", "-T", "20"],
    ["--dataset", "em(n_test=5)", "--dataset", "demo-vessels", "--plugin", "model=unet2d(width=8)"],
])
def test_the_command_summary_is_the_run_options_in_cli_syntax(args):
    spec = spec_of(args)
    summary = run_command_summary(spec)
    assert spec_of(shlex.split(summary)) == spec  # pasted back into `run`, it gives the same grid


def test_summaries_read_as_typed():
    assert run_command_summary(spec_of(GRID)) == "--plugin trainer=ann --plugin trainer=conv --plugin neuron=if " \
                                                 "--profile smoke"
    assert run_command_summary(spec_of([])) == "(the demo: no options)"
    folds = run_command_summary(spec_of(["--dataset", "hippocampus", "--folds", "5"]))
    assert folds == "--dataset hippocampus --folds 5"
    assert run_command_summary(spec_of(["--plugin", "neuron=mt(thresholds=[2,1])"])) == \
        "--plugin 'neuron=mt(thresholds=[2,1])'"


def test_a_suite_run_shows_the_suite_and_its_grids():
    from bench_suite.experiment.suite import load_suite

    suite = load_suite("spiking-unet/table7")
    assert run_command_summary(suite.spec_dict("smoke")) == "--suite spiking-unet/table7 --profile smoke"
    cut = suite.only_grids(["em"]).spec_dict("quick", seeds=[0, 1])
    assert run_command_summary(cut) == "--suite spiking-unet/table7 --grid em --seeds 2 --profile quick"


def test_an_empty_store_and_a_missing_one(tmp_path):
    ResultStore(tmp_path / "empty").close()
    code, output = invoke("runs", "--results", tmp_path / "empty")
    assert code == 0 and output.startswith(f"no runs yet in {tmp_path / 'empty'}; start one with bench-suite run")
    code, output = invoke("runs", "--results", tmp_path / "absent")
    assert code != 0 and "Traceback" not in output and not (tmp_path / "absent").exists()
    assert len([line for line in output.splitlines() if line.startswith("error:")]) == 1
