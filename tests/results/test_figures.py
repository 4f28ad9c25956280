"""Figures from hand-made frames: each function writes a non-empty PNG and PDF and returns their paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench_suite.core.errors import BenchSuiteError
from bench_suite.results import figures

CELL = {"model": "unet2d", "norm": "cw", "variant": "", "fold": -1}


def assert_written(paths, stem):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    for path in paths:
        assert path.stem == stem and path.stat().st_size > 1000
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"


def test_metric_vs_T(tmp_path):
    rows = [{**CELL, "dataset": "drive", "trainer": "ann", "neuron": "-", "norm": "-", "T": 0, "seed": s,
             "metric": "f1", "value": 0.80, "n": 20} for s in (0, 1)]
    for neuron in ("if", "mt"):
        for T in (4, 8, 12):
            rows += [{**CELL, "dataset": "drive", "trainer": "asf", "neuron": neuron, "T": T, "seed": s,
                      "metric": "f1", "value": 0.8 - 1 / T + 0.01 * s, "n": 20} for s in (0, 1)]
    paths = figures.metric_vs_T(pd.DataFrame(rows), "f1", tmp_path)
    assert_written(paths, "metric_vs_T_f1")
    with pytest.raises(BenchSuiteError, match="no 'miou' values"):
        figures.metric_vs_T(pd.DataFrame(rows), "miou", tmp_path)


def test_firing_rate_per_layer(tmp_path):
    layers = ["down.0.1", "down.0.3", "bottom.1", "ups.0.1", "pools_0_respike"]
    rows = []
    for neuron in ("if", "mt"):
        for seed in (0, 1):
            for position, layer in enumerate(layers):
                rows.append({"dataset": "hippocampus(folds=5,fold=0)", "trainer": "asf", "neuron": neuron,
                             "norm": "cw", "T": 10, "seed": seed, "position": position, "layer": layer,
                             "kind": "IFNeuron", "neurons": 1000, "time_steps": 10, "events": 500.0 * (position + 1),
                             "spikes": 500.0, "synops": 1e5, "firing_rate": 0.05 * (position + 1)})
    paths = figures.firing_rate_per_layer(pd.DataFrame(rows), tmp_path)
    assert_written(paths, "firing_rate_per_layer")
    without_rate = pd.DataFrame(rows).drop(columns="firing_rate")
    assert_written(figures.firing_rate_per_layer(without_rate, tmp_path / "b"), "firing_rate_per_layer")
    with pytest.raises(BenchSuiteError, match="no per-layer spike statistics"):
        figures.firing_rate_per_layer(pd.DataFrame(columns=rows[0].keys()), tmp_path)


def test_convergence(tmp_path):
    rows = []
    for trainer, stage in (("three-stage(loss=bce-dice)", "three-stage"), ("dt", "dt")):
        for seed in (0, 1):
            rows += [{"dataset": "demo-vessels", "trainer": trainer, "neuron": "if", "norm": "-", "T": 20,
                      "seed": seed, "stage": stage, "epoch": batch, "metric": "batch_loss",
                      "value": 1 / batch + 0.01 * seed} for batch in range(1, 40)]
            rows += [{"dataset": "demo-vessels", "trainer": trainer, "neuron": "if", "norm": "-", "T": 20,
                      "seed": seed, "stage": stage, "epoch": epoch, "metric": "loss", "value": 1 / epoch}
                     for epoch in range(1, 6)]
    paths = figures.convergence(pd.DataFrame(rows), tmp_path)
    assert_written(paths, "convergence")


def test_qualitative_panels(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.random((2, 32, 32))
    truth = (image > 0.5).astype(np.uint8)
    predictions = {"ANN": truth, "MT+FT": np.roll(truth, 1, axis=-1)}
    paths = figures.qualitative_panels(image, truth, predictions, tmp_path)
    assert_written(paths, "qualitative")
    colour = rng.random((2, 3, 32, 32))  # channels first, denoising: float predictions, no labels
    paths = figures.qualitative_panels(colour, colour, {"denoised": colour * 0.9}, tmp_path, stem="denoise")
    assert_written(paths, "denoise")
    with pytest.raises(BenchSuiteError, match="1 images in 'bad' but 2 inputs"):
        figures.qualitative_panels(image, truth, {"bad": truth[:1]}, tmp_path)


def test_firing_rate_figure_names_what_it_plots_in_network_order_with_suite_labels():
    layers = ["down.0.1", "pools_0_respike", "down.1.1", "up_blocks.0.1"]  # positions: network order
    rows = [{"dataset": "drive", "model": "unet2d", "trainer": "asf", "neuron": neuron, "norm": "cw", "T": 10,
             "variant": "", "seed": 0, "position": position, "layer": layer, "kind": "MTNeuron", "neurons": 100,
             "time_steps": 10, "events": 10.0, "spikes": 20.0 * (position + 1), "synops": 1.0, "samples": 1}
            for neuron in ("mt", "if") for position, layer in enumerate(layers)]
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # stored rows in any order
    labels = {"mt": "MT+FT", "if": "IF+FT"}
    figure = figures.firing_rate_figure(frame, labels=lambda coords: labels[coords["neuron"]])
    (axis,) = figure.axes
    assert [tick.get_text() for tick in axis.get_xticklabels()] == layers
    assert axis.get_ylabel() == "binary spikes / neuron / step (one per fired MT or ML level)"
    assert sorted(text.get_text() for text in axis.get_legend().get_texts()) == ["IF+FT", "MT+FT"]
    # heights are level spikes per neuron per step: 20·(position+1) / (100 neurons · 10 steps)
    bars = sorted(axis.patches, key=lambda bar: bar.get_x())[:2]
    assert [round(bar.get_height(), 3) for bar in bars] == [0.02, 0.02]


def test_stored_layer_positions_follow_the_traced_graph():
    import torch

    from bench_suite.neurons.integrate_fire import IFNeuron
    from bench_suite.snn.convert import analyse, build_spiking_network
    from bench_suite.testing.checks import tiny_task, tiny_unet

    model = tiny_unet(tiny_task()).eval()
    x = torch.rand(1, 1, 16, 16)
    structure = analyse(model, x)
    network = build_spiking_network(structure, structure.graph, lambda t, c: IFNeuron(None, t, c))
    names = [name for name, _ in network.neurons()]
    called = [n.target for n in network.body.graph.nodes if n.op == "call_module" and n.target in names]
    assert names == list(dict.fromkeys(called))
    # the first pool's re-spiking neuron runs right after the first block, not after the decoder
    assert names.index("pools_0_respike") == 2 and names[:2] == ["down.0.1", "down.0.3"]
