"""Released detection-efficiency templates: a predicted nuclear-recoil spectrum folded with mono-energetic templates.

Some collaborations release, instead of a detector model, the probability ε_k[bin] that a nuclear recoil of energy
E_k lands in each analysis bin, at a grid of energies E_k and on a grid of detector nuisance values (XENONnT: light
and charge yield, 46 energies 0.5–5 keV, ``cevns/data/xenonnt_cevns_2024``). Linear interpolation between the E_k is
a response matrix on the engine's recoil nodes,

    R_v[bin, node] = Σ_k ε_k,v[bin] φ_k(T_node),   φ_k the hat functions of the energy grid (zero outside it),

so the signal is the engine's prediction with that response (:class:`cevns.model.signal.PredictedSignal`): any
source (solar ⁸B, halo dark matter), any interaction (SM CEvNS, NSI, spin-independent DM), and the nuisance grid as
``response`` parameters (one at a time: tly at tqy = 0 and tqy at tly = 0, see the data folder's SOURCE.md for the
size of the neglected cross terms). Section types defined here:

* signal ``efficiency_templates``: the predicted signal (modes counts / xsec_scale / physics);
* background ``efficiency_templates``: a predicted background with its own ``source`` block (e.g. ⁸B CEvNS under a
  dark-matter signal), fixed at its SM prediction × its normalisation modifiers;
* background ``released_array``: a released template in events per tonne-year × the exposure (target mass ×
  source livetime), with optional grid morphing (``grid_modifiers``) and normalisation modifiers; an ``array`` with
  the yield grid as its first axis contributes its nominal (grid value 0) slice.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cevns import constants as C
from cevns.errors import ConfigError, DataError
from cevns.inference.likelihood import Parameter
from cevns.interactions.kinematics import t_max
from cevns.model.samples import FactorisedSample, GridModifier, TemplateSample
from cevns.model.signal import PredictedSignal, ResponseSettings
from cevns.rates import FluxKernels, RecoilNodes, source_species

__all__ = ["TemplateRelease", "load_template_release", "hat_matrix", "EfficiencyTemplateSignalBuild",
           "EfficiencyTemplateBackground", "ReleasedArrayBackground", "hat_weights_8b", "kinematic_breakpoints_keV"]

_KEYS = ("edges_0", "edges_1", "edges_2", "edges_3", "ac", "er", "yield_grid", "rg_tly", "rg_tqy", "mono_E_keV",
         "mono_tly", "mono_tqy")


@dataclass
class TemplateRelease:
    """Arrays of one released template file (.npz): bin edges per axis, named arrays, the yield grid."""

    path: str
    edges: list
    arrays: dict
    grid: np.ndarray

    def array(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise ConfigError(f"{self.path}: no array {key!r}; available: {sorted(self.arrays)}")
        return self.arrays[key]


def load_template_release(path) -> TemplateRelease:
    """Read and check a template release: every array finite and ≥ 0, shapes consistent with the bin edges."""
    try:
        with np.load(str(path), allow_pickle=False) as z:
            arrs = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read template release {path}: {exc}") from exc
    edges = []
    k = 0
    while f"edges_{k}" in arrs:
        e = np.asarray(arrs.pop(f"edges_{k}"), float)
        if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
            raise DataError(f"{path}: edges_{k} are not increasing bin edges")
        edges.append(e)
        k += 1
    if not edges:
        raise DataError(f"{path}: no bin edges (edges_0, ...)")
    arrs.pop("axis_names", None)
    shape = tuple(e.size - 1 for e in edges)
    grid = np.asarray(arrs.pop("yield_grid", np.zeros(0)), float)
    for name, a in arrs.items():
        if a.dtype.kind not in "fi" or not np.all(np.isfinite(a)) or np.any(a < 0):
            raise DataError(f"{path}: array {name} must be finite and >= 0")
        if name != "mono_E_keV" and a.shape[-len(shape):] != shape:
            raise DataError(f"{path}: array {name} has shape {a.shape}, its last axes must be the bins {shape}")
    return TemplateRelease(str(path), edges, arrs, grid)


def _check_edges(rel: TemplateRelease, exp) -> None:
    axes = exp.binning.axes
    if len(axes) != len(rel.edges) or not all(np.allclose(a["edges"], e, rtol=1e-9, atol=0) for a, e in
                                              zip(axes, rel.edges)):
        raise ConfigError(f"spec {exp.name}: the binning axes differ from the bin edges of {rel.path}")


def hat_matrix(E_grid_keV, T_keV) -> np.ndarray:
    """φ_k(T) (K, nodes): the linear-interpolation weights of grid energies E_k at T, zero outside [E_0, E_{K−1}]."""
    E = np.asarray(E_grid_keV, float)
    T = np.asarray(T_keV, float)
    K = E.size
    out = np.zeros((K, T.size))
    inside = (T >= E[0]) & (T <= E[-1])
    i = np.clip(np.searchsorted(E, T, side="right") - 1, 0, K - 2)
    f = (T - E[i]) / (E[i + 1] - E[i])
    cols = np.flatnonzero(inside)
    out[i[cols], cols] = 1.0 - f[cols]
    out[i[cols] + 1, cols] += f[cols]
    return out


def kinematic_breakpoints_keV(source, iso) -> list[float]:
    """Recoil energies [keV] where the folded spectrum of ``source`` on ``iso`` has kinks: T_max of each line and
    spectrum end point, and for a halo the recoil at each kink of f(v)."""
    M = iso.mass_MeV
    out = []
    for s in source.species:
        sp = source.spectrum(s)
        m = source_species(source, s).mass_MeV
        out += [float(t_max(e, M, m)) / C.keV for e, _ in sp.lines]
        if sp.pdf is not None:
            out.append(float(t_max(sp.e_max, M, m)) / C.keV)
        halo = getattr(sp, "halo", None)
        if halo is not None:
            from cevns.sources.halo import C_KMS

            for v in halo.kinks_kms:
                b = v / C_KMS
                out.append(float(t_max(m / math.sqrt(1.0 - b * b), M, m)) / C.keV)
    return out


def _panel_nodes(iso, lo_keV: float, hi_keV: float, breaks, grid, n: int = 6) -> RecoilNodes:
    """Gauss–Legendre nodes on [lo, hi] with panels ending at the energy grid and the kinematic breakpoints."""
    pts = np.unique(np.concatenate([[lo_keV, hi_keV], [b for b in list(breaks) + list(grid) if lo_keV < b < hi_keV]]))
    x, w = np.polynomial.legendre.leggauss(n)
    a, b = pts[:-1], pts[1:]
    T = (a[:, None] + 0.5 * (b - a)[:, None] * (x + 1.0)).ravel()
    W = (0.5 * (b - a)[:, None] * w).ravel()
    return RecoilNodes(iso, T * C.keV, W * C.keV)


class _Engine:
    """Flux kernels of a source on the target's isotopes over the template energy range, and the response settings
    (nominal + each non-nominal grid value of each yield parameter) built from the efficiency templates."""

    def __init__(self, exp, source, release: TemplateRelease, sec: dict):
        self.exp = exp
        self.source = source
        self.release = release
        E = np.asarray(release.array("mono_E_keV"), float)
        if E.ndim != 1 or E.size < 2 or np.any(np.diff(E) <= 0):
            raise DataError(f"{release.path}: mono_E_keV must be increasing energies")
        self.E = E
        self.params = dict(sec.get("yield_parameters", {}))  # grid axis key -> nuisance name
        for key in self.params:
            arr = release.array(f"mono_{key}")
            if arr.shape[:2] != (release.grid.size, E.size):
                raise DataError(f"{release.path}: mono_{key} must have shape (grid, energies, bins...)")
        self.nominal_index = int(np.flatnonzero(release.grid == 0.0)[0]) if release.grid.size else 0
        first = next(iter(self.params), None)
        if first is None:
            raise ConfigError(f"spec {exp.name}: efficiency templates need 'yield_parameters' (e.g. tly, tqy)")
        self.nominal_eff = release.array(f"mono_{first}")[self.nominal_index].reshape(E.size, -1)  # (K, bins)
        for key in self.params:
            other = release.array(f"mono_{key}")[self.nominal_index].reshape(E.size, -1)
            if not np.array_equal(other, self.nominal_eff):
                raise DataError(f"{release.path}: the nominal slices of the yield grids differ")
        t = exp.target
        nodes, nt = {}, {}
        for iso, n in t.components:
            nodes[iso.name] = _panel_nodes(iso, E[0], E[-1], kinematic_breakpoints_keV(source, iso), E)
            nt[iso.name] = float(n)
        self.flux = FluxKernels(source, nodes, nt, tuple(source.species))
        self._interp = {}
        for name, nd in nodes.items():  # the two non-zero hat functions at each node: (left index, weights)
            T = nd.T_keV
            i = np.clip(np.searchsorted(E, T, side="right") - 1, 0, E.size - 2)
            f = (T - E[i]) / (E[i + 1] - E[i])
            inside = (T >= E[0]) & (T <= E[-1])
            self._interp[name] = (i, np.where(inside, 1.0 - f, 0.0), np.where(inside, f, 0.0))
        self._cache: dict = {}

    def response(self, eff: np.ndarray, key=None) -> dict:
        """{iso: R (bins, nodes)} for efficiencies eff (K, bins) (= eff.T @ hat_matrix, without the zeros), cached
        under ``key``."""
        if key is not None and key in self._cache:
            return self._cache[key]
        eT = np.ascontiguousarray(eff.T)
        out = {name: eT[:, i] * a + eT[:, i + 1] * b for name, (i, a, b) in self._interp.items()}
        if key is not None:
            self._cache[key] = out
        return out

    def settings(self, pc=None) -> ResponseSettings:
        nuclear = [self.response(self.nominal_eff, "nominal")]
        mods = []
        if pc is not None:
            rel = self.release
            for key, pname in self.params.items():
                k = pc.add(pname, 0.0)
                g = pc.grid(pname)
                if g.values.size != rel.grid.size or not np.allclose(g.values, rel.grid):
                    raise ConfigError(f"spec {self.exp.name}: the grid of {pname} {g.values.tolist()} must equal the "
                                      f"release's yield grid {rel.grid.tolist()}")
                idx = []
                arr = rel.array(f"mono_{key}")
                for j in range(g.n):
                    if j == g.nominal_index:
                        idx.append(0)
                        continue
                    idx.append(len(nuclear))
                    nuclear.append(self.response(arr[j].reshape(self.E.size, -1), (key, j)))
                mods.append((k, g, idx))
        return ResponseSettings(nuclear, None, mods)

    def predicted(self, physics_names, rs: ResponseSettings) -> PredictedSignal:
        t = self.exp.target
        return PredictedSignal(self.flux, t.components, [list(self.source.species)], rs, physics_names,
                               t.form_factor, t.coupling_scheme, None)


def _livetime(exp, what: str) -> float:
    lt = exp.source.info.get("livetime_yr")
    if lt is None:
        raise ConfigError(f"spec {exp.name}: {what} needs the source's 'livetime_yr' (exposure = target mass × livetime)")
    return float(lt)


class EfficiencyTemplateSignalBuild:
    """Signal type ``efficiency_templates`` (see the module docstring)."""

    def __init__(self, sec: dict, exp):
        self.sec, self.exp = sec, exp
        self.name = sec.get("name", "cevns")
        self.label = sec.get("label", "signal")
        self.release = load_template_release(exp.file(sec["file"]))
        _check_edges(self.release, exp)
        self.engine = _Engine(exp, exp.source.source, self.release, sec)
        self._sm = None

    @property
    def n_bins(self) -> int:
        return int(np.prod(self.exp.binning.shape))

    def sm_prediction(self) -> float:
        """Signal counts over the bins at the default physics and nominal yields."""
        if self._sm is None:
            sig = self.engine.predicted((), self.engine.settings(None))
            self._sm = float(sig.all_settings({})[0, 0].sum())
        return self._sm

    def sample(self, pc, mode: str, physics_names, mask):
        from cevns.experiments.sections.signal import COUNT_PARAMETER, _mode_norms

        if mode == "flavour":
            raise ConfigError(f"spec {self.exp.name}: the 'flavour' mode needs a neutrino signal of type 'predicted'")
        count = None
        if mode == "counts":
            n0 = self.sm_prediction()
            count = pc.add_parameter(Parameter(COUNT_PARAMETER, n0, (0.0, 20.0 * n0 + 10.0), None, 0.1 * n0 + 0.1,
                                               "poi", "signal counts in the analysis bins (free)"))
        elif mode == "xsec_scale":
            pc.add_parameter(Parameter("xsec_scale", 1.0, (0.0, 20.0), None, 0.1, "poi",
                                       "signal normalisation / prediction (flux × cross section)"))
        norms = [pc.index["xsec_scale"]] if mode == "xsec_scale" else []
        norms += [pc.add(n, context={"prediction": 1.0, "prediction_sigma": 0.0}) for n in _mode_norms(self.sec, mode)]
        rs = self.engine.settings(pc)
        sig = self.engine.predicted(physics_names, rs)
        emods = [GridModifier(k, g, None) for k, g, _ in rs.modifiers]
        return FactorisedSample(self.name, self.n_bins, 1, np.ones((1, 1)), [0], energy_mods=emods, norms=norms,
                                count=count, physics=sig, mask=mask, label=self.label)


class EfficiencyTemplateBackground:
    """Background type ``efficiency_templates``: a predicted spectrum of its own ``source`` (SM/default physics)."""

    def __init__(self, name: str, sec: dict, exp):
        from cevns.experiments.registry import _check, _schema
        from cevns.experiments.sections.source import build_source

        self.name, self.sec, self.exp = name, sec, exp
        self.label = sec.get("label", name)
        src_sec = dict(sec["source"])
        src_sec.setdefault("livetime_yr", _livetime(exp, f"background {name}"))
        _check(src_sec, _schema(f"source_{src_sec.get('type')}.json"), f"backgrounds/{name}/source", exp.name)
        self.source_build = build_source(src_sec, None, exp.file, exp.name)
        self.release = load_template_release(exp.file(sec["file"]))
        _check_edges(self.release, exp)
        self.engine = _Engine(exp, self.source_build.source, self.release, sec)

    def sample(self, pc, mask) -> FactorisedSample:
        if mask is not None:
            raise ConfigError(f"spec {self.exp.name}: background {self.name}: no ROI mask with efficiency templates")
        rs = self.engine.settings(pc)
        allv = self.engine.predicted((), rs).all_settings({})[0]  # (V, G, bins)
        mods = [GridModifier(k, g, allv[idx]) for k, g, idx in rs.modifiers]
        norms = [pc.add(n) for n in self.sec.get("modifiers", [])]
        return FactorisedSample(self.name, allv.shape[-1], 1, np.ones((1, 1)), [0], energy=allv[0], energy_mods=mods,
                                norms=norms, label=self.label)


class ReleasedArrayBackground:
    """Background type ``released_array``: a released template [events/(t·yr)] × exposure, with grid morphing."""

    def __init__(self, name: str, sec: dict, exp):
        self.name, self.sec, self.exp = name, sec, exp
        self.label = sec.get("label", name)
        rel = load_template_release(exp.file(sec["file"]))
        _check_edges(rel, exp)
        self.scale = exp.target.mass_kg / 1000.0 * _livetime(exp, f"background {name}")
        nominal = rel.array(sec["array"])
        if nominal.ndim == len(exp.binning.shape) + 1 and rel.grid.size == nominal.shape[0]:
            nominal = nominal[int(np.flatnonzero(rel.grid == 0.0)[0])]  # a grid array: its nominal (0) slice
        self.nominal = nominal * self.scale
        if self.nominal.shape != exp.binning.shape:
            raise DataError(f"{rel.path}: array {sec['array']} has shape {self.nominal.shape}, the binning "
                            f"{exp.binning.shape}")
        if "prediction" in sec and not math.isclose(float(self.nominal.sum()), sec["prediction"], rel_tol=5e-3):
            raise DataError(f"{rel.path}: {sec['array']} × exposure = {self.nominal.sum():.6g} events differs from the "
                            f"spec prediction {sec['prediction']}")
        self.variants = []
        for gm in sec.get("grid_modifiers", []):
            arr = rel.array(gm["array"]) * self.scale
            if arr.shape != (rel.grid.size,) + exp.binning.shape:
                raise DataError(f"{rel.path}: {gm['array']} must have shape (grid, bins...)")
            self.variants.append((gm["name"], arr.reshape(rel.grid.size, -1), rel.grid))

    def sample(self, pc, mask) -> TemplateSample:
        if mask is not None:
            raise ConfigError(f"spec {self.exp.name}: background {self.name}: no ROI mask for released arrays")
        mods = []
        for pname, V, grid in self.variants:
            k = pc.add(pname, 0.0)
            g = pc.grid(pname)
            if g.values.size != grid.size or not np.allclose(g.values, grid):
                raise ConfigError(f"spec {self.exp.name}: the grid of {pname} must equal the release grid {grid.tolist()}")
            mods.append(GridModifier(k, g, V))
        norms = [pc.add(n) for n in self.sec.get("modifiers", [])]
        return TemplateSample(self.name, self.nominal, mods, norms, label=self.label)


def hat_weights_8b(E_grid_keV, target: str = "Xe") -> np.ndarray:
    """∫ dR/dT φ_k(T) dT [events/(t·yr)] of SM ⁸B CEvNS (O'Hare flux) for the hat functions of an energy grid: the
    weights that fold mono-energetic efficiencies into an ⁸B template (used by docs/make_xenonnt_release.py)."""
    from cevns.directdetection.spectra import target_components
    from cevns.interactions.terms import KERNELS, nuclear_weights
    from cevns.sources.solar import NaturalNeutrinoSource

    src = NaturalNeutrinoSource(["8B"])
    E = np.asarray(E_grid_keV, float)
    out = np.zeros(E.size)
    for iso, n in target_components(target):
        nd = _panel_nodes(iso, E[0], E[-1], kinematic_breakpoints_keV(src, iso), E)
        fk = FluxKernels(src, {iso.name: nd}, {iso.name: float(n)}, src.species)
        K = fk.get("sm", KERNELS["sm"], "8B", iso.name)
        w = nuclear_weights({}, fk.nuclear_context(iso.name, "8B", "helm", "one_loop"))["sm"][0]
        out += hat_matrix(E, nd.T_keV) @ (K * w)
    return out
