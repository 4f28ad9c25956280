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
from collections.abc import Iterable, Mapping, Sequence
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
    latex_columns: str | None = None  # a column spec replacing l…r…, e.g. a p{} column for long text
    latex_size: str = ""  # e.g. \footnotesize for a wide table of comparisons

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
    "†": r"\ensuremath{\dagger}", "χ": r"\ensuremath{\chi}", "ε": r"\ensuremath{\varepsilon}",
    "∇": r"\ensuremath{\nabla}",
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
    if not value.mean[0].isdigit() and value.mean[0] not in "-+.":  # "<0.001", "NaN": text, then the mark
        return latex_text(value.mean) + (rf"$^{{{latex_text(value.mark)}}}$" if value.mark else "")
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
    if display.latex_size:
        lines.append("{" + display.latex_size)
    spec = display.latex_columns or f"{'l' * display.key_columns}{'r' * values}"
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
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
    if display.latex_size:
        lines.append("}")
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
    """One row per comparison and level: test, n, raw and Holm p, effect size with its CI, and why that test.

    The replicate-level row of a comparison (a mixed model, with ≥ 2 seeds or folds) follows its per-sample
    row; its ``n`` names the trained networks. Effects are signed "positive = method better than baseline".
    """
    rows = []
    previous = None
    for record in tests.to_dict("records"):
        metric = str(record["metric"])
        cells: list[str | Value] = [
            str(record["dataset"]), str(record["method"]), str(record["baseline"]), metric_info(metric).label,
            str(record["test"]), _n_text(record), p_text(record.get("p")),
            Value(p_text(record.get("p_holm")), mark=str(record.get("mark") or "")), _effect_text(record, metric),
            str(record["reason"]) + (f" [unmatched, compared on shared samples: {record['unmatched']}]"
                                     if record.get("unmatched") else ""),
        ]
        rows.append(Row(cells, group_start=record["dataset"] != previous))
        previous = record["dataset"]
    headers = [[Header(h) for h in COMPARISON_HEADERS]]
    return Display(headers, 6, rows, caption=caption, legend=list(legend),
                   latex_columns="llllp{2.6cm}rrrp{3.2cm}p{7.5cm}", latex_size=r"\scriptsize")


def _n_text(record: Mapping[str, Any]) -> str:
    replicates = record.get("replicates")
    if record.get("level") == "replicate" and _finite(replicates):
        return f"{record['n']} ({int(replicates)} networks)"
    return str(record["n"])


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _effect_text(record: Mapping[str, Any], metric: str) -> str:
    name = record.get("effect_name")
    if not name or not _finite(record.get("effect")):
        return "–"
    if name == "mean difference":
        def show(value):
            if not _finite(value):
                return "–"
            return ("+" if float(value) >= 0 else "") + format_value(metric, float(value))
    else:
        show = _signed
    return f"{name} {show(record.get('effect'))} [{show(record.get('ci_low'))}, {show(record.get('ci_high'))}]"


def _signed(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):+.2f}"


def comparisons_csv(tests: pd.DataFrame) -> str:
    return tests.to_csv(index=False, na_rep="NaN", lineterminator="\n")


