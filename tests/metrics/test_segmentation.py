import math

import numpy as np
import pytest

from bench_suite.metrics.segmentation import (
    binary_segmentation_metrics,
    class_counts,
    confusion_matrix,
    miou_from_class_counts,
    miou_from_confusion,
    multiclass_iou,
    pooled_binary_metrics,
    pooled_metrics,
)

PRED = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1]])
TARGET = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1]])
FOV = np.array([[True, True, True], [True, True, True], [False, False, True]])


def test_binary_metrics_count_only_inside_the_fov():
    # Inside the FOV: TP at (0,0),(1,0),(2,2); FP at (0,2),(1,1); FN at (0,1); TN at (1,2).
    # The FN at (2,1) and the TN at (2,0) lie outside.
    m = binary_segmentation_metrics(PRED, TARGET, FOV)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (3, 2, 1, 1)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert m["jaccard"] == pytest.approx(3 / 6)
    assert m["accuracy"] == pytest.approx(4 / 7)
    assert all(isinstance(v, float) for v in m.values())


def test_binary_metrics_without_fov_count_every_pixel():
    m = binary_segmentation_metrics(PRED, TARGET, None)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (3, 2, 2, 2)
    assert m["f1"] == pytest.approx(0.6)
    assert m["jaccard"] == pytest.approx(3 / 7)
    assert m["accuracy"] == pytest.approx(5 / 9)


def test_no_positives_anywhere_scores_one_and_never_divides_by_zero():
    zeros = np.zeros((4, 4), dtype=np.int64)
    m = binary_segmentation_metrics(zeros, zeros, None)
    assert m["f1"] == 1.0 and m["jaccard"] == 1.0 and m["accuracy"] == 1.0


def test_false_positives_on_an_empty_target_score_zero():
    target = np.zeros((2, 2), dtype=np.int64)
    pred = np.array([[1, 0], [0, 0]])
    m = binary_segmentation_metrics(pred, target)
    assert m["f1"] == 0.0 and m["jaccard"] == 0.0 and m["accuracy"] == 0.75


def test_empty_fov_gives_nan_accuracy():
    m = binary_segmentation_metrics(PRED, TARGET, np.zeros((3, 3), dtype=bool))
    assert m["tp"] == m["fp"] == m["fn"] == m["tn"] == 0
    assert math.isnan(m["accuracy"])


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        binary_segmentation_metrics(PRED, TARGET[:2])
    with pytest.raises(ValueError, match="FOV"):
        binary_segmentation_metrics(PRED, TARGET, FOV[:2])


def test_pooled_metrics_sum_counts_over_images():
    # Image A: tp 3, fp 2, fn 1, tn 1; image B: tp 1, fp 0, fn 3, tn 5 → totals 4, 2, 4, 6.
    pooled = pooled_binary_metrics([3, 1], [2, 0], [1, 3], [1, 5])
    assert pooled["f1_pooled"] == pytest.approx(8 / 14)
    assert pooled["jaccard_pooled"] == pytest.approx(4 / 10)
    assert pooled["accuracy_pooled"] == pytest.approx(10 / 16)
    mean_f1 = (6 / 9 + 2 / 6) / 2
    assert pooled["f1_pooled"] != pytest.approx(mean_f1)  # pooling is not the mean of per-image F1


def test_pooled_metrics_accept_scalars_and_per_image_rows():
    rows = [binary_segmentation_metrics(PRED, TARGET, FOV), binary_segmentation_metrics(PRED, TARGET)]
    pooled = pooled_binary_metrics(*[[r[k] for r in rows] for k in ("tp", "fp", "fn", "tn")])
    assert pooled == pooled_binary_metrics(3 + 3, 2 + 2, 1 + 2, 1 + 2)
    assert pooled_binary_metrics(0, 0, 0, 10)["f1_pooled"] == 1.0


