"""Plotting helpers (matplotlib, Agg backend): data-minus-background projections with fitted components."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plt", "projection_plot", "save"]


def save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def projection_plot(edges, data, data_err, components: dict[str, np.ndarray], xlabel: str, title: str,
                    ylabel: str = "counts / bin"):
    """Step histograms of ``components`` stacked, with ``data`` ± ``data_err`` as points, on bins ``edges``."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    centres = 0.5 * (edges[:-1] + edges[1:])
    bottom = np.zeros(len(centres))
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
    for (label, vals), c in zip(components.items(), colors):
        ax.stairs(bottom + vals, edges, baseline=bottom, fill=True, alpha=0.55, color=c, label=label)
        bottom = bottom + vals
    ax.stairs(bottom, edges, color="k", lw=1.2, label="total fit")
    ax.errorbar(centres, data, yerr=data_err, fmt="o", color="k", ms=3.5, label="data")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return fig
