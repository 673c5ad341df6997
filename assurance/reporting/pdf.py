"""report.pdf: the version report as a PDF, made from report.md with pure-Python fpdf2.

The PDF is laid out from the same Markdown as report.md, through the same markdown-it renderer as the
HTML, so it says the same: decision, reasons, findings, section summaries with their tables and plots.
fpdf2 needs no system libraries (a fresh machine with only Python and pip renders it), and its
`write_html` takes the plain HTML subset markdown-it emits. Text is set in the DejaVu fonts matplotlib
ships, which cover far more than the Latin-1 of PDF core fonts (tag values and column names may be in any
script; glyphs DejaVu lacks are dropped with a log line, not an error). Pages are landscape A4, so the
wide evidence tables keep readable columns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from markdown_it.renderer import RendererHTML
from markdown_it.token import Token

from assurance.reporting.render import Images, markdown_parser

if TYPE_CHECKING:
    from fpdf import FPDF

FAMILY = "dejavu"
MONO = "dejavu-mono"
FONT_FILES = {
    (FAMILY, ""): "DejaVuSans.ttf",
    (FAMILY, "B"): "DejaVuSans-Bold.ttf",
    (FAMILY, "I"): "DejaVuSans-Oblique.ttf",
    (FAMILY, "BI"): "DejaVuSans-BoldOblique.ttf",
    (MONO, ""): "DejaVuSansMono.ttf",
}
FONT_SIZE = 8
IMAGE_WIDTH = 640
MAX_COLUMN_CHARS = 60
MIN_COLUMN_CHARS = 4


def _fonts() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _document(title: str) -> FPDF:
    from fpdf import FPDF

    # fontTools logs each table it prunes while fpdf2 subsets the fonts: dozens of INFO lines per report
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_title(title)
    pdf.set_creator("model-assurance")
    folder = _fonts()
    for (family, style), name in FONT_FILES.items():
        pdf.add_font(family, style, str(folder / name))
    pdf.set_margins(12, 12, 12)
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_page()
    return pdf


def _styles() -> dict:
    from fpdf.fonts import FontFace, TextStyle

    heading = {"color": "#1f2328", "b_margin": 1.5}
    return {
        "code": FontFace(family=MONO),
        "pre": TextStyle(font_family=MONO, font_size_pt=FONT_SIZE),
        "a": FontFace(color="#0969da"),
        "h1": TextStyle(font_size_pt=16, t_margin=2, **heading),
        "h2": TextStyle(font_size_pt=13, t_margin=5, **heading),
        "h3": TextStyle(font_size_pt=10, t_margin=3, **heading),
    }


def _fit_tables(tokens: list[Token]) -> None:
    """Shape tables for fpdf2: cells as plain text (it cannot nest inline markup in a cell), left-aligned,
    and column widths in proportion to their longest text (capped, so one long message column does not
    squeeze the rest to a letter a line)."""
    as_text = RendererHTML().renderInlineAsText
    first_row: list[Token] = []
    lengths: list[int] = []
    column = 0
    for i, token in enumerate(tokens):
        if token.type == "table_open":
            first_row, lengths = [], []
        elif token.type == "tr_open":
            column = 0
        elif token.type in ("th_open", "td_open"):
            plain = as_text(tokens[i + 1].children or [], {}, {})
            tokens[i + 1].children = [Token("text", "", 0, content=plain)]
            token.attrSet("align", "left")
            if column == len(lengths):
                lengths.append(0)
                first_row.append(token)
            lengths[column] = max(lengths[column], min(len(plain), MAX_COLUMN_CHARS))
            column += 1
        elif token.type == "table_close":
            weights = [max(n, MIN_COLUMN_CHARS) for n in lengths]
            for cell, weight in zip(first_row, weights, strict=True):
                cell.attrSet("width", f"{100 * weight / sum(weights):.1f}%")


def _html(markdown_text: str, plots: Mapping[str, bytes]) -> str:
    parser = markdown_parser()
    env = {"images": Images.of(plots), "image_width": IMAGE_WIDTH}
    tokens = parser.parse(markdown_text, env)
    _fit_tables(tokens)
    return parser.renderer.render(tokens, parser.options, env)


def to_pdf(markdown_text: str, plots: Mapping[str, bytes], title: str) -> bytes:
    """The PDF of one report: `markdown_text` is report.md, `plots` its plots by name (plots/<name>.png)."""
    pdf = _document(title)
    pdf.set_font(FAMILY, size=FONT_SIZE)
    pdf.write_html(
        _html(markdown_text, plots), font_family=FAMILY, tag_styles=_styles(), table_line_separators=True
    )
    return bytes(pdf.output())


def from_evidence(files: Mapping[str, bytes], title: str) -> bytes:
    """The PDF of a published run from its report.md and plots/*.png (runs published before report.pdf)."""
    plots = {Path(p).stem: b for p, b in files.items() if p.startswith("plots/") and p.endswith(".png")}
    return to_pdf(files["report.md"].decode(), plots, title)
