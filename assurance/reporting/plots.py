"""Small, generic charts for the report, returned as PNG bytes.

matplotlib is imported inside each function, so importing this module costs nothing. Every chart is a
plain `Figure` on its own Agg canvas, never registered with pyplot: rendering works in headless workers,
skips pyplot's figure manager, and a long-running process accumulates no figures.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

MAX_BARS = 40
REFERENCE_COLOR = "#57606a"
HIGHLIGHT_COLOR = "#cf222e"
COLORS = ("#0969da", "#bf8700", "#1a7f37", "#8250df", "#cf222e", "#57606a")


def _figure(width: float, height: float, rows: int = 1, cols: int = 1) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols)


def _plain(text: object) -> str:
    """Text shown as written: matplotlib would read a pair of `$` in a column name as mathtext."""
    return str(text).replace("$", r"\$")


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def threshold_bars(
    labels: Sequence[str],
    values: Sequence[float],
    thresholds: Sequence[float] | float,
    title: str,
    xlabel: str = "",
) -> bytes:
    """Horizontal bars of `values` with each bar's threshold marked; bars at or over it are highlighted.

    Only the MAX_BARS bars closest to (or furthest over) their threshold are drawn, worst on top.
    """
    values = np.asarray(values, dtype=float)
    limits = np.broadcast_to(np.asarray(thresholds, dtype=float), values.shape)
    order = np.argsort(-(values / np.where(limits > 0, limits, 1.0)), kind="stable")[:MAX_BARS][::-1]
    fig, ax = _figure(7, 1.2 + 0.25 * len(order))
    positions = np.arange(len(order))
    over = values[order] >= limits[order]
    ax.barh(positions, values[order], color=np.where(over, HIGHLIGHT_COLOR, COLORS[0]))
    ax.scatter(limits[order], positions, marker="|", s=200, color="black", label="threshold", zorder=3)
    ax.set_yticks(positions, [_plain(str(labels[i])[:40]) for i in order], fontsize=8)
    ax.set_title(_plain(title))
    ax.set_xlabel(_plain(xlabel))
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def histograms(samples: dict[str, np.ndarray], title: str, xlabel: str = "", bins: int = 40) -> bytes:
    """Overlaid density histograms of several samples on shared bins (e.g. reference vs current)."""
    finite = {
        name: v[np.isfinite(v)] for name, v in ((n, np.asarray(s, dtype=float)) for n, s in samples.items())
    }
    pooled = np.concatenate([v for v in finite.values() if v.size] or [np.zeros(1)])
    edges = np.histogram_bin_edges(pooled, bins=bins)
    fig, ax = _figure(7, 3.5)
    for (name, values), color in zip(finite.items(), COLORS, strict=False):
        ax.hist(values, bins=edges, density=True, alpha=0.45, color=color, label=f"{name} (n={values.size})")
    ax.set_title(_plain(title))
    ax.set_xlabel(_plain(xlabel))
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return _png(fig)


def bars(labels: Sequence[str], values: Sequence[float], title: str, ylabel: str = "") -> bytes:
    """Plain vertical bars, one per label (counts, rates, importances)."""
    fig, ax = _figure(max(4.0, 0.5 * len(labels) + 2), 3.5)
    ax.bar(np.arange(len(labels)), np.asarray(values, dtype=float), color=COLORS[0])
    ax.set_xticks(
        np.arange(len(labels)),
        [_plain(str(label)[:25]) for label in labels],
        rotation=45,
        ha="right",
        fontsize=8,
    )
    ax.set_title(_plain(title))
    ax.set_ylabel(ylabel)
    return _png(fig)


def lines(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str = "",
    ylabel: str = "",
    diagonal: bool = False,
) -> bytes:
    """Lines with markers, one per named (x, y) series; `diagonal` adds the y = x reference line on [0, 1]."""
    fig, ax = _figure(5, 4.5 if diagonal else 3.5)
    if diagonal:
        ax.plot([0, 1], [0, 1], linestyle="--", color=REFERENCE_COLOR, linewidth=1, label="perfect")
    for (name, (x, y)), color in zip(series.items(), COLORS, strict=False):
        ax.plot(x, y, marker="o", color=color, label=name)
    ax.set_title(_plain(title))
    ax.set_xlabel(_plain(xlabel))
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _png(fig)


def category_shares(
    samples: dict[str, dict[str, float]], top: int
) -> tuple[list[str], dict[str, list[float]]]:
    """Each sample's share per category, for the `top` categories by largest share in any sample, the rest
    summed into "(other)" so every sample still adds up to 1."""
    shares = {
        name: {str(k): v / total for k, v in counts.items()} if (total := sum(counts.values())) else {}
        for name, counts in samples.items()
    }
    categories = sorted(
        {k for s in shares.values() for k in s}, key=lambda k: (-max(s.get(k, 0) for s in shares.values()), k)
    )
    shown, rest = categories[:top], categories[top:]
    values = {
        name: [s.get(k, 0.0) for k in shown] + ([sum(s.get(k, 0.0) for k in rest)] if rest else [])
        for name, s in shares.items()
    }
    return shown + (["(other)"] if rest else []), values


def category_pairs(
    samples: dict[str, dict[str, float]], title: str, xlabel: str = "", top: int = 20
) -> bytes:
    """Side-by-side bars of each category's share in several samples (e.g. reference vs current)."""
    labels, values = category_shares(samples, top)
    fig, ax = _figure(min(12.0, max(5.0, 0.35 * len(labels) * len(samples) + 2)), 3.5)
    width = 0.8 / max(len(samples), 1)
    positions = np.arange(len(labels))
    for i, (name, color) in enumerate(zip(samples, COLORS, strict=False)):
        offset = (i - (len(samples) - 1) / 2) * width
        total = int(sum(samples[name].values()))
        ax.bar(positions + offset, values[name], width, color=color, label=_plain(f"{name} (n={total})"))
    ax.set_xticks(positions, [_plain(label[:25]) for label in labels], rotation=45, ha="right", fontsize=8)
    ax.set_title(_plain(title))
    ax.set_xlabel(_plain(xlabel))
    ax.set_ylabel("share of rows")
    ax.legend(fontsize=8)
    return _png(fig)


def trend(series: dict[str, tuple[Sequence[int], Sequence[float]]], title: str) -> bytes:
    """One small panel per named series of (run number, value), so metrics of different scales stay readable."""
    from matplotlib.ticker import MaxNLocator

    cols = 2 if len(series) > 1 else 1
    rows = -(-len(series) // cols)
    fig, axes = _figure(7, 0.4 + 2.2 * rows, rows, cols)
    flat = np.atleast_1d(axes).ravel()
    for ax, (name, (x, y)) in zip(flat, series.items(), strict=False):
        ax.plot(x, y, marker="o", color=COLORS[0])
        ax.set_title(_plain(name), fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
    for ax in flat[len(series) :]:
        ax.set_visible(False)
    for ax in flat[-cols:]:
        ax.set_xlabel("run (oldest first)", fontsize=8)
    fig.suptitle(_plain(title))
    return _png(fig)
