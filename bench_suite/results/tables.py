"""Suite tables: a run's results in the layout of the paper table its suite reproduces.

:func:`suite_table` turns the report's tidy frame (one row per cell × metric) into rows × columns as the
suite's ``[table]`` says, each cell the mean ± std over seeds and folds, the paper's published value in a
``paper`` sub-column beside it, and a significance mark against the baseline row. The marks come from
per-sample tests (:mod:`bench_suite.results.stats`) under :class:`TestOptions` — for a suite that
reproduces a paper the paper's unpaired procedure (``[table] stats`` can say otherwise), else the paired
test chosen up front (``--test``, default the paired t-test). Around every comparison:

- *aligned samples*: a method and its baseline are compared on the (seed, fold, sample) triples both
  have finite values for, and a pair scored on different ones is refused with one sentence naming what is
  missing — unless ``allow_unmatched``, which compares on the shared triples and marks the cell "†" (its
  mean, over all of its samples, is then not the tested one, so it is not bolded either);
- *training replicates*: with ≥ 2 trained networks (seeds × folds) a replicate-level comparison (a mixed
  model with the network as unit) is made beside the per-sample one, which averages each sample over seeds;
- *families*: Holm within ``family`` ("table", "dataset", or "metric": one per dataset and metric),
  per level, over the comparisons actually tested;
- *more than two methods in a column*: a Friedman test with a Nemenyi (or Conover) post-hoc.

Which test ran on which comparison, and why, is in :func:`suite_tests`; signs are "positive = method
better than baseline" for every metric (:data:`EFFECT_SIGN`).

:func:`baseline_comparisons` does the same tests for any run (``bench-suite report RUN --baseline
neuron=mt``), without a suite.

The frames carry what the renderers need in ``DataFrame.attrs`` as plain JSON-like values (lists,
dicts, strings), so they survive pandas operations that compare or copy attrs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench_suite.core.errors import BenchSuiteError, unknown_name_message
from bench_suite.core.metric_info import metric_info
from bench_suite.core.params import label_matches, parse_label
from bench_suite.results.frames import CELL_COLUMNS, cell_identity, summarize_cells, tidy_frame
from bench_suite.results.stats import (
    ALTERNATIVES,
    DEFAULT_TEST,
    PAIRED_TESTS,
    PER_SAMPLE,
    POSTHOCS,
    REPLICATE,
    Comparison,
    adjust,
    compare_paired,
    compare_replicates,
    compare_unpaired_paper,
    friedman_posthoc,
    normality_of_differences,
    significance_mark,
)

if TYPE_CHECKING:  # a suite is handed in; results never import the experiment room
    from bench_suite.experiment.suite import Suite

STATS_MODES = ("paired", "paper")
IDENTITY = ("dataset", "model", "trainer", "neuron", "norm", "T", "variant")
METHOD_DIMS = ("model", "trainer", "neuron", "norm", "T", "variant")
VALUE_FIELDS = ("mean", "std", "n", "mark", "paper")
FAMILIES = ("table", "dataset", "metric")
TEST_COLUMNS = [
    "dataset", "method", "baseline", "metric", "level", "test", "reason", "n", "replicates", "p", "p_holm",
    "family", "family_size", "effect_name", "effect", "ci_low", "ci_high", "difference", "difference_ci_low",
    "difference_ci_high", "df", "normality_p", "alternative", "effect_sign", "mark", "direction", "unmatched",
]
#: the sign convention of every effect and difference in a comparison (values oriented by the metric)
EFFECT_SIGN = "positive = method better than baseline"
_COUNTS = {"tp", "fp", "fn", "tn"}
_N_BOOT = 1000  # bootstrap resamples for effect-size CIs: enough for a 95 % CI in a table, and fast


# -- frames from the store ------------------------------------------------------------------------


def efficiency_frame(store, run_id: str) -> pd.DataFrame:
    """Per-cell cost as tidy rows (metrics ``macs``, ``synops``, ``energy_uj``, ``energy_ratio``).

    The runner keeps each cell's efficiency summary (per test image) in the cell's info, not among the
    per-sample metrics; Table 6 needs it as table values. ``macs`` is given for ANN cells only: for a
    spiking cell the ANN's MACs would read as the SNN's cost.
    """
    cells = store.cells_frame(run_id)
    cells = cells[cells["status"] == "done"]
    identity = cell_identity(store.cell_configs_frame(run_id))
    rows = []
    for cell_id, info in zip(cells["cell_id"], cells["info"], strict=True):
        summary = (json.loads(info) if isinstance(info, str) else info or {}).get("efficiency") or {}
        if not summary or cell_id not in identity.index:
            continue
        values: dict[str, float] = {}
        if "snn_energy_pj" in summary:
            values["synops"] = summary.get("snn_synops_per_sample", math.nan)
            values["energy_uj"] = summary["snn_energy_pj"] / 1e6
            values["energy_ratio"] = summary.get("energy_ratio", math.nan)
        elif "ann_energy_pj" in summary:
            values["macs"] = summary.get("ann_macs", math.nan)
            values["energy_uj"] = summary["ann_energy_pj"] / 1e6
        key = identity.loc[cell_id].to_dict()
        rows += [{**key, "metric": metric, "value": float(value), "n": 1} for metric, value in values.items()]
    return pd.DataFrame(rows, columns=[*CELL_COLUMNS, "metric", "value", "n"])


def suite_frames(store, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(tidy, per_sample)`` for :func:`suite_table`: the report's frames, plus the cost metrics."""
    per_sample = tidy_frame(store, run_id, per_sample=True)
    tidy = summarize_cells(per_sample)
    efficiency = efficiency_frame(store, run_id)
    if not efficiency.empty:
        tidy = pd.concat([tidy, efficiency], ignore_index=True)
    return tidy, per_sample


