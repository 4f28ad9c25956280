import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as st

from bench_suite.results.stats import (
    COHEN_D,
    COHEN_DZ,
    MANN_WHITNEY,
    NO_TEST,
    PAIRED_T,
    RANK_BISERIAL,
    STUDENT_T,
    WILCOXON,
    Comparison,
    adjust,
    compare_paired,
    compare_unpaired_paper,
    friedman,
    holm,
    significance_mark,
)

# Forces the rank-test path regardless of the data, so hand-computed rank effects can be checked on tiny
# arrays whose Shapiro p would otherwise be large.
ALWAYS_NONNORMAL = 0.9999


def normal_pair(n=40, seed=1):
    # seed 1 gives Shapiro p ≈ 0.25 on these differences: clearly on the normal side of 0.05
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.6, 0.8, n)
    return b + 0.02 + 0.05 * rng.normal(0, 1, n), b


def skewed_pair(n=60, seed=2):
    # exponential differences: Shapiro p ≈ 1e-5
    rng = np.random.default_rng(seed)
    b = rng.uniform(20, 30, n)
    return b + rng.exponential(1.0, n), b


# -- paired: test choice and agreement with scipy --------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_normal_differences_give_ttest_rel(alternative):
    a, b = normal_pair()
    c = compare_paired(a, b, alternative=alternative)
    ref = st.ttest_rel(a, b, alternative=alternative)
    assert c.test == PAIRED_T and c.normal
    assert c.normality_p == pytest.approx(st.shapiro(a - b).pvalue)
    assert c.statistic == pytest.approx(ref.statistic)
    assert c.p_value == pytest.approx(ref.pvalue)
    assert c.alternative == alternative and c.n == 40
    assert c.effect_name == COHEN_DZ
    d = a - b
    assert c.effect == pytest.approx(d.mean() / d.std(ddof=1))
    assert "≥ 0.05" in c.reason and PAIRED_T in c.reason
    assert math.isnan(c.p_adjusted)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_skewed_differences_give_wilcoxon(alternative):
    a, b = skewed_pair()
    c = compare_paired(a, b, alternative=alternative)
    ref = st.wilcoxon(a, b, alternative=alternative)
    assert c.test == WILCOXON and not c.normal
    assert c.normality_p < 0.05
    assert c.statistic == pytest.approx(ref.statistic)
    assert c.p_value == pytest.approx(ref.pvalue)
    assert c.effect_name == RANK_BISERIAL
    assert c.effect == pytest.approx(1.0)  # every difference is positive
    assert "< 0.05" in c.reason and WILCOXON in c.reason


def test_choice_follows_the_normality_threshold():
    a, b = normal_pair()
    p = st.shapiro(a - b).pvalue
    assert compare_paired(a, b, alpha_normality=p / 2).test == PAIRED_T
    strict = compare_paired(a, b, alpha_normality=min(0.99, p * 2))
    assert strict.test == WILCOXON and not strict.normal


def test_cohens_dz_by_hand():
    # d = [1, 2, 3, 4, 5]: mean 3, sd = sqrt(10/4) → d_z = 3 / sqrt(2.5)
    b = np.full(5, 10.0)
    c = compare_paired(b + np.arange(1.0, 6.0), b)
    assert c.test == PAIRED_T
    assert c.effect == pytest.approx(3 / math.sqrt(2.5))


def test_matched_pairs_rank_biserial_by_hand():
    # d = [1, -1, 3, 4, 0]: the zero is dropped; |d| ranks 1.5, 1.5, 3, 4 → R+ = 8.5, R- = 1.5, r = 7/10
    b = np.array([5.0, 5.0, 5.0, 5.0, 5.0])
    a = b + np.array([1.0, -1.0, 3.0, 4.0, 0.0])
    c = compare_paired(a, b, alpha_normality=ALWAYS_NONNORMAL)
    assert c.test == WILCOXON
    assert c.effect == pytest.approx(0.7)
    assert c.statistic == pytest.approx(st.wilcoxon(a, b).statistic)
    flipped = compare_paired(b, a, alpha_normality=ALWAYS_NONNORMAL)
    assert flipped.effect == pytest.approx(-0.7)


