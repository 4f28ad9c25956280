"""Grids on Dask workers: the same numbers as in-process, faults survived, one writer, SLURM scripts."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench_suite.cli.app import app

pytest.importorskip("distributed", reason="the dask extra (distributed, dask-jobqueue) is not installed")

GRID = ["--plugin", "neuron=if", "--plugin", "neuron=mt", "--plugin", "norm=lw", "--plugin", "norm=cw",
        "--plugin", "trainer=conv", "--plugin", "trainer=asf", "--dataset", "demo-vessels", "-T", "4",
        "--profile", "smoke", "--set", "ann_epochs=4"]


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def bench_suite(*args, env=None, check=True):
    result = subprocess.run([sys.executable, "-m", "bench_suite", *map(str, args)], capture_output=True,
                            text=True, env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def cells(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("select cell_key, status, attempts from cells order by id").fetchall()


def test_two_workers_give_the_same_tidy_csv_as_in_process(tmp_path):
    data = tmp_path / "data"
    output = cli("run", *GRID, "--workers", 2, "--threads-per-worker", 1, "--results", tmp_path / "a",
                 "--data-root", data)
    assert "8 cells on local Dask cluster of 2 workers × 1 threads (Dask dashboard: http" in output
    cli("run", *GRID, "--threads-per-worker", 1, "--results", tmp_path / "b", "--data-root", data)
    on_workers = cli("report", "--format", "csv", "--results", tmp_path / "a")
    in_process = cli("report", "--format", "csv", "--results", tmp_path / "b")
    assert on_workers == in_process
    assert len([row for row in cells(tmp_path / "a" / "bench-suite.sqlite") if row[1] == "done"]) == 8
    assert len(list((tmp_path / "a" / "checkpoints").glob("ann-*.pt"))) == 1  # one ANN task for all 8 cells


KILLER = textwrap.dedent('''
    """A neuron that kills the worker process computing it, once per marker folder."""
    import os
    from pathlib import Path

    from bench_suite.neurons.integrate_fire import IFNeuron


    class WorkerKiller(IFNeuron):
        """Integrate-and-fire that kills its process the first time it is built."""

        def __init__(self, params=None, threshold=1.0, channels=None):
            marker = Path(os.environ["KILLER_MARKER"])
            if not marker.exists():
                marker.write_text("killed once")
                os._exit(1)  # as an out-of-memory kill would
            super().__init__(params, threshold, channels)
''')


def plugin_package(folder: Path) -> Path:
    """A third-party package with the killer neuron, visible to the coordinator and its workers."""
    folder.mkdir(parents=True)
    (folder / "killer_plugin.py").write_text(KILLER)
    info = folder / "killer_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: killer-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[bench_suite.neurons]\nkiller = killer_plugin:WorkerKiller\n")
    return folder


def test_a_killed_worker_is_retried_elsewhere_and_every_cell_is_stored_once(tmp_path):
    site = plugin_package(tmp_path / "site")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "KILLER_MARKER": str(tmp_path / "marker")}
    results = tmp_path / "results"
    run = bench_suite("run", "--plugin", "neuron=killer", "--plugin", "neuron=if", "--plugin", "trainer=conv",
                      "--dataset", "demo-vessels", "-T", "4", "--profile", "smoke", "--set", "ann_epochs=2",
                      "--workers", 2, "--threads-per-worker", 1, "--results", results,
                      "--data-root", tmp_path / "data", env=env)
    assert (tmp_path / "marker").read_text() == "killed once"  # a worker did die
    stored = cells(results / "bench-suite.sqlite")
    assert len(stored) == 2 and {status for _, status, _ in stored} == {"done"}, run.stdout + run.stderr
    assert len({key for key, _, _ in stored}) == 2


KILL_COORDINATOR = textwrap.dedent('''
    import os, signal, sys
    from bench_suite.results.store import ResultStore

    finish, done = ResultStore.finish_cell, []

    def finish_then_die(self, *args, **kwargs):
        finish(self, *args, **kwargs)
        done.append(1)
        if len(done) == 3:
            os.kill(os.getpid(), signal.SIGKILL)  # the coordinator, mid-grid

    ResultStore.finish_cell = finish_then_die
    from bench_suite.cli import main
    sys.argv = ["bench-suite", *sys.argv[1:]]
    main()
''')


def test_a_killed_coordinator_resumes_with_no_duplicate_and_an_intact_store(tmp_path):
    results, data = tmp_path / "results", tmp_path / "data"
    killed = subprocess.run([sys.executable, "-c", KILL_COORDINATOR, "run", *map(str, GRID), "--workers", "2",
                             "--threads-per-worker", "1", "--results", str(results), "--data-root", str(data)],
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    db = results / "bench-suite.sqlite"
    before = [key for key, status, _ in cells(db) if status == "done"]
    assert len(before) == 3
    with sqlite3.connect(db) as conn:
        (run_id,) = conn.execute("select id from runs").fetchone()
    resumed = bench_suite("run", "--resume", run_id, "--workers", 2, "--threads-per-worker", 1,
                          "--results", results, "--data-root", data)
    assert f"run id: {run_id}" in resumed.stderr  # status on stderr, the table on stdout
    after = cells(db)
    assert len(after) == 8 and len({key for key, _, _ in after}) == 8
    assert all(status == "done" for _, status, _ in after)
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
        duplicates = conn.execute("select count(*) from (select cell_id, sample, metric, count(*) c "
                                  "from sample_metrics group by 1, 2, 3 having c > 1)").fetchone()[0]
    assert duplicates == 0


def test_slurm_job_script_asks_for_the_gpus_and_gives_each_worker_one(tmp_path):
    pytest.importorskip("dask_jobqueue")
    from bench_suite.experiment.executors import slurm_cluster

    cluster = slurm_cluster({"gpus": "1", "queue": "gpu", "walltime": "04:00:00", "memory": "32GB",
                             "cores": "8", "account": "lab42", "local-directory": str(tmp_path)})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p gpu" in script and "#SBATCH -A lab42" in script and "#SBATCH -t 04:00:00" in script
    assert "#SBATCH --gres=gpu:1" in script and "--resources GPU=1" in script
    assert "#SBATCH --mem=" in script and "#SBATCH --cpus-per-task=8" in script


def test_workers_start_without_the_malloc_setting_that_slows_torch(tmp_path):
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_, which made torch's CPU passes ~1.4x slower on workers."""
    from bench_suite.experiment.executors import DaskExecutor, slurm_cluster

    executor = DaskExecutor.local(workers=1, threads_per_worker=1)
    try:
        seen = executor.client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_", "unset"))
    finally:
        executor.close()
    assert list(seen.values()) == ["unset"]
    pytest.importorskip("dask_jobqueue")
    cluster = slurm_cluster({"local-directory": str(tmp_path)})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    exported = [line for line in script.splitlines() if "PRE_SPAWN_ENVIRON" in line]
    assert exported and script.index(exported[0]) < script.index("distributed.cli.dask_worker")
    name, value = exported[0].removeprefix("export ").split("=", 1)
    import dask.config

    with dask.config.set(dask.config.collect_env({name: value.strip('"')})):
        assert dask.config.get("distributed.nanny.pre-spawn-environ")["MALLOC_TRIM_THRESHOLD_"] is None


