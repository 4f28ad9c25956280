"""The command line: options → RunSpec → runner; errors → one sentence and a non-zero exit.

Heavy modules (torch and everything built on it) are imported inside the commands, so ``--help`` is
instant. This is the only module that knows about the terminal.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import traceback
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.paths import default_results

app = typer.Typer(
    name="bench-suite", no_args_is_help=True, pretty_exceptions_enable=False,
    help="Benchmark spiking U-Nets: neurons × normalizations × training methods × datasets.",
)
# stdout carries what a command is for (a table, a listing), so `run … > table.md` holds only the table;
# status lines, progress bars, hints and errors go to stderr. Not a terminal (a pipe, CI, a file): wide
# enough that tables do not fold.
console = Console(width=None if sys.stdout.isatty() else 160)
error_console = Console(stderr=True)


class Profile(StrEnum):
    smoke = "smoke"
    quick = "quick"
    paper = "paper"


class ReportFormat(StrEnum):
    markdown = "markdown"
    latex = "latex"
    csv = "csv"


class Stats(StrEnum):
    paired = "paired"
    paper = "paper"


class PairedTest(StrEnum):
    t = "t"
    wilcoxon = "wilcoxon"
    permutation = "permutation"
    auto = "auto"


class Alternative(StrEnum):
    two_sided = "two-sided"
    greater = "greater"
    less = "less"


class Family(StrEnum):
    table = "table"
    dataset = "dataset"
    metric = "metric"


class Precision(StrEnum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Cluster(StrEnum):
    slurm = "slurm"


def _value(option):
    """An Enum choice as the plain string the rest of the package stores (None stays None)."""
    return option.value if isinstance(option, StrEnum) else option


class _Global:
    debug = False  # `bench-suite --debug COMMAND`: as if every command got --debug


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"bench-suite {version('bench-suite')}")
        raise typer.Exit()


@app.callback()
def global_options(
    version: Annotated[bool, typer.Option(
        "--version", metavar="", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", metavar="",
        help="Show the full traceback on errors (every command).")] = False,
) -> None:
    """Benchmark spiking U-Nets: neurons × normalizations × training methods × datasets."""
    _Global.debug = debug

KIND_ALIASES = {
    "neuron": "neuron", "neurons": "neuron", "norm": "norm", "norms": "norm", "trainer": "trainer",
    "trainers": "trainer", "dataset": "dataset", "datasets": "dataset", "model": "model", "models": "model",
}
DEFAULT_RESULTS = default_results()


def say(text: str, style: str | None = None, to=None) -> None:
    """Print ``text`` literally (never as Rich markup: ``thresholds=[a,b]`` must survive)."""
    (to or console).print(Text(text, style=style or ""), highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    error_console.print(Text("error: ", style="bold red") + Text(message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(command):
    """Map every error to one sentence and an exit code; ``--debug`` keeps the traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        if _Global.debug and "debug" in kwargs:
            kwargs["debug"] = True
        debug = kwargs.get("debug", False) or _Global.debug
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except BenchSuiteError as exc:
            if debug:
                traceback.print_exc()
            fail(str(exc))
        except KeyboardInterrupt:
            error_console.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # the last line of defence: never a raw traceback without --debug
            if debug:
                traceback.print_exc()
            fail(f"unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)", 1)

    return wrapper


DebugOption = Annotated[bool, typer.Option("--debug", metavar="", help="Show the full traceback on errors.")]
ResultsOption = Annotated[
    Path, typer.Option("--results", metavar="DIR", help="Results folder (SQLite store, checkpoints, reports).")
]


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        if "," in text:
            seeds = tuple(int(s) for s in text.split(",") if s.strip())
        else:
            count = int(text)
            if count < 1:
                raise ValueError
            seeds = tuple(range(count))
    except ValueError:
        raise BenchSuiteError(
            f"--seeds '{text}' is neither a count (e.g. 3 → seeds 0,1,2) nor a list of seeds (e.g. 0,7)"
        ) from None
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise BenchSuiteError(f"--seeds '{text}': seeds must be distinct non-negative integers")
    return seeds


def parse_time_steps(values: list[str]) -> tuple[int, ...]:
    steps: list[int] = []
    for value in values:
        for item in value.split(","):
            try:
                step = int(item)
            except ValueError:
                raise BenchSuiteError(f"-T '{item}' is not a whole number of time steps, e.g. -T 10") from None
            if step < 1:
                raise BenchSuiteError(f"-T {step}: the number of time steps must be at least 1")
            if step not in steps:
                steps.append(step)
    return tuple(steps)


