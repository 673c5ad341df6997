"""A small demo version assured in memory, once, so that the libraries' first-use set-up is behind us.

Importing Great Expectations, Evidently, SHAP or matplotlib is only part of their cost: the first data
context, metric, explainer or figure of a process builds registries, validators and font caches, about
4 s together on two cores. The warm run launcher's fork server rehearses once before it forks run
workers, so each worker starts with that done. Nothing is written: there is no store, and the report is
rendered to bytes only.
"""

from __future__ import annotations

import logging

from assurance.demo import generator as demo
from assurance.domain.values import Dataset, Inputs, VersionRecord
from assurance.policy.model import Policy

ROWS = 400
log = logging.getLogger(__name__)


def small_version(rows: int = ROWS) -> Inputs:
    """A scored credit version of the demo's kind, with labels, slices and protected attributes."""
    from assurance.scoring.models import from_estimator
    from assurance.scoring.predict import predict

    train, reference, current = (demo.generate(rows, seed) for seed in (1, 2, 3))
    model = from_estimator(
        demo.classifier(seed=0, max_iter=20).fit(train[demo.FEATURES], train[demo.LABEL]), demo.FEATURES
    )
    ref = Dataset("reference", "memory://reference", frame=reference, label=demo.LABEL)
    cur = Dataset("current", "memory://current", frame=current, label=demo.LABEL)
    tags = {"assurance.label": demo.LABEL, "assurance.slices": "region", "assurance.protected": "gender"}
    record = VersionRecord(
        name="rehearsal", version="1", tags=tags, model_tags={}, version_tags=tags, aliases=[], status="READY",
        source="memory", run_id=None, model_id=None, created_ms=None, updated_ms=None,
    )  # fmt: skip
    return Inputs(record, Policy(), ref, cur, predict(model, ref, cur), model, store=None)


def rehearse() -> None:
    """Every analysis once on a small version, and a report page rendered to PDF; failures are only logged,
    since a worker that starts cold is slower, not wrong."""
    from assurance.checks.catalog import all_analyses
    from assurance.reporting.pdf import to_pdf

    try:
        inputs = small_version()
        sections = [a.run(inputs) for a in all_analyses() if "champion" not in a.needs]
        to_pdf("\n\n".join(s.summary or s.title for s in sections), {}, "rehearsal")
    except Exception:  # noqa: BLE001 - see the docstring
        log.warning("the rehearsal before forking run workers failed; workers start cold", exc_info=True)