# -- bootstrap -------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", [normal_pair, skewed_pair])
def test_bootstrap_ci_is_seeded_and_contains_the_estimate(pair):
    a, b = pair()
    first = compare_paired(a, b, seed=7, n_boot=500)
    again = compare_paired(a, b, seed=7, n_boot=500)
    other = compare_paired(a, b, seed=8, n_boot=500)
    assert first.effect_ci == again.effect_ci
    low, high = first.effect_ci
    assert low <= first.effect <= high
    assert low < high or first.effect_name == RANK_BISERIAL  # all-positive differences: r is 1 in every resample
    if first.test == PAIRED_T:
        assert other.effect_ci != first.effect_ci


def test_bootstrap_ci_width_follows_confidence():
    a, b = normal_pair()
    wide = compare_paired(a, b, n_boot=500, confidence=0.99).effect_ci
    narrow = compare_paired(a, b, n_boot=500, confidence=0.5).effect_ci
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_no_bootstrap_gives_nan_ci():
    a, b = normal_pair()
    c = compare_paired(a, b, n_boot=0)
    assert all(math.isnan(x) for x in c.effect_ci)
    assert not math.isnan(c.effect)


# -- paired: degenerate inputs ---------------------------------------------------------------------


def test_fewer_than_three_pairs_is_not_tested():
    c = compare_paired([0.8, 0.9], [0.7, 0.75])
    assert c.test == NO_TEST and c.n == 2
    assert math.isnan(c.p_value) and math.isnan(c.statistic)
    assert "n ≥ 3" in c.reason


def test_identical_inputs_give_p_one():
    x = np.array([0.7, 0.8, 0.9, 0.75])
    c = compare_paired(x, x.copy())
    assert c.test == NO_TEST and c.p_value == 1.0
    assert c.reason.startswith("identical")
    assert c.effect == 0.0 and c.effect_ci == (0.0, 0.0)
    assert compare_paired([0.5], [0.5]).p_value == 1.0


def test_constant_nonzero_differences_use_the_rank_test():
    b = np.linspace(0.5, 0.9, 8)
    c = compare_paired(b + 0.1, b, alternative="greater")
    assert c.test == WILCOXON and not c.normal and math.isnan(c.normality_p)
    assert c.p_value == pytest.approx(st.wilcoxon(np.full(8, 0.1), alternative="greater").pvalue)
    assert c.effect == pytest.approx(1.0)


def test_nan_pairs_are_dropped_and_reported():
    a, b = normal_pair()
    a_nan, b_nan = a.copy(), b.copy()
    a_nan[3] = np.nan
    b_nan[10] = np.nan
    b_nan[11] = np.inf
    c = compare_paired(a_nan, b_nan)
    keep = np.ones(a.size, bool)
    keep[[3, 10, 11]] = False
    clean = compare_paired(a[keep], b[keep])
    assert c.n == a.size - 3
    assert "3 pairs with NaN/inf dropped" in c.reason
    assert c.p_value == pytest.approx(clean.p_value)
    assert c.effect_ci == clean.effect_ci


def test_all_nan_is_not_tested():
    c = compare_paired([np.nan, 1.0], [1.0, np.nan])
    assert c.n == 0 and math.isnan(c.p_value) and c.test == NO_TEST


