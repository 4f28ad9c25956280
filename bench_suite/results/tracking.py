"""Mirror runs into MLflow (``--track mlflow[:URI]``): the SQLite store stays the source of truth.

MLflow is an optional extra: ``pip install 'bench-suite[mlflow]'``. Without it, :func:`parse_track` raises a
:class:`BenchSuiteError` whose message is the install command.

How a run looks in MLflow (experiment ``bench-suite``, or ``$MLFLOW_EXPERIMENT_NAME``):

- the bench-suite run is one **parent** run named by its id, tagged ``bench_suite.run_id``; its params are
  the grid (one param per plugin kind, ``time_steps``, ``seeds``, ``profile``, ``set.<key>`` overrides; a
  suite's name, grids and profile), its tags the package versions (``bench_suite.version.<name>``), and
  ``spec.json`` is an artifact;
- each **cell** is a child run (``mlflow.parentRunId``), named by its title, tagged ``bench_suite.run_id``,
  ``bench_suite.cell_key`` and ``bench_suite.status``; params: every plugin (``trainer``, ``neuron``, …),
  every plugin parameter (``trainer.lr``, ``neuron.thresholds``, …), ``T``, ``seed``, ``profile``, ``fold``;
  metrics: the mean over test samples of each per-sample metric (``f1``, ``psnr``, ``ann/f1``, …), each
  per-epoch curve as a metric history (``<stage>/<metric>``, step = epoch) and the timings
  (``timings/<phase>``, as the store's timings table names them); ``info.json`` (split, checkpoints,
  efficiency, …) as an artifact; a failed cell has status FAILED and its message in the tag
  ``bench_suite.error``;
- the tables (Markdown, LaTeX, CSV, per-sample CSV) and figures are artifacts of the parent, under
  ``outputs/``: a suite's files as written with the run, for a plain grid rendered from the store.

The API, for the CLI's coordinator process only (worker processes never log):

- ``tracker = parse_track("mlflow")`` or ``parse_track("mlflow:sqlite:///path/mlflow.db", results)``:
  validates the option and that MLflow imports; connects lazily. The default URI is the SQLite store
  ``<results>/mlruns/mlflow.db`` with artifacts in ``<results>/mlruns/artifacts``.
- ``mirror_run(store, run_id, tracker)``: replays what the store holds for ``run_id``. Idempotent and
  incremental: call it after each cell (it logs only cells finished since the last call; a cell that
  failed and was then redone on ``--resume`` replaces its child run) and once at the end, when the run's
  status is no longer ``running``: then the tables and figures are logged and the parent run is closed
  (done → FINISHED, failed → FAILED, interrupted → KILLED). It returns the parent's MLflow run id.
- The sink itself, for callers that log without the store: ``MLflowTracker(uri)`` with
  ``start_run(run_id, spec, versions)``, ``log_cell(cell_config, status, sample_metrics, curves, timings,
  info, error)``, ``log_artifacts(paths)`` and ``finish(status)``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from bench_suite.core.errors import BenchSuiteError

INSTALL_HINT = "pip install 'bench-suite[mlflow]' (or pip install mlflow)"
TRACKERS = ("mlflow",)
DEFAULT_EXPERIMENT = "bench-suite"
RUN_TAG, KIND_TAG, CELL_TAG, STATUS_TAG, ERROR_TAG = (
    "bench_suite.run_id", "bench_suite.kind", "bench_suite.cell_key", "bench_suite.status", "bench_suite.error")
PARENT_TAG = "mlflow.parentRunId"
#: bench-suite run status → MLflow run status
RUN_STATUS = {"running": "RUNNING", "done": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
CELL_STATUS = {"running": "RUNNING", "done": "FINISHED", "failed": "FAILED"}
PLUGIN_KINDS = ("dataset", "model", "trainer", "neuron", "norm")
_MAX_PARAM = 6000  # MLflow's limit on a param value
_MAX_TAG = 5000
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}  # MLflow's limits per log_batch call


def _clean_key(key: str) -> str:
    """MLflow names take letters, digits, ``_ - . space : /``; anything else becomes ``_``."""
    return re.sub(r"[^\w\-. :/]", "_", str(key)) or "_"


def _text(value: Any, limit: int = _MAX_PARAM) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow and alembic log every store migration at INFO; bench-suite's terminal stays readable."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def require_mlflow() -> None:
    if importlib.util.find_spec("mlflow") is None:
        raise BenchSuiteError(f"--track mlflow needs MLflow, which is not installed; install it with {INSTALL_HINT}")


class MLflowTracker:
    """A sink that writes one bench-suite run as an MLflow parent run with one child run per cell.

    ``uri`` is any MLflow tracking URI (``sqlite:///…``, ``http://host:5000``, a folder for the file store);
    ``artifact_location`` is where a newly created experiment keeps its artifacts (None: MLflow's default).
    Every method is idempotent for the same run: calling ``start_run`` again reuses the parent, and
    ``log_cell`` skips a cell already logged with the same status.
    """

    def __init__(self, uri: str, experiment: str | None = None, artifact_location: str | None = None) -> None:
        require_mlflow()
        self.uri = uri
        self.experiment = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        self.artifact_location = artifact_location
        self._client: Any = None
        self._experiment_id: str | None = None
        self.run_id: str | None = None  # the bench-suite run id
        self.parent_id: str | None = None  # the MLflow run id of the parent
        self._cells: dict[str, tuple[str, str]] = {}  # cell_key → (MLflow run id, status logged)

    def __repr__(self) -> str:
        return f"MLflowTracker({self.uri!r}, experiment={self.experiment!r})"

    # -- connection ------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            try:
                if self.uri.startswith("sqlite:///") and self.uri[len("sqlite:///"):] not in ("", ":memory:"):
                    Path(self.uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
                with _quiet():
                    self._client = MlflowClient(tracking_uri=self.uri)
                    experiment = self._client.get_experiment_by_name(self.experiment)
                    self._experiment_id = (
                        experiment.experiment_id if experiment is not None
                        else self._client.create_experiment(self.experiment, artifact_location=self.artifact_location)
                    )
            except Exception as error:  # MLflow raises many kinds for a bad URI or an unreachable server
                self._client = None
                raise BenchSuiteError(
                    f"cannot open the MLflow tracking store {self.uri} ({type(error).__name__}: "
                    f"{str(error).splitlines()[0] if str(error) else ''}); check the URI given to --track"
                ) from None
        return self._client

    def _search(self, filter_string: str) -> list[Any]:
        runs, token = [], None
        while True:
            page = self.client.search_runs([self._experiment_id], filter_string, max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _log_batch(self, run: str, metrics=(), params=(), tags=()) -> None:
        metrics, params, tags = list(metrics), list(params), list(tags)
        while metrics or params or tags:
            self.client.log_batch(run, metrics=metrics[: _BATCH["metrics"]], params=params[: _BATCH["params"]],
                                  tags=tags[: _BATCH["tags"]])
            metrics, params, tags = (metrics[_BATCH["metrics"]:], params[_BATCH["params"]:], tags[_BATCH["tags"]:])

    # -- the sink API ----------------------------------------------------------------------------

    def start_run(self, run_id: str, spec: Mapping[str, Any], versions: Mapping[str, Any]) -> str:
        """Create (or find again) the parent run of bench-suite run ``run_id``; returns its MLflow id."""
        from mlflow.entities import Param, RunTag

        with _quiet():
            client = self.client
            found = self._search(f"tags.`{RUN_TAG}` = '{run_id}' and tags.`{KIND_TAG}` = 'run'")
            self.run_id, self._cells = run_id, {}
            if found:
                parent = found[0]
                self.parent_id = parent.info.run_id
                if parent.info.status != "RUNNING":
                    client.update_run(self.parent_id, status="RUNNING")  # resumed
                for child in self._search(f"tags.`{RUN_TAG}` = '{run_id}' and tags.`{KIND_TAG}` = 'cell'"):
                    key = child.data.tags.get(CELL_TAG)
                    if key is not None:
                        self._cells[key] = (child.info.run_id, child.data.tags.get(STATUS_TAG, ""))
                return self.parent_id
            tags = {RUN_TAG: run_id, KIND_TAG: "run", "mlflow.source.name": "bench-suite"}
            tags.update({f"bench_suite.version.{_clean_key(k)}": _text(v, _MAX_TAG) for k, v in versions.items()})
            run = client.create_run(self._experiment_id, run_name=run_id, tags=tags)
            self.parent_id = run.info.run_id
            params = [Param(_clean_key(k), _text(v)) for k, v in spec_params(spec).items()]
            self._log_batch(self.parent_id, params=params, tags=[RunTag("mlflow.note.content", _summary(spec))])
            client.log_dict(self.parent_id, json.loads(json.dumps(dict(spec), default=str)), "spec.json")
        return self.parent_id

    def log_cell(
        self,
        cell_config: Mapping[str, Any],
        status: str,
        sample_metrics: Iterable[tuple[str, str, float]] = (),
        curves: Iterable[tuple[str, int, str, float]] = (),
        timings: Mapping[str, float] | None = None,
        info: Mapping[str, Any] | None = None,
        error: str | None = None,
        *,
        cell_key: str | None = None,
    ) -> str:
        """Log one cell as a child run of the parent; returns its MLflow run id.

        ``cell_config`` is the cell's stored config (``Cell.config()``: plugin labels, ``<kind>_params``
        dicts, ``T``, ``seed``, ``profile``, ``fold``); ``sample_metrics`` ``(sample, metric, value)``
        triples (logged as the mean per metric); ``curves`` ``(stage, epoch, metric, value)``; ``timings``
        ``{phase: seconds}``. ``cell_key`` defaults to the config as sorted JSON, the store's key.
        """
        from mlflow.entities import Metric, Param, RunTag

        if self.parent_id is None:
            raise BenchSuiteError("MLflowTracker.log_cell before start_run: start the parent run first")
        key = cell_key or json.dumps(dict(cell_config), sort_keys=True, default=str)
        previous = self._cells.get(key)
        if previous is not None and previous[1] == status:
            return previous[0]
        with _quiet():
            client = self.client
            if previous is not None:
                client.delete_run(previous[0])  # a failed cell redone on resume: the new attempt replaces it
            tags = {PARENT_TAG: self.parent_id, RUN_TAG: self.run_id, KIND_TAG: "cell", CELL_TAG: _text(key, 7500),
                    STATUS_TAG: status}
            if error:
                tags[ERROR_TAG] = _text(error, _MAX_TAG)
            run = client.create_run(self._experiment_id, run_name=cell_title(cell_config), tags=tags)
            child = run.info.run_id
            now = int(time.time() * 1000)
            metrics = [Metric(_clean_key(name), value, now, 0) for name, value in _means(sample_metrics).items()]
            metrics += [Metric(_clean_key(f"{stage}/{metric}"), float(value), now, int(epoch))
                        for stage, epoch, metric, value in curves if not _missing(value)]
            metrics += [Metric(_clean_key(f"timings/{phase}"), float(seconds), now, 0)
                        for phase, seconds in (timings or {}).items() if not _missing(seconds)]
            params = [Param(_clean_key(k), _text(v)) for k, v in cell_params(cell_config).items()]
            self._log_batch(child, metrics=metrics, params=params, tags=[RunTag("mlflow.note.content", key)])
            if info:
                client.log_dict(child, json.loads(json.dumps(dict(info), default=str)), "info.json")
            client.set_terminated(child, CELL_STATUS.get(status, "FINISHED"))
        self._cells[key] = (child, status)
        return child

    def log_artifacts(self, paths: Iterable[Path | str], artifact_path: str = "outputs") -> None:
        """Files (tables, figures) as artifacts of the parent, under ``artifact_path``."""
        if self.parent_id is None:
            raise BenchSuiteError("MLflowTracker.log_artifacts before start_run: start the parent run first")
        with _quiet():
            for path in paths:
                if Path(path).is_file():
                    self.client.log_artifact(self.parent_id, str(path), artifact_path)

    def finish(self, status: str) -> None:
        """Close the parent with the bench-suite run's status (running leaves it open)."""
        if self.parent_id is None:
            return
        mlflow_status = RUN_STATUS.get(status, "FINISHED")
        if mlflow_status != "RUNNING":
            with _quiet():
                self.client.set_terminated(self.parent_id, mlflow_status)


# ---------------------------------------------------------------------------------------------- mapping


def spec_params(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The parent run's params: what the grid (or the suite) is made of."""
    if "suite" in spec:
        params = {"suite": spec["suite"], "profile": spec.get("profile"), "grids": ",".join(spec.get("grids") or [])}
        if spec.get("seeds") is not None:
            params["seeds"] = ",".join(map(str, spec["seeds"]))
    else:
        choices = spec.get("choices", {})
        params = {kind: ",".join(_choice_label(c) for c in chosen) for kind, chosen in choices.items()}
        params.update({"time_steps": ",".join(map(str, spec.get("time_steps", []))),
                       "seeds": ",".join(map(str, spec.get("seeds", []))), "profile": spec.get("profile")})
        params.update({f"set.{k}": v for k, v in (spec.get("overrides") or {}).items()})
    if spec.get("data_root"):
        params["data_root"] = spec["data_root"]
    return {k: v for k, v in params.items() if v not in (None, "")}


def _choice_label(choice: Any) -> str:
    kind, name, params = choice
    return f"{name}({','.join(f'{k}={v}' for k, v in params)})" if params else name


def _summary(spec: Mapping[str, Any]) -> str:
    if "suite" in spec:
        return f"bench-suite suite {spec['suite']} ({spec.get('profile')})"
    return "bench-suite grid: " + "; ".join(f"{k}={v}" for k, v in spec_params(spec).items() if k != "data_root")


def cell_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """A child run's params: each plugin's label and each of its parameters, T, seed, profile, fold."""
    params: dict[str, Any] = {}
    for kind in PLUGIN_KINDS:
        if kind in config:
            params[kind] = config[kind]
        values = config.get(f"{kind}_params") or {}
        if isinstance(values, str):
            values = json.loads(values)
        params.update({f"{kind}.{k}": v for k, v in values.items()})
    for key in ("T", "seed", "profile", "fold"):
        if not _missing(config.get(key)):
            params[key] = config[key]
    return params


def cell_title(config: Mapping[str, Any]) -> str:
    parts = [str(config[k]) for k in ("dataset", "trainer", "neuron", "norm") if config.get(k) not in (None, "-")]
    if config.get("T"):
        parts.append(f"T={config['T']}")
    if not _missing(config.get("fold")):
        parts.append(f"fold={config['fold']}")
    parts.append(f"seed={config.get('seed')}")
    return " ".join(parts)


def _means(sample_metrics: Iterable[tuple[str, str, float]]) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for _, metric, value in sample_metrics:
        if not _missing(value) and math.isfinite(float(value)):
            sums.setdefault(str(metric), []).append(float(value))
    return {metric: sum(values) / len(values) for metric, values in sums.items()}


# ---------------------------------------------------------------------------------------------- entry points


def parse_track(option: str, results: Path | str | None = None) -> MLflowTracker:
    """``--track mlflow`` or ``--track mlflow:URI`` → a tracker (nothing is opened or created yet).

    Without a URI the tracking store is ``sqlite:///<results>/mlruns/mlflow.db`` (``results``: the
    results folder, default ``./results``) with artifacts beside it in ``<results>/mlruns/artifacts``.
    A URI that is a plain path means MLflow's file store there.
    """
    name, _, uri = option.partition(":")
    name = name.strip().lower()
    if name not in TRACKERS:
        raise BenchSuiteError(
            f"--track '{option}': unknown tracker '{name}'; available: {', '.join(TRACKERS)} "
            "(e.g. --track mlflow or --track mlflow:sqlite:///mlflow.db)"
        )
    require_mlflow()
    uri = uri.strip()
    if not uri:
        folder = Path(results if results is not None else "results").resolve() / "mlruns"
        return MLflowTracker(f"sqlite:///{folder / 'mlflow.db'}", artifact_location=(folder / "artifacts").as_uri())
    if uri.startswith("sqlite:///") and uri[len("sqlite:///"):] not in ("", ":memory:"):
        database = Path(uri[len("sqlite:///"):])
        return MLflowTracker(uri, artifact_location=(database.parent.resolve() / "artifacts").as_uri())
    if "://" not in uri:
        return MLflowTracker(Path(uri).resolve().as_uri())
    return MLflowTracker(uri)


def mirror_run(store, run_id: str, tracker: MLflowTracker, outputs: Path | str | None = None) -> str:
    """Replay bench-suite run ``run_id`` from ``store`` into ``tracker``; returns the parent's MLflow id.

    Logs the cells finished (done or failed) since the last call; once the run is no longer running, also
    its tables and figures (the files recorded with the run, or rendered from the store into ``outputs``,
    default a temporary folder) and closes the parent with the run's status.
    """
    record = store.get_run(run_id)
    parent = tracker.start_run(run_id, record["spec"], record["versions"])
    cells = store.cells_frame(run_id)
    finished = cells[cells["status"].isin(["done", "failed"])]
    if not finished.empty:
        samples = store.sample_metrics_frame(run_id)
        curves = store.curves_frame(run_id)
        per_cell_samples = {cid: list(zip(g["sample"], g["metric"], g["value"], strict=True))
                            for cid, g in samples.groupby("cell_id")}
        per_cell_curves = {cid: list(zip(g["stage"], g["epoch"], g["metric"], g["value"], strict=True))
                           for cid, g in curves.groupby("cell_id")}
        timing_columns = [c for c in cells.columns if c.endswith(("_s", "_mib")) and c != "duration_s"]
        for row in finished.to_dict("records"):
            config = json.loads(row["cell_key"])
            timings = {column: row[column] for column in timing_columns if not _missing(row[column])}
            if not _missing(row.get("duration_s")):
                timings.setdefault("wall_s", row["duration_s"])
            info = json.loads(row["info"]) if isinstance(row.get("info"), str) and row["info"] else None
            tracker.log_cell(config, row["status"], per_cell_samples.get(row["cell_id"], []),
                             per_cell_curves.get(row["cell_id"], []), timings, info, row.get("error") or None,
                             cell_key=row["cell_key"])
    if record["status"] != "running":
        recorded = [a["path"] for a in store.artifacts(run_id) if a["cell_key"] is None and Path(a["path"]).is_file()]
        if recorded:
            tracker.log_artifacts(recorded)
        elif not finished.empty and (finished["status"] == "done").any():
            with contextlib.ExitStack() as stack:
                folder = Path(outputs) if outputs is not None else Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-suite-mlflow-")))
                tracker.log_artifacts(write_run_outputs(store, run_id, folder))
        tracker.finish(record["status"])
    return parent


def write_run_outputs(store, run_id: str, folder: Path) -> list[Path]:
    """The run's tables (Markdown, LaTeX, CSV, per-sample CSV) and figures, written into ``folder``."""
    from bench_suite.results import figures
    from bench_suite.results.render import write_report

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, file, per_sample in (("markdown", "table.md", False), ("latex", "table.tex", False),
                                  ("csv", "table.csv", False), ("csv", "samples.csv", True)):
        write_report(store, run_id, fmt, folder / file, per_sample=per_sample)
        written.append(folder / file)
    curves = store.curves_frame(run_id)
    if not curves.empty:
        written += figures.convergence(curves, folder)
    layer_stats = store.layer_stats_frame(run_id)
    if not layer_stats.empty:
        written += figures.firing_rate_per_layer(layer_stats, folder)
    return written
