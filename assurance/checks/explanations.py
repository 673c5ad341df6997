"""Explanations with SHAP: global importance, local explanations of the highest-scoring rows, and
attribution drift between reference and current data and against the previous version.

Tree models (native sklearn, LightGBM, XGBoost, and the last step of an sklearn Pipeline explained on
its transformed inputs, one-hot columns summed back to their source feature) get the fast
TreeExplainer; anything else, pyfunc models included, gets a PermutationExplainer over integer-coded
features with a small background. Both run in batches on a seeded sample until the policy's time
budget is spent, so cost is bounded whatever the data size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from assurance.checks.rows import describe_error, feature_columns, is_categorical, sample
from assurance.domain.findings import Finding, fmt
from assurance.domain.values import Inputs, Section
from assurance.policy.rules import load_rules
from assurance.reporting.markdown import table

if TYPE_CHECKING:
    from assurance.scoring.models import ScoringModel

CHECK = "explainability.attribution_drift"
CHECKS = {
    CHECK: "Feature attributions (mean |SHAP|) rank the features very differently between reference and "
    "current data, or against the previous version of the model.",
}
EVIDENCE = "explanations.parquet"
PLOT = "shap_importance"
Explain = Callable[[pd.DataFrame], np.ndarray]


class NotExplainable(Exception):
    """The model cannot be explained; the message says why."""


@dataclass(frozen=True)
class Rules:
    """`thresholds.explanations` of the policy."""

    sample_rows: int
    time_budget_seconds: float
    background_rows: int
    local_rows: int
    top_k: int
    max_rank_move: int
    min_share_change: float
    min_rank_correlation: float
    previous_lookback: int


@dataclass
class Explainer:
    """`explain(frame)` gives one row of attributions per row, one column per source feature."""

    explain: Explain
    kind: str
    note: str = ""
    setup_seconds: float = 0.0


@dataclass
class Attributions:
    values: pd.DataFrame  # explained rows x source features, indexed like the frame they came from
    kind: str
    seconds: float
    requested: int

    @property
    def mean_abs(self) -> pd.Series:
        return self.values.abs().mean()


def pick_output(raw: Any, task: str, row_class: np.ndarray | None) -> np.ndarray:
    """Rows x features for the explained output: P(positive) or its log-odds for binary models, the
    predicted class for multiclass ones, the value for regressors."""
    arr = np.stack(raw, axis=-1) if isinstance(raw, list) else np.asarray(raw)
    if arr.ndim == 2:
        return arr
    if task == "binary" or row_class is None:
        return arr[:, :, -1]
    return arr[np.arange(len(arr)), :, row_class]


def predicted_class(model: ScoringModel, frame: pd.DataFrame) -> np.ndarray | None:
    """Index of each row's predicted class among the model's classes (multiclass only)."""
    if model.task != "multiclass" or not model.classes:
        return None
    lookup = {c: i for i, c in enumerate(model.classes)}
    return model.score(frame)["prediction"].map(lookup).fillna(0).astype(int).to_numpy()


def source_matrix(names_out: list[str], features: list[str]) -> tuple[np.ndarray, list[str]]:
    """0/1 matrix summing transformed columns (`cat__region_north`, `num__age`) back to source features;
    a column no feature name explains keeps its own name."""
    by_length = sorted(features, key=len, reverse=True)
    sources = []
    for name in names_out:
        rest = name.split("__", 1)[1] if "__" in name else name
        match = next((f for f in by_length if rest == f or rest.startswith(f + "_")), None)
        sources.append(match or name)
    columns = list(dict.fromkeys([*features, *sources]))
    matrix = np.zeros((len(names_out), len(columns)))
    matrix[np.arange(len(names_out)), [columns.index(s) for s in sources]] = 1.0
    used = matrix.any(axis=0) | np.isin(columns, features)
    return matrix[:, used], [c for c, u in zip(columns, used, strict=True) if u]


def tree_explainer(model: ScoringModel, features: list[str]) -> Explainer:
    """TreeExplainer on the native estimator, or on a Pipeline's last step after its transforms."""
    import shap

    estimator, prep = model.native, None
    if estimator is None:
        raise NotExplainable("the model has no native estimator (pyfunc)")
    if hasattr(estimator, "steps") and len(estimator.steps) > 1:
        prep, estimator = estimator[:-1], estimator.steps[-1][1]
    try:
        explainer = shap.TreeExplainer(estimator)
        names = list(prep.get_feature_names_out()) if prep is not None else features
    except Exception as exc:  # noqa: BLE001 - shap raises several types for models it cannot walk
        raise NotExplainable(f"not a tree model shap can walk ({type(exc).__name__})") from exc
    matrix, columns = source_matrix(names, features) if prep is not None else (None, features)

    def explain(frame: pd.DataFrame) -> np.ndarray:
        X = frame[features]
        if prep is not None:
            X = prep.transform(X)
            X = X.toarray() if hasattr(X, "toarray") else np.asarray(X, dtype=float)
        raw = explainer.shap_values(X, check_additivity=False)
        values = pick_output(raw, model.task, predicted_class(model, frame))
        return pd.DataFrame(
            values @ matrix if matrix is not None else values, columns=columns, index=frame.index
        )

    return Explainer(explain, "tree")


