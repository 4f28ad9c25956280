"""Segmentation metrics: binary F1 (Dice) / Jaccard / accuracy inside an FOV, pooled variants, and mIoU.

Binary metrics are computed per image and keep the confusion counts (``tp``, ``fp``, ``fn``, ``tn``) so
that the reference's pooled numbers (all test pixels counted together) can be rebuilt from stored
per-sample rows; multi-class images keep per-class counts (``iou_tp_k``, ``iou_fp_k``, ``iou_fn_k``) so
that the dataset-level mIoU comes from one confusion matrix over the test set. One function,
:func:`pooled_metrics`, turns summed counts into every pooled metric (reports use it too).

Empty-set policy, the same per image and pooled: when neither prediction nor target has a positive pixel,
F1 and Jaccard are 1.0 (the prediction is exactly right, and a 0/0 must not turn a perfect answer into
NaN or 0). Accuracy over an empty FOV is NaN because there is nothing to count. In mIoU a class absent
from both prediction and target has no IoU and is left out of the mean; no class at all gives NaN.
Pixels whose target is ``ignore_label`` (a void class) are not counted by the multi-class metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

ArrayOrScalar = float | int | np.ndarray | Sequence[float]


def _check_same_shape(pred: np.ndarray, target: np.ndarray, fov: np.ndarray | None) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    if fov is not None and fov.shape != target.shape:
        raise ValueError(f"FOV mask shape {fov.shape} differs from target shape {target.shape}")


def _binary_scores(tp: float, fp: float, fn: float, tn: float) -> tuple[float, float, float]:
    f1_denominator = 2.0 * tp + fp + fn
    union = tp + fp + fn
    total = tp + fp + fn + tn
    f1 = 2.0 * tp / f1_denominator if f1_denominator > 0 else 1.0
    jaccard = tp / union if union > 0 else 1.0
    accuracy = (tp + tn) / total if total > 0 else float("nan")
    return float(f1), float(jaccard), float(accuracy)


def binary_segmentation_metrics(
    pred: np.ndarray, target: np.ndarray, fov: np.ndarray | None = None
) -> dict[str, float]:
    """F1 (Dice), Jaccard, pixel accuracy and the confusion counts of one image; positive class = 1.

    Only pixels where ``fov`` is true are counted when a mask is given (DRIVE's field of view).
    If neither ``pred`` nor ``target`` has a positive pixel (in the FOV), F1 and Jaccard are defined as
    1.0; accuracy of an empty FOV is NaN.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    _check_same_shape(pred, target, fov)
    pred_pos = pred == 1
    target_pos = target == 1
    if fov is not None:
        inside = np.asarray(fov, dtype=bool)
        pred_pos = pred_pos[inside]
        target_pos = target_pos[inside]
    tp = int(np.count_nonzero(pred_pos & target_pos))
    fp = int(np.count_nonzero(pred_pos & ~target_pos))
    fn = int(np.count_nonzero(~pred_pos & target_pos))
    tn = int(pred_pos.size) - tp - fp - fn
    f1, jaccard, accuracy = _binary_scores(tp, fp, fn, tn)
    return {
        "f1": f1,
        "jaccard": jaccard,
        "accuracy": accuracy,
        "tp": float(tp),
        "fp": float(fp),
        "fn": float(fn),
        "tn": float(tn),
    }


def pooled_binary_metrics(
    tp: ArrayOrScalar, fp: ArrayOrScalar, fn: ArrayOrScalar, tn: ArrayOrScalar
) -> dict[str, float]:
    """F1, Jaccard and accuracy from confusion counts summed over a test set (the reference's numbers).

    Each argument is a count or a sequence of per-image counts; sequences are summed. The empty-set
    policy is that of :func:`binary_segmentation_metrics`.
    """
    totals = {name: float(np.sum(np.asarray(value, dtype=np.float64)))
              for name, value in (("tp", tp), ("fp", fp), ("fn", fn), ("tn", tn))}
    return pooled_metrics(totals)


def pooled_metrics(counts: Mapping[str, float]) -> dict[str, float]:
    """Every pooled metric the summed ``counts`` allow, under the module's one empty-set policy.

    ``counts`` holds sums over a test set: ``tp``/``fp``/``fn`` give ``f1_pooled`` and ``jaccard_pooled``,
    with ``tn`` also ``accuracy_pooled``; per-class ``iou_tp_k``/``iou_fp_k``/``iou_fn_k`` give
    ``miou_pooled`` (one confusion matrix over the set). A metric whose counts are missing (or NaN) is
    left out or NaN, never computed from part of them.
    """
    out: dict[str, float] = {}
    if all(name in counts for name in ("tp", "fp", "fn")):
        values = [float(counts[name]) for name in ("tp", "fp", "fn")]
        tn = float(counts["tn"]) if "tn" in counts else 0.0
        if all(math.isfinite(v) for v in values):
            f1, jaccard, accuracy = _binary_scores(*values, tn)
        else:
            f1 = jaccard = accuracy = math.nan
        out["f1_pooled"], out["jaccard_pooled"] = f1, jaccard
        if "tn" in counts:
            out["accuracy_pooled"] = accuracy if math.isfinite(tn) else math.nan
    classes = sorted({int(name.rsplit("_", 1)[1]) for name in counts if name.startswith("iou_tp_")})
    if classes:
        tp, fp, fn = (np.array([float(counts.get(f"iou_{kind}_{k}", math.nan)) for k in classes])
                      for kind in ("tp", "fp", "fn"))
        out["miou_pooled"] = miou_from_class_counts(tp, fp, fn)
    return out


def class_counts(matrix: np.ndarray) -> dict[str, float]:
    """Per-class ``iou_tp_k`` (the diagonal), ``iou_fp_k`` (predicted k, not k) and ``iou_fn_k`` of a matrix."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    out: dict[str, float] = {}
    for k in range(matrix.shape[0]):
        out.update({f"iou_tp_{k}": float(tp[k]), f"iou_fp_{k}": float(fp[k]), f"iou_fn_{k}": float(fn[k])})
    return out


def miou_from_class_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    """Mean IoU = tp / (tp + fp + fn) over classes with a non-empty union; NaN if none (or a count is NaN)."""
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    if not (np.isfinite(tp).all() and np.isfinite(fp).all() and np.isfinite(fn).all()):
        return float("nan")
    union = tp + fp + fn
    present = union > 0
    return float((tp[present] / union[present]).mean()) if present.any() else float("nan")


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, n_classes: int, fov: np.ndarray | None = None,
    ignore_label: int | None = None,
) -> np.ndarray:
    """``[n_classes, n_classes]`` int64 counts, rows = target class, columns = predicted class.

    Pixels outside ``fov`` and pixels whose target is ``ignore_label`` (a void class, which may lie outside
    ``0..n_classes-1``, e.g. 255) are not counted.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    _check_same_shape(pred, target, fov)
    if fov is not None:
        inside = np.asarray(fov, dtype=bool)
        pred, target = pred[inside], target[inside]
    if ignore_label is not None:
        counted = target != ignore_label
        pred, target = pred[counted], target[counted]
    pred = pred.astype(np.int64, copy=False).ravel()
    target = target.astype(np.int64, copy=False).ravel()
    for name, values in (("prediction", pred), ("target", target)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(
                f"{name} holds class ids from {values.min()} to {values.max()}, outside 0..{n_classes - 1}"
            )
    counts = np.bincount(target * n_classes + pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def iou_from_confusion(matrix: np.ndarray) -> np.ndarray:
    """Per-class IoU; NaN for a class absent from both prediction and target."""
    matrix = np.asarray(matrix, dtype=np.float64)
    intersection = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - intersection
    iou = np.full(intersection.shape, np.nan)
    present = union > 0
    iou[present] = intersection[present] / union[present]
    return iou


def miou_from_confusion(matrix: np.ndarray) -> float:
    """Mean IoU over classes present in prediction or target; NaN if no class is present."""
    iou = iou_from_confusion(matrix)
    valid = iou[~np.isnan(iou)]
    return float(valid.mean()) if valid.size else float("nan")


def multiclass_iou(
    pred: np.ndarray, target: np.ndarray, n_classes: int, fov: np.ndarray | None = None,
    ignore_label: int | None = None, with_counts: bool = False,
) -> dict[str, float]:
    """``{"miou": ...}`` of one image: per-class IoU from its confusion matrix, absent classes ignored.

    With ``with_counts`` also the image's per-class counts (:func:`class_counts`), which stored per sample
    give the dataset-level mIoU from one confusion matrix (:func:`pooled_metrics`: ``miou_pooled``).
    Pixels whose target is ``ignore_label`` are not counted.
    """
    matrix = confusion_matrix(pred, target, n_classes, fov, ignore_label)
    out = {"miou": miou_from_confusion(matrix)}
    if with_counts:
        out.update(class_counts(matrix))
    return out
