"""What people do after the demo's first assurance, so the demo shows the governance records too: the
review committee holds credit_default v2 with a recorded decision bound to its evidence, and the owner of
loss_given_default closes its missing-owner finding by hand, with the evidence of the fix (the next run
confirms or reopens it). The command line refreshes the portfolio before and after, so the KPI history
holds two portfolio runs.
"""

from __future__ import annotations

from assurance.demo.generator import CREDIT, LGD
from assurance.domain.findings import finding_id
from assurance.evidence.store import EvidenceStore
from assurance.governance.decisions import decision_tags, record_decision
from assurance.governance.remediation import close
from assurance.registry.client import Registry

DECISION_REASON = (
    "Accuracy, ROC AUC and calibration fell from the holdout to production, the south region underperforms "
    "and the release was never approved: hold until the model is retrained and the approval recorded."
)
CLOSED_CHECK, CLOSED_SUBJECT = "documentation.missing_tag", "owner"


def record_governance(store: EvidenceStore, registry: Registry) -> list[str]:
    """Record the demo's decision and manual closure; returns one line per record for the command's output."""
    decision = record_decision(store, CREDIT, "2", "hold", "model-risk-committee", DECISION_REASON)
    registry.set_decision_tags(CREDIT, "2", decision_tags(decision))
    closed = close(
        store,
        finding_id(LGD, CLOSED_CHECK, CLOSED_SUBJECT),
        "https://tickets.example.com/LGD-42",
        "lgd-model-owner",
        note="owner tag requested from the registry admins",
        version="1",
    )
    return [
        f"decision: {CREDIT} v2 {decision['decision']} by {decision['by']}, bound to run {decision['run_id']}",
        *(
            f"manual closure: {LGD} v{r['version']} {CLOSED_CHECK} ({CLOSED_SUBJECT}) by {r['by']}"
            for r in closed
        ),
    ]
