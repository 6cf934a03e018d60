"""Corner plot of the ν_e parameters of the flux fit: profile Δχ² on the diagonal, 1σ Fisher ellipses (Δχ² = 2.30,
68 % for two parameters) below it, one colour per detector combination."""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["corner_plot"]


def corner_plot(result: dict, path, params=None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cevns.supernova.fit import PARAM_NAMES

    params = list(params or PARAM_NAMES[:3])
    idx = [PARAM_NAMES.index(p) for p in params]
    k = len(params)
    fig, axes = plt.subplots(k, k, figsize=(3.0 * k, 3.0 * k), squeeze=False)
    colours = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
    t = np.linspace(0, 2 * np.pi, 200)
    for c, label in enumerate(result["combinations"]):
        col = colours[c % len(colours)]
        cov = result["fisher_covariance"].get(label)
        curves = result["profile_curves"].get(label, {})
        for i, p in enumerate(params):
            ax = axes[i][i]
            pts = np.array(curves.get(p, []))
            if pts.size and pts[:, 1].max() > 0.05:
                ax.plot(pts[:, 0], pts[:, 1], ".-", color=col, ms=3, label=label)
                sel = pts[pts[:, 1] <= 4.0, 0]
                lims = ax.get_xlim() if c and ax.lines[:-1] else (np.inf, -np.inf)
                ax.set_xlim(min(lims[0], sel.min() - 0.05), max(lims[1], sel.max() + 0.05))
            elif pts.size:
                ax.plot([], [], color=col, label=f"{label}: flat (unconstrained)")
            ax.axhline(1.0, color="0.6", lw=0.8, ls="--")
            ax.set_ylim(0, 4)
            ax.set_xlabel(f"{p} / fiducial")
            if i == 0:
                ax.set_ylabel("profile Δχ²")
            for j in range(i):
                axj = axes[i][j]
                if cov is not None:
                    C2 = np.array(cov)[np.ix_([idx[j], idx[i]], [idx[j], idx[i]])]
                    w, V = np.linalg.eigh(C2)
                    ell = V @ (np.sqrt(2.30 * np.maximum(w, 0))[:, None] * np.vstack([np.cos(t), np.sin(t)]))
                    axj.plot(1 + ell[0], 1 + ell[1], color=col)
                axj.plot([1], [1], "k+")
                axj.set_xlabel(f"{params[j]} / fiducial")
                axj.set_ylabel(f"{p} / fiducial")
            for j in range(i + 1, k):
                axes[i][j].axis("off")
    axes[0][0].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"ν_e parameters, Asimov at the fiducial point, {result['distance_kpc']:g} kpc, "
                 f"transformation {result['transformation']}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
