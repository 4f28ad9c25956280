"""From the store to frames: a tidy frame (one row per cell × metric, or per sample), then a summary
over seeds.

Everything is rebuilt from the store, so a report can be made at any time, also while a run goes on.

Cells are identified by ``dataset, model, neuron, norm, trainer, T, variant, seed``. ``variant`` names
whatever else tells cells apart (plugin parameters, model, profile) — but only the keys that actually
differ between otherwise equal cells, so a threshold sweep gets one row per threshold setting instead of
silently averaging them, and a plain run has ``variant == ""``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.metric_info import CLASS_COUNT, METRICS, metric_info
from bench_suite.core.paths import results_option
from bench_suite.metrics.segmentation import pooled_metrics
from bench_suite.results.store import ResultStore

CELL_COLUMNS = ["dataset", "model", "neuron", "norm", "trainer", "T", "variant", "seed", "fold"]
ROW_KEY = ["dataset", "trainer", "neuron", "norm", "T", "variant"]
STATS = ("mean", "std", "n")
_PRIMARY = ["dataset", "neuron", "norm", "trainer", "T"]
# seeds and cross-validation folds are replicates of one method, aggregated over, never variants
_NOT_VARIANT = {*_PRIMARY, "seed", "fold", "cell_id", "cell_key", "status"}
_REPLICATE_PARAMS = {"dataset.fold", "dataset.folds"}
_COUNTS = ("tp", "fp", "fn", "tn")


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


def _is_count(metric: str) -> bool:
    """A confusion count kept per sample for pooling (``tp`` … ``tn``, per-class ``iou_tp_k`` …)."""
    base = metric.rpartition("/")[2]
    return base in _COUNTS or bool(CLASS_COUNT.match(base))


def _pooled(per_sample: pd.DataFrame) -> pd.DataFrame:
    """Pooled metrics per cell from confusion counts summed over the cell's samples (as the papers pool):
    F1 / Jaccard / accuracy from ``tp`` … ``tn`` and the dataset-level mIoU from per-class counts — one
    confusion matrix over the test set. The formulas and the empty-set rule are those of
    :func:`bench_suite.metrics.segmentation.pooled_metrics`, the same as per image; a count missing for
    any sample of the cell makes the pooled value unknown (NaN), not smaller."""
    empty = pd.DataFrame(columns=[*CELL_COLUMNS, "metric", "value", "n"])
    counts = per_sample[per_sample["metric"].map(_is_count)]
    if counts.empty:
        return empty
    stage = counts["metric"].str.rpartition("/")[0]
    counts = counts.assign(_stage=stage, metric=counts["metric"].str.rpartition("/")[2])
    table = counts.set_index([*CELL_COLUMNS, "_stage", "sample", "metric"])["value"].unstack("metric").astype(float)
    keys = [*CELL_COLUMNS, "_stage"]
    by_cell = table.groupby(level=keys, sort=False, dropna=False)
    # a missing count makes the pooled value unknown, not smaller
    sums = by_cell.sum().where(~table.isna().groupby(level=keys, sort=False, dropna=False).any())
    present = table.notna().groupby(level=keys, sort=False, dropna=False).any()  # counts the cell stored
    n = by_cell.size()
    records = []
    for key, row in sums.iterrows():
        values = pooled_metrics({name: value for name, value in row.items() if present.loc[key, name]})
        *cell, stage = key
        for metric, value in values.items():
            name = f"{stage}/{metric}" if stage else metric
            records.append({**dict(zip(CELL_COLUMNS, cell, strict=True)), "metric": name, "value": value,
                            "n": int(n.loc[key])})
    return pd.DataFrame(records, columns=[*CELL_COLUMNS, "metric", "value", "n"]) if records else empty


def summarize_cells(per_sample: pd.DataFrame) -> pd.DataFrame:
    """Per-sample tidy rows → one row per (cell, shown metric) plus pooled metrics.

    NaN samples are skipped in the mean and ``n`` counts the samples used; all-NaN gives NaN. A metric
    whose :class:`MetricInfo` aggregates by ``"sum"`` (``penalised``: subjects scored with the
    empty-prediction penalty) is summed over the cell's samples instead.
    """
    shown = per_sample[per_sample["metric"].map(lambda m: metric_info(m).shown)]
    summed = shown["metric"].map(lambda m: metric_info(m).aggregate == "sum").astype(bool)
    group = [*CELL_COLUMNS, "metric"]
    parts = [
        shown[~summed].groupby(group, sort=False, dropna=False)["value"].agg(value="mean", n="count").reset_index(),
        shown[summed].groupby(group, sort=False, dropna=False)["value"].agg(value="sum", n="count").reset_index(),
        _pooled(per_sample),
    ]
    frame = pd.concat([p for p in parts if not p.empty], ignore_index=True) if any(
        not p.empty for p in parts) else pd.DataFrame(columns=[*group, "value", "n"])
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
        f"finish it with `bench-suite run --resume {run_id}{results_option(store.results_dir)}`"
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


_ERROR_CHARS = 80


def _short(message: Any) -> str:
    lines = [line.strip() for line in str(message or "unknown error").splitlines() if line.strip()]
    text = re.sub(r"\s+", " ", lines[0] if lines else "unknown error")
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1].rstrip() + "…"


# -- what each cell cost ---------------------------------------------------------------------------

#: stages in the order a cell runs them (a plugin's own stage names follow, in the order first seen)
STAGE_ORDER = ("ann", "calibration", "fine-tune", "evaluation")


def stage_costs(store: ResultStore, run_id: str) -> pd.DataFrame:
    """One row per finished or failed cell and stage: seconds, peak RSS and peak device memory (MiB).

    The cell runner measures every stage on its own (``StageMeter``: the CUDA peak is reset per stage, the
    RSS peak where the kernel allows it, else it is the process's peak so far); a stage that ran twice
    (two ANNs) adds its seconds and keeps the larger peaks. ``device`` is where the cell ran (the GPU's name
    for CUDA); NaN device memory means the stage ran on the CPU.
    """
    cells = store.cells_frame(run_id)
    identity = cell_identity(store.cell_configs_frame(run_id))
    rows = []
    for record in cells.to_dict("records"):
        if record["status"] not in ("done", "failed"):
            continue
        info = json.loads(record["info"]) if isinstance(record.get("info"), str) and record["info"] else {}
        memory = info.get("memory") or {}
        found = info.get("versions") or {}
        device = found.get("device_name") or found.get("device") or ""
        precision = (info.get("environment") or {}).get("precision", "")
        order = [s for s in STAGE_ORDER if s in memory] + [s for s in memory if s not in STAGE_ORDER]
        key = identity.loc[record["cell_id"]].to_dict() if record["cell_id"] in identity.index else {}
        for stage in order:
            entry = memory[stage]
            rows.append({
                "cell_id": record["cell_id"], **{c: key.get(c) for c in CELL_COLUMNS}, "status": record["status"],
                "device": device, "precision": precision, "stage": stage,
                "seconds": float(entry.get("seconds", math.nan)),
                "peak_rss_mib": float(entry.get("peak_rss_mib", math.nan)),
                "peak_device_mib": float(entry.get("peak_device_mib", math.nan)),
            })
    columns = ["cell_id", *CELL_COLUMNS, "status", "device", "precision", "stage", "seconds", "peak_rss_mib",
               "peak_device_mib"]
    return pd.DataFrame(rows, columns=columns)