# -- normalisation --------------------------------------------------------------------------------


def _strip_fold(label: str) -> tuple[str, int]:
    """``hippocampus(folds=5,fold=2)`` → ``("hippocampus", 2)``: folds are replicates, like seeds."""
    parsed = parse_label(label)
    if parsed is None:
        return label, -1
    name, params = parsed
    if "fold" not in params and "folds" not in params:
        return label, -1
    fold = params.pop("fold", "-1")
    params.pop("folds", None)
    inner = ",".join(f"{k}={v}" for k, v in params.items())
    try:
        number = int(fold)
    except ValueError:
        number = -1
    return (f"{name}({inner})" if inner else name), number


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    stripped = [_strip_fold(str(label)) for label in frame["dataset"]]
    frame["dataset"] = [label for label, _ in stripped]
    # runs keep the fold in its own column; older ones only in the dataset label
    stored = frame["fold"].fillna(-1).astype(int) if "fold" in frame else pd.Series(-1, index=frame.index)
    frame["fold"] = [f if f >= 0 else parsed for f, (_, parsed) in zip(stored, stripped, strict=True)]
    frame["T"] = frame["T"].astype(int)
    frame["variant"] = frame["variant"].fillna("").astype(str)
    for column in ("model", "trainer", "neuron", "norm"):
        frame[column] = frame[column].astype(str)
    return frame


def _higher_is_better(metric: str, lower: Iterable[str] = ()) -> bool:
    if metric in set(lower):
        return False
    return metric_info(metric.split("/")[-1]).higher_is_better


def _is_testable(metric: str) -> bool:
    """A per-sample score that is compared between methods (not a count kept for pooling or summing)."""
    info = metric_info(metric.split("/")[-1])
    return metric.split("/")[-1] not in _COUNTS and info.shown and info.aggregate == "mean"


def _matches(kind: str, selector: str, value: Any) -> bool:
    if kind == "T":
        try:
            return int(value) == int(selector)
        except (TypeError, ValueError):
            return False
    return label_matches(selector, value)


def _parse_baseline(baseline: str) -> tuple[str, str]:
    if "=" not in str(baseline):
        raise BenchSuiteError(f"--baseline '{baseline}' is not KIND=NAME, e.g. --baseline neuron=mt")
    kind, selector = (part.strip() for part in str(baseline).split("=", 1))
    if kind not in (*IDENTITY,):
        raise BenchSuiteError(
            unknown_name_message("baseline kind", kind, IDENTITY) + " — write the baseline as KIND=NAME, "
            "e.g. neuron=mt or trainer=ann"
        )
    return kind, selector


# -- significance ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TestOptions:
    """How a table's comparisons are tested (``bench-suite report`` options; README, Statistics).

    ``stats``: "paired" (``test`` chosen up front, or "auto") or "paper" (the reference's unpaired
    procedure); ``alternative`` is read as "the method vs the baseline" ("greater": the method is
    better, whatever the metric's direction; None: two-sided paired, the paper's "baseline better"
    unpaired); ``family``: the Holm families (:data:`FAMILIES`); ``allow_unmatched``: compare on the shared
    samples and mark the cell instead of refusing a pair scored on different samples or seeds.
    """

    __test__ = False  # not a pytest class, whatever its name
    stats: str = "paired"
    test: str = DEFAULT_TEST
    alternative: str | None = None
    family: str = "table"
    allow_unmatched: bool = False
    posthoc: str = "nemenyi"

    def __post_init__(self) -> None:
        _check_stats(self.stats)
        if self.test not in PAIRED_TESTS:
            raise BenchSuiteError(unknown_name_message("paired test", self.test, tuple(PAIRED_TESTS))
                                  + " — pass --test t, wilcoxon, permutation or auto")
        if self.alternative is not None and self.alternative not in ALTERNATIVES:
            raise BenchSuiteError(unknown_name_message("alternative", self.alternative, ALTERNATIVES)
                                  + " — pass --alternative two-sided, greater or less")
        if self.family not in FAMILIES:
            raise BenchSuiteError(unknown_name_message("Holm family", self.family, FAMILIES)
                                  + " — pass --family table, dataset or metric")
        if self.posthoc not in POSTHOCS:
            raise BenchSuiteError(unknown_name_message("post-hoc test", self.posthoc, POSTHOCS))

    @property
    def sample_alternative(self) -> str:
        if self.alternative is not None:
            return self.alternative
        return "less" if self.stats == "paper" else "two-sided"

    def procedure(self) -> str:
        """The per-sample procedure in words (legends)."""
        if self.stats == "paper":
            return ("the paper's unpaired procedure (Shapiro–Wilk on each group → Student t-test, else "
                    f"Mann–Whitney U; {_alternative_words(self.sample_alternative)})")
        if self.test == "auto":
            return ("paired per-sample test chosen from the data (--test auto: Shapiro–Wilk on the differences → "
                    f"paired t or Wilcoxon; {_alternative_words(self.sample_alternative)})")
        return (f"per-sample {PAIRED_TESTS[self.test]} on the paired differences, chosen before seeing the data "
                f"(--test {self.test}; {_alternative_words(self.sample_alternative)})")


