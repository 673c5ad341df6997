"""The parts of the version report a review committee reads before it signs: scope and approach, the
conclusion by root cause, conditions with owners and exit criteria, limitations, residual risk, the next
review date and a sign-off block.

All of it is derived from the run's own evidence (findings, sections, provenance), so the committee text
can never disagree with the findings table; people add their names and decisions in the sign-off block
(and record them with `assurance decide`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from assurance.checks.coverage import ran
from assurance.domain.findings import severity_rank
from assurance.domain.values import Section
from assurance.policy.recommendation import Recommendation
from assurance.reporting.markdown import table
from assurance.reporting.render import Part

# Where a problem comes from decides who fixes it: the data feed's owners, the model's developers, the
# model owner's paperwork, or the release process.
ROOT_CAUSES = {
    "data feed": ("data_quality", "schema", "drift"),
    "model": ("performance", "fairness", "robustness", "leakage", "explainability", "reproducibility"),
    "documentation": ("documentation",),
    "process": ("change_control", "monitoring"),
}
CONDITION_SEVERITIES = ("critical", "high", "medium")
SIGNERS = ("Model owner", "Independent validator", "Committee chair")


def _open(findings: pd.DataFrame) -> pd.DataFrame:
    return findings[findings["status"] == "open"] if len(findings) else findings


def scope(provenance: dict[str, Any], sections: list[Section], earlier_runs: int) -> Part:
    review = provenance.get("review") or {}
    kind = (
        f"monitoring: run {earlier_runs + 1} of this version, judged against the same policy"
        if earlier_runs
        else "initial validation: the first assurance of this version"
    )
    rows = [
        ("Review", kind),
        ("Risk tier", f"{review.get('tier', '(unknown)')}: {review.get('tier_rationale', '')}".strip()),
        ("Policy", f"{provenance.get('policy_source')} (sha256 {str(provenance.get('policy_hash'))[:12]})"),
    ]
    for role, data in (provenance.get("data") or {}).items():
        window = f"{data.get('uri') or '(none)'}, {data.get('rows', 0):,} rows"
        if data.get("fingerprint"):
            window += f", sha256 {str(data['fingerprint'])[:12]}"
        rows.append((f"{role.title()} data window", window))
    done = [s.title for s in sections if ran(s)]
    rows.append(("Analyses run", ", ".join(done) or "(none)"))
    body = (
        "Each analysis's checks decide on effect size and sampling noise together (a finding is material and "
        "beyond chance at the data's size); the recommendation follows the policy's rule over the open "
        "findings.\n\n" + table(pd.DataFrame(rows, columns=["item", "value"]))
    )
    return Part("scope", "Scope and approach", body)


def conclusion(rec: Recommendation, findings: pd.DataFrame) -> Part:
    open_ = _open(findings)
    rows = []
    for cause, categories in ROOT_CAUSES.items():
        own = open_[open_["category"].isin(categories)] if len(open_) else open_
        if not len(own):
            continue
        worst = own.iloc[own["severity"].map(severity_rank).argmin()]
        counts = own["severity"].value_counts()
        rows.append(
            {
                "root cause": cause,
                "open findings": ", ".join(f"{counts[s]} {s}" for s in counts.index),
                "most severe": f"{worst['severity']}: {worst['message']}",
            }
        )
    lead = f"The evidence supports **{rec.decision.replace('_', ' ')}**."
    if not rows:
        return Part("conclusion", "Conclusion", lead + " No finding is open.")
    return Part(
        "conclusion",
        "Conclusion",
        lead + " Open findings by where the problem comes from:\n\n" + table(pd.DataFrame(rows)),
    )


def conditions(rec: Recommendation, findings: pd.DataFrame) -> Part:
    open_ = _open(findings)
    due = open_[open_["severity"].isin(CONDITION_SEVERITIES)] if len(open_) else open_
    if rec.decision == "approve" or not len(due):
        return Part("conditions", "Conditions", "None: no open finding of medium severity or worse.")
    frame = pd.DataFrame(
        {
            "condition": due["message"],
            "owner": due["owner"].replace("", "(model owner not tagged)"),
            "due": due["due"].map(lambda t: "" if pd.isna(t) else pd.Timestamp(t).date().isoformat()),
            "exit criterion": [
                f"a later run no longer reports `{c}` on {s}"
                for c, s in zip(due["check"], due["subject"], strict=True)
            ],
            "finding_id": due["finding_id"],
        }
    )
    return Part("conditions", "Conditions", table(frame))


def limitations(sections: list[Section], provenance: dict[str, Any]) -> Part:
    lines = [f"- {s.title}: {reason}" for s in sections for reason in s.skipped]
    for role, data in (provenance.get("data") or {}).items():
        if data.get("sampling"):
            lines.append(
                f"- {role.title()} data was judged on a seeded sample (the data exceeded the memory budget)."
            )
        if data.get("error"):
            lines.append(f"- {role.title()} data could not be used: {data['error']}")
    return Part(
        "limitations", "Limitations", "\n".join(lines) or "None recorded: every analysis ran in full."
    )


def residual_risk(findings: pd.DataFrame, sections: list[Section]) -> Part:
    accepted = findings[findings["status"] == "accepted"] if len(findings) else findings
    low = _open(findings)
    low = low[low["severity"].isin(["low", "info"])] if len(low) else low
    not_run = [s.title for s in sections if not ran(s)]
    lines = [
        f"- {len(accepted)} accepted risk(s) stay open until their acceptances expire.",
        f"- {len(low)} low or informational finding(s) stay open without a condition.",
        "- Analyses that did not run leave their risks unassessed: " + (", ".join(not_run) or "none") + ".",
    ]
    shown = accepted[["severity", "subject", "message"]] if len(accepted) else accepted
    return Part(
        "residual-risk", "Residual risk", "\n".join(lines) + ("\n\n" + table(shown) if len(shown) else "")
    )


def sign_off(provenance: dict[str, Any]) -> Part:
    review = provenance.get("review") or {}
    next_review = review.get("next_review") or "none set for this tier"
    frame = pd.DataFrame(
        {"role": SIGNERS, "name": [""] * 3, "decision": [""] * 3, "date": [""] * 3, "signature": [""] * 3}
    )
    body = (
        f"**Next review due:** {next_review} (the {review.get('tier', '')} tier's revalidation interval).\n\n"
        f"Evidence run `{provenance.get('run_id')}`; record the decision with `assurance decide`, which binds it "
        "to this run.\n\n" + table(frame)
    )
    return Part("sign-off", "Next review and sign-off", body)
