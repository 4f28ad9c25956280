"""Suite tables: a run's results in the layout of the paper table its suite reproduces.

:func:`suite_table` turns the report's tidy frame (one row per cell × metric) into rows × columns as the
suite's ``[table]`` says, each cell the mean ± std over seeds and folds, the paper's published value in a
``paper`` sub-column beside it, and a significance mark against the baseline row. The marks come from
per-sample tests (:mod:`bench_suite.results.stats`): for one dataset and metric, a method and the baseline were
scored on the same test samples, so the default test is paired; ``stats="paper"`` reproduces the
reference paper's unpaired one-sided procedure instead. All comparisons of one table are one family for
the Holm correction. Which test ran on which comparison, and why, is in :func:`suite_tests`.

:func:`baseline_comparisons` does the same tests for any run (``bench-suite report RUN --baseline
neuron=mt``), without a suite.

The frames carry what the renderers need in ``DataFrame.attrs`` as plain JSON-like values (lists,
dicts, strings), so they survive pandas operations that compare or copy attrs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench_suite.core.errors import BenchSuiteError, unknown_name_message
from bench_suite.core.metric_info import metric_info
from bench_suite.core.params import label_matches, parse_label
from bench_suite.results.frames import CELL_COLUMNS, cell_identity, summarize_cells, tidy_frame
from bench_suite.results.stats import Comparison, adjust, compare_paired, compare_unpaired_paper, significance_mark

if TYPE_CHECKING:  # a suite is handed in; results never import the experiment room
    from bench_suite.experiment.suite import Suite

STATS_MODES = ("paired", "paper")
IDENTITY = ("dataset", "model", "trainer", "neuron", "norm", "T", "variant")
METHOD_DIMS = ("model", "trainer", "neuron", "norm", "T", "variant")
VALUE_FIELDS = ("mean", "std", "n", "mark", "paper")
TEST_COLUMNS = [
    "dataset", "method", "baseline", "metric", "test", "reason", "n", "p", "p_holm", "effect_name", "effect",
    "ci_low", "ci_high", "mark", "direction",
]
_COUNTS = {"tp", "fp", "fn", "tn"}
_N_BOOT = 1000  # bootstrap resamples for effect-size CIs: enough for a 95 % CI in a table, and fast


# -- frames from the store ------------------------------------------------------------------------


def efficiency_frame(store, run_id: str) -> pd.DataFrame:
    """Per-cell cost as tidy rows (metrics ``macs``, ``synops``, ``energy_uj``, ``energy_ratio``).

    The runner keeps each cell's efficiency summary (per test image) in the cell's info, not among the
    per-sample metrics; Table 6 needs it as table values. ``macs`` is given for ANN cells only: for a
    spiking cell the ANN's MACs would read as the SNN's cost.
    """
    cells = store.cells_frame(run_id)
    cells = cells[cells["status"] == "done"]
    identity = cell_identity(store.cell_configs_frame(run_id))
    rows = []
    for cell_id, info in zip(cells["cell_id"], cells["info"], strict=True):
        summary = (json.loads(info) if isinstance(info, str) else info or {}).get("efficiency") or {}
        if not summary or cell_id not in identity.index:
            continue
        values: dict[str, float] = {}
        if "snn_energy_pj" in summary:
            values["synops"] = summary.get("snn_synops_per_sample", math.nan)
            values["energy_uj"] = summary["snn_energy_pj"] / 1e6
            values["energy_ratio"] = summary.get("energy_ratio", math.nan)
        elif "ann_energy_pj" in summary:
            values["macs"] = summary.get("ann_macs", math.nan)
            values["energy_uj"] = summary["ann_energy_pj"] / 1e6
        key = identity.loc[cell_id].to_dict()
        rows += [{**key, "metric": metric, "value": float(value), "n": 1} for metric, value in values.items()]
    return pd.DataFrame(rows, columns=[*CELL_COLUMNS, "metric", "value", "n"])


def suite_frames(store, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(tidy, per_sample)`` for :func:`suite_table`: the report's frames, plus the cost metrics."""
    per_sample = tidy_frame(store, run_id, per_sample=True)
    tidy = summarize_cells(per_sample)
    efficiency = efficiency_frame(store, run_id)
    if not efficiency.empty:
        tidy = pd.concat([tidy, efficiency], ignore_index=True)
    return tidy, per_sample


