"""Profile-likelihood scans over physics parameters, limits, Feldman–Cousins and Asimov sensitivity.

Scans evaluate χ²(θ) = min_ν [−2 ln L(θ, ν)] on a grid with :func:`cevns.inference.batch.profile_batch`: the grid is
processed row by row along the first axis, each row warm-started from the profiled nuisances of the previous row
(its neighbours), and the rows are split into chunks that run serially or on a Dask cluster (a local one by default
from the CLI, or ``scheduler='tcp://host:port'``). The chunking is identical in both paths, so the results are too.
Δχ² is taken from the global minimum (grid minimum polished by a bounded simplex over θ).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import optimize

from cevns.errors import CevnsError, ConfigError
from cevns.inference.batch import profile_batch

__all__ = ["ModelRecipe", "ScanResult", "scan", "parse_axis", "upper_limit", "exclusion_per_mass",
           "feldman_cousins_1d", "asimov_scan", "WILKS_90_1DOF", "WILKS"]

#: Δχ² thresholds (Wilks): 1 dof 68.27/90/95 %, 2 dof 68.27/90/95 %
WILKS = {1: {0.6827: 1.0, 0.90: 2.706, 0.95: 3.841}, 2: {0.6827: 2.296, 0.90: 4.605, 0.95: 5.991}}
WILKS_90_1DOF = 2.706


@dataclass(frozen=True)
class ModelRecipe:
    """A picklable description of a batched model: experiment names and the physics parameters it depends on.
    ``build()`` constructs it (cached per process), so Dask workers rebuild instead of receiving big arrays."""

    experiments: tuple[str, ...]
    physics: tuple[str, ...]
    options: tuple = ()

    def build(self):
        return _build_cached(self)


@lru_cache(maxsize=16)
def _build_cached(recipe: ModelRecipe):
    from cevns.experiments.batched import build_batched_model

    return build_batched_model(recipe.experiments, recipe.physics, dict(recipe.options))


def parse_axis(text: str) -> tuple[str, np.ndarray]:
    """'name=LO:HI:N' → (name, N points from LO to HI inclusive); also 'name=log:LO:HI:N' for log spacing."""
    if "=" not in text:
        raise ConfigError(f"scan axis {text!r}: expected NAME=LO:HI:N (N points including both ends)")
    name, rng = text.split("=", 1)
    parts = rng.split(":")
    log = parts[0] == "log"
    if log:
        parts = parts[1:]
    if len(parts) != 3:
        raise ConfigError(f"scan axis {text!r}: expected NAME=LO:HI:N or NAME=log:LO:HI:N")
    try:
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise ConfigError(f"scan axis {text!r}: LO and HI must be numbers and N an integer") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or n < 2 or n > 100_000 or hi <= lo:
        raise ConfigError(f"scan axis {text!r}: need finite LO < HI and 2 <= N <= 100000")
    if log:
        if lo <= 0:
            raise ConfigError(f"scan axis {text!r}: log spacing needs LO > 0")
        return name.strip(), np.geomspace(lo, hi, n)
    return name.strip(), np.linspace(lo, hi, n)


@dataclass
class ScanResult:
    experiments: list[str]
    parameters: list[str]
    axes: dict[str, np.ndarray]
    chi2: np.ndarray
    best_fit: dict[str, float]
    chi2_min: float
    fixed: dict[str, float] = field(default_factory=dict)
    nuisances_hat: np.ndarray | None = None
    nuisance_names: list[str] = field(default_factory=list)

    @property
    def delta_chi2(self) -> np.ndarray:
        return self.chi2 - self.chi2_min

    def to_dict(self) -> dict:
        return {"experiments": self.experiments, "parameters": self.parameters,
                "axes": {k: [float(x) for x in v] for k, v in self.axes.items()},
                "delta_chi2": np.round(self.delta_chi2, 6).tolist(), "best_fit": self.best_fit,
                "chi2_min": self.chi2_min, "fixed": self.fixed}

    def save_json(self, path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))


def _grid(axes: dict[str, np.ndarray]):
    names = list(axes)
    mesh = np.meshgrid(*[np.asarray(axes[n], float) for n in names], indexing="ij")
    return names, mesh[0].shape, {n: m for n, m in zip(names, mesh)}


def _coarse_start(model, phys_rows: dict[str, np.ndarray], fixed: dict, n_iter: int, stride: int = 4):
    """Warm starts for a block of rows from its neighbours: profile every ``stride``-th point of every
    ``stride``-th row, then give each point the nuisances of its nearest profiled neighbour. (R, C, m)"""
    R, Ccols = next(iter(phys_rows.values())).shape
    ri = np.unique(np.r_[np.arange(0, R, stride), R - 1])
    ci = np.unique(np.r_[np.arange(0, Ccols, stride), Ccols - 1])
    sub = {k: v[np.ix_(ri, ci)] for k, v in phys_rows.items()}
    _, nu_c = _profile_rows(model, sub, fixed, n_iter, coarse=False)
    near_r = ri[np.abs(np.arange(R)[:, None] - ri[None, :]).argmin(axis=1)]
    near_c = ci[np.abs(np.arange(Ccols)[:, None] - ci[None, :]).argmin(axis=1)]
    pos_r = np.searchsorted(ri, near_r)
    pos_c = np.searchsorted(ci, near_c)
    return nu_c[pos_r][:, pos_c]


def _profile_rows(recipe_or_model, phys_rows: dict[str, np.ndarray], fixed: dict, n_iter: int,
                  target_batch: int = 768, coarse: bool = True):
    """Profile a block of rows (R, C). Rows are profiled in batches of about ``target_batch`` points; each batch
    is warm-started from the profiled nuisances of the last row before it (its neighbours along the first axis).
    Returns (χ² (R, C), ν̂ (R, C, m))."""
    model = recipe_or_model.build() if isinstance(recipe_or_model, ModelRecipe) else recipe_or_model
    R, Ccols = next(iter(phys_rows.values())).shape
    warm = None
    if coarse and R >= 12 and Ccols >= 12:  # 2-D blocks: coarse grid first, then warm starts from neighbours
        warm = _coarse_start(model, phys_rows, fixed, n_iter)
    step = max(1, target_batch // max(Ccols, 1))
    chi = np.empty((R, Ccols))
    nus = None
    last = None
    for a in range(0, R, step):
        b = min(a + step, R)
        phys = {k: v[a:b].ravel() for k, v in phys_rows.items()}
        phys.update({k: np.full((b - a) * Ccols, float(v)) for k, v in fixed.items()})
        if warm is not None:
            start = warm[a:b].reshape((b - a) * Ccols, -1)
        else:
            start = None if last is None else np.tile(last, (b - a, 1))
        c, nu = profile_batch(model, phys, n_iter=n_iter, start=start)
        if nus is None:
            nus = np.empty((R, Ccols, nu.shape[1]))
        chi[a:b] = c.reshape(b - a, Ccols)
        nus[a:b] = nu.reshape(b - a, Ccols, -1)
        last = nus[b - 1]
    return chi, nus


def scan(model, axes: dict[str, np.ndarray], fixed: dict | None = None, progress: bool = True,
         scheduler: str | None = None, rows_per_chunk: int | None = None, n_iter: int = 12,
         polish: bool = True) -> ScanResult:
    """Profile-likelihood scan on the grid ``axes`` (name → values); ``fixed`` holds other physics parameters.

    ``model`` is a :class:`ModelRecipe` (required for Dask) or a built batched model. ``scheduler``: None/'serial'
    (in process), 'local' (a Dask LocalCluster on this machine) or a Dask scheduler address.
    """
    fixed = dict(fixed or {})
    names, shape, mesh = _grid(axes)
    built = model.build() if isinstance(model, ModelRecipe) else model
    unknown = [n for n in list(names) + list(fixed) if n not in built.physics_names]
    if unknown:
        raise ConfigError(f"scan parameters {unknown} are not parameters of this model; allowed: {built.physics_names}")
    if len(names) == 1:  # 1-D: all points of a chunk in one batch (no row structure to warm-start along)
        n = shape[0]
        cols = rows_per_chunk or 4096
        blocks = [{k: v[a:min(a + cols, n)][None, :] for k, v in mesh.items()} for a in range(0, n, cols)]
        results = _run_blocks(model, blocks, fixed, n_iter, progress, scheduler, desc="scan " + names[0])
        chi = np.concatenate([r[0][0] for r in results]).reshape(shape)
        nuh = np.concatenate([r[1][0] for r in results]).reshape(shape + (-1,))
    else:
        n0 = shape[0]
        flat_rows = {k: v.reshape(n0, -1) for k, v in mesh.items()}
        if rows_per_chunk is None:
            rows_per_chunk = n0 if scheduler in (None, "serial") else max(1, n0 // 8)
        chunks = [(i, min(i + rows_per_chunk, n0)) for i in range(0, n0, rows_per_chunk)]
        blocks = [{k: v[a:b] for k, v in flat_rows.items()} for a, b in chunks]
        results = _run_blocks(model, blocks, fixed, n_iter, progress, scheduler, desc="scan " + " × ".join(names))
        chi = np.concatenate([r[0] for r in results]).reshape(shape)
        nuh = np.concatenate([r[1] for r in results]).reshape(shape + (-1,))
    i_min = np.unravel_index(int(np.argmin(chi)), shape)
    best = {n: float(mesh[n][i_min]) for n in names}
    chi_min = float(chi[i_min])
    interior = all(0 < i < len(axes[n]) - 1 for i, n in zip(i_min, names))
    if polish and interior:  # a grid minimum on the edge of the scan (or of a degenerate band) is not refined
        best, chi_min = _polish(built, names, axes, best, chi_min, fixed)
    return ScanResult(list(getattr(model, "experiments", [built.name])), names,
                      {n: np.asarray(axes[n], float) for n in names}, chi, best, chi_min, fixed, nuh,
                      [q.name for q in built.nuisances])


def _polish(model, names, axes, best, chi_min, fixed):
    """Refine the grid minimum with a bounded Nelder–Mead over θ (nuisances profiled at each step)."""
    lo = np.array([np.min(axes[n]) for n in names])
    hi = np.array([np.max(axes[n]) for n in names])
    span = np.where(hi > lo, hi - lo, 1.0)

    def f(u):
        x = lo + np.clip(u, 0, 1) * span
        phys = {n: np.array([v]) for n, v in zip(names, x)}
        phys.update({k: np.array([float(v)]) for k, v in fixed.items()})
        return float(profile_batch(model, phys)[0][0])

    u0 = (np.array([best[n] for n in names]) - lo) / span
    # a simplex of one grid step around the grid minimum; the grid already located the basin
    steps = np.array([1.0 / max(len(axes[n]) - 1, 1) for n in names])
    simplex = np.vstack([u0] + [u0 + np.eye(len(names))[i] * steps[i] for i in range(len(names))])
    try:
        r = optimize.minimize(f, u0, method="Nelder-Mead",
                              options={"xatol": 1e-3, "fatol": 1e-3, "maxfev": 30, "initial_simplex": simplex})
    except Exception:  # pragma: no cover - keep the grid minimum
        return best, chi_min
    if r.fun < chi_min:
        x = lo + np.clip(r.x, 0, 1) * span
        return {n: float(v) for n, v in zip(names, x)}, float(r.fun)
    return best, chi_min


def _run_blocks(model, blocks, fixed, n_iter, progress, scheduler, desc):
    from tqdm import tqdm

    if scheduler in (None, "serial"):
        out = []
        for blk in tqdm(blocks, desc=desc, disable=not progress, unit="chunk"):
            out.append(_profile_rows(model, blk, fixed, n_iter))
        return out
    if not isinstance(model, ModelRecipe):
        raise ConfigError("Dask execution needs a ModelRecipe (picklable), not a built model")
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=None, threads_per_worker=1, processes=True, host="127.0.0.1",
                               scheduler_port=0, dashboard_address=":0")
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout="10s")
    try:
        futures = [client.submit(_profile_rows, model, blk, fixed, n_iter, pure=False) for blk in blocks]
        index = {f.key: i for i, f in enumerate(futures)}
        out = [None] * len(futures)
        for fut in tqdm(as_completed(futures), total=len(futures), desc=desc, disable=not progress, unit="chunk"):
            out[index[fut.key]] = fut.result()
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def upper_limit(values, delta_chi2, threshold: float = WILKS_90_1DOF) -> float:
    """Smallest value above the minimum where Δχ² crosses ``threshold`` (90 % CL, 1 dof by default)."""
    x = np.asarray(values, float)
    d = np.asarray(delta_chi2, float) - np.min(delta_chi2)
    i0 = int(np.argmin(d))
    for i in range(i0, len(x) - 1):
        if d[i] <= threshold < d[i + 1]:
            return float(x[i] + (threshold - d[i]) * (x[i + 1] - x[i]) / (d[i + 1] - d[i]))
    raise CevnsError(f"Δχ² never reaches {threshold} above the minimum in [{x[0]}, {x[-1]}]; extend the scan range")


def exclusion_per_mass(result: ScanResult, mass_name: str, coupling_name: str,
                       threshold: float = WILKS_90_1DOF) -> tuple[np.ndarray, np.ndarray]:
    """90 % CL exclusion from a (mass, coupling) scan: at each mass, the smallest coupling above which Δχ² (relative to
    the best fit at that mass, 1 dof) first exceeds ``threshold``, scanning up from the smallest coupling (the SM end).
    Allowed islands at larger couplings (e.g. the sign-flipped weak charge) are therefore not shown as allowed.
    Masses whose scan never crosses the threshold give +inf (no limit within the range)."""
    im, ic = result.parameters.index(mass_name), result.parameters.index(coupling_name)
    chi = np.moveaxis(result.chi2, (im, ic), (0, 1))
    g = np.asarray(result.axes[coupling_name], float)
    lims = []
    for row in chi:
        d = row - row.min()
        above = np.nonzero(d > threshold)[0]
        if above.size == 0:
            lims.append(float("inf"))
            continue
        i = int(above[0])
        if i == 0:
            lims.append(float(g[0]))
            continue
        lims.append(float(g[i - 1] + (threshold - d[i - 1]) * (g[i] - g[i - 1]) / (d[i] - d[i - 1])))
    return np.asarray(result.axes[mass_name]), np.asarray(lims)


def feldman_cousins_1d(recipe, name: str, values, n_toys: int = 200, seed: int = 1, cl: float = 0.90,
                       fixed: dict | None = None, progress: bool = True) -> dict:
    """Feldman–Cousins (arXiv:physics/9711021) confidence belt for one parameter with nuisances profiled
    (profile construction): toys at each θ_i from μ(θ_i, ν̂_i) with fixed-seed Poisson draws."""
    from tqdm import tqdm

    model = recipe.build() if isinstance(recipe, ModelRecipe) else recipe
    fixed = dict(fixed or {})
    vals = np.asarray(values, float)
    res = scan(recipe, {name: vals}, fixed, progress=False, polish=False)
    data_t = res.chi2 - res.chi2.min()
    rng = np.random.default_rng(seed)
    crit = np.empty(len(vals))
    nuis = model.nuisances
    sig = np.array([q.constraint[1] if q.constraint else 0.0 for q in nuis])
    cen = np.array([q.constraint[0] if q.constraint else 0.0 for q in nuis])
    for i in tqdm(range(len(vals)), desc=f"Feldman-Cousins {name}", disable=not progress):
        phys_i = {name: np.array([vals[i]]), **{k: np.array([float(v)]) for k, v in fixed.items()}}
        nu_i = res.nuisances_hat[i][None, :]
        mus = _expected_parts(model, phys_i, nu_i)
        toys = [rng.poisson(np.broadcast_to(mu, (n_toys, mu.shape[1]))).astype(float) for mu in mus]
        # auxiliary measurements of the constrained nuisances fluctuate too: centres drawn around ν̂(θ_i)
        # (the profile construction of Cranmer, arXiv:physics/0511028 / the LHC CLs recipe)
        aux = np.tile(nu_i, (n_toys, 1)) + rng.normal(size=(n_toys, len(sig))) * sig
        aux = np.where(sig > 0, aux, cen)
        # every toy profiled at every grid value in one batch: (n_vals × n_toys) points
        nv = len(vals)
        phys_all = {name: np.repeat(vals, n_toys), **{k: np.full(nv * n_toys, float(v)) for k, v in fixed.items()}}
        c_all, _ = profile_batch(model, phys_all, observed=[np.tile(t_, (nv, 1)) for t_ in toys],
                                 constraint_means=np.tile(aux, (nv, 1)))
        c_all = c_all.reshape(nv, n_toys)
        t = c_all[i] - c_all.min(axis=0)
        crit[i] = np.quantile(t, cl)
    accepted = data_t <= crit
    return {"values": vals.tolist(), "delta_chi2": data_t.tolist(), "critical": crit.tolist(),
            "accepted": accepted.tolist(), "interval": [float(vals[accepted].min()), float(vals[accepted].max())]
            if accepted.any() else None, "cl": cl, "n_toys": n_toys, "seed": seed}


def _expected_parts(model, phys, nu):
    from cevns.inference.batch import as_combined

    comb = as_combined(model)
    return [part.expected(part.prepare({k: v for k, v in phys.items() if k in part.physics_names}), nu[:, mp])
            for part, mp in zip(comb.parts, comb._maps)]


def asimov_scan(recipe, axes: dict, truth: dict, exposure_scale: float = 1.0, progress: bool = True) -> ScanResult:
    """Expected (Asimov) Δχ² of a projected experiment: the data are replaced by μ(truth, nominal nuisances),
    and every expectation is scaled by ``exposure_scale`` (e.g. a longer run or a bigger detector)."""
    from cevns.inference.batch import CombinedModel, ScaledModel, as_combined

    model = recipe.build() if isinstance(recipe, ModelRecipe) else recipe
    comb = as_combined(model)
    nu0 = np.array([[q.value for q in comb.nuisances]])
    phys = {k: np.array([float(v)]) for k, v in truth.items()}
    mus = _expected_parts(comb, phys, nu0)
    asimov = CombinedModel([ScaledModel(part, exposure_scale, exposure_scale * mu[0]) for part, mu in zip(comb.parts, mus)])
    return scan(asimov, axes, {k: v for k, v in truth.items() if k not in axes}, progress=progress)
