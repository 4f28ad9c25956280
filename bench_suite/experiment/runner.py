"""The coordinator: expand a RunSpec into cells, hand the ones not yet done to an executor, store each result.

Cells are computed by an executor (:mod:`bench_suite.experiment.executors`: in this process, or on Dask
workers) from plain :class:`~bench_suite.experiment.cells.CellJob` s; the coordinator alone writes the
store: a cell is marked running when it is handed out and written with everything it measured in one
transaction when its result arrives, and the ANN weights a result brings are checkpointed under the
results folder. So a killed run resumes with ``resume`` computing only the cells that are not done, on
any executor; a cell that fails is stored as failed with its message and the others go on.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from bench_suite.core.contracts import NullProgress
from bench_suite.core.paths import default_data_root
from bench_suite.core.profiles import check_dataset_settings, resolve_profile
from bench_suite.core.registry import Registry, get_registry
from bench_suite.experiment.cells import CellJob, CellResult, dataset_profile_settings, write_checkpoint
from bench_suite.experiment.environment import Environment, versions
from bench_suite.experiment.executors import AnnDone, InProcessExecutor
from bench_suite.experiment.spec import Cell, RunSpec, expand
from bench_suite.results.store import ResultStore

logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

__all__ = ["CellOutcome", "Runner", "versions"]


@dataclasses.dataclass
class CellOutcome:
    cell: Cell
    status: str  # done | failed | skipped
    message: str = ""
    seconds: float = 0.0
    traceback: str = ""  # of a failed cell, for --debug (also stored with the cell)


def check_datasets_profile_settings(cells: list[Cell], registry: Registry) -> None:
    """A plugin's bad ``profile_settings`` stops a run before it starts, not in every one of its cells."""
    for name in sorted({cell.dataset.name for cell in cells}):
        settings = dataset_profile_settings(name, registry)
        if settings:
            check_dataset_settings(settings, f"dataset '{name}'")


class Runner:
    def __init__(
        self, results_dir: Path, data_root: Path | None = None, registry: Registry | None = None,
        progress=None, on_cell_done: Callable[[CellOutcome], None] | None = None,
        environment: Environment | None = None, executor=None,
    ) -> None:
        self.results_dir = Path(results_dir)
        self.data_root = Path(data_root) if data_root else default_data_root()
        self.registry = registry or get_registry()
        self.progress = progress or NullProgress()
        self.on_cell_done = on_cell_done or (lambda outcome: None)
        self.environment = environment or Environment()
        self.executor = executor

    # -- public -----------------------------------------------------------------------------------
    def plan(self, spec: RunSpec) -> list[Cell]:
        resolve_profile(spec.profile, spec.overrides)
        cells = expand(spec, self.registry)
        check_datasets_profile_settings(cells, self.registry)
        return cells

    def start(self, spec: RunSpec, store: ResultStore) -> tuple[str, list[Cell]]:
        """Validate the spec, create the run record; the run id exists before any cell is computed."""
        cells = self.plan(spec)
        run_id = store.create_run(spec.to_dict(), versions())
        return run_id, cells

    def jobs(self, cells: list[Cell], spec: RunSpec) -> list[CellJob]:
        data_root = Path(spec.data_root) if spec.data_root else self.data_root
        return [CellJob(cell, spec.profile, dict(spec.overrides), str(data_root), str(self.results_dir),
                        self.environment) for cell in cells]

    def execute(self, run_id: str, cells: list[Cell], spec: RunSpec, store: ResultStore) -> list[CellOutcome]:
        store.plan_cells(run_id, [(cell.key, cell.title()) for cell in cells])
        done = store.done_cell_keys(run_id)
        advance = self.progress.stage("cells", len(cells))
        outcomes: dict[str, CellOutcome] = {}
        for cell in cells:
            if cell.key in done:
                outcomes[cell.key] = CellOutcome(cell, "skipped", "already done")
                self.on_cell_done(outcomes[cell.key])
                advance(1)
        todo = [cell for cell in cells if cell.key not in done]
        executor = self.executor or InProcessExecutor(self.progress)
        cell_ids: dict[str, int] = {}

        def on_start(job: CellJob) -> None:
            cell_ids[job.cell.key] = store.start_cell(run_id, job.cell.key, job.cell.config())

        try:
            for job, result in executor.run(self.jobs(todo, spec), on_start):
                if isinstance(result, AnnDone):
                    write_checkpoint(self.results_dir, result.weights)
                    continue
                outcome = self.record(store, cell_ids[job.cell.key], job.cell, result)
                outcomes[job.cell.key] = outcome
                self.on_cell_done(outcome)
                advance(1)
        except KeyboardInterrupt:
            for key, cell_id in cell_ids.items():
                if key not in outcomes:
                    store.fail_cell(cell_id, "interrupted (Ctrl-C); resume the run to compute it", "")
            raise
        ordered = [outcomes[cell.key] for cell in cells if cell.key in outcomes]
        failed = any(o.status == "failed" for o in ordered) or len(ordered) < len(cells)
        store.set_run_status(run_id, "failed" if failed else "done")
        return ordered

    def record(self, store: ResultStore, cell_id: int, cell: Cell, result: CellResult) -> CellOutcome:
        """Write one result (one transaction) and the ANN weights it brings (atomic checkpoint files)."""
        for weights in result.anns.values():
            write_checkpoint(self.results_dir, weights)
        if result.status == "done":
            store.finish_cell(cell_id, sample_metrics=result.sample_metrics, curves=result.curves,
                              layer_stats=result.layer_stats, timings=result.timings, info=result.info)
            return CellOutcome(cell, "done", seconds=result.seconds)
        store.fail_cell(cell_id, result.message, result.traceback)
        return CellOutcome(cell, "failed", result.message, result.seconds, result.traceback)
