"""A converted IF + CW U-Net at T = 200 must agree with its ANN on ≥ 98 % of demo-vessels test pixels."""

import numpy as np
import pytest
import torch

from bench_suite.core.contracts import NullProgress
from bench_suite.core.profiles import PROFILES
from bench_suite.datasets.demo import DemoVessels
from bench_suite.experiment.evaluation import pad_to_multiple
from bench_suite.models.unet import UNet
from bench_suite.neurons.integrate_fire import IFNeuron
from bench_suite.neurons.multi_threshold import MTNeuron
from bench_suite.norms.scaling import ConnectionWiseNorm
from bench_suite.snn.convert import analyse, build_spiking_network
from bench_suite.snn.training import TrainingPatches
from bench_suite.trainers.ann import train_ann


@pytest.mark.slow
def test_if_cw_at_T200_agrees_with_ann_on_98_percent_of_test_pixels(tmp_path):
    # the demo's own ANN (quick profile): agreement is only meaningful for a well-trained ANN, whose
    # logits are not all near the decision boundary
    bundle = DemoVessels().load(tmp_path, "quick")
    profile = PROFILES["quick"]
    torch.manual_seed(0)
    ann = train_ann(UNet(1, 2, width=profile.width), bundle, profile, 0, lambda *a: None, NullProgress())
    calibration = TrainingPatches(bundle, profile, 0).calibration(64)
    structure = analyse(ann, calibration)
    normalized = ConnectionWiseNorm().normalize(structure, calibration)
    x, _ = pad_to_multiple(torch.from_numpy(np.stack([s.image for s in bundle.test])), 16)
    with torch.inference_mode():
        ann_prediction = ann(x).argmax(1)
        agreement = {}
        for name, neuron_cls in (("if", IFNeuron), ("mt", MTNeuron)):
            snn = build_spiking_network(structure, normalized.graph,
                                        lambda th, ch, cls=neuron_cls: cls(threshold=th, channels=ch))
            agreement[name] = (snn(x, 200).argmax(1) == ann_prediction).float().mean().item()
    vessel_fraction = ann_prediction.float().mean().item()
    assert 0.03 < vessel_fraction < 0.4, "the ANN must predict real vessel maps for agreement to mean anything"
    assert agreement["if"] >= 0.98, agreement
    assert agreement["mt"] >= 0.98, agreement
