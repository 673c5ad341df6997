"""The per-version report: the decision first (recommendation, reasons, top findings), then the evidence."""

from __future__ import annotations

import base64
import html
from typing import Any

import pandas as pd

from assurance.domain.values import Sampling, Section, VersionRecord
from assurance.policy.recommendation import Recommendation
from assurance.reporting.html import page, to_html
from assurance.reporting.markdown import table

DECISION_LABEL = {"approve": "Approve", "approve_with_conditions": "Approve with conditions", "hold": "Hold"}
TOP_FINDINGS = 15
ALL_FINDINGS_ROWS = 500
FINDING_COLUMNS = [
    "severity",
    "category",
    "check",
    "subject",
    "message",
    "observed",
    "threshold",
    "status",
    "finding_id",
]


def _rows(frame: pd.DataFrame, limit: int) -> str:
    if frame is None or len(frame) == 0:
        return "(none)"
    text = table(frame.head(limit))
    return text + (
        f"\n\n{len(frame) - limit} more rows are in the evidence table." if len(frame) > limit else ""
    )


def _decision_md(record: VersionRecord, rec: Recommendation, findings: pd.DataFrame) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in rec.open_by_severity.items() if n) or "none"
    lines = [
        f"# Model assurance report: {record.name} version {record.version}",
        "",
        f"## Recommendation: {DECISION_LABEL.get(rec.decision, rec.decision)}",
        "",
        f"Open findings by severity: {counts}.",
        "",
        "### Reasons",
        "",
        *[f"- {r}" for r in rec.reasons[:TOP_FINDINGS]],
    ]
    if len(rec.reasons) > TOP_FINDINGS:
        lines.append(f"- and {len(rec.reasons) - TOP_FINDINGS} more (see all findings below)")
    top = findings[findings["status"] == "open"] if len(findings) else findings
    shown = top[["severity", "category", "subject", "message"]] if len(top) else top
    lines += ["", "### Top findings", "", _rows(shown, TOP_FINDINGS)]
    return "\n".join(lines)


def _version_md(record: VersionRecord, provenance: dict[str, Any]) -> str:
    tags = record.tags
    rows = [
        ("Owner", tags.get("owner") or "(not set)"),
        ("Use case", tags.get("use_case") or "(not set)"),
        ("Aliases", ", ".join(record.aliases) or "(none)"),
        ("Status", record.status),
        ("Source run", record.run_id or "(none)"),
        ("Model source", record.source),
        ("Flavors", ", ".join(record.flavors) or "(unknown)"),
        ("Model loaded as", provenance.get("model_loader") or "(not loaded)"),
        (
            "Features in signature",
            str(len(record.feature_names)) if record.feature_names else "(no signature)",
        ),
    ]
    rows += [(f"{role.title()} data", _data_md(data)) for role, data in provenance.get("data", {}).items()]
    notes = "".join(f"\n- {n}" for n in record.notes)
    return (
        "## Model version\n\n"
        + table(pd.DataFrame(rows, columns=["field", "value"]))
        + (f"\n\nNotes:\n{notes}" if notes else "")
    )


def _data_md(data: dict[str, Any]) -> str:
    """Where the data came from and how much of it was judged: all rows, or a sample and why."""
    size = f"{data.get('rows', 0)} rows"
    if data.get("sampling"):
        size = f"{Sampling(**data['sampling']).describe()}; counts in this report are the sample's"
    desc = f"{data.get('uri') or '(none)'} ({size})"
    return desc + (f"; {data['error']}" if data.get("error") else "")


def _section_md(section: Section) -> str:
    parts = [f"## {section.title}", "", section.summary.strip() or "(no summary)"]
    if section.skipped:
        parts += ["", "Not run:", "", *[f"- {s}" for s in section.skipped]]
    for name in section.plots:
        ref = f"plots/{name}.png"
        if ref not in section.summary:
            parts += ["", f"![{name}]({ref})"]
    return "\n".join(parts)


def _provenance_md(provenance: dict[str, Any]) -> str:
    rows = [
        ("Run id", provenance.get("run_id")),
        ("Model URI", provenance.get("model_uri")),
        ("Policy", f"{provenance.get('policy_source')} (sha256 {str(provenance.get('policy_hash'))[:12]})"),
        ("Package version", provenance.get("package_version")),
        ("Started", provenance.get("started_at")),
        ("Finished", provenance.get("finished_at")),
    ]
    rows += [
        (f"{role.title()} data sha256", str(d.get("fingerprint")))
        for role, d in provenance.get("data", {}).items()
    ]
    return "## Provenance\n\n" + table(pd.DataFrame(rows, columns=["field", "value"]))


def render_markdown(
    record: VersionRecord,
    rec: Recommendation,
    findings: pd.DataFrame,
    sections: list[Section],
    provenance: dict[str, Any],
) -> str:
    everything = findings[FINDING_COLUMNS] if len(findings) else findings
    blocks = [
        _decision_md(record, rec, findings),
        _version_md(record, provenance),
        *[_section_md(s) for s in sections],
        "## All findings\n\n" + _rows(everything, ALL_FINDINGS_ROWS),
        _provenance_md(provenance),
    ]
    return "\n\n".join(blocks) + "\n"


def render_html(markdown_text: str, rec: Recommendation, plots: dict[str, bytes], title: str) -> str:
    """Self-contained HTML: plots inline as data URIs, every value escaped by the converter."""
    images = {
        f"plots/{n}.png": "data:image/png;base64," + base64.b64encode(b).decode() for n, b in plots.items()
    }
    decision, _, rest = markdown_text.partition("\n## Model version")
    body = (
        f'<div class="decision {html.escape(rec.decision)}">{to_html(decision, images)}</div>'
        f"<section>{to_html('## Model version' + rest, images)}</section>"
    )
    return page(title, body)