def expand_folds(choices: list, folds: int) -> list:
    """Each dataset with a ``fold`` parameter becomes ``folds`` choices, fold 0 … folds−1."""
    import dataclasses as dc

    from bench_suite.core.params import PluginChoice
    from bench_suite.core.registry import get_registry

    if folds < 2:
        raise BenchSuiteError(f"--folds {folds}: give at least 2 folds")
    expanded = []
    for choice in choices:
        params_cls = get_registry().get("dataset", choice.name).params_cls
        if params_cls is None or "fold" not in {f.name for f in dc.fields(params_cls)}:
            raise BenchSuiteError(f"--folds: dataset '{choice.name}' has no cross-validation folds; drop --folds")
        kept = tuple(p for p in choice.params if p[0] not in ("fold", "folds"))
        expanded += [PluginChoice("dataset", choice.name, (*kept, ("folds", str(folds)), ("fold", str(i))))
                     for i in range(folds)]
    return expanded


def parse_sets(items: list[str]) -> dict[str, str]:
    overrides = {}
    for item in items:
        if "=" not in item:
            raise BenchSuiteError(f"--set '{item}' is not KEY=VALUE, e.g. --set ann_epochs=5")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value.strip()
    return overrides


def build_spec(plugins, datasets, time_steps, seeds, profile, sets, data_root, folds=None):
    from bench_suite.core.params import PluginChoice, parse_plugin_option
    from bench_suite.core.registry import KINDS, get_registry
    from bench_suite.experiment.spec import (
        DEFAULT_PROFILE,
        DEFAULT_SEEDS,
        DEFAULT_TIME_STEPS,
        DEFAULTS,
        RunSpec,
        with_defaults,
    )

    demo = not (plugins or datasets or time_steps or seeds or profile or sets or folds)
    chosen: dict[str, list[PluginChoice]] = {kind: [] for kind in KINDS}
    for text in plugins:
        choice = parse_plugin_option(text)
        if choice.kind not in chosen:
            raise BenchSuiteError(
                f"--plugin '{text}': unknown kind '{choice.kind}'; kinds: {', '.join(KINDS)}"
            )
        if choice not in chosen[choice.kind]:
            chosen[choice.kind].append(choice)
    for text in datasets:
        choice = parse_plugin_option(f"dataset={text}")
        if choice not in chosen["dataset"]:
            chosen["dataset"].append(choice)
    if folds is not None:
        chosen["dataset"] = expand_folds(chosen["dataset"] or [PluginChoice("dataset", n) for n in DEFAULTS["dataset"]],
                                         folds)
    overrides = parse_sets(sets)
    spec = RunSpec(
        choices=with_defaults(chosen, get_registry()),
        time_steps=parse_time_steps(time_steps) if time_steps else DEFAULT_TIME_STEPS,
        seeds=parse_seeds(seeds) if seeds else DEFAULT_SEEDS,
        profile=profile or DEFAULT_PROFILE,
        overrides=overrides,
        data_root=str(data_root) if data_root else None,
    )
    return spec, demo


