"""Issue 14, one test per observation: hand-made stores and frames with known answers.

Each of these failed on the code before the issue: tables compared a method's own samples with a test on
the intersection, averaged unequal seed sets, let untested comparisons into the Holm family, took mIoU as a
mean of per-image values, pooled an all-empty test set as NaN, flipped the effect's sign between modes, never
ran Friedman, could not test one-sided, chose t or Wilcoxon from the data and ignored the training seeds.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from bench_suite.core.errors import BenchSuiteError
from bench_suite.experiment.suite import load_suite
from bench_suite.metrics.segmentation import multiclass_iou, pooled_binary_metrics
from bench_suite.results.frames import CELL_COLUMNS, summary_table, tidy_frame
from bench_suite.results.outputs import baseline_report, suite_report, write_suite_outputs
from bench_suite.results.render import render_suite_markdown
from bench_suite.results.store import ResultStore
from bench_suite.results.tables import EFFECT_SIGN, TestOptions, baseline_comparisons, suite_table, suite_tests

TABLE7 = "spiking-unet/table7"


def config(neuron: str, seed: int = 0, dataset: str = "drive", trainer: str = "asf", T: int = 10) -> dict:
    ann = neuron == "-"
    return {"dataset": dataset, "model": "unet2d", "neuron": neuron, "norm": "-" if ann else "cw",
            "trainer": "ann" if ann else trainer, "T": 0 if ann else T, "seed": seed, "profile": "quick"}


def add_cell(store: ResultStore, run_id: str, cfg: dict, rows: list[tuple[str, str, float]]) -> None:
    cell_id = store.start_cell(run_id, f"{cfg['neuron']}/{cfg['seed']}/{cfg['dataset']}", cfg)
    store.finish_cell(cell_id, sample_metrics=rows)


def frame_rows(neuron: str, values, seed: int = 0, metric: str = "f1", dataset: str = "drive", T: int = 10,
               names=None) -> list[dict]:
    cfg = config(neuron, seed, dataset, T=T)
    cell = {"dataset": dataset, "model": "unet2d", "neuron": neuron, "norm": cfg["norm"], "trainer": cfg["trainer"],
            "T": cfg["T"], "variant": "", "seed": seed, "fold": -1}
    names = names or [f"img{i:02d}" for i in range(len(values))]
    return [{**{k: cell[k] for k in CELL_COLUMNS}, "sample": name, "metric": metric, "value": float(v), "n": 1}
            for name, v in zip(names, values, strict=True)]


def cell(table, method, *col, field="mean"):
    position = list(table.index.get_level_values("method")).index(method)
    return table[(*col, field)].iloc[position]


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "results") as opened:
        yield opened


# -- 1. a method lacking a hard image was bold and "better" -------------------------------------------------


def missing_hard_image_run(store):
    run_id = store.create_run({"suite": TABLE7}, {})
    mt = [0.80 + 0.01 * i for i in range(9)] + [0.30]  # img09 is hard for everyone
    rs = [v - 0.01 for v in mt[:9]]  # worse than MT on every shared image, and img09 is missing
    add_cell(store, run_id, config("mt"), [(f"img{i:02d}", "f1", v) for i, v in enumerate(mt)])
    add_cell(store, run_id, config("rs"), [(f"img{i:02d}", "f1", v) for i, v in enumerate(rs)])
    return run_id


def test_a_method_missing_a_hard_image_is_refused_not_bold(store, compile_latex):
    run_id = missing_hard_image_run(store)
    suite = load_suite(TABLE7)
    with pytest.raises(BenchSuiteError, match=r"RS\+FT lacks img09.*--allow-unmatched"):
        suite_report(store, run_id, suite, "paired", "markdown")
    text = suite_report(store, run_id, suite, "paired", "markdown",
                        options=TestOptions(stats="paired", allow_unmatched=True))
    rs = next(line for line in text.splitlines() if line.startswith("| RS+FT |"))
    assert "†" in rs and "**" not in rs.split("|")[2]  # marked, and not bold although its own mean is higher
    assert "RS+FT (drive, f1): RS+FT lacks img09" in text
    tests = suite_tests(suite_table(suite, *_frames(store, run_id), allow_unmatched=True, stats="paired"))
    row = tests[tests["level"] == "per-sample"].iloc[0]
    assert row["n"] == 9 and row["direction"] == "worse" and row["effect"] < 0
    assert row["difference"] == pytest.approx(-0.01)
    latex = suite_report(store, run_id, suite, "paired", "latex", label="tab:u",
                         options=TestOptions(stats="paired", allow_unmatched=True))
    assert r"\ensuremath{\dagger}" in latex
    compile_latex(latex)


def _frames(store, run_id):
    from bench_suite.results.tables import suite_frames

    return suite_frames(store, run_id)


# -- 2. unequal seed sets were averaged per sample --------------------------------------------------------


def test_identical_networks_with_a_missing_seed_are_not_called_different():
    rng = np.random.default_rng(0)
    rows = []
    per_seed = {seed: 0.8 + 0.02 * seed + 0.01 * rng.standard_normal(12) for seed in (0, 1, 2)}
    for seed, values in per_seed.items():
        rows += frame_rows("mt", values, seed)
        if seed != 2:
            rows += frame_rows("rs", values, seed)  # the same network as MT; seed 2 never finished
    per_sample = pd.DataFrame(rows)
    suite = load_suite(TABLE7)
    with pytest.raises(BenchSuiteError, match=r"RS\+FT lacks seed 2 \(all 12 samples\)"):
        suite_table(suite, per_sample, per_sample, stats="paired")
    table = suite_table(suite, per_sample, per_sample, stats="paired", allow_unmatched=True)
    tests = suite_tests(table)
    assert set(tests["test"]) == {"none"} and set(tests["p"]) == {1.0}  # identical on the shared seeds
    assert cell(table, "RS+FT", "drive", "f1", field="mark") == "†"


# -- 3. comparisons without a test enlarged the Holm family -----------------------------------------------


def test_an_untested_comparison_leaves_the_holm_family_and_the_legend_counts_what_holm_used():
    base = 0.8 + 0.03 * np.sin(np.arange(10))
    rows = frame_rows("mt", base) + frame_rows("rs", base)  # RS = MT: identical, no test
    rows += frame_rows("ml", base - 0.004 + 0.004 * np.cos(np.arange(10) * 2.1))
    per_sample = pd.DataFrame(rows)
    table = suite_table(load_suite(TABLE7), per_sample, per_sample, stats="paired")
    tests = suite_tests(table).set_index("method")
    assert tests.loc["RS+FT", "test"] == "none" and math.isnan(tests.loc["RS+FT", "p_holm"])
    ml = tests.loc["ML+FT"]
    assert ml["p_holm"] == pytest.approx(ml["p"]) and ml["family_size"] == 1  # before: 2 × p
    markdown = render_suite_markdown(table)
    assert "Holm family 'per-sample: all': 1 tested comparison spanning column DRIVE (T=10) F1" in markdown
    assert "1 comparison without a test" in markdown


@pytest.mark.parametrize("family, sizes", [("table", {4}), ("dataset", {2}), ("metric", {1})])
def test_family_option_sets_the_holm_families(family, sizes):
    rows = []
    for dataset, metric in (("drive", "f1"), ("em", "f1")):
        base = 0.8 + 0.03 * np.sin(np.arange(10))
        rows += frame_rows("mt", base, dataset=dataset, metric=metric)
        rows += frame_rows("mt", base, dataset=dataset, metric="jaccard")
        rows += frame_rows("ml", base - 0.02 + 0.005 * np.cos(np.arange(10)), dataset=dataset, metric=metric)
        rows += frame_rows("ml", base - 0.03 + 0.005 * np.cos(np.arange(10)), dataset=dataset, metric="jaccard")
    frame = baseline_comparisons(pd.DataFrame(rows), "neuron=mt", family=family)
    assert set(frame["family_size"]) == sizes and len(frame) == 4


# -- 4. table mIoU was the mean of per-image mIoU ----------------------------------------------------------

# image 1: target 0 0 0 1, prediction 0 0 1 1 → IoU 2/3 (class 0) and 1/2 (class 1): mIoU 7/12
# image 2: target 1 1 1 1, prediction 1 1 1 1 → class 0 absent, class 1 IoU 1: mIoU 1
# one confusion matrix: class 0 tp 2 fp 0 fn 1 → 2/3; class 1 tp 5 fp 1 fn 0 → 5/6: mIoU 3/4, not 19/24
IMAGES = {"img1": (np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1])), "img2": (np.ones(4, int), np.ones(4, int))}


def miou_rows(shift: int = 0) -> list[tuple[str, str, float]]:
    rows = []
    for name, (pred, target) in IMAGES.items():
        metrics = multiclass_iou(np.roll(pred, shift), target, 2, with_counts=True)
        rows += [(name, key, value) for key, value in metrics.items()]
    return rows


def test_dataset_level_miou_comes_from_one_confusion_matrix(store):
    run_id = store.create_run({}, {})
    add_cell(store, run_id, config("mt", dataset="camseq01", T=20), miou_rows())
    tidy = tidy_frame(store, run_id).set_index("metric")
    assert tidy.loc["miou_pooled", "value"] == pytest.approx(3 / 4)
    assert tidy.loc["miou", "value"] == pytest.approx((7 / 12 + 1) / 2)
    summary = summary_table(tidy.reset_index())
    assert list(summary.columns.get_level_values(0).unique()) == ["miou_pooled", "miou"]  # side by side
    assert not any(m.startswith("iou_") for m in tidy.index)  # the per-class counts stay hidden


def test_suite_table_shows_dataset_miou_beside_the_per_image_mean_with_the_paper_value(store):
    run_id = store.create_run({"suite": TABLE7}, {})
    add_cell(store, run_id, config("mt", dataset="camseq01", T=20), miou_rows())
    add_cell(store, run_id, config("rs", dataset="camseq01", T=20), miou_rows(shift=1))
    table = suite_table(load_suite(TABLE7), *_frames(store, run_id))
    assert cell(table, "MT+FT", "camseq01", "miou_pooled") == pytest.approx(0.75)
    assert cell(table, "MT+FT", "camseq01", "miou_pooled", field="paper") == 0.651  # the paper's is dataset-level
    assert math.isnan(cell(table, "MT+FT", "camseq01", "miou", field="paper"))
    assert cell(table, "MT+FT", "camseq01", "miou") == pytest.approx(19 / 24)
    assert "mIoU (dataset)" in render_suite_markdown(table)
    assert set(suite_tests(table)["metric"]) == {"miou"}  # tests compare the per-image values


# -- 5. two pooled formulas disagreed on an all-empty test set --------------------------------------------


def test_all_empty_test_set_pools_like_the_metric_function(store):
    run_id = store.create_run({}, {})
    empty = {"tp": 0.0, "fp": 0.0, "fn": 0.0, "tn": 16.0}
    rows = [(name, key, value) for name in ("a", "b") for key, value in {"f1": 1.0, **empty}.items()]
    add_cell(store, run_id, config("mt"), rows)
    pooled = tidy_frame(store, run_id).set_index("metric")
    reference = pooled_binary_metrics(0, 0, 0, 32)
    assert pooled.loc["f1_pooled", "value"] == reference["f1_pooled"] == 1.0  # before: NaN here, 1.0 there
    assert pooled.loc["jaccard_pooled", "value"] == reference["jaccard_pooled"] == 1.0


# -- 6. outputs lacked test, reason, raw p, effect; the sign changed meaning; no Friedman; no one-sided -------


def two_seed_run(store, dataset="em", T=50, gap=-0.02):
    """MT (baseline), RS slightly worse, ML clearly worse, on 5 images and 2 seeds."""
    run_id = store.create_run({"suite": TABLE7}, {})
    rng = np.random.default_rng(1)
    level = 0.9 + 0.02 * np.sin(np.arange(5))
    for seed in (0, 1):
        for neuron, offset in (("mt", 0.0), ("rs", gap), ("ml", -0.06)):
            values = level + offset + 0.004 * rng.standard_normal(5)
            add_cell(store, run_id, config(neuron, seed, dataset, T=T),
                     [(f"slice{i}", "f1", float(v)) for i, v in enumerate(values)])
    return run_id


def test_every_output_names_test_reason_n_p_effect_and_ci(store, compile_latex):
    run_id = two_seed_run(store)
    suite = load_suite(TABLE7)
    csv = pd.read_csv(io.StringIO(suite_report(store, run_id, suite, None, "csv")))
    for column in ("test", "reason", "test_n", "p", "p_holm", "family_size", "effect_name", "effect", "ci_low",
                   "ci_high", "effect_sign", "normality_p", "replicate_test", "replicate_p", "replicate_p_holm"):
        assert column in csv.columns
    rs = csv[csv["method"] == "RS+FT"].iloc[0]
    assert rs["test"] == "Student t-test" and "paper procedure" in rs["reason"] and rs["effect_sign"] == EFFECT_SIGN
    assert rs["replicate_test"].startswith("mixed model")
    latex = suite_report(store, run_id, suite, None, "latex", label="tab:t7")
    for text in ("Student t-test", "mixed model", "Holm family", "positive = the method is better",
                 "Satterthwaite", "Shapiro--Wilk", "Friedman"):
        assert text in latex
    compile_latex(latex)
    baseline = baseline_report(store, run_id, "neuron=mt", None, "csv")
    frame = pd.read_csv(io.StringIO(baseline))
    assert {"test", "reason", "n", "p", "p_holm", "effect", "ci_low", "ci_high", "family", "level"} <= set(
        frame.columns)
    assert set(frame["level"]) == {"per-sample", "replicate"} and set(frame["test"]) >= {"paired t-test"}
    compile_latex(baseline_report(store, run_id, "neuron=mt", None, "latex", label="tab:b"))
    markdown = baseline_report(store, run_id, "neuron=mt", None, "markdown")
    assert "| em | asf ml cw T=50 | asf mt cw T=50 | F1 | paired t-test | 5 |" in markdown
    assert "| em | asf ml cw T=50 | asf mt cw T=50 | F1 | mixed model (REML, Satterthwaite t) | 10 (2 networks) |" \
        in markdown
    assert "Holm family 'per-sample: all': 2 tested comparisons" in markdown
    assert "Holm family 'replicate-level: all': 2 tested comparisons" in markdown


@pytest.mark.parametrize("stats", ["paired", "paper"])
def test_effect_sign_means_better_than_baseline_in_both_modes_and_for_lower_is_better(stats):
    base = 5.0 + np.sin(np.arange(12))
    rows = frame_rows("mt", base, metric="hd95") + frame_rows("rs", base - 1.0 + 0.1 * np.cos(np.arange(12)),
                                                              metric="hd95")
    rows += frame_rows("mt", 0.8 + 0.01 * np.sin(np.arange(12))) + frame_rows(
        "rs", 0.7 + 0.01 * np.cos(np.arange(12)))
    frame = baseline_comparisons(pd.DataFrame(rows), "neuron=mt", stats=stats).set_index("metric")
    assert frame.loc["hd95", "direction"] == "better" and frame.loc["hd95", "effect"] > 0  # 1 mm lower: better
    assert frame.loc["hd95", "difference"] == pytest.approx(1.0, abs=0.1)
    assert frame.loc["f1", "direction"] == "worse" and frame.loc["f1", "effect"] < 0
    assert frame.loc["f1", "ci_high"] < 0 and frame.loc["hd95", "ci_low"] > 0


def test_more_than_two_methods_get_friedman_a_posthoc_and_a_cd_diagram(store, tmp_path):
    run_id = two_seed_run(store)
    table = suite_table(load_suite(TABLE7), *_frames(store, run_id))
    (result,) = table.attrs["friedman"]
    assert result["k"] == 3 and result["n"] == 5 and result["posthoc"] == "nemenyi"
    assert min(result["ranks"], key=result["ranks"].get) == "MT+FT"
    assert "Friedman tests over the methods of each column" in render_suite_markdown(table)
    folder = write_suite_outputs(store, run_id, load_suite(TABLE7), tmp_path / "out")
    assert sorted(p.suffix for p in folder.glob("cd_diagram_*")) == [".pdf", ".png"]


def test_one_sided_alternative():
    base = 0.8 + 0.02 * np.sin(np.arange(10))
    better = base + 0.01 + 0.01 * np.cos(np.arange(10))
    per_sample = pd.DataFrame(frame_rows("mt", base) + frame_rows("rs", better))
    two = baseline_comparisons(per_sample, "neuron=mt").iloc[0]
    greater = baseline_comparisons(per_sample, "neuron=mt", alternative="greater").iloc[0]
    less = baseline_comparisons(per_sample, "neuron=mt", alternative="less").iloc[0]
    assert greater["p"] == pytest.approx(two["p"] / 2) and less["p"] == pytest.approx(1 - two["p"] / 2)
    assert greater["alternative"] == "greater"
    # lower-is-better: "greater" still means "the method is better", i.e. lower HD95
    hd = pd.DataFrame(frame_rows("mt", 10 - base * 5, metric="hd95") + frame_rows("rs", 10 - better * 5, metric="hd95"))
    assert baseline_comparisons(hd, "neuron=mt", alternative="greater").iloc[0]["p"] == pytest.approx(two["p"] / 2)


# -- 7. the Shapiro pre-test chose the test; seeds were averaged away ---------------------------------------


def test_the_paired_test_of_a_report_is_chosen_up_front():
    base = np.linspace(0.6, 0.9, 30)
    skewed = base + 0.002 * np.random.default_rng(2).exponential(1.0, 30)  # Shapiro p ≈ 1e-4
    per_sample = pd.DataFrame(frame_rows("mt", base) + frame_rows("rs", skewed))
    row = baseline_comparisons(per_sample, "neuron=mt").iloc[0]
    assert st.shapiro(skewed - base).pvalue < 0.01
    assert row["test"] == "paired t-test" and "chosen before seeing the data" in row["reason"]  # before: Wilcoxon
    assert row["normality_p"] == pytest.approx(st.shapiro(skewed - base).pvalue)
    auto = baseline_comparisons(per_sample, "neuron=mt", test="auto").iloc[0]
    assert auto["test"] == "Wilcoxon signed-rank"


def test_seeds_are_training_replicates_tested_beside_the_samples(store):
    # MT beats the ANN by 0.009 on average, but the gain varies between seeds (sd 0.008): the per-sample
    # test over the seed-averaged images says p ≈ 1e-7, the network-level test does not find it
    rng = np.random.default_rng(3)
    run_id = store.create_run({}, {})
    level = 0.85 + 0.03 * np.sin(np.arange(40))
    for seed, gain in zip((0, 1, 2), (0.018, 0.008, 0.001), strict=True):
        ann = level + 0.002 * rng.standard_normal(40)
        add_cell(store, run_id, config("-", seed), [(f"img{i:02d}", "f1", float(v)) for i, v in enumerate(ann)])
        mt = ann + gain + 0.002 * rng.standard_normal(40)
        add_cell(store, run_id, config("mt", seed), [(f"img{i:02d}", "f1", float(v)) for i, v in enumerate(mt)])
    frame = baseline_comparisons(tidy_frame(store, run_id, per_sample=True), "trainer=ann")
    per_sample, replicate = frame.iloc[0], frame.iloc[1]
    assert per_sample["level"] == "per-sample" and per_sample["p"] < 1e-6
    assert "each sample's value the mean over its 3 seeds" in per_sample["reason"]
    assert replicate["level"] == "replicate" and replicate["replicates"] == 3 and replicate["p"] > 0.05
    assert replicate["test"].startswith("mixed model") and "training replicate as the unit" in replicate["reason"]
    text = baseline_report(store, run_id, "trainer=ann", None, "markdown")
    assert "take the trained network (seed × fold) as the unit" in text


def test_one_seed_says_its_p_values_are_about_the_test_samples_of_one_network(store):
    run_id = store.create_run({}, {})
    add_cell(store, run_id, config("mt"), [(f"img{i}", "f1", 0.8 + 0.01 * i) for i in range(6)])
    add_cell(store, run_id, config("rs"), [(f"img{i}", "f1", 0.78 + 0.011 * i) for i in range(6)])
    text = baseline_report(store, run_id, "neuron=mt", None, "markdown")
    assert "these p-values are about the test samples of one trained network" in text
    assert "mixed model" not in text.split("\n\n")[1]
