"""Plotting helpers (matplotlib, Agg backend): data-minus-background projections with fitted components."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plt", "projection_plot", "save", "plot_scan", "plot_limit_1d", "plot_exclusion", "param_label"]


def save(fig, path: Path) -> Path:
    """Save a figure atomically (a temporary file beside the target, then a rename), then close it."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=path.suffix.lstrip(".").lower() or None)
        from cevns.io import _umask

        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plot gets the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
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


def param_label(name: str) -> str:
    """Axis label of a physics parameter: its description and unit from the registry."""
    from cevns.interactions.parameters import PARAMETERS

    p = PARAMETERS.get(name)
    if p is None:
        return name
    unit = "" if p.unit == "1" else f" [{p.unit}]"
    return f"{name}{unit}"


def _sm_value(name: str):
    from cevns.interactions.parameters import PARAMETERS

    p = PARAMETERS.get(name)
    return None if p is None else p.default


def plot_scan(result, path, title: str | None = None, cls=(0.6827, 0.90, 0.95)):
    """1-D: Δχ² curve with the Wilks lines of ``cls``; 2-D: contours at those CLs (2 dof), the best fit (kept inside
    the frame) and the Standard-Model point."""
    from cevns.inference.scan import WILKS

    names = result.parameters
    d = result.delta_chi2
    title = title or " + ".join(result.experiments)
    if len(names) == 1:
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        x = result.axes[names[0]]
        ax.plot(x, d, color="k", label="profile (nuisances profiled)")
        for cl, ls in zip(cls, (":", "--", "-.")):
            ax.axhline(WILKS[1][cl], color="tab:red", ls=ls, lw=0.9, label=f"{100 * cl:.0f} % CL (1 dof)")
        sm = _sm_value(names[0])
        if sm is not None and x.min() <= sm <= x.max():
            ax.axvline(sm, color="grey", ls="--", lw=0.8, label="Standard Model")
        ax.set_xlabel(param_label(names[0]))
        ax.set_ylabel("Δχ²")
        ax.set_ylim(0, max(6.0, min(float(np.nanmax(d)), 30.0)))
        ax.legend(fontsize=8, frameon=False)
    elif len(names) == 2:
        fig, ax = plt.subplots(figsize=(5.6, 5.0))
        x, y = result.axes[names[0]], result.axes[names[1]]
        levels = [WILKS[2][cl] for cl in cls]
        ax.contourf(x, y, d.T, levels=[0] + levels, colors=["#08519c", "#3182bd", "#9ecae1"], alpha=0.8)
        ax.contour(x, y, d.T, levels=levels, colors="k", linewidths=0.6)
        bx = float(np.clip(result.best_fit[names[0]], x.min(), x.max()))
        by = float(np.clip(result.best_fit[names[1]], y.min(), y.max()))
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("#08519c", "#3182bd", "#9ecae1")]
        labels = [f"{100 * c:.0f} % CL (2 dof)" for c in cls]
        handles.append(ax.plot([bx], [by], "+", color="tab:orange", ms=11, mew=2.2, clip_on=False)[0])
        labels.append("best fit")
        sx, sy = _sm_value(names[0]), _sm_value(names[1])
        if sx is not None and sy is not None and x.min() <= sx <= x.max() and y.min() <= sy <= y.max():
            handles.append(ax.plot([sx], [sy], "*", color="white", mec="k", ms=11)[0])
            labels.append("Standard Model")
        ax.legend(handles, labels, fontsize=8, frameon=True, framealpha=0.85, loc="best")
        ax.set_xlim(x.min(), x.max())
        ax.set_ylim(y.min(), y.max())
        ax.set_xlabel(param_label(names[0]))
        ax.set_ylabel(param_label(names[1]))
    else:
        raise ValueError("plot_scan handles 1-D and 2-D scans")
    ax.set_title(title, fontsize=10)
    return save(fig, path)


def plot_limit_1d(result, limit: float, cl: float, path, title: str | None = None):
    """A 1-D profile with the upper limit at ``cl``: the excluded side shaded, the parameter named with its unit."""
    from scipy import stats

    name = result.parameters[0]
    x, d = result.axes[name], result.delta_chi2
    thr = float(stats.chi2.ppf(cl, 1))
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ax.plot(x, d, color="k", label="Δχ² (nuisances profiled)")
    ax.axhline(thr, color="tab:red", ls="--", lw=0.9, label=f"{100 * cl:.4g} % CL (1 dof)")
    ax.axvspan(limit, x.max(), color="tab:red", alpha=0.15, label=f"excluded: {name} > {limit:.4g}")
    ax.set_xlim(x.min(), x.max())
    ax.set_ylim(0, max(2 * thr, min(float(np.nanmax(d)), 30.0)))
    ax.set_xlabel(param_label(name))
    ax.set_ylabel("Δχ²")
    ax.set_title(title or " + ".join(result.experiments), fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return save(fig, path)


def plot_exclusion(curves: dict[str, tuple[np.ndarray, np.ndarray]], path, xlabel: str, ylabel: str, title: str,
                   shade: bool = True):
    """Exclusion curves (upper limits vs mass), one per labelled data set; log-log axes; the excluded region (above
    each curve) shaded."""
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    for label, (m, g) in curves.items():
        ok = np.isfinite(g)
        line, = ax.plot(m[ok], g[ok], label=label)
        if shade and ok.any():
            top = np.nanmax(g[ok]) * 1e3
            ax.fill_between(m[ok], g[ok], top, color=line.get_color(), alpha=0.15, label=f"excluded ({label})")
    if any(np.isfinite(g).any() for _, g in curves.values()):
        allg = np.concatenate([g[np.isfinite(g)] for _, g in curves.values()])
        ax.set_ylim(allg.min() / 3, allg.max() * 30)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3, which="both")
    return save(fig, path)