@app.command()
@guarded
def run(
    plugin: Annotated[list[str], typer.Option(
        "--plugin", "-p", metavar="KIND=NAME(…)",
            help="KIND=NAME or KIND=NAME(key=value, ...); repeat to form a grid.")] = [],
    dataset: Annotated[list[str], typer.Option("--dataset", "-d", metavar="NAME",
        help="Dataset name; repeatable.")] = [],
    time_steps: Annotated[list[str], typer.Option("-T", "--time-steps", metavar="T",
        help="Time steps; repeatable.")] = [],
    seeds: Annotated[Optional[str], typer.Option("--seeds", metavar="N|LIST",
        help="A count (3 → 0,1,2) or a list (0,7).")] = None,
    profile: Annotated[Optional[Profile], typer.Option(
        "--profile", help="Training budget: smoke (seconds), quick (minutes, CPU), paper (the studies', a GPU); "
        "default quick.")] = None,
    set_: Annotated[list[str], typer.Option(
        "--set", metavar="KEY=VALUE",
            help="Override a profile setting, e.g. ann_epochs=5 (suites too); repeatable.")] = [],
    data_root: Annotated[Optional[Path], typer.Option("--data-root", metavar="DIR",
        help="Where datasets are looked for.")] = None,
    suite: Annotated[Optional[str], typer.Option(
        "--suite", metavar="NAME",
            help="Run a named experiment (a paper table); see `bench-suite list suites`.")] = None,
    grid: Annotated[list[str], typer.Option(
        "--grid", metavar="NAME",
            help="With --suite: run only this grid block of it (e.g. the dataset you have); repeatable.")] = [],
    folds: Annotated[Optional[int], typer.Option(
        "--folds", metavar="K",
            help="Cross-validate: run every fold of datasets that have folds (e.g. hippocampus).")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", metavar="RUN_ID",
        help="Finish an interrupted run.")] = None,
    device: Annotated[Optional[str], typer.Option(
        "--device", metavar="DEVICE",
            help="auto | cpu | cuda | cuda:N | mps (auto: CUDA when present). Stored with the run.")] = None,
    precision: Annotated[Optional[Precision], typer.Option(
        "--precision", help="Autocast for training and simulation (spikes stay exact); default fp32.")] = None,
    deterministic: Annotated[bool, typer.Option(
        "--deterministic", metavar="",
            help="Deterministic cuDNN/cuBLAS algorithms (slower on GPUs; off: autotuning).")] = False,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", metavar="N", help="Run cells on a local Dask cluster of this many worker processes.")] = None,
    threads_per_worker: Annotated[Optional[int], typer.Option(
        "--threads-per-worker", metavar="N", help="Torch threads per cell (default: cores / workers).")] = None,
    scheduler: Annotated[Optional[str], typer.Option(
        "--scheduler", metavar="ADDRESS",
            help="Run cells on an existing Dask cluster (scheduler address, tcp://host:8786).")] = None,
    cluster: Annotated[Optional[Cluster], typer.Option(
        "--cluster", help="Start a cluster for the cells (dask-jobqueue).")] = None,
    cluster_option: Annotated[list[str], typer.Option(
        "--cluster-option", metavar="KEY=VALUE",
            help="KEY=VALUE for --cluster: queue, walltime, memory, cores, gpus, account, ...")] = [],
    track: Annotated[Optional[str], typer.Option(
        "--track", metavar="mlflow[:URI]",
            help="Mirror the run to MLflow: mlflow or mlflow:URI (default <results>/mlruns).")] = None,
    results: ResultsOption = DEFAULT_RESULTS,
    debug: DebugOption = False,
) -> None:
    """Run a benchmark grid (with no option: the embedded demo)."""
    from bench_suite.core.requirements import require_spikingjelly
    from bench_suite.experiment.environment import Environment

    require_spikingjelly()  # before any store is written: one sentence with the install command
    profile, precision, cluster = _value(profile), _value(precision), _value(cluster)
    environment = {key: value for key, value in (("device", device), ("precision", precision)) if value}
    if deterministic:
        environment["deterministic"] = True
    if threads_per_worker or workers:
        environment["threads"] = threads_per_worker or max(1, (os.cpu_count() or 1) // (workers or 1))
    Environment(**environment)  # validated before any store is written
    tracker = None
    if track:
        from bench_suite.results.tracking import parse_track

        tracker = parse_track(track, results)
    executor = make_executor(workers, environment.get("threads", 1), scheduler, cluster, cluster_option)
    try:
        _run(plugin, dataset, time_steps, seeds, profile, set_, data_root, suite, grid, folds, resume,
             environment, executor, results, debug, tracker)
    finally:
        if executor is not None:
            executor.close()


def make_executor(workers, threads_per_worker, scheduler, cluster, cluster_option):
    """The executor the options ask for (None: in-process), connected before any store is written."""
    chosen = [name for name, value in (("--workers", workers), ("--scheduler", scheduler), ("--cluster", cluster))
              if value]
    if len(chosen) > 1:
        raise BenchSuiteError(f"{' and '.join(chosen)} each choose where cells run; give one of them")
    if cluster_option and not cluster:
        raise BenchSuiteError("--cluster-option sets an option of --cluster; give --cluster slurm with it")
    if not chosen:
        return None
    from bench_suite.experiment.executors import DaskExecutor

    if workers:
        return DaskExecutor.local(workers, threads_per_worker)
    if scheduler:
        return DaskExecutor.connect(scheduler)
    if cluster != "slurm":
        raise BenchSuiteError(f"--cluster '{cluster}' is not supported; choose slurm (dask-jobqueue)")
    return DaskExecutor.slurm(parse_cluster_options(cluster_option), 1)


def parse_cluster_options(items: list[str]) -> dict[str, str]:
    options = {}
    for item in items:
        if "=" not in item:
            raise BenchSuiteError(f"--cluster-option '{item}' is not KEY=VALUE, e.g. --cluster-option gpus=1")
        key, value = item.split("=", 1)
        options[key.strip()] = value.strip()
    return options


def _run(plugin, dataset, time_steps, seeds, profile, set_, data_root, suite, grid, folds, resume,
         environment_options, executor, results, debug, tracker=None) -> None:
    from bench_suite.cli.terminal import RichProgress
    from bench_suite.experiment.environment import Environment
    from bench_suite.experiment.runner import Runner, check_datasets_profile_settings, versions
    from bench_suite.experiment.spec import RunSpec
    from bench_suite.results.frames import failed_cells, summary_table, tidy_frame
    from bench_suite.results.render import render_markdown
    from bench_suite.results.store import ResultStore

    hint = results_hint(results)
    progress = RichProgress(error_console)  # stderr: stdout keeps only the table

    def on_cell_done(outcome):
        if outcome.status == "failed":
            say(f"cell failed: {outcome.message}", "red", progress.console)
            if debug and outcome.traceback:
                say(outcome.traceback, to=progress.console)
        elif outcome.status == "done":
            say(f"done: {outcome.cell.title()} ({outcome.seconds:.1f} s)", to=progress.console)
        if tracker is not None and outcome.status != "skipped":
            from bench_suite.results.tracking import mirror_run

            mirror_run(store, run_id, tracker)  # the store stays the source of truth

    runner = Runner(results, data_root=data_root, progress=progress, on_cell_done=on_cell_done, executor=executor)
    suite_obj = None
    # Everything the options say is checked (plugins, parameters, profile, --set keys, suite grids) before
    # the store is opened, so a typo leaves no empty run behind.
    if resume:
        if plugin or dataset or time_steps or seeds or profile or set_ or folds or suite or grid:
            raise BenchSuiteError("--resume takes the run's stored options; give no other grid option with it "
                                  "(only where and how it runs: --device, --workers, --scheduler, ...)")
        if not (Path(results) / "bench-suite.sqlite").exists():
            raise BenchSuiteError(f"no results store in '{results}' to resume run {resume} from; point --results "
                                  "at the folder the run wrote to")
        stored = None
    elif suite:
        from bench_suite.experiment.suite import load_suite

        if plugin or dataset or time_steps or folds:
            raise BenchSuiteError(
                "--suite fixes the grid; give only --profile, --seeds, --set, --grid and --data-root with it")
        suite_obj = load_suite(suite).only_grids(grid).with_overrides(parse_sets(set_))
        seed_list = parse_seeds(seeds) if seeds else None
        cells, spec = suite_obj.plan(profile or "quick", runner.registry, data_root, seed_list)
        check_datasets_profile_settings(cells, runner.registry)
        stored = {**suite_obj.spec_dict(profile or "quick", data_root, seed_list), "environment": environment_options}
    else:
        if grid:
            raise BenchSuiteError("--grid picks grid blocks of a suite; use it with --suite NAME")
        spec, demo = build_spec(plugin, dataset, time_steps, seeds, profile, set_, data_root, folds)
        spec = dataclasses.replace(spec, environment=environment_options)
        cells = runner.plan(spec)
        stored = spec.to_dict()
        if demo:
            say("no options given: running the embedded demo (demo-vessels, IF and MT, ANN / conversion / ASF "
                "fine-tuning, T=10, quick profile)", to=error_console)

    with ResultStore(results) as store, progress:
        if resume:
            record = store.get_run(resume)
            environment_options = {**(record["spec"].get("environment") or {}), **environment_options}
            if "suite" in record["spec"]:
                from bench_suite.experiment.suite import Suite

                suite_obj, cells, spec = Suite.plan_stored(record["spec"], runner.registry)
            else:
                spec = RunSpec.from_dict(record["spec"])
                cells = runner.plan(spec)
            run_id = resume
        else:
            run_id = store.create_run(stored, versions())
        runner.environment = Environment(**environment_options)
        say(f"run id: {run_id}", to=progress.console)
        say(f"results: {store.path}", to=progress.console)
        where = f" on {executor.description}" if executor is not None else ""
        dashboard = f" (Dask dashboard: {executor.dashboard})" if executor is not None and executor.dashboard else ""
        say(f"{len(cells)} cells{where}{dashboard}", to=progress.console)
        for note in getattr(executor, "notes", ()):
            say(f"Note: {note}.", to=progress.console)
        try:
            outcomes = runner.execute(run_id, cells, spec, store)
        except KeyboardInterrupt:
            store.set_run_status(run_id, "interrupted")
            if tracker is not None:
                from bench_suite.results.tracking import mirror_run

                mirror_run(store, run_id, tracker)
            progress.stop()
            fail(f"interrupted; finished cells are stored: resume with bench-suite run --resume {run_id}{hint}", 130)
        progress.stop()
        if any(o.status in ("done", "skipped") for o in outcomes):
            # plain stdout: Rich would wrap the table at the terminal width, and it must stay pasteable
            if suite_obj is not None:
                from bench_suite.experiment.suite import method_labeller
                from bench_suite.results.outputs import write_suite_outputs

                written = write_suite_outputs(store, run_id, suite_obj, results / run_id, method_labeller(suite_obj))
                typer.echo((written / "table.md").read_text())
                say(f"tables and figures: {written}", to=error_console)
            else:
                typer.echo(render_markdown(summary_table(tidy_frame(store, run_id)), failed_cells(store, run_id)))
        if tracker is not None:
            from bench_suite.results.tracking import mirror_run

            mirror_run(store, run_id, tracker, results / run_id if suite_obj is not None else None)
            say(f"tracked in MLflow: {tracker.uri}", to=error_console)
    say(f"report: bench-suite report {run_id}{hint} --format markdown (or latex, csv)", to=error_console)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        fail(f"{len(failed)} of {len(outcomes)} cells failed (first: {failed[0].message}); "
             f"fix the cause, then finish the run with bench-suite run --resume {run_id}{hint}", 1)


@app.command("list")
@guarded
def list_plugins(
    kind: Annotated[Optional[str], typer.Argument(
        help="neurons | norms | trainers | datasets | models | suites")] = None,
    pattern: Annotated[str, typer.Option("--filter", metavar="PATTERN",
        help="Wildcard on names, e.g. 'demo-*'.")] = "*",
    debug: DebugOption = False,
) -> None:
    """List registered plugins with their providing package (and broken ones with their error)."""
    from rich.table import Table

    from bench_suite.core.errors import unknown_name_message
    from bench_suite.core.params import describe_params
    from bench_suite.core.registry import get_registry

    if kind == "suites":
        from bench_suite.experiment.suite import list_suites

        table = Table()
        for column in ("name", "reproduces", "package", "description"):
            table.add_column(column, overflow="fold")
        for info in list_suites():
            description = Text(f"BROKEN: {info.error}", style="red") if info.error else Text(info.description)
            table.add_row(info.name, str(info.reproduces or ""), info.distribution, description)
        console.print(table)
        return
    wanted = None
    if kind is not None:
        if kind not in KIND_ALIASES:
            raise BenchSuiteError(unknown_name_message("kind", kind, sorted(set(KIND_ALIASES) - set(
                k for k in KIND_ALIASES if not k.endswith("s")))))
        wanted = KIND_ALIASES[kind]
    registry = get_registry()
    table = Table(show_lines=False)
    for column in ("name", "kind", "package", "description", "parameters"):
        table.add_column(column, overflow="fold")
    for info in registry.list(wanted, pattern):
        table.add_row(info.name, info.kind, f"{info.distribution} {info.version}".strip(),
                      info.description, describe_params(info.params_cls))
    for broken in registry.broken:
        if wanted in (None, broken.kind):
            table.add_row(broken.name, broken.kind, broken.distribution,
                          Text(f"BROKEN: {broken.error}", style="red"), "")
    console.print(table)


@app.command()
@guarded
def report(
    run_id: Annotated[Optional[str], typer.Argument(help="Run id (default: the latest run).")] = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f", help="Output format.")] = ReportFormat.markdown,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", metavar="FILE", help="Write to this file.")] = None,
    per_sample: Annotated[bool, typer.Option("--per-sample", metavar="", help="One row per test sample.")] = False,
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", metavar="KIND=NAME",
            help="Compare every method with this one, e.g. neuron=mt or trainer=ann.")] = None,
    stats: Annotated[Optional[Stats], typer.Option(
        "--stats", help="paired (the --test below) or paper (the reference's unpaired Shapiro → t-test / "
        "Mann–Whitney); default: paper for a suite that reproduces a paper, else paired.")] = None,
    test: Annotated[Optional[PairedTest], typer.Option(
        "--test", help="paired test, chosen up front: t (default), wilcoxon, permutation, or auto "
        "(Shapiro–Wilk on the differences picks t or Wilcoxon).")] = None,
    alternative: Annotated[Optional[Alternative], typer.Option(
        "--alternative", help="two-sided, greater (method better than baseline) or less; default: two-sided "
        "paired, the paper's 'baseline better' with --stats paper.")] = None,
    family: Annotated[Family, typer.Option(
        "--family", help="Holm family: table (all comparisons), dataset, or metric (one per dataset and "
        "metric).")] = Family.table,
    allow_unmatched: Annotated[bool, typer.Option(
        "--allow-unmatched", metavar="", help="Compare methods scored on different samples or seeds on the shared ones "
        "and mark the cell (†), instead of refusing.")] = False,
    costs: Annotated[bool, typer.Option(
        "--costs", metavar="",
        help="Time and peak memory (RSS, GPU) per cell and stage instead of the metrics.")] = False,
    caption: Annotated[Optional[str], typer.Option("--caption", metavar="TEXT",
        help="Table caption (LaTeX and Markdown).")] = None,
    label: Annotated[Optional[str], typer.Option("--label", metavar="LABEL",
        help="LaTeX \\label of the table.")] = None,
    results: ResultsOption = DEFAULT_RESULTS,
    debug: DebugOption = False,
) -> None:
    """Print or write a run's table from the results store."""
    from bench_suite.results.outputs import baseline_report, suite_report
    from bench_suite.results.render import write_report
    from bench_suite.results.store import ResultStore

    format, stats, test, alternative, family = map(_value, (format, stats, test, alternative, family))
    if not (results / "bench-suite.sqlite").exists():
        raise BenchSuiteError(
            f"no results store in '{results}'; run a benchmark first or point --results at its folder"
        )
    if stats is not None and stats not in ("paired", "paper"):
        raise BenchSuiteError(f"--stats '{stats}' is not one of paired, paper")
    from bench_suite.results.tables import TestOptions, suite_options

    chosen = dict(test=test, alternative=alternative, family=family, allow_unmatched=allow_unmatched)
    options = TestOptions(stats=stats or "paired", **{k: v for k, v in chosen.items() if v is not None})
    with ResultStore(results) as store:
        if run_id is None:
            run_id = store.latest_run_id()
            if run_id is None:
                raise BenchSuiteError(f"the results store in '{results}' has no runs yet; run a benchmark first")
        spec = store.get_run(run_id)["spec"]
        if costs:
            from bench_suite.results.frames import stage_costs
            from bench_suite.results.render import costs_text

            text = costs_text(stage_costs(store, run_id), format, caption, label)
        elif baseline:
            text = baseline_report(store, run_id, baseline, stats, format, caption, label, options=options)
        elif "suite" in spec and not per_sample:
            from bench_suite.experiment.suite import Suite

            suite = Suite.from_stored(spec)  # its own procedure unless --stats / --test say otherwise
            text = suite_report(store, run_id, suite, stats, format, caption, label,
                                options=suite_options(suite, stats=stats, **chosen))
        else:
            text = write_report(store, run_id, format, None, per_sample=per_sample, caption=caption, label=label)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
        notes = run_state_notes(store, run_id, results, debug)
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        say(f"wrote {out}")
    for note in notes:
        say(note, "yellow", error_console)


