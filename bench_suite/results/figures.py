"""Plots of a run: metric against time steps, firing rate per layer, convergence, qualitative panels.

Every function writes a PNG (for reading) and a PDF (for papers) into ``out_dir`` and returns the paths.
Figures are made with matplotlib's object API on the Agg canvas, never through ``pyplot``: no global
backend is switched (importing this module inside a notebook leaves its backend alone), no window opens
on a headless machine, and nothing is kept alive in pyplot's figure registry between calls.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.metric_info import metric_info
from bench_suite.results.frames import summarize_cells

FORMATS = ("png", "pdf")
_DPI = 200
_METHOD_COLUMNS = ("model", "trainer", "neuron", "norm", "variant")
FIRING_RATE_LABEL = "binary spikes / neuron / step (one per fired MT or ML level)"


def _new_figure(n_panels: int, width: float = 4.2, height: float = 3.2) -> tuple[Figure, list]:
    columns = min(n_panels, 3)
    rows = math.ceil(n_panels / columns)
    figure = Figure(figsize=(width * columns, height * rows), constrained_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for unused in axes[n_panels:]:
        unused.set_visible(False)
    return figure, axes[:n_panels]


def _save(figure: Figure, out_dir: Path | str, stem: str) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.=-]+", "_", stem).strip("_")
    paths = []
    for fmt in FORMATS:
        path = out / f"{stem}.{fmt}"
        figure.savefig(path, dpi=_DPI, format=fmt)
        paths.append(path)
    return paths


def _plain_dataset(label: str) -> str:
    from bench_suite.results.tables import _strip_fold

    return _strip_fold(str(label))[0]


def _varying(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c in frame.columns and frame[c].astype(str).nunique() > 1]


def _method_labels(frame: pd.DataFrame, columns: Sequence[str], labels=None) -> pd.Series:
    """``asf mt cw``: the method columns that tell the plotted lines apart (all of them if none does).

    With ``labels`` (a suite's ``coords → "MT+FT"``) the suite's own names are used, and only the varying
    columns they do not show (T, the dataset) are added."""
    shown = _varying(frame, columns) or [c for c in ("trainer", "neuron") if c in frame.columns]

    def text(column: str, value) -> str:
        if column == "T":
            return f"T={int(value)}" if int(value) else ""  # T = 0: an ANN cell
        return "" if str(value) in ("-", "", "nan", "None") else str(value)

    def label(row: pd.Series) -> str:
        if labels is not None:
            coords = {c: row[c] for c in ("model", "trainer", "neuron", "norm", "T", "variant") if c in row.index}
            base = labels(coords)
            extra = [text(c, row[c]) for c in shown if c in ("T", "dataset") and text(c, row[c]) not in base]
            return " ".join(t for t in (base, *extra) if t)
        return " ".join(t for t in (text(c, row[c]) for c in shown) if t) or str(row.get("trainer", "?"))

    return frame.apply(label, axis=1) if not frame.empty else pd.Series(dtype=str)


def _metric_label(metric: str) -> str:
    stage, _, base = metric.rpartition("/")
    label = metric_info(base).label
    return f"{label} ({stage})" if stage else label


# -- metric against time steps (Spiking-UNet Table 5, Yue Fig. 6a) -----------------------------------


def metric_vs_T(tidy: pd.DataFrame, metric: str, out_dir: Path | str, labels=None) -> list[Path]:
    """:func:`metric_vs_T_figure` written as PNG and PDF."""
    return _save(metric_vs_T_figure(tidy, metric, labels), out_dir, f"metric_vs_T_{metric.replace('/', '-')}")


def metric_vs_T_figure(tidy: pd.DataFrame, metric: str, labels=None) -> Figure:
    """One panel per dataset: the metric (mean ± std over seeds/folds) against T per method; ANN cells
    (T = 0) as dashed horizontal reference lines."""
    if "sample" in tidy.columns:
        tidy = summarize_cells(tidy)
    frame = tidy[tidy["metric"] == metric].copy()
    if frame.empty:
        available = ", ".join(sorted(map(str, tidy["metric"].unique()))) or "none"
        raise BenchSuiteError(f"no '{metric}' values to plot against T; metrics in this run: {available}")
    frame["dataset"] = frame["dataset"].map(_plain_dataset)
    frame["T"] = frame["T"].astype(int)
    frame["method"] = _method_labels(frame, _METHOD_COLUMNS, labels)
    datasets = list(dict.fromkeys(frame["dataset"]))
    figure, axes = _new_figure(len(datasets))
    for axis, dataset in zip(axes, datasets, strict=True):
        part = frame[frame["dataset"] == dataset]
        spiking = part[part["T"] > 0]
        for method, lines in spiking.groupby("method", sort=False):
            stats = lines.groupby("T")["value"].agg(["mean", "std"]).sort_index()
            axis.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                          label=method)
        for method, reference in part[part["T"] == 0].groupby("method", sort=False):
            axis.axhline(reference["value"].mean(), linestyle="--", color="0.3", label=f"{method} (ANN)")
        if not spiking.empty:
            axis.set_xticks(sorted(spiking["T"].unique()))
        axis.set_title(dataset)
        axis.set_xlabel("time steps T")
        axis.set_ylabel(_metric_label(metric))
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    return figure


# -- firing rate per layer (Yue Fig. 4) ------------------------------------------------------------


def firing_rate_per_layer(layer_stats: pd.DataFrame, out_dir: Path | str, labels=None) -> list[Path]:
    """:func:`firing_rate_figure` written as PNG and PDF."""
    return _save(firing_rate_figure(layer_stats, labels), out_dir, "firing_rate_per_layer")


def firing_rate_figure(layer_stats: pd.DataFrame, labels=None) -> Figure:
    """Grouped bars: each spiking layer's firing rate (binary spikes per neuron per time step, an MT or ML
    event counting one spike per fired level; mean over seeds), one bar per method, one panel per
    dataset, layers in network order (the traced graph's, as stored in ``position``)."""
    if layer_stats.empty:
        raise BenchSuiteError("no per-layer spike statistics in this run (ANN cells record none); "
                              "run a spiking cell (trainer conv, asf, dt or three-stage) first")
    frame = layer_stats.copy()
    if "firing_rate" not in frame.columns or frame["firing_rate"].isna().all():
        samples = frame["samples"] if "samples" in frame.columns else 1
        frame["firing_rate"] = frame["spikes"] / (frame["neurons"] * frame["time_steps"] * samples)
    frame["dataset"] = frame["dataset"].map(_plain_dataset)
    if "position" not in frame.columns:
        frame["position"] = frame.groupby(["dataset", "layer"], sort=False).ngroup()
    frame["method"] = _method_labels(frame, (*_METHOD_COLUMNS, "T"), labels)
    datasets = list(dict.fromkeys(frame["dataset"]))
    widest = max(frame.groupby("dataset")["layer"].nunique())
    figure, axes = _new_figure(len(datasets), width=max(5.0, 0.35 * widest + 2), height=3.4)
    for axis, dataset in zip(axes, datasets, strict=True):
        part = frame[frame["dataset"] == dataset]
        order = part.groupby("layer")["position"].min().sort_values().index.tolist()
        methods = list(dict.fromkeys(part["method"]))
        width = 0.8 / max(len(methods), 1)
        x = np.arange(len(order))
        for index, method in enumerate(methods):
            rates = part[part["method"] == method].groupby("layer")["firing_rate"].mean().reindex(order)
            axis.bar(x + (index - (len(methods) - 1) / 2) * width, rates.to_numpy(dtype=float), width,
                     label=method)
        axis.set_xticks(x, order, rotation=90, fontsize="small")
        axis.set_title(dataset)
        axis.set_xlabel("layer")
        axis.set_ylabel(FIRING_RATE_LABEL)
        axis.grid(axis="y", alpha=0.3)
        axis.legend(fontsize="small")
    return figure


# -- convergence (Yue Table 3) ---------------------------------------------------------------------


def convergence(curves: pd.DataFrame, out_dir: Path | str, labels=None) -> list[Path]:
    """:func:`convergence_figure` written as PNG and PDF."""
    return _save(convergence_figure(curves, labels), out_dir, "convergence")


def convergence_figure(curves: pd.DataFrame, labels=None) -> Figure:
    """Training curves: one panel per curve metric (``loss`` by epoch; ``batch_*`` metrics such as
    ``batch_loss`` and ``batch_lr`` by batch), one line per method and stage (mean over seeds, band ± std)."""
    if curves.empty:
        raise BenchSuiteError("no training curves in this run (conversion-only cells train nothing)")
    frame = curves.copy()
    if "dataset" in frame.columns:
        frame["dataset"] = frame["dataset"].map(_plain_dataset)
    frame["method"] = _method_labels(frame, ("dataset", *_METHOD_COLUMNS, "T"), labels)
    metrics = list(dict.fromkeys(frame["metric"]))
    figure, axes = _new_figure(len(metrics), width=5.0, height=3.4)
    for axis, metric in zip(axes, metrics, strict=True):
        part = frame[frame["metric"] == metric]
        for (method, stage), line in part.groupby(["method", "stage"], sort=False):
            stats = line.groupby("epoch")["value"].agg(["mean", "std"]).sort_index()
            x = stats.index.to_numpy()
            (drawn,) = axis.plot(x, stats["mean"], marker="." if len(x) < 30 else None, label=f"{method} [{stage}]")
            spread = stats["std"].fillna(0).to_numpy()
            if spread.any():
                axis.fill_between(x, stats["mean"] - spread, stats["mean"] + spread, alpha=0.2,
                                  color=drawn.get_color())
        axis.set_title(metric)
        axis.set_xlabel("batch" if metric.startswith("batch") else "epoch")
        axis.set_ylabel(metric.replace("_", " "))
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    return figure


# -- qualitative panels ----------------------------------------------------------------------------


def _as_images(value, what: str) -> list[np.ndarray]:
    """A list of 2-D (H, W) or colour (H, W, 3) images from an array [N, H, W], [N, H, W, 3],
    [N, C, H, W] (C = 1 or 3), a single image, or a list of images."""
    if isinstance(value, (list, tuple)):
        images = [np.asarray(v) for v in value]
    else:
        array = np.asarray(value)
        if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4) and array.shape[0] > 4):
            images = [array]
        elif array.ndim in (3, 4):
            images = list(array)
        else:
            raise BenchSuiteError(f"{what}: expected images [N, H, W] or [N, H, W, 3], got shape {array.shape}")
    out = []
    for image in images:
        if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
            image = np.moveaxis(image, 0, -1)  # channels first → last
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if image.ndim not in (2, 3):
            raise BenchSuiteError(f"{what}: an image of shape {image.shape} is neither 2-D nor colour; "
                                  "pass a slice of a volume")
        out.append(image)
    return out


