"""What the tests share: version records, a small synthetic model version, and a webhook receiver.

- `make_record` builds a VersionRecord as the registry adapter would, for tests that need no registry.
- The synthetic version: loan-like rows whose label follows a logistic model of income, tenure and
  channel; region and gender play no part in the label, so a model fitted on clean rows is fair and
  uniform across them. Tests plant one problem at a time (scrambled labels in a region, a
  label-copying feature, rows shared between reference and current, an ID column) and check that the
  analyses find exactly that.
- `webhook_receiver`: a tiny HTTP server on 127.0.0.1 for alert tests, recording every JSON POST and
  which ones it accepted.
- `accept_concurrently`, `decide_concurrently`: many people accepting one finding, or deciding on one
  version, at the same moment, each with their own store.
- `registry_tick`: one evaluation of the registry sensor against a real registry.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd

from assurance.domain.values import Dataset, Inputs, VersionRecord
from assurance.evidence.store import EvidenceStore
from assurance.governance.decisions import record_decision
from assurance.governance.ledger import accept
from assurance.policy.model import Policy
from assurance.scoring.models import ScoringModel, from_estimator
from assurance.scoring.predict import predict
from assurance.settings import Settings

# --- version records ---------------------------------------------------------------------------------

GOOD_CARD = """# Model card: credit default scorer

## Intended use
Scores retail credit applications for the probability of default within twelve months; the score
supports, and never replaces, an underwriter's decision.

## Training data
Applications from 2019 to 2023 with observed outcomes, described in datasheet.md, after removing
duplicates and applications withdrawn before a decision.

## Performance
ROC AUC 0.81 on a time-based holdout; calibration checked by decile.

## Limitations
Not validated for business lending or for applicants without a credit history.
"""


def make_record(
    name: str = "credit",
    version: str = "1",
    model_tags: dict[str, str] | None = None,
    version_tags: dict[str, str] | None = None,
    aliases: list[str] | None = None,
    documents: dict[str, str] | None = None,
    artifacts: list[str] | None = None,
    created_ms: int | None = 1_700_000_000_000,
    run_id: str | None = "run123",
    signature: list[dict] | None = None,
) -> VersionRecord:
    """A version whose run artifacts default to its documents (plus the model folder)."""
    model_tags = dict(model_tags or {})
    version_tags = dict(version_tags or {})
    documents = dict(documents or {})
    return VersionRecord(
        name=name,
        version=version,
        tags={**model_tags, **version_tags},
        model_tags=model_tags,
        version_tags=version_tags,
        aliases=list(aliases or []),
        status="READY",
        source=f"models:/m-{name}",
        run_id=run_id,
        model_id=None,
        created_ms=created_ms,
        updated_ms=created_ms,
        run_artifacts=sorted(artifacts if artifacts is not None else [*documents, "model"]),
        documents=documents,
        signature_inputs=copy.deepcopy(signature),
    )


# --- the synthetic model version ---------------------------------------------------------------

LABEL = "target"
NUMERIC = ["income", "age", "tenure"]
CATEGORICAL = ["channel", "region", "gender"]
FEATURES = [*NUMERIC, "channel", "region"]
REGIONS = ["north", "south", "east", "west"]


def make_frame(n: int, seed: int) -> pd.DataFrame:
    """`n` rows with a label that depends on income, tenure and channel only."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(10.5, 0.4, n),
            "age": rng.integers(21, 75, n),
            "tenure": rng.exponential(4.0, n),
            "channel": rng.choice(["web", "branch", "phone"], n, p=[0.5, 0.3, 0.2]),
            "region": rng.choice(REGIONS, n),
            "gender": rng.choice(["F", "M"], n),
        }
    )
    z = (
        3.0 * (np.log(frame["income"]) - 10.5) / 0.4
        - 0.8 * (frame["tenure"] - 4.0)
        + 1.5 * (frame["channel"] == "web")
        - 0.7
    )
    frame[LABEL] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return frame


def scramble_labels(frame: pd.DataFrame, column: str, value: Any, seed: int) -> pd.DataFrame:
    """Replace the labels of rows where `column == value` with coin flips (the planted slice problem)."""
    out = frame.copy()
    mask = out[column] == value
    out.loc[mask, LABEL] = np.random.default_rng(seed).integers(0, 2, int(mask.sum()))
    return out


