"""Significance tests and effect sizes for per-sample metrics (pure functions, no I/O).

Procedures (what the README's statistics section states for a methods section):

- :func:`compare_paired` — two methods scored on the *same* samples, tested on the per-sample
  differences ``a - b``. The test is chosen **up front** (``test``): the paired t-test (the default,
  :data:`DEFAULT_TEST`: it tests the mean difference, the quantity a table prints), the Wilcoxon
  signed-rank test, or the exact / Monte-Carlo sign-flip permutation test of the mean difference.
  ``test="auto"`` keeps the older data-driven choice (Shapiro–Wilk on the differences → t or Wilcoxon),
  which inflates the type I error (a pre-test followed by the test it selects is not a level-α test).
  Shapiro–Wilk on the differences is computed for every paired comparison and reported as a diagnostic.
  Effect size: Cohen's d_z (t, permutation) or the matched-pairs rank-biserial correlation (Wilcoxon),
  with a bootstrap percentile CI over pairs; the mean difference gets a bootstrap CI too.
- :func:`compare_unpaired_paper` — the reference paper's procedure (``--stats paper``), kept for
  reproduction: it ignores the pairing, runs Shapiro–Wilk on each group, then Student's ``ttest_ind`` or
  Mann–Whitney U, one-sided ``a > b`` by default. Effect: Cohen's d (pooled sd) or rank-biserial from U.
- :func:`compare_replicates` — the training replicate (seed × fold: one trained network) as the unit: a
  linear mixed model of the paired differences (statsmodels ``MixedLM``, REML) with random intercepts
  for the trained network and for the test sample (crossed), whose intercept — the mean difference — is
  tested with a t statistic on Satterthwaite degrees of freedom (computed from the REML information, as
  lmerTest does; with 2 networks they are close to 1, so the test is honest about two training runs).

Across a table's comparisons p-values are Holm-corrected (:func:`holm`, :func:`adjust`) over the
comparisons actually tested (no test → not in the family); more than two methods on the same samples get
a Friedman test with a Nemenyi or Conover post-hoc (:func:`friedman_posthoc`, scikit-posthocs).

Degenerate inputs never raise inside a report; they give a :class:`Comparison` whose ``reason`` says what
happened:

- pairs (or, unpaired, values) with a NaN or infinite entry are dropped and counted in ``reason``;
  ``n`` is what is left;
- no difference at all (every pair equal, or every value the same value in both groups): ``p = 1.0``,
  ``test = "none"``, effect 0 (not part of a Holm family: nothing was tested);
- fewer than 3 pairs (per group, unpaired) after dropping: no test is run: ``p = NaN``, ``test = "none"``;
- a zero-spread sample (all differences equal but not zero) has an infinite t statistic and no
  meaningful Shapiro–Wilk p, so the t-test (also under ``auto``) gives way to the Wilcoxon test, stated;
  a chosen Wilcoxon or permutation test runs as chosen.

Bootstrap CIs leave out resamples whose effect size is undefined (zero spread; no non-zero difference);
that only matters for very small n.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

PAIRED_T = "paired t-test"
WILCOXON = "Wilcoxon signed-rank"
PERMUTATION = "sign-flip permutation"
STUDENT_T = "Student t-test"
MANN_WHITNEY = "Mann–Whitney U"
MIXED_MODEL = "mixed model (REML, Satterthwaite t)"
NO_TEST = "none"

COHEN_DZ = "Cohen's d_z"
COHEN_D = "Cohen's d"
RANK_BISERIAL = "rank-biserial r"
MEAN_DIFFERENCE = "mean difference"

PER_SAMPLE = "per-sample"
REPLICATE = "replicate"

ALTERNATIVES = ("two-sided", "greater", "less")
#: ``--test`` choices: the paired test chosen up front, or ``auto`` (Shapiro–Wilk on the differences decides)
PAIRED_TESTS = {"t": PAIRED_T, "wilcoxon": WILCOXON, "permutation": PERMUTATION, "auto": "auto"}
#: the default paired test for a researcher's own comparisons (README, Statistics: why the t-test)
DEFAULT_TEST = "t"
POSTHOCS = ("nemenyi", "conover")
_NAN_CI = (math.nan, math.nan)
# Differences this small relative to the data are floating-point noise, not effects (e.g. the same
# metric recomputed along a different summation order).
_REL_TOL = 1e-12
_N_PERMUTATIONS = 9999  # Monte-Carlo sign flips when 2^n exceeds it; exact enumeration below


@dataclass(frozen=True)
class Comparison:
    """One comparison "a vs b": which test was chosen and why, its result, and an effect size.

    ``alternative`` is always read as *a* vs *b* (``"greater"``: a is larger). ``n`` is the number of pairs
    used (paired, replicate level) or ``(n_a, n_b)`` (unpaired). ``normality_p`` is the Shapiro–Wilk p of
    the differences (paired) or ``(p_a, p_b)`` (unpaired); NaN where it could not be computed.
    ``p_adjusted`` is NaN until :func:`adjust` fills it (and stays NaN for a comparison without a test).
    ``mean_difference`` is mean(a) − mean(b) with its CI (bootstrap, or the model's t interval at the
    replicate level); ``level`` is "per-sample" or "replicate"; ``df`` the t test's degrees of freedom
    where one was used; ``replicates`` the number of trained networks at the replicate level.
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
    mean_difference: float = math.nan
    difference_ci: tuple[float, float] = _NAN_CI
    level: str = PER_SAMPLE
    df: float = math.nan
    replicates: int = 0
    family: str = ""
    family_size: int = 0

    @property
    def tested(self) -> bool:
        """Whether a test ran (and so whether the comparison belongs to a Holm family)."""
        return self.test != NO_TEST and math.isfinite(self.p_value)


