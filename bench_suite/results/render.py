"""The one table layer: every table bench-suite prints or writes goes through :class:`Display`.

A run's summary (``run``, ``report``), a suite's paper-layout table and a list of comparisons (``report
--baseline``, the tests under a suite table) are first laid out as a :class:`Display` — header rows with
spans, body rows grouped by dataset, values already formatted with the metric's digits
(:func:`bench_suite.core.metric_info.format_value`), bold and significance marks as flags, a legend —
and then written by one Markdown and one LaTeX writer. So every output has the same decimals, and every
LaTeX file is escaped the same way and needs only ``booktabs`` (stated in its first line). CSV is written
from the tidy frames, not from a display.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from bench_suite.core.errors import BenchSuiteError, unknown_name_message
from bench_suite.core.metric_info import format_value, metric_info
from bench_suite.results.frames import CELL_COLUMNS, _is_ann, _short, failed_cells, summary_table, tidy_frame
from bench_suite.results.store import ResultStore

FORMATS = ("csv", "latex", "markdown")
LATEX_PREAMBLE = "% bench-suite table: needs \\usepackage{booktabs}"


# -- the display model ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Value:
    """A formatted table value: ``mean`` (± ``std``), bold when best, a significance ``mark`` (``**``)."""

    mean: str
    std: str = ""
    bold: bool = False
    mark: str = ""


@dataclasses.dataclass(frozen=True)
class Header:
    text: str
    span: int = 1


@dataclasses.dataclass
class Row:
    cells: list[str | Value]
    group_start: bool = False  # a rule above it (a new dataset)
    note: str | None = None  # a row that is one remark across the value columns (a failed cell)


@dataclasses.dataclass
class Display:
    """A laid-out table: ``headers`` is one or more header rows (the last names every column)."""

    headers: list[list[Header]]
    key_columns: int  # left-aligned label columns before the values
    rows: list[Row]
    caption: str = ""
    label: str = ""
    legend: list[str] = dataclasses.field(default_factory=list)

    @property
    def width(self) -> int:
        return sum(h.span for h in self.headers[-1])


def p_text(p: float | None) -> str:
    """p-values: three decimals, ``<0.001`` below, "–" where no test ran."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


# -- Markdown ------------------------------------------------------------------------------------------------


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("*", "\\*")


def _md_value(value: str | Value) -> str:
    if not isinstance(value, Value):
        return _md(value)
    text = value.mean if not value.std else f"{value.mean} ± {value.std}"
    return (f"**{text}**" if value.bold else text) + _md(value.mark)


def to_markdown(display: Display) -> str:
    """A GitHub table: one header row (multi-level headers joined), the legend below."""
    columns: list[str] = []
    for level in zip(*[_expand(row) for row in display.headers], strict=True):
        columns.append(" ".join(dict.fromkeys(text for text in level if text)))
    lines = [f"**{_md(display.caption)}**", ""] if display.caption else []
    lines.append("| " + " | ".join(_md(c) for c in columns) + " |")
    lines.append("|" + "---|" * display.key_columns + "---:|" * (len(columns) - display.key_columns))
    for row in display.rows:
        if row.note is not None:
            cells = [*map(_md_value, row.cells), _md(row.note)]
            cells += [""] * (len(columns) - len(cells))
        else:
            cells = [_md_value(c) for c in row.cells]
        lines.append("| " + " | ".join(cells) + " |")
    if display.legend:
        lines += [""] + [_md(line) for line in display.legend]
    return "\n".join(lines) + "\n"


def _expand(header_row: list[Header]) -> list[str]:
    out: list[str] = []
    for header in header_row:
        out += [header.text] * header.span
    return out


# -- LaTeX ---------------------------------------------------------------------------------------------------

_LATEX_TEXT = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"$<$", ">": r"$>$",
    "|": r"$|$", "…": r"\ldots{}", "±": r"$\pm$", "×": r"$\times$", "÷": r"$\div$", "≥": r"$\geq$",
    "≤": r"$\leq$", "→": r"$\rightarrow$", "–": "--", "—": "---", "−": r"$-$", "σ": r"$\sigma$", "µ": r"$\mu$",
    "μ": r"$\mu$", "θ": r"$\theta$", "α": r"$\alpha$", "λ": r"$\lambda$", "Δ": r"$\Delta$", "≈": r"$\approx$",
    "²": r"\textsuperscript{2}", "³": r"\textsuperscript{3}", "·": r"$\cdot$", "’": "'", "‘": "`",
    "“": "``", "”": "''", "é": r"\'e", "ö": r'\"o', "ü": r'\"u', "ä": r'\"a',
}