def classifier(kind: str = "boosting", features: list[str] | None = None):
    """An unfitted sklearn Pipeline: one-hot categoricals, then boosting or a scaled logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = features or FEATURES
    cats = [c for c in features if c in CATEGORICAL]
    nums = [c for c in features if c not in CATEGORICAL]
    scale = StandardScaler() if kind == "logistic" else "passthrough"
    prep = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats), ("num", scale, nums)]
    )
    final = (
        LogisticRegression(max_iter=500)
        if kind == "logistic"
        else GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0)
    )
    return Pipeline([("prep", prep), ("model", final)])


def fit(frame: pd.DataFrame, kind: str = "boosting", features: list[str] | None = None) -> ScoringModel:
    features = features or FEATURES
    estimator = classifier(kind, features).fit(frame[features], frame[LABEL])
    return from_estimator(estimator, features)


def policy_with(overrides: dict[str, Any]) -> Policy:
    """The default policy with some thresholds replaced, keyed `group.name` (e.g. `explanations.top_k`)."""
    data = copy.deepcopy(Policy().data)
    for dotted, value in overrides.items():
        group, name = dotted.split(".")
        data["thresholds"][group][name] = value
    return Policy(data, "test")


def record(tags: dict[str, str] | None = None) -> VersionRecord:
    """Version 2 of `credit`, labelled `target`, sliced by region and channel, protected attribute gender."""
    defaults = {
        "assurance.label": LABEL,
        "assurance.slices": "region,channel",
        "assurance.protected": "gender",
    }
    return make_record(name="credit", version="2", version_tags={**defaults, **(tags or {})})


def inputs(
    reference: pd.DataFrame,
    current: pd.DataFrame | None,
    model: ScoringModel,
    tags: dict[str, str] | None = None,
    policy: Policy | None = None,
    store: Any = None,
    label: str = LABEL,
) -> Inputs:
    """Inputs as the Dagster layer builds them, with predictions from the model on both datasets."""
    ref = Dataset("reference", "memory://reference", frame=reference, label=label)
    cur = Dataset("current", "memory://current", frame=current, label=label) if current is not None else None
    return Inputs(
        record=record(tags),
        policy=policy or Policy(),
        reference=ref,
        current=cur,
        predictions=predict(model, ref, cur),
        model=model,
        store=store,
    )


# --- webhook receiver --------------------------------------------------------------------------


@dataclass
class Receiver:
    """Every JSON POST in `received`; those it answered with a 2xx (set `status` to take it down) in `accepted`."""

    url: str
    status: int = 200
    received: list[dict] = field(default_factory=list)
    accepted: list[dict] = field(default_factory=list)


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[Receiver]:
    receiver = Receiver(url="", status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            payload, status = json.loads(body), receiver.status
            receiver.received.append(payload)
            if 200 <= status < 300:
                receiver.accepted.append(payload)
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


# --- concurrent writers --------------------------------------------------------------------------


def all_at_once(people: int, one: Callable[[int], list[dict]]) -> list[dict]:
    """`one(i)` for `people` people at once, released together by a barrier so their reads and writes
    overlap; returns every record they were told was written."""
    start = threading.Barrier(people)

    def released(i: int) -> list[dict]:
        start.wait()
        return one(i)

    with ThreadPoolExecutor(people) as pool:
        return [record for records in pool.map(released, range(people)) for record in records]


def accept_concurrently(root: str, finding_id: str, people: int, now: datetime) -> list[dict]:
    """`people` analysts accepting `finding_id` at once, each through their own store."""
    return all_at_once(
        people,
        lambda i: accept(
            EvidenceStore(root),
            finding_id,
            f"compensating control {i}",
            "2099-01-01",
            f"analyst-{i}",
            now=now,
        ),
    )


def decide_concurrently(root: str, model: str, version: str, people: int, now: datetime) -> list[dict]:
    """`people` analysts recording a decision on one version at once, each through their own store."""
    return all_at_once(
        people,
        lambda i: [
            record_decision(
                EvidenceStore(root), model, version, "hold", f"analyst-{i}", f"reason {i}", now=now
            )
        ],
    )


# --- the registry sensor ----------------------------------------------------------------------------


def registry_tick(instance, uri: str, cursor: str | None = None, settings: Settings | None = None):
    """One tick of the registry sensor on the registry at `uri`; no settle period unless `settings` set one
    (versions in tests are seconds old)."""
    import dagster as dg

    from resources import RegistryResource
    from sensors.registry_sensor import build_registry_sensor

    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"registry": RegistryResource(tracking_uri=uri)}
    )
    return build_registry_sensor(settings or Settings(sensor_settle_seconds=0))(context)


def synthetic_refs(models: int, versions: int) -> list:
    """A registry snapshot of `models` models with `versions` versions each, the last behind `production`."""
    from assurance.registry.client import VersionRef

    return [
        VersionRef(
            f"model_{m:03d}",
            str(v),
            "READY",
            {
                "owner": f"team{m % 7}",
                "assurance.current": f"s3://b/{m}/{v}/current.parquet",
                "risk_tier": "high",
            },
            ("production",) if v == versions else (),
            f"run-{m}-{v}",
            m * 100 + v,
        )
        for m in range(models)
        for v in range(1, versions + 1)
    ]
