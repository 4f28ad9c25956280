import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from bench_suite.trainers.ann import init_foreground_prior


class Net(nn.Module):
    def __init__(self, out_channels):
        super().__init__()
        self.head = nn.Conv2d(4, out_channels, 1)


def test_one_logit_head_starts_at_the_foreground_prior():
    targets = torch.zeros(2, 4, 4, dtype=torch.int64)
    targets[:, :2, :2] = 1  # a quarter of the pixels
    net = Net(1)
    init_foreground_prior(net, SimpleNamespace(targets=targets))
    assert net.head.bias.item() == pytest.approx(math.log(0.25 / 0.75))
    assert torch.sigmoid(net.head.bias).item() == pytest.approx(0.25)


def test_two_logit_heads_start_at_the_prior_and_others_are_left_alone():
    two = Net(2)
    targets = torch.tensor([[[1, 0], [0, 0]]])  # foreground fraction 1/4
    init_foreground_prior(two, SimpleNamespace(targets=targets))
    assert torch.allclose(two.head.bias, torch.tensor([0.0, math.log(1 / 3)]))
    assert torch.allclose(torch.softmax(two.head.bias, 0)[1], torch.tensor(0.25))
    three = Net(3)
    before = three.head.bias.clone()
    init_foreground_prior(three, SimpleNamespace(targets=torch.tensor([[[2, 0], [1, 0]]])))  # multi-class
    assert torch.equal(three.head.bias, before)
    one = Net(1)
    before = one.head.bias.clone()
    init_foreground_prior(one, SimpleNamespace(targets=None))  # denoising: no class targets
    assert torch.equal(one.head.bias, before)


def test_dihedral_turns_each_image_with_its_target_and_only_by_symmetries():
    from bench_suite.snn.training import dihedral

    images = torch.arange(6 * 16, dtype=torch.float32).view(6, 1, 4, 4)
    targets = images[:, 0].long().clone()
    out_images, out_targets = dihedral(images, targets, torch.Generator().manual_seed(3))
    assert torch.equal(out_images[:, 0].long(), out_targets)  # image and target turned alike
    symmetries = [torch.rot90(images, k, dims=(-2, -1)).flip(-1) if f else torch.rot90(images, k, dims=(-2, -1))
                  for f in (0, 1) for k in range(4)]
    moved = 0
    for i in range(len(images)):
        matches = [j for j, s in enumerate(symmetries) if torch.equal(out_images[i], s[i])]
        assert matches, f"sample {i} is not a symmetry of its patch"
        moved += matches[0] != 0
    assert moved > 0  # six draws from eight: not all the identity
    assert torch.equal(images, torch.arange(6 * 16, dtype=torch.float32).view(6, 1, 4, 4))  # input untouched
    again, _ = dihedral(images, targets, torch.Generator().manual_seed(3))
    assert torch.equal(again, out_images)  # the seed decides


def test_dihedral_only_flips_patches_that_are_not_square():
    from bench_suite.snn.training import dihedral

    images = torch.rand(16, 2, 3, 5)
    out, _ = dihedral(images, None, torch.Generator().manual_seed(0))
    for i in range(len(images)):
        assert torch.equal(out[i], images[i]) or torch.equal(out[i], images[i].flip(-1))


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_ann_schedules_change_the_rate_per_batch_and_end_low(schedule):
    from bench_suite.snn.training import learning_rate_schedule

    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = learning_rate_schedule(optimizer, schedule, 20)
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert max(rates) == pytest.approx(0.1, rel=0.05)
    assert rates[-1] < 0.02
    if schedule == "onecycle":
        assert rates[0] < 0.01 and rates.index(max(rates)) > 0  # warms up first
    assert learning_rate_schedule(optimizer, "constant", 20) is None


@pytest.mark.parametrize("kind", ["segmentation", "denoising"])
def test_augmented_training_patches_are_symmetries_of_the_plain_ones(kind):
    import dataclasses

    from bench_suite.core.profiles import PROFILES
    from bench_suite.snn.training import TrainingPatches
    from bench_suite.testing.checks import tiny_bundle

    bundle = tiny_bundle(kind)
    profile = dataclasses.replace(PROFILES["smoke"], patches_per_image=4, batch_size=16)
    plain = TrainingPatches(bundle, profile, seed=0)
    turned = TrainingPatches(bundle, profile, seed=0, augment="dihedral")
    assert torch.equal(plain.images, turned.images)  # the same patches are sampled; only batches turn
    (x0, y0), (x, y) = next(plain.batches(0)), next(turned.batches(0))  # the order is drawn first: the same
    if kind == "denoising":
        x0, x = x0 - y0, x - y  # the clean patches (input = patch + noise; the noise is drawn afterwards)
    changed = 0
    for i in range(len(x)):
        options = [torch.rot90(x0[i], k, dims=(-2, -1)) for k in range(4)]
        options += [o.flip(-1) for o in options]
        matches = [k for k, o in enumerate(options) if torch.allclose(x[i], o, atol=1e-6)]
        assert matches, f"patch {i} is not a symmetry of its plain patch"
        changed += matches[0] != 0
        if kind == "segmentation":
            turn = matches[0]
            expected = torch.rot90(y0[i], turn % 4, dims=(-2, -1))
            assert torch.equal(y[i], expected.flip(-1) if turn >= 4 else expected)
    assert changed > 0