def results_hint(results: Path) -> str:
    from bench_suite.core.paths import results_option

    return results_option(results)


def run_state_notes(store, run_id: str, results: Path, debug: bool) -> list[str]:
    """What a report leaves out: cells that are not finished and cells that failed (with --debug, why)."""
    notes = []
    missing = store.unfinished_cells(run_id)
    if missing:
        planned = store.planned_count(run_id)
        shown = "; ".join(f"{cell['title']} ({cell['status']})" for cell in missing[:8])
        more = f"; and {len(missing) - 8} more" if len(missing) > 8 else ""
        notes.append(f"run {run_id} is not finished: {len(missing)} of {planned} cells are missing from this report "
                     f"({shown}{more}); finish it with bench-suite run --resume {run_id}{results_hint(results)}")
    cells = store.cells_frame(run_id)
    failed = cells[cells["status"] == "failed"]
    if not failed.empty:
        notes.append(f"{len(failed)} cell(s) failed; see why with bench-suite show {run_id}{results_hint(results)}"
                     + ("" if debug else " (or report --debug for the tracebacks)"))
        if debug:
            for error, trace in zip(failed["error"], failed["traceback"], strict=True):
                notes.append(f"failed: {error}\n{trace or '(no traceback stored)'}")
    return notes


@app.command()
@guarded
def show(
    run_id: Annotated[Optional[str], typer.Argument(help="Run id (default: the latest run).")] = None,
    results: ResultsOption = DEFAULT_RESULTS,
    debug: DebugOption = False,
) -> None:
    """Show one run's cells: status, timings and, for failed cells, the error (and traceback with --debug)."""
    from rich.table import Table

    from bench_suite.results.store import ResultStore

    with ResultStore(results, create=False) as store:
        run_id = run_id or store.latest_run_id()
        if run_id is None:
            raise BenchSuiteError(f"the results store in '{results}' has no runs yet; run a benchmark first")
        record = store.get_run(run_id)
        cells = store.cells_frame(run_id)
        missing = store.unfinished_cells(run_id)
    say(f"run {run_id} ({record['status']}, started {record['created']})")
    table = Table()
    for column in ("cell", "status", "train s", "eval s", "total s", "peak RSS MiB", "peak GPU MiB", "error"):
        table.add_column(column, overflow="fold")

    def seconds(row, column: str) -> str:
        value = row.get(column)
        return "" if value is None or value != value else f"{value:.1f}"

    def peak(row, suffix: str) -> str:
        values = [v for k, v in row.items() if k.endswith(suffix) and v == v and v is not None]
        return f"{max(values):.0f}" if values else ""

    errors: list[str] = []
    for row in cells.to_dict("records"):
        title = " ".join(str(row.get(k)) for k in ("dataset", "trainer", "neuron", "norm")
                         if row.get(k) not in (None, "-")) + (f" T={row['T']}" if row.get("T") else "")
        title += f" seed={row.get('seed')}"
        table.add_row(Text(title), row["status"], seconds(row, "train_s"), seconds(row, "eval_s"),
                      seconds(row, "total_s"), peak(row, "_rss_mib"), peak(row, "_device_mib"),
                      "see below" if row["error"] else "")
        if row["error"]:
            errors.append(f"{title}: {row['error']}")
    for cell in missing:
        if cell["status"] == "pending":
            table.add_row(Text(cell["title"]), "pending", "", "", "", "", "", "")
    console.print(table)
    for line in errors:  # whole, not folded into a column: an error is read and searched for
        say(f"failed: {line}", "red")
    say(f"per stage: bench-suite report {run_id} --costs{results_hint(results)}", to=error_console)
    if debug:
        for row in cells[cells["status"] == "failed"].to_dict("records"):
            say(f"traceback of the failed cell ({row['error']}):", "red")
            say(row["traceback"] or "(no traceback stored)")


