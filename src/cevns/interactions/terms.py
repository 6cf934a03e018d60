"""The one place where interaction processes are combined: physics parameters θ → weights of kinematic kernels.

The rate of every model is Σ_k w_k(θ; T) ⊗ K_k(T) (see :mod:`cevns.interactions.process`): K_k are kinematic
kernels folded with the flux once per source and target (:mod:`cevns.rates`), w_k are weights on the recoil nodes.
This module loops over the registered :data:`PROCESSES`:

* nucleus: Q = Q_SM(sin²θ_W, R_n) + Σ_processes ΔQ (interfering amplitude shifts), w_sm = Q² + Σ incoherent
  additions to 'sm'; other kernels ('magnetic', 'scalar', ...) from the incoherent parts;
* electron: g_L, g_R from sin²θ_W and the vector shifts δg_V^e, weights Z_eff g_L², Z_eff g_R², Z_eff g_L g_R of the
  kernels 'e_L', 'e_R', 'e_LR' (PDG 2024 §10), plus incoherent electron terms;
* flux: (A, Δm²) pairs of the processes that act on the flux (sterile oscillation).

Everything is vectorised over a leading axis of P parameter points; the key set of every returned dict depends only
on the parameter names present, never on their values, so a batch is uniform. A new process is one module that
defines a :class:`~cevns.interactions.process.Process` and one line in :data:`PROCESSES`.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from cevns import constants as C
from cevns.errors import ConfigError, PhysicsDomainError, UnknownNameError
from cevns.interactions.cevns import DEFAULT_SCHEME, kinematic_kernel
from cevns.interactions.electromagnetic import CHARGE_RADIUS_PROCESS, MAGNETIC_PROCESS
from cevns.interactions.electron import electron_couplings, kernel_e_L, kernel_e_LR, kernel_e_R
from cevns.interactions.mediators import SCALAR_MEDIATOR_PROCESS, VECTOR_MEDIATOR_PROCESS
from cevns.interactions.nsi import NSI_PROCESS
from cevns.interactions.oscillation import STERILE_PROCESS
from cevns.interactions.dark_matter import DM_SI_PROCESS
from cevns.interactions.dark_photon import DARK_PHOTON_PROCESS
from cevns.interactions.parameters import PARAM_NAMES, PARAMETERS, batch_size, validate_params, value
from cevns.interactions.process import ElectronContext, NuclearContext, NuclearState, Process
from cevns.sources.species import species as lookup_species
from cevns.targets.isotopes import isotope as lookup_isotope

__all__ = ["SM_PROCESS", "PROCESSES", "RADIUS_PARAMS", "KERNELS", "NUCLEAR_KERNELS", "ELECTRON_KERNEL_NAMES",
           "required_kernels", "nuclear_weights", "electron_weights", "flux_terms", "rate_terms",
           "electron_rate_terms", "process_of", "active_processes"]

#: neutron-radius parameters by element symbol (fm); rn_CsI is one common value for Cs and I
RADIUS_PARAMS = {"Cs": "rn_Cs", "I": "rn_I", "Ar": "rn_Ar"}


def _sm_neutron(st_ctx: NuclearContext, phys: dict, P: int) -> np.ndarray:
    """N F_n on the nodes, (1, nodes) at the default radius or (P, nodes) with ``rn_<El>`` (or ``rn_CsI``) given."""
    name = RADIUS_PARAMS.get(st_ctx.iso.symbol)
    if name not in phys and st_ctx.iso.symbol in ("Cs", "I") and "rn_CsI" in phys:
        name = "rn_CsI"
    if name is None or name not in phys:
        return st_ctx.NFn[None, :]
    rn = value(phys, name, P)
    uniq, inv = np.unique(rn, return_inverse=True)
    return np.stack([st_ctx.neutron_ff(r) for r in uniq])[inv]


def _sm_amplitude(ctx: NuclearContext, phys: dict, P: int):
    """(Q_SM (P, nodes), N F_n): Z g_V^p(s²) F_p + N g_V^n F_n(R_n), g_V^p shifted by the scheme's slope
    (:func:`cevns.interactions.cevns.sin2_slope`; arXiv:1708.04255 Eq. (1) at tree level)."""
    NFn = _sm_neutron(ctx, phys, P)
    if "sin2_theta_w" in phys:
        gp = ctx.gp0 + ctx.slope * (value(phys, "sin2_theta_w", P) - C.SIN2_THETA_W_0)
        q = gp[:, None] * ctx.ZFp[None, :] + ctx.gn * NFn
    else:
        q = ctx.gp0 * ctx.ZFp[None, :] + ctx.gn * NFn
    return np.broadcast_to(q, (P, ctx.T_MeV.size)), NFn


#: the Standard Model: weak charge (sin²θ_W, neutron radii) on nuclei, g_L/g_R on electrons
SM_PROCESS = Process("standard_model", ("sin2_theta_w", *RADIUS_PARAMS.values(), "rn_CsI"),
                     "Standard-Model CEvNS (weak charge with form factors) and ν–e scattering",
                     kernels={"sm": kinematic_kernel},
                     electron_kernels={"e_L": kernel_e_L, "e_R": kernel_e_R, "e_LR": kernel_e_LR})

#: every process, the Standard Model first; each parameter name belongs to exactly one of them
PROCESSES: tuple[Process, ...] = (SM_PROCESS, NSI_PROCESS, CHARGE_RADIUS_PROCESS, VECTOR_MEDIATOR_PROCESS,
                                  MAGNETIC_PROCESS, SCALAR_MEDIATOR_PROCESS, STERILE_PROCESS, DM_SI_PROCESS,
                                  DARK_PHOTON_PROCESS)

#: kinematic kernels by name, (T, E, M) → cm²/MeV (electron kernels ignore M)
KERNELS = {k: f for p in PROCESSES for k, f in {**p.kernels, **p.electron_kernels}.items()}
NUCLEAR_KERNELS = tuple(k for p in PROCESSES for k in p.kernels)
ELECTRON_KERNEL_NAMES = tuple(k for p in PROCESSES for k in p.electron_kernels)


def process_of(name: str) -> Process:
    """The process that owns parameter ``name``."""
    for p in PROCESSES:
        if name in p.parameters:
            return p
    raise UnknownNameError("physics parameter", name, PARAM_NAMES)


def active_processes(names) -> list[Process]:
    """The processes (SM always first) that parameters ``names`` switch on."""
    return list(_active_processes(frozenset(names)))


@lru_cache(maxsize=512)
def _active_processes(names: frozenset) -> tuple[Process, ...]:
    for n in names:
        process_of(n)
    return (SM_PROCESS,) + tuple(p for p in PROCESSES[1:] if p.active(set(names)))


#: kernels of the processes for other projectile kinds (dark matter): folded on demand, outside required_kernels
_OTHER_KIND_KERNELS = tuple(k for p in PROCESSES if p.species_kind != "neutrino" for k in p.kernels)


def _other_kind_weights(phys: dict, ctx: NuclearContext, P: int) -> dict[str, np.ndarray]:
    """{kernel: weights (P, nodes)} of the processes of the projectile's kind (e.g. 'dark_matter'), whose
    ``incoherent`` callables receive the :class:`NuclearContext` itself. A species that names its ``process`` (e.g.
    accelerator dark matter: 'dark_photon') gets that process only. Their kernels are folded on demand by the
    callers (:class:`cevns.model.signal.PredictedSignal` folds each returned kernel lazily), so they are checked
    against the registered kernels, not against the neutrino list of :func:`required_kernels`."""
    terms: dict[str, np.ndarray] = {}
    only = getattr(ctx.species, "process", None)
    for p in PROCESSES:
        if p.species_kind == ctx.species.kind and p.incoherent is not None and only in (None, p.name):
            for k, w in p.incoherent(ctx, phys, P).items():
                w = np.broadcast_to(w, (P, ctx.T_MeV.size))
                terms[k] = terms[k] + w if k in terms else w
    return _check_kernels(terms, KERNELS)


def required_kernels(names, target: str = "nucleus") -> tuple[str, ...]:
    """Kernel names whose weights :func:`nuclear_weights` (target 'nucleus') or :func:`electron_weights` (target
    'electron') return for parameters ``names``: fold exactly these with the flux."""
    return _required_kernels(frozenset(names), target)


@lru_cache(maxsize=512)
def _required_kernels(names: frozenset, target: str) -> tuple[str, ...]:
    procs = _active_processes(names)
    if target == "nucleus":
        return ("sm",) + tuple(k for p in procs[1:] for k in p.incoherent_kernels if k != "sm"
                               and p.species_kind == "neutrino")
    if target == "electron":
        return ("e_L", "e_R", "e_LR") + tuple(k for p in procs[1:] for k in p.electron_incoherent_kernels)
    raise UnknownNameError("scattering target", target, ["nucleus", "electron"])


def nuclear_weights(phys: dict, ctx: NuclearContext, kernels=None) -> dict[str, np.ndarray]:
    """THE entry point for nuclear recoils: {kernel name: weights (P, nodes)} for the projectile and isotope of
    ``ctx`` at already validated parameters ``phys`` (absent names keep their defaults); dσ/dT = Σ_k w_k K_k.
    'sm' = [Q_SM + Σ ΔQ]² + Σ incoherent 'sm' parts (see the module docstring). ``kernels``: the names the caller
    has folded; a term outside them raises UnknownNameError. Non-neutrino species get only the processes of their
    kind (dark matter: :mod:`cevns.interactions.dark_matter`), whatever ``kernels`` says."""
    if not ctx.species.is_neutrino:
        return _other_kind_weights(phys, ctx, batch_size(phys))
    if not phys:  # the Standard Model: the same weights every time (cached on the context)
        cached = getattr(ctx, "_sm_weights", None)
        if cached is None:
            cached = ctx._sm_weights = _nuclear_weights(phys, ctx)
        _check_kernels(cached, kernels)
        return cached
    return _check_kernels(_nuclear_weights(phys, ctx), kernels)


def _check_kernels(terms: dict, kernels) -> dict:
    if kernels is not None:
        missing = [k for k in terms if k not in kernels]
        if missing:
            raise UnknownNameError("kernel prepared for this model", missing[0], kernels)
    return terms


def _nuclear_weights(phys: dict, ctx: NuclearContext) -> dict[str, np.ndarray]:
    P = batch_size(phys)
    if not ctx.species.is_neutrino:
        return _other_kind_weights(phys, ctx, P)
    q, NFn = _sm_amplitude(ctx, phys, P)
    st = NuclearState(ctx, P, NFn)
    procs = [p for p in PROCESSES[1:] if p.active(phys) and p.species_kind == "neutrino"]
    for p in procs:
        if p.amplitude is not None:
            d = p.amplitude(st, phys, P)
            if d is not None:
                q = q + d
    terms = {"sm": q * q}
    for p in procs:
        if p.incoherent is not None:
            for k, w in p.incoherent(st, phys, P).items():
                terms[k] = terms[k] + w if k in terms else np.broadcast_to(w, (P, ctx.T_MeV.size))
    return terms


def electron_weights(phys: dict, ec: ElectronContext, kernels=None) -> dict[str, np.ndarray]:
    """ν–e scattering on one atom: {kernel: weights (P, nodes)} with g_L, g_R from sin²θ_W and the processes' vector
    shifts δ (PDG 2024 §10; 'e_L' Z_eff g_L², 'e_R' Z_eff g_R², 'e_LR' Z_eff g_L g_R), plus incoherent terms.
    Quark NSI do not act on electrons."""
    if not phys:  # the Standard Model: cached on the context
        cached = getattr(ec, "_sm_weights", None)
        if cached is None:
            cached = ec._sm_weights = _electron_weights(phys, ec)
        return _check_kernels(cached, kernels)
    return _check_kernels(_electron_weights(phys, ec), kernels)


def _electron_weights(phys: dict, ec: ElectronContext) -> dict[str, np.ndarray]:
    P = batch_size(phys)
    if not ec.species.is_neutrino:
        return {}
    procs = [p for p in PROCESSES[1:] if p.active(phys) and p.species_kind == "neutrino"]
    delta = 0.0
    for p in procs:
        if p.electron_shift is not None:
            d = p.electron_shift(ec, phys, P)
            if d is not None:
                delta = delta + d
    s2 = value(phys, "sin2_theta_w", P)[:, None]
    gL, gR = electron_couplings(ec.species.name, s2, delta)
    if P > 1 and np.all(gL == gL[:1]) and np.all(gR == gR[:1]):  # parameters that leave electrons alone: one row
        gL, gR = gL[:1], gR[:1]
    z = ec.zeff[None, :]
    shape = (P, ec.T_MeV.size)
    terms = {"e_L": np.broadcast_to(z * gL * gL, shape), "e_R": np.broadcast_to(z * gR * gR, shape),
             "e_LR": np.broadcast_to(z * gL * gR, shape)}
    for p in procs:
        if p.electron_incoherent is not None:
            terms.update(p.electron_incoherent(ec, phys, P))
    return terms


def flux_terms(phys: dict, species) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(A (P,), Δm² (P,) [eV²])] of the processes acting on the flux of ``species``: the rate becomes
    R_SM − A · R_osc(Δm²) with R_osc the same kernels folded with ⟨sin²(1.267 Δm² L/E)⟩ (arXiv:2203.07323 Sec. 2)."""
    procs = [p for p in PROCESSES if p.flux is not None and p.active(phys)]
    if not procs:  # nothing acts on the flux: no species lookup (sources may name species '8B', 'chi', ...)
        return []
    sp = lookup_species(species)
    P = batch_size(phys)
    return [p.flux(phys, sp, P) for p in procs]


