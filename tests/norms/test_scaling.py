import pytest
import torch
from torch import nn

from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.norms.scaling import ConnectionWiseNorm, CWParams, LayerWiseNorm, NoNorm, PercentileParams
from bench_suite.snn.calibration import CalibrationCache
from bench_suite.snn.convert import activation_scale, analyse, build_spiking_network


class TinyConcatNet(nn.Module):
    """x → c1 (2 ch) → r1 → c2 (1 ch) → r2 → cat([r1, r2]) (unequal parts 2 + 1) → c3 → r3 → head."""

    def __init__(self):
        super().__init__()
        self.c1, self.r1 = nn.Conv2d(1, 2, 1), nn.ReLU()
        self.c2, self.r2 = nn.Conv2d(2, 1, 1), nn.ReLU()
        self.c3, self.r3 = nn.Conv2d(3, 2, 1), nn.ReLU()
        self.head = nn.Conv2d(2, 1, 1)
        with torch.no_grad():
            self.c1.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
            self.c2.weight.copy_(torch.tensor([1.0, 1.0]).view(1, 2, 1, 1))
            self.c3.weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]]).view(2, 3, 1, 1))
            self.head.weight.copy_(torch.tensor([1.0, 1.0]).view(1, 2, 1, 1))
            for conv in (self.c1, self.c2, self.head):
                conv.bias.zero_()
            self.c3.bias.copy_(torch.tensor([0.0, 1.0]))

    def forward(self, x):
        a = self.r1(self.c1(x))
        b = self.r2(self.c2(a))
        return self.head(self.r3(self.c3(torch.cat([a, b], dim=1))))


# x = [0.5, 1, 2]: r1 = [0.5,1,2] and [1,2,4] → λ1 = 4; r2 = [1.5,3,6] → λ2 = 6; cat max 6;
# r3 = [3,6,12] and [2.5,4,7] → λ3 = 12 (percentile 100 = max, so every λ is computable by hand)
X = torch.tensor([0.5, 1.0, 2.0]).view(1, 1, 1, 3)


def weights(graph, name):
    return graph.get_submodule(name).weight.detach().flatten(), graph.get_submodule(name).bias.detach()


def test_structure_finds_unequal_concat_parts_from_the_graph():
    structure = analyse(TinyConcatNet(), X)
    c3 = next(layer for layer in structure.layers if layer.target == "c3")
    assert [(p.site, p.start, p.stop) for p in c3.parts] == [("r1", 0, 2), ("r2", 2, 3)]
    assert c3.concat == "cat" and c3.activation == "r3"
    assert structure.head.target == "head" and structure.first.target == "c1"


def test_layer_wise_scales_by_hand():
    norm = LayerWiseNorm(PercentileParams(percentile=100.0))
    result = norm.normalize(analyse(TinyConcatNet(), X), X)
    assert result.scales == pytest.approx({"r1": 4.0, "r2": 6.0, "r3": 12.0, "cat": 6.0})
    w1, _ = weights(result.graph, "c1")
    assert w1.tolist() == pytest.approx([0.25, 0.5])  # λ_in = 1, λ_out = 4
    w2, _ = weights(result.graph, "c2")
    assert w2.tolist() == pytest.approx([4 / 6, 4 / 6])
    w3, b3 = weights(result.graph, "c3")  # one λ_in = 6 over the whole concatenation
    assert w3.tolist() == pytest.approx([0.5, 0.5, 0.5, 0.0, 0.0, 0.5])
    assert b3.tolist() == pytest.approx([0.0, 1 / 12])
    wh, _ = weights(result.graph, "head")
    assert wh.tolist() == pytest.approx([12.0, 12.0])


def test_connection_wise_scales_each_part_by_its_own_lambda():
    norm = ConnectionWiseNorm(CWParams(percentile=100.0))
    result = norm.normalize(analyse(TinyConcatNet(), X), X)
    w3, b3 = weights(result.graph, "c3")
    assert w3.tolist() == pytest.approx([4 / 12, 4 / 12, 6 / 12, 0.0, 0.0, 6 / 12])
    assert b3.tolist() == pytest.approx([0.0, 1 / 12])
    # CW keeps the normalized ANN equal to the original (LW does not, after a concatenation)
    assert torch.allclose(result.graph(X), TinyConcatNet()(X), atol=1e-5)


def test_connection_wise_author_compat_leaves_last_channel_of_each_part_unscaled():
    norm = ConnectionWiseNorm(CWParams(percentile=100.0, author_compat=True))
    w3, _ = weights(norm.normalize(analyse(TinyConcatNet(), X), X).graph, "c3")
    assert w3.tolist() == pytest.approx([4 / 12, 1 / 12, 1 / 12, 0.0, 0.0, 1 / 12])


def test_no_norm_keeps_weights():
    result = NoNorm().normalize(analyse(TinyConcatNet(), X), X)
    assert weights(result.graph, "c3")[0].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]


def test_dead_layer_falls_back_to_max_then_one():
    assert activation_scale(torch.zeros(100), 99.9) == 1.0
    sparse = torch.zeros(1000)
    sparse[0] = 3.0
    assert activation_scale(sparse, 99.0) == 3.0
    assert activation_scale(torch.arange(1001.0), 99.9) == pytest.approx(999.0)


def test_calibration_cache_key_changes_with_weights_and_data(tmp_path):
    structure = analyse(TinyConcatNet(), X)
    key = CalibrationCache.key(structure.graph, X, {"percentile": 99.9})
    assert key == CalibrationCache.key(structure.graph, X.clone(), {"percentile": 99.9})
    assert key != CalibrationCache.key(structure.graph, X * 2, {"percentile": 99.9})
    assert key != CalibrationCache.key(structure.graph, X, {"percentile": 99.0})
    with torch.no_grad():
        structure.graph.get_submodule("c1").weight.mul_(2)
    assert key != CalibrationCache.key(structure.graph, X, {"percentile": 99.9})
    cache = CalibrationCache(tmp_path)
    calls = []
    assert cache.get_or_compute("k", lambda: calls.append(1) or {"a": 1.0}) == {"a": 1.0}
    assert cache.get_or_compute("k", lambda: calls.append(1) or {"a": 2.0}) == {"a": 1.0}
    assert len(calls) == 1


def test_converted_if_network_approaches_ann_at_large_T():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 4, 4) * 2
    net = TinyConcatNet()
    structure = analyse(net, x)
    normalized = ConnectionWiseNorm().normalize(structure, x)
    snn = build_spiking_network(structure, normalized.graph, lambda th, ch: IFNeuron(threshold=th, channels=ch))
    with torch.no_grad():
        ann = net(x)
        error_short = (snn(x, 5) - ann).abs().mean()
        error_long = (snn(x, 400) - ann).abs().mean()
    assert error_long < 0.05 * ann.abs().mean()
    assert error_long < error_short
