"""Metric names, display labels and directions, shared by evaluation and reports."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    label: str
    higher_is_better: bool = True
    shown: bool = True  # False for helper values (confusion counts) kept per sample for pooling


METRICS: dict[str, MetricInfo] = {
    "f1": MetricInfo("F1"),
    "jaccard": MetricInfo("JS"),
    "accuracy": MetricInfo("ACC"),
    "f1_pooled": MetricInfo("F1 (pooled)"),
    "jaccard_pooled": MetricInfo("JS (pooled)"),
    "accuracy_pooled": MetricInfo("ACC (pooled)"),
    "miou": MetricInfo("mIoU"),
    "psnr": MetricInfo("PSNR"),
    "dice": MetricInfo("Dice 3-D"),
    "dice_2d": MetricInfo("Dice 2-D"),
    "hd95": MetricInfo("HD95 (mm)", higher_is_better=False),
    "assd": MetricInfo("ASSD (mm)", higher_is_better=False),
    "ssim": MetricInfo("SSIM"),
    "tp": MetricInfo("TP", shown=False),
    "fp": MetricInfo("FP", shown=False),
    "fn": MetricInfo("FN", shown=False),
    "tn": MetricInfo("TN", shown=False),
}


def metric_info(name: str) -> MetricInfo:
    return METRICS.get(name, MetricInfo(name))
