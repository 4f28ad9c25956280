"""From the store to tables: a tidy frame (one row per cell × metric, or per sample), then a summary over
seeds, then CSV / Markdown / LaTeX text.

Everything is rebuilt from the store, so a report can be made at any time, also while a run goes on.

Cells are identified by ``dataset, model, neuron, norm, trainer, T, variant, seed``. ``variant`` names
whatever else tells cells apart (plugin parameters, model, profile) — but only the keys that actually
differ between otherwise equal cells, so a threshold sweep gets one row per threshold setting instead of
silently averaging them, and a plain run has ``variant == ""``.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from bench_suite.errors import BenchSuiteError, unknown_name_message
from bench_suite.metrics import METRICS, metric_info
from bench_suite.store import ResultStore

FORMATS = ("csv", "latex", "markdown")
CELL_COLUMNS = ["dataset", "model", "neuron", "norm", "trainer", "T", "variant", "seed", "fold"]
ROW_KEY = ["dataset", "trainer", "neuron", "norm", "T", "variant"]
STATS = ("mean", "std", "n")
_PRIMARY = ["dataset", "neuron", "norm", "trainer", "T"]
# seeds and cross-validation folds are replicates of one method, aggregated over, never variants
_NOT_VARIANT = {*_PRIMARY, "seed", "fold", "cell_id", "cell_key", "status"}
_REPLICATE_PARAMS = {"dataset.fold", "dataset.folds"}
_COUNTS = ("tp", "fp", "fn", "tn")
_ERROR_CHARS = 80


# -- tidy frame ----------------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _flat_parameters(cell: dict[str, Any]) -> dict[str, str]:
    """``{"neuron.thresholds": "4", "model": "unet"}``: every candidate for telling equal cells apart."""
    flat: dict[str, str] = {}
    for key, value in cell.items():
        if key in _NOT_VARIANT or _is_missing(value):
            continue
        params = json.loads(value) if key.endswith("_params") and isinstance(value, str) else value
        if isinstance(params, dict):
            for name, setting in sorted(params.items()):
                if f"{key.removesuffix('_params')}.{name}" in _REPLICATE_PARAMS:
                    continue
                flat[f"{key.removesuffix('_params')}.{name}"] = json.dumps(setting, sort_keys=True)
        else:
            flat[key] = str(value)
    return flat


def cell_identity(configs: pd.DataFrame) -> pd.DataFrame:
    """Per cell (indexed by cell_id) the columns of :data:`CELL_COLUMNS`, normalised for tables.

    ``configs`` is :meth:`ResultStore.cell_configs_frame`: every column but the ids is configuration.
    """
    records = configs.to_dict("records")
    flats = [_flat_parameters(record) for record in records]
    primaries = [tuple(str(record.get(key)) for key in _PRIMARY) for record in records]
    all_keys = {key for flat in flats for key in flat}
    values_by_key: dict[str, dict[tuple, set]] = {}
    for primary, flat in zip(primaries, flats, strict=True):
        for key in all_keys:
            values_by_key.setdefault(key, {}).setdefault(primary, set()).add(flat.get(key))
    varying = sorted(
        key for key, groups in values_by_key.items() if any(len(values) > 1 for values in groups.values())
    )
    rows = []
    for record, flat in zip(records, flats, strict=True):
        t = record.get("T")
        rows.append(
            {
                "cell_id": record["cell_id"],
                "dataset": str(record.get("dataset")),
                "model": "-" if _is_missing(record.get("model")) else str(record["model"]),
                "neuron": "-" if _is_missing(record.get("neuron")) else str(record["neuron"]),
                "norm": "-" if _is_missing(record.get("norm")) else str(record["norm"]),
                "trainer": str(record.get("trainer")),
                "T": 0 if _is_missing(t) else int(t),
                "variant": ", ".join(f"{key}={flat[key]}" for key in varying if key in flat),
                "seed": -1 if _is_missing(record.get("seed")) else int(record["seed"]),
                "fold": -1 if _is_missing(record.get("fold")) else int(record["fold"]),
            }
        )
    return pd.DataFrame(rows, columns=["cell_id", *CELL_COLUMNS]).set_index("cell_id")


def _metric_order(metric: str) -> tuple[int, str]:
    order = list(METRICS)
    return (order.index(metric) if metric in order else len(order), metric)


def _sorted_tidy(frame: pd.DataFrame, extra: list[str]) -> pd.DataFrame:
    keys = [*CELL_COLUMNS, *extra]
    frame = frame.assign(_metric=frame["metric"].map(_metric_order))
    return frame.sort_values([*keys, "_metric"], kind="stable").drop(columns="_metric").reset_index(drop=True)


_POOLED = {
    "f1_pooled": (("tp", "fp", "fn"), lambda c: 2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"])),
    "jaccard_pooled": (("tp", "fp", "fn"), lambda c: c["tp"] / (c["tp"] + c["fp"] + c["fn"])),
    "accuracy_pooled": (_COUNTS, lambda c: (c["tp"] + c["tn"]) / (c["tp"] + c["fp"] + c["fn"] + c["tn"])),
}


def _pooled(per_sample: pd.DataFrame) -> pd.DataFrame:
    """F1 / Jaccard / accuracy from confusion counts summed over each cell's samples (as the papers pool)."""
    empty = pd.DataFrame(columns=[*CELL_COLUMNS, "metric", "value", "n"])
    counts = per_sample[per_sample["metric"].isin(_COUNTS)]
    if counts.empty:
        return empty
    table = counts.set_index([*CELL_COLUMNS, "sample", "metric"])["value"].unstack("metric").astype(float)
    by_cell = table.groupby(level=CELL_COLUMNS, sort=False, dropna=False)
    # a missing count makes the pooled value unknown, not smaller
    sums = by_cell.sum().where(~table.isna().groupby(level=CELL_COLUMNS, sort=False, dropna=False).any())
    n = by_cell.size()
    parts = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for metric, (needed, formula) in _POOLED.items():
            if set(needed) <= set(sums.columns):
                values = formula(sums).replace([np.inf, -np.inf], np.nan)
                parts.append(pd.DataFrame({"metric": metric, "value": values, "n": n}).reset_index())
    return pd.concat(parts, ignore_index=True) if parts else empty


