"""A small, safe markdown-to-HTML converter for the report.

Report text mixes our words with values from users (tags, column names, descriptions). Everything is
HTML-escaped first and only then given structure, so no user value can inject markup.
"""

from __future__ import annotations

import html
import re

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
