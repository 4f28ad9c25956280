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
