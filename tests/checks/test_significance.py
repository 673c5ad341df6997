"""The noise tests every calibrated check shares: quiet on one population, sure on a real difference."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from assurance.checks import significance


def test_adjust_is_benjamini_hochberg_and_leaves_untested_subjects_out():
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.5])
    q = significance.adjust(p)
    assert np.isnan(q[1])
    np.testing.assert_allclose(q[[0, 2, 3, 4]], stats.false_discovery_control([0.01, 0.04, 0.03, 0.5]))
    assert np.isnan(significance.adjust([np.nan])).all()


@pytest.mark.parametrize("rows", [60, 400])
def test_numeric_shift_is_quiet_on_one_population_and_sure_of_a_half_sd_shift(rows):
    rng = np.random.default_rng(rows)
    null = [
        significance.numeric_shift_pvalue(rng.normal(size=rows), rng.normal(size=rows)) for _ in range(300)
    ]
    assert np.mean(np.array(null) < 0.01) <= 0.03
    shifted = significance.numeric_shift_pvalue(rng.normal(size=rows), rng.normal(0.8, 1, size=rows))
    assert shifted < 1e-3


def test_numeric_shift_samples_huge_windows_and_still_sees_a_small_shift():
    rng = np.random.default_rng(0)
    big = rng.normal(size=300_000)
    assert significance.numeric_shift_pvalue(big, rng.normal(0.1, 1, size=300_000)) < 1e-6
    assert np.isnan(significance.numeric_shift_pvalue(np.array([1.0]), big))


def test_category_shift_pools_sparse_categories_and_keeps_its_level():
    rng = np.random.default_rng(1)
    shares = np.r_[np.full(5, 0.15), np.full(15, 0.25 / 15)]
    p = []
    for _ in range(600):
        values = pd.Series(rng.choice(list("abcdefghijklmnopqrst"), 120, p=shares))
        p.append(significance.category_shift_pvalue(values[:60].value_counts(), values[60:].value_counts()))
    assert np.mean(np.array(p) < 0.05) <= 0.08
    ref = pd.Series({"web": 500, "branch": 300, "phone": 200})
    assert significance.category_shift_pvalue(ref, pd.Series({"web": 800, "branch": 120, "phone": 80})) < 1e-9
    assert significance.category_shift_pvalue(pd.Series({"a": 5}), pd.Series({"a": 9})) == 1.0


def test_outside_range_matches_exchangeable_data():
    rng = np.random.default_rng(2)
    p = []
    for _ in range(1500):
        values = rng.normal(size=100)
        ref, cur = values[:50], values[50:]
        p.append(
            significance.outside_range_pvalue(int(((cur < ref.min()) | (cur > ref.max())).sum()), 50, 50)
        )
    assert np.mean(np.array(p) < 0.05) <= 0.06  # exact: at the nominal level
    counts = rng.normal(size=(20_000, 120))
    ref, cur = counts[:, :60], counts[:, 60:]
    outside = ((cur < ref.min(axis=1, keepdims=True)) | (cur > ref.max(axis=1, keepdims=True))).sum(axis=1)
    assert abs(significance.outside_range_pvalue(8, 60, 60) - np.mean(outside >= 8)) < 0.004
    assert significance.outside_range_pvalue(4, 171, 171) > 0.1  # the 4 of 171 is noise
    assert significance.outside_range_pvalue(30, 171, 171) < 1e-6
    assert significance.outside_range_pvalue(0, 10, 10) == 1.0


def test_unseen_rate_and_rate_increase_and_binomial_tails():
    # twelve categories, one common and eleven at 5%: a rare one missing from a 100-row reference
    # brings several current rows with it, and that is chance
    rng = np.random.default_rng(3)
    values = rng.choice(12, 200, p=np.r_[0.45, np.full(11, 0.05)])
    pooled = np.bincount(values)
    assert significance.unseen_pvalue(4, [*pooled, 0], 100, 100) > 0.01
    assert significance.unseen_pvalue(60, [*pooled, 60], 100, 100) < 1e-9
    p = []
    for _ in range(1500):
        split = rng.choice(12, 200, p=np.r_[0.45, np.full(11, 0.05)])
        seen = set(split[:100])
        unseen = int(sum(v not in seen for v in split[100:]))
        p.append(significance.unseen_pvalue(unseen, np.bincount(split), 100, 100))
    assert np.mean(np.array(p) < 0.05) <= 0.05
    assert significance.rate_increase_pvalue(3, 100, 1, 100) > 0.05
    assert significance.rate_increase_pvalue(25, 100, 1, 100) < 1e-5
    # a 43-row slice right 27 times where the model is right 93% of the time is no accident
    assert significance.shortfall_pvalue(27, 43, 0.93) < 1e-6
    assert significance.excess_pvalue(6, 100, 0.05) > 0.3
    assert np.isnan(significance.shortfall_pvalue(0, 0, 0.5))
