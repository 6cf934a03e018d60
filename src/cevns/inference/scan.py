"""Profile-likelihood scans over physics parameters, limits, Feldman–Cousins and Asimov sensitivity.

Scans evaluate χ²(θ) = min_ν [−2 ln L(θ, ν)] on a grid with :func:`cevns.inference.batch.profile_batch`. The grid is
cut into blocks of about a thousand points, as even as the rows allow (:func:`plan_blocks`); each block is profiled
coarse to fine (strides 16, 8, 4, 2, 1), every new point starting from the nuisances and the information matrix
interpolated between its converged neighbours, so most points need one Jacobian-free gradient and one χ² evaluation.
The coarse lattices (strides 16, 8, 4) of a group of :data:`GROUP_BLOCKS` neighbouring blocks are profiled together,
the fine ones block by block. Groups and blocks run serially or on a Dask cluster (``scheduler='local'``, an address,
or a Client; a task per group, then one per block) and are planned independently of the scheduler, so serial and
distributed results are identical. Δχ² is taken from the global minimum (local grids of a quarter grid step around
the three lowest grid points, profiled in :data:`POLISH_PARTS` fixed parts, unless the grid minimum sits at the edge
of the scan, which is reported as a warning). On Dask the polish starts on the idle workers when one block is left,
from the blocks done, and is kept only if the last block holds none of the three lowest points.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from cevns.errors import CevnsError, ConfigError
from cevns.inference.batch import as_combined, prepare_states, profile_batch, take_states

__all__ = ["ModelRecipe", "ScanResult", "scan", "parse_axis", "upper_limit", "exclusion_per_mass",
           "feldman_cousins_1d", "asimov_scan", "WILKS_90_1DOF", "WILKS", "plan_blocks", "dask_client", "run_blocks",
           "estimate_scan", "NoLimitInRange", "start_local_cluster", "LOCAL_CLUSTER_CONFIG"]

#: Δχ² thresholds (Wilks): 1 dof 68.27/90/95 %, 2 dof 68.27/90/95 %
WILKS = {1: {0.6827: 1.0, 0.90: 2.706, 0.95: 3.841}, 2: {0.6827: 2.296, 0.90: 4.605, 0.95: 5.991}}
WILKS_90_1DOF = 2.706
#: scans take a point's last Newton step without Jacobians once the step would gain less than this in χ²
#: (see :func:`cevns.inference.batch.profile_batch`): on the CsI 2021 + Ar NSI grid the profiled χ² moves by
#: ≤ 0.005 near the contours
LAST_STEP = 0.005
#: grid points stop once a Newton step would gain less than this in χ² (profile_batch's default, 1e-4, is kept for
#: the polish of the minimum): a grid χ² lies above its local minimum by about this at most, within the LAST_STEP
#: accuracy of a scan. Measured on the 101 × 101 CsI 2021 + Ar NSI grid against profiling every point to
#: convergence (Δχ² < 30): median excess 0.0007, 99th percentile 0.0021, largest 0.0054 (set by the morphing's
#: several local minima, the same at 1e-3); 2e-3 instead of 1e-3 saves 9 % of the model evaluations
SCAN_TOL = 2e-3


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
    #: physical-consistency warnings (best fit at the edge of the scan, ...), one line each
    warnings: list[str] = field(default_factory=list)
    #: grid points profiled exactly (all, unless adaptive refinement interpolated the others)
    evaluated: np.ndarray | None = None

    @property
    def delta_chi2(self) -> np.ndarray:
        return self.chi2 - self.chi2_min

    def to_dict(self) -> dict:
        out = {"experiments": self.experiments, "parameters": self.parameters,
               "axes": {k: [float(x) for x in v] for k, v in self.axes.items()},
               "delta_chi2": np.round(self.delta_chi2, 6).tolist(), "best_fit": self.best_fit,
               "chi2_min": self.chi2_min, "fixed": self.fixed, "warnings": list(self.warnings)}
        if self.evaluated is not None and not np.all(self.evaluated):
            out["evaluated"] = self.evaluated.astype(int).tolist()
        return out

    def save_json(self, path) -> None:
        from cevns.io import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_dict(), indent=1))


def _grid(axes: dict[str, np.ndarray]):
    names = list(axes)
    mesh = np.meshgrid(*[np.asarray(axes[n], float) for n in names], indexing="ij")
    return names, mesh[0].shape, {n: m for n, m in zip(names, mesh)}


def _single_thread():
    """BLAS held to one thread while profiling, and freed temporaries kept for reuse (see :mod:`cevns.threads`)."""
    from cevns.threads import keep_freed_memory, single_blas_thread

    keep_freed_memory()
    return single_blas_thread()


def _interp_index(n_fine: int, coarse_idx: np.ndarray):
    """(lower coarse position, weight) for every fine index from sorted coarse indices (linear in the index)."""
    f = np.arange(n_fine)
    k = np.clip(np.searchsorted(coarse_idx, f, side="right") - 1, 0, max(len(coarse_idx) - 2, 0))
    if len(coarse_idx) == 1:
        return np.zeros(n_fine, int), np.zeros(n_fine)
    w = (f - coarse_idx[k]) / (coarse_idx[k + 1] - coarse_idx[k])
    return k, w


def _lattice(R: int, C: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the stride-``stride`` sub-lattice of an R × C block (every stride-th index plus the
    last along each axis): the lattices of strides s and 2s are nested."""
    return (np.unique(np.r_[np.arange(0, R, stride), R - 1]), np.unique(np.r_[np.arange(0, C, stride), C - 1]))