def summarize_cells(per_sample: pd.DataFrame) -> pd.DataFrame:
    """Per-sample tidy rows → one row per (cell, shown metric) plus pooled metrics.

    NaN samples are skipped in the mean and ``n`` counts the samples used; all-NaN gives NaN.
    """
    shown = per_sample[per_sample["metric"].map(lambda m: metric_info(m).shown)]
    means = (
        shown.groupby([*CELL_COLUMNS, "metric"], sort=False, dropna=False)["value"]
        .agg(value="mean", n="count")
        .reset_index()
    )
    frame = pd.concat([means, _pooled(per_sample)], ignore_index=True)
    frame["value"] = frame["value"].astype(float)
    frame["n"] = frame["n"].astype(int)
    return _sorted_tidy(frame[[*CELL_COLUMNS, "metric", "value", "n"]], [])


def _no_finished_cells(store: ResultStore, run_id: str) -> BenchSuiteError:
    cells = store.cells_frame(run_id)
    failed = cells[cells["status"] == "failed"]
    state = f"{len(failed)} failed, {int((cells['status'] == 'running').sum())} unfinished"
    if not failed.empty:
        state += f"; first error: {_short(failed['error'].iloc[0])}"
    return BenchSuiteError(
        f"run '{run_id}' in {store.results_dir} has no finished cells ({state}) — "
        f"finish it with `bench-suite run --resume {run_id}`"
    )


def tidy_frame(store: ResultStore, run_id: str, per_sample: bool = False) -> pd.DataFrame:
    """Done cells only: ``CELL_COLUMNS + [metric, value, n]``; per sample adds ``sample`` before metric."""
    identity = cell_identity(store.cell_configs_frame(run_id))
    samples = store.sample_metrics_frame(run_id)
    samples = samples[samples["status"] == "done"]
    if samples.empty:
        raise _no_finished_cells(store, run_id)
    rows = samples[["cell_id", "sample", "metric", "value"]].join(identity, on="cell_id", how="inner")
    rows = rows.assign(n=1)[[*CELL_COLUMNS, "sample", "metric", "value", "n"]]
    rows["value"] = rows["value"].astype(float)
    if per_sample:
        return _sorted_tidy(rows, ["sample"])
    return summarize_cells(rows)


def failed_cells(store: ResultStore, run_id: str) -> pd.DataFrame:
    """Failed cells with the table's row key, seed and error message."""
    cells = store.cells_frame(run_id)
    identity = cell_identity(store.cell_configs_frame(run_id))
    failed = cells[cells["status"] == "failed"][["cell_id", "error"]].join(identity, on="cell_id")
    return failed[[*CELL_COLUMNS, "error"]].reset_index(drop=True)


# -- summary over seeds --------------------------------------------------------------------------


def _is_ann(frame: pd.DataFrame) -> pd.Series:
    return (frame["T"] == 0) | (frame["neuron"] == "-")


def summary_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Rows ``ROW_KEY`` (ANN first per dataset), columns ``(metric, mean|std|n)`` over seeds."""
    if "sample" in tidy.columns:
        tidy = summarize_cells(tidy)
    shown = tidy[tidy["metric"].map(lambda m: metric_info(m).shown)]
    stats = (
        shown.groupby([*ROW_KEY, "metric"], dropna=False)["value"]
        .agg(mean="mean", std="std", n="count")
        .unstack("metric")
        .swaplevel(axis=1)
    )
    metrics = sorted(stats.columns.get_level_values(0).unique(), key=_metric_order)
    stats = stats.reindex(columns=pd.MultiIndex.from_product([metrics, STATS], names=["metric", "stat"]))
    rows = stats.index.to_frame(index=False)
    rows["_snn"] = ~_is_ann(rows)
    order = rows.sort_values(
        ["dataset", "_snn", "trainer", "neuron", "norm", "T", "variant"], kind="stable"
    ).index
    stats = stats.iloc[order]
    # a metric absent from a row's cells (another task's metric) is "not measured", unlike NaN values
    not_measured = {metric: stats[(metric, "n")].isna().to_numpy() for metric in metrics}
    for metric in metrics:
        stats[(metric, "n")] = stats[(metric, "n")].fillna(0).astype(int)
    stats.attrs["not_measured"] = not_measured
    return stats


# -- rendering -----------------------------------------------------------------------------------


def _short(message: Any) -> str:
    lines = [line.strip() for line in str(message or "unknown error").splitlines() if line.strip()]
    text = re.sub(r"\s+", " ", lines[0] if lines else "unknown error")
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1].rstrip() + "…"


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
