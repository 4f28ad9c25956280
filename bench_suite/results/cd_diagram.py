"""Critical-difference diagrams (Demšar 2006) of a Friedman test over more than two methods.

Each method sits at its mean rank over the test samples (1 = best); methods whose post-hoc p-value
(Nemenyi or Conover, :func:`bench_suite.results.stats.friedman_posthoc`) is not below α are joined by a bar,
and the Nemenyi critical difference is drawn as a scale bar. The drawing is scikit-posthocs'
``critical_difference_diagram``, on an Agg figure of matplotlib's object API (no pyplot state), written as
PNG and PDF like the other figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def critical_difference_diagram(result: Mapping[str, Any], out_dir: Path | str, stem: str,
                                title: str = "") -> list[Path]:
    """Draw one Friedman result (a record of ``table.attrs["friedman"]``) into ``out_dir/stem.{png,pdf}``.

    ``result`` holds ``ranks`` (method → mean rank), ``pairwise`` (method → method → post-hoc p),
    ``critical_difference``, ``alpha``, ``posthoc``, ``k``, ``n``, ``statistic`` and ``p``.
    """
    import scikit_posthocs as sp

    ranks = pd.Series({str(k): float(v) for k, v in result["ranks"].items()})
    names = list(ranks.index)
    pairwise = pd.DataFrame([[float(result["pairwise"][a][b]) for b in names] for a in names], index=names,
                            columns=names)
    figure = Figure(figsize=(6.4, 0.9 + 0.32 * len(names)), constrained_layout=True)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    sp.critical_difference_diagram(ranks, pairwise, ax=ax, alpha=float(result.get("alpha", 0.05)),
                                   cd=float(result["critical_difference"]),
                                   color_palette=["#1f77b4"] * len(names))
    heading = title or "critical difference diagram"
    ax.set_title(f"{heading}\nFriedman χ²={result['statistic']:.2f}, p={_p(result['p'])}, {result['k']} methods, "
                 f"{result['n']} samples; bars: {result['posthoc']} p ≥ {float(result.get('alpha', 0.05)):g}",
                 fontsize=8)
    from bench_suite.results.figures import _save

    return _save(figure, out_dir, stem)


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"
