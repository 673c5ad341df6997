"""The per-version report: the decision first (recommendation, reasons, top findings), then what a review
committee reads (scope, conclusion, conditions; `committee`), the evidence, limitations, residual risk and
the sign-off block.

`build` gathers the report once as parts with Markdown bodies; `to_markdown`, `to_html` and
`reporting.pdf.to_pdf` only lay those parts out, so report.md, report.html and report.pdf say the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from assurance.checks.documentation import tag_problem
from assurance.domain.values import Sampling, Section, VersionRecord
from assurance.evidence.history import run_time
from assurance.policy.recommendation import Recommendation
from assurance.reporting import committee
from assurance.reporting import plots as charts
from assurance.reporting.markdown import table
from assurance.reporting.render import Images, Part, render
from assurance.reporting.trend import run_metrics

DECISION_LABEL = {"approve": "Approve", "approve_with_conditions": "Approve with conditions", "hold": "Hold"}
TOP_FINDINGS = 15
ALL_FINDINGS_ROWS = 500
TREND_PLOT = "trend"
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


@dataclass(frozen=True)
class VersionReport:
    """The report's content: the decision part first, then the evidence parts, and every plot they show."""

    title: str
    decision: str
    lead: Part
    parts: tuple[Part, ...]
    plots: dict[str, bytes]


def _rows(frame: pd.DataFrame, limit: int) -> str:
    if frame is None or len(frame) == 0:
        return "(none)"
    text = table(frame.head(limit))
    return text + (
        f"\n\n{len(frame) - limit} more rows are in the evidence table." if len(frame) > limit else ""
    )


def _decision(rec: Recommendation, findings: pd.DataFrame) -> Part:
    counts = ", ".join(f"{n} {s}" for s, n in rec.open_by_severity.items() if n) or "none"
    lines = [
        f"Open findings by severity: {counts}.",
        "",
        "### Reasons",
        "",
        *[f"- {r}" for r in rec.reasons[:TOP_FINDINGS]],
    ]
    if len(rec.reasons) > TOP_FINDINGS:
        lines.append(f"- and {len(rec.reasons) - TOP_FINDINGS} more (see [all findings](#all-findings))")
    top = findings[findings["status"] == "open"] if len(findings) else findings
    shown = top[["severity", "category", "subject", "message"]] if len(top) else top
    lines += ["", "### Top findings", "", _rows(shown, TOP_FINDINGS)]
    return Part(
        "recommendation",
        f"Recommendation: {DECISION_LABEL.get(rec.decision, rec.decision)}",
        "\n".join(lines),
    )


def _monitoring(url: str | None) -> str:
    """The dashboard as a Markdown autolink when it is a plain http(s) URL, else the text as set."""
    plain = (
        url is not None and tag_problem("monitoring_url", url) is None and not re.search(r"[\s<>|\\]", url)
    )
    return f"<{url}>" if plain else (url or "(not set)")


def _version(record: VersionRecord, provenance: dict[str, Any]) -> Part:
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
    rows.append(("Monitoring", _monitoring(tags.get("monitoring_url"))))
    text = table(pd.DataFrame(rows, columns=["field", "value"]))
    notes = "".join(f"\n- {n}" for n in record.notes)
    return Part("model-version", "Model version", text + (f"\n\nNotes:\n{notes}" if notes else ""))


def _data_md(data: dict[str, Any]) -> str:
    """Where the data came from and how much of it was judged: all rows, or a sample and why."""
    size = f"{data.get('rows', 0)} rows"
    if data.get("sampling"):
        size = f"{Sampling(**data['sampling']).describe()}; counts in this report are the sample's"
    desc = f"{data.get('uri') or '(none)'} ({size})"
    return desc + (f"; {data['error']}" if data.get("error") else "")


def _anchor(key: str) -> str:
    return "section-" + re.sub(r"[^a-z0-9_-]+", "-", key.lower())


def _section(section: Section) -> Part:
    parts = [section.summary.strip() or "(no summary)"]
    if section.skipped:
        parts += ["", "Not run:", "", *[f"- {s}" for s in section.skipped]]
    for name in section.plots:
        ref = f"plots/{name}.png"
        if ref not in section.summary:
            parts += ["", f"![{name}]({ref})"]
    return Part(_anchor(section.key), section.title, "\n".join(parts))


