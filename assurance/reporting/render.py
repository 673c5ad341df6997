"""The one renderer of the published reports: Jinja2 templates, Markdown through markdown-it-py.

Report text mixes our words with values from users (tags, column names, descriptions). Three rules keep
those values inert: Markdown is parsed with raw HTML off, so a `<script>` in a tag value stays text;
markdown-it refuses `javascript:`, `vbscript:`, `file:` and `data:` links; and Jinja autoescapes every
value a template prints. Images are only the report's own plots, inlined as data URIs, so a report
shows the same wherever it is opened (file://, an MLflow artifact preview, http) and loads nothing from
elsewhere: an image a user's text points at is shown as its alt text.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

if TYPE_CHECKING:
    import pandas as pd
    from jinja2 import Environment
    from markdown_it import MarkdownIt


@dataclass(frozen=True)
class Table:
    """Rows of text under `columns`; `more` rows were left out (the evidence table holds them)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    more: int = 0


@dataclass(frozen=True)
class Part:
    """One entry of a report's table of contents: a collapsible section with a Markdown body, a table, or both."""

    anchor: str
    title: str
    body: str = ""
    table: Table | None = None
    open: bool = True


@dataclass(frozen=True)
class Images:
    """The plots a report may show, by the path its Markdown uses (`plots/<name>.png`), as data URIs."""

    uris: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, plots: Mapping[str, bytes]) -> Images:
        return cls({f"plots/{name}.png": data_uri(png) for name, png in plots.items()})


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def frame_table(
    frame: pd.DataFrame, columns: Sequence[str], text: Callable[[object], str] = str, limit: int | None = None
) -> Table:
    """`columns` of `frame` as text, each value shown by `text`; at most `limit` rows."""
    if frame.empty:  # an empty ledger may lack the columns altogether
        return Table(list(columns), [])
    shown = frame if limit is None else frame.head(limit)
    rows = [[text(v) for v in row] for row in shown[list(columns)].itertuples(index=False)]
    return Table(list(columns), rows, len(frame) - len(shown))


def _image(self: Any, tokens: list, idx: int, options: Any, env: Mapping) -> str:
    """Render rule for images: our plots become data URIs; any other image is shown as its alt text."""
    token = tokens[idx]
    uri = env.get("images", Images()).uris.get(token.attrGet("src"))
    if uri is None:
        return str(escape(self.renderInlineAsText(token.children or [], options, env)))
    token.attrSet("src", uri)
    if env.get("image_width"):
        token.attrSet("width", str(env["image_width"]))
    return self.image(tokens, idx, options, env)


@cache
def markdown_parser() -> MarkdownIt:
    """CommonMark with tables, raw HTML off (user text cannot inject markup)."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    parser.add_render_rule("image", _image)
    return parser


def markdown(text: str, images: Images | None = None, image_width: int | None = None) -> Markup:
    """Markdown as safe HTML; `images` maps plot paths to data URIs, `image_width` sizes them (for the PDF)."""
    env = {"images": images or Images(), "image_width": image_width}
    return Markup(markdown_parser().render(text or "", env))


@cache
def environment() -> Environment:
    """The templates under `assurance/reporting/templates/`, every printed value escaped."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("assurance.reporting", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = markdown
    return env


def render(template: str, **context: Any) -> str:
    """Render one report template with `context`."""
    return environment().get_template(template).render(**context)
