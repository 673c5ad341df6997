"""The one HTML renderer of the published reports (the version report and the portfolio report).

`page` wraps a body in the one page shell and the one stylesheet; `to_html` turns report markdown into
HTML; `frame_table` renders a DataFrame as an HTML table. Report text mixes our words with values from
users (tags, column names, descriptions): everything is HTML-escaped first and only then given
structure, so no user value can inject markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

STYLESHEET = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;margin:2rem auto;padding:0 1rem;color:#1f2328}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.86rem}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{background:#f6f8fa;padding:0 .2rem}.decision{padding:.5rem 1rem;border-radius:8px;margin:1rem 0}
.approve{background:#dafbe1}.approve_with_conditions{background:#fff8c5}.hold{background:#ffebe9}
img{max-width:100%}section{border-top:1px solid #d0d7de;margin-top:1.5rem}
"""


def page(title: str, body: str) -> str:
    """A self-contained HTML document: the escaped title, the one stylesheet, and `body` (already HTML)."""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLESHEET}</style></head><body>{body}</body></html>"
    )


def frame_table(
    frame: pd.DataFrame, columns: Sequence[str], text: Callable[[object], str] = str, limit: int | None = None
) -> str:
    """`columns` of `frame` as an HTML table, each value shown by `text` and escaped; at most `limit` rows,
    with a note saying how many more the evidence table holds."""
    if frame.empty:
        return "<p>(none)</p>"
    shown = frame if limit is None else frame.head(limit)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(text(getattr(r, c)))}</td>" for c in columns) + "</tr>"
        for r in shown[list(columns)].itertuples(index=False)
    )
    more = len(frame) - len(shown)
    note = f"<p>{more} more rows are in the evidence table.</p>" if more > 0 else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
]
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def inline(text: str) -> str:
    out = html.escape(text.replace("\\|", "|").replace("\\\\", "\\"), quote=True)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def _table(lines: list[str]) -> str:
    rows = [[c.strip() for c in _CELL_SPLIT.split(line.strip())[1:-1]] for line in lines]
    rows = [r for r in rows if r and not all(set(c) <= set("-: ") for c in r)]
    if not rows:
        return ""
    head = "".join(f"<th>{inline(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(text: str, images: dict[str, str] | None = None) -> str:
    """Headings, paragraphs, bullet lists, pipe tables and images (`images` maps a path to a data URI)."""
    images = images or {}
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            i += 1
            continue
        if line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            out.append(_table(block))
            continue
        if line.startswith(("- ", "* ")):
            items = []
            while i < len(lines) and lines[i].startswith(("- ", "* ")):
                items.append(f"<li>{inline(lines[i][2:])}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if heading:
            level = min(len(heading.group(1)) + 1, 6)
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif image := _IMAGE.match(line.strip()):
            alt, src = image.groups()
            if src in images:
                out.append(f'<figure><img alt="{html.escape(alt)}" src="{images[src]}"></figure>')
        else:
            out.append(f"<p>{inline(line)}</p>")
        i += 1
    return "\n".join(out)
