"""Segmentation metrics: binary F1 (Dice) / Jaccard / accuracy inside an FOV, pooled variants, and mIoU.

Binary metrics are computed per image and keep the confusion counts (``tp``, ``fp``, ``fn``, ``tn``) so
that the reference's pooled numbers (all test pixels counted together) can be rebuilt from stored
per-sample rows with :func:`pooled_binary_metrics`.

Empty-set policy: when neither prediction nor target has a positive pixel, F1 and Jaccard are 1.0 (the
prediction is exactly right, and a 0/0 must not turn a perfect answer into NaN or 0). Accuracy over an
empty FOV is NaN because there is nothing to count.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    totals = [float(np.sum(np.asarray(value, dtype=np.float64))) for value in (tp, fp, fn, tn)]
    f1, jaccard, accuracy = _binary_scores(*totals)
    return {"f1_pooled": f1, "jaccard_pooled": jaccard, "accuracy_pooled": accuracy}


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, n_classes: int, fov: np.ndarray | None = None
) -> np.ndarray:
    """``[n_classes, n_classes]`` int64 counts, rows = target class, columns = predicted class."""
    pred = np.asarray(pred)
    target = np.asarray(target)
    _check_same_shape(pred, target, fov)
    if fov is not None:
        inside = np.asarray(fov, dtype=bool)
        pred, target = pred[inside], target[inside]
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
    pred: np.ndarray, target: np.ndarray, n_classes: int, fov: np.ndarray | None = None
) -> dict[str, float]:
    """``{"miou": ...}`` of one image: per-class IoU from its confusion matrix, absent classes ignored.

    For the dataset-level number, sum the per-image :func:`confusion_matrix` results and call
    :func:`miou_from_confusion`.
    """
    return {"miou": miou_from_confusion(confusion_matrix(pred, target, n_classes, fov))}
