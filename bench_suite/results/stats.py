"""Significance tests and effect sizes for per-sample metrics (pure functions, no I/O).

Two procedures:

- :func:`compare_paired` — the suite's default. Two methods evaluated on the *same* samples are paired, so
  the test looks at the per-sample differences ``a - b``: Shapiro–Wilk on the differences decides between
  the paired t-test and the Wilcoxon signed-rank test. Effect size: Cohen's d_z (t-test) or the
  matched-pairs rank-biserial correlation (Wilcoxon), each with a bootstrap percentile CI over pairs.
- :func:`compare_unpaired_paper` — the reference paper's procedure (``--stats paper``), kept for
  reproduction: it ignores the pairing, runs Shapiro–Wilk on each group, then Student's ``ttest_ind`` or
  Mann–Whitney U, one-sided ``a > b``. Effect size: Cohen's d (pooled sd) or rank-biserial from U.

Across a table's comparisons p-values are Holm-corrected (:func:`holm`, :func:`adjust`); more than two
methods on the same samples get a Friedman test (:func:`friedman`).

Degenerate inputs never raise inside a report; they give a :class:`Comparison` whose ``reason`` says what
happened:

- pairs (or, unpaired, values) with a NaN or infinite entry are dropped and counted in ``reason``;
  ``n`` is what is left;
- no difference at all (every pair equal, or every value the same value in both groups): ``p = 1.0``,
  ``test = "none"``, effect 0;
- fewer than 3 pairs (per group, unpaired) after dropping: Shapiro–Wilk is undefined, so no test is run:
  ``p = NaN``, ``test = "none"``;
- a zero-spread sample (all differences equal but not zero, or a constant group) has no meaningful
  Shapiro–Wilk p (scipy returns 1.0 and a t statistic of ±inf), so it is treated as not normal and
  goes to the rank test.

Bootstrap CIs leave out resamples whose effect size is undefined (zero spread; no non-zero difference);
that only matters for very small n.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

PAIRED_T = "paired t-test"
WILCOXON = "Wilcoxon signed-rank"
STUDENT_T = "Student t-test"
MANN_WHITNEY = "Mann–Whitney U"
NO_TEST = "none"

COHEN_DZ = "Cohen's d_z"
COHEN_D = "Cohen's d"
RANK_BISERIAL = "rank-biserial r"

ALTERNATIVES = ("two-sided", "greater", "less")
_NAN_CI = (math.nan, math.nan)
# Differences this small relative to the data are floating-point noise, not effects (e.g. the same
# metric recomputed along a different summation order).
_REL_TOL = 1e-12


@dataclass(frozen=True)
class Comparison:
    """One comparison "a vs b": which test was chosen and why, its result, and an effect size.

    ``alternative`` is always read as *a* vs *b* (``"greater"``: a is larger). ``n`` is the number of pairs
    used (paired) or ``(n_a, n_b)`` (unpaired). ``normality_p`` is the Shapiro–Wilk p of the differences
    (paired) or ``(p_a, p_b)`` (unpaired); NaN where it could not be computed. ``p_adjusted`` is NaN until
    :func:`adjust` fills it.
    """

    test: str
    statistic: float
    p_value: float
    p_adjusted: float
    alternative: str
    n: int | tuple[int, int]
    normality_p: float | tuple[float, float]
    normal: bool
    reason: str
    effect_name: str
    effect: float
    effect_ci: tuple[float, float]


# -- paired --------------------------------------------------------------------------------------


def compare_paired(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    alternative: str = "two-sided",
    alpha_normality: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Comparison:
    """Compare two methods' per-sample metrics on the same samples (``a[i]`` and ``b[i]`` are one sample)."""
    _check_alternative(alternative)
    _check_options(alpha_normality, n_boot, confidence)
    a = _as_1d(a, "a")
    b = _as_1d(b, "b")
    if a.shape != b.shape:
        raise ValueError(
            f"paired comparison needs one value per sample from each method, got {a.size} values in a "
            f"and {b.size} in b"
        )
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    dropped = _dropped_note(int(keep.size - n), "pair", n)
    base = dict(alternative=alternative, n=n, p_adjusted=math.nan)

    d = a - b
    tol = _tolerance(a, b)
    if n == 0:
        return Comparison(
            test=NO_TEST, statistic=math.nan, p_value=math.nan, normality_p=math.nan, normal=False,
            reason=f"no complete pairs{dropped}: no test possible", effect_name=COHEN_DZ, effect=math.nan,
            effect_ci=_NAN_CI, **base,
        )
    if np.all(np.abs(d) <= tol):
        return Comparison(
            test=NO_TEST, statistic=math.nan, p_value=1.0, normality_p=math.nan, normal=False,
            reason=f"identical: a equals b on all {n} pairs{dropped}, so there is no difference to test",
            effect_name=RANK_BISERIAL, effect=0.0, effect_ci=(0.0, 0.0), **base,
        )
    if n < 3:
        return Comparison(
            test=NO_TEST, statistic=math.nan, p_value=math.nan, normality_p=math.nan, normal=False,
            reason=f"only {n} complete pair(s){dropped}: Shapiro–Wilk needs n ≥ 3, no test possible",
            effect_name=COHEN_DZ, effect=math.nan, effect_ci=_NAN_CI, **base,
        )

    if np.ptp(d) <= tol:
        normality_p, normal = math.nan, False
        why = (
            f"all {n} differences are equal ({d[0]:.4g}){dropped}: Shapiro–Wilk is meaningless at zero "
            f"spread and a t statistic would be infinite → {WILCOXON}"
        )
    else:
        normality_p = float(st.shapiro(d).pvalue)
        normal = normality_p >= alpha_normality
        if normal:
            why = (
                f"Shapiro–Wilk on the differences p={normality_p:.3g} ≥ {alpha_normality:g}: "
                f"differences look normal → {PAIRED_T}{dropped}"
            )
        else:
            why = (
                f"Shapiro–Wilk on the differences p={normality_p:.3g} < {alpha_normality:g}: "
                f"differences are not normal → {WILCOXON}{dropped}"
            )

    rng = np.random.default_rng(seed)
    if normal:
        res = st.ttest_rel(a, b, alternative=alternative)
        effect = float(_cohen_dz(d[None, :])[0])
        boot = _cohen_dz(d[_pair_indices(rng, n, n_boot)]) if n_boot else np.empty(0)
        test, effect_name = PAIRED_T, COHEN_DZ
    else:
        # Sub-tolerance differences are noise; zeroing them lets wilcoxon's zero handling see them as ties.
        d = np.where(np.abs(d) <= tol, 0.0, d)
        with warnings.catch_warnings():
            # Small n with ties/zeros: scipy falls back to the normal approximation and says so; the
            # result is still scipy's, and the reason records the sample size.
            warnings.simplefilter("ignore", UserWarning)
            res = st.wilcoxon(d, alternative=alternative)
        effect = float(_rank_biserial_paired(d[None, :])[0])
        boot = _rank_biserial_paired(d[_pair_indices(rng, n, n_boot)]) if n_boot else np.empty(0)
        test, effect_name = WILCOXON, RANK_BISERIAL

    return Comparison(
        test=test, statistic=float(res.statistic), p_value=float(res.pvalue), normality_p=normality_p,
        normal=normal, reason=why, effect_name=effect_name, effect=effect,
        effect_ci=_percentile_ci(boot, confidence), **base,
    )


