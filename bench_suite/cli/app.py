"""The command line: options → RunSpec → runner; errors → one sentence and a non-zero exit.

Heavy modules (torch and everything built on it) are imported inside the commands, so ``--help`` is
instant. This is the only module that knows about the terminal.
"""

from __future__ import annotations

import functools
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text

from bench_suite.core.errors import BenchSuiteError
from bench_suite.core.paths import default_results

app = typer.Typer(
    name="bench-suite", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Benchmark spiking U-Nets: neurons × normalizations × training methods × datasets.",
)
# not a terminal (a pipe, CI, a file): wide enough that tables do not fold
console = Console(width=None if sys.stdout.isatty() else 160)
error_console = Console(stderr=True)

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
        debug = kwargs.get("debug", False)
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


DebugOption = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]
ResultsOption = Annotated[
    Path, typer.Option("--results", help="Results folder (SQLite store, checkpoints, reports).")
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
    overrides = {}
    for item in sets:
        if "=" not in item:
            raise BenchSuiteError(f"--set '{item}' is not KEY=VALUE, e.g. --set ann_epochs=5")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value.strip()
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
        "--plugin", "-p", help="KIND=NAME or KIND=NAME(key=value, ...); repeat to form a grid.")] = [],
    dataset: Annotated[list[str], typer.Option("--dataset", "-d", help="Dataset name; repeatable.")] = [],
    time_steps: Annotated[list[str], typer.Option("-T", "--time-steps", help="Time steps; repeatable.")] = [],
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="A count (3 → 0,1,2) or a list (0,7).")] = None,
    profile: Annotated[Optional[str], typer.Option("--profile", help="smoke | quick | paper.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a profile setting, e.g. ann_epochs=5.")] = [],
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Where datasets are looked for.")] = None,
    suite: Annotated[Optional[str], typer.Option(
        "--suite", help="Run a named experiment (a paper table); see `bench-suite list suites`.")] = None,
    grid: Annotated[list[str], typer.Option(
        "--grid", help="With --suite: run only this grid block of it (e.g. the dataset you have); repeatable.")] = [],
    folds: Annotated[Optional[int], typer.Option(
        "--folds", help="Cross-validate: run every fold of datasets that have folds (e.g. hippocampus).")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Finish an interrupted run.")] = None,
    results: ResultsOption = DEFAULT_RESULTS,
    debug: DebugOption = False,
) -> None:
    """Run a benchmark grid (with no option: the embedded demo)."""
    from bench_suite.cli.terminal import RichProgress
    from bench_suite.core.requirements import require_spikingjelly
    from bench_suite.experiment.runner import Runner
    from bench_suite.experiment.spec import RunSpec
    from bench_suite.results.frames import failed_cells, summary_table, tidy_frame
    from bench_suite.results.render import render_markdown
    from bench_suite.results.store import ResultStore

    require_spikingjelly()  # before any store is written: one sentence with the install command
    with ResultStore(results) as store, RichProgress(console) as progress:
        def on_cell_done(outcome):
            if outcome.status == "failed":
                say(f"cell failed: {outcome.message}", "red", progress.console)
                if debug and outcome.traceback:
                    say(outcome.traceback, to=progress.console)
            elif outcome.status == "done":
                say(f"done: {outcome.cell.title()} ({outcome.seconds:.1f} s)", to=progress.console)

        runner = Runner(results, data_root=data_root, progress=progress, on_cell_done=on_cell_done)
        suite_obj = None
        if resume:
            if plugin or dataset or time_steps or seeds or profile or set_ or folds or suite or grid:
                raise BenchSuiteError("--resume takes the run's stored options; give no other grid option with it")
            record = store.get_run(resume)
            if "suite" in record["spec"]:
                from bench_suite.experiment.suite import Suite

                suite_obj, cells, spec = Suite.plan_stored(record["spec"], runner.registry)
            else:
                spec = RunSpec.from_dict(record["spec"])
                cells = runner.plan(spec)
            run_id = resume
        elif suite:
            from bench_suite.experiment.runner import versions
            from bench_suite.experiment.suite import load_suite

            if plugin or dataset or time_steps or set_ or folds:
                raise BenchSuiteError(
                    "--suite fixes the grid; give only --profile, --seeds, --grid and --data-root with it")
            suite_obj = load_suite(suite).only_grids(grid)
            seed_list = parse_seeds(seeds) if seeds else None
            cells, spec = suite_obj.plan(profile or "quick", runner.registry, data_root, seed_list)
            run_id = store.create_run(suite_obj.spec_dict(profile or "quick", data_root, seed_list), versions())
        else:
            if grid:
                raise BenchSuiteError("--grid picks grid blocks of a suite; use it with --suite NAME")
            spec, demo = build_spec(plugin, dataset, time_steps, seeds, profile, set_, data_root, folds)
            if demo:
                console.print("no options given: running the embedded demo (demo-vessels, IF and MT, "
                              "ANN / conversion / ASF fine-tuning, T=10, quick profile)")
            run_id, cells = runner.start(spec, store)
        console.print(f"run id: {run_id}", highlight=False)
        console.print(f"results: {store.path}", highlight=False)
        console.print(f"{len(cells)} cells", highlight=False)
        try:
            outcomes = runner.execute(run_id, cells, spec, store)
        except KeyboardInterrupt:
            store.set_run_status(run_id, "interrupted")
            progress.stop()
            fail(f"interrupted; finished cells are stored: resume with bench-suite run --resume {run_id}"
                 + (f" --results {results}" if results != DEFAULT_RESULTS else ""), 130)
        progress.stop()
        if any(o.status in ("done", "skipped") for o in outcomes):
            # plain stdout: Rich would wrap the table at the terminal width, and it must stay pasteable
            if suite_obj is not None:
                from bench_suite.experiment.suite import method_labeller
                from bench_suite.results.outputs import write_suite_outputs

                written = write_suite_outputs(store, run_id, suite_obj, results / run_id, method_labeller(suite_obj))
                typer.echo((written / "table.md").read_text())
                say(f"tables and figures: {written}")
            else:
                typer.echo(render_markdown(summary_table(tidy_frame(store, run_id)), failed_cells(store, run_id)))
    console.print(f"report: bench-suite report {run_id} --format csv|latex|markdown", highlight=False)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        fail(f"{len(failed)} of {len(outcomes)} cells failed (first: {failed[0].message}); "
             f"fix the cause, then finish the run with bench-suite run --resume {run_id}", 1)