def _show(axis, image: np.ndarray, labels: bool, n_classes: int) -> None:
    axis.set_xticks([])
    axis.set_yticks([])
    if labels:
        axis.imshow(image, cmap="tab20" if n_classes > 2 else "gray", vmin=0, vmax=max(n_classes - 1, 1),
                    interpolation="nearest")
    elif image.ndim == 3:
        low, high = float(np.nanmin(image)), float(np.nanmax(image))
        axis.imshow(np.clip((image - low) / (high - low or 1.0), 0, 1))
    else:
        axis.imshow(image, cmap="gray")


def qualitative_panels(
    inputs, ground_truth, predictions: Mapping[str, object], out_dir: Path | str, stem: str = "qualitative",
) -> list[Path]:
    """A grid, one row per sample: input, ground truth, then each named prediction.

    Integer or boolean images are shown as label maps (one colour per class, the same scale in a row);
    float images (denoising) in gray. ``ground_truth`` may be None (e.g. no clean image).
    """
    columns = {"input": _as_images(inputs, "inputs")}
    if ground_truth is not None:
        columns["ground truth"] = _as_images(ground_truth, "ground_truth")
    for name, prediction in predictions.items():
        columns[str(name)] = _as_images(prediction, f"prediction '{name}'")
    n = len(columns["input"])
    for name, images in columns.items():
        if len(images) != n:
            raise BenchSuiteError(f"qualitative panels: {len(images)} images in '{name}' but {n} inputs")
    label_like = {name: all(np.issubdtype(im.dtype, np.integer) or im.dtype == bool for im in images)
                  for name, images in columns.items()}
    figure = Figure(figsize=(2.4 * len(columns), 2.4 * n), constrained_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.subplots(n, len(columns), squeeze=False)
    for row in range(n):
        label_images = [columns[name][row] for name in columns if label_like[name] and name != "input"]
        n_classes = int(max((int(np.max(im)) for im in label_images), default=1)) + 1
        for col, (name, images) in enumerate(columns.items()):
            _show(axes[row, col], images[row], label_like[name] and name != "input", n_classes)
            if row == 0:
                axes[row, col].set_title(name, fontsize="medium")
    return _save(figure, out_dir, stem)
