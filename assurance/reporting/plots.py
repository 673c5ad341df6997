"""Small, generic charts for the report, returned as PNG bytes.

matplotlib is imported inside each function with the non-interactive Agg backend, so importing this
module costs nothing and rendering works in headless workers. Every chart is a fresh figure that is
closed after rendering, so long-running processes do not accumulate figures.
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


def _figure(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def _png(fig: Any) -> bytes:
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
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
    ax.set_yticks(positions, [str(labels[i])[:40] for i in order], fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
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
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return _png(fig)


def bars(labels: Sequence[str], values: Sequence[float], title: str, ylabel: str = "") -> bytes:
    """Plain vertical bars, one per label (counts, rates, importances)."""
    fig, ax = _figure(max(4.0, 0.5 * len(labels) + 2), 3.5)
    ax.bar(np.arange(len(labels)), np.asarray(values, dtype=float), color=COLORS[0])
    ax.set_xticks(
        np.arange(len(labels)), [str(label)[:25] for label in labels], rotation=45, ha="right", fontsize=8
    )
    ax.set_title(title)
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
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _png(fig)