def _trend(earlier: pd.DataFrame | None, now: pd.DataFrame, run_id: str) -> tuple[Part, dict[str, bytes]]:
    """The headline metrics across the version's runs, earlier ones by time and this one last; with one
    run there is no trend."""
    earlier = earlier if earlier is not None else now.iloc[:0]
    runs = [*earlier.sort_values("at", kind="stable")["run_id"].drop_duplicates(), run_id]
    history = pd.concat([f for f in (earlier, now) if len(f)] or [now], ignore_index=True)
    if len(runs) < 2:
        body = "This is the first published run of this version: there is no trend yet."
        return Part("trend", "Trend across runs", body), {}
    number = {run: i + 1 for i, run in enumerate(runs)}
    ordered = history.assign(run=history["run_id"].map(number)).sort_values("run", kind="stable")
    series = {m: (g["run"].tolist(), g["value"].tolist()) for m, g in ordered.groupby("metric")}
    wide = history.pivot_table(index="metric", columns="run_id", values="value", aggfunc="last")
    picks = {"first run": runs[0]} if len(runs) > 2 else {}
    picks |= {"previous run": runs[-2], "this run": runs[-1]}
    shown = pd.DataFrame({"metric": wide.index, **{k: wide[r].map(_number) for k, r in picks.items()}})
    body = "\n\n".join(
        [
            f"Headline metrics over this version's last {len(runs)} published runs, this one last.",
            f"![Headline metrics across runs](plots/{TREND_PLOT}.png)",
            table(shown.reset_index(drop=True)),
        ]
    )
    return Part("trend", "Trend across runs", body), {
        TREND_PLOT: charts.trend(series, "Headline metrics by run")
    }


def _number(value: float) -> str:
    """A headline value with the digits it needs: a count stays whole, a share keeps four figures."""
    return "" if pd.isna(value) else f"{value:.4g}"


def _provenance(provenance: dict[str, Any], evidence: list[str]) -> Part:
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
    links = ", ".join(f"[{name}]({name})" for name in evidence)
    body = (
        table(pd.DataFrame(rows, columns=["field", "value"]))
        + f"\n\nEvidence files beside this report: {links}."
    )
    return Part("provenance", "Provenance", body)


def build(
    record: VersionRecord,
    rec: Recommendation,
    findings: pd.DataFrame,
    sections: list[Section],
    provenance: dict[str, Any],
    earlier: pd.DataFrame | None = None,
) -> VersionReport:
    """The report of one run; `earlier` holds the headline metrics of the version's earlier runs (`trend`)."""
    tables = {"findings": findings, **{stem: t for s in sections for stem, t in s.tables.items()}}
    run_id = str(provenance.get("run_id"))
    now = run_metrics(run_id, run_time(provenance, run_id), tables)
    trend, trend_plots = _trend(earlier, now, run_id)
    everything = findings[FINDING_COLUMNS] if len(findings) else findings
    earlier_runs = earlier["run_id"].nunique() if earlier is not None and len(earlier) else 0
    parts = (
        committee.scope(provenance, sections, earlier_runs),
        committee.conclusion(rec, findings),
        committee.conditions(rec, findings),
        _version(record, provenance),
        *[_section(s) for s in sections],
        trend,
        Part("all-findings", "All findings", _rows(everything, ALL_FINDINGS_ROWS), open=len(findings) <= 50),
        committee.limitations(sections, provenance),
        committee.residual_risk(findings, sections),
        _provenance(provenance, [f"{stem}.parquet" for stem in tables]),
        committee.sign_off(provenance),
    )
    plots = {name: png for s in sections for name, png in s.plots.items()} | trend_plots
    title = f"Model assurance report: {record.name} version {record.version}"
    return VersionReport(title, rec.decision, _decision(rec, findings), parts, plots)


def to_markdown(report: VersionReport) -> str:
    """report.md: the title, then each part as a second-level heading (plots referenced as plots/*.png)."""
    blocks = [f"# {report.title}", *[f"## {p.title}\n\n{p.body}" for p in (report.lead, *report.parts)]]
    return "\n\n".join(blocks) + "\n"


def to_html(report: VersionReport) -> str:
    """report.html: self-contained (plots inline as data URIs), with a table of contents and collapsible parts."""
    return render(
        "version_report.html.j2",
        title=report.title,
        decision=report.lead,
        decision_class=report.decision,
        toc=[report.lead, *report.parts],
        parts=report.parts,
        images=Images.of(report.plots),
    )
