"""A run's report files: the text ``bench-suite report`` prints, and a suite's tables and figures."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from bench_suite.results import figures
from bench_suite.results.cd_diagram import critical_difference_diagram
from bench_suite.results.frames import tidy_frame
from bench_suite.results.render import (
    comparisons_legend,
    comparisons_text,
    friedman_display,
    render_suite_csv,
    render_suite_latex,
    render_suite_markdown,
    to_latex,
    to_markdown,
    write_atomically,
)
from bench_suite.results.store import ResultStore
from bench_suite.results.tables import TestOptions, baseline_comparisons, suite_frames, suite_options, suite_table

FIGURE_METRICS = ("f1", "psnr", "miou", "dice")


def suite_report(store: ResultStore, run_id: str, suite, stats: str | None, fmt: str, caption: str | None = None,
                 label: str | None = None, options: TestOptions | None = None) -> str:
    """A suite run's table in ``fmt`` (csv, latex, markdown); ``stats`` None: the suite's own procedure."""
    opts = suite_options(suite, options, stats=stats)
    table = suite_table(suite, *suite_frames(store, run_id), options=opts)
    if fmt == "csv":
        return render_suite_csv(table)
    if fmt == "latex":
        return render_suite_latex(table, label=label, caption=caption)
    return render_suite_markdown(table)


def baseline_report(store: ResultStore, run_id: str, baseline: str, stats: str | None, fmt: str,
                    caption: str | None = None, label: str | None = None,
                    options: TestOptions | None = None) -> str:
    """Every method of the run against ``baseline``: one row per comparison and level with its test and why,
    the procedure, sign convention, Holm families and unit in the legend, and a Friedman table where a
    dataset and metric has more than two methods."""
    opts = TestOptions() if options is None else options
    if stats is not None:
        opts = dataclasses.replace(opts, stats=stats)
    frame = baseline_comparisons(tidy_frame(store, run_id, per_sample=True), baseline, options=opts)
    friedman = frame.attrs.get("friedman", [])
    legend = comparisons_legend(frame, frame.attrs.get("options"), friedman, baseline=baseline)
    text = comparisons_text(frame, fmt, caption or f"Comparisons with {baseline}", label, legend)
    extra = friedman_display(friedman)
    if extra is not None and fmt != "csv":
        text += "\n" + (to_latex(extra, label=f"{label}-friedman" if label else None) if fmt == "latex"
                        else to_markdown(extra))
    return text


def write_suite_outputs(store: ResultStore, run_id: str, suite, folder: Path, labels=None) -> Path:
    """CSV, LaTeX and Markdown of the suite's table plus its figures (PNG and PDF), in ``folder``; a column
    with more than two methods also gets a critical-difference diagram of its Friedman test.

    Written at the end of a run, whatever failed: a method that lacks samples or seeds its baseline has (a
    failed cell) is compared on the shared ones and marked "†" with the missing samples in the legend, where
    ``bench-suite report`` refuses unless given ``--allow-unmatched``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tidy, per_sample = suite_frames(store, run_id)
    table = suite_table(suite, tidy, per_sample, allow_unmatched=True)
    write_atomically(folder / "table.csv", render_suite_csv(table))
    write_atomically(folder / "table.tex", render_suite_latex(table, label=f"tab:{suite.name.replace('/', '-')}"))
    write_atomically(folder / "table.md", render_suite_markdown(table))
    column_labels = table.attrs.get("column_labels", {})
    for position, result in enumerate(table.attrs.get("friedman", [])):
        drawable = all(math.isfinite(p) for row in result.get("pairwise", {}).values() for p in row.values())
        if result.get("k", 0) > 2 and drawable and math.isfinite(result.get("statistic", math.nan)):
            words = column_labels.get(result.get("column", ""), [])
            title = " ".join(dict.fromkeys(w for w in words if w)) if words else json.dumps(result.get("column"))
            critical_difference_diagram(result, folder, f"cd_diagram_{position}_{title}", title=title)
    for metric in sorted(set(tidy["metric"]) & set(FIGURE_METRICS)):
        if tidy["T"].nunique() > 1:
            figures.metric_vs_T(tidy, metric, folder, labels=labels)
    layer_stats = store.layer_stats_frame(run_id)
    if not layer_stats.empty:
        figures.firing_rate_per_layer(layer_stats, folder, labels=labels)
    curves = store.curves_frame(run_id)
    if not curves.empty:
        figures.convergence(curves, folder, labels=labels)
    for path in folder.iterdir():
        store.add_artifact(run_id, None, path.suffix.lstrip("."), path)
    return folder
