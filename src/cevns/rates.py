"""Rate engine: source × cross section × targets × exposure → recoil spectra on quadrature nodes.

For each isotope the recoil energy axis is covered by Gauss–Legendre panels whose edges sit at the kinematic end
points T_max(E_line) of every neutrino line and at T_max of the end of each continuous spectrum, so the integrand
is smooth inside every panel. The flux-integrated kernel

    K_f(T_i) = Φ_f · N_iso · w_i · ∫ dE pdf_f(E) G_F² M/π (1 − T_i/E − M T_i/2E²) (ħc)²

is computed once; the event density at node i is then K_f(T_i) · Q_W,f(T_i)², where the weak charge Q_W
(Z g_V^p F_p + N g_V^n F_n) holds every parameter that does not depend on E_ν (sin²θ_W, radii, NSI, Z′ ...).
Counts in observable bins are R @ (K · Q_W²) with a detector response matrix R built on the same nodes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cevns import constants as C
from cevns.interactions.cevns import kinematic_kernel, t_max, e_nu_min, weak_charge
from cevns.errors import PhysicsDomainError
from cevns.targets.isotopes import Isotope

__all__ = ["RecoilNodes", "recoil_nodes", "FluxKernels", "flux_kernels"]


@dataclass(frozen=True)
class RecoilNodes:
    """Quadrature nodes T [MeV] and weights [MeV] on [0, T_hi] for one isotope."""

    isotope: Isotope
    T_MeV: np.ndarray
    weights_MeV: np.ndarray

    @property
    def T_keV(self) -> np.ndarray:
        return self.T_MeV / C.keV


def recoil_nodes(iso: Isotope, breakpoints_MeV, n_per_panel: int = 16, n_sub_first: int = 3) -> RecoilNodes:
    """Gauss–Legendre nodes on [0, max(breakpoints)], panels split at every breakpoint; the lowest panel is
    split further (``n_sub_first`` geometric sub-panels) because detector thresholds sit at small T."""
    bps = sorted({float(b) for b in breakpoints_MeV if b > 0})
    if not bps:
        raise PhysicsDomainError("recoil grid needs at least one positive breakpoint (T_max of the source)")
    edges = [0.0] + bps
    # refine: split every panel into n_sub_first pieces, geometric toward zero for the first one
    fine = [0.0]
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo == 0.0:
            sub = [hi * 0.5 ** (n_sub_first - k) for k in range(1, n_sub_first + 1)]
            fine += sub
        else:
            fine += list(np.linspace(lo, hi, n_sub_first + 1)[1:])
    x, w = np.polynomial.legendre.leggauss(n_per_panel)
    T, W = [], []
    for lo, hi in zip(fine[:-1], fine[1:]):
        half = 0.5 * (hi - lo)
        T.append(lo + half * (x + 1.0))
        W.append(half * w)
    return RecoilNodes(iso, np.concatenate(T), np.concatenate(W))


@dataclass
class FluxKernels:
    """Per (flavour, isotope name): nodes and the flux-integrated kernel K [events per unit Q_W²] on them."""

    nodes: dict[str, RecoilNodes]
    kernels: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    flavours: tuple[str, ...] = ()

    def events(self, flavour: str, iso_name: str, qw_sq) -> np.ndarray:
        """Expected events per node for a weak charge squared (array on the nodes, or scalar)."""
        return self.kernels[(flavour, iso_name)] * qw_sq

    def sm_events(self, flavour: str, iso_name: str, **qw_kwargs) -> np.ndarray:
        nodes = self.nodes[iso_name]
        qw = weak_charge(nodes.T_MeV, nodes.isotope, flavour, **qw_kwargs)
        return self.events(flavour, iso_name, qw * qw)


def flux_kernels(source, components, n_per_panel: int = 16) -> FluxKernels:
    """Build K_f(T_i) for every flavour of ``source`` and every (Isotope, number of nuclei) in ``components``.

    ``source`` must provide ``flavours``, ``spectrum(f)`` (normalised :class:`~cevns.sources.Spectrum`) and
    ``fluence_per_cm2(f)`` [cm^-2]. Result: events per node per unit Q_W².
    """
    nodes: dict[str, RecoilNodes] = {}
    kernels: dict[tuple[str, str], np.ndarray] = {}
    spectra = {f: source.spectrum(f) for f in source.flavours}
    for iso, n_nuclei in components:
        M = iso.mass_MeV
        bps = []
        for sp in spectra.values():
            bps += [t_max(e, M) for e, _ in sp.lines]
            if sp.pdf is not None:
                bps.append(t_max(sp.e_max, M))
        nd = recoil_nodes(iso, bps, n_per_panel)
        nodes[iso.name] = nd
        emin = e_nu_min(nd.T_MeV, M)
        for f, sp in spectra.items():
            folded = sp.fold(lambda E: kinematic_kernel(nd.T_MeV[:, None], E, M), emin)
            kernels[(f, iso.name)] = source.fluence_per_cm2(f) * n_nuclei * nd.weights_MeV * folded
    return FluxKernels(nodes, kernels, tuple(spectra))


def fold_kernel(source, fk: FluxKernels, components, kernel_fn, flux_weight=None) -> dict[tuple[str, str], np.ndarray]:
    """Flux-integrated kernel for another kinematic function ``kernel_fn(T_MeV, E_MeV, M_MeV)`` on the nodes of ``fk``:
    fluence × N × w_i × ∫ pdf(E) kernel(T_i, E) dE (e.g. the magnetic-moment 1/T − 1/E kernel). ``flux_weight``
    (optional, callable (flavour, E) → factor) multiplies the spectrum, e.g. an oscillation probability."""
    out = {}
    for iso, n_nuclei in components:
        nd = fk.nodes[iso.name]
        M = iso.mass_MeV
        emin = e_nu_min(nd.T_MeV, M)
        for f in fk.flavours:
            sp = source.spectrum(f)
            if flux_weight is None:
                g = lambda E: kernel_fn(nd.T_MeV[:, None], E, M)  # noqa: E731
            else:
                g = lambda E, f=f: kernel_fn(nd.T_MeV[:, None], E, M) * flux_weight(f, E)  # noqa: E731
            out[(f, iso.name)] = source.fluence_per_cm2(f) * n_nuclei * nd.weights_MeV * sp.fold(g, emin)
    return out