# -- normalisation --------------------------------------------------------------------------------


def _strip_fold(label: str) -> tuple[str, int]:
    """``hippocampus(folds=5,fold=2)`` → ``("hippocampus", 2)``: folds are replicates, like seeds."""
    parsed = parse_label(label)
    if parsed is None:
        return label, -1
    name, params = parsed
    if "fold" not in params and "folds" not in params:
        return label, -1
    fold = params.pop("fold", "-1")
    params.pop("folds", None)
    inner = ",".join(f"{k}={v}" for k, v in params.items())
    try:
        number = int(fold)
    except ValueError:
        number = -1
    return (f"{name}({inner})" if inner else name), number


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    stripped = [_strip_fold(str(label)) for label in frame["dataset"]]
    frame["dataset"] = [label for label, _ in stripped]
    # runs keep the fold in its own column; older ones only in the dataset label
    stored = frame["fold"].fillna(-1).astype(int) if "fold" in frame else pd.Series(-1, index=frame.index)
    frame["fold"] = [f if f >= 0 else parsed for f, (_, parsed) in zip(stored, stripped, strict=True)]
    frame["T"] = frame["T"].astype(int)
    frame["variant"] = frame["variant"].fillna("").astype(str)
    for column in ("model", "trainer", "neuron", "norm"):
        frame[column] = frame[column].astype(str)
    return frame


def _higher_is_better(metric: str, lower: Iterable[str] = ()) -> bool:
    if metric in set(lower):
        return False
    return metric_info(metric.split("/")[-1]).higher_is_better


def _is_shown(metric: str) -> bool:
    base = metric.split("/")[-1]
    return base not in _COUNTS and metric_info(base).shown


def _matches(kind: str, selector: str, value: Any) -> bool:
    if kind == "T":
        try:
            return int(value) == int(selector)
        except (TypeError, ValueError):
            return False
    return label_matches(selector, value)


def _parse_baseline(baseline: str) -> tuple[str, str]:
    if "=" not in str(baseline):
        raise BenchSuiteError(f"--baseline '{baseline}' is not KIND=NAME, e.g. --baseline neuron=mt")
    kind, selector = (part.strip() for part in str(baseline).split("=", 1))
    if kind not in (*IDENTITY,):
        raise BenchSuiteError(
            unknown_name_message("baseline kind", kind, IDENTITY) + " — write the baseline as KIND=NAME, "
            "e.g. neuron=mt or trainer=ann"
        )
    return kind, selector


# -- significance ---------------------------------------------------------------------------------


def _samples(per_sample: pd.DataFrame, coords: Mapping[str, Any], metric: str) -> pd.Series:
    """One value per test sample (mean over seeds), indexed by (fold, sample) for pairing."""
    mask = per_sample["metric"] == metric
    for key, value in coords.items():
        mask &= per_sample[key] == value
    chosen = per_sample[mask]
    if chosen.empty:
        return pd.Series(dtype=float)
    return chosen.groupby(["fold", "sample"])["value"].mean()


def _compare(row: pd.Series, base: pd.Series, higher: bool, stats: str, alternative: str) -> Comparison:
    if stats == "paired":
        joined = pd.concat([row.rename("row"), base.rename("base")], axis=1, join="inner")
        flipped = {"greater": "less", "less": "greater"}.get(alternative, alternative)
        # ``alternative`` is read as "the method is better than the baseline": flip it for lower-is-better
        return compare_paired(joined["row"].to_numpy(), joined["base"].to_numpy(),
                              alternative=alternative if higher else flipped, n_boot=_N_BOOT)
    sign = 1.0 if higher else -1.0
    # The paper's procedure tests one-sided "baseline better than method", on the two groups as given.
    return compare_unpaired_paper(sign * base.to_numpy(), sign * row.to_numpy(), n_boot=_N_BOOT)


