"""Volume segmentation metrics per subject: 3-D Dice, slice-wise 2-D Dice, Jaccard, HD95 and ASSD.

Overlap and surface distances come from ``medpy.metric.binary`` (``dc``, ``jc``, ``hd95``, ``assd``) so that
numbers match what the medical-imaging literature reports; distances are in mm through ``voxelspacing``.

Foreground is every non-zero voxel (medpy's convention); for label maps use :func:`mean_over_classes`,
which compares ``pred == c`` with ``target == c`` per class.

Empty-mask policy — "an empty prediction is scored as a failure (worst case)", never dropped:

==========================  ======  =======  ==========================
case                        dice    jaccard  hd95, assd
==========================  ======  =======  ==========================
empty pred, target present  0       0        diagonal of the volume, mm
target empty, pred present  0       0        diagonal of the volume, mm
both empty                  1       1        0
==========================  ======  =======  ==========================

medpy raises on an empty mask for the distances, and dropping such subjects would flatter a model that
misses structures, so the distance is replaced by the volume's diagonal ``sqrt(sum((n_i * s_i)^2))``: the
physical extent of the box, an upper bound no real prediction reaches (the BraTS convention, 373.13 mm for
240×240×155 at 1 mm). Both empty is a correct answer, so it gets the best scores. Such a penalty dominates
a mean HD95, so every subject also reports ``penalised``: how many of its masks (one, or one per class)
were scored with it; tables show the count beside HD95 / ASSD.

``dice_2d`` is the mean Dice over *axial* slices that contain foreground in the prediction or the target.
Which array axis is axial depends on the image orientation: it is the axis whose nibabel axis code
(``nibabel.aff2axcodes`` of the NIfTI affine) is S or I — axis 2 for an RAS volume such as MSD Task04
(axis 0 there is sagittal). Without an orientation the slices are taken along axis 0, as stated by
:func:`slice_axis`. Slices empty in both masks are left out: they would each score a trivial 1 and let the
background dominate the mean. When no slice has foreground (both volumes empty) ``dice_2d`` is 1, as
``dice``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from medpy.metric import binary as medpy_binary

VOLUME_METRIC_KEYS = ("dice", "dice_2d", "jaccard", "hd95", "assd", "penalised")
#: nibabel axis codes of the superior–inferior direction: slices across it are axial
AXIAL_CODES = ("S", "I")


def _check_inputs(pred: np.ndarray, target: np.ndarray, spacing: Sequence[float]) -> tuple[float, float, float]:
    if pred.ndim != 3:
        raise ValueError(f"volume metrics need 3-D arrays [D, H, W]; the prediction has shape {pred.shape}")
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {target.shape}")
    values = [float(s) for s in spacing]
    if len(values) != 3 or not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"voxel spacing must be three positive finite numbers (mm), got {tuple(spacing)}")
    return values[0], values[1], values[2]


def volume_diagonal(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Length in mm of the diagonal of a box of ``shape`` voxels of size ``spacing`` (the worst distance)."""
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing, strict=True))))


def slice_axis(orientation: Sequence[str] | None) -> int:
    """The array axis across which slices are axial: where ``orientation`` (e.g. ``("R", "A", "S")``, from
    ``nibabel.aff2axcodes``) has S or I; axis 0 when the orientation is unknown (None)."""
    if orientation is None:
        return 0
    codes = [str(code).upper() for code in orientation]
    if len(codes) != 3:
        raise ValueError(f"orientation must be three nibabel axis codes such as ('R', 'A', 'S'), got {orientation}")
    for axis, code in enumerate(codes):
        if code in AXIAL_CODES:
            return axis
    raise ValueError(f"orientation {tuple(codes)} has no superior–inferior axis (S or I), so no slice is axial")