# -- paired --------------------------------------------------------------------------------------


def compare_paired(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    alternative: str = "two-sided",
    test: str = DEFAULT_TEST,
    alpha_normality: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    n_permutations: int = _N_PERMUTATIONS,
) -> Comparison:
    """Compare two methods' per-sample metrics on the same samples (``a[i]`` and ``b[i]`` are one sample).

    ``test`` is ``"t"`` (default), ``"wilcoxon"``, ``"permutation"`` or ``"auto"`` (Shapiro–Wilk on the
    differences at ``alpha_normality`` picks t or Wilcoxon). The Shapiro–Wilk p of the differences is in
    ``normality_p`` whichever test ran.
    """
    _check_alternative(alternative)
    _check_test(test)
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
            effect_name=RANK_BISERIAL, effect=0.0, effect_ci=(0.0, 0.0), mean_difference=0.0,
            difference_ci=(0.0, 0.0), **base,
        )
    if n < 3:
        return Comparison(
            test=NO_TEST, statistic=math.nan, p_value=math.nan, normality_p=math.nan, normal=False,
            reason=f"only {n} complete pair(s){dropped}: Shapiro–Wilk needs n ≥ 3, no test possible",
            effect_name=COHEN_DZ, effect=math.nan, effect_ci=_NAN_CI, mean_difference=float(d.mean()), **base,
        )

    zero_spread = bool(np.ptp(d) <= tol)
    normality_p = math.nan if zero_spread else float(st.shapiro(d).pvalue)
    normal = (not zero_spread) and normality_p >= alpha_normality
    chosen, why = _choose_paired(test, zero_spread, normality_p, normal, alpha_normality, n, d)
    why += dropped

    rng = np.random.default_rng(seed)
    indices = _pair_indices(rng, n, n_boot)
    if chosen == WILCOXON:
        # Sub-tolerance differences are noise; zeroing them lets wilcoxon's zero handling see them as ties.
        d = np.where(np.abs(d) <= tol, 0.0, d)
        with warnings.catch_warnings():
            # Small n with ties/zeros: scipy falls back to the normal approximation and says so; the
            # result is still scipy's, and the reason records the sample size.
            warnings.simplefilter("ignore", UserWarning)
            res = st.wilcoxon(d, alternative=alternative)
        statistic, p_value = float(res.statistic), float(res.pvalue)
        effect = float(_rank_biserial_paired(d[None, :])[0])
        boot = _rank_biserial_paired(d[indices]) if n_boot else np.empty(0)
        effect_name = RANK_BISERIAL
    else:
        if chosen == PAIRED_T:
            res = st.ttest_rel(a, b, alternative=alternative)
            statistic, p_value = float(res.statistic), float(res.pvalue)
        else:
            statistic, p_value = sign_flip_test(d, alternative, n_permutations, seed)
        effect = float(_cohen_dz(d[None, :])[0])
        boot = _cohen_dz(d[indices]) if n_boot else np.empty(0)
        effect_name = COHEN_DZ
    mean_boot = d[indices].mean(axis=1) if n_boot else np.empty(0)
    return Comparison(
        test=chosen, statistic=statistic, p_value=p_value, normality_p=normality_p, normal=normal, reason=why,
        effect_name=effect_name, effect=effect, effect_ci=_percentile_ci(boot, confidence),
        mean_difference=float(d.mean()), difference_ci=_percentile_ci(mean_boot, confidence),
        df=float(n - 1) if chosen == PAIRED_T else math.nan, **base,
    )