def _direction(row: pd.Series, base: pd.Series, higher: bool) -> str:
    if row.empty or base.empty:
        return ""
    diff = float(row.mean() - base.mean())
    if not math.isfinite(diff) or diff == 0:
        return "same"
    return "better" if (diff > 0) == higher else "worse"


def _test_record(comparison: Comparison, stats: str) -> dict[str, Any]:
    reason = comparison.reason
    if stats == "paper" and comparison.test != "none":
        reason = f"one-sided, baseline better than method; {reason}"
    n = comparison.n if isinstance(comparison.n, int) else "/".join(map(str, comparison.n))
    return {
        "test": comparison.test, "reason": reason, "n": n, "p": comparison.p_value,
        "effect_name": comparison.effect_name, "effect": comparison.effect,
        "ci_low": comparison.effect_ci[0], "ci_high": comparison.effect_ci[1],
    }


def _finish_tests(records: list[dict[str, Any]], comparisons: list[Comparison]) -> pd.DataFrame:
    adjusted = adjust(comparisons) if comparisons else []
    for record, comparison in zip(records, adjusted, strict=True):
        record["p_holm"] = comparison.p_adjusted
        record["mark"] = significance_mark(comparison.p_adjusted)
    return pd.DataFrame(records, columns=TEST_COLUMNS + [c for c in (records[0] if records else {})
                                                         if c not in TEST_COLUMNS])


def _check_stats(stats: str) -> None:
    if stats not in STATS_MODES:
        raise BenchSuiteError(unknown_name_message("statistics procedure", stats, STATS_MODES)
                              + " — pass --stats paired or --stats paper")


def _method_label(key: Mapping[str, Any], show_model: bool) -> str:
    parts = [str(key["model"])] if show_model else []
    parts += [str(key[k]) for k in ("trainer", "neuron", "norm") if str(key[k]) != "-"]
    if int(key["T"]):
        parts.append(f"T={int(key['T'])}")
    if key.get("variant"):
        parts.append(f"[{key['variant']}]")
    return " ".join(parts)


def baseline_comparisons(
    per_sample: pd.DataFrame, baseline: str, stats: str = "paired", alternative: str = "two-sided",
) -> pd.DataFrame:
    """Every method of a run against the baseline ``KIND=NAME``, per dataset and metric, Holm-corrected.

    For each method the baseline is the matching cell group of the same dataset that agrees with it on
    the most other settings (so with ``neuron=mt`` ML at T=10 is compared with MT at T=10, not T=20).
    ``alternative`` is about the method against the baseline ("greater": the method is better).
    Columns: :data:`TEST_COLUMNS`.
    """
    _check_stats(stats)
    if "sample" not in per_sample.columns:
        raise BenchSuiteError("significance tests need per-sample metrics: pass tidy_frame(..., per_sample=True)")
    kind, selector = _parse_baseline(baseline)
    frame = _normalise(per_sample)
    frame = frame[frame["metric"].map(_is_shown)]
    methods = frame[list(METHOD_DIMS)].drop_duplicates()
    show_model = methods["model"].nunique() > 1
    if kind == "dataset":
        raise BenchSuiteError("--baseline compares methods within a dataset; give a method kind such as "
                              "neuron=mt or trainer=ann")
    is_base = frame[kind].map(lambda value: _matches(kind, selector, value))
    if not is_base.any():
        values = sorted(map(str, frame[kind].unique()))
        raise BenchSuiteError(f"--baseline {baseline}: no finished cell of this run has {kind} matching "
                              f"'{selector}'; its {kind} values: {', '.join(values)}")
    records, comparisons = [], []
    for (dataset, metric), group in frame.groupby(["dataset", "metric"], sort=True):
        keys = group[list(METHOD_DIMS)].drop_duplicates().to_dict("records")
        bases = [k for k in keys if _matches(kind, selector, k[kind])]
        # a method without the baseline's kind (the ANN has no neuron) has no counterpart to test against
        others = [k for k in keys if not _matches(kind, selector, k[kind]) and str(k[kind]) != "-"]
        higher = _higher_is_better(metric)
        for key in others:
            if not bases:
                continue
            others_dims = [d for d in METHOD_DIMS if d != kind]
            base = max(bases, key=lambda b: sum(str(b[d]) == str(key[d]) for d in others_dims))
            row_values = _samples(group, key, metric)
            base_values = _samples(group, base, metric)
            comparison = _compare(row_values, base_values, higher, stats, alternative)
            comparisons.append(comparison)
            records.append({
                "dataset": dataset, "method": _method_label(key, show_model),
                "baseline": _method_label(base, show_model), "metric": metric,
                **_test_record(comparison, stats), "direction": _direction(row_values, base_values, higher),
            })
    return _finish_tests(records, comparisons)


