"""Small VersionRecord builders shared by the governance tests."""

from __future__ import annotations

from assurance.domain.values import VersionRecord

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
    )