def _alternative_words(alternative: str) -> str:
    return {"two-sided": "two-sided", "greater": "one-sided: method better than baseline",
            "less": "one-sided: baseline better than method"}[alternative]


def _options(options: TestOptions | None, **overrides: Any) -> TestOptions:
    given = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(options or TestOptions(), **given)


def _observations(per_sample: pd.DataFrame, coords: Mapping[str, Any], metric: str) -> pd.Series:
    """Every stored value of one method and metric, indexed by (seed, fold, sample)."""
    mask = per_sample["metric"] == metric
    for key, value in coords.items():
        mask &= per_sample[key] == value
    chosen = per_sample[mask]
    if chosen.empty:
        return pd.Series(dtype=float, index=pd.MultiIndex.from_tuples([], names=["seed", "fold", "sample"]))
    return chosen.groupby(["seed", "fold", "sample"])["value"].mean()


def _samples(per_sample: pd.DataFrame, coords: Mapping[str, Any], metric: str) -> pd.Series:
    """One value per test sample (mean over seeds), indexed by (fold, sample) for pairing."""
    observed = _observations(per_sample, coords, metric)
    return observed.groupby(level=["fold", "sample"]).mean() if len(observed) else pd.Series(dtype=float)


def _key_text(key: tuple) -> str:
    seed, fold, sample = key
    return f"{sample}" + (f" (fold {fold})" if int(fold) >= 0 else "")


def _missing_text(missing: list[tuple], observed: pd.Series, other: pd.Series) -> str:
    """``seed 2 (all 20 samples); img07 (seed 0, NaN)``: what one side lacks of the other's samples."""
    parts = []
    by_seed: dict[int, list[tuple]] = {}
    for key in sorted(missing, key=lambda k: (int(k[0]), int(k[1]), str(k[2]))):
        by_seed.setdefault(int(key[0]), []).append(key)
    seeds_shown = len(set(int(k[0]) for k in other.index)) > 1
    for seed, keys in by_seed.items():
        other_of_seed = [k for k in other.index if int(k[0]) == seed]
        if len(keys) == len(other_of_seed) and not any(k in observed.index for k in keys):
            parts.append(f"seed {seed} (all {len(keys)} samples)")
            continue
        names = []
        for key in keys[:5]:
            note = ", NaN" if key in observed.index else ""
            where = f"seed {seed}{note}" if seeds_shown or note else ""
            names.append(_key_text(key) + (f" ({where})" if where else ""))
        more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
        parts.append(", ".join(names) + more)
    return "; ".join(parts)


@dataclasses.dataclass
class _Aligned:
    row: pd.Series  # values on the shared (seed, fold, sample) keys, in one order
    base: pd.Series
    unmatched: str  # "" when both were scored on the same samples and seeds


def _align(row_obs: pd.Series, base_obs: pd.Series, row_name: str, base_name: str) -> _Aligned:
    finite_row = set(row_obs.index[np.isfinite(row_obs.to_numpy(dtype=float))])
    finite_base = set(base_obs.index[np.isfinite(base_obs.to_numpy(dtype=float))])
    shared = sorted(finite_row & finite_base, key=lambda k: (int(k[0]), int(k[1]), str(k[2])))
    notes = []
    for name, observed, lacking in ((row_name, row_obs, finite_base - finite_row),
                                    (base_name, base_obs, finite_row - finite_base)):
        if lacking:
            other = base_obs if observed is row_obs else row_obs
            notes.append(f"{name} lacks {_missing_text(list(lacking), observed, other)}")
    index = pd.MultiIndex.from_tuples(shared, names=["seed", "fold", "sample"]) if shared else None
    if index is None:
        empty = pd.Series(dtype=float)
        return _Aligned(empty, empty, "; ".join(notes))
    return _Aligned(row_obs.reindex(index).astype(float), base_obs.reindex(index).astype(float), "; ".join(notes))


def _unmatched_error(where: str, aligned: _Aligned) -> BenchSuiteError:
    n = len(aligned.row)
    return BenchSuiteError(
        f"{where} were not scored on the same test samples and seeds ({aligned.unmatched}), so a mean and a "
        f"test would use different sample sets; finish or rerun the missing cells (bench-suite run --resume) "
        f"or pass --allow-unmatched to compare on the {n} shared pair{'s' if n != 1 else ''} and mark the cell"
    )


