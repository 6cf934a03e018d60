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


def plot_scan(result, path, title: str | None = None, cls=(0.6827, 0.90, 0.95)):
    """1-D: Δχ² curve with the Wilks lines of ``cls``; 2-D: contours at those CLs (2 dof) with the best fit."""
    from cevns.inference.scan import WILKS

    names = result.parameters
    d = result.delta_chi2
    title = title or " + ".join(result.experiments)
    if len(names) == 1:
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        x = result.axes[names[0]]
        ax.plot(x, d, color="k")
        for cl, ls in zip(cls, (":", "--", "-.")):
            ax.axhline(WILKS[1][cl], color="tab:red", ls=ls, lw=0.9, label=f"{100 * cl:.0f} % CL (1 dof)")
        ax.set_xlabel(names[0])
        ax.set_ylabel("Δχ²")
        ax.set_ylim(0, max(6.0, min(float(np.nanmax(d)), 30.0)))
        ax.legend(fontsize=8, frameon=False)
    elif len(names) == 2:
        fig, ax = plt.subplots(figsize=(5.6, 5.0))
        x, y = result.axes[names[0]], result.axes[names[1]]
        levels = [WILKS[2][cl] for cl in cls]
        ax.contourf(x, y, d.T, levels=[0] + levels, colors=["#08519c", "#3182bd", "#9ecae1"], alpha=0.8)
        ax.contour(x, y, d.T, levels=levels, colors="k", linewidths=0.6)
        ax.plot([result.best_fit[names[0]]], [result.best_fit[names[1]]], "w+", ms=10, mew=2)
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("#08519c", "#3182bd", "#9ecae1")]
        ax.legend(handles, [f"{100 * c:.0f} % CL" for c in cls], fontsize=8, frameon=False, loc="best")
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
    else:
        raise ValueError("plot_scan handles 1-D and 2-D scans")
    ax.set_title(title, fontsize=10)
    return save(fig, path)


def plot_exclusion(curves: dict[str, tuple[np.ndarray, np.ndarray]], path, xlabel: str, ylabel: str, title: str):
    """Exclusion curves (upper limits vs mass), one per labelled data set; log-log axes."""
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    for label, (m, g) in curves.items():
        ok = np.isfinite(g)
        ax.plot(m[ok], g[ok], label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3, which="both")
    return save(fig, path)
