"""Leakage: evidence that the model learned from something it will not have when it is used.

Four signs, each judged against the policy and against chance:
- a label proxy: a feature whose single-feature AUC (correlation for regressors) is strong beyond
  noise (its lower 95% bound passes the policy's strong level) and either nearly perfect (the policy's
  near-perfect level) or at least as good as the whole model's. Strength is measured out of fold, so
  an identifier cannot score by memorising rows. A strong feature that the
  model beats is information (`leakage.strong_feature`), never a proxy: breast-cancer cell sizes
  separate the classes with AUC 0.98 on their own and are exactly what the model should use;
- a feature that carries most of the model's attribution (share of total mean |SHAP|);
- current rows that also appear in reference, beyond what reference repeats within itself by more than
  the policy's margin and by more than chance (one-sided binomial test);
- an identifier among the features: almost all values distinct, integer or text, with an ID-like
  name or sequential values.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from assurance.checks import significance
from assurance.checks.rows import CLASSIFICATION, Z95, feature_columns, is_categorical, sample
from assurance.domain.checks import CheckSpec
from assurance.domain.findings import Finding
from assurance.domain.values import Dataset, Inputs, Section
from assurance.policy.thresholds import LeakageThresholds
from assurance.reporting.markdown import table

LABEL_PROXY = CheckSpec(
    "leakage.label_proxy",
    "leakage",
    "A single feature predicts the label nearly perfectly on its own, or as well as the whole model: it may "
    "encode the outcome.",
    "high",
)
STRONG_FEATURE = CheckSpec(
    "leakage.strong_feature",
    "leakage",
    "A single feature predicts the label very well on its own, though less well than the model: confirm it "
    "is known before the outcome.",
    "info",
)
# one feature carrying most attribution is common in healthy models: a pointer, not proof of leakage
DOMINANT = CheckSpec(
    "leakage.dominant_feature", "leakage", "One feature carries most of the model's attribution.", "low"
)
SHARED_ROWS = CheckSpec(
    "leakage.shared_rows",
    "leakage",
    "Current rows also appear in the reference (training) data more than chance explains.",
    "medium",
)
ID_FEATURE = CheckSpec(
    "leakage.id_feature",
    "leakage",
    "An identifier-like column (almost all values distinct) is used as a feature.",
    "medium",
)
TRAIN_HOLDOUT = CheckSpec(
    "leakage.train_holdout_overlap",
    "leakage",
    "Rows of the reference holdout also appear in the training data (tag assurance.training, or the training "
    "dataset logged on the source run) beyond chance, so holdout metrics overstate the model.",
    "high",
)
CHECKS: tuple[CheckSpec, ...] = (
    LABEL_PROXY,
    STRONG_FEATURE,
    DOMINANT,
    SHARED_ROWS,
    TRAIN_HOLDOUT,
    ID_FEATURE,
)
EVIDENCE = "leakage.parquet"
BINS = 50
ID_TOKEN = re.compile(r"(?i)(^|[_\W])(id|uuid|guid|key|ref|number|no|num)$")
ID_CAMEL = re.compile(r"[a-z](Id|ID|Uuid|Guid|Key|Ref|Number|No|Num)$")


def bin_codes(values: pd.Series) -> np.ndarray:
    """Integer codes: numbers with many values cut into quantile bins, everything else by value;
    missing values get a code of their own."""
    if not is_categorical(values) and values.nunique() > BINS:
        values = pd.qcut(values, q=BINS, duplicates="drop")
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    return np.where(codes < 0, codes.max() + 1, codes)


def out_of_fold_means(codes: np.ndarray, target: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """For each row, the mean of each target column over rows of the other fold with the same code
    (the other fold's overall mean for codes it never saw): target encoding that cannot memorise."""
    out = np.empty_like(target, dtype=float)
    size = codes.max() + 1
    for held_out in (False, True):
        train, test = fold != held_out, fold == held_out
        counts = np.bincount(codes[train], minlength=size)
        prior = target[train].mean(axis=0)
        for j in range(target.shape[1]):
            sums = np.bincount(codes[train], weights=target[train, j], minlength=size)
            means = np.where(counts > 0, sums / np.maximum(counts, 1), prior[j])
            out[test, j] = means[codes[test]]
    return out


def _auc(positive: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, score))


