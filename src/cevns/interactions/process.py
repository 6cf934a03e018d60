"""The contract between interaction modules and the rate engine: a :class:`Process` and the contexts it sees.

Every cross section here is Σ_k w_k(θ; T) · K_k(T, E), a sum over kinematic kernels K_k(T, E, M) [cm²/MeV] (folded
with the flux once per source and target by :mod:`cevns.rates`) times weights w_k on the recoil nodes that carry
every dependence on the physics parameters θ. A process contributes in one or more of four ways:

* ``amplitude``: a shift of the coherent vector amplitude of the nucleus (NSI, Z′, charge radius), added to the
  Standard-Model weak charge before squaring (they interfere), weight of the ``"sm"`` kernel;
* ``incoherent``: weights of kernels that add to the rate without interference (magnetic moment, scalar mediator,
  flavour-changing NSI);
* ``electron_shift`` / ``electron_incoherent``: the same for ν–e scattering on atomic electrons;
* ``flux``: a change of the flux itself (sterile oscillation), as an amplitude A(θ) and a Δm² per point.

:mod:`cevns.interactions.terms` loops over the registered processes; nothing else combines them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np

from cevns import constants as C

__all__ = ["Process", "NuclearContext", "NuclearState", "ElectronContext"]


@dataclass(frozen=True)
class Process:
    """One physics process: the parameter names it owns and the pieces it contributes (see the module docstring).

    Callables get (state, phys, P): ``state`` a :class:`NuclearState` or :class:`ElectronContext`, ``phys`` the
    validated parameter dict (absent names keep their defaults), P the number of parameter points; they return
    arrays of shape (P, nodes) (``flux``: (A (P,), Δm² (P,))). ``kernels`` / ``electron_kernels`` map kernel names to
    kinematic functions (T [MeV], E [MeV], M [MeV]) → cm²/MeV. ``species_kind``: which projectiles it acts on."""

    name: str
    parameters: tuple[str, ...]
    doc: str
    species_kind: str = "neutrino"
    amplitude: Callable | None = None
    incoherent: Callable | None = None
    incoherent_kernels: tuple[str, ...] = ()
    kernels: dict = field(default_factory=dict)
    electron_shift: Callable | None = None
    electron_incoherent: Callable | None = None
    electron_incoherent_kernels: tuple[str, ...] = ()
    electron_kernels: dict = field(default_factory=dict)
    flux: Callable | None = None

    def active(self, names) -> bool:
        """True when any of the parameter names ``names`` belongs to this process."""
        return any(n in names for n in self.parameters)


@dataclass(eq=False)
class NuclearContext:
    """Everything on the recoil nodes of one (isotope, projectile) pair that does not depend on θ, computed once:
    proton/neutron form factors at the default radii, SM couplings at sin²θ_W⁰ and their slope, q² = 2MT."""

    iso: object
    species: object
    T_MeV: np.ndarray
    form_factor_model: str = "helm"
    scheme: str = "one_loop"

    def __post_init__(self):
        from cevns.interactions.cevns import nucleon_couplings, nucleon_form_factors, sin2_slope

        self.T_MeV = np.ascontiguousarray(self.T_MeV, dtype=float)
        self.Fp, self.Fn = nucleon_form_factors(self.T_MeV, self.iso, self.form_factor_model)
        self.ZFp = self.iso.Z * self.Fp
        self.NFn = self.iso.N * self.Fn
        if self.species.is_neutrino:
            self.gp0, self.gn = nucleon_couplings(self.species.name, None, self.scheme)
            self.slope = sin2_slope(self.scheme)
        self.q2 = 2.0 * self.iso.mass_MeV * self.T_MeV
        self._rn_cache: dict[float, np.ndarray] = {}

    def neutron_ff(self, r_n_fm: float) -> np.ndarray:
        """N F_n(q) with neutron rms radius r_n [fm] (cached per value)."""
        r = float(r_n_fm)
        if r not in self._rn_cache:
            from cevns.interactions.cevns import nucleon_form_factors

            if len(self._rn_cache) > 512:
                self._rn_cache.clear()
            self._rn_cache[r] = self.iso.N * nucleon_form_factors(self.T_MeV, self.iso, self.form_factor_model,
                                                                  r_n_fm=r)[1]
        return self._rn_cache[r]


@dataclass(eq=False)
class NuclearState:
    """A :class:`NuclearContext` at P parameter points: N F_n (P or 1, nodes) with the neutron radius applied and the
    quark coefficients c_u = 2 Z F_p + N F_n, c_d = Z F_p + 2 N F_n of a unit ε^u, ε^d (arXiv:hep-ph/0508299 Sec. 2)."""

    ctx: NuclearContext
    P: int
    NFn: np.ndarray

    @cached_property
    def cu(self) -> np.ndarray:
        return 2.0 * self.ctx.ZFp[None, :] + self.NFn

    @cached_property
    def cd(self) -> np.ndarray:
        return self.ctx.ZFp[None, :] + 2.0 * self.NFn


@dataclass(eq=False)
class ElectronContext:
    """Electron recoils T [MeV] on the atoms of ``element`` for one projectile: Z_eff(T) of the step approximation
    (:func:`cevns.interactions.electron.electrons_available`) and q² = 2 m_e T."""

    element: str
    species: object
    T_MeV: np.ndarray
    P: int = 1

    def __post_init__(self):
        from cevns.interactions.electron import electrons_available

        self.T_MeV = np.ascontiguousarray(self.T_MeV, dtype=float)
        self.zeff = electrons_available(self.element, self.T_MeV)
        self.q2 = 2.0 * C.M_ELECTRON * self.T_MeV
