"""Markdown tables for report sections, with cell text escaped so data values cannot break the layout."""

from __future__ import annotations

import math
import re

import pandas as pd


def cell(value: object, digits: int = 3) -> str:
    """One table cell: floats rounded, missing values blank, pipes and newlines escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        text = f"{value:.{digits}f}" if abs(value) < 10**6 else f"{value:.{digits}g}"
    else:
        text = str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")


def without_images(markdown: str) -> str:
    """`markdown` with each image replaced by a note naming the plot.

    Section summaries point at plots relative to the evidence folder; shown anywhere else (Dagster's
    asset metadata) such a path is a broken image, so the note sends the reader to the report instead.
    """
    return IMAGE.sub(
        lambda m: f"(plot `{m.group(1).replace('`', '') or 'image'}` is in the evidence report)", markdown
    )


def table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-style markdown table of `frame` (its index is dropped)."""
    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v, digits) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])