def comparisons_legend(tests: pd.DataFrame, options: Mapping[str, Any] | None = None,
                       friedman: Sequence[Mapping[str, Any]] = (), column_names: Mapping[str, str] | None = None,
                       baseline: str = "") -> list[str]:
    """What a reader needs beside the comparisons: procedure, sign convention, families, the unit, marks."""
    from bench_suite.results.tables import TestOptions

    opts = TestOptions(**dict(options)) if options else TestOptions()
    lines = []
    against = f" against the baseline ({baseline})" if baseline else " against the baseline"
    lines.append(f"Tests{against} on the test samples both were scored on: {opts.procedure()}; Shapiro–Wilk on "
                 "the paired differences is reported in every reason as the normality diagnostic.")
    lines.append("Effect sizes and differences: positive = the method is better than the baseline, for every "
                 "metric (lower-is-better values are negated first); [95% CI]: bootstrap over samples "
                 "(per-sample rows), the model's t interval (replicate-level rows).")
    lines += _family_lines(tests, column_names or {})
    if tests.empty:
        return lines
    replicate = tests[tests["level"] == "replicate"]
    networks = pd.to_numeric(tests["replicates"], errors="coerce").max() if "replicates" in tests else math.nan
    if replicate.empty and not (_finite(networks) and networks > 1):
        lines.append("One trained network per method (one seed, no folds): these p-values are about the test "
                     "samples of one trained network, not about the training method; run --seeds 2 or more for a "
                     "test with training replicates as the unit.")
    elif not replicate.empty:
        lines.append(f"Replicate-level rows ({replicate['test'].iloc[0]}) take the trained network (seed × fold) "
                     "as the unit, as an inference about the training method needs; per-sample rows average each "
                     "sample over the seeds. Marks come from the per-sample rows.")
    unmatched = tests[tests["unmatched"].fillna("").astype(str) != ""] if "unmatched" in tests else tests.iloc[0:0]
    if not unmatched.empty:
        lines.append("† compared on the shared samples only (--allow-unmatched), so its mean and its test use "
                     "different sample sets and it is not bolded: "
                     + "; ".join(dict.fromkeys(f"{r['method']} ({r['dataset']}, {r['metric']}): {r['unmatched']}"
                                               for r in unmatched.to_dict("records"))) + ".")
    if friedman:
        lines.append(f"{len(friedman)} column{'s' if len(friedman) != 1 else ''} with more than two methods: a "
                     "Friedman test over all of them with a post-hoc of every pair, in the table of Friedman "
                     "tests (and, for a suite, a critical-difference diagram cd_diagram_*.png / .pdf).")
    return lines


def _family_lines(tests: pd.DataFrame, column_names: Mapping[str, str]) -> list[str]:
    if tests.empty:
        return []
    lines = []
    tested = tests[pd.to_numeric(tests["family_size"], errors="coerce").fillna(0) > 0]
    for family, members in tested.groupby("family", sort=False):
        if "column" in members:
            columns = list(dict.fromkeys(column_names.get(c, c) for c in members["column"]))
        else:
            columns = list(dict.fromkeys(f"{d} {metric_info(m).label}" for d, m in zip(
                members["dataset"], members["metric"], strict=True)))
        datasets = list(dict.fromkeys(map(str, members["dataset"])))
        lines.append(f"Holm family '{family}': {len(members)} tested comparison{'s' if len(members) != 1 else ''} "
                     f"spanning column{'s' if len(columns) != 1 else ''} {', '.join(columns)} "
                     f"(dataset{'s' if len(datasets) != 1 else ''} {', '.join(datasets)}).")
    untested = len(tests) - len(tested)
    if untested:
        lines.append(f"{untested} comparison{'s' if untested != 1 else ''} without a test (identical values, too "
                     "few pairs or one network) belong to no family and leave the others' correction unchanged.")
    return lines


def _friedman_line(result: Mapping[str, Any], column_names: Mapping[str, str]) -> str:
    where = (column_names.get(result.get("column", ""), "")
             or f"{result['dataset']} {metric_info(result['metric']).label}")
    ranks = sorted(result["ranks"].items(), key=lambda item: item[1])
    pairs = []
    alpha = float(result.get("alpha", 0.05))
    names = [name for name, _ in ranks]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            p = result["pairwise"][a][b]
            if _finite(p) and p < alpha:
                pairs.append(f"{a} > {b} (p={p_text(p)})")
    posthoc = str(result["posthoc"]).capitalize()
    return (f"Friedman test over the {result['k']} methods of {where} on {result['n']} samples: "
            f"χ²={result['statistic']:.2f}, p={p_text(result['p'])}; mean ranks (1 = best) "
            + ", ".join(f"{name} {rank:.2f}" for name, rank in ranks)
            + f"; {posthoc} post-hoc (critical difference {result['critical_difference']:.2f} at α={alpha:g}): "
            + (", ".join(pairs) if pairs else "no pair differs") + ".")


