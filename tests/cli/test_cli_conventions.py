"""The command line follows the conventions of its kind: choices checked by the parser, every default and
metavar in --help, --version and a global --debug, stdout for the result and stderr for the rest, hints
that work when pasted, `list` in the syntax --plugin takes, and nothing stored before the options are valid."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bench_suite.cli.app import app, run_command_summary
from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.params import build_params, describe_params, parse_plugin_option
from bench_suite.core.registry import get_registry
from bench_suite.experiment.suite import Suite, load_suite


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("args", [
    ["run", "--profile", "fast"],
    ["run", "--precision", "fp8"],
    ["run", "--cluster", "pbs"],
    ["report", "--format", "pdf"],
    ["report", "--test", "welch"],
    ["report", "--family", "column"],
    ["report", "--stats", "bayes"],
])
def test_choices_are_checked_by_the_parser_before_anything_is_stored(args, tmp_path):
    result = invoke(*args, "--results", tmp_path / "r")
    assert result.exit_code == 2 and "is not one of" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args", [
    ["--set", "ann_epoch=3"],  # a typo in a profile key
    ["--plugin", "neuron=mtt"],
    ["--dataset", "demo-vessels", "--set", "max_patches=-1"],
    ["--suite", "spiking-unet/table7", "--set", "asf_epoch=1"],
    ["--suite", "spiking-unet/table7", "--grid", "emm"],
])
def test_invalid_options_leave_no_store_behind(args, tmp_path):
    result = invoke("run", *args, "--profile", "smoke", "--results", tmp_path / "r")
    assert result.exit_code != 0 and "error:" in result.output
    assert not (tmp_path / "r" / "bench-suite.sqlite").exists()


def test_version_and_global_debug():
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"bench-suite {version('bench-suite')}"
    result = invoke("--debug", "report", "--results", "/nonexistent/results")
    assert result.exit_code == 2 and "no results store" in result.output


def test_help_shows_metavars_choices_and_defaults():
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    text = result.output
    for option, shown in (("--plugin", "KIND=NAME"), ("--set", "KEY=VALUE"), ("--profile", "smoke|quick|paper"),
                          ("--precision", "fp32|bf16|fp16"), ("--results", "[default: results]")):
        line = next(line for line in text.splitlines() if option in line)
        assert shown in line, line
    deterministic = next(line for line in text.splitlines() if "--deterministic" in line)
    assert "<bool>" not in deterministic and "<list" not in text
    report = CliRunner().invoke(app, ["report", "--help"], env={"COLUMNS": "200"}).output
    assert "markdown|latex|csv" in report and "[default: markdown]" in report and "[default: table]" in report
    assert "--install-completion" in invoke("--help").output


def test_list_shows_parameters_as_plugin_options_that_parse_back():
    registry = get_registry()
    checked = 0
    for info in registry.list(None, "*"):
        text = describe_params(info.params_cls)
        if not text:
            continue
        plain = re.sub(r" \([^()]*\|[^()]*\)", "", text)  # drop the "(a|b)" choice hints
        if "…" in plain:
            continue  # a parameter without a default
        choice = parse_plugin_option(f"{info.kind}={info.name}({plain})")
        params = build_params(info.params_cls, dict(choice.params), f"{info.kind} '{info.name}'")
        assert params == info.params_cls(), (info.name, text)
        checked += 1
    assert checked >= 8
    output = invoke("list", "neurons").output
    assert "thresholds=[2.0,1.0,0.5,0.25]" in output and "reset=subtract (subtract|zero)" in output
    assert "'" not in output.split("parameters")[-1]  # no Python reprs


def test_suite_takes_set_overrides_and_stores_them():
    suite = load_suite("spiking-unet/table7").with_overrides({"asf_epochs": "2"})
    cells, spec = suite.plan("smoke")
    assert spec.overrides["asf_epochs"] == "2"
    stored = suite.spec_dict("smoke")
    assert stored["overrides"] == {"asf_epochs": "2"}
    assert all(s["overrides"]["asf_epochs"] == "2" for s in stored["specs"])
    resumed, _, resumed_spec = Suite.plan_stored(stored)
    assert resumed_spec.overrides["asf_epochs"] == "2"
    assert "--set asf_epochs=2" in run_command_summary(stored)
    with pytest.raises(BenchSuiteError, match="with --set"):
        load_suite("spiking-unet/table7").with_overrides({"asf_epochs": "-3"}).plan("smoke")


@pytest.mark.slow
def test_run_writes_only_the_table_to_stdout_and_pasteable_hints_to_stderr(tmp_path):
    """`bench-suite run … > t.md` through a real pipe: t.md holds the Markdown table and nothing else."""
    results = tmp_path / "my results"
    env = {**os.environ, "COLUMNS": "120"}
    with open(tmp_path / "t.md", "w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "bench_suite", "run", "--profile", "smoke", "-d", "demo-vessels",
             "-p", "trainer=ann", "--results", str(results)],
            stdout=out, stderr=subprocess.PIPE, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    table = (tmp_path / "t.md").read_text()
    lines = [line for line in table.splitlines() if line.strip()]
    assert lines[0].startswith("| dataset |") and "| demo-vessels | ann |" in table
    assert all(line.startswith("|") for line in lines[:-1]) and lines[-1].startswith("Mean ± std")  # its legend
    assert "run id" not in table and "report:" not in table
    assert "run id:" in done.stderr
    hint = next(line for line in done.stderr.splitlines() if line.startswith("report:"))
    command = hint.split("report: ", 1)[1].split(" (or")[0]
    assert "--results" in command
    run_id = re.search(r"run id: (\S+)", done.stderr).group(1)
    args = shlex.split(command)[1:]  # the pasted command (as a shell splits it), minus the program name
    assert args[:2] == ["report", run_id] and args[args.index("--results") + 1] == str(results)
    pasted = CliRunner().invoke(app, args)
    assert pasted.exit_code == 0 and pasted.stdout.strip() == table.strip()  # the same table, from the store


def test_stored_spec_of_a_cli_run_has_no_enum_objects(tmp_path):
    from bench_suite.cli.app import Profile, build_spec

    spec, _ = build_spec([], ["demo-vessels"], [], None, Profile.smoke.value, [], None)
    assert type(dataclasses.asdict(spec)["profile"]) is str