def test_miou_ignores_a_class_absent_from_both():
    target = np.array([[0, 0, 1], [1, 2, 2]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    # IoU: class 0 = 1/3, class 1 = 2/3, class 2 = 1/2; class 3 appears nowhere and is ignored.
    assert multiclass_iou(pred, target, n_classes=4)["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    matrix = confusion_matrix(pred, target, 4)
    assert matrix.shape == (4, 4) and matrix.sum() == 6
    assert matrix[0].tolist() == [1, 1, 0, 0]  # rows: target class, columns: predicted class


def test_miou_counts_a_class_predicted_but_absent_from_the_target():
    target = np.zeros((2, 2), dtype=np.int64)
    pred = np.array([[0, 0], [0, 1]])
    assert multiclass_iou(pred, target, 2)["miou"] == pytest.approx((3 / 4 + 0.0) / 2)


def test_miou_pooled_from_summed_confusion_matrices():
    a_pred, a_target = np.array([[0, 1]]), np.array([[0, 1]])
    b_pred, b_target = np.array([[0, 0]]), np.array([[0, 1]])
    total = confusion_matrix(a_pred, a_target, 2) + confusion_matrix(b_pred, b_target, 2)
    assert miou_from_confusion(total) == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_miou_rejects_out_of_range_classes():
    with pytest.raises(ValueError, match="outside"):
        multiclass_iou(np.array([[0, 5]]), np.array([[0, 1]]), 2)


# -- issue 14: dataset-level mIoU, ignore_label, one pooling rule -------------------------------------


def test_per_class_counts_give_the_dataset_level_miou():
    # image 1: class 0 IoU 2/3, class 1 IoU 1/2 (mIoU 7/12); image 2: only class 1, IoU 1 (mIoU 1)
    first = multiclass_iou(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]), 2, with_counts=True)
    second = multiclass_iou(np.ones(4, int), np.ones(4, int), 2, with_counts=True)
    assert first["miou"] == pytest.approx(7 / 12) and second["miou"] == 1.0
    assert {k: first[k] for k in ("iou_tp_0", "iou_fp_0", "iou_fn_0")} == {"iou_tp_0": 2, "iou_fp_0": 0, "iou_fn_0": 1}
    summed = {k: first[k] + second[k] for k in first if k.startswith("iou_")}
    assert pooled_metrics(summed)["miou_pooled"] == pytest.approx((2 / 3 + 5 / 6) / 2)  # 0.75, not 19/24
    total = confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]), 2) + confusion_matrix(
        np.ones(4, int), np.ones(4, int), 2)
    assert miou_from_confusion(total) == pytest.approx(pooled_metrics(summed)["miou_pooled"])
    assert class_counts(total) == summed


def test_ignore_label_pixels_are_not_counted():
    target = np.array([[0, 1, 255], [1, 255, 0]])
    pred = np.array([[0, 1, 1], [0, 0, 0]])
    m = multiclass_iou(pred, target, 2, ignore_label=255, with_counts=True)
    # counted: (0,0) (0,1) (1,0) (1,2): class 0 tp 2 fp 1 fn 0 → 2/3; class 1 tp 1 fp 0 fn 1 → 1/2
    assert m["miou"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert (m["iou_tp_1"], m["iou_fn_1"]) == (1, 1)
    with pytest.raises(ValueError, match="outside 0..1"):
        multiclass_iou(pred, target, 2)  # without ignore_label the void class is out of range


def test_one_pooling_rule_for_binary_and_multiclass_counts():
    assert pooled_metrics({"tp": 0, "fp": 0, "fn": 0, "tn": 9}) == {
        "f1_pooled": 1.0, "jaccard_pooled": 1.0, "accuracy_pooled": 1.0}
    assert pooled_binary_metrics(0, 0, 0, 0)["f1_pooled"] == 1.0
    assert math.isnan(pooled_binary_metrics(0, 0, 0, 0)["accuracy_pooled"])
    assert math.isnan(pooled_metrics({"tp": 1, "fp": math.nan, "fn": 0})["f1_pooled"])  # unknown, not smaller
    assert "accuracy_pooled" not in pooled_metrics({"tp": 1, "fp": 0, "fn": 0})
    assert math.isnan(miou_from_class_counts([0, 0], [0, 0], [0, 0]))  # no class present
