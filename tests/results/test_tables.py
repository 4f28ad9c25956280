"""Suite tables from hand-made frames: the paper layout, published values beside measured ones,
significance marks only where a method clearly differs from the baseline, and the three renderers."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.tasks import stable_seed
from bench_suite.experiment.suite import load_suite
from bench_suite.results.frames import CELL_COLUMNS
from bench_suite.results.render import (
    render_suite_csv,
    render_suite_latex,
    render_suite_markdown,
)
from bench_suite.results.store import ResultStore
from bench_suite.results.tables import (
    EFFECT_SIGN,
    TEST_COLUMNS,
    baseline_comparisons,
    suite_frames,
    suite_table,
    suite_tests,
)

N_SAMPLES = 20
# per-sample wiggle shared by every method: the methods differ by a constant plus a little noise
WIGGLE = 0.05 * np.sin(np.arange(N_SAMPLES))


def rows_for(dataset, trainer, neuron, norm, T, metric, level, seeds=(0, 1), noise=0.002, identical_to=None):
    rng = np.random.default_rng(stable_seed(dataset, trainer, neuron, metric))  # the same in every process
    rows = []
    for seed in seeds:
        values = level + WIGGLE + noise * rng.standard_normal(N_SAMPLES) if identical_to is None else identical_to
        for i, value in enumerate(values):
            cell = {"dataset": dataset, "model": "unet2d", "neuron": neuron, "norm": norm, "trainer": trainer,
                    "T": T, "variant": "", "seed": seed, "fold": -1}
            rows.append({**{k: cell[k] for k in CELL_COLUMNS}, "sample": f"img{i:02d}", "metric": metric,
                         "value": float(value), "n": 1})
    return rows


def table2_frame() -> pd.DataFrame:
    rows = []
    for dataset, T, metric in (("drive", 10, "f1"), ("em", 50, "f1"), ("camseq01", 20, "miou")):
        rows += rows_for(dataset, "ann", "-", "-", 0, metric, 0.80)
        for neuron, level in (("ml", 0.70), ("rs", 0.75), ("mt", 0.80)):
            rows += rows_for(dataset, "dt", neuron, "-", T, metric, level - 0.05)
            rows += rows_for(dataset, "asf", neuron, "cw", T, metric, level)
    return pd.DataFrame(rows)


def cell(table, method, *col, field="mean"):
    position = list(table.index.get_level_values("method")).index(method)
    return table[(*col, field)].iloc[position]


def test_table2_layout_values_and_published_numbers():
    per_sample = table2_frame()
    table = suite_table(load_suite("spiking-unet/table2"), per_sample, per_sample)
    assert list(table.index.get_level_values("method")) == [
        "U-Net", "ML+DT", "ML+FT", "RS+DT", "RS+FT", "MT+DT", "MT+FT"]
    assert list(table.index.names) == ["method", "neuron", "trainer"]
    groups = list(dict.fromkeys(c[:-1] for c in table.columns))
    assert groups == [("drive", "f1"), ("em", "f1"), ("camseq01", "miou")]
    assert cell(table, "ML+FT", "drive", "f1") == pytest.approx(0.70, abs=0.01)
    assert cell(table, "ML+FT", "drive", "f1", field="n") == 2  # two seeds
    assert cell(table, "U-Net", "drive", "f1", field="paper") == 0.806
    assert cell(table, "MT+FT", "drive", "f1", field="paper") == 0.794
    assert cell(table, "RS+FT", "drive", "f1", field="paper") == 0.771
    assert cell(table, "ML+FT", "drive", "f1", field="paper") == 0.740
    assert cell(table, "MT+FT", "em", "f1", field="paper") == 0.947
    assert cell(table, "MT+FT", "camseq01", "miou", field="paper") == 0.651
    assert math.isnan(cell(table, "MT+DT", "drive", "f1", field="paper"))  # no invented numbers
    assert math.isnan(cell(table, "RS+FT", "em", "f1", field="paper"))


def test_table2_marks_clear_differences_and_not_equal_methods():
    per_sample = table2_frame()
    table = suite_table(load_suite("spiking-unet/table2"), per_sample, per_sample)
    assert cell(table, "ML+FT", "drive", "f1", field="mark") == "***"  # 0.10 below the ANN on 20 samples
    assert cell(table, "MT+FT", "drive", "f1", field="mark") == ""  # same level as the ANN
    assert cell(table, "U-Net", "drive", "f1", field="mark") == ""  # the baseline itself
    tests = suite_tests(table)
    assert list(tests.columns) == [*TEST_COLUMNS, "column"]
    per_sample = tests[tests["level"] == "per-sample"]
    assert len(per_sample) == 18  # 6 spiking rows × 3 datasets, one Holm family per level
    assert (tests["level"] == "replicate").sum() == 18  # two seeds: the replicate-level test beside each
    assert set(per_sample["family_size"]) == {18}
    assert (tests["p_holm"] >= tests["p"]).all()
    ml = per_sample[(per_sample["method"] == "ML+FT") & (per_sample["dataset"] == "drive")].iloc[0]
    assert ml["baseline"] == "U-Net" and ml["direction"] == "worse" and ml["test"] == "Student t-test"
    assert "Shapiro" in ml["reason"] and ml["effect"] < 0 and ml["difference"] == pytest.approx(-0.10, abs=0.01)


def test_identical_values_get_no_mark():
    base = rows_for("drive", "asf", "mt", "cw", 10, "f1", 0.80)
    same = [dict(r, neuron="rs") for r in base]
    worse = rows_for("drive", "asf", "ml", "cw", 10, "f1", 0.70)
    per_sample = pd.DataFrame(base + same + worse)
    table = suite_table(load_suite("spiking-unet/table7"), per_sample, per_sample)
    assert list(table.index.get_level_values("method")) == ["MT+FT", "ML+FT", "RS+FT"]
    assert cell(table, "RS+FT", "drive", "f1", field="mark") == ""
    assert cell(table, "ML+FT", "drive", "f1", field="mark") != ""
    tests = suite_tests(table)
    tests = tests[tests["level"] == "per-sample"].set_index("method")
    assert tests.loc["RS+FT", "test"] == "none" and "identical" in tests.loc["RS+FT", "reason"]
    assert tests.loc["ML+FT", "baseline"] == "MT+FT"


def test_table7_layout_published_and_paper_statistics():
    rows = []
    for dataset, T, metric in (("drive", 10, "f1"), ("em", 50, "f1"), ("camseq01", 20, "miou")):
        for neuron, level in (("mt", 0.80), ("ml", 0.74), ("rs", 0.77)):
            rows += rows_for(dataset, "asf", neuron, "cw", T, metric, level)
    per_sample = pd.DataFrame(rows)
    suite = load_suite("spiking-unet/table7")
    table = suite_table(suite, per_sample, per_sample, stats="paper")
    assert list(table.index.get_level_values("method")) == ["MT+FT", "ML+FT", "RS+FT"]
    assert cell(table, "MT+FT", "drive", "f1", field="paper") == 0.794
    assert cell(table, "ML+FT", "drive", "f1", field="paper") == 0.740
    assert math.isnan(cell(table, "ML+FT", "em", "f1", field="paper"))
    tests = suite_tests(table)
    tests = tests[tests["level"] == "per-sample"]
    assert len(tests) == 6
    assert set(tests["test"]) == {"Student t-test"}  # normal groups: the procedure picks the t-test
    assert set(tests["alternative"]) == {"less"}  # one-sided: the method below the baseline (MT+FT)
    assert all("paper procedure, unpaired" in r and "diagnostic" in r for r in tests["reason"])
    assert (tests["effect"] < 0).all()  # worse than the baseline: negative, as in paired mode
    # the paper's unpaired test sees the 0.06 gap through the per-image spread (sd 0.035): still significant
    assert cell(table, "ML+FT", "drive", "f1", field="mark") != ""


def test_without_per_sample_frame_there_are_no_marks():
    per_sample = table2_frame()
    table = suite_table(load_suite("spiking-unet/table2"), per_sample)
    assert suite_tests(table).empty
    assert set(table.xs("mark", axis=1, level="field").to_numpy().ravel()) <= {""}


def test_a_run_without_the_suites_metrics_is_a_clear_error():
    per_sample = pd.DataFrame(rows_for("drive", "asf", "mt", "cw", 10, "psnr", 30.0))
    with pytest.raises(BenchSuiteError, match="none of suite 'spiking-unet/table7'"):
        suite_table(load_suite("spiking-unet/table7"), per_sample)


def test_renderers():
    per_sample = table2_frame()
    table = suite_table(load_suite("spiking-unet/table2"), per_sample, per_sample)
    markdown = render_suite_markdown(table)
    assert "| method | DRIVE (T=10) F1 | DRIVE (T=10) F1 (paper) |" in markdown
    assert "| U-Net | **0.800 ± 0.000** | 0.806 | 0.800 ± 0.000 | 0.948 | **0.801 ± 0.000** | 0.620 |" in markdown
    assert "| ML+FT | 0.700 ± 0.000\\*\\*\\* | 0.740 | 0.700 ± 0.001\\*\\*\\* | – |" in markdown
    assert "\\*\\*\\*" in markdown and "Holm family 'per-sample: all': 18 tested comparisons" in markdown
    assert "Student t-test" in markdown and "mixed model" in markdown and "positive = the method is better" in markdown
    latex = render_suite_latex(table, label="tab:t2", tests=False)
    assert latex.count(r"\toprule") == 1 and r"\bottomrule" in latex and r"\label{tab:t2}" in latex
    with_tests = render_suite_latex(table, label="tab:t2")
    assert with_tests.count(r"\toprule") == 3 and r"\label{tab:t2-tests}" in with_tests  # + Friedman tests
    assert r"\label{tab:t2-friedman}" in with_tests
    assert "^{***}" in latex and r"\textbf{\boldmath$" in latex and "ours & paper" in latex
    assert r"\multicolumn{2}{c}{DRIVE (T=10)}" in latex
    frame = pd.read_csv(io.StringIO(render_suite_csv(table)))
    assert len(frame) == 7 * 3
    assert {"method", "dataset", "metric", "mean", "std", "n", "mark", "paper", "test", "p_holm"} <= set(frame.columns)
    assert {"reason", "test_n", "p", "family_size", "effect", "ci_low", "ci_high", "effect_sign", "normality_p",
            "replicate_test", "replicate_p", "replicate_p_holm", "replicate_df"} <= set(frame.columns)
    ml = frame[(frame["method"] == "ML+FT") & (frame["dataset"] == "drive")].iloc[0]
    assert ml["test"] == "Student t-test" and ml["p"] < 1e-3 and ml["effect"] < 0 and ml["effect_sign"] == EFFECT_SIGN
    assert ml["replicate_test"].startswith("mixed model") and ml["test_n"] == "20/20"
    drive_ann = frame[(frame["method"] == "U-Net") & (frame["dataset"] == "drive")].iloc[0]
    assert drive_ann["paper"] == 0.806


def test_folds_are_replicates_and_extra_dimensions_become_rows():
    rows = []
    for fold in range(3):
        for loss, level in (("bce", 0.80), ("dice", 0.82), ("bce-dice", 0.81)):
            for r in rows_for("hippocampus", f"three-stage(loss={loss})", "if", "-", 20, "dice", level, seeds=(0,)):
                rows.append({**r, "dataset": f"hippocampus(folds=3,fold={fold})", "fold": -1,
                             "sample": f"f{fold}-{r['sample']}"})
    # a second T for one loss: not named by the layout, so it must not be averaged in silently
    rows += [dict(r, T=40) for r in rows if r["trainer"] == "three-stage(loss=bce)"]
    per_sample = pd.DataFrame(rows)
    table = suite_table(load_suite("three-stage/table1"), per_sample, per_sample)
    assert "T" in table.index.names
    assert list(table.index.get_level_values("method"))[:2] == ["BCE T=20", "BCE T=40"]
    assert set(table.xs("n", axis=1, level="field").to_numpy().ravel()) == {3}  # three folds per cell
    assert table.columns[0][0] == "hippocampus"


def test_baseline_comparisons_for_any_run():
    per_sample = table2_frame()
    frame = baseline_comparisons(per_sample, "neuron=mt")
    assert list(frame.columns) == TEST_COLUMNS
    ml_ft = frame[(frame["method"] == "asf ml cw T=10") & (frame["metric"] == "f1")].iloc[0]
    assert ml_ft["baseline"] == "asf mt cw T=10" and ml_ft["mark"] == "***"
    ml_dt = frame[(frame["method"] == "dt ml T=10")].iloc[0]
    assert ml_dt["baseline"] == "dt mt T=10"  # the MT cell that agrees on trainer and T
    assert not frame["method"].str.startswith("ann").any()  # the ANN has no neuron to compare
    paper = baseline_comparisons(per_sample, "trainer=ann", stats="paper")
    paper = paper[paper["level"] == "per-sample"]
    assert len(paper) == 18 and paper["reason"].str.contains("paper procedure, unpaired").all()
    with pytest.raises(BenchSuiteError, match="no finished cell of this run has neuron matching 'lif'"):
        baseline_comparisons(per_sample, "neuron=lif")
    with pytest.raises(BenchSuiteError, match="not KIND=NAME"):
        baseline_comparisons(per_sample, "mt")
    with pytest.raises(BenchSuiteError, match="--stats paired or --stats paper"):
        baseline_comparisons(per_sample, "neuron=mt", stats="welch")
    with pytest.raises(BenchSuiteError, match="--test t, wilcoxon, permutation or auto"):
        baseline_comparisons(per_sample, "neuron=mt", test="welch")
    with pytest.raises(BenchSuiteError, match="--family table, dataset or metric"):
        baseline_comparisons(per_sample, "neuron=mt", family="column")


def test_suite_frames_add_energy_from_the_store(tmp_path):
    store = ResultStore(tmp_path)
    run_id = store.create_run({"suite": "spiking-unet/table6"}, {})
    cells = [
        ({"dataset": "drive", "model": "unet2d", "trainer": "ann", "neuron": "-", "norm": "-", "T": 0, "seed": 0},
         {"efficiency": {"ann_macs": 1e9, "ann_energy_pj": 4.6e9}}),
        ({"dataset": "drive", "model": "unet2d", "trainer": "asf", "neuron": "mt", "norm": "cw", "T": 10, "seed": 0},
         {"efficiency": {"ann_macs": 1e9, "snn_synops_per_sample": 2e8, "ann_energy_pj": 4.6e9,
                         "snn_energy_pj": 1.0e9, "energy_ratio": 1.0 / 4.6}}),
    ]
    for config, info in cells:
        cell_id = store.start_cell(run_id, str(config), config)
        store.finish_cell(cell_id, sample_metrics=[(f"img{i}", "f1", 0.8 + 0.01 * i) for i in range(4)], info=info)
    tidy, per_sample = suite_frames(store, run_id)
    table = suite_table(load_suite("spiking-unet/table6"), tidy, per_sample)
    assert cell(table, "U-Net (ANN)", "drive", "energy_uj") == pytest.approx(4600.0)
    assert cell(table, "MT+FT", "drive", "energy_uj") == pytest.approx(1000.0)
    assert cell(table, "MT+FT", "drive", "synops") == pytest.approx(2e8)
    assert math.isnan(cell(table, "MT+FT", "drive", "macs"))
    markdown = render_suite_markdown(table)
    assert "Energy (µJ)" in markdown and "**1000.00**" in markdown  # lower energy is better
    store.close()


def test_suite_table_keys_choose_the_procedure(tmp_path):
    from bench_suite.results.tables import suite_options

    text = (Path(load_suite("spiking-unet/table7").origin).read_text()
            .replace('baseline = "neuron=mt"', 'baseline = "neuron=mt"\nstats = "paired"\ntest = "wilcoxon"'))
    path = tmp_path / "mine.toml"
    path.write_text(text)
    options = suite_options(load_suite(str(path)))
    assert (options.stats, options.test) == ("paired", "wilcoxon")
    assert suite_options(load_suite("spiking-unet/table7")).stats == "paper"  # reproduces a paper
    assert suite_options(load_suite(str(path)), stats="paper").stats == "paper"  # the command line wins
    path.write_text(text.replace('test = "wilcoxon"', 'test = "welch"'))
    with pytest.raises(BenchSuiteError, match="table.test"):
        load_suite(str(path))


def test_metric_columns_gain_the_dataset_miou_and_the_penalty_count():
    from bench_suite.results.tables import _expand_metrics

    columns, published = _expand_metrics(["miou", "converted/hd95", "assd"],
                                         {"miou", "miou_pooled", "converted/hd95", "converted/penalised", "assd"})
    assert columns == ["miou_pooled", "miou", "converted/hd95", "converted/penalised", "assd"]
    assert published == {"miou_pooled": "miou", "miou": None, "converted/hd95": "converted/hd95",
                         "converted/penalised": None, "assd": "assd"}
    assert _expand_metrics(["miou"], {"miou"})[0] == ["miou"]  # a run without per-class counts