def label_strength(values: pd.Series, label: pd.Series, task: str, seed: int = 0) -> float:
    """How well `values` alone predict `label`: AUC (macro one-vs-rest for multiclass) for classifiers,
    correlation for regressors; the better of the raw value (numbers) and an out-of-fold encoding."""
    codes = bin_codes(values)
    fold = np.random.default_rng(seed).random(len(values)) < 0.5
    numeric = not is_categorical(values)
    raw = values.astype(float).fillna(values.astype(float).median()).to_numpy() if numeric else None
    if task in CLASSIFICATION:
        classes = pd.Index(label.unique())
        onehot = (label.to_numpy()[:, None] == classes.to_numpy()[None, :]).astype(float)
        encoded = out_of_fold_means(codes, onehot, fold)
        columns = [len(classes) - 1] if len(classes) == 2 else range(len(classes))
        aucs = [_auc(onehot[:, j], encoded[:, j]) for j in columns]
        strength = float(np.mean(aucs))
        if numeric and len(classes) == 2 and np.ptp(raw) > 0:
            auc = _auc(onehot[:, -1], raw)
            strength = max(strength, auc, 1 - auc)
        return strength
    y = label.astype(float).to_numpy()
    encoded = out_of_fold_means(codes, y[:, None], fold)[:, 0]
    strength = float(np.corrcoef(encoded, y)[0, 1]) if np.std(encoded) > 0 else 0.0
    if numeric and np.ptp(raw) > 0:
        strength = max(strength, abs(float(pd.Series(raw).corr(pd.Series(y), method="spearman"))))
    return strength


def id_evidence(values: pd.Series, name: str, min_ratio: float) -> tuple[float, str]:
    """Share of distinct values, and why the column looks like an identifier: "" unless at least
    `min_ratio` of its values are distinct and it is integer or text with an ID-like name, sequential
    values or free text (distinct floats and timestamps are ordinary measurements)."""
    present = values.dropna()
    ratio = present.nunique() / len(present) if len(present) else 0.0
    integer = pd.api.types.is_integer_dtype(present) and not pd.api.types.is_bool_dtype(present)
    text = pd.api.types.is_object_dtype(present) or pd.api.types.is_string_dtype(present)
    if ratio < min_ratio or not (integer or text or isinstance(present.dtype, pd.CategoricalDtype)):
        return ratio, ""
    hints = ["ID-like name"] if ID_TOKEN.search(name) or ID_CAMEL.search(name) else []
    if integer:
        if present.is_monotonic_increasing or present.is_monotonic_decreasing:
            hints.append("monotonic")
        elif int(present.max()) - int(present.min()) + 1 <= 1.05 * present.nunique():
            hints.append("consecutive integers")
    else:
        hints.append("distinct text")
    return ratio, ", ".join(hints)


def strength_bounds(strength: float, label: pd.Series, task: str) -> float:
    """Lower 95% bound of a strength: Hanley-McNeil's AUC standard error (on the smaller class of a
    binary label), Fisher's z for a correlation.

    A perfect AUC on few rows has a Hanley-McNeil error of zero, so the AUC is first held half a row of
    the smaller class away from 1: 19 positives separated perfectly say little, 110 say a lot.
    """
    if not np.isfinite(strength):
        return np.nan
    if task in CLASSIFICATION:
        counts = label.value_counts()
        # a macro AUC averages every class against the rest, so it rests on all rows: count it as a
        # balanced binary AUC of the same size rather than by its smallest class
        n1 = float(counts.min()) if len(counts) <= 2 else len(label) / 2
        n0 = float(len(label) - n1)
        if n1 < 1 or n0 < 1:
            return np.nan
        a = min(max(strength, 1e-9), 1 - 1 / (2 * n1))
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        se = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
        return float(a - Z95 * se)
    n = len(label)
    if n <= 3:
        return np.nan
    r = float(np.clip(strength, -0.999999, 0.999999))
    return float(np.tanh(np.arctanh(r) - Z95 / np.sqrt(n - 3)))


def model_strength(inputs: Inputs, dataset: Dataset, frame: pd.DataFrame, task: str) -> float:
    """The whole model's strength on the same rows, on the same scale: AUC of its binary scores, the
    correlation of its predictions for regressors; NaN when its outputs do not allow it (multiclass
    without class probabilities)."""
    scores = inputs.predictions.for_role(dataset.role) if inputs.predictions is not None else None
    if scores is None or not scores.ok:
        return np.nan
    outputs = scores.frame.reindex(frame.index)
    label = frame[dataset.label]
    if task == "binary" and "score" in outputs.columns:
        valid = outputs["score"].notna()
        positive = (label[valid] == inputs.predictions.positive).to_numpy()
        return (
            _auc(positive, outputs.loc[valid, "score"].to_numpy())
            if 0 < positive.sum() < valid.sum()
            else np.nan
        )
    if task == "regression":
        prediction = pd.to_numeric(outputs["prediction"], errors="coerce")
        return abs(float(prediction.corr(label.astype(float))))
    return np.nan


