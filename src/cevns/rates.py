"""Rate engine: source × kinematic kernels × targets × exposure → events per recoil quadrature node.

For each isotope the recoil energy axis is covered by Gauss–Legendre panels whose edges sit at the kinematic end
points T_max(E_line) of every line of the source and at T_max of the end of each continuous spectrum, for every
projectile species and its mass (:mod:`cevns.interactions.kinematics`), so the integrand is smooth inside each panel.
For a kinematic kernel K (e.g. the CEvNS G_F²M/π(1 − T/E − MT/2E²)) and species s the flux-folded kernel

    K_s(T_i) = Φ_s · N_iso · w_i · ∫_{E > E_min(T_i)} dE pdf_s(E) K(T_i, E, M)      [events per unit weight]

is computed once (and cached); the event count at node i is then Σ_k w_k(θ; T_i) K_k,s(T_i) with the weights of
:mod:`cevns.interactions.terms`. Counts in observable bins are R @ (that) with a detector response R on the nodes.

A source provides ``species`` (names), ``spectrum(name)`` (a normalised :class:`~cevns.sources.Spectrum` in the total
energy of the projectile), ``fluence_per_cm2(name)`` and optionally ``species_info(name)`` (a
:class:`~cevns.sources.species.Species`, for its mass; neutrinos by default).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from cevns import constants as C
from cevns.errors import PhysicsDomainError
from cevns.interactions.kinematics import e_min, t_max
from cevns.sources.species import Species, species as lookup_species
from cevns.targets.isotopes import Isotope

__all__ = ["RecoilNodes", "recoil_nodes", "electron_recoil_nodes", "FluxKernels", "flux_kernels", "source_species"]


@dataclass(frozen=True)
class RecoilNodes:
    """Quadrature nodes T [MeV] and weights [MeV] on [0, T_hi] for one isotope (or for electrons: isotope None)."""

    isotope: Isotope | None
    T_MeV: np.ndarray
    weights_MeV: np.ndarray

    @property
    def T_keV(self) -> np.ndarray:
        return self.T_MeV / C.keV


def recoil_nodes(iso: Isotope | None, breakpoints_MeV, n_per_panel: int = 16, n_sub_first: int = 3) -> RecoilNodes:
    """Gauss–Legendre nodes on [0, max(breakpoints)], panels split at every breakpoint; the lowest panel is
    split further (``n_sub_first`` geometric sub-panels) because detector thresholds sit at small T."""
    bps = sorted({float(b) for b in breakpoints_MeV if b > 0})
    if not bps:
        raise PhysicsDomainError("recoil grid needs at least one positive breakpoint (T_max of the source)")
    edges = [0.0] + bps
    fine = [0.0]
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo == 0.0:
            fine += [hi * 0.5 ** (n_sub_first - k) for k in range(1, n_sub_first + 1)]
        else:
            fine += list(np.linspace(lo, hi, n_sub_first + 1)[1:])
    x, w = np.polynomial.legendre.leggauss(n_per_panel)
    T, W = [], []
    for lo, hi in zip(fine[:-1], fine[1:]):
        half = 0.5 * (hi - lo)
        T.append(lo + half * (x + 1.0))
        W.append(half * w)
    return RecoilNodes(iso, np.concatenate(T), np.concatenate(W))


def electron_recoil_nodes(T_hi_MeV: float, n_per_panel: int = 16) -> RecoilNodes:
    """Gauss–Legendre nodes for electron recoils on (0, T_hi]: nine geometric panels from 10⁻⁴ T_hi up (the magnetic
    moment's 1/T rise) plus one from 0."""
    if not (np.isfinite(T_hi_MeV) and T_hi_MeV > 0):
        raise PhysicsDomainError(f"electron recoil range must be > 0 MeV, got {T_hi_MeV!r}")
    x, w = np.polynomial.legendre.leggauss(n_per_panel)
    edges = np.r_[0.0, T_hi_MeV * np.geomspace(1e-4, 1.0, 9)]
    T = np.concatenate([lo + 0.5 * (hi - lo) * (x + 1) for lo, hi in zip(edges[:-1], edges[1:])])
    W = np.concatenate([0.5 * (hi - lo) * w for lo, hi in zip(edges[:-1], edges[1:])])
    return RecoilNodes(None, T, W)


def source_species(source, name: str) -> Species:
    """The :class:`Species` of one of a source's projectiles (its ``species_info`` or a neutrino by name)."""
    info = getattr(source, "species_info", None)
    return info(name) if info is not None else lookup_species(name)


@dataclass
class FluxKernels:
    """Flux-folded kernels of one source on the recoil nodes of each isotope, computed on demand and cached.

    ``nodes[iso_name]``: :class:`RecoilNodes`; ``n_targets[iso_name]``: number of nuclei (or atoms) in the exposure;
    :meth:`get` (kernel name, kernel function, species, isotope name, optional flux weight key) → events per unit
    weight on the nodes."""

    source: object
    nodes: dict[str, RecoilNodes]
    n_targets: dict[str, float]
    species: tuple[str, ...]
    _cache: dict = field(default_factory=dict, repr=False)
    _contexts: dict = field(default_factory=dict, repr=False)

    def get(self, kernel_name: str, kernel_fn, species: str, iso_name: str, flux_weight=None, weight_key=None) -> np.ndarray:
        """Φ_s N w_i ∫ pdf_s(E) K(T_i, E, M) [× flux_weight(E)] dE over E > E_min(T_i; M, m_s); a kernel flagged
        ``needs_projectile_mass`` (dark matter) is called as K(T, E, M, m_MeV=m_s)."""
        key = (kernel_name, species, iso_name, weight_key)
        if key not in self._cache:
            nd = self.nodes[iso_name]
            M = nd.isotope.mass_MeV if nd.isotope is not None else C.M_ELECTRON
            sp = self.source.spectrum(species)
            m = source_species(self.source, species).mass_MeV
            T = nd.T_MeV
            if getattr(kernel_fn, "needs_projectile_mass", False):  # massive projectiles: K(T, E, M, m)
                kernel_fn = functools.partial(kernel_fn, m_MeV=m)
            if flux_weight is None:
                g = lambda E: kernel_fn(T[:, None], E, M)  # noqa: E731
            else:
                g = lambda E: kernel_fn(T[:, None], E, M) * flux_weight(E)  # noqa: E731
            folded = sp.fold(g, e_min(T, M, m))
            self._cache[key] = self.source.fluence_per_cm2(species) * self.n_targets[iso_name] * nd.weights_MeV * folded
        return self._cache[key]

    def nuclear_context(self, iso_name: str, species: str, form_factor_model: str, scheme: str):
        """The :class:`~cevns.interactions.process.NuclearContext` of (isotope, species) on these nodes (cached)."""
        key = ("ctx", iso_name, species, form_factor_model, scheme)
        if key not in self._contexts:
            from cevns.interactions.process import NuclearContext

            nd = self.nodes[iso_name]
            self._contexts[key] = NuclearContext(nd.isotope, source_species(self.source, species), nd.T_MeV,
                                                 form_factor_model, scheme)
        return self._contexts[key]

    def electron_context(self, element: str, species: str):
        """The :class:`~cevns.interactions.process.ElectronContext` of (element, species) on these nodes (cached)."""
        key = ("ectx", element, species)
        if key not in self._contexts:
            from cevns.interactions.process import ElectronContext

            self._contexts[key] = ElectronContext(element, source_species(self.source, species),
                                                  self.nodes[f"e:{element}"].T_MeV)
        return self._contexts[key]

    def forget(self, weight_key) -> None:
        """Drop the cached folds made with one flux-weight key (e.g. one Δm² of an oscillation scan)."""
        for k in [k for k in self._cache if k[3] == weight_key]:
            del self._cache[k]

    def n_weighted(self) -> int:
        return sum(1 for k in self._cache if k[3] is not None)


def flux_kernels(source, components, n_per_panel: int = 16, electrons: dict | None = None) -> FluxKernels:
    """Recoil nodes for every (Isotope, number of nuclei) in ``components`` (breakpoints at T_max of every line and
    spectrum end of every species of ``source``, for its mass) and a :class:`FluxKernels` cache over them.
    ``electrons`` (optional) = {'T_hi_MeV': ..., 'atoms': {element: number of atoms}} adds electron-recoil nodes
    under the names 'e:<element>'."""
    names = tuple(source.species)
    nodes: dict[str, RecoilNodes] = {}
    n_targets: dict[str, float] = {}
    for iso, n in components:
        M = iso.mass_MeV
        bps = []
        for s in names:
            sp = source.spectrum(s)
            m = source_species(source, s).mass_MeV
            bps += [float(t_max(e, M, m)) for e, _ in sp.lines]
            if sp.pdf is not None:
                bps.append(float(t_max(sp.e_max, M, m)))
            # a spectrum may name energies where it has kinks (a piecewise table): panels end at their T_max too
            bps += [float(t_max(e, M, m)) for e in getattr(sp, "kinks", ())]
        nodes[iso.name] = recoil_nodes(iso, bps, n_per_panel)
        n_targets[iso.name] = float(n)
    if electrons:
        en = electron_recoil_nodes(electrons["T_hi_MeV"], n_per_panel)
        for el, n in electrons["atoms"].items():
            nodes[f"e:{el}"] = en
            n_targets[f"e:{el}"] = float(n)
    return FluxKernels(source, nodes, n_targets, names)
