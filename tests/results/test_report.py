"""Reports from a hand-made store: tidy frames, pooled metrics, summaries over seeds, rendered tables."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.metric_info import METRICS, MetricInfo
from bench_suite.results.frames import summarize_cells, summary_table, tidy_frame
from bench_suite.results.render import render_latex, render_markdown, write_report
from bench_suite.results.store import ResultStore

# per-image F1 by (cell, seed); chosen so means and stds are easy by hand
F1 = {
    ("ann", 0): (0.80, 0.82),
    ("ann", 1): (0.78, 0.80),
    ("mt", 0): (0.84, 0.86),
    ("mt", 1): (0.86, 0.88),
    ("rs", 0): (0.70, 0.72),
    ("rs", 1): (0.72, 0.74),
}
# confusion counts per image, the same in every cell: summed tp=4, fp=1, fn=2, tn=9
COUNTS = {"img1": {"tp": 3, "fp": 1, "fn": 2, "tn": 4}, "img2": {"tp": 1, "fp": 0, "fn": 0, "tn": 5}}


def cell_config(kind: str, seed: int, dataset: str = "drive") -> dict:
    ann = kind == "ann"
    return {
        "dataset": dataset,
        "model": "unet",
        "neuron": "-" if ann else kind,
        "norm": "-" if ann else "cw",
        "trainer": "ann" if ann else "asf",
        "T": 0 if ann else 10,
        "seed": seed,
        "profile": "smoke",
        "neuron_params": {},
    }


def sample_rows(f1: tuple[float, float]) -> list[tuple[str, str, float]]:
    rows = []
    for sample, value in zip(COUNTS, f1, strict=True):
        rows.append((sample, "f1", value))
        rows += [(sample, name, float(count)) for name, count in COUNTS[sample].items()]
    return rows


@pytest.fixture
def store(tmp_path: Path):
    with ResultStore(tmp_path / "results") as opened:
        yield opened


@pytest.fixture
def run_id(store: ResultStore) -> str:
    run_id = store.create_run({"suite": "test"}, {})
    for (kind, seed), f1 in F1.items():
        cell_id = store.start_cell(run_id, f"{kind}/{seed}", cell_config(kind, seed))
        store.finish_cell(cell_id, sample_metrics=sample_rows(f1))
    failed = store.start_cell(run_id, "ml/0", cell_config("ml", 0))
    store.fail_cell(failed, "simulation diverged: membrane potential is NaN in layer enc3\nmore detail", "tb")
    store.start_cell(run_id, "ml/1", cell_config("ml", 1))  # still running: never reported
    return run_id


def test_tidy_csv_columns_and_rows(store: ResultStore, run_id: str) -> None:
    text = write_report(store, run_id, "csv")
    tidy = pd.read_csv(io.StringIO(text))
    assert list(tidy.columns) == [
        "dataset",
        "model",
        "neuron",
        "norm",
        "trainer",
        "T",
        "variant",
        "seed",
        "fold",
        "metric",
        "value",
        "n",
    ]
    # hidden confusion counts are left out; pooled metrics come in
    assert set(tidy["metric"]) == {"f1", "f1_pooled", "jaccard_pooled", "accuracy_pooled"}
    assert set(tidy["neuron"]) == {"-", "mt", "rs"}  # failed and running cells are not in the data
    assert len(tidy) == 6 * 4
    mt0 = tidy[(tidy["neuron"] == "mt") & (tidy["seed"] == 0) & (tidy["metric"] == "f1")]
    assert mt0["value"].item() == pytest.approx(0.85)
    assert mt0["n"].item() == 2


def test_pooled_metrics_from_summed_counts(store: ResultStore, run_id: str) -> None:
    tidy = tidy_frame(store, run_id)
    pooled = tidy[(tidy["neuron"] == "rs") & (tidy["seed"] == 1)].set_index("metric")
    assert pooled.loc["f1_pooled", "value"] == pytest.approx(8 / 11)
    assert pooled.loc["jaccard_pooled", "value"] == pytest.approx(4 / 7)
    assert pooled.loc["accuracy_pooled", "value"] == pytest.approx(13 / 16)
    assert pooled.loc["f1_pooled", "n"] == 2


def test_pooled_f1_of_a_single_sample() -> None:
    keys = {
        "dataset": "d",
        "model": "m",
        "neuron": "mt",
        "norm": "cw",
        "trainer": "asf",
        "T": 4,
        "variant": "",
        "seed": 0,
        "fold": -1,
        "sample": "s",
        "n": 1,
    }
    per_sample = pd.DataFrame(
        [keys | {"metric": name, "value": value} for name, value in {"tp": 3.0, "fp": 1.0, "fn": 2.0}.items()]
    )
    cells = summarize_cells(per_sample).set_index("metric")
    assert cells.loc["f1_pooled", "value"] == pytest.approx(6 / 9)
    assert cells.loc["jaccard_pooled", "value"] == pytest.approx(3 / 6)
    assert "accuracy_pooled" not in cells.index  # needs tn


def test_summary_means_and_stds_over_seeds(store: ResultStore, run_id: str) -> None:
    summary = summary_table(tidy_frame(store, run_id))
    assert summary.index.names == ["dataset", "trainer", "neuron", "norm", "T", "variant"]
    assert [key[2] for key in summary.index] == ["-", "mt", "rs"]  # ANN first
    mt = summary.loc[("drive", "asf", "mt", "cw", 10, "")]
    assert mt[("f1", "mean")] == pytest.approx(0.86)
    assert mt[("f1", "std")] == pytest.approx(math.sqrt(2 * 0.01**2))  # sample std of 0.85, 0.87
    assert mt[("f1", "n")] == 2
    ann = summary.loc[("drive", "ann", "-", "-", 0, "")]
    assert ann[("f1", "mean")] == pytest.approx(0.80)
    assert "tp" not in summary.columns.get_level_values("metric")
    # per-sample input gives the same summary
    pd.testing.assert_frame_equal(summary, summary_table(tidy_frame(store, run_id, per_sample=True)))


def test_per_sample_mode(store: ResultStore, run_id: str) -> None:
    tidy = tidy_frame(store, run_id, per_sample=True)
    for column in ["dataset", "neuron", "norm", "trainer", "T", "seed", "sample", "metric", "value", "n"]:
        assert column in tidy.columns
    assert set(tidy["n"]) == {1}
    assert {"tp", "fp", "fn", "tn", "f1"} == set(tidy["metric"])
    assert len(tidy) == 6 * 2 * 5
    csv = pd.read_csv(io.StringIO(write_report(store, run_id, "csv", per_sample=True)))
    assert "sample" in csv.columns


def test_markdown_bold_best_ann_dash_and_failed_cell(store: ResultStore, run_id: str) -> None:
    text = write_report(store, run_id, "markdown")
    lines = text.splitlines()
    assert lines[0].startswith("| dataset | trainer | neuron | norm | T | F1 |")
    ann = next(line for line in lines if "| ann |" in line)
    assert "| - | - | - |" in ann  # neuron, norm and T
    mt = next(line for line in lines if "| mt |" in line)
    assert "**0.860 ± 0.014**" in mt
    rs = next(line for line in lines if "| rs |" in line)
    assert "0.720 ± 0.014" in rs and "**0.720" not in rs
    failed = next(line for line in lines if "| ml |" in line)
    assert "failed (seed 0): simulation diverged" in failed
    assert "more detail" not in failed
    assert lines.index(ann) < lines.index(mt) < lines.index(rs) < lines.index(failed)


def test_latex_booktabs_bold_and_escaping(store: ResultStore, run_id: str) -> None:
    text = write_report(store, run_id, "latex")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in text
    header = next(line for line in text.splitlines() if line.startswith("dataset &"))
    f1 = header.split(" & ").index("F1")
    mt = next(line for line in text.splitlines() if line.startswith("drive & asf & mt")).split(" & ")
    assert mt[f1] == r"\textbf{\boldmath$0.860 \pm 0.014$}"
    rs = next(line for line in text.splitlines() if line.startswith("drive & asf & rs")).split(" & ")
    assert rs[f1] == r"$0.720 \pm 0.014$"
    assert r"\emph{failed (seed 0): simulation diverged" in text
    assert "F1 (pooled)" in text


def test_single_seed_shows_mean_only_and_escapes(store: ResultStore) -> None:
    run_id = store.create_run({}, {})
    for kind, ssim, psnr in [("mt", 0.81, 28.714), ("rs", 0.79, 28.9)]:
        config = cell_config(kind, 0, dataset="bsd_68")
        cell_id = store.start_cell(run_id, kind, config)
        store.finish_cell(cell_id, sample_metrics=[("a", "ssim", ssim), ("a", "psnr", psnr)])
    summary = summary_table(tidy_frame(store, run_id))
    latex = render_latex(summary)
    assert r"dataset & trainer & neuron & norm & $T$ & PSNR & SSIM \\" in latex
    assert r"bsd\_68 & asf & mt & cw & 10 & 28.71 & \textbf{0.810} \\" in latex
    assert r"bsd\_68 & asf & rs & cw & 10 & \textbf{28.90} & 0.790 \\" in latex
    markdown = render_markdown(summary)
    assert "| bsd_68 | asf | mt | cw | 10 | 28.71 | **0.810** |" in markdown


def test_lower_is_better_metrics_bold_the_minimum(store: ResultStore, monkeypatch) -> None:
    monkeypatch.setitem(METRICS, "hd95", MetricInfo("HD95", higher_is_better=False, decimals=2))
    run_id = store.create_run({}, {})
    for kind, hd95 in [("mt", 3.5), ("rs", 2.25)]:
        cell_id = store.start_cell(run_id, kind, cell_config(kind, 0))
        store.finish_cell(cell_id, sample_metrics=[("a", "hd95", hd95)])
    markdown = write_report(store, run_id, "markdown")
    assert "| rs | cw | 10 | **2.25** |" in markdown
    assert "| mt | cw | 10 | 3.50 |" in markdown


def test_nan_stays_nan(store: ResultStore) -> None:
    run_id = store.create_run({}, {})
    cell_id = store.start_cell(run_id, "k", cell_config("mt", 0))
    store.finish_cell(
        cell_id,
        sample_metrics=[
            ("a", "miou", math.nan),
            ("b", "miou", math.nan),
            ("a", "f1", math.nan),
            ("b", "f1", 0.5),
        ],
    )
    tidy = tidy_frame(store, run_id).set_index("metric")
    assert math.isnan(tidy.loc["miou", "value"]) and tidy.loc["miou", "n"] == 0
    assert tidy.loc["f1", "value"] == 0.5 and tidy.loc["f1", "n"] == 1
    assert "NaN" in write_report(store, run_id, "csv")
    assert "| NaN |" in write_report(store, run_id, "markdown")


def test_parameter_variants_get_their_own_rows(store: ResultStore) -> None:
    run_id = store.create_run({}, {})
    for thresholds, value in [(2, 0.6), (4, 0.8)]:
        config = cell_config("mt", 0) | {"neuron_params": {"thresholds": thresholds}}
        cell_id = store.start_cell(run_id, f"t{thresholds}", config)
        store.finish_cell(cell_id, sample_metrics=[("a", "f1", value)])
    summary = summary_table(tidy_frame(store, run_id))
    assert list(summary.index.get_level_values("variant")) == ["neuron.thresholds=2", "neuron.thresholds=4"]
    assert list(summary[("f1", "mean")]) == [0.6, 0.8]


def test_no_finished_cells_suggests_resume(store: ResultStore) -> None:
    run_id = store.create_run({}, {})
    failed = store.start_cell(run_id, "k", cell_config("mt", 0))
    store.fail_cell(failed, "boom", "tb")
    with pytest.raises(BenchSuiteError, match=f"no finished cells.*bench-suite run --resume {run_id}"):
        write_report(store, run_id, "markdown")


def test_write_report_creates_parent_folders(store: ResultStore, run_id: str, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "deep" / "table.tex"
    text = write_report(store, run_id, "latex", out)
    assert out.read_text(encoding="utf-8") == text
    with pytest.raises(BenchSuiteError, match="unknown report format 'html'"):
        write_report(store, run_id, "html")  # type: ignore[arg-type]


def test_penalised_subjects_are_counted_beside_hd95_and_assd(store: ResultStore) -> None:
    # issue 14: the empty-prediction penalty (the volume diagonal, 60 mm here) dominates a mean HD95, so
    # the report counts the subjects it was applied to
    run_id = store.create_run({}, {})
    config = cell_config("mt", 0, dataset="hippocampus") | {"model": "unet3d"}
    cell_id = store.start_cell(run_id, "k", config)
    rows = []
    for subject, (hd95, penalised) in {"s1": (2.0, 0.0), "s2": (60.0, 1.0), "s3": (3.0, 0.0)}.items():
        rows += [(subject, "hd95", hd95), (subject, "assd", hd95 / 2), (subject, "penalised", penalised)]
    store.finish_cell(cell_id, sample_metrics=rows)
    tidy = tidy_frame(store, run_id).set_index("metric")
    assert tidy.loc["penalised", "value"] == 1.0 and tidy.loc["penalised", "n"] == 3  # a count, not a mean
    assert tidy.loc["hd95", "value"] == pytest.approx(65 / 3)
    summary = summary_table(tidy.reset_index())
    assert list(summary.columns.get_level_values(0).unique()) == ["hd95", "assd", "penalised"]
    markdown = render_markdown(summary)
    assert "| HD95 (mm) | ASSD (mm) | empty pred. (count) |" in markdown and "| 21.67 | 10.83 | 1 |" in markdown


def test_report_command_options_reach_the_tests(store: ResultStore, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bench_suite.cli.app import app

    run_id = store.create_run({}, {})
    for kind, offset in (("mt", 0.0), ("rs", -0.02)):
        cell_id = store.start_cell(run_id, kind, cell_config(kind, 0))
        values = [0.8 + offset + 0.01 * ((i * 7) % 5) for i in range(8)]
        store.finish_cell(cell_id, sample_metrics=[(f"img{i}", "f1", v) for i, v in enumerate(values)])
    rs_missing = store.start_cell(run_id, "rs-drive2", cell_config("rs", 0, dataset="em"))
    store.finish_cell(rs_missing, sample_metrics=[(f"s{i}", "f1", 0.7) for i in range(3)])
    mt_em = store.start_cell(run_id, "mt-em", cell_config("mt", 0, dataset="em"))
    store.finish_cell(mt_em, sample_metrics=[(f"s{i}", "f1", 0.72 + 0.01 * i) for i in range(4)])
    results = str(store.results_dir)

    def report(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["report", run_id, "--baseline", "neuron=mt", "--results", results, *args])
        return result.exit_code, result.output

    code, output = report()
    assert code != 0 and "lacks s3" in output and "--allow-unmatched" in output  # em: RS has 3 of MT's 4 slices
    code, output = report("--allow-unmatched", "--test", "permutation", "--alternative", "less", "--family",
                          "dataset", "--format", "csv")
    assert code == 0, output
    frame = pd.read_csv(io.StringIO(output))
    assert set(frame["test"]) == {"sign-flip permutation"} and set(frame["alternative"]) == {"less"}
    assert set(frame["family_size"]) == {1} and frame["unmatched"].fillna("").str.contains("lacks s3").any()
    code, output = report("--test", "welch")
    assert code == 2 and "'welch' is not one of" in output  # the parser checks the choice
