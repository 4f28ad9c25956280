"""Report text from a run's summary table: Markdown, LaTeX (booktabs) and tidy CSV."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from bench_suite.core.errors import BenchSuiteError, unknown_name_message
from bench_suite.core.metric_info import metric_info
from bench_suite.results.frames import CELL_COLUMNS, _is_ann, _short, failed_cells, summary_table, tidy_frame
from bench_suite.results.store import ResultStore

FORMATS = ("csv", "latex", "markdown")


def _decimals(metric: str, means: pd.Series) -> int:
    bounded = means.dropna().abs().le(1).all()
    return 4 if metric != "psnr" and bounded else 2


def _fmt(value: float, decimals: int) -> str:
    return "NaN" if math.isnan(value) else f"{value:.{decimals}f}"


def _key_cells(key: dict[str, Any], show_variant: bool) -> list[str]:
    cells = [str(key["dataset"]), str(key["trainer"]), str(key["neuron"]), str(key["norm"])]
    cells.append("-" if int(key["T"]) == 0 else str(int(key["T"])))
    if show_variant:
        cells.append(str(key["variant"]) or "-")
    return cells


def _layout(summary: pd.DataFrame, failures: pd.DataFrame | None) -> tuple[list[str], list[str], list[dict]]:
    """Header key names, metric names and display rows (values or a failure), grouped by dataset."""
    metrics = list(summary.columns.get_level_values(0).unique())
    keys = summary.index.to_frame(index=False)
    failures = failures if failures is not None else pd.DataFrame(columns=[*CELL_COLUMNS, "error"])
    show_variant = bool((keys["variant"] != "").any() or (failures["variant"].astype(str) != "").any())
    headers = ["dataset", "trainer", "neuron", "norm", "T", *(["variant"] if show_variant else [])]

    best: dict[tuple[str, str], str] = {}
    decimals = {metric: _decimals(metric, summary[(metric, "mean")]) for metric in metrics}
    for metric in metrics:
        means = summary[(metric, "mean")]
        for dataset in keys["dataset"].unique():
            values = means[(keys["dataset"] == dataset).to_numpy()].dropna()
            if not values.empty:
                top = values.max() if metric_info(metric).higher_is_better else values.min()
                best[(dataset, metric)] = _fmt(top, decimals[metric])

    rows_by_dataset: dict[str, list[dict]] = {}
    for position, key in enumerate(keys.to_dict("records")):
        values = []
        for metric in metrics:
            mean = float(summary[(metric, "mean")].iloc[position])
            std = float(summary[(metric, "std")].iloc[position])
            if summary.attrs.get("not_measured", {}).get(metric, [False] * (position + 1))[position]:
                values.append(("–", None, False))  # not measured here (another task's metric), not NaN
                continue
            mean_text = _fmt(mean, decimals[metric])
            std_text = None if math.isnan(std) else _fmt(std, decimals[metric])
            values.append((mean_text, std_text, best.get((key["dataset"], metric)) == mean_text))
        rows_by_dataset.setdefault(key["dataset"], []).append(
            {"key": _key_cells(key, show_variant), "values": values}
        )
    failures = failures.assign(_snn=~_is_ann(failures)).sort_values(
        ["dataset", "_snn", "trainer", "neuron", "norm", "T", "variant", "seed"], kind="stable"
    )
    for failure in failures.to_dict("records"):
        text = f"failed (seed {failure['seed']}): {_short(failure['error'])}"
        rows_by_dataset.setdefault(failure["dataset"], []).append(
            {"key": _key_cells(failure, show_variant), "failure": text}
        )
    rows = [row | {"first": i == 0} for group in rows_by_dataset.values() for i, row in enumerate(group)]
    return headers, metrics, rows


def render_markdown(summary: pd.DataFrame, failures: pd.DataFrame | None = None) -> str:
    """A GitHub table: ``mean ± std`` over seeds, the best per dataset and metric in bold."""
    headers, metrics, rows = _layout(summary, failures)

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "| " + " | ".join([*headers, *(metric_info(m).label for m in metrics)]) + " |",
        "|" + "---|" * len(headers) + "---:|" * len(metrics),
    ]
    for row in rows:
        if "failure" in row:
            values = [cell(row["failure"]), *[""] * (len(metrics) - 1)]
        else:
            values = []
            for mean, std, bold in row["values"]:
                text = mean if std is None else f"{mean} ± {std}"
                values.append(f"**{text}**" if bold else text)
        lines.append("| " + " | ".join([*map(cell, row["key"]), *values]) + " |")
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "…": r"\ldots{}",
    "±": r"$\pm$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in str(text))


def render_latex(
    summary: pd.DataFrame,
    failures: pd.DataFrame | None = None,
    *,
    caption: str | None = None,
    label: str | None = None,
) -> str:
    """A booktabs ``tabular`` (inside a ``table`` when a caption or label is given)."""
    headers, metrics, rows = _layout(summary, failures)
    header_cells = [("$T$" if h == "T" else latex_escape(h)) for h in headers]
    header_cells += [latex_escape(metric_info(m).label) for m in metrics]
    lines = [
        rf"\begin{{tabular}}{{{'l' * len(headers)}{'r' * len(metrics)}}}",
        r"\toprule",
        " & ".join(header_cells) + r" \\",
        r"\midrule",
    ]
    for index, row in enumerate(rows):
        if row["first"] and index > 0:
            lines.append(r"\midrule")
        key = [latex_escape(text) for text in row["key"]]
        if "failure" in row:
            values = [rf"\multicolumn{{{len(metrics)}}}{{l}}{{\emph{{{latex_escape(row['failure'])}}}}}"]
        else:
            values = []
            for mean, std, bold in row["values"]:
                if std is None:
                    values.append(rf"\textbf{{{mean}}}" if bold else mean)
                elif bold:
                    # \boldmath makes the maths bold too; \textbf alone leaves $...$ upright
                    values.append(rf"\textbf{{\boldmath${mean} \pm {std}$}}")
                else:
                    values.append(rf"${mean} \pm {std}$")
        lines.append(" & ".join([*key, *values]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption is None and label is None:
        return "\n".join(lines) + "\n"
    wrapped = [r"\begin{table}", r"\centering"]
    if caption is not None:
        wrapped.append(rf"\caption{{{latex_escape(caption)}}}")
    if label is not None:
        wrapped.append(rf"\label{{{label}}}")
    return "\n".join([*wrapped, *lines, r"\end{table}"]) + "\n"


def render_csv(tidy: pd.DataFrame) -> str:
    # "NaN" rather than an empty field: an undefined value must not read as "not measured"
    return tidy.to_csv(index=False, na_rep="NaN", lineterminator="\n")


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_report(
    store: ResultStore,
    run_id: str,
    fmt: Literal["csv", "latex", "markdown"],
    out: Path | None = None,
    per_sample: bool = False,
) -> str:
    """The report text, also written to ``out`` when given. ``per_sample`` changes only the CSV."""
    if fmt not in FORMATS:
        raise BenchSuiteError(
            unknown_name_message("report format", fmt, FORMATS) + " — pass one of them to --format"
        )
    tidy = tidy_frame(store, run_id, per_sample=per_sample)
    if fmt == "csv":
        text = render_csv(tidy)
    else:
        summary = summary_table(tidy)
        failures = failed_cells(store, run_id)
        text = render_latex(summary, failures) if fmt == "latex" else render_markdown(summary, failures)
    if out is not None:
        _write_atomically(Path(out), text)
    return text