def test_an_existing_cluster_with_slow_worker_settings_gets_a_note():
    from bench_suite.experiment.executors import slow_worker_notes

    class Client:
        def __init__(self, found):
            self.found = found

        def run(self, function, *args):
            return self.found

    notes = slow_worker_notes(Client({"tcp://a": {"MALLOC_TRIM_THRESHOLD_": "65536"}, "tcp://b": {}}))
    assert len(notes) == 1 and "MALLOC_TRIM_THRESHOLD_" in notes[0] and "PRE_SPAWN_ENVIRON" in notes[0]
    assert slow_worker_notes(Client({"tcp://a": {}})) == []


def test_an_unreachable_scheduler_is_one_sentence_and_writes_no_store(tmp_path):
    result = CliRunner().invoke(app, ["run", "--profile", "smoke", "--scheduler", "tcp://127.0.0.1:9",
                                      "--results", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert not (tmp_path / "r").exists()


def test_a_missing_dask_jobqueue_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    result = CliRunner().invoke(app, ["run", "--cluster", "slurm", "--cluster-option", "gpus=1",
                                      "--results", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "--cluster slurm needs dask-jobqueue; install it with `pip install 'bench-suite[dask]'`" in result.output
    assert not (tmp_path / "r").exists()


def test_only_one_place_to_run(tmp_path):
    result = CliRunner().invoke(app, ["run", "--workers", "2", "--scheduler", "tcp://x:1",
                                      "--results", str(tmp_path / "r")])
    assert result.exit_code == 2 and "each choose where cells run; give one of them" in result.output