@pytest.mark.parametrize(
    "a, b, kwargs, message",
    [
        ([1, 2, 3], [1, 2], {}, "3 values in a and 2 in b"),
        ([1, 2, 3], [1, 2, 4], {"alternative": "bigger"}, "alternative"),
        ([[1, 2], [3, 4]], [[1, 2], [3, 4]], {}, "1-D"),
        ([1, 2, 3], [1, 2, 4], {"alpha_normality": 0}, "alpha_normality"),
    ],
)
def test_paired_input_errors(a, b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare_paired(a, b, **kwargs)


# -- unpaired (paper procedure) --------------------------------------------------------------------


def test_paper_procedure_normal_groups_equal_ttest_ind_greater():
    rng = np.random.default_rng(5)  # Shapiro p ≈ 0.72 and 0.39
    a, b = rng.normal(0.80, 0.03, 30), rng.normal(0.77, 0.03, 25)
    c = compare_unpaired_paper(a, b)
    ref = st.ttest_ind(a, b, alternative="greater")
    assert c.test == STUDENT_T and c.normal and c.alternative == "greater"
    assert c.n == (30, 25)
    assert c.normality_p == pytest.approx((st.shapiro(a).pvalue, st.shapiro(b).pvalue))
    assert c.statistic == pytest.approx(ref.statistic)
    assert c.p_value == pytest.approx(ref.pvalue)
    assert c.effect_name == COHEN_D


def test_paper_procedure_skewed_group_equals_mannwhitneyu_greater():
    rng = np.random.default_rng(4)  # Shapiro p of a ≈ 6e-6
    a, b = rng.exponential(1.0, 40) + 0.3, rng.normal(1.0, 0.2, 35)
    c = compare_unpaired_paper(a, b)
    ref = st.mannwhitneyu(a, b, alternative="greater")
    assert c.test == MANN_WHITNEY and not c.normal
    assert c.statistic == pytest.approx(ref.statistic)
    assert c.p_value == pytest.approx(ref.pvalue)
    assert c.effect == pytest.approx(2 * ref.statistic / (40 * 35) - 1)
    low, high = c.effect_ci
    assert low <= c.effect <= high


def test_pooled_cohens_d_by_hand():
    # var a = 2.5, var b = 1; pooled = (4·2.5 + 2·1)/6 = 2; d = (3 − 1)/√2
    c = compare_unpaired_paper([1.0, 2, 3, 4, 5], [0.0, 1, 2])
    assert c.test == STUDENT_T
    assert c.effect == pytest.approx(2 / math.sqrt(2))


def test_rank_biserial_from_u_by_hand():
    # a > b pairs: 3 beats 1, 2 (not 3.5); 4 and 5 beat all three → U = 8, r = 2·8/9 − 1 = 7/9
    c = compare_unpaired_paper([3.0, 4, 5], [1.0, 2, 3.5], alpha_normality=ALWAYS_NONNORMAL)
    assert c.test == MANN_WHITNEY
    assert c.statistic == pytest.approx(8)
    assert c.effect == pytest.approx(7 / 9)


def test_paper_procedure_degenerate_inputs():
    small = compare_unpaired_paper([1.0, 2.0], [0.5, 1.0, 1.5, np.nan])
    assert small.test == NO_TEST and math.isnan(small.p_value) and small.n == (2, 3)
    assert "1 value in b with NaN/inf dropped" in small.reason
    same = compare_unpaired_paper([0.5] * 4, [0.5] * 5)
    assert same.p_value == 1.0 and same.reason.startswith("identical")
    constant = compare_unpaired_paper([0.9] * 5, [0.1, 0.2, 0.3, 0.4, 0.5])
    assert constant.test == MANN_WHITNEY and math.isnan(constant.normality_p[0])


# -- Holm, adjust, Friedman, marks -----------------------------------------------------------------


def test_holm_known_vector():
    # sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_leaves_nan_out_of_the_family():
    np.testing.assert_allclose(holm([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04])
    assert holm([]).size == 0
    assert np.isnan(holm([np.nan])).all()


def test_adjust_fills_p_adjusted():
    a, b = normal_pair()
    s, t = skewed_pair()
    comparisons = [compare_paired(a, b), compare_paired(s, t), compare_paired([1.0, 2], [2.0, 3])]
    adjusted = adjust(comparisons)
    expected = holm([c.p_value for c in comparisons])
    np.testing.assert_allclose([c.p_adjusted for c in adjusted], expected)
    assert all(math.isnan(c.p_adjusted) for c in comparisons)  # originals untouched
    assert dataclasses.replace(adjusted[0], p_adjusted=math.nan) == comparisons[0]
    assert isinstance(adjusted[0], Comparison)


def test_friedman_equals_scipy_and_validates():
    rng = np.random.default_rng(5)
    base = rng.uniform(0.6, 0.8, 15)
    groups = [base, base + 0.02 + 0.01 * rng.normal(size=15), base - 0.01 + 0.01 * rng.normal(size=15)]
    ref = st.friedmanchisquare(*groups)
    assert friedman(*groups) == pytest.approx((ref.statistic, ref.pvalue))
    with_nan = [np.append(g, np.nan if k == 1 else 0.5) for k, g in enumerate(groups)]
    assert friedman(*with_nan) == pytest.approx((ref.statistic, ref.pvalue))
    with pytest.raises(ValueError, match="at least 3"):
        friedman(groups[0], groups[1])
    with pytest.raises(ValueError, match="same samples"):
        friedman(groups[0], groups[1], groups[2][:-1])


@pytest.mark.parametrize(
    "p, mark",
    [(0.0009, "***"), (0.001, "**"), (0.0099, "**"), (0.01, "*"), (0.049, "*"), (0.05, ""), (0.5, ""),
     (math.nan, ""), (None, "")],
)
def test_significance_mark(p, mark):
    assert significance_mark(p) == mark
