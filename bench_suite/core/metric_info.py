"""Metric names, display labels, directions and decimals, shared by evaluation, reports and suites.

Every table bench-suite writes formats a metric's values with :func:`format_value`, so one run shows the
same digits in ``run``, ``report`` and a suite's files: scores in [0, 1] with 3 decimals (as the papers
print them), dB and mm with 2, large counts (MACs, synaptic operations) with 3 significant digits.
"""

from __future__ import annotations

import dataclasses
import math
import re


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    label: str
    higher_is_better: bool = True
    shown: bool = True  # False for helper values (confusion counts) kept per sample for pooling
    decimals: int | None = 3  # None: 3 significant digits (large counts)
    aggregate: str = "mean"  # how a cell summarises its samples: "mean", or "sum" for counts of samples


METRICS: dict[str, MetricInfo] = {
    "f1": MetricInfo("F1"),
    "jaccard": MetricInfo("JS"),
    "accuracy": MetricInfo("ACC"),
    "f1_pooled": MetricInfo("F1 (pooled)"),
    "jaccard_pooled": MetricInfo("JS (pooled)"),
    "accuracy_pooled": MetricInfo("ACC (pooled)"),
    "miou_pooled": MetricInfo("mIoU (dataset)"),
    "miou": MetricInfo("mIoU (per-image)"),
    "psnr": MetricInfo("PSNR", decimals=2),
    "dice": MetricInfo("Dice 3-D"),
    "dice_2d": MetricInfo("Dice 2-D"),
    "hd95": MetricInfo("HD95 (mm)", higher_is_better=False, decimals=2),
    "assd": MetricInfo("ASSD (mm)", higher_is_better=False, decimals=2),
    # per sample: how many of its (class) masks were scored with the empty-prediction penalty (HD95 and
    # ASSD = the volume diagonal); per cell: their sum, shown beside HD95 / ASSD
    "penalised": MetricInfo("empty pred. (count)", higher_is_better=False, decimals=None, aggregate="sum"),
    "ssim": MetricInfo("SSIM"),
    "macs": MetricInfo("MACs", higher_is_better=False, decimals=None),
    "synops": MetricInfo("SynOps", higher_is_better=False, decimals=None),
    "energy_uj": MetricInfo("energy (µJ)", higher_is_better=False, decimals=2),
    "energy_ratio": MetricInfo("energy ÷ ANN", higher_is_better=False, decimals=3),
    "tp": MetricInfo("TP", shown=False),
    "fp": MetricInfo("FP", shown=False),
    "fn": MetricInfo("FN", shown=False),
    "tn": MetricInfo("TN", shown=False),
}


#: per-class confusion counts of a multi-class sample (``iou_tp_3``): kept for the dataset-level mIoU
CLASS_COUNT = re.compile(r"^iou_(tp|fp|fn)_(\d+)$")


def metric_info(name: str) -> MetricInfo:
    """The metric's info; a stage prefix (``converted/dice``) shares the metric's, an unknown name gets 3
    decimals below 1 and 2 above (see :func:`format_value`)."""
    stage, _, base = name.rpartition("/")
    if CLASS_COUNT.match(base):
        return MetricInfo(base, shown=False)
    if base in METRICS:
        info = METRICS[base]
        return dataclasses.replace(info, label=f"{info.label} ({stage})") if stage else info
    return MetricInfo(name, decimals=-1)


def format_value(metric: str, value: float | None) -> str:
    """``value`` with the metric's digits; "NaN" for an undefined value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    decimals = metric_info(metric).decimals
    if decimals == -1:  # a metric we know nothing about: by magnitude
        decimals = 3 if abs(value) <= 1 else (2 if abs(value) < 1e5 else None)
    return f"{value:.3g}" if decimals is None else f"{value:.{decimals}f}"