# -- the suite table ------------------------------------------------------------------------------


def _order_value(dim: str, value: Any, labels: list[str]) -> tuple:
    """Paper order: the ANN ("-", T=0) first, then the order of the suite's [table.labels], then by value."""
    if dim == "T":
        return (0, int(value), "")
    text = str(value)
    if text == "-":
        return (-1, 0, "")
    for position, selector in enumerate(labels):
        kind, _, sel = selector.partition("=")
        if kind == dim and label_matches(sel, text):
            return (0, position, text)
    return (1, 0, text)


def _display(dim: str, value: Any, labels: Mapping[str, str]) -> str:
    """A coordinate's display text; "" means left out of the row label (e.g. "-" or T=0)."""
    if dim == "T":
        t = int(value)
        return labels.get(f"T={t}", f"T={t}" if t else "")
    if dim == "variant":
        return str(value)
    text = str(value)
    if text == "-":
        return ""
    best, best_specificity = None, -1
    for selector, shown in labels.items():
        kind, _, sel = selector.partition("=")
        if kind == dim and label_matches(sel, text):
            parsed = parse_label(sel)
            specificity = len(parsed[1]) if parsed else 0
            if specificity > best_specificity:
                best, best_specificity = shown, specificity
    return text if best is None else best


def _metric_display(metric: str, suite: Suite) -> str:
    return suite.table.metric_labels.get(metric) or metric_info(metric).label


def _published_for(suite: Suite, coords: Mapping[str, Any], metric: str) -> tuple[int, Any] | None:
    for index, entry in enumerate(suite.published):
        if entry.metric != metric:
            continue
        if entry.dataset is not None and not label_matches(entry.dataset, coords.get("dataset", "")):
            continue
        if entry.T is not None and int(coords.get("T", -1)) != entry.T:
            continue
        if all(kind in coords and label_matches(sel, coords[kind]) for kind, sel in entry.row.items()):
            return index, entry
    return None


