"""Our IF simulation against SpikingJelly's own IFNode run the usual way on the same converted network."""

import torch
from spikingjelly.activation_based import functional
from spikingjelly.activation_based import neuron as sj_neuron

from bench_suite.models.unet import UNet
from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.norms.scaling import ConnectionWiseNorm
from bench_suite.snn.convert import analyse, build_spiking_network
from bench_suite.snn.network import replace_neurons


def test_if_network_matches_spikingjelly_ifnode_loop():
    torch.manual_seed(0)
    ann = UNet(1, 2, width=8, depth=2).eval()
    x = torch.rand(2, 1, 32, 32)
    structure = analyse(ann, x)
    graph = ConnectionWiseNorm().normalize(structure, x).graph
    ours = build_spiking_network(structure, graph, lambda th, ch: IFNeuron(threshold=th, channels=ch)).eval()
    theirs = replace_neurons(
        ours, lambda neuron: sj_neuron.IFNode(v_threshold=neuron.v_threshold, v_reset=None, step_mode="s"))
    with torch.no_grad():
        expected = 0.0
        functional.reset_net(theirs)
        for _ in range(12):
            expected = expected + theirs.head(theirs.body(theirs.encoder(x)))
        torch.testing.assert_close(ours(x, 12), expected / 12, rtol=1e-5, atol=1e-5)