# -- suite tables ------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    return int(value) if isinstance(value, (np.integer,)) else value


def _column_names(table: pd.DataFrame) -> dict[str, str]:
    return {key: " ".join(dict.fromkeys(t for t in labels if t))
            for key, labels in table.attrs.get("column_labels", {}).items()}


def suite_legend(table: pd.DataFrame) -> list[str]:
    from bench_suite.results.tables import suite_tests

    tests = suite_tests(table)
    lines = []
    if table.attrs.get("baseline"):
        lines.append(
            f"Marks: * p < 0.05, ** p < 0.01, *** p < 0.001 (Holm-adjusted, per-sample tests) against the baseline "
            f"({table.attrs['baseline']}) of the same dataset and metric."
        )
        lines += comparisons_legend(tests, table.attrs.get("options"), table.attrs.get("friedman", []),
                                    _column_names(table), table.attrs["baseline"])
    lines.append("Bold: best mean per column. Mean ± std over seeds/folds; 'paper': the published value.")
    if any(str(c[-2]).rpartition("/")[2] == "miou_pooled" for c in table.columns if len(c) > 1):
        lines.append("mIoU (dataset): per-class IoU from one confusion matrix summed over the test set (what the "
                     "papers report); mIoU (per-image): the mean of each image's mIoU, which the tests compare.")
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
        marks = table[(*col, "mark")]
        comparable = np.isfinite(means) & ~marks.astype(str).str.contains("†").to_numpy()
        finite = means[comparable]  # a cell compared on other samples than its mean's is not ranked
        best_text = None
        if len(finite) > 1:
            best_text = format_value(metric, float(finite.min() if metric in lower else finite.max()))
        cells = []
        for mean, std, mark in zip(means, stds, table[(*col, "mark")], strict=True):
            text = "–" if math.isnan(mean) else format_value(metric, float(mean))
            mark = mark if isinstance(mark, str) else ""
            cells.append(Value(text, "" if text == "–" or math.isnan(std) else format_value(metric, float(std)),
                               text != "–" and text == best_text and "†" not in mark, mark))
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
    friedman = friedman_display(table)
    if tests and friedman is not None:
        text += "\n" + to_markdown(friedman)
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
    friedman = friedman_display(table)
    if tests and friedman is not None:
        text += "\n" + to_latex(friedman, label=f"{label}-friedman" if label else None)
    return text


#: per comparison in a suite CSV row: the per-sample test's fields, then the replicate-level ones (prefixed)
CSV_TEST_FIELDS = ("test", "reason", "test_n", "p", "p_holm", "family", "family_size", "effect_name", "effect",
                   "ci_low", "ci_high", "difference", "difference_ci_low", "difference_ci_high", "normality_p",
                   "alternative", "effect_sign", "unmatched")
CSV_REPLICATE_FIELDS = ("test", "reason", "replicates", "p", "p_holm", "family_size", "difference",
                        "difference_ci_low", "difference_ci_high", "df")
_TEXT_FIELDS = {"test", "reason", "family", "effect_name", "alternative", "effect_sign", "unmatched"}