def suite_table(
    suite: Suite, tidy: pd.DataFrame, per_sample: pd.DataFrame | None = None, stats: str = "paired",
    alternative: str = "two-sided",
) -> pd.DataFrame:
    """The suite's table from a run's frames (see :func:`suite_frames`).

    Index: ``method`` (the display label) and the row dimensions; columns: ``(*column dimensions, field)``
    with field one of ``mean, std, n, mark, paper``. A dimension the suite does not name but that varies
    within a cell (say two T per method) becomes an extra row dimension, so nothing is averaged silently.
    Without ``per_sample`` no test is run (no marks).
    """
    _check_stats(stats)
    layout = suite.table
    if "sample" in tidy.columns:
        tidy = summarize_cells(tidy)
    frame = _normalise(tidy)
    frame = frame[frame["metric"].isin(layout.metrics)]
    if frame.empty:
        measured = ", ".join(sorted(map(str, tidy["metric"].unique()))) or "none"
        raise BenchSuiteError(
            f"this run measured none of suite '{suite.name}''s metrics ({', '.join(layout.metrics)}); "
            f"it has: {measured} — is it a run of that suite?"
        )
    rows, columns = list(layout.rows), list(layout.columns)
    keys = rows + columns
    for dim in IDENTITY:
        if dim not in keys and (frame.groupby(keys, dropna=False)[dim].nunique() > 1).any():
            rows.append(dim)
            keys = rows + columns
    label_order = list(layout.labels)
    grouped = frame.groupby(keys, dropna=False)
    stats_frame = grouped["value"].agg(mean="mean", std="std", n="count").reset_index()
    constants = grouped[[d for d in IDENTITY if d not in keys]].first().reset_index()
    stats_frame = stats_frame.merge(constants, on=keys, how="left")

    row_keys = sorted(
        {tuple(r) for r in stats_frame[rows].itertuples(index=False, name=None)},
        key=lambda key: tuple(_order_value(d, v, label_order) for d, v in zip(rows, key, strict=True)),
    )
    metric_order = {m: i for i, m in enumerate(layout.metrics)}

    def column_order(key: tuple) -> tuple:
        return tuple((0, metric_order[v], "") if d == "metric" else _order_value(d, v, label_order)
                     for d, v in zip(columns, key, strict=True))

    col_keys = sorted({tuple(c) for c in stats_frame[columns].itertuples(index=False, name=None)},
                      key=column_order)

    # values and published numbers
    by_key = {tuple(record[k] for k in keys): record for record in stats_frame.to_dict("records")}
    data: dict[tuple, dict[tuple, Any]] = {}
    published_used: set[int] = set()
    published_notes: dict[str, str] = {}
    for col in col_keys:
        for field in VALUE_FIELDS:
            data[(*col, field)] = {}
    for row in row_keys:
        for col in col_keys:
            record = by_key.get((*row, *col))
            if record is None:
                continue
            metric = col[columns.index("metric")]
            coords = {d: record[d] for d in IDENTITY}
            data[(*col, "mean")][row] = record["mean"]
            data[(*col, "std")][row] = record["std"]
            data[(*col, "n")][row] = record["n"]
            data[(*col, "mark")][row] = ""
            match = _published_for(suite, coords, metric)
            data[(*col, "paper")][row] = match[1].value if match else math.nan
            if match:
                published_used.add(match[0])
                entry = match[1]
                if entry.note or entry.source:
                    published_notes[str(entry.value)] = "; ".join(x for x in (entry.source, entry.note) if x)

    tests = _suite_tests(suite, per_sample, rows, columns, row_keys, col_keys, by_key, stats, alternative)
    for record in tests.to_dict("records"):
        data[(*record["_col"], "mark")][record["_row"]] = record["mark"]

    index = pd.MultiIndex.from_tuples(
        [(_row_label(rows, row, layout), *row) for row in row_keys], names=["method", *rows]
    )
    col_index = pd.MultiIndex.from_tuples(list(data), names=[*columns, "field"])
    table = pd.DataFrame(
        {col: [values.get(row, math.nan if col[-1] != "mark" else "") for row in row_keys]
         for col, values in data.items()},
        index=index,
    )
    table.columns = col_index

    unmatched = [
        {"dataset": e.dataset or "", "row": dict(e.row), "T": e.T, "metric": e.metric, "value": e.value,
         "source": e.source, "note": e.note}
        for i, e in enumerate(suite.published) if i not in published_used
    ]
    lower = sorted(m for m in layout.metrics if not _higher_is_better(m, layout.lower_is_better))
    table.attrs.update({
        "suite": suite.name, "caption": layout.caption or suite.description, "rows": rows, "columns": columns,
        "column_labels": {json.dumps(list(map(_jsonable, col))): [
            _metric_display(v, suite) if d == "metric" else (_display(d, v, layout.labels) or str(v))
            for d, v in zip(columns, col, strict=True)] for col in col_keys},
        "lower_is_better": lower, "stats": stats, "baseline": layout.baseline or "",
        "tests": tests.drop(columns=["_row", "_col"], errors="ignore").to_dict("records"),
        "unmatched_published": unmatched, "published_notes": published_notes,
        "reproduces": " ".join(v for v in (suite.reproduces.get("paper"), suite.reproduces.get("table")) if v),
    })
    return table