# ---- convenience entry points (build the context on the fly; the forward models keep theirs) ------------------
def _check_nodes(T_MeV) -> np.ndarray:
    T = np.asarray(T_MeV, float)
    if T.ndim != 1 or not (np.all(np.isfinite(T)) and np.all(T > 0)):
        raise PhysicsDomainError("T_MeV must be a 1-D array of finite recoil energies > 0 [MeV]")
    return T


def rate_terms(phys: dict, iso, flavour: str, T_MeV, form_factor_model: str = "helm", scheme: str = DEFAULT_SCHEME,
               kernels=None, oscillation: str = "ignore") -> dict[str, np.ndarray]:
    """{kernel: weights (P, nodes)} for ``flavour`` on isotope ``iso`` at recoils T [MeV] (:func:`nuclear_weights`
    with a fresh context). ``oscillation='raise'`` refuses non-zero sterile mixing (it acts on the flux, see
    :func:`flux_terms`)."""
    phys = validate_params(phys)
    if oscillation not in ("raise", "ignore"):
        raise UnknownNameError("oscillation handling", oscillation, ["raise", "ignore"])
    if oscillation == "raise" and any(np.any(np.asarray(phys.get(n, 0.0)) != 0) for n in ("Ue4_sq", "Umu4_sq")):
        raise ConfigError("sterile mixing (Ue4_sq/Umu4_sq) acts on the flux, not on recoil weights: use flux_terms()")
    ctx = NuclearContext(lookup_isotope(iso), lookup_species(flavour), _check_nodes(T_MeV), form_factor_model, scheme)
    return nuclear_weights(phys, ctx, kernels)


def electron_rate_terms(phys: dict, element: str, flavour: str, T_MeV, kernels=None) -> dict[str, np.ndarray]:
    """ν–e weights for ``flavour`` on one atom of ``element`` at electron recoils T [MeV] (:func:`electron_weights`)."""
    phys = validate_params(phys)
    return electron_weights(phys, ElectronContext(element, lookup_species(flavour), _check_nodes(T_MeV)), kernels)


def _check_registry() -> None:
    owners: dict[str, str] = {}
    for p in PROCESSES:
        for n in p.parameters:
            if n in owners:
                raise ConfigError(f"parameter {n} is declared by processes {owners[n]} and {p.name}")
            if n not in PARAMETERS:
                raise ConfigError(f"process {p.name} declares unknown parameter {n}")
            owners[n] = p.name
    missing = set(PARAMETERS) - set(owners)
    if missing:
        raise ConfigError(f"parameters without a process: {sorted(missing)}")


_check_registry()
