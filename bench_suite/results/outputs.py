"""A run's report files: the text ``bench-suite report`` prints, and a suite's tables and figures."""

from __future__ import annotations

from pathlib import Path

from bench_suite.results import figures
from bench_suite.results.frames import tidy_frame
from bench_suite.results.render import (
    comparisons_text,
    render_suite_csv,
    render_suite_latex,
    render_suite_markdown,
    write_atomically,
)
from bench_suite.results.store import ResultStore
from bench_suite.results.tables import baseline_comparisons, suite_frames, suite_table

FIGURE_METRICS = ("f1", "psnr", "miou", "dice")


def suite_report(store: ResultStore, run_id: str, suite, stats: str, fmt: str, caption: str | None = None,
                 label: str | None = None) -> str:
    """A suite run's table in ``fmt`` (csv, latex, markdown)."""
    table = suite_table(suite, *suite_frames(store, run_id), stats=stats)
    if fmt == "csv":
        return render_suite_csv(table)
    if fmt == "latex":
        return render_suite_latex(table, label=label, caption=caption)
    return render_suite_markdown(table)


def baseline_report(store: ResultStore, run_id: str, baseline: str, stats: str, fmt: str,
                    caption: str | None = None, label: str | None = None) -> str:
    """Every method of the run against ``baseline``: one row per comparison with its test and why."""
    frame = baseline_comparisons(tidy_frame(store, run_id, per_sample=True), baseline, stats)
    legend = [f"Each method against {baseline} on the same test samples ({stats} procedure); Holm-corrected "
              f"across the {len(frame)} comparisons; effect: positive means better than the baseline."]
    return comparisons_text(frame, fmt, caption or f"Comparisons with {baseline}", label, legend)


def write_suite_outputs(store: ResultStore, run_id: str, suite, folder: Path, labels=None) -> Path:
    """CSV, LaTeX and Markdown of the suite's table plus its figures (PNG and PDF), in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tidy, per_sample = suite_frames(store, run_id)
    table = suite_table(suite, tidy, per_sample)
    write_atomically(folder / "table.csv", render_suite_csv(table))
    write_atomically(folder / "table.tex", render_suite_latex(table, label=f"tab:{suite.name.replace('/', '-')}"))
    write_atomically(folder / "table.md", render_suite_markdown(table))
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