def _slice_dice(pred: np.ndarray, target: np.ndarray, axis: int = 0) -> float:
    """Mean 2-D Dice over the slices across ``axis`` with foreground in either mask; 1.0 when none has any."""
    pred, target = np.moveaxis(pred, axis, 0), np.moveaxis(target, axis, 0)
    pred_any = pred.reshape(pred.shape[0], -1).any(axis=1)
    target_any = target.reshape(target.shape[0], -1).any(axis=1)
    scored = np.flatnonzero(pred_any | target_any)
    if scored.size == 0:
        return 1.0
    return float(np.mean([medpy_binary.dc(pred[k], target[k]) for k in scored]))


def volume_metrics(
    pred: np.ndarray, target: np.ndarray, spacing: Sequence[float], orientation: Sequence[str] | None = None,
) -> dict[str, float]:
    """Metrics of one subject: ``dice``, ``dice_2d``, ``jaccard``, ``hd95`` (mm), ``assd`` (mm), ``penalised``.

    ``pred`` and ``target`` are ``[D, H, W]`` int or bool volumes (non-zero = foreground); ``spacing`` is
    the voxel size in mm along the same three axes (from the NIfTI header), ``orientation`` their nibabel
    axis codes. Empty masks follow the module's policy: an empty prediction (or a prediction where the
    target is empty) is a failure with Dice 0 and both distances equal to the volume's diagonal in mm, and
    ``penalised`` is 1 (else 0); two empty masks score Dice 1 and distances 0. ``dice_2d`` averages the
    axial slices (:func:`slice_axis`) that hold foreground in either mask.
    """
    pred = np.asarray(pred).astype(bool)
    target = np.asarray(target).astype(bool)
    voxelspacing = _check_inputs(pred, target, spacing)
    axis = slice_axis(orientation)

    pred_empty = not pred.any()
    target_empty = not target.any()
    if pred_empty and target_empty:
        return {"dice": 1.0, "dice_2d": 1.0, "jaccard": 1.0, "hd95": 0.0, "assd": 0.0, "penalised": 0.0}

    metrics = {
        # medpy returns 0 for overlap when exactly one mask is empty, which is the policy already.
        "dice": float(medpy_binary.dc(pred, target)),
        "dice_2d": _slice_dice(pred, target, axis),
        "jaccard": float(medpy_binary.jc(pred, target)),
    }
    if pred_empty or target_empty:
        # medpy cannot measure a distance to nothing (it raises); score the worst case instead of dropping.
        worst = volume_diagonal(pred.shape, voxelspacing)
        metrics["hd95"] = worst
        metrics["assd"] = worst
        metrics["penalised"] = 1.0
    else:
        metrics["hd95"] = float(medpy_binary.hd95(pred, target, voxelspacing=voxelspacing))
        metrics["assd"] = float(medpy_binary.assd(pred, target, voxelspacing=voxelspacing))
        metrics["penalised"] = 0.0
    return metrics


def mean_over_classes(
    pred: np.ndarray, target: np.ndarray, spacing: Sequence[float], classes: Iterable[int],
    orientation: Sequence[str] | None = None,
) -> dict[str, float]:
    """Per-class :func:`volume_metrics` of label maps (``pred == c`` vs ``target == c``), averaged over ``classes``.

    Each class follows the empty-mask policy on its own, so a missed class counts as a failure in the mean
    instead of disappearing from it. Pass the foreground labels only (e.g. ``(1, 2)`` for the hippocampus'
    anterior and posterior parts): background would dominate the mean with near-perfect scores.
    ``penalised`` is the *number* of classes scored with the empty-mask penalty, not a mean.
    """
    labels = list(classes)
    if not labels:
        raise ValueError("mean_over_classes needs at least one class label")
    pred = np.asarray(pred)
    target = np.asarray(target)
    per_class = [volume_metrics(pred == c, target == c, spacing, orientation) for c in labels]
    out = {key: float(np.mean([m[key] for m in per_class])) for key in VOLUME_METRIC_KEYS}
    out["penalised"] = float(sum(m["penalised"] for m in per_class))
    return out
