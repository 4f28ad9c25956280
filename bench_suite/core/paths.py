"""Where data and results are looked for unless a command says otherwise."""

from __future__ import annotations

import os
import shlex
from pathlib import Path


def default_data_root() -> Path:
    """``$BENCH_SUITE_DATA``, else ``./datasets``."""
    return Path(os.environ.get("BENCH_SUITE_DATA", "datasets"))


def default_results() -> Path:
    """``$BENCH_SUITE_RESULTS``, else ``./results``."""
    return Path(os.environ.get("BENCH_SUITE_RESULTS", "results"))


def results_option(results_dir: os.PathLike | str) -> str:
    """`` --results DIR`` for a printed command, empty where DIR is the default (so the hint pastes as is)."""
    if Path(results_dir).resolve() == default_results().resolve():
        return ""
    return f" --results {shlex.quote(str(results_dir))}"


def data_root_option(data_root: os.PathLike | str | None) -> str:
    """`` --data-root DIR`` for a printed command, empty where DIR is the default."""
    if data_root is None or Path(data_root).resolve() == default_data_root().resolve():
        return ""
    return f" --data-root {shlex.quote(str(data_root))}"
