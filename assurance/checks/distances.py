"""Distribution distances for drift: Evidently's effect sizes, computed directly with numpy.

Evidently's normed Wasserstein distance (numeric columns) and Jensen-Shannon distance (categories)
are cheap statistics, but Evidently computes much more around them (correlations, histograms,
widgets), which makes a million-row comparison take over a minute. Here the same formulas run on
sorted arrays and category counts. The reference side of a comparison is a `Profile` cached by the
dataset's fingerprint, since a version's reference data does not change between runs.

Tests check these values against Evidently's own `ValueDrift` to floating-point precision.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

NUMERIC = "numeric"
CATEGORICAL = "categorical"
# (kind, Evidently method name) pairs this module computes itself; anything else goes to Evidently.
FAST_METHODS = {(NUMERIC, "wasserstein"), (CATEGORICAL, "jensenshannon")}
# Evidently floors the reference standard deviation at this value before dividing by it.
MIN_NORM = 0.001
_CACHE_SIZE = 512
_CACHE: OrderedDict[tuple[str, str, str], Profile] = OrderedDict()


@dataclass(frozen=True)
class Profile:
    """One side of a comparison: sorted finite values (numeric) or counts per category."""

    kind: str
    rows: int
    values: np.ndarray | None = None
    counts: pd.Series | None = None

    def summary(self) -> str:
        """A short human description for the evidence table and the report."""
        if self.rows == 0:
            return "no values"
        if self.kind == NUMERIC:
            v = self.values
            return f"mean {v.mean():.4g}, sd {v.std():.4g}, median {v[v.size // 2]:.4g}, n {self.rows}"
        shares = (self.counts / self.rows).sort_values(ascending=False)
        top = ", ".join(f"{k}: {s:.1%}" for k, s in shares.head(3).items())
        more = len(shares[shares > 0]) - 3
        return top + (f" (+{more} more)" if more > 0 else "") + f", n {self.rows}"


def profile(series: pd.Series, kind: str) -> Profile:
    """The profile of one column; missing and infinite values are dropped, as Evidently does."""
    if kind == NUMERIC:
        values = series.to_numpy(dtype=float, na_value=np.nan)
        values = np.sort(values[np.isfinite(values)])
        return Profile(kind, int(values.size), values=values)
    counts = series.value_counts(dropna=True)
    counts = counts[counts > 0]
    return Profile(kind, int(counts.sum()), counts=counts)


def reference_profile(series: pd.Series, kind: str, fingerprint: str | None) -> Profile:
    """`profile`, memoised per (dataset fingerprint, column, kind) when the dataset has a fingerprint."""
    if not fingerprint:
        return profile(series, kind)
    key = (fingerprint, str(series.name), kind)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    result = _CACHE[key] = profile(series, kind)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return result


def wasserstein_normed(reference: Profile, current: Profile) -> float:
    """First Wasserstein distance divided by the reference standard deviation (Evidently's "wasserstein").

    The integral of |F_ref - F_cur| between consecutive values of the merged sample, as scipy computes
    it; both sides are already sorted, so they are merged in linear time instead of sorted again.
    Within a run of tied values the steps have zero width, so only each run's last count matters.
    """
    u, v = reference.values, current.values
    at = np.arange(u.size) + np.searchsorted(v, u, "right")  # where each reference value lands
    from_u = np.zeros(u.size + v.size, dtype=bool)
    from_u[at] = True
    merged = np.empty(u.size + v.size)
    merged[at], merged[~from_u] = u, v
    u_cdf = np.cumsum(from_u)[:-1]
    v_cdf = np.arange(1, merged.size) - u_cdf
    distance = float(np.dot(np.abs(u_cdf / u.size - v_cdf / v.size), np.diff(merged)))
    return distance / max(float(u.std()), MIN_NORM)


def jensenshannon(reference: Profile, current: Profile) -> float:
    """Jensen-Shannon distance (natural log) between category shares (Evidently's "jensenshannon")."""
    from scipy.spatial import distance

    keys = reference.counts.index.union(current.counts.index)
    p = reference.counts.reindex(keys, fill_value=0).to_numpy(dtype=float) / reference.rows
    q = current.counts.reindex(keys, fill_value=0).to_numpy(dtype=float) / current.rows
    return float(distance.jensenshannon(p, q))


def statistic(method: str, reference: Profile, current: Profile) -> float:
    """The distance `method` between two profiles of the same kind."""
    if (reference.kind, method) not in FAST_METHODS:
        raise ValueError(f"method {method!r} is not computed here for {reference.kind} columns")
    return (
        wasserstein_normed(reference, current)
        if method == "wasserstein"
        else jensenshannon(reference, current)
    )