@app.command("check-plugin")
@guarded
def check_plugin(
    kind: Annotated[str, typer.Argument(help="neuron | norm | trainer | dataset | model")],
    name: Annotated[str, typer.Argument(
        help="The plugin's name, optionally with parameters: 'mt(thresholds=[1,0.5])'.")],
    data_root: Annotated[Optional[Path], typer.Option(
        "--data-root", metavar="DIR", help="Where a dataset plugin reads its files.")] = None,
    debug: DebugOption = False,
) -> None:
    """Run the conformance kit (bench_suite.testing) on one registered plugin."""
    from bench_suite.core.params import parse_plugin_option
    from bench_suite.core.registry import get_registry
    from bench_suite.core.requirements import require_spikingjelly
    from bench_suite.experiment.spec import resolve

    require_spikingjelly()
    kind = KIND_ALIASES.get(kind, kind)
    resolved = resolve(get_registry(), parse_plugin_option(f"{kind}={name}"))
    info = get_registry().get(kind, resolved.name)
    from bench_suite.testing import run_checks

    options = {"data_root": data_root or _data_root(None)} if kind == "dataset" else {}
    results = run_checks(kind, info.obj, resolved.params, **options)
    say(f"{kind} '{resolved.label}' from {info.distribution} {info.version}".rstrip())
    for result in results:
        say(result.line(), "green" if result.passed else "red")
    failed = [r for r in results if not r.passed]
    if failed:
        fail(f"{kind} '{resolved.label}' fails {len(failed)} of {len(results)} conformance checks (listed above)", 1)
    say(f"all {len(results)} checks passed")


