import math

import numpy as np
import pytest

from bench_suite.metrics.volume import mean_over_classes, slice_axis, volume_diagonal, volume_metrics

ANISO = (2.0, 1.0, 1.0)


def test_overlap_metrics_on_a_small_volume():
    # 3×4×4. Target: a 2×2 square on slices 0 and 1 (8 voxels). Prediction: the same square on slice 0 only.
    target = np.zeros((3, 4, 4), dtype=np.uint8)
    target[0:2, 1:3, 1:3] = 1
    pred = np.zeros_like(target)
    pred[0, 1:3, 1:3] = 1
    m = volume_metrics(pred, target, (1.0, 1.0, 1.0))
    assert m["dice"] == pytest.approx(2 * 4 / (4 + 8))
    assert m["jaccard"] == pytest.approx(4 / 8)
    # Slice 0: Dice 1; slice 1: Dice 0 (prediction empty there); slice 2 has no foreground and is left out.
    assert m["dice_2d"] == pytest.approx(0.5)
    assert all(isinstance(v, float) for v in m.values())


def test_partial_overlap_with_bool_input():
    target = np.zeros((3, 4, 4), dtype=bool)
    target[0:2, 0:2, 0:2] = True
    pred = np.zeros_like(target)
    pred[0:2, 0:2, 1:3] = True  # shifted by one column: half of each slice overlaps
    m = volume_metrics(pred, target, ANISO)
    assert m["dice"] == pytest.approx(2 * 4 / 16)
    assert m["jaccard"] == pytest.approx(4 / 12)
    assert m["dice_2d"] == pytest.approx(0.5)


def _cube(shape=(6, 6, 6), offset=(0, 0, 0)):
    vol = np.zeros(shape, dtype=np.int64)
    z, y, x = (2 + o for o in offset)
    vol[z : z + 2, y : y + 2, x : x + 2] = 1
    return vol


@pytest.mark.parametrize(
    ("offset", "step_mm"),
    [((1, 0, 0), 2.0), ((0, 1, 0), 1.0), ((0, 0, 1), 1.0)],
)
def test_shifted_cube_distances_with_anisotropic_spacing(offset, step_mm):
    # A 2×2×2 cube is all surface. Shifted one voxel: in each direction 4 of its 8 voxels stay on the other
    # cube (distance 0) and 4 are one voxel step away (2 mm along axis 0, 1 mm along the others). The 16
    # symmetric distances are eight 0s and eight steps: ASSD = step/2, HD95 = step.
    m = volume_metrics(_cube(offset=offset), _cube(), ANISO)
    assert m["assd"] == pytest.approx(step_mm / 2)
    assert m["hd95"] == pytest.approx(step_mm)
    assert m["dice"] == pytest.approx(0.5)


def test_hd95_ignores_a_single_far_outlier_but_assd_does_not():
    # A line of 10 voxels along axis 2 (all surface), predicted exactly plus one stray voxel 10 voxels away.
    target = np.zeros((1, 1, 20), dtype=np.uint8)
    target[0, 0, :10] = 1
    pred = target.copy()
    pred[0, 0, 19] = 1
    spacing = (2.0, 1.0, 3.0)
    m = volume_metrics(pred, target, spacing)
    # Distances: 10 + 10 zeros and one 10·3 mm = 30 mm; 95th percentile (index 0.95·20 = 19) is 0.
    assert m["assd"] == pytest.approx(30 / 21)
    assert m["hd95"] == pytest.approx(0.0)


def test_volume_diagonal():
    assert volume_diagonal((6, 6, 6), ANISO) == pytest.approx(math.sqrt(12**2 + 6**2 + 6**2))
    assert volume_diagonal((240, 240, 155), (1, 1, 1)) == pytest.approx(373.13, abs=0.01)  # BraTS value


def test_empty_prediction_is_the_worst_case():
    target = _cube()
    m = volume_metrics(np.zeros_like(target), target, ANISO)
    worst = math.sqrt(12**2 + 6**2 + 6**2)
    assert m == pytest.approx({"dice": 0.0, "dice_2d": 0.0, "jaccard": 0.0, "hd95": worst, "assd": worst,
                               "penalised": 1.0})