#: strides of the coarse lattices that a group of :data:`GROUP_BLOCKS` neighbouring blocks profiles together (one
#: batch per lattice for the group): alone, each block's few coarse points cost one call per Newton step, most of
#: the calls of a scan (measured on the 101 × 101 NSI grid: 176 of 251 Newton steps, 0.64 of 2.2 s)
SHARED_STRIDES = (16, 8, 4)
#: blocks per group for the shared coarse lattices (a fixed number, so serial and Dask runs batch alike): five makes
#: the 101 × 101 grid's ten blocks two groups, whose coarse lattices two workers profile at once (with four, a third
#: group's task left one worker idle or delayed; and fewer, larger calls: 115 Jacobian calls per scan against 131)
GROUP_BLOCKS = 5


#: the stride of the first (coarsest) lattice of a block: its points start from the nuisance defaults
TOP_STRIDE = 16


def _strides(top: int | None = None) -> list[int]:
    """The lattice strides of a block, coarse to fine: ``top`` (default :data:`TOP_STRIDE`), top/2, …, 1."""
    out = [TOP_STRIDE if top is None else top]
    while out[-1] > 1:
        out.append(out[-1] // 2)
    return out


class _Block:
    """A block of grid points (arrays (R, C); a 1-D block has R = 1) profiled coarse to fine: χ², ν̂ and the
    information matrices of the points done, and the lattice last completed."""

    def __init__(self, phys: dict[str, np.ndarray], fixed: dict, m: int):
        self.R, self.C = next(iter(phys.values())).shape
        N = self.R * self.C
        self.phys = {k: v.ravel() for k, v in phys.items()}
        self.phys.update({k: np.full(N, float(v)) for k, v in fixed.items()})
        self.chi, self.nus, self.fis = np.empty(N), np.empty((N, m)), np.empty((N, m, m))
        self.done = np.zeros((self.R, self.C), bool)
        self.prev = None  # (rows, columns) of the lattice last completed

    def export(self, stride: int) -> dict:
        """The points done (after the stride-``stride`` lattice), to continue elsewhere (:meth:`restore`)."""
        idx = np.flatnonzero(self.done)
        return {"stride": stride, "idx": idx, "chi": self.chi[idx], "nus": self.nus[idx], "fis": self.fis[idx]}

    @classmethod
    def restore(cls, phys: dict, fixed: dict, m: int, init: dict) -> "_Block":
        b = cls(phys, fixed, m)
        idx = init["idx"]
        b.chi[idx], b.nus[idx], b.fis[idx] = init["chi"], init["nus"], init["fis"]
        b.done.ravel()[idx] = True
        b.prev = _lattice(b.R, b.C, init["stride"])
        return b

    def new_points(self, stride: int):
        """(rows, columns) of the points of the stride lattice not done yet, and the lattice."""
        ri, ci = _lattice(self.R, self.C, stride)
        new = np.zeros((self.R, self.C), bool)
        new[np.ix_(ri, ci)] = True
        new &= ~self.done
        rr, cc = np.nonzero(new)
        return rr, cc, (ri, ci)

    def interpolate(self, arr: np.ndarray, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        """arr (N, …) interpolated (bi)linearly from the lattice last completed to the points (rr, cc) (weights ≥ 0:
        information matrices stay positive)."""
        pr, pc = self.prev
        a_p = arr.reshape((self.R, self.C) + arr.shape[1:])[np.ix_(pr, pc)]
        kr, wr = _interp_index(self.R, pr)
        kc, wc = _interp_index(self.C, pc)
        a, b = kr[rr], kc[cc]
        a1, b1 = np.minimum(a + 1, len(pr) - 1), np.minimum(b + 1, len(pc) - 1)
        ext = (slice(None),) + (None,) * (arr.ndim - 1)
        w1, w2 = wr[rr][ext], wc[cc][ext]
        return (1 - w1) * ((1 - w2) * a_p[a, b] + w2 * a_p[a, b1]) + w1 * ((1 - w2) * a_p[a1, b] + w2 * a_p[a1, b1])


def _profile_lattices(model, blocks: list[_Block], strides, n_iter: int, batch: int = 1024) -> None:
    """Profile the lattices ``strides`` (decreasing) of every block, the new points of all blocks at one stride
    together: the points of a block's first lattice start from the nuisance defaults; a finer lattice's new points
    start from the nuisances and the information matrices interpolated between the converged points of the lattice
    before (``fisher_start`` of :func:`profile_batch`: the first steps need no Jacobian; neighbours one step apart
    leave most points a Newton step from their minimum). The θ-dependent states are prepared once per lattice;
    ``batch`` bounds the points profiled at once (a lattice of a block is one batch: the few points that need more
    steps share one call per step)."""
    for stride in strides:
        finest = stride == 1
        todo = {True: [], False: []}  # cold (first lattice) and warm points: [(block, rr, cc)]
        lattices = []
        for blk in blocks:
            rr, cc, lat = blk.new_points(stride)
            lattices.append(lat)
            if rr.size:
                todo[blk.prev is None].append((blk, rr, cc))
        for cold, items in todo.items():
            if not items:
                continue
            flats = [rr * blk.C + cc for blk, rr, cc in items]
            phys = {k: np.concatenate([blk.phys[k][f] for (blk, _, _), f in zip(items, flats)]) for k in items[0][0].phys}
            start = fisher = None
            if not cold:
                start = np.concatenate([blk.interpolate(blk.nus, rr, cc) for blk, rr, cc in items])
                fisher = np.concatenate([blk.interpolate(blk.fis, rr, cc) for blk, rr, cc in items])
            states = prepare_states(model, phys)  # once per lattice
            n, m = sum(f.size for f in flats), len(as_combined(model).nuisances)
            chi, nus = np.empty(n), np.empty((n, m))
            fis = None if finest else np.empty((n, m, m))
            for a0 in range(0, n, batch):
                sl = slice(a0, min(a0 + batch, n))
                st = states if n <= batch else take_states(model, states, np.arange(sl.start, sl.stop), n)
                out = profile_batch(model, {k: v[sl] for k, v in phys.items()}, n_iter=n_iter, last_step=LAST_STEP,
                                    tol=SCAN_TOL, states=st, start=None if start is None else start[sl],
                                    fisher_start=None if fisher is None else fisher[sl], return_fisher=not finest)
                chi[sl], nus[sl] = out[0], out[1]
                if not finest:
                    fis[sl] = out[2]
            a0 = 0
            for (blk, rr, cc), f in zip(items, flats):
                sl = slice(a0, a0 + f.size)
                blk.chi[f], blk.nus[f] = chi[sl], nus[sl]
                if not finest:
                    blk.fis[f] = fis[sl]
                blk.done[rr, cc] = True
                a0 += f.size
        for blk, lat in zip(blocks, lattices):
            blk.prev = lat


def _profile_shared(recipe_or_model, blocks: list[dict], fixed: dict, n_iter: int, top: int | None = None) -> list[dict]:
    """The coarse lattices (:data:`SHARED_STRIDES`) of a group of blocks, profiled together; one export per block
    for :func:`_profile_block`."""
    model = recipe_or_model.build() if isinstance(recipe_or_model, ModelRecipe) else recipe_or_model
    m = len(as_combined(model).nuisances)
    blks = [_Block(b, fixed, m) for b in blocks]
    strides = [s for s in _strides(top) if s >= min(SHARED_STRIDES)]
    with _single_thread():
        _profile_lattices(model, blks, strides, n_iter)
    return [b.export(strides[-1]) for b in blks]


def _profile_block(recipe_or_model, phys: dict[str, np.ndarray], fixed: dict, n_iter: int, init: dict | None = None,
                   top: int | None = None):
    """Profile a block of grid points (arrays of shape (R, C); a 1-D block has R = 1) coarse to fine (strides top,
    top/2, …, 1; see :func:`_profile_lattices`), continuing from ``init`` (the block's coarse lattices from
    :func:`_profile_shared`) if given. Nothing outside the block (and its group's shared lattices) is used, so the
    result does not depend on how blocks are scheduled. Returns (χ² (R, C), ν̂ (R, C, m))."""
    model = recipe_or_model.build() if isinstance(recipe_or_model, ModelRecipe) else recipe_or_model
    m = len(as_combined(model).nuisances)
    if init is None:
        blk, strides = _Block(phys, fixed, m), _strides(top)
    else:
        blk = _Block.restore(phys, fixed, m, init)
        strides = [s for s in _strides(top) if s < init["stride"]]
    with _single_thread():
        _profile_lattices(model, [blk], strides, n_iter)
    return blk.chi.reshape(blk.R, blk.C), blk.nus.reshape(blk.R, blk.C, -1)


def _profile_block_of_group(recipe_or_model, phys, fixed, n_iter, inits: list[dict], j: int):
    """:func:`_profile_block` continuing from the ``j``-th export of its group's shared lattices (a Dask task)."""
    return _profile_block(recipe_or_model, phys, fixed, n_iter, init=inits[j])


def plan_blocks(shape: tuple[int, ...], block_points: int = 1024) -> list[tuple[int, int]]:
    """Row ranges along the first axis (points along the only axis of a 1-D grid) of about ``block_points`` points
    each, as even as the rows allow (no short last block: a block of one row would cost a task and its coarse
    points for little work): the same for serial and distributed runs, so both give identical results."""
    n0 = shape[0]
    per_row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    n_blocks = max(1, min(n0, int(round(n0 * per_row / block_points))))
    edges = np.linspace(0, n0, n_blocks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


#: the largest pilot of :func:`estimate_scan` (points): a block of the scan's plan, cut down to this if larger
PILOT_POINTS = 4096


def estimate_scan(model, n_points: int, n_pilot: int = 32, axes: dict | None = None, fixed: dict | None = None,
                  block_points: int = 1024) -> dict:
    """Time [s] and memory [bytes] of a scan of ``n_points`` points. With the scan's ``axes`` (and ``fixed``), the
    pilot is the middle block of the scan's own plan (:func:`plan_blocks`; its later axes cut around their middle to
    at most :data:`PILOT_POINTS` points), profiled as the scan profiles a block, coarse to fine; without, ``n_pilot``
    points profiled from the nominal nuisances (an upper bound: a scan's warm starts are cheaper). Both are scaled by
    1.3 for the scatter of the timing. (A smaller pilot, 8 × 32 points, had proportionally more cold coarse points
    and doubled the estimate.)"""
    import time

    built = model.build() if isinstance(model, ModelRecipe) else model
    comb = as_combined(built)
    if axes:
        vals = {k: np.asarray(v, float) for k, v in axes.items()}
        shape = tuple(len(v) for v in vals.values())
        spans = plan_blocks(shape, block_points)
        r0, r1 = spans[len(spans) // 2]
        first = next(iter(vals))
        sub = {first: vals[first][r0:r1]}
        room = max(1, PILOT_POINTS // (r1 - r0))
        for k in list(vals)[1:]:  # the later axes, each cut around its middle to what the budget leaves
            keep = min(len(vals[k]), max(2, room))
            m0 = (len(vals[k]) - keep) // 2
            sub[k] = vals[k][m0:m0 + keep]
            room = max(1, room // keep)
        _, _, mesh = _grid(sub)  # the pilot's own small grid (never the whole one)
        rows = _block_arrays(mesh)
        n_done = next(iter(rows.values())).size
        # untimed: what the first profile in a process builds once (the signal's stacked response matrices), which
        # doubled the estimate of a 101 x 101 NSI scan
        _profile_block(built, {k: v[:1, :2] for k, v in rows.items()}, dict(fixed or {}), 12)
        t0 = time.perf_counter()
        _profile_block(built, rows, dict(fixed or {}), 12)
    else:
        phys = {n: np.full(n_pilot, float(_DEFAULT_POINT.get(n, 0.0))) for n in comb.physics_names}
        t0 = time.perf_counter()
        with _single_thread():
            profile_batch(comb, phys, n_iter=4)
        n_done = n_pilot
    per_point = (time.perf_counter() - t0) / n_done
    m = len(comb.nuisances)
    bins = sum(p.observed.size for p in comb.parts)
    # results (χ², ν̂) of every point, the information matrices of a block, Jacobians of one batch of 1024 points
    memory = n_points * (m + 2) * 8 + 1024 * m * m * 8 + 1024 * m * bins * 4 * 4
    return {"seconds": per_point * n_points * 1.3, "bytes": int(memory), "points": n_points}


#: a representative point for pilots (the defaults are fine except for masses that need a value)
_DEFAULT_POINT = {"m_zprime_MeV": 100.0, "m_scalar_MeV": 100.0, "sin2_theta_w": 0.23857, "rn_Cs": 5.0, "rn_I": 5.0,
                  "rn_Ar": 3.4, "rn_CsI": 5.0}


def check_parameters_matter(model, axes: dict, fixed: dict | None = None, rtol: float = 1e-12) -> None:
    """Refuse a scanned (or fixed, non-default) parameter that does not change the prediction of any part of the
    model: its profile would be flat and its 'limit' meaningless. Each parameter is moved between the ends of its
    axis (or between its default and its fixed value) with the other parameters at the upper ends of their axes."""
    from cevns.inference.batch import as_combined
    from cevns.interactions.parameters import PARAMETERS

    comb = as_combined(model.build() if isinstance(model, ModelRecipe) else model)
    fixed = dict(fixed or {})
    base = {k: float(np.max(v)) for k, v in axes.items()}
    base.update(fixed)
    tests = {k: (float(np.min(v)), float(np.max(v))) for k, v in axes.items()}
    for k, v in fixed.items():
        d = PARAMETERS[k].default if k in PARAMETERS else None
        if d is not None and d != v:
            tests[k] = (float(d), float(v))
    nu0 = [np.array([[q.value for q in part.nuisances]]) for part in comb.parts]
    for name, (a, b) in tests.items():
        moved = False
        for part, nu in zip(comb.parts, nu0):
            if name not in part.physics_names:
                continue
            pa = {k: np.array([x]) for k, x in base.items() if k in part.physics_names}
            pb = dict(pa)
            pa[name], pb[name] = np.array([a]), np.array([b])
            ma = part.expected(part.prepare(pa), nu)
            mb = part.expected(part.prepare(pb), nu)
            if np.any(np.abs(ma - mb) > rtol * np.maximum(np.abs(ma), 1e-300)):
                moved = True
                break
        if not moved:
            names = " + ".join(p.name for p in comb.parts)
            raise ConfigError(f"parameter {name} does not change the prediction of {names} between {a:g} and {b:g} "
                              f"(other parameters at {base}): its profile would be flat; choose experiments it "
                              "acts on or give the couplings it needs a non-zero value")


def scan(model, axes: dict[str, np.ndarray], fixed: dict | None = None, progress: bool = True,
         scheduler=None, block_points: int = 1024, n_iter: int = 12, polish: bool = True,
         refine: bool = False, refine_levels=(1.0, 2.296, 2.706, 3.841, 4.605, 5.991)) -> ScanResult:
    """Profile-likelihood scan on the grid ``axes`` (name → values); ``fixed`` holds other physics parameters.

    ``model``: a :class:`ModelRecipe` (required for Dask) or a built model. ``scheduler``: None/'serial' (in process),
    'local' (a Dask LocalCluster on this machine, created once per process and reused), a scheduler address
    ('tcp://host:port') or a ``dask.distributed.Client``. The grid is cut into blocks of about ``block_points``
    points (the same blocks whatever the scheduler: serial and distributed results are identical).
    ``refine``: profile every fourth point first, then only the cells whose Δχ² range crosses one of
    ``refine_levels`` (and the cells around the minimum); the other points are interpolated (marked in
    ``evaluated``)."""
    fixed = dict(fixed or {})
    names, shape, mesh = _grid(axes)
    built = model.build() if isinstance(model, ModelRecipe) else model
    unknown = [n for n in list(names) + list(fixed) if n not in built.physics_names]
    if unknown:
        raise ConfigError(f"scan parameters {unknown} are not parameters of this model; allowed: {built.physics_names}")
    both = sorted(set(names) & set(fixed))
    if both:
        raise ConfigError(f"{both} are both scanned and fixed: give each parameter one role")
    if len(shape) > 2 and refine:
        raise ConfigError("adaptive refinement handles 1-D and 2-D scans")
    desc = "scan " + " × ".join(names)
    on_dask = scheduler not in (None, "serial") and isinstance(model, ModelRecipe)

    def polish_around(lows, nu_starts):
        """The polish of the three lowest grid points ``lows``, or None where there is none: a grid minimum on the edge
        of the scan (or of a degenerate band) is not refined. Around the three lowest grid points: in a narrow valley
        between grid points the lowest grid value need not sit next to the valley's lowest point."""
        if not polish or _edge_warnings(names, axes, lows[0], {n: float(mesh[n][lows[0]]) for n in names}):
            return None
        return _polish(model if on_dask else built, names, axes, lows, fixed, nu_starts,
                       scheduler=scheduler if on_dask else None)

    speculative = {}

    def speculate(chi_part, nuh_part):
        """On Dask, once one block is left: the polish around the three lowest points of the blocks done, on the idle
        workers. It is used only if the last block holds none of the three lowest points (then its lows, their order
        and their starts are those of the whole grid, and so is its result)."""
        lows = _lowest(chi_part)
        if np.isfinite(chi_part[lows[-1]]):
            speculative["lows"], speculative["polish"] = lows, polish_around(lows, [nuh_part[i] for i in lows])

    if refine:
        chi, nuh, evaluated = _refined(model, mesh, shape, fixed, n_iter, progress, scheduler, block_points,
                                       refine_levels, desc)
    else:
        chi, nuh = _profile_grid(model, mesh, shape, fixed, n_iter, progress, scheduler, block_points, desc,
                                 on_last=speculate if on_dask and polish else None)
        evaluated = None
    lows = _lowest(chi)
    i_min = lows[0]
    best = {n: float(mesh[n][i_min]) for n in names}
    chi_min = float(chi[i_min])
    warnings = _edge_warnings(names, axes, i_min, best)
    if speculative.get("lows") == lows:
        polished = speculative["polish"]
    else:
        if speculative.get("polish") is not None:
            speculative["polish"].cancel()
        polished = polish_around(lows, [nuh[i] for i in lows])
    if polished is not None:
        b_k, c_k = polished.result()
        if c_k < chi_min:
            best, chi_min = b_k, c_k
            # the polished point may reach the edge of the range although the grid minimum did not
            ends = tuple(0 if best[n] == float(axes[n][0]) else len(axes[n]) - 1 if best[n] == float(axes[n][-1])
                         else -1 for n in names)
            warnings = _edge_warnings(names, axes, ends, best)
    return ScanResult(list(getattr(model, "experiments", [built.name])), names,
                      {n: np.asarray(axes[n], float) for n in names}, chi, best, chi_min, fixed, nuh,
                      [q.name for q in built.nuisances], warnings, evaluated)


def _edge_warnings(names, axes, i_min, best) -> list[str]:
    """A best fit on the edge of a scanned axis: at a physical boundary of the parameter (Wilks' theorem is only
    approximate there), or at an arbitrary end of the range (the minimum may lie outside)."""
    from cevns.interactions.parameters import PARAMETERS

    out = []
    for i, n in zip(i_min, names):
        if len(axes[n]) <= 2 or i not in (0, len(axes[n]) - 1):
            continue
        lim = PARAMETERS[n].limits if n in PARAMETERS else (None, None)
        if best[n] in lim:
            out.append(f"best fit at the physical boundary {n} = {best[n]:.5g}: intervals from Wilks' theorem are "
                       "approximate there (Feldman–Cousins covers it)")
        else:
            out.append(f"best fit at the edge of the scanned range of {n} ({best[n]:.5g}): the minimum may lie "
                       "outside; widen the range")
    return out


def _lowest(chi: np.ndarray, k: int = 3) -> list[tuple]:
    """Index tuples of the ``k`` lowest values of ``chi``, lowest first (a stable sort: ties in grid order, the
    first of them the grid minimum that ``argmin`` finds)."""
    flat = chi.ravel()
    if flat.size <= k:
        idx = np.arange(flat.size)
    else:  # the k lowest without sorting the grid: below the k-th value, then its first ties
        v = np.partition(flat, k - 1)[k - 1]
        below = np.flatnonzero(flat < v)
        idx = np.concatenate([below, np.flatnonzero(flat == v)[:k - below.size]])
        if idx.size < k:  # NaN among the lowest: the full stable sort
            idx = np.argsort(flat, kind="stable")[:k]
    idx = idx[np.lexsort((idx, flat[idx]))][:k]
    return [tuple(int(j) for j in np.unravel_index(int(i), chi.shape)) for i in idx]


def _block_arrays(part: dict) -> dict:
    """A block's arrays (R, C) from a run of rows of the grid's mesh (R, …): the later axes flattened into C; a
    1-D run of points is one row (R = 1)."""
    return {k: v.reshape(1, -1) if v.ndim == 1 else v.reshape(v.shape[0], -1) for k, v in part.items()}


def _profile_grid(model, mesh, shape, fixed, n_iter, progress, scheduler, block_points, desc, on_last=None):
    """χ² and ν̂ on a full grid, block by block."""
    spans = plan_blocks(shape, block_points)
    blocks = [_block_arrays({k: v[a:b] for k, v in mesh.items()}) for a, b in spans]
    per_row = int(np.prod(shape[1:]))

    def assemble(results):
        """χ² (+inf where a block is not done) and ν̂ on the grid: blocks are consecutive runs of the grid's C order."""
        m = next(r[1].shape[-1] for r in results if r is not None)
        chi, nuh = np.full(int(np.prod(shape)), np.inf), np.zeros((int(np.prod(shape)), m))
        a = 0
        for (r0, r1), r in zip(spans, results):
            n = (r1 - r0) * per_row
            if r is not None:
                chi[a:a + n], nuh[a:a + n] = r[0].ravel(), r[1].reshape(n, m)
            a += n
        return chi.reshape(shape), nuh.reshape(shape + (m,))

    results = run_blocks(model, blocks, fixed, n_iter, progress, scheduler, desc,
                         on_last=None if on_last is None else lambda out: on_last(*assemble(out)))
    return assemble(results)


def _refined(model, mesh, shape, fixed, n_iter, progress, scheduler, block_points, levels, desc, stride: int = 4):
    """Adaptive refinement: the coarse grid, then the fine points of the cells that matter (see :func:`scan`)."""
    idx = [np.unique(np.r_[np.arange(0, n, stride), n - 1]) for n in shape]
    cmesh = {k: v[np.ix_(*idx)] for k, v in mesh.items()}
    cshape = cmesh[next(iter(cmesh))].shape
    cchi, cnu = _profile_grid(model, cmesh, cshape, fixed, n_iter, progress, scheduler, block_points, desc + " (coarse)")
    d = cchi - cchi.min()
    # linear interpolation of χ² and ν̂ to the fine grid, separable along each axis
    chi = cchi
    nuh = cnu
    for ax, (n, ci) in enumerate(zip(shape, idx)):
        k, w = _interp_index(n, ci)
        k1 = np.minimum(k + 1, len(ci) - 1)
        shp = [1] * chi.ndim
        shp[ax] = n
        chi = np.take(chi, k, axis=ax) * (1 - w).reshape(shp) + np.take(chi, k1, axis=ax) * w.reshape(shp)
        shp_n = shp + [1]
        nuh = np.take(nuh, k, axis=ax) * (1 - w).reshape(shp_n) + np.take(nuh, k1, axis=ax) * w.reshape(shp_n)
    # cells to refine: their corner Δχ² straddle a level, or they touch the coarse minimum
    refine = np.zeros(shape, bool)
    cells = [range(len(ci) - 1) for ci in idx]
    imin = np.unravel_index(int(np.argmin(cchi)), cshape)
    import itertools

    for cell in itertools.product(*cells):
        corner = tuple(slice(c, c + 2) for c in cell)
        dc = d[corner]
        near_min = all(c <= im <= c + 1 for c, im in zip(cell, imin))
        if near_min or any(dc.min() <= lv <= dc.max() for lv in levels):
            sel = tuple(slice(ci[c], ci[c + 1] + 1) for c, ci in zip(cell, idx))
            refine[sel] = True
    coarse_mask = np.zeros(shape, bool)
    coarse_mask[np.ix_(*idx)] = True
    todo = np.argwhere(refine & ~coarse_mask)
    if todo.size:
        pts = {k: v[tuple(todo.T)] for k, v in mesh.items()}
        sub = _profile_grid(model, pts, (todo.shape[0],), fixed, n_iter, progress, scheduler, block_points,
                            desc + " (refine)")
        chi[tuple(todo.T)] = sub[0]
        nuh[tuple(todo.T)] = sub[1]
    return chi, nuh, refine | coarse_mask


#: the polish's points are profiled in this many fixed parts (serially one after the other, on Dask as that many
#: tasks): the same parts on every scheduler keep serial and distributed results identical, and two workers halve
#: the polish (0.07 s of a 1.2 s two-worker NSI scan)
POLISH_PARTS = 2


def _polish(model, names, axes, lows, fixed, nu_starts, per_step: int = 4, scheduler=None):
    """Refine the lowest grid points ``lows`` (index tuples) on local grids, ``per_step`` points per grid step,
    spanning each one's neighbouring grid cells (clipped to the scanned range): up to (2·per_step + 1)^d points each for
    d ≤ 2 (3^d beyond), the union profiled in one batch, each point warm-started from ν̂ (``nu_starts``) of the first
    of ``lows`` whose local grid holds it. One batched profile instead of a sequential simplex: the same answer on
    every scheduler, in ~1/10 of the time. The batch is cut into :data:`POLISH_PARTS` parts, profiled one after the
    other, or submitted at once to Dask (``scheduler``; ``model`` must then be a :class:`ModelRecipe`). Returns a
    :class:`_Polished`, whose ``result()`` is (best point, χ²) of the local grids."""
    seen: dict = {}
    for i_min, nu0 in zip(lows, nu_starts):
        pts = []
        for n, i in zip(names, i_min):
            x = np.asarray(axes[n], float)
            k = per_step if len(names) <= 2 else 1
            lo, hi = x[max(i - 1, 0)], x[min(i + 1, len(x) - 1)]
            pts.append(np.unique(np.r_[np.linspace(lo, x[i], k + 1), np.linspace(x[i], hi, k + 1)]))
        for p in zip(*(m.ravel() for m in np.meshgrid(*pts, indexing="ij"))):
            seen.setdefault(tuple(float(v) for v in p), nu0)
    coords = np.array(list(seen), float).reshape(len(seen), len(names))
    phys = {n: coords[:, j] for j, n in enumerate(names)}
    size = coords.shape[0]
    phys.update({k: np.full(size, float(v)) for k, v in fixed.items()})
    start = None if any(v is None for v in seen.values()) else np.array([np.asarray(v, float) for v in seen.values()])
    parts = [p for p in np.array_split(np.arange(size), min(POLISH_PARTS, size)) if p.size]
    args = [({k: v[p] for k, v in phys.items()}, None if start is None else start[p]) for p in parts]
    if scheduler in (None, "serial"):
        built = model.build() if isinstance(model, ModelRecipe) else model
        return _Polished(phys, names, [_profile_points(built, ph, st) for ph, st in args])
    client = dask_client(scheduler)
    return _Polished(phys, names, [client.submit(_profile_points, model, ph, st, pure=False) for ph, st in args],
                     client)


class _Polished:
    """The polish's parts (χ² arrays, or Dask futures of them): ``result()`` → (best point, χ²)."""

    def __init__(self, phys: dict, names: list, parts: list, client=None):
        self.phys, self.names, self.parts, self.client = phys, names, parts, client

    def result(self) -> tuple[dict, float]:
        chi = np.concatenate(self.parts if self.client is None else self.client.gather(self.parts))
        j = int(np.argmin(chi))
        return {n: float(self.phys[n][j]) for n in self.names}, float(chi[j])

    def cancel(self) -> None:
        if self.client is not None:
            self.client.cancel(self.parts)


def _profile_points(recipe_or_model, phys: dict, start) -> np.ndarray:
    """χ² of points profiled to convergence (profile_batch's default tolerance) from ``start`` (a part of the polish;
    a Dask task)."""
    model = recipe_or_model.build() if isinstance(recipe_or_model, ModelRecipe) else recipe_or_model
    with _single_thread():
        return profile_batch(model, phys, start=start)[0]


# ---- executors ---------------------------------------------------------------------------------------------------
_CLIENTS: dict = {}

#: Dask settings of the local clusters cevns starts (they have no dashboard): glibc's malloc trimming left to
#: :func:`cevns.threads.keep_freed_memory` (distributed's MALLOC_TRIM_THRESHOLD_=65536 made scans 2× slower), and
#: the dashboard's samplers off or slowed (the worker profiler, 10 ms; system monitor, 500 ms; memory monitor,
#: 100 ms; event-loop tick, 20 ms): measured with two idle workers, 0.15 → 0.02 CPU-seconds per second on the
#: two-core machine, CPU that a scan's workers would otherwise share
LOCAL_CLUSTER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.tick.interval": "500ms",
}


def start_local_cluster(n_workers: int | None = None):
    """A Dask ``LocalCluster`` of ``n_workers`` (default: one per core) single-threaded worker processes on
    loopback, with :data:`LOCAL_CLUSTER_CONFIG`."""
    import os

    import dask
    from dask.distributed import LocalCluster

    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        return LocalCluster(n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                            host="127.0.0.1", scheduler_port=0, dashboard_address=None)


def dask_client(scheduler):
    """A ``dask.distributed.Client`` for 'local' (:func:`start_local_cluster`, created once per process and reused),
    an address ('tcp://host:port'; checked for reachability), or
    a Client passed through."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise ConfigError("Dask scheduling needs the 'dask' extra: pip install 'cevns[dask]'") from None
    if isinstance(scheduler, Client):
        return scheduler
    if scheduler in _CLIENTS:
        return _CLIENTS[scheduler]
    if scheduler == "local":
        client = Client(start_local_cluster())
    elif isinstance(scheduler, str) and scheduler.startswith(("tcp://", "tls://", "ucx://")):
        try:
            client = Client(scheduler, timeout="5s")
        except Exception as exc:  # noqa: BLE001 - dask raises OSError or TimeoutError subclasses
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    else:
        raise ConfigError(f"scheduler {scheduler!r}: allowed: serial, local, a tcp:// address, or a dask Client")
    _CLIENTS[scheduler] = client
    return client


def run_blocks(model, blocks, fixed, n_iter, progress, scheduler, desc, on_last=None):
    """Profile every block, serially or on Dask, with a progress bar counting points (rate and ETA). On Dask,
    ``on_last(results)`` (None for the blocks not done) is called once, when one block is left: what it submits runs
    on the workers that the last block leaves idle."""
    from tqdm import tqdm

    sizes = [int(np.prod(next(iter(b.values())).shape)) for b in blocks]
    groups = [list(range(a, min(a + GROUP_BLOCKS, len(blocks)))) for a in range(0, len(blocks), GROUP_BLOCKS)]
    bar = tqdm(total=sum(sizes), desc=desc, disable=not progress, unit="pt", smoothing=0.1)
    try:
        if scheduler in (None, "serial"):
            out = []
            for g in groups:
                inits = _profile_shared(model, [blocks[i] for i in g], fixed, n_iter)
                for i, init in zip(g, inits):
                    out.append(_profile_block(model, blocks[i], fixed, n_iter, init=init))
                    bar.update(sizes[i])
            return out
        if not isinstance(model, ModelRecipe):
            raise ConfigError("Dask execution needs a ModelRecipe (picklable), not a built model")
        from dask.distributed import as_completed

        client = dask_client(scheduler)
        # a task for each group's shared coarse lattices (all submitted first: Dask runs earlier submissions first),
        # then one per block that continues from its group's
        shared = [client.submit(_profile_shared, model, [blocks[i] for i in g], fixed, n_iter, pure=False)
                  for g in groups]
        futures = [client.submit(_profile_block_of_group, model, blocks[i], fixed, n_iter, sh, j, pure=False)
                   for g, sh in zip(groups, shared) for j, i in enumerate(g)]
        index = {f.key: i for i, f in enumerate(futures)}
        out = [None] * len(futures)
        for done, fut in enumerate(as_completed(futures), start=1):
            i = index[fut.key]
            out[i] = fut.result()
            bar.update(sizes[i])
            if done == len(futures) - 1 and on_last is not None:
                on_last(out)
        return out
    finally:
        bar.close()


def upper_limit(values, delta_chi2, threshold: float = WILKS_90_1DOF) -> float:
    """Smallest value above the minimum where Δχ² crosses ``threshold`` (90 % CL, 1 dof by default)."""
    if not (math.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"the Δχ² threshold must be a finite number > 0, got {threshold!r}")
    x = np.asarray(values, float)
    d = np.asarray(delta_chi2, float) - np.min(delta_chi2)
    i0 = int(np.argmin(d))
    for i in range(i0, len(x) - 1):
        if d[i] <= threshold < d[i + 1]:
            return float(x[i] + (threshold - d[i]) * (x[i + 1] - x[i]) / (d[i + 1] - d[i]))
    raise NoLimitInRange(f"Δχ² stays below {threshold:.4g} from the best fit to the end of the scanned range "
                         f"({x[-1]:.5g}): no upper limit inside [{x[0]:.5g}, {x[-1]:.5g}]; extend the range")


class NoLimitInRange(CevnsError):
    """The Δχ² threshold is not crossed above the minimum within the scanned range."""


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
