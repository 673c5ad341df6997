"""Drift: how far current data, model outputs and labels moved from reference, per column.

A column drifts when two things hold together (DESIGN, "How a check decides"). The move is material:
its effect size reaches the policy's threshold (the normed Wasserstein distance for numbers, about "how
many reference standard deviations did the distribution move", and the Jensen-Shannon distance for
categories; Evidently's own methods, through the drift tests Evidently's `ValueDrift` runs on small data
and the identical numpy formulas of `distances` on large data). And the move is beyond sampling noise: a Cramér-von Mises
test (numbers) or a chi-square test (categories) says two samples of one population would rarely differ
so much, with Benjamini-Hochberg over every column of the run. The effect size alone flags most columns
of two healthy 150-row windows; the test alone flags trivia at a million rows. The table keeps both
numbers and the sizes on each side, so a reviewer sees why a column fired or stayed quiet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from assurance.checks import distances, significance
from assurance.checks.distances import CATEGORICAL, NUMERIC
from assurance.checks.rows import feature_columns
from assurance.domain.checks import CheckSpec
from assurance.domain.findings import Finding
from assurance.domain.values import Inputs, Section
from assurance.reporting.markdown import table

if TYPE_CHECKING:
    from assurance.policy.model import Policy

EVIDENCE = "drift.parquet"
TABLE_COLUMNS = [
    "role",
    "column",
    "kind",
    "method",
    "statistic",
    "threshold",
    "p_value",
    "q_value",
    "n_reference",
    "n_current",
    "material",
    "drifted",
    "engine",
    "reference_summary",
    "current_summary",
]
SHOWN_ROWS = 30
MAX_DISTRIBUTIONS = 8

FEATURE = CheckSpec(
    "drift.feature",
    "drift",
    "A feature's distribution moved from reference to current beyond the policy's effect-size threshold "
    "and beyond sampling noise.",
    "medium",
)
DATASET = CheckSpec(
    "drift.dataset", "drift", "More than the policy's share of the model's features drifted at once.", "high"
)
PREDICTION = CheckSpec(
    "drift.prediction",
    "drift",
    "The model's score (or predicted value/class) distribution moved from reference to current.",
    "medium",
)
LABEL = CheckSpec(
    "drift.label",
    "drift",
    "The label distribution moved from reference to current (both labelled).",
    "medium",
)
CHECKS: tuple[CheckSpec, ...] = (FEATURE, DATASET, PREDICTION, LABEL)
BY_ROLE = {"feature": FEATURE, "prediction": PREDICTION, "label": LABEL}


@dataclass(frozen=True)
class ColumnSpec:
    """How one column is compared: its role (feature, prediction, label), kind, method and threshold."""

    role: str
    column: str
    kind: str
    method: str
    threshold: float


def column_kind(values: pd.Series, max_distinct: int) -> str | None:
    """Numeric or categorical, or None for types drift does not compare (dates, lists).

    Numbers with few distinct values (flags, ratings, counts) are compared as categories, as
    Evidently does, since a distance in standard deviations means little for them.
    """
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_timedelta64_dtype(values):
        return None
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return CATEGORICAL
    return CATEGORICAL if values.nunique(dropna=True) <= max_distinct else NUMERIC


def column_specs(frame: pd.DataFrame, columns: list[str], role: str, policy: Policy) -> list[ColumnSpec]:
    """The comparison for each column of `frame` drift can compare, methods and thresholds from the policy."""
    limits = policy.thresholds.drift
    methods = {
        NUMERIC: (limits.numeric_method, limits.numeric_threshold),
        CATEGORICAL: (limits.categorical_method, limits.categorical_threshold),
    }
    specs = []
    for column in columns:
        kind = column_kind(frame[column], limits.categorical_max_distinct)
        if kind is not None:
            method, threshold = methods[kind]
            specs.append(ColumnSpec(role, column, kind, method, float(threshold)))
    return specs


def choose_engine(specs: list[ColumnSpec], rows: int, policy: Policy) -> str:
    """ "evidently" or "numpy": the policy's choice; with "auto", Evidently on small data or for methods
    numpy does not implement, numpy otherwise."""
    limits = policy.thresholds.drift
    if any((s.kind, s.method) not in distances.FAST_METHODS for s in specs):
        return "evidently"
    if limits.engine == "auto":
        return "evidently" if rows <= limits.evidently_max_rows else "numpy"
    return limits.engine


def measure(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    specs: list[ColumnSpec],
    engine: str,
    fingerprint: str | None = None,
) -> pd.DataFrame:
    """The drift table: one row per spec with its effect size against the threshold (`material`), the
    p-value of the noise test, the sizes and both sides' summaries. `judge` adds q-values and verdicts
    once every column of the run is measured, since they form one family of tests.

    A column empty on either side gets no statistic and no verdict (data quality reports why).
    """
    rows = []
    for spec in specs:  # one column's profiles at a time, so memory stays at one column of current data
        try:
            ref = distances.reference_profile(reference[spec.column], spec.kind, fingerprint)
            cur = distances.profile(current[spec.column], spec.kind)
        except (TypeError, ValueError) as exc:  # e.g. text in current where reference had numbers
            rows.append(_incomparable(spec, f"not comparable: {type(exc).__name__}"))
            continue
        comparable = bool(ref.rows and cur.rows)
        value = distances.statistic(spec.method, ref, cur) if comparable and engine == "numpy" else np.nan
        rows.append(
            {
                "role": spec.role,
                "column": spec.column,
                "kind": spec.kind,
                "method": spec.method,
                "statistic": float(value),
                "threshold": spec.threshold,
                "p_value": noise_pvalue(ref, cur) if comparable else np.nan,
                "q_value": np.nan,
                "n_reference": ref.rows,
                "n_current": cur.rows,
                "material": bool(value >= spec.threshold),
                "drifted": False,
                "engine": engine if comparable else "",
                "reference_summary": ref.summary(),
                "current_summary": cur.summary(),
            }
        )
    if engine == "evidently":
        try:
            results = _evidently_results(
                reference, current, [s for s, r in zip(specs, rows, strict=True) if r["engine"]]
            )
        except Exception as exc:  # noqa: BLE001 - Evidently failing on odd data must not fail the run
            if all((s.kind, s.method) in distances.FAST_METHODS for s in specs):
                return measure(reference, current, specs, "numpy", fingerprint)  # same formulas
            results = {}
            for row in rows:
                row["engine"] = f"evidently failed: {type(exc).__name__}"
        for row in rows:
            row["statistic"] = results.get(row["column"], np.nan)
            row["material"] = bool(row["statistic"] >= row["threshold"])
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def noise_pvalue(reference: distances.Profile, current: distances.Profile) -> float:
    """How likely two samples of one population differ this much, by the test that suits the column."""
    if reference.kind == NUMERIC:
        return significance.numeric_shift_pvalue(reference.values, current.values)
    return significance.category_shift_pvalue(reference.counts, current.counts)


def judge(table_: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Verdicts for one run's columns: material and significant after Benjamini-Hochberg over all of them."""
    out = table_.copy()
    out["q_value"] = significance.adjust(out["p_value"].to_numpy(dtype=float))
    out["drifted"] = out["material"].astype(bool) & (out["q_value"] <= alpha)
    return out