data_app = typer.Typer(help="Where a dataset is looked for, whether it is valid, and how to get it.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")
DatasetArgument = Annotated[str, typer.Argument( help="Dataset name (bench-suite list datasets).")]
DataRootOption = Annotated[
    Optional[Path], typer.Option("--data-root", metavar="DIR",
        help="Data root (default: $BENCH_SUITE_DATA, then ./datasets).")
]


def _dataset(name: str):
    from bench_suite.core.params import parse_plugin_option
    from bench_suite.core.registry import get_registry
    from bench_suite.experiment.spec import resolve

    resolved = resolve(get_registry(), parse_plugin_option(f"dataset={name}"))
    return get_registry().get("dataset", resolved.name).obj(resolved.params)


def _data_root(data_root: Path | None) -> Path:
    from bench_suite.core.paths import default_data_root

    return data_root or default_data_root()


@data_app.command("info")
@guarded
def data_info(name: DatasetArgument, data_root: DataRootOption = None, debug: DebugOption = False) -> None:
    """Say where NAME is looked for and what was found there."""
    from bench_suite.experiment.data import info

    for line in info(name, _dataset(name), _data_root(data_root)):
        typer.echo(line)


@data_app.command("check")
@guarded
def data_check(name: DatasetArgument, data_root: DataRootOption = None, debug: DebugOption = False) -> None:
    """Read and validate every file of NAME: counts, shapes, label values and every problem."""
    from bench_suite.experiment.data import check

    report = check(name, _dataset(name), _data_root(data_root))
    for line in report.lines():
        typer.echo(line)
    if not report.ok:
        fail(f"{name}: {len(report.problems)} problem(s) found (listed above); fix them and check again", 1)