def shared_rows(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str]
) -> tuple[int, int, float]:
    """Current rows found in reference, of how many, and the share expected by chance: how often a
    reference row repeats within reference (low-cardinality features make repeats natural)."""
    ref, cur = _row_hashes(reference, features), _row_hashes(current, features)
    shared = int(np.isin(cur, ref).sum()) if len(cur) else 0
    baseline = float(pd.Series(ref).duplicated(keep=False).mean()) if len(ref) else 0.0
    return shared, len(cur), baseline


def _row_hashes(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Row hashes on values normalised across datasets (numbers as floats, everything else as text)."""
    normal = pd.DataFrame(
        {c: frame[c].astype(str) if is_categorical(frame[c]) else frame[c].astype(float) for c in features}
    )
    return pd.util.hash_pandas_object(normal, index=False).to_numpy()


def labelled(inputs: Inputs) -> Dataset | None:
    """Reference data when labelled (leakage lives in training data), else labelled current data."""
    for dataset in (inputs.reference, inputs.current):
        if dataset is not None and dataset.has_label:
            return dataset
    return None


def feature_table(
    inputs: Inputs, features: list[str], limits: LeakageThresholds, section: Section
) -> pd.DataFrame:
    """One row per feature: its label strength, attribution share and identifier evidence."""
    dataset = labelled(inputs)
    base = inputs.reference if inputs.reference is not None and inputs.reference.ok else dataset
    rows = pd.DataFrame({"feature": features}).set_index("feature")
    task = inputs.predictions.task if inputs.predictions is not None else "unknown"
    if dataset is None:
        section.skip("label-proxy check skipped: no labelled data")
    elif task not in (*CLASSIFICATION, "regression"):
        section.skip(f"label-proxy check skipped: the model's task is {task}")
    else:
        frame = sample(dataset.frame[dataset.frame[dataset.label].notna()], limits.sample_rows, seed=3)
        if frame[dataset.label].nunique() < 2:
            section.skip("label-proxy check skipped: the label has a single value")
        else:
            label = frame[dataset.label]
            rows["label_strength"] = [label_strength(frame[f], label, task) for f in features]
            rows["strength_low"] = [strength_bounds(s, label, task) for s in rows["label_strength"]]
            rows["model_strength"] = model_strength(inputs, dataset, frame, task)
            rows["strength_metric"] = "auc" if task in CLASSIFICATION else "correlation"
            rows["strength_role"] = dataset.role
            rows["strength_rows"] = len(frame)
    rows["attribution_share"] = attribution_shares(inputs, features, limits, section)
    if base is not None:
        id_frame = sample(base.frame, limits.sample_rows, seed=4)
        evidence = [id_evidence(id_frame[f], f, limits.id_unique_ratio) for f in features]
        rows["unique_ratio"] = [ratio for ratio, _ in evidence]
        rows["id_hints"] = [hints for _, hints in evidence]
    return rows.reset_index()


def attribution_shares(
    inputs: Inputs, features: list[str], limits: LeakageThresholds, section: Section
) -> pd.Series:
    """Each feature's share of total mean |SHAP| on a small, budgeted sample (NaN when unavailable)."""
    from assurance.checks.explanations.explainers import NotExplainable, global_importance

    empty = pd.Series(np.nan, index=features)
    if inputs.model is None or inputs.reference is None or not inputs.reference.ok:
        section.skip("dominant-feature check skipped: no model or no reference data")
        return empty
    try:
        attributions = global_importance(
            inputs.model,
            inputs.reference.frame,
            features,
            limits.attribution_sample_rows,
            min(100, limits.attribution_sample_rows),
            limits.attribution_budget_seconds,
        )
    except NotExplainable as exc:
        section.skip(f"dominant-feature check skipped: {exc}")
        return empty
    importance = attributions.mean_abs.reindex(features).fillna(0.0)
    total = importance.sum()
    return importance / total if total > 0 else empty


def findings(rows: pd.DataFrame, limits: LeakageThresholds, policy) -> list[Finding]:
    """Label-proxy, dominant-feature and ID-feature findings from the feature table."""
    out = []
    proxies = set()
    if "label_strength" in rows.columns:
        metric = rows["strength_metric"].iloc[0]
        strong = limits.max_single_feature_auc if metric == "auc" else limits.max_single_feature_correlation
        perfect = limits.near_perfect_auc if metric == "auc" else limits.near_perfect_correlation
        for r in rows[rows["label_strength"] >= strong].itertuples(index=False):
            as_good_as_model = bool(r.label_strength >= r.model_strength)
            measured = (
                f"{r.feature} alone predicts the label with {metric} {r.label_strength:.3f} (95% lower bound "
                f"{r.strength_low:.3f}) on {r.strength_rows:,} rows of {r.strength_role} data, the whole model "
                f"{r.model_strength:.3f}"
            )
            if r.strength_low >= strong and (r.label_strength >= perfect or as_good_as_model):
                proxies.add(r.feature)
                why = (
                    "as well as the whole model"
                    if as_good_as_model
                    else f"nearly perfectly (limit {perfect})"
                )
                out.append(
                    LABEL_PROXY.finding(
                        r.feature,
                        policy.severity(LABEL_PROXY),
                        f"{measured}: it separates the label {why}. Confirm it is known before the outcome, "
                        "or remove it and retrain.",
                        observed=float(r.label_strength),
                        threshold=perfect,
                        evidence=EVIDENCE,
                    )
                )
            else:
                out.append(
                    STRONG_FEATURE.finding(
                        r.feature,
                        policy.severity(STRONG_FEATURE),
                        f"{measured}: a strong feature the model still improves on; confirm it is known "
                        "before the outcome.",
                        observed=float(r.label_strength),
                        threshold=strong,
                        evidence=EVIDENCE,
                    )
                )
    if len(rows) >= 3 and rows["attribution_share"].notna().any():
        top = rows.loc[rows["attribution_share"].idxmax()]
        if top["attribution_share"] > limits.max_attribution_share and top["feature"] not in proxies:
            out.append(
                DOMINANT.finding(
                    top["feature"],
                    policy.severity(DOMINANT),
                    (
                        f"{top['feature']} carries {top['attribution_share']:.0%} of the model's attribution "
                        f"(limit {limits.max_attribution_share:.0%}): check that it is legitimately available "
                        "at prediction time and not a stand-in for the outcome."
                    ),
                    observed=float(top["attribution_share"]),
                    threshold=limits.max_attribution_share,
                    evidence=EVIDENCE,
                )
            )
    if "unique_ratio" in rows.columns:
        suspects = rows[(rows["unique_ratio"] >= limits.id_unique_ratio) & (rows["id_hints"] != "")]
        for r in suspects.itertuples(index=False):
            out.append(
                ID_FEATURE.finding(
                    r.feature,
                    policy.severity(ID_FEATURE),
                    (
                        f"{r.feature} looks like an identifier ({r.unique_ratio:.1%} distinct values; {r.id_hints}) "
                        "but is a model feature: drop it, since it can only let the model memorise rows."
                    ),
                    observed=float(r.unique_ratio),
                    threshold=limits.id_unique_ratio,
                    evidence=EVIDENCE,
                )
            )
    return out


def shared_rows_finding(
    shared: int, rows: int, baseline: float, limits: LeakageThresholds, policy
) -> list[Finding]:
    """Current rows found in reference beyond the reference's own repeat rate, by the policy's margin and
    beyond chance (exact binomial test against the repeat rate)."""
    return _overlap_finding(
        SHARED_ROWS,
        "current data",
        (shared, rows, baseline),
        limits,
        policy,
        "of current rows {of} also appear in the reference data, against {baseline} expected from reference's "
        "own repeats: current data overlaps training data, so metrics measured on it are optimistic.",
    )


def train_holdout_finding(
    shared: int, rows: int, baseline: float, limits: LeakageThresholds, policy
) -> list[Finding]:
    """Reference (holdout) rows found in the training data, judged as current rows found in reference are."""
    return _overlap_finding(
        TRAIN_HOLDOUT,
        "reference data",
        (shared, rows, baseline),
        limits,
        policy,
        "of reference (holdout) rows {of} also appear in the training data, against {baseline} expected from the "
        "training data's own repeats: the holdout is not held out, so its metrics overstate the model; "
        "split training and holdout before deduplicating, or by entity.",
    )


def _overlap_finding(
    check: CheckSpec,
    subject: str,
    overlap: tuple[int, int, float],
    limits: LeakageThresholds,
    policy,
    message: str,
) -> list[Finding]:
    shared, rows, baseline = overlap
    share = shared / rows if rows else 0.0
    excess = share - baseline
    if (
        excess <= limits.max_shared_row_excess
        or significance.excess_pvalue(shared, rows, baseline) > limits.alpha
    ):
        return []
    text = f"{share:.1%} " + message.format(of=f"({shared:,} of {rows:,})", baseline=f"{baseline:.1%}")
    return [
        check.finding(
            subject,
            policy.severity(check),
            text,
            observed=excess,
            threshold=limits.max_shared_row_excess,
            evidence=EVIDENCE,
        )
    ]


def training_overlap(inputs: Inputs, features: list[str], section: Section) -> tuple[int, int, float] | None:
    """Reference rows shared with the training data, when training data is named apart from the reference."""
    from assurance.data.sources import data_uri, load_dataset
    from assurance.settings import DEFAULT_MEMORY_BUDGET_MB

    uri, _ = data_uri(inputs.record, "training")
    reference = inputs.reference
    if uri is None or reference is None or not reference.ok or uri == reference.uri:
        return None
    training = load_dataset(inputs.record, "training", inputs.data_budget_mb or DEFAULT_MEMORY_BUDGET_MB)
    if not training.ok or not set(features) <= set(training.frame.columns):
        section.skip(
            f"train/holdout overlap not checked: training data {training.error or 'lacks the features'}"
        )
        return None
    return shared_rows(training.frame, reference.frame, features)


def report(
    rows: pd.DataFrame,
    overlap: tuple[int, int, float] | None,
    found: list[Finding],
    reference: Dataset | None,
) -> str:
    lines = [f"**{len(found)} leakage finding(s).**"]
    if overlap is not None:
        shared, total, baseline = overlap
        lines.append(
            f"Rows shared with reference: {shared:,} of {total:,} current rows (reference repeats its own rows "
            f"at {baseline:.2%})."
        )
        if reference is not None and reference.sampling:
            lines.append(
                f"The reference data is {reference.sampling.describe()}: current rows that match only unread "
                "reference rows are not seen, so the shared share is a lower bound."
            )
    order = "label_strength" if "label_strength" in rows.columns else "attribution_share"
    shown = rows.sort_values(order, ascending=False, na_position="last").head(25)
    return "\n\n".join([*lines, table(shown)])


def run(inputs: Inputs) -> Section:
    """Label proxies, dominant features, rows shared between datasets and ID-like features."""
    section = Section("leakage", "Leakage")
    base = inputs.reference if inputs.reference is not None and inputs.reference.ok else labelled(inputs)
    if base is None:
        return section.skip("leakage checks need reference data")
    features = feature_columns(inputs, base.frame)
    if not features:
        return section.skip("the model's features are not in the reference data")
    limits = inputs.policy.thresholds.leakage
    rows = feature_table(inputs, features, limits, section)
    section.findings = findings(rows, limits, inputs.policy)
    overlap = None
    current = inputs.current.frame if inputs.current is not None and inputs.current.ok else None
    if (
        inputs.reference is not None
        and inputs.reference.ok
        and current is not None
        and set(features) <= set(current.columns)
    ):
        overlap = shared_rows(inputs.reference.frame, current, features)
        section.findings += shared_rows_finding(*overlap, limits, inputs.policy)
        section.metrics["shared_row_share"] = overlap[0] / overlap[1] if overlap[1] else 0.0
        section.metrics["shared_row_baseline"] = overlap[2]
    else:
        section.skip("shared-rows check skipped: needs reference and current data with the model's features")
    held_out = training_overlap(inputs, features, section)
    if held_out is not None:
        section.findings += train_holdout_finding(*held_out, limits, inputs.policy)
        section.metrics["train_holdout_share"] = held_out[0] / held_out[1] if held_out[1] else 0.0
    section.tables["leakage"] = rows
    section.summary = report(rows, overlap, section.findings, inputs.reference)
    for column in ("label_strength", "attribution_share"):
        if column in rows.columns and rows[column].notna().any():
            section.metrics[f"max_{column}"] = float(rows[column].max())
    return section