def _incomparable(spec: ColumnSpec, why: str) -> dict:
    """The table row of a column whose values cannot be compared (the schema checks say more)."""
    return {
        **{c: "" for c in TABLE_COLUMNS},
        "role": spec.role,
        "column": spec.column,
        "kind": spec.kind,
        "method": spec.method,
        "statistic": np.nan,
        "threshold": spec.threshold,
        "p_value": np.nan,
        "q_value": np.nan,
        "n_reference": 0,
        "n_current": 0,
        "material": False,
        "drifted": False,
        "current_summary": why,
    }


def _evidently_results(
    reference: pd.DataFrame, current: pd.DataFrame, specs: list[ColumnSpec]
) -> dict[str, float]:
    """The statistic per column from Evidently's own drift test, as its per-column `ValueDrift` computes it:
    infinities and missing values dropped, the test looked up by method name for the declared column type
    (declared, not inferred, so Evidently compares each column as this module decided).

    The test is called directly rather than through a `Report` of `ValueDrift`s: the report also draws two
    plotly charts per column, four fifths of its time, that nothing here reads."""
    if not specs:
        return {}
    from evidently import ColumnType
    from evidently.legacy.calculations.stattests import get_stattest

    kinds = {NUMERIC: ColumnType.Numerical, CATEGORICAL: ColumnType.Categorical}
    results = {}
    for spec in specs:
        ref, cur = (_present(frame[spec.column], spec) for frame in (reference, current))
        test = get_stattest(ref, cur, kinds[spec.kind], spec.method)
        results[spec.column] = float(test(ref, cur, kinds[spec.kind], spec.threshold).drift_score)
    return results