@data_app.command("fetch")
@guarded
def data_fetch(
    name: DatasetArgument, data_root: DataRootOption = None,
    mirror: Annotated[Optional[str], typer.Option(
        "--mirror", metavar="URL",
            help="Fetch from this mirror: it replaces the scheme and host of every download address "
        "and keeps the path (default: $BENCH_SUITE_MIRROR). The recorded checksums still apply.")] = None,
    debug: DebugOption = False,
) -> None:
    """Download NAME from its public source (checksummed, resumable, unpacked into place), then check it."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from bench_suite.experiment.data import fetch

    root = _data_root(data_root)
    # progress on stderr: stdout keeps the result and the check's lines
    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                  console=error_console, transient=True) as progress:
        task = progress.add_task(f"fetch {name}", total=None)

        def advance(file: str, done: int, total: int | None) -> None:
            progress.update(task, description=file, completed=done, total=total)

        result = fetch(name, _dataset(name), root, mirror=mirror, progress=advance)
    for line in [*result.lines(), *result.report.lines()]:
        typer.echo(line)
    if not result.report.ok:
        kept = f"; move {', '.join(map(str, result.kept))} away and fetch again" if result.kept else ""
        fail(f"{name}: data check finds {len(result.report.problems)} problem(s) after the download (listed "
             f"above){kept}", 1)


def run_command_summary(spec: dict) -> str:
    """The options that make a stored run, in the syntax `run` takes (options left at their defaults omitted)."""
    import shlex

    from bench_suite.core.params import PluginChoice
    from bench_suite.experiment.spec import DEFAULT_PROFILE, DEFAULT_SEEDS, DEFAULT_TIME_STEPS, DEFAULTS, MODEL_BY_DIMS

    def seeds_text(seeds: list[int]) -> str:
        return str(len(seeds)) if list(seeds) == list(range(len(seeds))) else ",".join(map(str, seeds)) + (
            "," if len(seeds) == 1 else "")

    if "suite" in spec:
        parts = ["--suite", spec["suite"]]
        ran = list(spec.get("grids") or [])
        declared = [grid.get("name") for grid in (spec.get("definition") or {}).get("grid") or []]
        if ran and set(ran) != set(declared):  # run with --grid: only some grid blocks
            parts += [item for grid in ran for item in ("--grid", grid)]
        if spec.get("seeds"):
            parts += ["--seeds", seeds_text(spec["seeds"])]
        parts += ["--profile", spec.get("profile") or DEFAULT_PROFILE]
        parts += [item for key, value in (spec.get("overrides") or {}).items() for item in ("--set", f"{key}={value}")]
        return " ".join(shlex.quote(p) for p in parts)
    choices = {kind: [PluginChoice(c[0], c[1], tuple(tuple(p) for p in c[2])) for c in items]
               for kind, items in (spec.get("choices") or {}).items()}
    parts: list[str] = []
    datasets = choices.get("dataset", [])
    folds = {dict(c.params).get("folds") for c in datasets}
    if len(folds) == 1 and None not in folds:  # --folds K expanded each dataset into its K folds
        count = int(next(iter(folds)))
        bases = list(dict.fromkeys(
            PluginChoice("dataset", c.name, tuple(p for p in c.params if p[0] not in ("fold", "folds")))
            for c in datasets))
        if len(datasets) == count * len(bases):
            datasets = bases
        else:
            count = None
    else:
        count = None
    if [c.label() for c in datasets] != list(DEFAULTS["dataset"]):
        parts += [item for c in datasets for item in ("--dataset", c.label())]
    for kind in ("trainer", "neuron", "norm", "model"):
        chosen = choices.get(kind, [])
        default = [[name] for name in MODEL_BY_DIMS.values()] if kind == "model" else [list(DEFAULTS[kind])]
        if [c.label() for c in chosen] not in default:
            parts += [item for c in chosen for item in ("--plugin", f"{kind}={c.label()}")]
    if list(spec.get("time_steps") or DEFAULT_TIME_STEPS) != list(DEFAULT_TIME_STEPS):
        parts += [item for t in spec["time_steps"] for item in ("-T", str(t))]
    if list(spec.get("seeds") or DEFAULT_SEEDS) != list(DEFAULT_SEEDS):
        parts += ["--seeds", seeds_text(spec["seeds"])]
    if count:
        parts += ["--folds", str(count)]
    if (spec.get("profile") or DEFAULT_PROFILE) != DEFAULT_PROFILE:
        parts += ["--profile", spec["profile"]]
    parts += [item for key, value in (spec.get("overrides") or {}).items() for item in ("--set", f"{key}={value}")]
    return " ".join(shlex.quote(p) for p in parts) or "(the demo: no options)"


@app.command()
@guarded
def runs(results: ResultsOption = DEFAULT_RESULTS, debug: DebugOption = False) -> None:
    """List the runs in the results store, newest first: id, start, options, cells done/failed/pending, status."""
    from rich.table import Table

    from bench_suite.results.store import ResultStore

    with ResultStore(results, create=False) as store:
        records = store.list_runs()
    if not records:
        say(f"no runs yet in {results}; start one with bench-suite run{results_hint(results)}")
        return
    table = Table()
    for column, justify in (("run id", "left"), ("started (UTC)", "left"), ("command", "left"), ("done", "right"),
                            ("failed", "right"), ("pending", "right"), ("status", "left")):
        table.add_column(column, justify=justify, overflow="fold")
    for record in records:
        pending = max(record["planned"] - record["done"] - record["failed"], 0)
        table.add_row(record["id"], record["created"][:19].replace("T", " "),
                      Text(run_command_summary(record["spec"])), str(record["done"]), str(record["failed"]),
                      str(pending), record["status"])
    console.print(table)
    say(f"one run's cells: bench-suite show RUN_ID{results_hint(results)}; finish an interrupted run: "
        f"bench-suite run --resume RUN_ID{results_hint(results)}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
