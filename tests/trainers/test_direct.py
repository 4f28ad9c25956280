import torch
from torch import nn

from bench_suite.core.tasks import Task
from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.neurons.multi_level import MLNeuron
from bench_suite.neurons.multi_threshold import MTNeuron
from bench_suite.neurons.real_spike import RSNeuron
from bench_suite.snn.convert import analyse, build_spiking_network
from bench_suite.trainers.direct import bptt_step


def test_bptt_trains_every_neuron_from_random_weights():
    task = Task("segmentation", 1, 2)
    x = torch.rand(8, 1, 6, 6)
    target = (x[:, 0] > 0.5).long()
    for neuron_cls in (IFNeuron, MTNeuron, MLNeuron, RSNeuron):
        torch.manual_seed(0)
        ann = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1), nn.ReLU(),
                            nn.Conv2d(8, 2, 1))
        structure = analyse(ann, x)
        snn = build_spiking_network(structure, structure.graph,
                                    lambda th, ch, cls=neuron_cls: cls(threshold=th, channels=ch))
        optimizer = torch.optim.Adam(snn.parameters(), lr=0.02)
        losses = [bptt_step(snn, x, target, 6, task, optimizer) for _ in range(40)]
        assert losses[-1] < 0.7 * losses[0], (neuron_cls.__name__, losses[0], losses[-1])
        assert snn.encoder.weight.grad.abs().sum() > 0, f"{neuron_cls.__name__}: no gradient reached the input"
