"""Suites through the CLI: listed, run at the smoke profile, tables (CSV, LaTeX, Markdown) and figures."""

import io

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench_suite.cli.app import app

SPEC_SUITES = ["spiking-unet/table1", "spiking-unet/table2", "spiking-unet/table3", "spiking-unet/table4",
               "spiking-unet/table5", "spiking-unet/table6", "spiking-unet/table7", "three-stage/table1",
               "three-stage/table2", "three-stage/table3", "three-stage/table5", "three-stage/fig6a"]


def invoke(*args):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_list_suites_lists_every_spec_suite():
    output = invoke("list", "suites")
    for name in SPEC_SUITES:
        assert name in output


@pytest.mark.parametrize("name", SPEC_SUITES)
def test_suite_runs_at_smoke_and_writes_tables_and_figures(name, tmp_path, compile_latex):
    results = tmp_path / "results"
    output = invoke("run", "--suite", name, "--profile", "smoke", "--results", str(results),
                    "--data-root", str(tmp_path / "data"))
    run_id = next(line for line in output.splitlines() if line.startswith("run id: ")).split(": ")[1]
    folder = results / run_id
    for file in ("table.csv", "table.tex", "table.md"):
        assert (folder / file).stat().st_size > 0
    assert list(folder.glob("*.png")) and list(folder.glob("*.pdf"))
    compile_latex((folder / "table.tex").read_text())
    latex = invoke("report", run_id, "--format", "latex", "--caption", "A caption_with #specials", "--label",
                   "tab:x", "--results", str(results))
    assert "\\caption{A caption\\_with \\#specials}" in latex and "\\label{tab:x}" in latex
    compile_latex(latex)
    csv = pd.read_csv(io.StringIO(invoke("report", run_id, "--format", "csv", "--results", str(results))))
    assert not csv.empty
    if name == "spiking-unet/table6":
        text = (folder / "table.md").read_text()
        assert "| method | demo-vessels F1 | demo-vessels ANN MACs | demo-vessels SOPs |" in text


def test_baseline_report_names_the_test(tmp_path):
    results = tmp_path / "results"
    invoke("run", "--suite", "spiking-unet/table7", "--profile", "smoke", "--results", str(results),
           "--data-root", str(tmp_path / "data"))
    output = invoke("report", "--baseline", "neuron=mt", "--results", str(results))
    header = next(line for line in output.splitlines() if line.startswith("| dataset |"))
    assert header == "| dataset | method | vs | metric | test | n | p | p (Holm) | effect [95% CI] | reason |"
    assert "| demo-vessels(n_test=5) | asf ml cw T=2 | asf mt cw T=2 | F1 |" in output
    paper = invoke("report", "--baseline", "neuron=mt", "--stats", "paper", "--results", str(results))
    assert paper != output