def _compare_pair(aligned: _Aligned, higher: bool, opts: TestOptions) -> list[Comparison]:
    """The per-sample comparison and, with ≥ 2 trained networks, the replicate-level one, on aligned values.

    Values are oriented (× −1 for lower-is-better metrics) so that every effect and mean difference is
    positive when the method is better than the baseline, and ``alternative="greater"`` means "better".
    """
    sign = 1.0 if higher else -1.0
    row, base = sign * aligned.row, sign * aligned.base
    per_row = row.groupby(level=["fold", "sample"]).mean()
    per_base = base.groupby(level=["fold", "sample"]).mean()
    alternative = opts.sample_alternative
    identical = np.allclose(per_row.to_numpy(), per_base.to_numpy(), rtol=1e-12, atol=0.0)
    if opts.stats == "paired" or identical:  # the same value on every pair: nothing to test in either mode
        sample_level = compare_paired(per_row.to_numpy(), per_base.to_numpy(), alternative=alternative,
                                      test=opts.test, n_boot=_N_BOOT)
    else:
        sample_level = compare_unpaired_paper(per_row.to_numpy(), per_base.to_numpy(), n_boot=_N_BOOT,
                                              alternative=alternative)
        sample_level = dataclasses.replace(
            sample_level, reason=sample_level.reason + _diagnostic(per_row.to_numpy(), per_base.to_numpy()))
    networks = {(int(s), int(f)) for s, f, _ in row.index}
    seeds = {s for s, _ in networks}
    unit = ("test samples as the unit, each sample's value the mean over its "
            f"{len(seeds)} seeds" if len(seeds) > 1 else
            "test samples as the unit" + ("" if len(networks) > 1 else " of one trained network"))
    results = [dataclasses.replace(sample_level, reason=f"{unit}; {sample_level.reason}", replicates=len(networks))]
    if len(networks) > 1:
        keys = list(row.index)
        results.append(compare_replicates(
            row.to_numpy(), base.to_numpy(), replicate=[f"seed {s}, fold {f}" for s, f, _ in keys],
            sample=[f"{f}|{x}" for _, f, x in keys], alternative=alternative,
        ))
    return results


def _diagnostic(a: np.ndarray, b: np.ndarray) -> str:
    p = normality_of_differences(a, b)
    return "" if math.isnan(p) else f"; Shapiro–Wilk on the paired differences p={p:.3g} (diagnostic)"


def _direction(aligned: _Aligned, higher: bool) -> str:
    if aligned.row.empty:
        return ""
    diff = float(aligned.row.mean() - aligned.base.mean())
    if not math.isfinite(diff) or diff == 0:
        return "same"
    return "better" if (diff > 0) == higher else "worse"


def _test_record(comparison: Comparison, normality: float) -> dict[str, Any]:
    n = comparison.n if isinstance(comparison.n, int) else "/".join(map(str, comparison.n))
    return {
        "level": comparison.level, "test": comparison.test, "reason": comparison.reason, "n": n,
        "replicates": comparison.replicates, "p": comparison.p_value, "effect_name": comparison.effect_name,
        "effect": comparison.effect, "ci_low": comparison.effect_ci[0], "ci_high": comparison.effect_ci[1],
        "difference": comparison.mean_difference, "difference_ci_low": comparison.difference_ci[0],
        "difference_ci_high": comparison.difference_ci[1], "df": comparison.df,
        "normality_p": normality, "alternative": comparison.alternative, "effect_sign": EFFECT_SIGN,
    }


def _family_key(record: Mapping[str, Any], family: str) -> str:
    level = "replicate-level" if record["level"] == REPLICATE else "per-sample"
    if family == "table":
        return f"{level}: all"
    if family == "dataset":
        return f"{level}: {record['dataset']}"
    return f"{level}: {record['dataset']}, {record['metric']}"


def _finish_tests(records: list[dict[str, Any]], comparisons: list[Comparison], family: str) -> pd.DataFrame:
    """Holm within each family of tested comparisons; marks from the per-sample level's adjusted p."""
    families = [_family_key(record, family) for record in records]
    adjusted = adjust(comparisons, families) if comparisons else []
    for record, comparison in zip(records, adjusted, strict=True):
        record["p_holm"] = comparison.p_adjusted
        record["family"] = comparison.family
        record["family_size"] = comparison.family_size
        record["mark"] = significance_mark(comparison.p_adjusted)
    extra = [c for c in (records[0] if records else {}) if c not in TEST_COLUMNS]
    return pd.DataFrame(records, columns=TEST_COLUMNS + extra)


def _check_stats(stats: str) -> None:
    if stats not in STATS_MODES:
        raise BenchSuiteError(unknown_name_message("statistics procedure", stats, STATS_MODES)
                              + " — pass --stats paired or --stats paper")


def _method_label(key: Mapping[str, Any], show_model: bool) -> str:
    parts = [str(key["model"])] if show_model else []
    parts += [str(key[k]) for k in ("trainer", "neuron", "norm") if str(key[k]) != "-"]
    if int(key["T"]):
        parts.append(f"T={int(key['T'])}")
    if key.get("variant"):
        parts.append(f"[{key['variant']}]")
    return " ".join(parts)


