"""Evaluation is a function of the trained network: random input coding restarts its stream each time;
test-time tiling puts the tiles back where they came from."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from bench_suite.core.errors import PluginContractError
from bench_suite.core.tasks import Tiling
from bench_suite.experiment.evaluation import evaluate, from_tiles, tiles_per_image, to_tiles
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


@pytest.mark.parametrize("stride", [48, 32, 7])
def test_tiles_put_back_together_give_the_image(stride):
    x = torch.randn(2, 3, 584, 565)
    tiling = Tiling(48, stride)
    tiles = to_tiles(x, tiling)
    assert tiles.shape[1:] == (3, 48, 48) and len(tiles) == 2 * tiles_per_image((584, 565), tiling)
    assert torch.allclose(from_tiles(tiles, 2, (584, 565), tiling), x, atol=1e-6)


def test_drive_is_cut_into_the_reference_156_tiles():
    assert tiles_per_image((584, 565), Tiling(48, 48)) == 13 * 12 == 156


def test_overlapping_tile_outputs_are_averaged():
    tiling = Tiling(16, 8)
    x = torch.zeros(1, 1, 32, 32)
    tiles = to_tiles(x, tiling)
    tiles += torch.arange(len(tiles), dtype=torch.float32)[:, None, None, None]  # tile k says k
    merged = from_tiles(tiles, 1, (32, 32), tiling)[0, 0]
    # 3 × 3 tiles; the centre pixel (16, 16) is covered by tiles (1,1), (1,2), (2,1), (2,2) = 4, 5, 7, 8
    assert merged[16, 16] == pytest.approx((4 + 5 + 7 + 8) / 4) and merged[0, 0] == 0


def _spiking_tiny(bundle):
    torch.manual_seed(0)
    model = tiny_unet(bundle.task).eval()
    x = torch.from_numpy(bundle.train[0].image[None].copy())
    structure = analyse(model, x)
    network = build_spiking_network(structure, copy.deepcopy(structure.graph), lambda t, c: ReLUNeuron(None, t, c))
    return model, TrainedNetwork(network.eval(), 3)


def test_a_pointwise_network_scores_the_same_on_tiles_as_on_whole_images():
    bundle = tiny_bundle("segmentation", side=40)
    pointwise = torch.nn.Conv2d(1, 2, 1)
    torch.nn.init.constant_(pointwise.weight, 8.0)
    torch.nn.init.constant_(pointwise.bias, -4.0)
    whole = evaluate(TrainedNetwork(pointwise), bundle, 16, 2)
    tiled = evaluate(TrainedNetwork(pointwise), dataclasses.replace(bundle, test_tiling=Tiling(16, 8)), 16, 2,
                     tile_batch=5)
    assert tiled.sample_metrics == whole.sample_metrics
    for sample_id, prediction in whole.predictions.items():
        assert np.array_equal(tiled.predictions[sample_id], prediction)


def test_tiled_spike_statistics_stay_per_image():
    bundle = tiny_bundle("segmentation", side=32, n_test=3)
    tiling = Tiling(16, 16)
    _, trained = _spiking_tiny(bundle)
    stats = evaluate(trained, dataclasses.replace(bundle, test_tiling=tiling), 4, 2, tile_batch=3).layer_stats
    first = stats[0]
    assert first["samples"] == pytest.approx(3)  # 12 tiles of 3 images, in forward passes of 3 tiles
    whole = evaluate(trained, bundle, 4, 2).layer_stats[0]
    assert first["neurons"] == whole["neurons"]  # 4 tiles of 16² are one 32² image
    assert 0 <= first["firing_rate"] <= 1


def test_a_tile_the_model_cannot_take_is_one_sentence():
    bundle = dataclasses.replace(tiny_bundle("segmentation", side=32), test_tiling=Tiling(16, 16))
    with pytest.raises(PluginContractError, match="not a multiple of 32"):
        evaluate(TrainedNetwork(torch.nn.Conv2d(1, 2, 1)), bundle, 32, 2)