def render_suite_csv(table: pd.DataFrame) -> str:
    """Tidy: one row per method × column (dataset, metric, …) with mean, std, n, mark, paper, and per
    comparison the per-sample test (:data:`CSV_TEST_FIELDS`: test, why, n, raw and Holm p, family, effect
    and CI, mean difference and CI, the Shapiro–Wilk diagnostic, sign convention) and the replicate-level
    one (``replicate_*``, empty with one trained network)."""
    columns = table.attrs.get("columns", list(table.columns.names[:-1]))
    col_keys = list(dict.fromkeys(c[:-1] for c in table.columns))
    by_test = {(r["method"], r["column"], r.get("level", "per-sample")): r for r in table.attrs.get("tests", [])}
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
            key = json.dumps(list(map(_jsonable, col)))
            test = by_test.get((row_coords["method"], key, "per-sample"))
            for field in CSV_TEST_FIELDS:
                source = "n" if field == "test_n" else field
                record[field] = test.get(source) if test else ("" if field in _TEXT_FIELDS else math.nan)
            replicate = by_test.get((row_coords["method"], key, "replicate"))
            for field in CSV_REPLICATE_FIELDS:
                record[f"replicate_{field}"] = replicate.get(field) if replicate else (
                    "" if field in _TEXT_FIELDS else math.nan)
            records.append(record)
    return pd.DataFrame(records).to_csv(index=False, na_rep="NaN", lineterminator="\n")


def friedman_display(table_or_results: pd.DataFrame | Sequence[Mapping[str, Any]],
                     column_names: Mapping[str, str] | None = None) -> Display | None:
    """The Friedman tests (more than two methods in a column) as a table: k, n, χ², p, mean ranks."""
    results = (table_or_results.attrs.get("friedman", []) if isinstance(table_or_results, pd.DataFrame)
               else list(table_or_results))
    if not results:
        return None
    names = column_names or (_column_names(table_or_results) if isinstance(table_or_results, pd.DataFrame) else {})
    rows = []
    for result in results:
        where = names.get(result.get("column", ""), "") or f"{result['dataset']} {metric_info(result['metric']).label}"
        ranks = sorted(result["ranks"].items(), key=lambda item: item[1])
        rows.append(Row([where, str(result["k"]), str(result["n"]), f"{result['statistic']:.2f}", p_text(result["p"]),
                         f"{result['posthoc']} (CD {result['critical_difference']:.2f})",
                         ", ".join(f"{name} {rank:.2f}" for name, rank in ranks)]))
    headers = [[Header(h) for h in ("column", "methods", "samples", "χ²", "p", "post-hoc", "mean rank (1 = best)")]]
    return Display(headers, 1, rows, caption="Friedman tests over the methods of each column",
                   legend=[_friedman_line(r, names) for r in results], latex_columns="lrrrrlp{6cm}",
                   latex_size=r"\scriptsize")


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


COST_HEADERS = ["dataset", "trainer", "neuron", "norm", "T", "seed", "device", "stage", "s", "peak RSS (MiB)",
                "peak device (MiB)"]


def costs_display(costs: pd.DataFrame, caption: str = "") -> Display:
    """Per cell and stage: time and peak memory (``frames.stage_costs``); a rule above each new cell."""
    rows = []
    previous = None
    for record in costs.to_dict("records"):
        device_mib = record["peak_device_mib"]
        cells: list[str | Value] = [
            str(record["dataset"]), str(record["trainer"]), str(record["neuron"]), str(record["norm"]),
            "" if not record["T"] else str(record["T"]), str(record["seed"]),
            str(record["device"]) + (f" ({record['precision']})" if record.get("precision") else ""),
            str(record["stage"]), f"{record['seconds']:.1f}", f"{record['peak_rss_mib']:.0f}",
            "–" if device_mib != device_mib else f"{device_mib:.0f}",
        ]
        rows.append(Row(cells, group_start=record["cell_id"] != previous and previous is not None))
        previous = record["cell_id"]
    legend = ["peak RSS: the process's resident memory at its highest during the stage (reset per stage where "
              "Linux allows it); peak device: torch.cuda.max_memory_allocated, reset per stage; – = on the CPU"]
    return Display([[Header(h) for h in COST_HEADERS]], 8, rows, caption=caption or "Time and memory per stage",
                   legend=legend)


def costs_text(costs: pd.DataFrame, fmt: str, caption: str | None = None, label: str | None = None) -> str:
    if fmt == "csv":
        return costs.to_csv(index=False)
    display = costs_display(costs, caption or "")
    return to_latex(display, caption, label) if fmt == "latex" else to_markdown(display)