def _pair_records(
    samples: pd.DataFrame, row: Mapping[str, Any], base: Mapping[str, Any], metric: str, higher: bool,
    opts: TestOptions, labels: tuple[str, str], dataset: str,
) -> tuple[list[dict[str, Any]], list[Comparison], str]:
    """Records and comparisons of one method against its baseline, and the unmatched note ("" if none)."""
    aligned = _align(_observations(samples, row, metric), _observations(samples, base, metric), *labels)
    if aligned.unmatched and not opts.allow_unmatched:
        raise _unmatched_error(f"{labels[0]} and its baseline {labels[1]} ({dataset}, {metric})", aligned)
    comparisons = _compare_pair(aligned, higher, opts) if len(aligned.row) else []
    sign = 1.0 if higher else -1.0
    per_row = (sign * aligned.row).groupby(level=["fold", "sample"]).mean() if len(aligned.row) else aligned.row
    per_base = (sign * aligned.base).groupby(level=["fold", "sample"]).mean() if len(aligned.row) else aligned.base
    normality = normality_of_differences(per_row.to_numpy(), per_base.to_numpy()) if len(per_row) else math.nan
    records = []
    for comparison in comparisons:
        records.append({
            "dataset": dataset, "method": labels[0], "baseline": labels[1], "metric": metric,
            **_test_record(comparison, normality), "direction": _direction(aligned, higher),
            "unmatched": aligned.unmatched,
        })
    return records, comparisons, aligned.unmatched


def baseline_comparisons(
    per_sample: pd.DataFrame, baseline: str, stats: str | None = None, alternative: str | None = None,
    test: str | None = None, family: str | None = None, allow_unmatched: bool | None = None,
    options: TestOptions | None = None,
) -> pd.DataFrame:
    """Every method of a run against the baseline ``KIND=NAME``, per dataset and metric, Holm-corrected.

    For each method the baseline is the matching cell group of the same dataset that agrees with it on
    the most other settings (so with ``neuron=mt`` ML at T=10 is compared with MT at T=10, not T=20).
    ``alternative`` is about the method against the baseline ("greater": the method is better). Both are
    compared on the samples and seeds they share; a pair scored on different ones is refused unless
    ``allow_unmatched``. Columns: :data:`TEST_COLUMNS`, one row per comparison and level (per-sample;
    replicate-level with ≥ 2 seeds or folds); ``attrs["friedman"]``: a Friedman test per dataset and metric
    with more than two methods.
    """
    opts = _options(options, stats=stats, alternative=alternative, test=test, family=family,
                    allow_unmatched=allow_unmatched)
    if "sample" not in per_sample.columns:
        raise BenchSuiteError("significance tests need per-sample metrics: pass tidy_frame(..., per_sample=True)")
    kind, selector = _parse_baseline(baseline)
    frame = _normalise(per_sample)
    frame = frame[frame["metric"].map(_is_testable)]
    methods = frame[list(METHOD_DIMS)].drop_duplicates()
    show_model = methods["model"].nunique() > 1
    if kind == "dataset":
        raise BenchSuiteError("--baseline compares methods within a dataset; give a method kind such as "
                              "neuron=mt or trainer=ann")
    is_base = frame[kind].map(lambda value: _matches(kind, selector, value))
    if not is_base.any():
        values = sorted(map(str, frame[kind].unique()))
        raise BenchSuiteError(f"--baseline {baseline}: no finished cell of this run has {kind} matching "
                              f"'{selector}'; its {kind} values: {', '.join(values)}")
    records, comparisons, friedmans = [], [], []
    for (dataset, metric), group in frame.groupby(["dataset", "metric"], sort=True):
        keys = group[list(METHOD_DIMS)].drop_duplicates().to_dict("records")
        bases = [k for k in keys if _matches(kind, selector, k[kind])]
        # a method without the baseline's kind (the ANN has no neuron) has no counterpart to test against
        others = [k for k in keys if not _matches(kind, selector, k[kind]) and str(k[kind]) != "-"]
        higher = _higher_is_better(metric)
        for key in others:
            if not bases:
                continue
            others_dims = [d for d in METHOD_DIMS if d != kind]
            base = max(bases, key=lambda b: sum(str(b[d]) == str(key[d]) for d in others_dims))
            labels = (_method_label(key, show_model), _method_label(base, show_model))
            new_records, new_comparisons, _ = _pair_records(group, key, base, metric, higher, opts, labels, dataset)
            records += new_records
            comparisons += new_comparisons
        if len(keys) > 2:
            labelled = {_method_label(k, show_model): k for k in keys}
            result = _friedman(group, labelled, metric, higher, opts, f"{dataset}, {metric}")
            if result:
                friedmans.append({"dataset": dataset, "metric": metric, **result})
    tests = _finish_tests(records, comparisons, opts.family)
    tests.attrs["friedman"] = friedmans
    tests.attrs["options"] = dataclasses.asdict(opts)
    return tests