def latex_text(text: Any) -> str:
    """``text`` safe in LaTeX text mode (pdflatex, no extra packages): specials escaped, symbols as maths."""
    out = []
    for char in str(text):
        if char in _LATEX_TEXT:
            out.append(_LATEX_TEXT[char])
        elif ord(char) < 128:
            out.append(char)
        else:
            out.append("?")  # a character pdflatex cannot set without inputenc/fonts: visible, not fatal
    return "".join(out)


latex_escape = latex_text


def _latex_value(value: str | Value) -> str:
    if not isinstance(value, Value):
        return latex_text(value)
    if value.mean in ("–", ""):
        return "--"
    if not value.mean[0].isdigit() and value.mean[0] not in "-+.":
        return latex_text(value.mean)
    if not value.std and not value.mark and not value.mean.startswith("-"):
        return rf"\textbf{{{value.mean}}}" if value.bold else value.mean  # a plain number needs no maths
    body = value.mean if not value.std else rf"{value.mean} \pm {value.std}"
    mark = rf"^{{{latex_text(value.mark)}}}" if value.mark else ""
    # \boldmath makes the maths bold too; \textbf alone leaves $...$ upright
    return rf"\textbf{{\boldmath${body}{mark}$}}" if value.bold else f"${body}{mark}$"


