"""The results store: one SQLite file per results folder, and the only SQL in bench-suite.

A run is a row in ``runs``; each of its cells (plugins × dataset × T × seed) a row in ``cells`` keyed by
``(run_id, cell_key)``. What a finished cell measured lives in child tables (``sample_metrics``,
``curves``, ``layer_stats``, ``timings``) that are written together with the cell's ``done`` mark in one
transaction. So after a crash a cell is either done with all its rows or not done, and resuming a run
is "start every cell that is not done again": :meth:`ResultStore.start_cell` clears what a killed
attempt may have left.

The file is opened in WAL mode with ``synchronous=FULL``: readers (a report) never block the writer (a
run), and a committed cell survives power loss, not only a killed process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bench_suite.core.errors import BenchSuiteError, did_you_mean
from bench_suite.core.paths import results_option

DB_FILENAME = "bench-suite.sqlite"
SCHEMA_VERSION = 1
RUN_STATUSES = ("running", "done", "interrupted", "failed")
CELL_STATUSES = ("running", "done", "failed")
#: config keys every cell has; they come first in frames, other keys follow sorted
CONFIG_KEYS = ("dataset", "model", "neuron", "norm", "trainer", "T", "seed", "profile")
LAYER_COLUMNS = ("layer", "kind", "neurons", "time_steps", "events", "spikes", "synops")
_LAYER_INTEGERS = {"neurons", "time_steps"}
_LAYER_TEXT = {"layer", "kind"}
_BUSY_TIMEOUT_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id       TEXT PRIMARY KEY,
    created  TEXT NOT NULL,
    status   TEXT NOT NULL,
    spec     TEXT NOT NULL,
    versions TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cells (
    id        INTEGER PRIMARY KEY,
    run_id    TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    cell_key  TEXT NOT NULL,
    config    TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    attempts  INTEGER NOT NULL DEFAULT 1,
    started   TEXT NOT NULL,
    finished  TEXT,
    error     TEXT,
    traceback TEXT,
    info      TEXT,
    UNIQUE (run_id, cell_key)
);
CREATE TABLE IF NOT EXISTS sample_metrics (
    cell_id INTEGER NOT NULL REFERENCES cells(id) ON DELETE CASCADE,
    sample  TEXT NOT NULL,
    metric  TEXT NOT NULL,
    value   REAL,
    PRIMARY KEY (cell_id, sample, metric)
);
CREATE TABLE IF NOT EXISTS curves (
    cell_id INTEGER NOT NULL REFERENCES cells(id) ON DELETE CASCADE,
    stage   TEXT NOT NULL,
    epoch   INTEGER NOT NULL,
    metric  TEXT NOT NULL,
    value   REAL
);
CREATE INDEX IF NOT EXISTS curves_by_cell ON curves (cell_id, stage, metric, epoch);
CREATE TABLE IF NOT EXISTS layer_stats (
    cell_id    INTEGER NOT NULL REFERENCES cells(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    layer      TEXT,
    kind       TEXT,
    neurons    INTEGER,
    time_steps INTEGER,
    events     REAL,
    spikes     REAL,
    synops     REAL,
    extra      TEXT,
    PRIMARY KEY (cell_id, position)
);
CREATE TABLE IF NOT EXISTS timings (
    cell_id INTEGER NOT NULL REFERENCES cells(id) ON DELETE CASCADE,
    phase   TEXT NOT NULL,
    seconds REAL,
    PRIMARY KEY (cell_id, phase)
);
CREATE TABLE IF NOT EXISTS artifacts (
    id       INTEGER PRIMARY KEY,
    run_id   TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    cell_key TEXT,
    kind     TEXT NOT NULL,
    path     TEXT NOT NULL,
    created  TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS artifacts_once ON artifacts (run_id, ifnull(cell_key, ''), kind, path);
CREATE TABLE IF NOT EXISTS planned_cells (
    run_id   TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    cell_key TEXT NOT NULL,
    title    TEXT NOT NULL,
    PRIMARY KEY (run_id, cell_key)
)
"""
def timing_column(phase: str) -> str:
    """The cells-frame column of a stored timing: ``ann_s`` and ``ann_rss_mib`` as they are (the cell
    runner names its measurements with their unit), a bare phase such as ``train`` as ``train_s``."""
    return phase if phase.endswith(("_s", "_mib")) else f"{phase}_s"