class Codec:
    """A numeric view of a feature frame for maskers: categories become integer codes, and are decoded
    back (with the original dtypes) before the model scores them."""

    def __init__(self, frame: pd.DataFrame, features: list[str]):
        self.features = features
        self.dtypes = frame[features].dtypes
        self.categories = {
            c: pd.Index(frame[c].dropna().unique()) for c in features if is_categorical(frame[c])
        }

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.features)))
        for j, col in enumerate(self.features):
            if col in self.categories:
                codes = self.categories[col].get_indexer(frame[col]).astype(float)
                out[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                out[:, j] = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        return out

    def decode(self, array: np.ndarray) -> pd.DataFrame:
        data = {}
        for j, col in enumerate(self.features):
            values = array[:, j]
            if col in self.categories:
                codes = np.nan_to_num(values, nan=-1).astype(int)
                decoded = pd.Series(self.categories[col].take(np.clip(codes, 0, None)), dtype=object).where(
                    codes >= 0
                )
            else:
                decoded = pd.Series(values)
            data[col] = _restore(decoded, self.dtypes[col])
        return pd.DataFrame(data)


def _restore(values: pd.Series, dtype: Any) -> pd.Series:
    """The original dtype when the values allow it (no missing values in an integer column, say)."""
    try:
        return values.astype(dtype)
    except (TypeError, ValueError):
        return values


def model_output(model: ScoringModel) -> Callable[[pd.DataFrame], np.ndarray]:
    """The number(s) a model-agnostic explainer explains: P(positive), class probabilities or the value."""
    if model.task == "multiclass":
        if model.predict_proba is None:
            raise NotExplainable(
                "a multiclass model without class probabilities has no numeric output to explain"
            )
        return lambda frame: np.asarray(
            model.predict_proba(frame[model.features] if model.features else frame), dtype=float
        )

    def output(frame: pd.DataFrame) -> np.ndarray:
        scores = model.score(frame)
        column = "score" if "score" in scores.columns else "prediction"
        return pd.to_numeric(scores[column], errors="coerce").to_numpy(dtype=float)

    return output


def permutation_explainer(
    model: ScoringModel, features: list[str], background: pd.DataFrame, rows: pd.DataFrame
) -> Explainer:
    """Model-agnostic SHAP: a PermutationExplainer masking integer-coded features with `background`."""
    import shap

    codec = Codec(pd.concat([background[features], rows[features]]), features)
    output = model_output(model)
    masker = shap.maskers.Independent(codec.encode(background), max_samples=len(background))
    explainer = shap.PermutationExplainer(lambda array: output(codec.decode(array)), masker, seed=0)
    evals = 2 * (2 * len(features) + 1)

    def explain(frame: pd.DataFrame) -> np.ndarray:
        result = explainer(codec.encode(frame), max_evals=evals, silent=True)
        values = pick_output(result.values, model.task, predicted_class(model, frame))
        return pd.DataFrame(values, columns=features, index=frame.index)

    return Explainer(explain, "permutation")


def make_explainer(
    model: ScoringModel, features: list[str], background: pd.DataFrame, rows: pd.DataFrame
) -> Explainer:
    """The tree explainer when it works on a few rows, else the model-agnostic one (saying why).

    Either is run once here, which also pays shap's one-off JIT compilation (seconds on first use)
    before the budgeted batches start timing the explainer's pace."""
    try:
        explainer = tree_explainer(model, features)
        explainer.explain(background.head(2))
        return explainer
    except Exception as exc:  # noqa: BLE001 - any tree-path failure falls back to the agnostic explainer
        reason = (
            str(exc)
            if isinstance(exc, NotExplainable)
            else f"the tree explainer failed ({type(exc).__name__})"
        )
    fallback = permutation_explainer(model, features, background, rows)
    fallback.note = f"model-agnostic permutation explainer: {reason}"
    try:
        fallback.explain(background.head(1))
    except NotExplainable:
        raise
    except Exception as exc:  # noqa: BLE001 - the model cannot score the masked rows
        raise NotExplainable(f"the model could not score masked rows ({describe_error(exc)})") from exc
    return fallback


def explain_within(explainer: Explainer, frame: pd.DataFrame, seconds: float) -> Attributions:
    """Explain `frame` in batches that start at one row and at most double, each sized to fit what is
    left of `seconds` at the pace seen so far: the budget holds for models of any speed.

    The first rows of `frame` are always explained first, so callers put the rows they must have first.
    A batch the explainer cannot explain ends the attempt with NotExplainable saying why."""
    start = time.perf_counter()
    parts, done, batch = [], 0, 1
    while done < len(frame) and batch >= 1:
        try:
            parts.append(explainer.explain(frame.iloc[done : done + batch]))
        except Exception as exc:  # noqa: BLE001 - e.g. a model that cannot score some rows' values
            raise NotExplainable(
                f"the {explainer.kind} explainer failed on sampled rows ({describe_error(exc)})"
            ) from exc
        done += len(parts[-1])
        elapsed = time.perf_counter() - start
        affordable = (seconds - elapsed) * 0.9 * done / elapsed if elapsed > 0 else len(frame)
        batch = int(min(2 * batch, affordable))
    values = pd.concat(parts) if parts else pd.DataFrame()
    return Attributions(values, explainer.kind, time.perf_counter() - start, len(frame))


def global_importance(
    model: ScoringModel,
    frame: pd.DataFrame,
    features: list[str],
    rows: int,
    background_rows: int,
    seconds: float,
) -> Attributions:
    """Mean |SHAP| per feature on a seeded sample of `frame`, within `seconds` (leakage uses this too)."""
    rows_frame = sample(frame, rows, seed=1)
    explainer = make_explainer(model, features, sample(frame, background_rows, seed=2), rows_frame)
    return explain_within(explainer, rows_frame, seconds)


def ranked(importance: pd.Series) -> pd.DataFrame:
    """Mean |SHAP|, share of the total and rank (1 = most important) per feature."""
    total = importance.sum()
    return pd.DataFrame(
        {
            "mean_abs_shap": importance,
            "share": importance / total if total > 0 else 0.0,
            "rank": importance.rank(ascending=False, method="min").astype(int),
        }
    )


def importance_table(
    reference: pd.Series, current: pd.Series | None, previous: pd.Series | None
) -> pd.DataFrame:
    """explanations.parquet: one row per feature, most important (on reference) first."""
    out = pd.DataFrame(index=reference.index)
    for role, series in (("reference", reference), ("current", current), ("previous", previous)):
        if series is None:
            continue
        part = ranked(series.reindex(reference.index.union(series.index)).fillna(0.0))
        out = out.join(part.add_suffix(f"_{role}"), how="outer")
    out.index.name = "feature"
    return out.sort_values("rank_reference").reset_index()


def drift(table_: pd.DataFrame, base: str, other: str, rules: Rules) -> tuple[float, list[str]]:
    """Spearman correlation of importances between two columns, and the top-k features that moved far
    (at least `max_rank_move` places and `min_share_change` of attribution)."""
    a, b = table_[f"mean_abs_shap_{base}"], table_[f"mean_abs_shap_{other}"]
    comparable = len(table_) >= 4 and a.nunique() > 1 and b.nunique() > 1
    rho = float(a.corr(b, method="spearman")) if comparable else np.nan
    top = (table_[f"rank_{base}"] <= rules.top_k) | (table_[f"rank_{other}"] <= rules.top_k)
    moved = (table_[f"rank_{other}"] - table_[f"rank_{base}"]).abs() >= rules.max_rank_move
    shifted = (table_[f"share_{other}"] - table_[f"share_{base}"]).abs() >= rules.min_share_change
    return rho, table_.loc[top & moved & shifted, "feature"].tolist()


def drift_findings(
    table_: pd.DataFrame, base: str, other: str, label: str, prefix: str, rules: Rules, severity: str
) -> list[Finding]:
    """Attribution-drift findings from the `base` to the `other` importances: one per top feature that
    moved far, and one for the whole ranking when its correlation is too low."""
    rho, moved = drift(table_, base, other, rules)
    rows = table_.set_index("feature")
    out = []
    for feature in moved:
        r = rows.loc[feature]
        was, now = int(r[f"rank_{base}"]), int(r[f"rank_{other}"])
        out.append(
            Finding(
                category="explainability",
                check=CHECK,
                subject=f"{prefix}{feature}",
                severity=severity,
                message=(
                    f"{feature} moved from rank {was} to {now} in attribution ({r[f'share_{base}']:.0%} to "
                    f"{r[f'share_{other}']:.0%} of mean |SHAP|) {label}: check whether and why the model now "
                    "relies on it differently."
                ),
                observed=abs(now - was),
                threshold=rules.max_rank_move,
                evidence=EVIDENCE,
            )
        )
    if np.isfinite(rho) and rho < rules.min_rank_correlation:
        out.append(
            Finding(
                category="explainability",
                check=CHECK,
                subject=f"{prefix}ranking",
                severity=severity,
                message=(
                    f"The feature importance ranking {label} has a Spearman correlation of {rho:.2f} "
                    f"(limit {rules.min_rank_correlation}): the model's reasoning has shifted."
                ),
                observed=rho,
                threshold=rules.min_rank_correlation,
                evidence=EVIDENCE,
            )
        )
    return out


def previous_importance(inputs: Inputs, lookback: int) -> tuple[str, pd.Series] | None:
    """The newest earlier version's reference importances from the evidence store, if any was published."""
    try:
        version = int(inputs.record.version)
    except ValueError:
        return None
    for earlier in range(version - 1, max(version - 1 - lookback, 0), -1):
        frame = inputs.store.latest_table(inputs.record.name, str(earlier), "explanations")
        if frame is not None and {"feature", "mean_abs_shap_reference"} <= set(frame.columns):
            return str(earlier), frame.set_index("feature")["mean_abs_shap_reference"].astype(float)
    return None


def top_scores(inputs: Inputs, frame: pd.DataFrame, role: str, k: int) -> pd.Series:
    """Scores of the `k` highest-scoring rows: P(positive), or the predicted value for regressors
    (multiclass models have no single score, so no rows)."""
    scores = inputs.predictions.for_role(role) if inputs.predictions is not None else None
    if scores is None or not scores.ok or len(scores.frame) != len(frame) or k <= 0:
        return pd.Series(dtype=float)
    column = "score" if "score" in scores.frame.columns else "prediction"
    if column == "prediction" and inputs.predictions.task != "regression":
        return pd.Series(dtype=float)
    values = pd.to_numeric(pd.Series(scores.frame[column].to_numpy(), index=frame.index), errors="coerce")
    return values.nlargest(k)


def local_table(values: pd.DataFrame, frame: pd.DataFrame, scores: pd.Series) -> pd.DataFrame:
    """explanations_local.parquet: for each top row, every feature's value and SHAP, largest |SHAP| first."""
    long = values.rename_axis("row").reset_index().melt(id_vars="row", var_name="feature", value_name="shap")
    long["value"] = [
        fmt(frame.at[r, f]) if f in frame.columns else ""
        for r, f in zip(long["row"], long["feature"], strict=True)
    ]
    long["score"] = long["row"].map(scores)
    long["row_rank"] = long["row"].map({r: i + 1 for i, r in enumerate(values.index)})
    long["row"] = long["row"].astype(str)
    long = long.assign(_abs=long["shap"].abs()).sort_values(["row_rank", "_abs"], ascending=[True, False])
    return long.drop(columns="_abs")[["row_rank", "row", "score", "feature", "value", "shap"]].reset_index(
        drop=True
    )


def importance_plot(importance: pd.Series, title: str) -> bytes:
    from assurance.reporting.plots import bars

    top = importance.sort_values(ascending=False).head(20)
    return bars(list(top.index), list(top.to_numpy()), title, ylabel="mean |SHAP|")


def report(
    table_: pd.DataFrame,
    explainer: Explainer,
    attributions: dict[str, Attributions],
    local: pd.DataFrame | None,
) -> str:
    """Which explainer ran on how many rows, the SHAP plot, the drift table, then the local explanations."""
    lines = [explainer.note] if explainer.note else []
    lines.append(f"Explainer setup took {explainer.setup_seconds:.1f} s (outside the time budget)")
    lines += [
        f"Mean |SHAP| per feature on {role} data: {att.kind} explainer, {len(att.values):,} rows in "
        f"{att.seconds:.1f} s"
        + (
            f" (the time budget ran out after {len(att.values):,} of {att.requested:,} sampled rows)"
            if len(att.values) < att.requested
            else ""
        )
        for role, att in attributions.items()
    ]
    body = "\n".join(f"- {line}" for line in lines)
    shown = [c for c in table_.columns if c.startswith(("feature", "mean_abs_shap", "rank"))]
    parts = [
        body,
        f"![{PLOT}](plots/{PLOT}.png)",
        "Attribution drift (rank 1 = most important):",
        table(table_[shown].head(25)),
    ]
    if local is not None and len(local):
        head = local.groupby("row_rank").head(3)[["row_rank", "row", "score", "feature", "value", "shap"]]
        parts += ["Highest-scoring rows, top three features each:", table(head)]
    return "\n\n".join(parts)


def explain_datasets(
    inputs: Inputs, features: list[str], rules: Rules, section: Section
) -> tuple[Explainer, dict[str, Attributions], pd.Series]:
    """Reference and current attributions within the budget (reference gets half, current what is left),
    the current sample led by its highest-scoring rows so they are always explained. The budget starts
    once the explainer is built and warmed up; that setup is timed separately. Current data that cannot
    be explained is skipped with its reason; reference data that cannot be raises NotExplainable."""
    reference = inputs.reference.frame
    current = inputs.current.frame if inputs.current is not None and inputs.current.ok else None
    if current is not None and not set(features) <= set(current.columns):
        current = None
    rows = {"reference": sample(reference, rules.sample_rows, seed=1)}
    top = pd.Series(dtype=float)
    if current is not None:
        top = top_scores(inputs, current, "current", rules.local_rows)
        rest = sample(current, rules.sample_rows, seed=1).drop(index=top.index, errors="ignore")
        rows["current"] = pd.concat([current.loc[top.index], rest])
    background = sample(reference, rules.background_rows, seed=2)
    started = time.perf_counter()
    explainer = make_explainer(
        model=inputs.model, features=features, background=background, rows=pd.concat(rows.values())
    )
    explainer.setup_seconds = time.perf_counter() - started
    deadline = time.perf_counter() + rules.time_budget_seconds
    attributions = {"reference": explain_within(explainer, rows["reference"], rules.time_budget_seconds / 2)}
    if current is not None:
        try:
            attributions["current"] = explain_within(
                explainer, rows["current"], max(deadline - time.perf_counter(), 0.0)
            )
        except NotExplainable as exc:
            section.skip(f"current data could not be explained: {exc}")
    return explainer, attributions, top


def run(inputs: Inputs) -> Section:
    """Global and local SHAP explanations, and attribution drift, within the policy's time budget."""
    section = Section("explanations", "Explanations")
    if inputs.model is None:
        return section.skip("no loaded model to explain")
    if inputs.reference is None or not inputs.reference.ok:
        return section.skip("explanations need reference data")
    features = feature_columns(inputs, inputs.reference.frame)
    if not features:
        return section.skip("the model's features are not in the reference data")
    rules = load_rules(Rules, inputs.policy, "explanations")
    try:
        explainer, attributions, top = explain_datasets(inputs, features, rules, section)
    except NotExplainable as exc:
        return section.skip(f"the model cannot be explained: {exc}")
    current = attributions["current"].values if "current" in attributions else None
    previous = None
    try:
        previous = previous_importance(inputs, rules.previous_lookback) if inputs.store is not None else None
        if previous is None:
            section.skip("no explanations of an earlier version were found in the evidence store")
    except Exception as exc:  # noqa: BLE001 - unreadable earlier evidence only costs this comparison
        section.skip(f"earlier explanations could not be read: {describe_error(exc)}")
    table_ = importance_table(
        attributions["reference"].mean_abs,
        current.drop(index=top.index, errors="ignore").abs().mean() if current is not None else None,
        previous[1] if previous else None,
    )
    section.tables["explanations"] = table_
    severity = inputs.policy.severity(CHECK, "medium")
    local = None
    if current is not None:
        section.findings += drift_findings(
            table_, "reference", "current", "from reference to current data", "", rules, severity
        )
        local = local_table(current.loc[current.index.intersection(top.index)], inputs.current.frame, top)
        section.tables["explanations_local"] = local
    else:
        section.skip("no usable current data: no reference-vs-current drift and no local explanations")
    if previous is not None:
        label = f"from version {previous[0]} to this version (on reference data)"
        section.findings += drift_findings(
            table_, "previous", "reference", label, "previous:", rules, severity
        )
    section.plots[PLOT] = importance_plot(
        table_.set_index("feature")["mean_abs_shap_reference"], "Mean |SHAP| on reference data"
    )
    section.summary = report(table_, explainer, attributions, local)
    section.metrics = metrics(table_, explainer, attributions, rules)
    return section


def metrics(
    table_: pd.DataFrame, explainer: Explainer, attributions: dict[str, Attributions], rules: Rules
) -> dict[str, float]:
    out: dict[str, float] = {"seconds_setup": round(explainer.setup_seconds, 2)}
    for role, att in attributions.items():
        out[f"rows_explained_{role}"] = len(att.values)
        out[f"seconds_{role}"] = round(att.seconds, 2)
    if "current" in attributions:
        rho = drift(table_, "reference", "current", rules)[0]
        if np.isfinite(rho):
            out["rank_correlation_current"] = rho
    return out