def _choose_paired(test: str, zero_spread: bool, normality_p: float, normal: bool, alpha: float, n: int,
                   d: np.ndarray) -> tuple[str, str]:
    """The test that runs and the sentence that says why."""
    if zero_spread and test in ("wilcoxon", "permutation"):
        chosen = PAIRED_TESTS[test]
        return chosen, (f"{chosen} chosen before seeing the data (--test {test}); all {n} differences are equal "
                        f"({d[0]:.4g}), so Shapiro–Wilk is undefined")
    if zero_spread:
        return WILCOXON, (
            f"all {n} differences are equal ({d[0]:.4g}): Shapiro–Wilk is meaningless at zero spread and a t "
            f"statistic would be infinite → {WILCOXON}"
        )
    if test == "auto":
        if normal:
            return PAIRED_T, (f"Shapiro–Wilk on the differences p={normality_p:.3g} ≥ {alpha:g}: differences "
                              f"look normal → {PAIRED_T} (--test auto: the choice depends on the data)")
        return WILCOXON, (f"Shapiro–Wilk on the differences p={normality_p:.3g} < {alpha:g}: differences are "
                          f"not normal → {WILCOXON} (--test auto: the choice depends on the data)")
    chosen = PAIRED_TESTS[test]
    shape = "look normal" if normal else "are not normal"
    return chosen, (f"{chosen} chosen before seeing the data (--test {test}); Shapiro–Wilk on the "
                    f"differences p={normality_p:.3g} (diagnostic only: differences {shape} at α={alpha:g})")