@app.command("list")
@guarded
def list_plugins(
    kind: Annotated[Optional[str], typer.Argument(
        help="neurons | norms | trainers | datasets | models | suites")] = None,
    pattern: Annotated[str, typer.Option("--filter", help="Wildcard on names, e.g. 'demo-*'.")] = "*",
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
    format: Annotated[str, typer.Option("--format", "-f", help="csv | latex | markdown")] = "markdown",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write to this file.")] = None,
    per_sample: Annotated[bool, typer.Option("--per-sample", help="One row per test sample.")] = False,
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", help="Compare every method with this one, e.g. neuron=mt or trainer=ann.")] = None,
    stats: Annotated[str, typer.Option(
        "--stats", help="paired (Shapiro on differences → t / Wilcoxon) or paper (unpaired, one-sided).")] = "paired",
    caption: Annotated[Optional[str], typer.Option("--caption", help="Table caption (LaTeX and Markdown).")] = None,
    label: Annotated[Optional[str], typer.Option("--label", help="LaTeX \\label of the table.")] = None,
    results: ResultsOption = DEFAULT_RESULTS,
    debug: DebugOption = False,
) -> None:
    """Print or write a run's table from the results store."""
    from bench_suite.results.outputs import baseline_report, suite_report
    from bench_suite.results.render import write_report
    from bench_suite.results.store import ResultStore

    if format not in ("csv", "latex", "markdown"):
        raise BenchSuiteError(f"--format '{format}' is not one of csv, latex, markdown")
    if not (results / "bench-suite.sqlite").exists():
        raise BenchSuiteError(
            f"no results store in '{results}'; run a benchmark first or point --results at its folder"
        )
    if stats not in ("paired", "paper"):
        raise BenchSuiteError(f"--stats '{stats}' is not one of paired, paper")
    with ResultStore(results) as store:
        if run_id is None:
            run_id = store.latest_run_id()
            if run_id is None:
                raise BenchSuiteError(f"the results store in '{results}' has no runs yet; run a benchmark first")
        spec = store.get_run(run_id)["spec"]
        if baseline:
            text = baseline_report(store, run_id, baseline, stats, format, caption, label)
        elif "suite" in spec and not per_sample:
            from bench_suite.experiment.suite import Suite

            text = suite_report(store, run_id, Suite.from_stored(spec), stats, format, caption, label)
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
    return f" --results {results}" if Path(results) != DEFAULT_RESULTS else ""


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
    for column in ("cell", "status", "train s", "eval s", "total s", "error"):
        table.add_column(column, overflow="fold")

    def seconds(row, column: str) -> str:
        value = row.get(column)
        return "" if value is None or value != value else f"{value:.1f}"

    for row in cells.to_dict("records"):
        title = " ".join(str(row.get(k)) for k in ("dataset", "trainer", "neuron", "norm")
                         if row.get(k) not in (None, "-")) + (f" T={row['T']}" if row.get("T") else "")
        title += f" seed={row.get('seed')}"
        table.add_row(Text(title), row["status"], seconds(row, "train_s_s") or seconds(row, "train_s"),
                      seconds(row, "eval_s"), seconds(row, "total_s"), Text(str(row["error"] or "")))
    for cell in missing:
        if cell["status"] == "pending":
            table.add_row(Text(cell["title"]), "pending", "", "", "", "")
    console.print(table)
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
        "--data-root", help="Where a dataset plugin reads its files.")] = None,
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
DataRootOption = Annotated[
    Optional[Path], typer.Option("--data-root", help="Data root (default: $BENCH_SUITE_DATA, then ./datasets).")
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
def data_info(name: str, data_root: DataRootOption = None, debug: DebugOption = False) -> None:
    """Say where NAME is looked for and what was found there."""
    from bench_suite.experiment.data import info

    for line in info(name, _dataset(name), _data_root(data_root)):
        typer.echo(line)


@data_app.command("check")
@guarded
def data_check(name: str, data_root: DataRootOption = None, debug: DebugOption = False) -> None:
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
    name: str, data_root: DataRootOption = None,
    url: Annotated[Optional[str], typer.Option("--url", help="A mirror of the declared download.")] = None,
    debug: DebugOption = False,
) -> None:
    """Download NAME where it is publicly downloadable (checksummed, resumable)."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from bench_suite.experiment.data import fetch

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                  console=console) as progress:
        task = progress.add_task(f"fetch {name}", total=None)
        folder = fetch(name, _dataset(name), _data_root(data_root), url=url,
                       progress=lambda done, total: progress.update(task, completed=done, total=total))
    console.print(f"{name} is in {folder}", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