_CHILD_TABLES = ("sample_metrics", "curves", "layer_stats", "timings")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays arrive from metrics and plugin parameters; Paths from dataset specs
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def to_json(value: Any) -> str:
    """JSON with sorted keys, so equal configurations are equal strings."""
    return json.dumps(value, sort_keys=True, default=_json_default)


def _real(value: Any) -> float | None:
    # SQLite has no NaN: it would silently become NULL anyway, so say so explicitly
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _optional_int(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _flatten_config(config: Mapping[str, Any]) -> dict[str, Any]:
    # nested parameter dicts stay JSON strings: one column each, comparable, writable to CSV
    return {
        key: to_json(value) if isinstance(value, (dict, list, tuple)) else value
        for key, value in config.items()
    }


def _config_columns(keys: Iterable[str]) -> list[str]:
    present = set(keys)
    fixed = [key for key in CONFIG_KEYS if key in present]
    return fixed + sorted(present - set(CONFIG_KEYS))


class ResultStore:
    """All results under one folder, in ``results_dir / "bench-suite.sqlite"``.

    ``create=False`` is for readers (``bench-suite report``): a folder without a database is an error
    instead of a new empty database left behind in a mistyped folder.
    """

    def __init__(self, results_dir: Path | str, *, create: bool = True) -> None:
        self.results_dir = Path(results_dir)
        self.path = self.results_dir / DB_FILENAME
        self._created_now = not self.path.exists()
        if self._created_now and not create:
            raise BenchSuiteError(
                f"there is no results database in {self.results_dir} (looked for {DB_FILENAME}) — "
                "pass the folder that holds your results or start a run with `bench-suite run`"
            )
        self.results_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            self._configure()
            self._ensure_schema()
        except sqlite3.DatabaseError as error:
            raise BenchSuiteError(
                f"cannot open the results database {self.path}: {error} — check that it is a bench-suite "
                "database and that the folder is writable"
            ) from error

    # -- connection ------------------------------------------------------------------------------

    def _configure(self) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL would be safe against corruption too, but could drop the last finished cells on power loss
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")

    def _stored_version(self) -> int | None:
        has_table = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if has_table is None:
            return None
        row = self._conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return None if row[0] is None else int(row[0])

    def _ensure_schema(self) -> None:
        # check before locking: a report opened while a run is writing must not wait for the write lock
        version = self._stored_version()
        if version is None:
            with self._write() as conn:
                for statement in _SCHEMA.split(";"):
                    conn.execute(statement)
                if conn.execute("SELECT 1 FROM schema_version").fetchone() is None:
                    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            version = self._stored_version()
        if version != SCHEMA_VERSION:
            raise BenchSuiteError(
                f"the results database {self.path} has schema version {version} but this bench-suite "
                f"reads version {SCHEMA_VERSION} — use the bench-suite version that wrote it or a new "
                "results folder"
            )

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: a second writer waits (busy_timeout) instead of
        # failing halfway through when its read lock cannot be upgraded
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            # a COMMIT that failed (disk full, I/O error) must not leave the half-written cell pending
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # one read transaction = one WAL snapshot, so frames joined from several queries agree
        self._conn.execute("BEGIN DEFERRED")
        try:
            yield self._conn
        finally:
            if self._conn.in_transaction:
                self._conn.execute("COMMIT")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.results_dir)!r})"

    # -- runs ------------------------------------------------------------------------------------

    def create_run(self, spec: dict, versions: dict[str, str]) -> str:
        """Store a new run with status 'running'; its id sorts by creation time (UTC)."""
        for _ in range(20):
            created = dt.datetime.now(dt.UTC)
            run_id = f"{created:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
            try:
                with self._write() as conn:
                    conn.execute(
                        "INSERT INTO runs (id, created, status, spec, versions) "
                        "VALUES (?, ?, 'running', ?, ?)",
                        (
                            run_id,
                            created.isoformat(timespec="milliseconds"),
                            to_json(spec),
                            to_json(versions),
                        ),
                    )
            except sqlite3.IntegrityError:
                continue  # same second and same random suffix: draw again
            return run_id
        raise BenchSuiteError(f"could not find a free run id in {self.path} — try again")

    def get_run(self, run_id: str) -> dict[str, Any]:
        row = self._conn.execute(
            "SELECT id, created, status, spec, versions FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise self._unknown_run(run_id)
        return {
            "id": row[0],
            "created": row[1],
            "status": row[2],
            "spec": json.loads(row[3]),
            "versions": json.loads(row[4]),
        }

    def _unknown_run(self, run_id: str) -> BenchSuiteError:
        recent = [
            row[0] for row in self._conn.execute("SELECT id FROM runs ORDER BY created DESC, rowid DESC")
        ]
        if not recent:
            where = (
                f"there was no results database in {self.results_dir} (an empty one was just created)"
                if self._created_now
                else f"the results folder {self.results_dir} holds no runs yet"
            )
            return BenchSuiteError(
                f"unknown run id '{run_id}': {where} — pass the folder that holds your results "
                "or start a run with `bench-suite run`"
            )
        hint = did_you_mean(run_id, recent)
        return BenchSuiteError(
            f"unknown run id '{run_id}' in {self.results_dir}{hint + ' ' if hint else ' — '}latest runs: "
            f"{', '.join(recent[:5])}; see one with `bench-suite report {recent[0]}{results_option(self.results_dir)}`"
        )

    def _require_run(self, run_id: str) -> None:
        if self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise self._unknown_run(run_id)

    def latest_run_id(self) -> str | None:
        row = self._conn.execute("SELECT id FROM runs ORDER BY created DESC, rowid DESC LIMIT 1").fetchone()
        return None if row is None else row[0]

    def list_runs(self) -> list[dict[str, Any]]:
        """Newest first, each with its cell counts by status and ``planned`` (the cells it is made of)."""
        rows = self._conn.execute(
            """
            SELECT r.id, r.created, r.status, r.spec, r.versions,
                   count(c.id),
                   coalesce(sum(c.status = 'done'), 0),
                   coalesce(sum(c.status = 'failed'), 0),
                   coalesce(sum(c.status = 'running'), 0),
                   (SELECT count(*) FROM planned_cells p WHERE p.run_id = r.id)
            FROM runs r LEFT JOIN cells c ON c.run_id = r.id
            GROUP BY r.id
            ORDER BY r.created DESC, r.rowid DESC
            """
        ).fetchall()
        return [
            {
                "id": row[0],
                "created": row[1],
                "status": row[2],
                "spec": json.loads(row[3]),
                "versions": json.loads(row[4]),
                "cells": row[5],
                "done": row[6],
                "failed": row[7],
                "running": row[8],
                "planned": row[9],
            }
            for row in rows
        ]

    def set_run_status(self, run_id: str, status: str) -> None:
        if status not in RUN_STATUSES:
            raise BenchSuiteError(
                f"unknown run status '{status}' for run '{run_id}'{did_you_mean(status, RUN_STATUSES)} "
                f"available: {', '.join(RUN_STATUSES)}"
            )
        with self._write() as conn:
            if conn.execute("UPDATE runs SET status = ? WHERE id = ?", (status, run_id)).rowcount == 0:
                raise self._unknown_run(run_id)

    # -- cells -----------------------------------------------------------------------------------

    def plan_cells(self, run_id: str, cells: Iterable[tuple[str, str]]) -> None:
        """Record the cells a run is made of, ``(cell_key, title)`` in order (again on resume: a no-op)."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise self._unknown_run(run_id)
            start = conn.execute("SELECT count(*) FROM planned_cells WHERE run_id = ?", (run_id,)).fetchone()[0]
            conn.executemany(
                "INSERT OR IGNORE INTO planned_cells (run_id, position, cell_key, title) VALUES (?, ?, ?, ?)",
                ((run_id, start + i, key, title) for i, (key, title) in enumerate(cells)),
            )

    def unfinished_cells(self, run_id: str) -> list[dict[str, Any]]:
        """Planned cells that are neither done nor failed: ``{"cell_key", "title", "status"}`` in plan order
        (status ``pending`` if never started, ``running`` if started and not finished)."""
        self._require_run(run_id)
        rows = self._conn.execute(
            """
            SELECT p.cell_key, p.title, c.status FROM planned_cells p
            LEFT JOIN cells c ON c.run_id = p.run_id AND c.cell_key = p.cell_key
            WHERE p.run_id = ? AND (c.status IS NULL OR c.status = 'running')
            ORDER BY p.position
            """,
            (run_id,),
        ).fetchall()
        return [{"cell_key": key, "title": title, "status": status or "pending"} for key, title, status in rows]

    def planned_count(self, run_id: str) -> int:
        return int(self._conn.execute("SELECT count(*) FROM planned_cells WHERE run_id = ?", (run_id,)).fetchone()[0])

    def done_cell_keys(self, run_id: str) -> set[str]:
        self._require_run(run_id)
        rows = self._conn.execute(
            "SELECT cell_key FROM cells WHERE run_id = ? AND status = 'done'", (run_id,)
        )
        return {row[0] for row in rows}

    def start_cell(self, run_id: str, cell_key: str, config: dict) -> int:
        """Mark a cell 'running' and return its id; a killed or failed earlier attempt is wiped first."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise self._unknown_run(run_id)
            row = conn.execute(
                "SELECT id, status FROM cells WHERE run_id = ? AND cell_key = ?", (run_id, cell_key)
            ).fetchone()
            if row is None:
                cursor = conn.execute(
                    "INSERT INTO cells (run_id, cell_key, config, status, started) "
                    "VALUES (?, ?, ?, 'running', ?)",
                    (run_id, cell_key, to_json(config), _now()),
                )
                return int(cursor.lastrowid)
            cell_id, status = row
            if status == "done":
                raise BenchSuiteError(
                    f"cell '{cell_key}' of run '{run_id}' is already done — skip the cells in "
                    "`done_cell_keys` when resuming, or start a new run to compute it again"
                )
            for table in _CHILD_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE cell_id = ?", (cell_id,))
            conn.execute(
                """
                UPDATE cells SET status = 'running', config = ?, started = ?, attempts = attempts + 1,
                                 finished = NULL, error = NULL, traceback = NULL, info = NULL
                WHERE id = ?
                """,
                (to_json(config), _now(), cell_id),
            )
            return int(cell_id)

    def _running_cell(self, conn: sqlite3.Connection, cell_id: int, action: str) -> None:
        row = conn.execute("SELECT cell_key, status FROM cells WHERE id = ?", (cell_id,)).fetchone()
        if row is None:
            raise BenchSuiteError(
                f"cannot {action} cell id {cell_id}: it is not in {self.path} — "
                "use the id `start_cell` returned"
            )
        if row[1] != "running":
            raise BenchSuiteError(
                f"cannot {action} cell '{row[0]}' (id {cell_id}): it is '{row[1]}', not 'running' — "
                "call `start_cell` for it first"
            )

    def finish_cell(
        self,
        cell_id: int,
        *,
        sample_metrics: Iterable[tuple[str, str, float]] = (),
        curves: Iterable[tuple[str, int, str, float]] = (),
        layer_stats: Iterable[Mapping[str, Any]] = (),
        timings: Mapping[str, float] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        """Write everything the cell measured and mark it 'done', all in one transaction."""
        with self._write() as conn:
            self._running_cell(conn, cell_id, "finish")
            try:
                conn.executemany(
                    "INSERT INTO sample_metrics (cell_id, sample, metric, value) VALUES (?, ?, ?, ?)",
                    (
                        (cell_id, str(sample), str(metric), _real(value))
                        for sample, metric, value in sample_metrics
                    ),
                )
            except sqlite3.IntegrityError as error:
                raise BenchSuiteError(
                    f"cell id {cell_id} reported the same (sample, metric) twice ({error}) — "
                    "each metric must be stored once per sample"
                ) from error
            conn.executemany(
                "INSERT INTO curves (cell_id, stage, epoch, metric, value) VALUES (?, ?, ?, ?, ?)",
                (
                    (cell_id, str(stage), int(epoch), str(metric), _real(value))
                    for stage, epoch, metric, value in curves
                ),
            )
            conn.executemany(
                f"INSERT INTO layer_stats (cell_id, position, {', '.join(LAYER_COLUMNS)}, extra) "
                f"VALUES ({', '.join('?' * (len(LAYER_COLUMNS) + 3))})",
                ((cell_id, position, *self._layer_row(stats)) for position, stats in enumerate(layer_stats)),
            )
            conn.executemany(
                "INSERT INTO timings (cell_id, phase, seconds) VALUES (?, ?, ?)",
                ((cell_id, str(phase), _real(seconds)) for phase, seconds in (timings or {}).items()),
            )
            conn.execute(
                "UPDATE cells SET status = 'done', finished = ?, info = ? WHERE id = ?",
                (_now(), to_json(dict(info or {})), cell_id),
            )

    @staticmethod
    def _layer_row(stats: Mapping[str, Any]) -> tuple[Any, ...]:
        values: list[Any] = []
        for column in LAYER_COLUMNS:
            value = stats.get(column)
            if column in _LAYER_TEXT:
                values.append(None if value is None else str(value))
            elif column in _LAYER_INTEGERS:
                values.append(_optional_int(value))
            else:
                values.append(_real(value))
        extra = {key: value for key, value in stats.items() if key not in LAYER_COLUMNS}
        values.append(to_json(extra) if extra else None)
        return tuple(values)

    def fail_cell(self, cell_id: int, message: str, traceback: str) -> None:
        with self._write() as conn:
            self._running_cell(conn, cell_id, "fail")
            conn.execute(
                "UPDATE cells SET status = 'failed', finished = ?, error = ?, traceback = ? WHERE id = ?",
                (_now(), message, traceback, cell_id),
            )

    # -- artefacts -------------------------------------------------------------------------------

    def add_artifact(self, run_id: str, cell_key: str | None, kind: str, path: Path | str) -> None:
        """Record a file (checkpoint, figure); adding the same one again on resume is a no-op."""
        stored = Path(path)
        with contextlib.suppress(ValueError):
            # relative to the results folder, so the folder can be moved or copied whole
            stored = stored.resolve().relative_to(self.results_dir.resolve())
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise self._unknown_run(run_id)
            conn.execute(
                "INSERT OR IGNORE INTO artifacts (run_id, cell_key, kind, path, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, cell_key, kind, stored.as_posix(), _now()),
            )

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        self._require_run(run_id)
        rows = self._conn.execute(
            "SELECT cell_key, kind, path, created FROM artifacts WHERE run_id = ? ORDER BY id", (run_id,)
        ).fetchall()
        return [
            {"cell_key": cell_key, "kind": kind, "path": self.results_dir / path, "created": created}
            for cell_key, kind, path, created in rows
        ]

    # -- frames ----------------------------------------------------------------------------------

    def cells_frame(self, run_id: str) -> pd.DataFrame:
        """One row per cell: identity, status, times, ``<phase>_s`` timings, then the flattened config."""
        self._require_run(run_id)
        with self._read() as conn:
            rows = conn.execute(
                """
                SELECT id, cell_key, status, error, started, finished, attempts, traceback, info, config
                FROM cells WHERE run_id = ? ORDER BY id
                """,
                (run_id,),
            ).fetchall()
            timing_rows = conn.execute(
                """
                SELECT t.cell_id, t.phase, t.seconds FROM timings t JOIN cells c ON c.id = t.cell_id
                WHERE c.run_id = ?
                """,
                (run_id,),
            ).fetchall()
        timings: dict[int, dict[str, float]] = {}
        for cell_id, phase, seconds in timing_rows:
            timings.setdefault(cell_id, {})[timing_column(phase)] = math.nan if seconds is None else seconds
        records = []
        for cell_id, key, status, error, started, finished, attempts, tb, info, config in rows:
            record = {
                "cell_id": cell_id,
                "cell_key": key,
                "status": status,
                "error": error,
                "started": started,
                "finished": finished,
                "attempts": attempts,
                "traceback": tb,
                "info": info,
            }
            record.update(timings.get(cell_id, {}))
            records.append((record, _flatten_config(json.loads(config))))
        base = ["cell_id", "cell_key", "status", "error", "started", "finished", "duration_s", "attempts"]
        timing_columns = sorted({name for values in timings.values() for name in values})
        config_columns = _config_columns(key for _, config in records for key in config)
        frame = pd.DataFrame(
            [{**record, **config} for record, config in records],
            columns=[*base, *timing_columns, "traceback", "info", *config_columns],
        )
        frame["started"] = pd.to_datetime(frame["started"], utc=True, format="ISO8601")
        frame["finished"] = pd.to_datetime(frame["finished"], utc=True, format="ISO8601")
        frame["duration_s"] = (frame["finished"] - frame["started"]).dt.total_seconds()
        return frame

    def cell_configs_frame(self, run_id: str) -> pd.DataFrame:
        """One row per cell: ``cell_id, cell_key, status`` and the flattened config, nothing else."""
        self._require_run(run_id)
        with self._read() as conn:
            return self._cell_configs(conn, run_id)

    def _cell_configs(self, conn: sqlite3.Connection, run_id: str) -> pd.DataFrame:
        rows = conn.execute(
            "SELECT id, cell_key, status, config FROM cells WHERE run_id = ? ORDER BY id", (run_id,)
        ).fetchall()
        configs = [_flatten_config(json.loads(config)) for *_, config in rows]
        columns = ["cell_id", "cell_key", "status", *_config_columns(key for c in configs for key in c)]
        return pd.DataFrame(
            [
                {"cell_id": i, "cell_key": k, "status": s, **c}
                for (i, k, s, _), c in zip(rows, configs, strict=True)
            ],
            columns=columns,
        )

    def _child_frame(self, run_id: str, sql: str, columns: list[str]) -> pd.DataFrame:
        self._require_run(run_id)
        with self._read() as conn:
            cells = self._cell_configs(conn, run_id)
            child = pd.DataFrame(conn.execute(sql, (run_id,)).fetchall(), columns=columns)
        frame = child.merge(cells, on="cell_id", how="inner")
        return frame[[*cells.columns, *columns[1:]]].reset_index(drop=True)

    def sample_metrics_frame(self, run_id: str) -> pd.DataFrame:
        frame = self._child_frame(
            run_id,
            """
            SELECT m.cell_id, m.sample, m.metric, m.value
            FROM sample_metrics m JOIN cells c ON c.id = m.cell_id
            WHERE c.run_id = ? ORDER BY m.cell_id, m.rowid
            """,
            ["cell_id", "sample", "metric", "value"],
        )
        frame["value"] = frame["value"].astype(float)
        return frame

    def curves_frame(self, run_id: str) -> pd.DataFrame:
        frame = self._child_frame(
            run_id,
            """
            SELECT v.cell_id, v.stage, v.epoch, v.metric, v.value
            FROM curves v JOIN cells c ON c.id = v.cell_id
            WHERE c.run_id = ? ORDER BY v.cell_id, v.rowid
            """,
            ["cell_id", "stage", "epoch", "metric", "value"],
        )
        frame["value"] = frame["value"].astype(float)
        return frame

    def layer_stats_frame(self, run_id: str) -> pd.DataFrame:
        """Known statistics as columns; the extra keys a plugin reported become further columns."""
        frame = self._child_frame(
            run_id,
            f"""
            SELECT s.cell_id, s.position, {", ".join("s." + c for c in LAYER_COLUMNS)}, s.extra
            FROM layer_stats s JOIN cells c ON c.id = s.cell_id
            WHERE c.run_id = ? ORDER BY s.cell_id, s.position
            """,
            ["cell_id", "position", *LAYER_COLUMNS, "extra"],
        )
        for column in ("events", "spikes", "synops"):
            frame[column] = frame[column].astype(float)
        extras = [json.loads(extra) if isinstance(extra, str) else {} for extra in frame.pop("extra")]
        extra_columns = sorted({key for extra in extras for key in extra} - set(frame.columns))
        for column in extra_columns:
            frame[column] = [extra.get(column) for extra in extras]
        return frame