def test_median_frequency_weights_follow_their_definition():
    from bench_suite.snn.training import median_frequency_weights

    targets = torch.zeros(4, 4, 4, dtype=torch.int64)
    targets[0, :2] = 1  # class 1: 8 pixels, in 1 of 4 samples (16 pixels) → f = 0.5
    targets[1, 0, 0] = 2  # class 2: 1 pixel, in 1 sample → f = 1/16
    # class 0: 64 − 9 = 55 pixels in all 4 samples (64) → f = 55/64; class 3 absent
    weights = median_frequency_weights(targets, 4)
    frequency = torch.tensor([55 / 64, 0.5, 1 / 16])
    median = frequency.median()  # of the classes present: 0.5
    assert torch.allclose(weights, torch.tensor([median / (55 / 64), 1.0, median / (1 / 16), 1.0]))
    assert weights.dtype == torch.float32
    assert weights[2] > weights[1] > weights[0]  # the rarer, the heavier
    with pytest.raises(ValueError, match="outside 0 … 3"):
        median_frequency_weights(targets + 2, 4)  # class 4 in a 4-class task


def test_class_weighting_reaches_the_cross_entropy_of_the_training_patches():
    import dataclasses

    import torch.nn.functional as F

    from bench_suite.core.profiles import PROFILES, resolve_profile
    from bench_suite.snn.training import TrainingPatches, median_frequency_weights, task_loss
    from bench_suite.testing.checks import tiny_bundle

    bundle = tiny_bundle("segmentation")
    base = dataclasses.replace(PROFILES["smoke"], patches_per_image=4, batch_size=8)
    assert TrainingPatches(bundle, base, seed=0).class_weights is None  # the reference: plain cross-entropy
    weighted = resolve_profile("smoke", {"class_weighting": "median-frequency"})
    patches = TrainingPatches(bundle, dataclasses.replace(weighted, patches_per_image=4, batch_size=8), seed=0)
    expected = median_frequency_weights(patches.targets, bundle.task.n_classes)
    assert torch.equal(patches.class_weights, expected)
    assert not torch.allclose(expected, torch.ones_like(expected))  # the tiny task is unbalanced
    x, y = next(patches.batches(0))
    logits = torch.randn(len(x), bundle.task.n_classes, *y.shape[1:])
    assert torch.allclose(task_loss(bundle.task, logits, y, class_weights=patches.class_weights),
                          F.cross_entropy(logits, y, weight=expected))
    assert not torch.allclose(task_loss(bundle.task, logits, y, class_weights=patches.class_weights),
                              task_loss(bundle.task, logits, y))
    # the binary losses of the three-stage study have no class weights
    assert torch.equal(task_loss(bundle.task, logits[:, :1], y, "bce", patches.class_weights),
                       task_loss(bundle.task, logits[:, :1], y, "bce"))
    with pytest.raises(Exception, match="choose one of none, median-frequency"):
        resolve_profile("smoke", {"class_weighting": "inverse"})


def test_class_weighting_is_part_of_the_ann_cache_key():
    from bench_suite.experiment.cells import ANN_PROFILE_FIELDS

    assert "class_weighting" in ANN_PROFILE_FIELDS  # a weighted ANN is another ANN


def test_the_ann_trains_on_the_weighted_cross_entropy(class_weights_seen):
    import dataclasses

    from bench_suite.core.contracts import NullProgress
    from bench_suite.core.profiles import PROFILES
    from bench_suite.testing.checks import tiny_bundle, tiny_unet
    from bench_suite.trainers import ann

    seen = class_weights_seen(ann)
    bundle = tiny_bundle("segmentation")
    profile = dataclasses.replace(PROFILES["smoke"], ann_epochs=1, patches_per_image=2, batch_size=8,
                                  class_weighting="median-frequency")
    ann.train_ann(tiny_unet(bundle.task), bundle, profile, 0, lambda *row: None, NullProgress())
    assert seen and all(w is not None and w.shape == (2,) for w in seen)
