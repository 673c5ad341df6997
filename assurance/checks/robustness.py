"""Robustness: how much do predictions move when one input is disturbed a little?

On a seeded sample, each feature in turn gets small numeric noise (a policy fraction of its standard
deviation), missing values, or its categories swapped for the most frequent one; the model rescores
and we measure, over the rows that changed, the share of flipped predictions and the mean absolute
change in score (P(positive) for binary models, the prediction in units of its standard deviation for
regressors). Only the perturbations the policy judges (small noise by default: a large, deliberate
change to an important feature should move predictions) can raise a finding, and only when the flip
rate or score change passes its limit beyond the noise of a finite sample: an exact binomial test of
the flips against the limit rate, a one-sided t-test of the score changes against the limit, with
Benjamini-Hochberg over the judged perturbations. Three flips in fifty rows is not a fragile model.
A model that cannot score a missing value is recorded, and is a finding only if the policy says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from assurance.checks import significance
from assurance.checks.rows import CLASSIFICATION, describe_error, feature_columns, is_categorical, sample
from assurance.domain.checks import CheckSpec
from assurance.domain.findings import Finding
from assurance.domain.values import Inputs, Section
from assurance.policy.thresholds import RobustnessThresholds
from assurance.reporting.markdown import table

if TYPE_CHECKING:
    from assurance.scoring.models import ScoringModel

SENSITIVITY = CheckSpec(
    "robustness.sensitivity",
    "robustness",
    "A small perturbation of one feature flips predictions or moves scores beyond the policy's limit.",
    "medium",
)
MISSING_UNSUPPORTED = CheckSpec(
    "robustness.missing_unsupported",
    "robustness",
    "The model cannot score rows with a missing value in some features.",
    "low",
)
CHECKS: tuple[CheckSpec, ...] = (SENSITIVITY, MISSING_UNSUPPORTED)
EVIDENCE = "robustness.parquet"
Perturb = Callable[[pd.Series], pd.Series]


def perturbations(
    values: pd.Series, spread: float, limits: RobustnessThresholds, seed: int
) -> dict[str, Perturb]:
    """The disturbances that make sense for one column: noise for numbers (integers stay integers),
    a swap to the most frequent value for categories, and missing values for both."""
    out: dict[str, Perturb] = {
        "missing": lambda v: pd.Series(np.nan, index=v.index, dtype=object if is_categorical(v) else float)
    }
    if is_categorical(values):
        mode = values.mode(dropna=True)
        if len(mode):
            out["swap"] = lambda v: pd.Series(mode.iloc[0], index=v.index).astype(v.dtype, errors="ignore")
    elif spread > 0:
        rng = np.random.default_rng(seed)

        def noise(v: pd.Series) -> pd.Series:
            moved = v + rng.normal(0.0, limits.noise_std * spread, len(v))
            return moved.round().astype(v.dtype) if pd.api.types.is_integer_dtype(v) else moved

        out["noise"] = noise
    return out


def changed(before: pd.Series, after: pd.Series) -> np.ndarray:
    """Rows whose value the perturbation actually changed (missing stays missing)."""
    same = (before.astype(object) == after.astype(object)) | (before.isna() & after.isna())
    return ~same.to_numpy(dtype=bool)


def effect(
    base: pd.DataFrame,
    moved: pd.DataFrame,
    rows: np.ndarray,
    task: str,
    scale: float,
    limits: RobustnessThresholds,
) -> dict[str, float]:
    """Flip rate (classifiers) and mean absolute score change over the changed `rows`, each with the
    one-sided p-value that it exceeds its limit (exact binomial; t-test on the per-row changes)."""
    from scipy import stats

    out = {"flip_rate": np.nan, "score_change": np.nan, "p_flip": np.nan, "p_change": np.nan}
    if not rows.any():
        return out
    before, after = base[rows], moved[rows]
    if task in CLASSIFICATION:
        flips = (
            before["prediction"].astype(object).to_numpy() != after["prediction"].astype(object).to_numpy()
        )
        out["flip_rate"] = float(flips.mean())
        out["p_flip"] = significance.excess_pvalue(int(flips.sum()), len(flips), limits.max_flip_rate)
    if "score" in base.columns and "score" in moved.columns:
        change = (after["score"].astype(float) - before["score"].astype(float)).abs().to_numpy()
    elif task == "regression" and scale > 0:
        change = (
            after["prediction"].astype(float) - before["prediction"].astype(float)
        ).abs().to_numpy() / scale
    else:
        return out
    change = change[np.isfinite(change)]
    if change.size:
        out["score_change"] = float(change.mean())
        se = float(change.std(ddof=1)) / np.sqrt(change.size) if change.size > 1 else 0.0
        excess = out["score_change"] - limits.max_score_change
        out["p_change"] = float(stats.t.sf(excess / se, change.size - 1)) if se > 0 else float(excess <= 0)
    return out


def measure(
    model: ScoringModel,
    frame: pd.DataFrame,
    base: pd.DataFrame,
    features: list[str],
    spreads: pd.Series,
    limits: RobustnessThresholds,
) -> pd.DataFrame:
    """One row per feature and perturbation against the unperturbed scores `base`: rows changed, flip
    rate, score change, scoring error."""
    scale = (
        float(pd.to_numeric(base["prediction"], errors="coerce").std()) if model.task == "regression" else 0.0
    )
    records = []
    for i, feature in enumerate(features):
        for name, perturb in perturbations(
            frame[feature], float(spreads.get(feature, 0.0)), limits, seed=i
        ).items():
            after = perturb(frame[feature])
            rows = changed(frame[feature], after)
            record = {
                "feature": feature,
                "perturbation": name,
                "rows": int(rows.sum()),
                "flip_rate": np.nan,
                "score_change": np.nan,
                "p_flip": np.nan,
                "p_change": np.nan,
                "error": "",
            }
            try:
                moved = model.score(frame.assign(**{feature: after.to_numpy()}))
                record.update(effect(base, moved, rows, model.task, scale, limits))
            except Exception as exc:  # noqa: BLE001 - a model that cannot score the perturbed rows is evidence
                record["error"] = describe_error(exc)
            records.append(record)
    return judge(pd.DataFrame.from_records(records), limits)


def judge(rows: pd.DataFrame, limits: RobustnessThresholds) -> pd.DataFrame:
    """Which judged perturbations pass a limit beyond noise: the smaller p-value of the limits passed
    (doubled, as two were looked at), Benjamini-Hochberg over the judged perturbations."""
    out = rows.copy()
    out["judged"] = out["perturbation"].isin(list(limits.judged))
    flip_over = out["flip_rate"] > limits.max_flip_rate
    change_over = out["score_change"] > limits.max_score_change
    p = np.fmin(out["p_flip"].where(flip_over, 1.0), out["p_change"].where(change_over, 1.0))
    out["p_value"] = np.minimum(1.0, 2 * p).where(out["judged"] & (flip_over | change_over), np.nan)
    out.loc[out["judged"] & out["p_value"].isna(), "p_value"] = 1.0
    out["q_value"] = significance.adjust(out["p_value"].to_numpy(float))
    out["exceeds"] = out["judged"] & (flip_over | change_over) & (out["q_value"] <= limits.alpha)
    return out


def sensitivity_findings(
    rows: pd.DataFrame, limits: RobustnessThresholds, severity: str, role: str
) -> list[Finding]:
    """One finding per feature whose judged perturbation exceeds a limit, naming the worst one."""
    out = []
    for feature, group in rows[rows["exceeds"]].groupby("feature", sort=False):
        worst = (
            group.assign(
                excess=np.fmax(
                    group["flip_rate"] / limits.max_flip_rate, group["score_change"] / limits.max_score_change
                )
            )
            .sort_values("excess", ascending=False)
            .iloc[0]
        )
        flips = f"flips {worst['flip_rate']:.1%} of predictions" if np.isfinite(worst["flip_rate"]) else ""
        moves = (
            f"moves scores by {worst['score_change']:.3f} on average"
            if np.isfinite(worst["score_change"])
            else ""
        )
        what = " and ".join(p for p in (flips, moves) if p)
        observed = worst["flip_rate"] if worst["flip_rate"] > limits.max_flip_rate else worst["score_change"]
        limit = limits.max_flip_rate if worst["flip_rate"] > limits.max_flip_rate else limits.max_score_change
        out.append(
            SENSITIVITY.finding(
                str(feature),
                severity,
                (
                    f"A small {worst['perturbation']} perturbation of {feature} {what} on {int(worst['rows']):,} rows "
                    f"of {role} data (limits {limits.max_flip_rate:.0%} flips, {limits.max_score_change} score "
                    f"change; q = {worst['q_value']:.2g}): the model is fragile in this feature; consider "
                    "smoothing, regularisation or monotonic constraints."
                ),
                observed=float(observed),
                threshold=limit,
                evidence=EVIDENCE,
            )
        )
    return out


def missing_finding(rows: pd.DataFrame, severity: str) -> list[Finding]:
    failed = rows.loc[(rows["perturbation"] == "missing") & (rows["error"] != ""), "feature"].tolist()
    if not failed:
        return []
    return [
        MISSING_UNSUPPORTED.finding(
            "missing values",
            severity,
            (
                f"The model cannot score a row with a missing value in {len(failed)} feature(s) "
                f"({', '.join(failed[:10])}{', ...' if len(failed) > 10 else ''}): add imputation or guard the inputs upstream."
            ),
            observed=len(failed),
            threshold=0,
            evidence=EVIDENCE,
        )
    ]


def report(rows: pd.DataFrame, role: str, sample_rows: int, limits: RobustnessThresholds) -> str:
    judged = ", ".join(limits.judged) or "none"
    head = (
        f"Perturbations on {sample_rows:,} sampled rows of {role} data, one feature at a time; judged: {judged} "
        f"(limits {limits.max_flip_rate:.0%} flipped predictions, {limits.max_score_change} mean score change; "
        f"noise = {limits.noise_std} standard deviations)."
    )
    failures = rows[rows["error"] != ""]
    note = (
        f"\n\nThe model could not score {len(failures)} perturbation(s); see the error column."
        if len(failures)
        else ""
    )
    shown = rows.sort_values(
        ["exceeds", "judged", "flip_rate", "score_change"], ascending=False, na_position="last"
    ).head(25)
    return f"{head}{note}\n\n{table(shown)}"


def spreads(inputs: Inputs, frame: pd.DataFrame, features: list[str]) -> pd.Series:
    """Standard deviation of each numeric feature, from reference data when there is some."""
    source = inputs.reference.frame if inputs.reference is not None and inputs.reference.ok else frame
    numeric = [f for f in features if f in source.columns and not is_categorical(source[f])]
    return pd.Series({f: float(source[f].std()) for f in numeric}, dtype=float)


def run(inputs: Inputs) -> Section:
    """Flip rate and score change per feature under small perturbations."""
    section = Section("robustness", "Robustness")
    if inputs.model is None:
        return section.skip("no loaded model to perturb")
    candidates = [d for d in (inputs.current, inputs.reference) if d is not None and d.ok]
    if not candidates:
        return section.skip("robustness needs reference or current data")
    limits = inputs.policy.thresholds.robustness
    for dataset in candidates:
        features = feature_columns(inputs, dataset.frame)
        if not features:
            section.skip(f"the model's features are not in the {dataset.role} data")
            continue
        frame = sample(dataset.frame, limits.sample_rows, seed=5).reset_index(drop=True)
        try:
            base = inputs.model.score(frame)
            break
        except Exception as exc:  # noqa: BLE001 - the unperturbed sample itself cannot be scored
            section.skip(f"the model could not score the {dataset.role} sample: {describe_error(exc)}")
    else:
        return section
    rows = measure(inputs.model, frame, base, features, spreads(inputs, dataset.frame, features), limits)
    section.tables["robustness"] = rows
    section.findings = sensitivity_findings(rows, limits, inputs.policy.severity(SENSITIVITY), dataset.role)
    if limits.missing_failure_is_finding:
        section.findings += missing_finding(rows, inputs.policy.severity(MISSING_UNSUPPORTED))
    section.summary = report(rows, dataset.role, len(frame), limits)
    judged = rows[rows["judged"]]
    section.metrics = {
        "features": len(features),
        "perturbations_failed": int((rows["error"] != "").sum()),
        "features_exceeding": int(rows.loc[rows["exceeds"], "feature"].nunique()),
    }
    for column in ("flip_rate", "score_change"):
        if judged[column].notna().any():
            section.metrics[f"max_judged_{column}"] = float(judged[column].max())
    return section