def test_empty_target_with_a_prediction_is_the_worst_case():
    pred = _cube()
    m = volume_metrics(pred, np.zeros_like(pred), ANISO)
    worst = math.sqrt(12**2 + 6**2 + 6**2)
    assert m == pytest.approx({"dice": 0.0, "dice_2d": 0.0, "jaccard": 0.0, "hd95": worst, "assd": worst,
                               "penalised": 1.0})


def test_both_empty_is_a_perfect_answer():
    empty = np.zeros((3, 4, 4), dtype=bool)
    m = volume_metrics(empty, empty, ANISO)
    assert m == {"dice": 1.0, "dice_2d": 1.0, "jaccard": 1.0, "hd95": 0.0, "assd": 0.0, "penalised": 0.0}


def test_identical_masks():
    m = volume_metrics(_cube(), _cube(), ANISO)
    assert m == pytest.approx({"dice": 1.0, "dice_2d": 1.0, "jaccard": 1.0, "hd95": 0.0, "assd": 0.0,
                               "penalised": 0.0})


def test_mean_over_classes_averages_each_class_under_the_policy():
    # Class 1: the cube, predicted exactly. Class 2: present in the target, missed (predicted as class 1).
    target = _cube()
    target[0, 0, 0] = 2
    pred = _cube()
    pred[0, 0, 0] = 1
    worst = math.sqrt(12**2 + 6**2 + 6**2)
    class1 = volume_metrics(pred == 1, target == 1, ANISO)
    m = mean_over_classes(pred, target, ANISO, classes=(1, 2))
    assert m["dice"] == pytest.approx((class1["dice"] + 0.0) / 2)
    assert m["jaccard"] == pytest.approx((class1["jaccard"] + 0.0) / 2)
    assert m["hd95"] == pytest.approx((class1["hd95"] + worst) / 2)
    assert m["assd"] == pytest.approx((class1["assd"] + worst) / 2)
    assert set(m) == {"dice", "dice_2d", "jaccard", "hd95", "assd", "penalised"}
    assert m["penalised"] == 1.0  # one of the two classes was scored with the worst-case distance


def test_bad_inputs_raise():
    vol = np.zeros((3, 4, 4), dtype=bool)
    with pytest.raises(ValueError, match="differs"):
        volume_metrics(vol, np.zeros((3, 4, 5), dtype=bool), ANISO)
    with pytest.raises(ValueError, match="3-D"):
        volume_metrics(vol[0], vol[0], ANISO)
    with pytest.raises(ValueError, match="spacing"):
        volume_metrics(vol, vol, (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="at least one class"):
        mean_over_classes(vol, vol, ANISO, classes=())


# -- issue 14: slices named by the orientation, penalised subjects counted ----------------------------


def test_dice_2d_slices_are_axial_by_the_orientation():
    # an RAS volume (MSD Task04): axis 0 is left–right (sagittal slices), axis 2 inferior–superior (axial)
    target = np.zeros((4, 4, 3), dtype=bool)
    target[1:3, 1:3, 0:2] = True  # a 2×2 square on axial slices k = 0 and 1
    pred = np.zeros_like(target)
    pred[1:3, 1:3, 0] = True  # found on axial slice 0 only
    axial = volume_metrics(pred, target, (1, 1, 1), orientation=("R", "A", "S"))
    assert axial["dice_2d"] == pytest.approx((1.0 + 0.0) / 2)  # axial slice 0: Dice 1; slice 1: Dice 0
    along_axis_0 = volume_metrics(pred, target, (1, 1, 1))  # no orientation: slices across axis 0
    assert along_axis_0["dice_2d"] == pytest.approx(2 * 2 / (2 + 4))  # two sagittal slices, each Dice 2/3
    assert slice_axis(("R", "A", "S")) == 2 and slice_axis(("L", "P", "S")) == 2 and slice_axis(("S", "R", "A")) == 0
    assert slice_axis(("I", "L", "P")) == 0 and slice_axis(None) == 0
    with pytest.raises(ValueError, match="no superior–inferior axis"):
        slice_axis(("R", "A", "P"))


def test_penalised_counts_classes_scored_with_the_volume_diagonal():
    target = _cube()
    target[0, 0, 0] = 2
    pred = np.zeros_like(target)  # both classes missed
    assert mean_over_classes(pred, target, ANISO, classes=(1, 2))["penalised"] == 2.0
