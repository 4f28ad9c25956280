"""Who computes a run's cells: this process, or Dask workers (a local cluster, an existing one, SLURM).

An executor takes :class:`~bench_suite.experiment.cells.CellJob` s and yields ``(job, result)`` pairs as
cells finish, where ``result`` is a :class:`~bench_suite.experiment.cells.CellResult` or an
:class:`AnnDone` (an ANN trained for the cells that need it). The coordinator — and only it — writes
each result to the store. On Dask the run is a task graph: one ANN task per distinct ANN (dataset,
model, seed, ANN settings, loss), each cell depending on the ANN tasks it needs (their weights reach it
through Dask, whether or not the workers share the results folder); cells of other ANNs do not wait.
A worker that dies during a task has it retried once on another worker
(``distributed.scheduler.allowed-failures = 1``), then the cell is stored as failed with the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.registry import get_registry
from bench_suite.experiment.cells import AnnWeights, CellJob, CellResult, ann_plan_key, run_ann, run_cell

#: a task whose worker died this many times more is given up (the first death is retried elsewhere)
ALLOWED_FAILURES = 1

#: Dask's nannies start every worker with MALLOC_TRIM_THRESHOLD_=65536 (``distributed.nanny.pre-spawn-environ``)
#: so that freed memory goes back to the OS. Setting that variable switches off glibc's adaptive mmap
#: threshold: every tensor above 128 KiB becomes a fresh mmap, page-faulted and zeroed on each allocation,
#: and torch's CPU forward passes ran 1.4-1.5x slower (benchmarks/grid_speed.py). bench-suite's workers start
#: without it; the value None is the config's way of unsetting a variable.
UNSET_WORKER_VARIABLES = ("MALLOC_TRIM_THRESHOLD_",)

#: the same, for workers started by a job script (dask-jobqueue): a Dask config variable the job exports
JOB_SCRIPT_ENVIRONMENT = ("export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON=\"{"
                          + ", ".join(f"'{name}': None" for name in UNSET_WORKER_VARIABLES) + "}\"")


@dataclasses.dataclass(frozen=True)
class AnnDone:
    """An ANN task finished: its weights, for the checkpoint the coordinator writes."""

    weights: AnnWeights


def ann_losses(job: CellJob) -> tuple[str | None, ...]:
    """The ANNs (by loss) the cell's trainer will ask for; a trainer may declare them with ``ann_losses()``."""
    trainer = get_registry().get("trainer", job.cell.trainer.name).obj(job.cell.trainer.params)
    declared = getattr(trainer, "ann_losses", None)
    return tuple(declared()) if callable(declared) else (None,)


class InProcessExecutor:
    """Every cell in this process, one after another (the default)."""

    description = "in-process"
    dashboard = ""
    notes: tuple[str, ...] = ()

    def __init__(self, progress=None) -> None:
        self.progress = progress

    def run(self, jobs: list[CellJob], on_start: Callable[[CellJob], None]) -> Iterator[tuple[CellJob, Any]]:
        for job in jobs:
            on_start(job)
            yield job, run_cell(job, self.progress)

    def close(self) -> None:
        pass


def _cell_with_anns(job: CellJob, anns: dict[str, AnnWeights]) -> CellResult:
    return run_cell(dataclasses.replace(job, anns=dict(anns)))