def _friedman(samples: pd.DataFrame, methods: Mapping[str, Mapping[str, Any]], metric: str, higher: bool,
              opts: TestOptions, where: str) -> dict[str, Any] | None:
    """A Friedman test with its post-hoc over the methods of one column (> 2), on aligned samples."""
    observed = {label: _observations(samples, coords, metric) for label, coords in methods.items()}
    observed = {label: values for label, values in observed.items() if len(values)}
    if len(observed) < 3:
        return None
    finite = {label: set(v.index[np.isfinite(v.to_numpy(dtype=float))]) for label, v in observed.items()}
    shared = set.intersection(*finite.values())
    union = set.union(*finite.values())
    if shared != union:
        lacking = [f"{label} lacks {_missing_text(list(union - keys), observed[label], pd.Series(index=list(union), dtype=float))}"  # noqa: E501
                   for label, keys in finite.items() if union - keys]
        if not opts.allow_unmatched:
            raise BenchSuiteError(
                f"the methods of {where} were not scored on the same test samples and seeds ({'; '.join(lacking)}), "
                "so the Friedman test over them would rank different samples; finish or rerun the missing cells "
                "or pass --allow-unmatched to rank them on the shared samples"
            )
    if not shared:
        return None
    index = pd.MultiIndex.from_tuples(sorted(shared, key=lambda k: (int(k[0]), int(k[1]), str(k[2]))),
                                      names=["seed", "fold", "sample"])
    per_sample = {label: v.reindex(index).groupby(level=["fold", "sample"]).mean().to_numpy(dtype=float)
                  for label, v in observed.items()}
    n = len(next(iter(per_sample.values())))
    if n < 2:
        return None
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ties everywhere: scipy warns and gives NaN, reported as such
            result = friedman_posthoc(list(per_sample.values()), list(per_sample), higher_is_better=higher,
                                      posthoc=opts.posthoc)
    except ValueError:
        return None
    return {
        "k": result.k, "n": result.n, "statistic": result.statistic, "p": result.p_value, "posthoc": result.posthoc,
        "ranks": result.ranks, "critical_difference": result.critical_difference, "alpha": result.alpha,
        "pairwise": {str(a): {str(b): float(result.pairwise.loc[a, b]) for b in result.pairwise.columns}
                     for a in result.pairwise.index},
        "unmatched": bool(shared != union),
    }


# -- the suite table ------------------------------------------------------------------------------


def _order_value(dim: str, value: Any, labels: list[str]) -> tuple:
    """Paper order: the ANN ("-", T=0) first, then the order of the suite's [table.labels], then by value."""
    if dim == "T":
        return (0, int(value), "")
    text = str(value)
    if text == "-":
        return (-1, 0, "")
    for position, selector in enumerate(labels):
        kind, _, sel = selector.partition("=")
        if kind == dim and label_matches(sel, text):
            return (0, position, text)
    return (1, 0, text)


def _display(dim: str, value: Any, labels: Mapping[str, str]) -> str:
    """A coordinate's display text; "" means left out of the row label (e.g. "-" or T=0)."""
    if dim == "T":
        t = int(value)
        return labels.get(f"T={t}", f"T={t}" if t else "")
    if dim == "variant":
        return str(value)
    text = str(value)
    if text == "-":
        return ""
    best, best_specificity = None, -1
    for selector, shown in labels.items():
        kind, _, sel = selector.partition("=")
        if kind == dim and label_matches(sel, text):
            parsed = parse_label(sel)
            specificity = len(parsed[1]) if parsed else 0
            if specificity > best_specificity:
                best, best_specificity = shown, specificity
    return text if best is None else best


def _metric_display(metric: str, suite: Suite) -> str:
    return suite.table.metric_labels.get(metric) or metric_info(metric).label


def _published_for(suite: Suite, coords: Mapping[str, Any], metric: str) -> tuple[int, Any] | None:
    for index, entry in enumerate(suite.published):
        if entry.metric != metric:
            continue
        if entry.dataset is not None and not label_matches(entry.dataset, coords.get("dataset", "")):
            continue
        if entry.T is not None and int(coords.get("T", -1)) != entry.T:
            continue
        if all(kind in coords and label_matches(sel, coords[kind]) for kind, sel in entry.row.items()):
            return index, entry
    return None


def suite_options(suite: Suite, options: TestOptions | None = None, **overrides: Any) -> TestOptions:
    """The suite's test options: ``[table] stats`` / ``test`` where the suite sets them; otherwise a suite
    that reproduces a paper uses the paper's procedure (``stats="paper"``), any other the paired default.
    Explicit ``overrides`` (the command line) win."""
    layout = suite.table
    stats = getattr(layout, "stats", None) or ("paper" if suite.reproduces.get("paper") else "paired")
    base = options or TestOptions(stats=stats, test=getattr(layout, "test", None) or DEFAULT_TEST)
    return _options(base, **overrides)