def _present(values: pd.Series, spec: ColumnSpec) -> pd.Series:
    """The values Evidently's `ValueDrift` tests: without infinities and missing values, and refused (as
    it refuses them) when none are left or a numeric column holds something else."""
    values = values.replace([-np.inf, np.inf], np.nan).dropna()
    if values.empty:
        raise ValueError(f"column {spec.column!r} has no values to compare")
    if spec.kind == NUMERIC and not pd.api.types.is_numeric_dtype(values):
        raise ValueError(f"numeric column {spec.column!r} holds values that are not numbers")
    return values


def _output_frames(inputs: Inputs) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Reference and current model outputs (score when there is one, else prediction), or None."""
    predictions = inputs.predictions
    if predictions is None or not predictions.reference.ok or not predictions.current.ok:
        return None
    ref, cur = predictions.reference.frame, predictions.current.frame
    column = "score" if "score" in ref.columns and "score" in cur.columns else "prediction"
    return ref[[column]].reset_index(drop=True), cur[[column]].reset_index(drop=True)


def _findings(table_: pd.DataFrame, share: float, share_threshold: float, policy: Policy) -> list[Finding]:
    findings = []
    what = {"feature": "Feature", "prediction": "Model output", "label": "Label"}
    for row in table_[table_["drifted"]].itertuples(index=False):
        check = BY_ROLE[row.role]
        findings.append(
            check.finding(
                row.column,
                policy.severity(check),
                f"{what[row.role]} '{row.column}' drifted ({row.method} {row.statistic:.3g} >= {row.threshold:g}, "
                f"beyond sampling noise at q = {row.q_value:.2g}): reference {row.reference_summary}; current "
                f"{row.current_summary}. Check the upstream source and whether the model still fits this population.",
                observed=float(row.statistic),
                threshold=float(row.threshold),
                evidence=EVIDENCE,
            )
        )
    if share > share_threshold:
        findings.append(
            DATASET.finding(
                "dataset",
                policy.severity(DATASET),
                f"{share:.0%} of the model's features drifted (policy allows {share_threshold:.0%}): the current "
                "population differs broadly from the reference; revalidate or retrain on recent data.",
                observed=share,
                threshold=share_threshold,
                evidence=EVIDENCE,
            )
        )
    return findings


def _summary(
    table_: pd.DataFrame,
    share: float,
    share_threshold: float,
    engine: str,
    plotted: set[str],
    distributions: dict[str, str],
) -> str:
    features = table_[table_["role"] == "feature"]
    drifted = features[features["drifted"]]
    lines = [
        f"**{len(drifted)} of {len(features)} features drifted** (share {share:.1%}; dataset drift above "
        f"{share_threshold:.0%})"
        + (": " + ", ".join(f"`{c}`" for c in drifted["column"]) if len(drifted) else ".")
    ]
    for role, name in (("prediction", "Model output"), ("label", "Label")):
        for row in table_[table_["role"] == role].itertuples(index=False):
            verdict = "drifted" if row.drifted else "stable"
            lines.append(
                f"{name} `{row.column}`: {verdict} ({row.method} {row.statistic:.3g}, threshold {row.threshold:g})."
            )
    how = "Evidently's ValueDrift" if engine == "evidently" else "numpy, with Evidently's formulas"
    lines.append(
        "Methods: normed Wasserstein distance (numeric; about the shift in reference standard deviations) and "
        f"Jensen-Shannon distance (categorical), computed by {how}. A column drifts when its statistic reaches "
        "its threshold (material) and a Cramér-von Mises (numeric) or chi-square (categorical) test puts the "
        "move beyond sampling noise (Benjamini-Hochberg q-value at or below the policy's alpha over all columns)."
    )
    ranked = table_.assign(_r=table_["statistic"] / table_["threshold"]).sort_values("_r", ascending=False)
    shown = ranked.drop(columns=["_r", "engine"]).head(SHOWN_ROWS)
    more = f"\n\n{len(ranked) - SHOWN_ROWS} more rows are in {EVIDENCE}." if len(ranked) > SHOWN_ROWS else ""
    if "drift_by_feature" in plotted:
        lines.append("![drift_by_feature](plots/drift_by_feature.png)")
    if distributions:
        lines.append("Reference vs current for the most drifted features:")
        lines += [f"![{_alt(column)}](plots/{name}.png)" for name, column in distributions.items()]
    return "\n\n".join(lines) + "\n\n" + table(shown) + more


def _alt(column: object) -> str:
    """A column name as image alt text: the characters that would end Markdown's `![...]` removed."""
    return re.sub(r"[\[\]\\\r\n]", " ", f"distribution of {column}")


