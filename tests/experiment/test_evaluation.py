"""Evaluation is a function of the trained network: random input coding restarts its stream each time."""

import copy

import numpy as np
import torch

from bench_suite.experiment.evaluation import evaluate
from bench_suite.snn.convert import analyse, build_spiking_network
from bench_suite.snn.encoders import make_encoder
from bench_suite.snn.network import TrainedNetwork
from bench_suite.testing.checks import ReLUNeuron, tiny_bundle, tiny_unet
from bench_suite.trainers.three_stage import RescaledCoding


def test_poisson_coded_network_scores_the_same_whatever_ran_before():
    bundle = tiny_bundle("denoising")  # continuous outputs: any other spike changes the PSNR
    torch.manual_seed(0)
    model = tiny_unet(bundle.task).eval()
    x = torch.from_numpy(bundle.train[0].image[None].copy())
    structure = analyse(model, x)
    # ReLU neurons pass every input spike on, so a different spike stream changes the output
    network = build_spiking_network(structure, copy.deepcopy(structure.graph), lambda t, c: ReLUNeuron(None, t, c))
    images = torch.from_numpy(np.stack([s.image for s in bundle.train]))
    network.input_coding = RescaledCoding.fit(make_encoder("poisson"), images, "poisson")
    network.restart_coding(7)
    trained = TrainedNetwork(network.eval(), 6)
    first = evaluate(trained, bundle, 4, 2).sample_metrics
    with torch.no_grad():
        network.simulate(images, 6)  # consumes random numbers, as training or an earlier stage would
    assert evaluate(trained, bundle, 4, 2).sample_metrics == first