def _expand_metrics(metrics: Sequence[str], measured: set[str]) -> tuple[list[str], dict[str, str | None]]:
    """The table's metric columns and, per column, the layout metric whose published values it carries.

    ``miou`` becomes the dataset-level ``miou_pooled`` (one confusion matrix: what the papers publish)
    followed by the per-image mean ``miou`` (what the per-sample tests compare); ``hd95`` / ``assd`` get
    the count of empty-prediction penalties (``penalised``) beside them.
    """
    columns: list[str] = []
    published: dict[str, str | None] = {}
    for metric in metrics:
        stage, _, base = metric.rpartition("/")
        prefix = f"{stage}/" if stage else ""
        if base == "miou" and f"{prefix}miou_pooled" in measured:
            columns += [f"{prefix}miou_pooled", metric]
            published.update({f"{prefix}miou_pooled": metric, metric: None})
            continue
        columns.append(metric)
        published[metric] = metric
        if base in ("hd95", "assd") and f"{prefix}penalised" in measured and f"{prefix}penalised" not in columns:
            columns.append(f"{prefix}penalised")
            published[f"{prefix}penalised"] = None
    return columns, published


def suite_table(
    suite: Suite, tidy: pd.DataFrame, per_sample: pd.DataFrame | None = None, stats: str | None = None,
    alternative: str | None = None, test: str | None = None, family: str | None = None,
    allow_unmatched: bool | None = None, options: TestOptions | None = None,
) -> pd.DataFrame:
    """The suite's table from a run's frames (see :func:`suite_frames`).

    Index: ``method`` (the display label) and the row dimensions; columns: ``(*column dimensions, field)``
    with field one of ``mean, std, n, mark, paper``. A dimension the suite does not name but that varies
    within a cell (say two T per method) becomes an extra row dimension, so nothing is averaged silently.
    Without ``per_sample`` no test is run (no marks). The options default to :func:`suite_options`; a
    method compared with the baseline must share its samples and seeds (else an error, or with
    ``allow_unmatched`` a "†" mark and no bold); a column of more than two methods gets a Friedman test.
    """
    opts = suite_options(suite, options, stats=stats, alternative=alternative, test=test, family=family,
                         allow_unmatched=allow_unmatched)
    layout = suite.table
    if "sample" in tidy.columns:
        tidy = summarize_cells(tidy)
    frame = _normalise(tidy)
    metrics, published_metric = _expand_metrics(layout.metrics, set(frame["metric"]))
    frame = frame[frame["metric"].isin(metrics)]
    if frame.empty:
        measured = ", ".join(sorted(map(str, tidy["metric"].unique()))) or "none"
        raise BenchSuiteError(
            f"this run measured none of suite '{suite.name}''s metrics ({', '.join(layout.metrics)}); "
            f"it has: {measured} — is it a run of that suite?"
        )
    rows, columns = list(layout.rows), list(layout.columns)
    keys = rows + columns
    for dim in IDENTITY:
        if dim not in keys and (frame.groupby(keys, dropna=False)[dim].nunique() > 1).any():
            rows.append(dim)
            keys = rows + columns
    label_order = list(layout.labels)
    grouped = frame.groupby(keys, dropna=False)
    stats_frame = grouped["value"].agg(mean="mean", std="std", n="count").reset_index()
    constants = grouped[[d for d in IDENTITY if d not in keys]].first().reset_index()
    stats_frame = stats_frame.merge(constants, on=keys, how="left")

    row_keys = sorted(
        {tuple(r) for r in stats_frame[rows].itertuples(index=False, name=None)},
        key=lambda key: tuple(_order_value(d, v, label_order) for d, v in zip(rows, key, strict=True)),
    )
    metric_order = {m: i for i, m in enumerate(metrics)}

    def column_order(key: tuple) -> tuple:
        return tuple((0, metric_order[v], "") if d == "metric" else _order_value(d, v, label_order)
                     for d, v in zip(columns, key, strict=True))

    col_keys = sorted({tuple(c) for c in stats_frame[columns].itertuples(index=False, name=None)},
                      key=column_order)

    # values and published numbers
    by_key = {tuple(record[k] for k in keys): record for record in stats_frame.to_dict("records")}
    data: dict[tuple, dict[tuple, Any]] = {}
    published_used: set[int] = set()
    published_notes: dict[str, str] = {}
    for col in col_keys:
        for field in VALUE_FIELDS:
            data[(*col, field)] = {}
    for row in row_keys:
        for col in col_keys:
            record = by_key.get((*row, *col))
            if record is None:
                continue
            metric = col[columns.index("metric")]
            coords = {d: record[d] for d in IDENTITY}
            data[(*col, "mean")][row] = record["mean"]
            data[(*col, "std")][row] = record["std"]
            data[(*col, "n")][row] = record["n"]
            data[(*col, "mark")][row] = ""
            match = _published_for(suite, coords, published_metric.get(metric, metric))
            data[(*col, "paper")][row] = match[1].value if match else math.nan
            if match:
                published_used.add(match[0])
                entry = match[1]
                if entry.note or entry.source:
                    published_notes[str(entry.value)] = "; ".join(x for x in (entry.source, entry.note) if x)

    tests, friedmans = _suite_tests(suite, per_sample, rows, columns, row_keys, col_keys, by_key, opts)
    for record in tests.to_dict("records"):
        if record["level"] == PER_SAMPLE:
            data[(*record["_col"], "mark")][record["_row"]] = record["mark"] + ("†" if record["unmatched"] else "")

    index = pd.MultiIndex.from_tuples(
        [(_row_label(rows, row, layout), *row) for row in row_keys], names=["method", *rows]
    )
    col_index = pd.MultiIndex.from_tuples(list(data), names=[*columns, "field"])
    table = pd.DataFrame(
        {col: [values.get(row, math.nan if col[-1] != "mark" else "") for row in row_keys]
         for col, values in data.items()},
        index=index,
    )
    table.columns = col_index

    unmatched = [
        {"dataset": e.dataset or "", "row": dict(e.row), "T": e.T, "metric": e.metric, "value": e.value,
         "source": e.source, "note": e.note}
        for i, e in enumerate(suite.published) if i not in published_used
    ]
    lower = sorted(m for m in metrics if not _higher_is_better(m, layout.lower_is_better))
    table.attrs.update({
        "suite": suite.name, "caption": layout.caption or suite.description, "rows": rows, "columns": columns,
        "column_labels": {json.dumps(list(map(_jsonable, col))): [
            _metric_display(v, suite) if d == "metric" else (_display(d, v, layout.labels) or str(v))
            for d, v in zip(columns, col, strict=True)] for col in col_keys},
        "lower_is_better": lower, "stats": opts.stats, "options": dataclasses.asdict(opts),
        "baseline": layout.baseline or "", "friedman": friedmans,
        "tests": tests.drop(columns=["_row", "_col"], errors="ignore").to_dict("records"),
        "unmatched_published": unmatched, "published_notes": published_notes,
        "reproduces": " ".join(v for v in (suite.reproduces.get("paper"), suite.reproduces.get("table")) if v),
    })
    return table