def drifted_columns(table_: pd.DataFrame, limit: int = MAX_DISTRIBUTIONS) -> pd.DataFrame:
    """The drifted features, furthest over their threshold first (at most `limit`)."""
    drifted = table_[(table_["role"] == "feature") & table_["drifted"].astype(bool)]
    ratio = drifted["statistic"] / drifted["threshold"]
    return drifted.assign(_ratio=ratio).sort_values("_ratio", ascending=False, kind="stable").head(limit)


def _distribution_plots(table_: pd.DataFrame, inputs: Inputs) -> dict[str, tuple[str, bytes]]:
    """Reference vs current of the most drifted features, by plot name: overlaid histograms for
    numbers, paired bars of category shares for categories. Plot names are numbered, never built from
    column names (which may hold any character)."""
    from assurance.reporting import plots

    ref, cur = inputs.reference, inputs.current
    out = {}
    for i, row in enumerate(drifted_columns(table_).itertuples(index=False), start=1):
        before = distances.reference_profile(ref.frame[row.column], row.kind, ref.fingerprint)
        after = distances.profile(cur.frame[row.column], row.kind)
        title = f"{row.column}: reference vs current"
        if row.kind == NUMERIC:
            png = plots.histograms(
                {"reference": before.values, "current": after.values}, title, str(row.column)
            )
        else:
            png = plots.category_pairs(
                {"reference": before.counts.to_dict(), "current": after.counts.to_dict()},
                title,
                str(row.column),
            )
        out[f"drift_distribution_{i}"] = (str(row.column), png)
    return out