def _cohen_dz(d: np.ndarray) -> np.ndarray:
    """d_z of each row of ``d``; NaN where the row has zero spread."""
    sd = d.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, d.mean(axis=1) / sd, np.nan)


def _rank_biserial_paired(d: np.ndarray) -> np.ndarray:
    """Matched-pairs rank-biserial r = (R+ − R−) / (R+ + R−) per row, zeros dropped (Kerby 2014).

    Zeros are left out of the ranking as in scipy's default ``zero_method="wilcox"``. Ranking |d| with the
    zeros in place gives the z zeros the lowest ranks and shifts every non-zero rank by exactly z, so
    subtracting z recovers the ranks among the non-zero differences without a ragged per-row ranking.
    """
    absd = np.abs(d)
    zeros = (d == 0).sum(axis=1, keepdims=True)
    ranks = st.rankdata(absd, axis=1) - zeros
    r_plus = np.where(d > 0, ranks, 0.0).sum(axis=1)
    r_minus = np.where(d < 0, ranks, 0.0).sum(axis=1)
    total = r_plus + r_minus
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (r_plus - r_minus) / total, np.nan)


def _pair_indices(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    return rng.integers(0, n, size=(n_boot, n))


# -- unpaired (reference paper) ------------------------------------------------------------------


def compare_unpaired_paper(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    alpha_normality: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Comparison:
    """The reference paper's test of "a greater than b", treating the two groups as independent.

    Kept for reproducing its tables; for two methods on the same samples :func:`compare_paired` is the
    appropriate (and more powerful) test.
    """
    _check_options(alpha_normality, n_boot, confidence)
    a_all = _as_1d(a, "a")
    b_all = _as_1d(b, "b")
    a, b = a_all[np.isfinite(a_all)], b_all[np.isfinite(b_all)]
    n_a, n_b = int(a.size), int(b.size)
    dropped = "".join(
        _dropped_note(int(full.size - kept.size), "value", int(kept.size), f" in {name}")
        for name, full, kept in (("a", a_all, a), ("b", b_all, b))
    )
    base = dict(alternative="greater", n=(n_a, n_b), p_adjusted=math.nan)
    nan_pair = (math.nan, math.nan)

    tol = _tolerance(a, b)
    pooled = np.concatenate([a, b])
    if n_a and n_b and np.ptp(pooled) <= tol:
        return Comparison(
                test=NO_TEST, statistic=math.nan, p_value=1.0, normality_p=nan_pair, normal=False,
                reason=f"identical: all {n_a + n_b} values are {pooled[0]:.4g}{dropped}, nothing to test",
                effect_name=RANK_BISERIAL, effect=0.0, effect_ci=(0.0, 0.0), **base,
            )
    if n_a < 3 or n_b < 3:
        return Comparison(
            test=NO_TEST, statistic=math.nan, p_value=math.nan, normality_p=nan_pair, normal=False,
            reason=(
                f"groups of {n_a} and {n_b} values{dropped}: Shapiro–Wilk needs n ≥ 3 in each, "
                "no test possible"
            ),
            effect_name=COHEN_D, effect=math.nan, effect_ci=_NAN_CI, **base,
        )

    p_a = _group_normality(a, tol)
    p_b = _group_normality(b, tol)
    normal = bool(p_a >= alpha_normality and p_b >= alpha_normality)  # NaN (constant group) → False
    shown = f"Shapiro–Wilk p_a={_fmt_p(p_a)}, p_b={_fmt_p(p_b)} (α={alpha_normality:g})"
    constant = " (a constant group counts as not normal)" if math.isnan(p_a) or math.isnan(p_b) else ""

    rng = np.random.default_rng(seed)
    ia = rng.integers(0, n_a, size=(n_boot, n_a))
    ib = rng.integers(0, n_b, size=(n_boot, n_b))
    if normal:
        res = st.ttest_ind(a, b, alternative="greater")
        effect = float(_cohen_d(a[None, :], b[None, :])[0])
        boot = _cohen_d(a[ia], b[ib])
        test, effect_name = STUDENT_T, COHEN_D
        why = f"{shown}: both groups look normal → {STUDENT_T} (paper procedure, unpaired){dropped}"
    else:
        res = st.mannwhitneyu(a, b, alternative="greater")
        effect = float(_rank_biserial_u(a[None, :], b[None, :])[0])
        boot = _rank_biserial_u(a[ia], b[ib])
        test, effect_name = MANN_WHITNEY, RANK_BISERIAL
        why = f"{shown}: not both normal{constant} → {MANN_WHITNEY} (paper procedure, unpaired){dropped}"

    return Comparison(
        test=test, statistic=float(res.statistic), p_value=float(res.pvalue), normality_p=(p_a, p_b),
        normal=normal, reason=why, effect_name=effect_name, effect=effect,
        effect_ci=_percentile_ci(boot, confidence), **base,
    )


def _group_normality(x: np.ndarray, tol: float) -> float:
    return math.nan if np.ptp(x) <= tol else float(st.shapiro(x).pvalue)


def _cohen_d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(mean_a − mean_b) / pooled sd per row; NaN where both groups have zero spread."""
    n_a, n_b = a.shape[1], b.shape[1]
    pooled_var = ((n_a - 1) * a.var(axis=1, ddof=1) + (n_b - 1) * b.var(axis=1, ddof=1)) / (n_a + n_b - 2)
    sd = np.sqrt(pooled_var)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, (a.mean(axis=1) - b.mean(axis=1)) / sd, np.nan)


def _rank_biserial_u(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """r = 2·U_a/(n_a·n_b) − 1 per row: +1 when every a exceeds every b, −1 the other way round."""
    n_a, n_b = a.shape[1], b.shape[1]
    ranks = st.rankdata(np.concatenate([a, b], axis=1), axis=1)
    u_a = ranks[:, :n_a].sum(axis=1) - n_a * (n_a + 1) / 2
    return 2 * u_a / (n_a * n_b) - 1


# -- several comparisons, several methods ----------------------------------------------------------


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values in input order; NaNs stay NaN and do not count as tests."""
    p = np.asarray(p_values, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def adjust(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """Copies of ``comparisons`` with ``p_adjusted`` Holm-corrected across all of them (one family)."""
    adjusted = holm([c.p_value for c in comparisons])
    return [dataclasses.replace(c, p_adjusted=float(p)) for c, p in zip(comparisons, adjusted, strict=True)]


def friedman(*groups: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Friedman test over ≥ 3 methods measured on the same samples; returns ``(statistic, p_value)``.

    ``groups[k][i]`` is method k on sample i. Samples with a NaN/inf in any method are dropped, as in
    :func:`compare_paired`, since the test ranks methods within each sample.
    """
    if len(groups) < 3:
        raise ValueError(
            f"the Friedman test needs at least 3 methods, got {len(groups)}; use compare_paired for two"
        )
    arrays = [_as_1d(g, f"group {k}") for k, g in enumerate(groups)]
    lengths = [x.size for x in arrays]
    if len(set(lengths)) != 1:
        raise ValueError(f"the Friedman test needs every method on the same samples, got lengths {lengths}")
    table = np.vstack(arrays)
    table = table[:, np.isfinite(table).all(axis=0)]
    if table.shape[1] == 0:
        raise ValueError("the Friedman test got no sample with a finite value for every method")
    res = st.friedmanchisquare(*table)
    return float(res.statistic), float(res.pvalue)


def significance_mark(p: float | None) -> str:
    """Stars for a table cell: ``***`` p < 0.001, ``**`` p < 0.01, ``*`` p < 0.05, else ``""``.

    The usual convention (strict inequalities, so p = 0.05 gets no star); a missing or NaN p gets no mark,
    since no test was possible. Pass the Holm-adjusted p when the table holds several comparisons.
    """
    if p is None or math.isnan(p):
        return ""
    if p < 0.001:
        return "***"
    if p < 0.01:
        return "**"
    if p < 0.05:
        return "*"
    return ""


# -- helpers -------------------------------------------------------------------------------------


def _as_1d(x: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-sample values, got shape {arr.shape}")
    return arr


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}; got {alternative!r}")


def _check_options(alpha_normality: float, n_boot: int, confidence: float) -> None:
    if not 0 < alpha_normality < 1:
        raise ValueError(f"alpha_normality must be in (0, 1), got {alpha_normality}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be ≥ 0 (0 skips the bootstrap), got {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _tolerance(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
    return _REL_TOL * scale


def _dropped_note(count: int, noun: str, left: int, where: str = "") -> str:
    if count == 0:
        return ""
    plural = "s" if count != 1 else ""
    return f"; {count} {noun}{plural}{where} with NaN/inf dropped (n={left})"


def _percentile_ci(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = boot[np.isfinite(boot)]
    if finite.size == 0:
        return _NAN_CI
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _fmt_p(p: float) -> str:
    return "n/a" if math.isnan(p) else f"{p:.3g}"
