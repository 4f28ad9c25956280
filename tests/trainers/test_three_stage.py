import io
import math

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bench_suite.cli.app import app
from bench_suite.snn.encoders import make_encoder
from bench_suite.trainers.three_stage import RescaledCoding


def test_rescaled_coding_keeps_the_first_conv_output_inside_the_image():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 3, 3, padding=1)
    images = torch.randn(4, 1, 12, 12) * 2 + 1  # z-scored-like, outside [0, 1]
    for kind in ("poisson", "ternary"):
        coding = RescaledCoding.fit(make_encoder(kind), images, kind)
        mapped = ((images - coding.shift) / coding.scale).clamp(coding.low, coding.high)
        inside = ((images - coding.shift) / coding.scale).abs().le(1).all()
        rescaled = torch.nn.Conv2d(1, 3, 3, padding=1)
        rescaled.load_state_dict(conv.state_dict())
        coding.absorb_into(rescaled)
        with torch.no_grad():
            original, absorbed = conv(images), rescaled(mapped)
        interior = (slice(None), slice(None), slice(1, -1), slice(1, -1))
        if inside:
            assert torch.allclose(original[interior], absorbed[interior], atol=1e-4)
        spikes = coding.encode(images, 0, torch.Generator().manual_seed(0))
        allowed = {0.0, 1.0} if kind == "poisson" else {-1.0, 0.0, 1.0}
        assert set(torch.unique(spikes).tolist()) <= allowed


def test_three_stage_on_real_hippocampus_with_two_folds(shared_data, tmp_path):
    # no model given: the 3-D U-Net is chosen for a volume dataset
    args = ["run", "--plugin", "trainer=three-stage(conversion_steps=8,epochs=1)", "--plugin", "neuron=if",
            "--dataset", "hippocampus", "--folds", "2", "--profile", "smoke",
            "-T", "3", "--set", "ann_epochs=1", "--set", "width=4", "--data-root", str(shared_data),
            "--results", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    csv = CliRunner().invoke(app, ["report", "--format", "csv", "--results", str(tmp_path)]).output
    frame = pd.read_csv(io.StringIO(csv))
    assert set(frame["fold"]) == {0, 1}
    assert set(frame["model"]) == {"unet3d"}
    assert {"dice", "hd95", "assd", "ann/dice", "converted/dice"} <= set(frame["metric"])
    assert frame["value"].notna().all()
    markdown = CliRunner().invoke(app, ["report", "--results", str(tmp_path)]).output
    assert "±" in markdown  # mean ± std over the two folds
    # binary losses train one foreground logit (sigmoid per voxel), the reference's head
    checkpoints = list((tmp_path / "checkpoints").glob("ann-*.pt"))
    assert len(checkpoints) == 2  # one ANN per fold
    for checkpoint in checkpoints:
        assert torch.load(checkpoint, weights_only=True)["state_dict"]["head.weight"].shape[0] == 1


def test_one_logit_head_is_scored_through_a_sigmoid():
    from bench_suite.core.tasks import DatasetBundle, Sample, Task
    from bench_suite.experiment.evaluation import sample_metrics

    target = torch.zeros(8, 8, dtype=torch.int64)
    target[2:6, 2:6] = 1
    sample = Sample("s", torch.zeros(1, 8, 8).numpy(), target.numpy())
    bundle = DatasetBundle("b", Task("segmentation", 1, 2), [], [sample], 16)
    logit = torch.full((1, 8, 8), -3.0)
    logit[0, 2:6, 2:6] = 0.4  # sigmoid 0.6: foreground at the default 0.5, background at 0.7
    metrics, prediction = sample_metrics(bundle, sample, logit, None)
    assert metrics["f1"] == 1.0 and prediction.sum() == 16
    metrics, prediction = sample_metrics(bundle, sample, logit, None, decision_threshold=0.7)
    assert prediction.sum() == 0


def _smoke_cell(tmp_path, trainer: str, time_steps: int, patches_per_image: int):
    """One IF cell of ``trainer`` on demo vessels at a tiny smoke budget: its cells and curves frames."""
    from bench_suite.results.store import ResultStore

    args = ["run", "--plugin", f"trainer={trainer}", "--plugin", "neuron=if",
            "--dataset", "demo-vessels", "--profile", "smoke", "-T", str(time_steps), "--set", "ann_epochs=1",
            "--set", f"patches_per_image={patches_per_image}", "--set", "calibration_samples=8",
            "--data-root", str(tmp_path / "data"), "--results", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with ResultStore(tmp_path) as store:
        run_id = store.latest_run_id()
        return store.cells_frame(run_id), store.curves_frame(run_id)


def test_conversion_balances_over_the_cells_time_steps_by_default(tmp_path):
    import json

    from bench_suite.trainers.three_stage import ThreeStageParams

    cells, _ = _smoke_cell(tmp_path, "three-stage(epochs=1)", time_steps=3, patches_per_image=4)
    steps = sorted(json.loads(info)["tb_steps"] for info in cells["info"])
    assert steps == [3]
    with pytest.raises(ValueError, match="conversion_steps must not be negative"):
        ThreeStageParams(conversion_steps=-1)


@pytest.mark.parametrize("schedule", ["plateau", "cosine"])
def test_fine_tuning_schedule_is_the_one_asked_for(tmp_path, schedule):
    import json

    cells, curves = _smoke_cell(tmp_path, f"three-stage(epochs=1,schedule={schedule},lr=0.004)", time_steps=2,
                                patches_per_image=8)
    info = json.loads(cells["info"].iloc[0])["three_stage"]
    lrs = curves[(curves.stage == "three-stage") & (curves.metric == "batch_lr")]["value"].to_numpy()
    assert info["schedule"] == schedule and info["lr"] == 0.004 and len(lrs) == info["batches_per_epoch"] > 2
    assert lrs[0] == 0.004
    if schedule == "cosine":  # decays every batch, towards 0 after the last
        n = len(lrs)
        assert (lrs[1:] < lrs[:-1]).all()
        assert lrs[-1] == pytest.approx(0.004 * (1 + math.cos(math.pi * (n - 1) / n)) / 2)
    else:  # one epoch: the plateau rule never acts
        assert (lrs == 0.004).all()