def _jsonable(value: Any) -> Any:
    return int(value) if isinstance(value, (np.integer,)) else value


def _row_label(rows: list[str], row: tuple, layout) -> str:
    """``MT+FT T=10``: method parts joined by the separator, settings (T, variant) after a space."""
    method = [_display(d, v, layout.labels) for d, v in zip(rows, row, strict=True) if d not in ("T", "variant")]
    settings = [_display(d, v, layout.labels) for d, v in zip(rows, row, strict=True) if d in ("T", "variant")]
    text = " ".join(p for p in (layout.label_separator.join(p for p in method if p), *settings) if p)
    return text or ", ".join(str(v) for v in row)


def _suite_tests(
    suite: Suite, per_sample: pd.DataFrame | None, rows: list[str], columns: list[str],
    row_keys: list[tuple], col_keys: list[tuple], by_key: dict[tuple, dict], stats: str, alternative: str,
) -> pd.DataFrame:
    layout = suite.table
    if per_sample is None or layout.baseline is None or per_sample.empty:
        return pd.DataFrame(columns=[*TEST_COLUMNS, "column", "_row", "_col"])
    kind, selector = _parse_baseline(layout.baseline)
    samples = _normalise(per_sample)
    records, comparisons = [], []
    for col in col_keys:
        metric = col[columns.index("metric")]
        higher = _higher_is_better(metric, layout.lower_is_better)
        if not (samples["metric"] == metric).any():
            continue  # a metric without per-sample values (e.g. energy): nothing to test
        present = [row for row in row_keys if (*row, *col) in by_key]
        coords = {row: {d: by_key[(*row, *col)][d] for d in IDENTITY} for row in present}
        bases = [row for row in present if _matches(kind, selector, coords[row][kind])]
        for row in present:
            # a method without the baseline's kind (the ANN has no neuron) has no counterpart to test against
            if row in bases or not bases or str(coords[row][kind]) == "-":
                continue
            other = [d for d in rows if d != kind]
            base = max(bases, key=lambda b: sum(str(b[rows.index(d)]) == str(row[rows.index(d)]) for d in other))
            row_values = _samples(samples, coords[row], metric)
            base_values = _samples(samples, coords[base], metric)
            if row_values.empty or base_values.empty:
                continue
            comparison = _compare(row_values, base_values, higher, stats, alternative)
            comparisons.append(comparison)
            records.append({
                "dataset": coords[row]["dataset"], "method": _row_label(rows, row, layout),
                "baseline": _row_label(rows, base, layout), "metric": metric,
                **_test_record(comparison, stats), "direction": _direction(row_values, base_values, higher),
                "column": json.dumps(list(map(_jsonable, col))),
                "_row": row, "_col": col,
            })
    return _finish_tests(records, comparisons)


def suite_tests(table: pd.DataFrame) -> pd.DataFrame:
    """The comparisons behind a suite table's marks: test, why it was chosen, p, Holm p, effect and CI."""
    return pd.DataFrame(table.attrs.get("tests", []), columns=TEST_COLUMNS)


def method_label(layout, coords: Mapping[str, Any]) -> str:
    """The suite's display label (``MT+FT``) of a method given by its coordinates (trainer, neuron, …)."""
    rows = [d for d in layout.rows if d in coords]
    return _row_label(rows, tuple(coords[d] for d in rows), layout)