def _plots(table_: pd.DataFrame, outputs: tuple[pd.DataFrame, pd.DataFrame] | None) -> dict[str, bytes]:
    from assurance.reporting import plots

    features = table_[(table_["role"] == "feature") & table_["statistic"].notna()]
    result = {}
    if len(features):
        result["drift_by_feature"] = plots.threshold_bars(
            labels=features["column"].astype(str).tolist(),
            values=features["statistic"].to_numpy(),
            thresholds=features["threshold"].to_numpy(),
            title="Drift per feature (statistic vs threshold)",
        )
    if outputs is not None and pd.api.types.is_numeric_dtype(outputs[0].iloc[:, 0]):
        column = outputs[0].columns[0]
        result["score_distribution"] = plots.histograms(
            {"reference": outputs[0][column].to_numpy(), "current": outputs[1][column].to_numpy()},
            title=f"Model {column} distribution",
            xlabel=column,
        )
    return result


def compare(inputs: Inputs, section: Section) -> tuple[pd.DataFrame, str]:
    """The judged drift table of a run (features, model outputs, label) and the engine that measured
    it; what could not be compared is noted on `section`. Both datasets must be usable."""
    ref, cur, policy = inputs.reference, inputs.current, inputs.policy
    features = [c for c in feature_columns(inputs, ref.frame) if c != ref.label]
    absent = [c for c in features if c not in cur.frame.columns]
    if absent:
        section.skip(f"features absent from current data are not compared: {', '.join(map(str, absent))}")
    specs = column_specs(ref.frame, [c for c in features if c in cur.frame.columns], "feature", policy)
    uncompared = set(features) - set(absent) - {s.column for s in specs}
    if uncompared:
        section.skip(f"columns of types drift does not compare: {', '.join(map(str, sorted(uncompared)))}")
    engine = choose_engine(specs, ref.rows + cur.rows, policy)
    parts = [measure(ref.frame, cur.frame, specs, engine, ref.fingerprint)]
    outputs = _output_frames(inputs)
    if outputs is None:
        section.skip("prediction drift needs the model's outputs on both datasets")
    else:
        parts.append(
            measure(
                *outputs, column_specs(outputs[0], list(outputs[0].columns), "prediction", policy), engine
            )
        )
    if ref.has_label and cur.has_label and cur.frame[cur.label].notna().any():
        labels = ref.frame[[ref.label]], cur.frame[[cur.label]].rename(columns={cur.label: ref.label})
        parts.append(measure(*labels, column_specs(labels[0], [ref.label], "label", policy), engine))
    else:
        section.skip("label drift needs labels in both reference and current data")
    table_ = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    return judge(table_, policy.thresholds.drift.alpha), engine


def run(inputs: Inputs) -> Section:
    """Feature, prediction and label drift of current vs reference, with findings, table and plots."""
    section = Section(key="drift", title="Drift")
    ref, cur, policy = inputs.reference, inputs.current, inputs.policy
    if ref is None or cur is None or not ref.ok or not cur.ok:
        return section.skip("drift needs both reference and current data")
    result, engine = compare(inputs, section)
    feature_rows = result[result["role"] == "feature"]
    share = float(feature_rows["drifted"].mean()) if len(feature_rows) else 0.0
    share_threshold = policy.thresholds.drift.share_threshold
    section.findings = _findings(result, share, share_threshold, policy)
    section.tables["drift"] = result
    figures = _plots(result, _output_frames(inputs))
    distributions = _distribution_plots(result, inputs)
    section.plots = figures | {name: png for name, (_, png) in distributions.items()}
    section.summary = _summary(
        result, share, share_threshold, engine, set(figures), {n: c for n, (c, _) in distributions.items()}
    )
    section.metrics = _metrics(result, share)
    return section


def _metrics(table_: pd.DataFrame, share: float) -> dict[str, float]:
    features = table_[table_["role"] == "feature"]
    metrics = {"drift_share": share, "drifted_features": float(features["drifted"].sum())}
    if features["statistic"].notna().any():
        metrics["max_drift_ratio"] = float((features["statistic"] / features["threshold"]).max())
    for role in ("prediction", "label"):
        rows = table_[table_["role"] == role]
        if len(rows):
            metrics[f"{role}_drift"] = float(rows["statistic"].iloc[0])
    return metrics