def sign_flip_test(d: np.ndarray, alternative: str = "two-sided", n_permutations: int = _N_PERMUTATIONS,
                   seed: int = 0) -> tuple[float, float]:
    """``(mean difference, p)`` of the paired permutation test: under H0 each pair's sign is exchangeable.

    scipy's ``permutation_test`` with ``permutation_type="samples"`` (swapping a pair's two values flips
    the difference's sign): exact over all 2^n sign vectors when ``2^n ≤ n_permutations``, otherwise
    ``n_permutations`` random flips, seeded. The two-sided p is twice the smaller one-sided p (scipy).
    """
    d = np.asarray(d, dtype=float)
    zeros = np.zeros_like(d)
    res = st.permutation_test(
        (d, zeros), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
        alternative=alternative, n_resamples=n_permutations, vectorized=True, rng=np.random.default_rng(seed),
    )
    return float(res.statistic), float(min(1.0, res.pvalue))


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
    alternative: str = "greater",
) -> Comparison:
    """The reference paper's test of "a greater than b" (``alternative``), treating the groups as independent.

    Kept for reproducing its tables; for two methods on the same samples :func:`compare_paired` is the
    appropriate (and more powerful) test.
    """
    _check_alternative(alternative)
    _check_options(alpha_normality, n_boot, confidence)
    a_all = _as_1d(a, "a")
    b_all = _as_1d(b, "b")
    a, b = a_all[np.isfinite(a_all)], b_all[np.isfinite(b_all)]
    n_a, n_b = int(a.size), int(b.size)
    dropped = "".join(
        _dropped_note(int(full.size - kept.size), "value", int(kept.size), f" in {name}")
        for name, full, kept in (("a", a_all, a), ("b", b_all, b))
    )
    base = dict(alternative=alternative, n=(n_a, n_b), p_adjusted=math.nan)
    nan_pair = (math.nan, math.nan)

    tol = _tolerance(a, b)
    pooled = np.concatenate([a, b])
    if n_a and n_b and np.ptp(pooled) <= tol:
        return Comparison(
                test=NO_TEST, statistic=math.nan, p_value=1.0, normality_p=nan_pair, normal=False,
                reason=f"identical: all {n_a + n_b} values are {pooled[0]:.4g}{dropped}, nothing to test",
                effect_name=RANK_BISERIAL, effect=0.0, effect_ci=(0.0, 0.0), mean_difference=0.0,
                difference_ci=(0.0, 0.0), **base,
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
        res = st.ttest_ind(a, b, alternative=alternative)
        effect = float(_cohen_d(a[None, :], b[None, :])[0])
        boot = _cohen_d(a[ia], b[ib])
        test, effect_name = STUDENT_T, COHEN_D
        why = f"{shown}: both groups look normal → {STUDENT_T} (paper procedure, unpaired){dropped}"
    else:
        res = st.mannwhitneyu(a, b, alternative=alternative)
        effect = float(_rank_biserial_u(a[None, :], b[None, :])[0])
        boot = _rank_biserial_u(a[ia], b[ib])
        test, effect_name = MANN_WHITNEY, RANK_BISERIAL
        why = f"{shown}: not both normal{constant} → {MANN_WHITNEY} (paper procedure, unpaired){dropped}"
    mean_boot = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    return Comparison(
        test=test, statistic=float(res.statistic), p_value=float(res.pvalue), normality_p=(p_a, p_b),
        normal=normal, reason=why, effect_name=effect_name, effect=effect,
        effect_ci=_percentile_ci(boot, confidence), mean_difference=float(a.mean() - b.mean()),
        difference_ci=_percentile_ci(mean_boot, confidence),
        df=float(n_a + n_b - 2) if normal else math.nan, **base,
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


def normality_of_differences(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Shapiro–Wilk p of the paired differences ``a - b`` (finite pairs), the diagnostic every test table
    reports; NaN with fewer than 3 pairs or zero spread."""
    a, b = _as_1d(a, "a"), _as_1d(b, "b")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    if d.size < 3 or np.ptp(d) <= _tolerance(a[keep], b[keep]):
        return math.nan
    return float(st.shapiro(d).pvalue)


# -- training replicates as the unit ---------------------------------------------------------------


def compare_replicates(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    replicate: Sequence[Hashable],
    sample: Sequence[Hashable],
    alternative: str = "two-sided",
    confidence: float = 0.95,
) -> Comparison:
    """Test "a vs b" with the trained network as the unit: a linear mixed model of the paired differences.

    ``a[i]`` and ``b[i]`` are the two methods on one test sample ``sample[i]`` as scored by the networks of
    training replicate ``replicate[i]`` (a seed × fold: the method's network and the baseline's network of
    that replicate, e.g. both converted from the same seed's ANN). The model is
    ``d = μ + u_network + v_sample + ε`` with crossed random intercepts (statsmodels ``MixedLM``, REML; the
    sample term is left out when no sample is seen by two networks, e.g. one seed over k folds, where it
    cannot be told from ε). μ, the mean difference, is tested with ``t = μ̂ / SE`` on Satterthwaite degrees
    of freedom: ``df = 2·Var(μ̂)² / (∇Var(μ̂)ᵀ · A · ∇Var(μ̂))`` with A the inverse REML information of the
    variance components (as in lmerTest); its CI is ``μ̂ ± t_df · SE``. Fewer than two replicates: no test.
    """
    _check_alternative(alternative)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    a, b = _as_1d(a, "a"), _as_1d(b, "b")
    replicate, sample = list(replicate), list(sample)
    if not (a.size == b.size == len(replicate) == len(sample)):
        raise ValueError(
            f"replicate comparison needs a, b, replicate and sample of one length, got {a.size}, {b.size}, "
            f"{len(replicate)} and {len(sample)}"
        )
    keep = np.isfinite(a) & np.isfinite(b)
    dropped = _dropped_note(int(keep.size - keep.sum()), "pair", int(keep.sum()))
    d = (a - b)[keep]
    networks = [str(r) for r, k in zip(replicate, keep, strict=True) if k]
    samples = [str(s) for s, k in zip(sample, keep, strict=True) if k]
    n, n_networks = int(d.size), len(set(networks))
    base = dict(alternative=alternative, n=n, p_adjusted=math.nan, level=REPLICATE, replicates=n_networks,
                normality_p=math.nan, normal=False, effect_name=MEAN_DIFFERENCE)
    tol = _tolerance(a[keep], b[keep])

    def untested(reason: str, p: float = math.nan, effect: float = math.nan) -> Comparison:
        ci = (effect, effect) if effect == 0.0 else _NAN_CI
        return Comparison(test=NO_TEST, statistic=math.nan, p_value=p, reason=reason, effect=effect, effect_ci=ci,
                          mean_difference=effect, difference_ci=ci, **base)

    if n_networks < 2:
        return untested(f"{n_networks} trained network{'s' if n_networks != 1 else ''}{dropped}: a test with "
                        "training replicates as the unit needs ≥ 2 seeds or folds")
    if n and np.all(np.abs(d) <= tol):
        return untested(f"identical: a equals b on all {n} pairs of the {n_networks} networks{dropped}, "
                        "so there is no difference to test", p=1.0, effect=0.0)
    if n < 3 or np.ptp(d) <= tol:
        return untested(f"{n} pairs with {'no spread' if n >= 3 else 'too few values'}{dropped}: the mixed model "
                        "has no variance to test against")

    frame = pd.DataFrame({"d": d, "network": networks, "sample": samples, "group": 0})
    crossed = bool(frame.groupby("sample")["network"].nunique().max() > 1)
    components = {"network": "0 + C(network)", **({"sample": "0 + C(sample)"} if crossed else {})}
    try:
        import statsmodels.api as sm

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # boundary fits (a variance of 0) warn; the estimate is still REML
            model = sm.MixedLM.from_formula("d ~ 1", data=frame, groups="group", vc_formula=components,
                                            re_formula="0")
            fit = model.fit(reml=True)
        mu = float(fit.fe_params.iloc[0])
        variances = dict(zip(model.exog_vc.names, np.asarray(fit.vcomp, dtype=float), strict=True))
        variances["residual"] = float(fit.scale)
    except (ValueError, np.linalg.LinAlgError) as error:
        return untested(f"the mixed model could not be fitted ({type(error).__name__}: {error}){dropped}")
    designs = {"network": _indicator(networks)}
    if crossed:
        designs["sample"] = _indicator(samples)
    se, df = _satterthwaite(designs, variances, n)
    if not (math.isfinite(se) and se > 0 and math.isfinite(df)):
        return untested(f"the mixed model gave no usable standard error{dropped}")
    df = float(min(max(df, 1.0), n - 1))
    t = mu / se
    p = {"two-sided": 2 * st.t.sf(abs(t), df), "greater": st.t.sf(t, df), "less": st.t.cdf(t, df)}[alternative]
    half = float(st.t.ppf(0.5 + confidence / 2, df)) * se
    spread = ", ".join(f"{name} {np.sqrt(max(value, 0.0)):.3g}" for name, value in variances.items())
    terms = "the trained network and the test sample (crossed)" if crossed else "the trained network"
    why = (f"training replicate as the unit: linear mixed model of the {n} paired differences over "
           f"{n_networks} trained networks (statsmodels MixedLM, REML; random intercepts for {terms}); "
           f"mean difference tested with t on {df:.1f} Satterthwaite df; sd between {spread}{dropped}")
    return Comparison(
        test=MIXED_MODEL, statistic=float(t), p_value=float(p), reason=why, effect=mu, effect_ci=(mu - half, mu + half),
        mean_difference=mu, difference_ci=(mu - half, mu + half), df=df, **base,
    )


def _indicator(labels: Sequence[str]) -> np.ndarray:
    levels = {label: k for k, label in enumerate(dict.fromkeys(labels))}
    z = np.zeros((len(labels), len(levels)))
    z[np.arange(len(labels)), [levels[label] for label in labels]] = 1.0
    return z


def _satterthwaite(designs: dict[str, np.ndarray], variances: dict[str, float], n: int) -> tuple[float, float]:
    """SE of the GLS intercept and its Satterthwaite df at the fitted variance components.

    ``V = Σ_j σ²_j Z_j Z_jᵀ + σ²_ε I``; ``Var(μ̂) = (1ᵀV⁻¹1)⁻¹``; ``∂Var(μ̂)/∂σ²_j = Var(μ̂)²·‖Z_jᵀV⁻¹1‖²``;
    the REML information is ``½ tr(P V_j P V_k) = ½ ‖Z_jᵀ P Z_k‖²_F`` with
    ``P = V⁻¹ − V⁻¹1(1ᵀV⁻¹1)⁻¹1ᵀV⁻¹``.
    """
    zs = [designs[name] for name in designs] + [np.eye(n)]
    sigmas = [max(variances.get(name, 0.0), 0.0) for name in designs] + [max(variances["residual"], 1e-300)]
    v = sum(s * z @ z.T for s, z in zip(sigmas, zs, strict=True))
    v_inv = np.linalg.pinv(v, hermitian=True)
    w = v_inv.sum(axis=1)
    info = float(w.sum())
    if not info > 0:
        return math.nan, math.nan
    var_mu = 1.0 / info
    grad = np.array([var_mu**2 * float(np.sum((z.T @ w) ** 2)) for z in zs])
    p_matrix = v_inv - np.outer(w, w) / info
    pz = [p_matrix @ z for z in zs]
    information = np.array([[0.5 * float(np.sum((zj.T @ pzk) ** 2)) for pzk in pz] for zj in zs])
    denominator = float(grad @ np.linalg.pinv(information, hermitian=True) @ grad)
    df = 2 * var_mu**2 / denominator if denominator > 0 else math.inf
    return math.sqrt(var_mu), df


# -- several comparisons, several methods ----------------------------------------------------------


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values in input order; NaNs stay NaN and do not count as tests."""
    p = np.asarray(p_values, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def adjust(comparisons: Sequence[Comparison], families: Sequence[str] | None = None) -> list[Comparison]:
    """Copies of ``comparisons`` with ``p_adjusted`` Holm-corrected within each family.

    A family holds the comparisons that were actually tested (:attr:`Comparison.tested`); one without a
    test (identical values, too few pairs) keeps ``p_adjusted`` NaN and ``family_size`` 0 and does not
    make the others' correction stricter. ``families`` names each comparison's family (default: one).
    """
    names = list(families) if families is not None else [""] * len(comparisons)
    if len(names) != len(comparisons):
        raise ValueError(f"{len(comparisons)} comparisons but {len(names)} family names")
    out = list(comparisons)
    for family in dict.fromkeys(names):
        members = [k for k, (c, f) in enumerate(zip(comparisons, names, strict=True)) if f == family and c.tested]
        adjusted = holm([comparisons[k].p_value for k in members])
        for k, p in zip(members, adjusted, strict=True):
            out[k] = dataclasses.replace(comparisons[k], p_adjusted=float(p), family=family, family_size=len(members))
    for k, (c, f) in enumerate(zip(comparisons, names, strict=True)):
        if not c.tested:
            out[k] = dataclasses.replace(c, p_adjusted=math.nan, family=f, family_size=0)
    return out


def friedman(*groups: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Friedman test over ≥ 3 methods measured on the same samples; returns ``(statistic, p_value)``.

    ``groups[k][i]`` is method k on sample i. Samples with a NaN/inf in any method are dropped, as in
    :func:`compare_paired`, since the test ranks methods within each sample.
    """
    table = _block_table(groups)
    res = st.friedmanchisquare(*table)
    return float(res.statistic), float(res.pvalue)


def _block_table(groups) -> np.ndarray:
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
    return table


@dataclass(frozen=True)
class Friedman:
    """A Friedman test over k methods on n samples with its post-hoc (all pairs) and mean ranks.

    ``ranks`` are mean ranks with 1 = best (values are oriented so that larger is better before ranking);
    ``pairwise`` the post-hoc p-values (k × k DataFrame, method names on both axes); ``critical_difference``
    the Nemenyi CD of mean ranks at ``alpha`` (Demšar 2006), also given with Conover for the diagram.
    """

    statistic: float
    p_value: float
    n: int
    k: int
    posthoc: str
    ranks: dict[str, float]
    pairwise: pd.DataFrame
    critical_difference: float
    alpha: float = 0.05


def friedman_posthoc(values: Sequence[Sequence[float]] | np.ndarray, names: Sequence[str],
                     higher_is_better: bool = True, posthoc: str = "nemenyi", alpha: float = 0.05) -> Friedman:
    """Friedman test of ``values[k]`` (method k on each sample) with a Nemenyi or Conover post-hoc.

    Post-hoc p-values come from scikit-posthocs (``posthoc_nemenyi_friedman``, or
    ``posthoc_conover_friedman`` with Holm adjustment); samples with a NaN in any method are dropped.
    """
    if posthoc not in POSTHOCS:
        raise ValueError(f"posthoc must be one of {', '.join(POSTHOCS)}, got {posthoc!r}")
    names = [str(name) for name in names]
    table = _block_table(list(values))
    if len(names) != table.shape[0]:
        raise ValueError(f"{table.shape[0]} methods but {len(names)} names")
    oriented = table if higher_is_better else -table
    res = st.friedmanchisquare(*oriented)
    blocks = pd.DataFrame(oriented.T, columns=names)
    import scikit_posthocs as sp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if posthoc == "nemenyi":
            pairwise = sp.posthoc_nemenyi_friedman(blocks)
        else:
            pairwise = sp.posthoc_conover_friedman(blocks, p_adjust="holm")
    ranks = st.rankdata(-oriented, axis=0).mean(axis=1)  # rank 1 = best in each sample
    k, n = table.shape
    q_alpha = float(st.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return Friedman(
        statistic=float(res.statistic), p_value=float(res.pvalue), n=int(n), k=int(k), posthoc=posthoc,
        ranks={name: float(r) for name, r in zip(names, ranks, strict=True)}, pairwise=pairwise,
        critical_difference=q_alpha * math.sqrt(k * (k + 1) / (6 * n)), alpha=alpha,
    )


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


def _check_test(test: str) -> None:
    if test not in PAIRED_TESTS:
        raise ValueError(f"test must be one of {', '.join(PAIRED_TESTS)}; got {test!r}")


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