def to_latex(display: Display, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``); inside a ``table`` float when captioned."""
    caption = caption if caption is not None else display.caption
    label = label if label is not None else display.label
    values = display.width - display.key_columns
    lines = [LATEX_PREAMBLE]
    floating = bool(caption or label)
    if floating:
        lines += [r"\begin{table}", r"\centering"]
        if caption:
            lines.append(rf"\caption{{{latex_text(caption)}}}")
        if label:
            lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{'l' * display.key_columns}{'r' * values}}}", r"\toprule"]
    for level, header_row in enumerate(display.headers):
        cells, rules, position = [], [], 1
        last = level == len(display.headers) - 1
        for header in header_row:
            text = "$T$" if header.text == "T" else latex_text(header.text)
            cells.append(rf"\multicolumn{{{header.span}}}{{c}}{{{text}}}" if header.span > 1 else text)
            if not last and header.text and position > display.key_columns:
                rules.append(rf"\cmidrule(lr){{{position}-{position + header.span - 1}}}")
            position += header.span
        lines.append(" & ".join(cells) + r" \\")
        if rules:
            lines.append(" ".join(rules))
    lines.append(r"\midrule")
    for index, row in enumerate(display.rows):
        if row.group_start and index > 0:
            lines.append(r"\midrule")
        cells = [_latex_value(c) for c in row.cells]
        if row.note is not None:
            span = display.width - len(cells)
            cells.append(rf"\multicolumn{{{span}}}{{l}}{{\emph{{{latex_text(row.note)}}}}}")
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if display.legend:
        lines.append(r"\par\smallskip{\footnotesize " + " ".join(latex_text(line) for line in display.legend) + "}")
    if floating:
        lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# -- a run's summary -----------------------------------------------------------------------------------------


def _key_cells(key: dict[str, Any], show_variant: bool) -> list[str]:
    cells = [str(key["dataset"]), str(key["trainer"]), str(key["neuron"]), str(key["norm"])]
    cells.append("-" if int(key["T"]) == 0 else str(int(key["T"])))
    if show_variant:
        cells.append(str(key["variant"]) or "-")
    return cells


def summary_display(summary: pd.DataFrame, failures: pd.DataFrame | None = None, caption: str = "") -> Display:
    """Rows per method (ANN first per dataset), ``mean ± std`` over seeds, the best per dataset and metric
    in bold; failed cells as rows with their error."""
    metrics = list(summary.columns.get_level_values(0).unique())
    keys = summary.index.to_frame(index=False)
    failures = failures if failures is not None else pd.DataFrame(columns=[*CELL_COLUMNS, "error"])
    show_variant = bool((keys["variant"] != "").any() or (failures["variant"].astype(str) != "").any())
    names = ["dataset", "trainer", "neuron", "norm", "T", *(["variant"] if show_variant else [])]
    not_measured = summary.attrs.get("not_measured", {})

    best: dict[tuple[str, str], str] = {}
    for metric in metrics:
        means = summary[(metric, "mean")]
        for dataset in keys["dataset"].unique():
            values = means[(keys["dataset"] == dataset).to_numpy()].dropna()
            if len(values) > 1:
                top = values.max() if metric_info(metric).higher_is_better else values.min()
                best[(dataset, metric)] = format_value(metric, float(top))

    groups: dict[str, list[Row]] = {}
    for position, key in enumerate(keys.to_dict("records")):
        cells: list[str | Value] = list(_key_cells(key, show_variant))
        for metric in metrics:
            if not_measured.get(metric, [False] * (position + 1))[position]:
                cells.append(Value("–"))  # not measured here (another task's metric), unlike NaN
                continue
            mean = format_value(metric, float(summary[(metric, "mean")].iloc[position]))
            std = float(summary[(metric, "std")].iloc[position])
            cells.append(Value(mean, "" if math.isnan(std) else format_value(metric, std),
                               best.get((key["dataset"], metric)) == mean))
        groups.setdefault(key["dataset"], []).append(Row(cells))
    failures = failures.assign(_snn=~_is_ann(failures)).sort_values(
        ["dataset", "_snn", "trainer", "neuron", "norm", "T", "variant", "seed"], kind="stable"
    )
    for failure in failures.to_dict("records"):
        note = f"failed (seed {failure['seed']}): {_short(failure['error'])}"
        groups.setdefault(failure["dataset"], []).append(Row(list(_key_cells(failure, show_variant)), note=note))
    rows = []
    for group in groups.values():
        group[0].group_start = True
        rows += group
    headers = [[Header(n) for n in names] + [Header(metric_info(m).label) for m in metrics]]
    legend = ["Mean ± std over seeds and folds; bold: the best mean per dataset and metric."] if rows else []
    return Display(headers, len(names), rows, caption=caption, legend=legend)


def render_markdown(summary: pd.DataFrame, failures: pd.DataFrame | None = None) -> str:
    return to_markdown(summary_display(summary, failures))


def render_latex(
    summary: pd.DataFrame, failures: pd.DataFrame | None = None, *, caption: str | None = None,
    label: str | None = None,
) -> str:
    return to_latex(summary_display(summary, failures), caption, label)


def render_csv(tidy: pd.DataFrame) -> str:
    # "NaN" rather than an empty field: an undefined value must not read as "not measured"
    return tidy.to_csv(index=False, na_rep="NaN", lineterminator="\n")


# -- comparisons (report --baseline, the tests under a suite table) --------------------------------------------

COMPARISON_HEADERS = ("dataset", "method", "vs", "metric", "test", "n", "p", "p (Holm)", "effect [95% CI]",
                      "reason")


def comparisons_display(tests: pd.DataFrame, caption: str = "", legend: Sequence[str] = ()) -> Display:
    """One row per comparison: test, n, raw and Holm p, effect size with its CI, and why that test."""
    rows = []
    previous = None
    for record in tests.to_dict("records"):
        effect = "–"
        if record.get("effect_name"):
            effect = (f"{record['effect_name']} {_signed(record.get('effect'))} "
                      f"[{_signed(record.get('ci_low'))}, {_signed(record.get('ci_high'))}]")
        metric = str(record["metric"])
        cells: list[str | Value] = [
            str(record["dataset"]), str(record["method"]), str(record["baseline"]), metric_info(metric).label,
            str(record["test"]), str(record["n"]), p_text(record.get("p")),
            Value(p_text(record.get("p_holm")), mark=str(record.get("mark") or "")), effect, str(record["reason"]),
        ]
        rows.append(Row(cells, group_start=record["dataset"] != previous))
        previous = record["dataset"]
    headers = [[Header(h) for h in COMPARISON_HEADERS]]
    return Display(headers, 6, rows, caption=caption, legend=list(legend))


def _signed(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):.2f}"


def comparisons_csv(tests: pd.DataFrame) -> str:
    return tests.to_csv(index=False, na_rep="NaN", lineterminator="\n")


# -- suite tables ------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    return int(value) if isinstance(value, (np.integer,)) else value


def suite_legend(table: pd.DataFrame) -> list[str]:
    from bench_suite.results.tables import suite_tests

    tests = suite_tests(table)
    lines = []
    if table.attrs.get("baseline"):
        procedure = ("paired per-sample test (Shapiro–Wilk on the differences → paired t or Wilcoxon)"
                     if table.attrs.get("stats") == "paired" else
                     "the paper's unpaired one-sided procedure (Shapiro–Wilk → t-test or Mann–Whitney U)")
        lines.append(
            f"Marks: * p < 0.05, ** p < 0.01, *** p < 0.001 against the baseline ({table.attrs['baseline']}) of the "
            f"same dataset and metric; {procedure}; Holm-corrected across the table's {len(tests)} comparisons."
        )
    lines.append("Bold: best mean per column. Mean ± std over seeds/folds; 'paper': the published value.")
    for value, note in table.attrs.get("published_notes", {}).items():
        lines.append(f"Paper value {value}: {note}.")
    unmatched = table.attrs.get("unmatched_published", [])
    if unmatched:
        described = []
        for entry in unmatched:
            where = [entry["dataset"] or "any dataset", *(f"{k}={v}" for k, v in entry["row"].items())]
            if entry.get("T") is not None:
                where.append(f"T={entry['T']}")
            described.append(f"{' '.join(where)} {entry['metric']} = {entry['value']:g}")
        lines.append(f"Published values with no measured counterpart in this run: {'; '.join(described)}.")
    return lines


def suite_display(table: pd.DataFrame) -> Display:
    """The suite's table: one column group per (dataset, metric, …), a 'paper' sub-column where the paper
    reports a value, the best mean per column in bold, marks against the baseline."""
    columns = table.attrs.get("columns", list(table.columns.names[:-1]))
    lower = set(table.attrs.get("lower_is_better", []))
    col_keys = list(dict.fromkeys(c[:-1] for c in table.columns))
    labels = table.attrs.get("column_labels", {})
    groups = []
    for col in col_keys:
        metric = col[columns.index("metric")] if "metric" in columns else ""
        means = table[(*col, "mean")].astype(float)
        stds = table[(*col, "std")].astype(float)
        papers = table[(*col, "paper")].astype(float)
        finite = means[np.isfinite(means)]
        best_text = None
        if len(finite) > 1:
            best_text = format_value(metric, float(finite.min() if metric in lower else finite.max()))
        cells = []
        for mean, std, mark in zip(means, stds, table[(*col, "mark")], strict=True):
            text = "–" if math.isnan(mean) else format_value(metric, float(mean))
            cells.append(Value(text, "" if text == "–" or math.isnan(std) else format_value(metric, float(std)),
                               text != "–" and text == best_text, mark if isinstance(mark, str) else ""))
        groups.append({
            "labels": labels.get(json.dumps(list(map(_jsonable, col))), [str(v) for v in col]),
            "cells": cells,
            "paper": ["" if math.isnan(p) else format_value(metric, float(p)) for p in papers],
            "has_paper": bool(np.isfinite(papers).any()),
        })
    n_levels = len(groups[0]["labels"]) if groups else 1
    widths = [2 if g["has_paper"] else 1 for g in groups]
    headers: list[list[Header]] = []
    for level in range(n_levels):
        row = [Header("" if level < n_levels - 1 else "method")]
        start = 0
        while start < len(groups):
            end = start
            prefix = [tuple(g["labels"][: level + 1]) for g in groups]
            while end + 1 < len(groups) and prefix[end + 1] == prefix[start] and level < n_levels - 1:
                end += 1
            row.append(Header(groups[start]["labels"][level], sum(widths[start : end + 1])))
            start = end + 1
        headers.append(row)
    if any(g["has_paper"] for g in groups):
        sub = [Header("")]
        for group in groups:
            sub += [Header("ours"), Header("paper")] if group["has_paper"] else [Header("")]
        headers.append(sub)
    rows = []
    for position, method in enumerate(table.index.get_level_values("method")):
        cells: list[str | Value] = [str(method)]
        for group in groups:
            cells.append(group["cells"][position])
            if group["has_paper"]:
                cells.append(group["paper"][position] or "–")
        rows.append(Row(cells))
    return Display(headers, 1, rows, caption=table.attrs.get("caption", ""), legend=suite_legend(table))


def render_suite_markdown(table: pd.DataFrame, tests: bool = True) -> str:
    """The suite table in Markdown; with ``tests`` the comparisons behind its marks below it."""
    from bench_suite.results.tables import suite_tests

    text = _suite_markdown_main(table)
    frame = suite_tests(table)
    if tests and not frame.empty:
        text += "\n" + to_markdown(comparisons_display(frame))
    return text


def _suite_markdown_main(table: pd.DataFrame) -> str:
    display = suite_display(table)
    # Markdown has one header row: the 'ours'/'paper' sub-row becomes "(paper)" after the group's name
    if len(display.headers) > 1 and display.headers[-1][0].text == "" and any(
            h.text == "paper" for h in display.headers[-1]):
        names = _expand_groups(display.headers[:-1])
        flat, position = [Header("method")], 1
        for header in display.headers[-1][1:]:
            name = names[position]
            flat.append(Header(f"{name} (paper)" if header.text == "paper" else name))
            position += 1
        display = dataclasses.replace(display, headers=[flat])
    return to_markdown(display)


def _expand_groups(header_rows: list[list[Header]]) -> list[str]:
    levels = [_expand(row) for row in header_rows]
    return [" ".join(dict.fromkeys(t for t in texts if t)) for texts in zip(*levels, strict=True)]


def render_suite_latex(table: pd.DataFrame, label: str | None = None, caption: str | None = None,
                       tests: bool = True) -> str:
    """The suite table as a booktabs table float; with ``tests`` the comparisons as a second table."""
    from bench_suite.results.tables import suite_tests

    text = to_latex(suite_display(table), caption, label)
    frame = suite_tests(table)
    if tests and not frame.empty:
        text += "\n" + to_latex(comparisons_display(frame), caption="Comparisons behind the marks"
                                + (f" of {table.attrs['suite']}" if table.attrs.get("suite") else ""),
                                label=f"{label}-tests" if label else None)
    return text


def render_suite_csv(table: pd.DataFrame) -> str:
    """Tidy: one row per method × column (dataset, metric, …) with mean, std, n, mark, paper and the test."""
    columns = table.attrs.get("columns", list(table.columns.names[:-1]))
    col_keys = list(dict.fromkeys(c[:-1] for c in table.columns))
    by_test = {(r["method"], r["column"]): r for r in table.attrs.get("tests", [])}
    records = []
    for row_position, row in enumerate(table.index):
        row_coords = dict(zip(table.index.names, row, strict=True))
        for col in col_keys:
            n = table[(*col, "n")].iloc[row_position]
            if not (isinstance(n, (int, float, np.integer, np.floating)) and n == n and n > 0):
                continue
            record = {**row_coords, **dict(zip(columns, col, strict=True))}
            for field in ("mean", "std", "n", "mark", "paper"):
                record[field] = table[(*col, field)].iloc[row_position]
            test = by_test.get((row_coords["method"], json.dumps(list(map(_jsonable, col)))))
            for field in ("test", "reason", "p", "p_holm", "effect_name", "effect", "ci_low", "ci_high"):
                record[field] = test.get(field) if test else ("" if field in ("test", "reason", "effect_name")
                                                              else math.nan)
            records.append(record)
    return pd.DataFrame(records).to_csv(index=False, na_rep="NaN", lineterminator="\n")


# -- writing -----------------------------------------------------------------------------------------------------


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


_write_atomically = write_atomically


def write_report(
    store: ResultStore,
    run_id: str,
    fmt: Literal["csv", "latex", "markdown"],
    out: Path | None = None,
    per_sample: bool = False,
    caption: str | None = None,
    label: str | None = None,
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
        display = summary_display(summary_table(tidy), failed_cells(store, run_id))
        text = to_latex(display, caption, label) if fmt == "latex" else to_markdown(
            dataclasses.replace(display, caption=caption or display.caption))
    if out is not None:
        write_atomically(Path(out), text)
    return text


def comparisons_text(tests: pd.DataFrame, fmt: str, caption: str | None = None, label: str | None = None,
                     legend: Iterable[str] = ()) -> str:
    if fmt == "csv":
        return comparisons_csv(tests)
    display = comparisons_display(tests, caption or "", list(legend))
    return to_latex(display, caption, label) if fmt == "latex" else to_markdown(display)