class DaskExecutor:
    """Cells on Dask workers; the client is connected (or the cluster started) when this is built."""

    def __init__(self, client, cluster=None, description: str = "dask", gpus: bool = False) -> None:
        self.client = client
        self.cluster = cluster
        self.description = description
        self.gpus = gpus
        self.dashboard = getattr(client, "dashboard_link", "") or ""
        self.notes: list[str] = []  # sentences the CLI prints beside the run id (e.g. slow worker settings)

    # -- how to get one ------------------------------------------------------------------------------------
    @staticmethod
    def _distributed():
        try:
            import dask
            import distributed
        except ImportError:
            raise BenchSuiteError(
                "running cells on Dask workers needs the dask extra; install it with "
                "`pip install 'bench-suite[dask]'` (distributed and dask-jobqueue)") from None
        dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                         **{f"distributed.nanny.pre-spawn-environ.{name}": None for name in UNSET_WORKER_VARIABLES}})
        return distributed

    @classmethod
    def local(cls, workers: int, threads_per_worker: int) -> DaskExecutor:
        distributed = cls._distributed()
        if workers < 1:
            raise BenchSuiteError(f"--workers {workers}: give at least one worker")
        import torch

        gpus = torch.cuda.is_available()
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
            resources={"GPU": 1} if gpus else None,
            # workers leave when the coordinator is gone (killed): a resumed run starts clean
            death_timeout=30, silence_logs=40,
            env={"OMP_NUM_THREADS": str(threads_per_worker), "MKL_NUM_THREADS": str(threads_per_worker)},
        )
        client = distributed.Client(cluster)
        return cls(client, cluster, f"local Dask cluster of {workers} workers × {threads_per_worker} threads",
                   gpus=gpus)

    @classmethod
    def connect(cls, address: str, timeout: float = 10.0) -> DaskExecutor:
        distributed = cls._distributed()
        try:
            client = distributed.Client(address, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise BenchSuiteError(
                f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}: {exc}); check the address "
                "and that the scheduler is running (dask scheduler), or run without --scheduler") from None
        gpus = any("GPU" in (w.get("resources") or {}) for w in client.scheduler_info().get("workers", {}).values())
        executor = cls(client, None, f"Dask scheduler {address}", gpus=gpus)
        executor.notes = slow_worker_notes(client)
        return executor

    @classmethod
    def slurm(cls, options: dict[str, str], workers: int) -> DaskExecutor:
        cluster = slurm_cluster(options)
        distributed = cls._distributed()
        cluster.scale(jobs=max(1, workers))
        client = distributed.Client(cluster)
        return cls(client, cluster, f"SLURM cluster ({max(1, workers)} jobs)", gpus="gpus" in options)

    # -- running ---------------------------------------------------------------------------------------------
    def run(self, jobs: list[CellJob], on_start: Callable[[CellJob], None]) -> Iterator[tuple[CellJob, Any]]:
        from distributed import as_completed

        resources = {"GPU": 1} if self.gpus else None
        ann_futures: dict[str, Any] = {}
        owner: dict[Any, tuple[str, CellJob]] = {}
        cell_futures = []
        for job in jobs:
            needed = {}
            for loss in ann_losses(job):
                plan = ann_plan_key(job.cell, job.profile_name, job.overrides, loss)
                if plan not in ann_futures:
                    future = self.client.submit(run_ann, job, loss, key=f"ann-{plan}", pure=False,
                                                resources=resources)
                    ann_futures[plan] = future
                    owner[future] = ("ann", job)
                needed[loss or ""] = ann_futures[plan]
            on_start(job)
            key = hashlib.sha1(job.cell.key.encode()).hexdigest()[:16]
            future = self.client.submit(_cell_with_anns, job, needed, key=f"cell-{key}", pure=False,
                                        resources=resources)
            owner[future] = ("cell", job)
            cell_futures.append(future)
        try:
            for future in as_completed([*ann_futures.values(), *cell_futures]):
                kind, job = owner[future]
                try:
                    value = future.result()
                except Exception as exc:  # the task itself died (its worker killed twice, or cancelled)
                    if kind == "ann":
                        continue  # its cells fail with the reason below, each in its own result
                    yield job, _lost(job, exc)
                    continue
                yield job, AnnDone(value) if kind == "ann" else value
        except KeyboardInterrupt:
            self.client.cancel([*ann_futures.values(), *cell_futures], force=True)
            raise

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _environment_variables(names: tuple[str, ...]) -> dict[str, str]:
    return {name: os.environ[name] for name in names if name in os.environ}


def slow_worker_notes(client) -> list[str]:
    """A sentence when workers of an existing cluster run with a variable that slows torch on CPUs."""
    try:
        found = client.run(_environment_variables, UNSET_WORKER_VARIABLES)
    except Exception:  # noqa: BLE001 - a note is advice; a cluster that cannot answer still runs the grid
        return []
    slowed = sorted({name for variables in found.values() for name in variables})
    if not slowed:
        return []
    return [f"the cluster's workers run with {', '.join(slowed)} set (Dask's default), which slows torch on CPUs "
            f"by ~1.4x; start them with {JOB_SCRIPT_ENVIRONMENT[len('export '):]} in their environment"]


def _lost(job: CellJob, exc: Exception) -> CellResult:
    name = type(exc).__name__
    if name == "KilledWorker":
        why = ("the workers computing it died twice (killed, or out of memory); lower the batch size or the width, "
               "or give the workers more memory")
    elif name == "CancelledError":
        why = "the task was cancelled"
    else:
        why = f"{name}: {exc}"
    return CellResult(job.cell.key, "failed", f"{job.cell.title()} was not computed: {why}")


# -- SLURM ------------------------------------------------------------------------------------------------------

#: --cluster-option keys and the dask-jobqueue SLURMCluster arguments they set
SLURM_OPTIONS = {"queue": "queue", "partition": "queue", "account": "account", "walltime": "walltime",
                 "memory": "memory", "cores": "cores", "processes": "processes", "gpus": None,
                 "job-extra": None, "interface": "interface", "local-directory": "local_directory"}


def slurm_cluster(options: dict[str, str]):
    """A dask-jobqueue SLURMCluster from ``--cluster-option KEY=VALUE`` pairs (``gpus=N`` asks for N GPUs
    per job and gives each worker the resource GPU=1, so that one cell holds one GPU)."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise BenchSuiteError("--cluster slurm needs dask-jobqueue; install it with "
                              "`pip install 'bench-suite[dask]'`") from None
    unknown = [key for key in options if key not in SLURM_OPTIONS]
    if unknown:
        raise BenchSuiteError(f"--cluster-option {unknown[0]}: not a SLURM option; options: "
                              f"{', '.join(SLURM_OPTIONS)}")
    kwargs: dict[str, Any] = {"cores": int(options.get("cores", 1)), "memory": options.get("memory", "16GB"),
                              "processes": int(options.get("processes", 1))}
    for key, argument in SLURM_OPTIONS.items():
        if argument and key in options and argument not in ("cores", "memory", "processes"):
            kwargs[argument] = options[key]
    extra = [options["job-extra"]] if "job-extra" in options else []
    if "gpus" in options:
        gpus = int(options["gpus"])
        extra.append(f"--gres=gpu:{gpus}")
        kwargs["worker_extra_args"] = ["--resources", f"GPU={gpus}"]
    kwargs["job_extra_directives"] = extra
    kwargs["job_script_prologue"] = [JOB_SCRIPT_ENVIRONMENT]
    kwargs.setdefault("log_directory", os.path.join(os.getcwd(), "dask-logs"))
    return SLURMCluster(**kwargs)
