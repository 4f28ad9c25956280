"""Where data and results are looked for unless a command says otherwise."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_root() -> Path:
    """``$BENCH_SUITE_DATA``, else ``./datasets``."""
    return Path(os.environ.get("BENCH_SUITE_DATA", "datasets"))


def default_results() -> Path:
    """``$BENCH_SUITE_RESULTS``, else ``./results``."""
    return Path(os.environ.get("BENCH_SUITE_RESULTS", "results"))
