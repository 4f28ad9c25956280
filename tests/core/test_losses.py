import math

import pytest
import torch

from bench_suite.core.losses import LOSSES, binary_logits, make_loss

# Two voxels, one-channel head: logits 0 and ln 3 → p = 0.5 and 0.75; targets 1 and 0.
LOGIT = torch.tensor([0.0, math.log(3.0)]).reshape(1, 1, 2)
TARGET = torch.tensor([1, 0]).reshape(1, 2)  # class map without a channel axis
BCE = (-math.log(0.5) - math.log(1 - 0.75)) / 2  # = 1.5·ln 2
DICE = 1 - (2 * 0.5 + 1e-5) / ((0.5 + 0.75) + 1 + 1e-5)


def test_registry_names():
    assert set(LOSSES) == {"ce", "bce", "dice", "bce-dice", "l1"}


def test_bce_by_hand():
    assert make_loss("bce")(LOGIT, TARGET).item() == pytest.approx(BCE)
    # A target with its channel axis, as float, gives the same.
    assert make_loss("bce")(LOGIT, TARGET.reshape(1, 1, 2).float()).item() == pytest.approx(BCE)


def test_dice_by_hand():
    assert make_loss("dice")(LOGIT, TARGET).item() == pytest.approx(DICE)


def test_bce_dice_is_the_weighted_sum():
    value = make_loss("bce-dice")(LOGIT, TARGET).item()
    assert value == pytest.approx(0.3 * BCE + 0.7 * DICE)
    assert value == pytest.approx(
        0.3 * make_loss("bce")(LOGIT, TARGET).item() + 0.7 * make_loss("dice")(LOGIT, TARGET).item()
    )


def test_dice_sums_over_the_whole_batch():
    # Sample 0 has foreground, sample 1 has none: pooled sums, not a mean of per-sample Dice.
    logit = torch.tensor([[[0.0]], [[math.log(3.0)]]])  # [2, 1, 1]: p = 0.5, 0.75
    target = torch.tensor([[1], [0]])
    expected = 1 - (2 * 0.5 + 1e-5) / (1.25 + 1 + 1e-5)
    assert make_loss("dice")(logit, target).item() == pytest.approx(expected)


def test_ce_by_hand():
    # Voxel 0: logits (0, 0), class 1 → ln 2. Voxel 1: logits (ln 3, 0), class 0 → −ln(3/4).
    output = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0]]])  # [N=1, K=2, 2]
    target = torch.tensor([[1, 0]])
    expected = (math.log(2) - math.log(0.75)) / 2
    assert make_loss("ce")(output, target).item() == pytest.approx(expected)
    assert make_loss("ce")(output, target.unsqueeze(1)).item() == pytest.approx(expected)


def test_l1_by_hand():
    output = torch.tensor([1.0, -2.0])
    target = torch.tensor([0.5, 0.0])
    assert make_loss("l1")(output, target).item() == pytest.approx(1.25)
    with pytest.raises(ValueError, match="shape"):
        make_loss("l1")(output, torch.zeros(3))


def test_binary_logits_one_channel_is_unchanged():
    assert torch.equal(binary_logits(LOGIT), LOGIT)


def test_binary_logits_two_classes_match_the_softmax():
    two = torch.randn(3, 2, 4, 5, generator=torch.Generator().manual_seed(0))
    logit = binary_logits(two)
    assert logit.shape == (3, 1, 4, 5)
    torch.testing.assert_close(torch.sigmoid(logit), torch.softmax(two, dim=1)[:, 1:2])


@pytest.mark.parametrize("name", ["bce", "dice", "bce-dice"])
def test_binary_losses_agree_for_one_and_two_channel_heads(name):
    # Background logit 0 and foreground logit z is the same model as the one-channel logit z.
    two = torch.cat([torch.zeros_like(LOGIT), LOGIT], dim=1)
    loss = make_loss(name)
    assert loss(two, TARGET).item() == pytest.approx(loss(LOGIT, TARGET).item())


def test_binary_losses_reject_other_heads_and_shapes():
    with pytest.raises(ValueError, match="1 output channel"):
        binary_logits(torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="does not match"):
        make_loss("bce")(LOGIT, torch.zeros(1, 3))


def test_losses_are_differentiable_scalars():
    logit = LOGIT.clone().requires_grad_(True)
    for name in ("bce", "dice", "bce-dice"):
        value = make_loss(name)(logit, TARGET)
        assert value.ndim == 0
        (grad,) = torch.autograd.grad(value, logit)
        assert torch.isfinite(grad).all()


def test_unknown_loss_lists_the_choices():
    with pytest.raises(ValueError, match="unknown loss 'dic'.*available: bce, bce-dice, ce, dice, l1"):
        make_loss("dic")