def _jsonable(value: Any) -> Any:
    return int(value) if isinstance(value, (np.integer,)) else value


def _row_label(rows: list[str], row: tuple, layout) -> str:
    """``MT+FT T=10``: method parts joined by the separator, settings (T, variant) after a space."""
    method = [_display(d, v, layout.labels) for d, v in zip(rows, row, strict=True) if d not in ("T", "variant")]
    settings = [_display(d, v, layout.labels) for d, v in zip(rows, row, strict=True) if d in ("T", "variant")]
    text = " ".join(p for p in (layout.label_separator.join(p for p in method if p), *settings) if p)
    return text or ", ".join(str(v) for v in row)


def _suite_tests(
    suite: Suite, per_sample: pd.DataFrame | None, rows: list[str], columns: list[str],
    row_keys: list[tuple], col_keys: list[tuple], by_key: dict[tuple, dict], opts: TestOptions,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    layout = suite.table
    if per_sample is None or layout.baseline is None or per_sample.empty:
        return pd.DataFrame(columns=[*TEST_COLUMNS, "column", "_row", "_col"]), []
    kind, selector = _parse_baseline(layout.baseline)
    samples = _normalise(per_sample)
    records, comparisons, friedmans = [], [], []
    for col in col_keys:
        metric = col[columns.index("metric")]
        higher = _higher_is_better(metric, layout.lower_is_better)
        if not _is_testable(metric) or not (samples["metric"] == metric).any():
            continue  # a metric without per-sample values (energy, pooled values, counts): nothing to test
        present = [row for row in row_keys if (*row, *col) in by_key]
        coords = {row: {d: by_key[(*row, *col)][d] for d in IDENTITY} for row in present}
        bases = [row for row in present if _matches(kind, selector, coords[row][kind])]
        column = json.dumps(list(map(_jsonable, col)))
        for row in present:
            # a method without the baseline's kind (the ANN has no neuron) has no counterpart to test against
            if row in bases or not bases or str(coords[row][kind]) == "-":
                continue
            other = [d for d in rows if d != kind]
            base = max(bases, key=lambda b: sum(str(b[rows.index(d)]) == str(row[rows.index(d)]) for d in other))
            labels = (_row_label(rows, row, layout), _row_label(rows, base, layout))
            new_records, new_comparisons, _ = _pair_records(
                samples, coords[row], coords[base], metric, higher, opts, labels, str(coords[row]["dataset"]))
            for record in new_records:
                record.update({"column": column, "_row": row, "_col": col})
            records += new_records
            comparisons += new_comparisons
        if len(present) > 2:
            labelled = {_row_label(rows, row, layout): coords[row] for row in present}
            result = _friedman(samples, labelled, metric, higher, opts, f"column {' '.join(map(str, col))}")
            if result:
                friedmans.append({"column": column, "dataset": str(coords[present[0]]["dataset"]),
                                  "metric": metric, **result})
    return _finish_tests(records, comparisons, opts.family), friedmans


def suite_tests(table: pd.DataFrame) -> pd.DataFrame:
    """The comparisons behind a suite table's marks: test, why it was chosen, p, Holm p, effect and CI
    (:data:`TEST_COLUMNS`), and ``column``, the table column each belongs to."""
    return pd.DataFrame(table.attrs.get("tests", []), columns=[*TEST_COLUMNS, "column"])


def method_label(layout, coords: Mapping[str, Any]) -> str:
    """The suite's display label (``MT+FT``) of a method given by its coordinates (trainer, neuron, …)."""
    rows = [d for d in layout.rows if d in coords]
    return _row_label(rows, tuple(coords[d] for d in rows), layout)
