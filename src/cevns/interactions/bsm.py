"""New physics in CEvNS as per-node weights of flux-folded kernels, batched over parameter points.

Everything here returns, for an isotope, an incoming flavour and recoil nodes T [MeV], a dict kernel name → weight
array (P, nodes) (see :mod:`cevns.interactions.terms`):

* ``"sm"`` — the vector part, weight = effective weak charge squared, with
  - vector NSI (Barranco, Miranda & Rashba, arXiv:hep-ph/0508299 Eq. (5)): for incoming ν_α
    Q² = [Z(g_p + 2ε^u_αα + ε^d_αα)F_p + N(g_n + ε^u_αα + 2ε^d_αα)F_n]² + Σ_{β≠α} [Z(2ε^u_αβ + ε^d_αβ)F_p + N(ε^u_αβ + 2ε^d_αβ)F_n]²
    (flavour-changing terms add in quadrature; in our normalisation NSI shift g_V^q → g_V^q + ε^q);
  - a light vector Z′ with universal coupling g to neutrinos and quarks (arXiv:1708.04255 Eq. (3); Cerdeño et al.
    arXiv:1604.01025 Eq. (2.7)): g_V^q → g_V^q + g²/(√2 G_F (q² + m²)), q² = 2MT — a contact NSI ε^u = ε^d = g²/(√2 G_F m²)
    for m² ≫ q² — interfering with the SM amplitude (destructively for g² > 0, since Q_W^SM ≈ −N/2);
  - sin²θ_W and neutron radii as in :func:`cevns.interactions.terms.sm_charge_parts`.
* ``"magnetic"`` — weight = Z² F_p² (μ_ν/μ_B)², kernel π α²/m_e² (1/T − 1/E + T/4E²) (Vogel & Engel, PRD 39, 3378
  (1989) Eq. (2); arXiv:1505.03202 Eq. (9)); it adds incoherently (helicity flip).
* ``"scalar"`` — weight = Q_φ² F²/(q² + m_φ²)² with Q_φ = g²(15.1 Z + 14 N) for a universal scalar coupling g
  (arXiv:1708.04255 Eq. (5)), kernel M² T/(4π E²); adds incoherently (no interference for massless ν).
"""
from __future__ import annotations

import math

import numpy as np

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.interactions.cevns import nucleon_couplings, nucleon_form_factors
from cevns.interactions.terms import RADIUS_PARAMS, sm_charge_parts

__all__ = ["PARAMETERS", "KERNELS", "validate_params", "describe_params", "bsm_rate_terms", "magnetic_kernel",
           "scalar_kernel", "zprime_delta_g", "kernels_for", "nsi_weak_charge_sq", "FLAVOUR_INDEX"]

_FL = ("ee", "mumu", "tautau", "emu", "etau", "mutau")
#: name -> (default (SM) value, unit, (min, max), description)
PARAMETERS: dict[str, tuple[float, str, tuple[float, float], str]] = {}
for _f in _FL:
    for _q in ("u", "d"):
        PARAMETERS[f"eps_{_f}_{_q}V"] = (0.0, "", (-5.0, 5.0), f"vector NSI ε^{{{_q}V}}_{{{_f}}} (units of G_F)")
PARAMETERS.update({
    "mu_nu_e": (0.0, "1e-10 mu_B", (0.0, 1e4), "ν_e magnetic moment"),
    "mu_nu_mu": (0.0, "1e-10 mu_B", (0.0, 1e4), "ν_μ magnetic moment (ν_μ and ν̄_μ)"),
    "sin2_theta_w": (C.SIN2_THETA_W_0, "", (0.0, 1.0), "weak mixing angle at low Q² (MS-bar)"),
    "rn_Cs": (float("nan"), "fm", (2.0, 10.0), "neutron rms radius of Cs-133 (default: Helm radius of the nucleus)"),
    "rn_I": (float("nan"), "fm", (2.0, 10.0), "neutron rms radius of I-127"),
    "rn_Ar": (float("nan"), "fm", (1.5, 8.0), "neutron rms radius of Ar-40"),
    "rn_CsI": (float("nan"), "fm", (2.0, 10.0), "one common neutron rms radius for Cs-133 and I-127"),
    "g_zprime": (0.0, "", (0.0, 1.0), "universal vector mediator coupling (to ν and quarks)"),
    "m_zprime_MeV": (1e6, "MeV", (1e-3, 1e7), "vector mediator mass"),
    "g_scalar": (0.0, "", (0.0, 1.0), "universal scalar mediator coupling (to ν and quarks)"),
    "m_scalar_MeV": (1e6, "MeV", (1e-3, 1e7), "scalar mediator mass"),
    "dm2_41_eV2": (0.0, "eV^2", (0.0, 1e4), "sterile mass splitting Δm²₄₁"),
    "Ue4_sq": (0.0, "", (0.0, 0.5), "|U_e4|²"),
    "Umu4_sq": (0.0, "", (0.0, 0.5), "|U_μ4|²"),
})

FLAVOUR_INDEX = {"nue": "e", "nuebar": "e", "numu": "mu", "numubar": "mu", "nutau": "tau", "nutaubar": "tau"}


def kernels_for(physics_names) -> tuple[str, ...]:
    """Kernel names a model needs for these physics parameters (always 'sm')."""
    names = set(physics_names)
    out = ["sm"]
    if names & {"mu_nu_e", "mu_nu_mu"}:
        out.append("magnetic")
    if "g_scalar" in names:
        out.append("scalar")
    return tuple(out)


def validate_params(params: dict) -> dict:
    """Check names and ranges; raises UnknownNameError / PhysicsDomainError naming the parameter and what is allowed."""
    for k, v in params.items():
        if k not in PARAMETERS:
            raise UnknownNameError("physics parameter", k, PARAMETERS)
        lo, hi = PARAMETERS[k][2]
        a = np.asarray(v, dtype=float)
        if not np.all(np.isfinite(a)) or np.any(a < lo) or np.any(a > hi):
            raise PhysicsDomainError(f"physics parameter {k} = {v!r} outside its allowed range [{lo}, {hi}] {PARAMETERS[k][1]}")
    return params


def describe_params() -> str:
    lines = [f"{'name':<16} {'SM/default':>11} {'unit':<11} {'range':<22} description"]
    for k, (v, unit, (lo, hi), doc) in PARAMETERS.items():
        dv = "Helm" if isinstance(v, float) and math.isnan(v) else f"{v:g}"
        lines.append(f"{k:<16} {dv:>11} {unit:<11} {f'[{lo:g}, {hi:g}]':<22} {doc}")
    return "\n".join(lines)


def magnetic_kernel(T_MeV, E_MeV, M_MeV):
    """π α²/m_e² (1/T − 1/E + T/4E²) (ħc)² [cm²/MeV] per unit (μ_ν/μ_B)² Z² F², zero above T_max
    (Vogel & Engel PRD 39, 3378 Eq. (2))."""
    T = np.asarray(T_MeV, float)
    E = np.asarray(E_MeV, float)
    tmax = 2 * E * E / (M_MeV + 2 * E)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = 1.0 / T - 1.0 / E + T / (4 * E * E)
    k = np.where((T > 0) & (T <= tmax) & (k > 0), k, 0.0)
    return math.pi * C.ALPHA_EM**2 / C.M_ELECTRON**2 * k * C.HBARC2_MeV2_cm2


def scalar_kernel(T_MeV, E_MeV, M_MeV):
    """M² T/(4π E²) (ħc)² [cm²/MeV per MeV⁻⁴ of weight], zero above T_max (arXiv:1708.04255 Eq. (5))."""
    T = np.asarray(T_MeV, float)
    E = np.asarray(E_MeV, float)
    tmax = 2 * E * E / (M_MeV + 2 * E)
    k = np.where((T >= 0) & (T <= tmax), M_MeV**2 * T / (4 * math.pi * E * E), 0.0)
    return k * C.HBARC2_MeV2_cm2


KERNELS = {"magnetic": magnetic_kernel, "scalar": scalar_kernel}


def zprime_delta_g(g, m_MeV, T_MeV, M_MeV):
    """Shift of the quark vector couplings from a universal vector Z′: Δg_V^q = g²/(√2 G_F (2MT + m²))
    (arXiv:1708.04255 Eq. (3) in our normalisation); shape (P, nodes)."""
    g = np.asarray(g, float)[:, None]
    m = np.asarray(m_MeV, float)[:, None]
    q2 = 2.0 * M_MeV * np.asarray(T_MeV, float)[None, :]
    return g * g / (math.sqrt(2.0) * C.G_FERMI_MeV2 * (q2 + m * m))


def _vec(phys, name, P):
    v = phys.get(name)
    return None if v is None else np.broadcast_to(np.asarray(v, float).ravel(), (P,))


def nsi_weak_charge_sq(phys: dict, iso, flavour: str, T_MeV, form_factor_model="helm", scheme="pdg",
                       extra_dg=None) -> np.ndarray:
    """Effective Q² (P, nodes) for incoming ``flavour`` with NSI (diagonal + flavour changing in quadrature),
    sin²θ_W, neutron radius, and an optional extra shift Δg_V^u = Δg_V^d (P, nodes) from a vector mediator."""
    P = max([np.size(v) for v in phys.values()] + [1])
    prot, neut = sm_charge_parts(phys, iso, flavour, T_MeV, form_factor_model, scheme)
    Fp, Fn = nucleon_form_factors(T_MeV, iso, form_factor_model)
    rn_name = RADIUS_PARAMS.get(iso.symbol)
    gp0, gn0 = nucleon_couplings(flavour, None, scheme)
    # neutron form factor per point (radius may vary): recover it from the neutron part
    Fn_pts = neut / (iso.N * gn0) if gn0 != 0 else np.broadcast_to(Fn, neut.shape)
    a = FLAVOUR_INDEX[flavour]
    out = 0.0
    for b in ("e", "mu", "tau"):
        key = a + b if (a + b) in ("ee", "mumu", "tautau", "emu", "etau", "mutau") else b + a
        eu = _vec(phys, f"eps_{key}_uV", P)
        ed = _vec(phys, f"eps_{key}_dV", P)
        eu = np.zeros(P) if eu is None else eu
        ed = np.zeros(P) if ed is None else ed
        if a == b:
            du, dd = eu[:, None], ed[:, None]
            if extra_dg is not None:
                du, dd = du + extra_dg, dd + extra_dg
            q = prot + neut + iso.Z * (2 * du + dd) * Fp[None, :] + iso.N * (du + 2 * dd) * Fn_pts
        else:
            if not (np.any(eu) or np.any(ed)):
                continue
            q = iso.Z * (2 * eu + ed)[:, None] * Fp[None, :] + iso.N * (eu + 2 * ed)[:, None] * Fn_pts
        out = out + q * q
    return out


def bsm_rate_terms(phys: dict, iso, flavour: str, T_MeV, form_factor_model: str = "helm", scheme: str = "pdg",
                   kernels=None) -> dict[str, np.ndarray]:
    """Weights per kernel name on the recoil nodes for the physics parameters ``phys`` (name → (P,) arrays)."""
    validate_params({k: v for k, v in phys.items() if not (k.startswith("rn_") and np.all(np.isnan(np.asarray(v, float))))})
    P = max([np.size(v) for v in phys.values()] + [1])
    T = np.asarray(T_MeV, float)
    extra = None
    g = _vec(phys, "g_zprime", P)
    if g is not None:
        m = _vec(phys, "m_zprime_MeV", P)
        m = np.full(P, PARAMETERS["m_zprime_MeV"][0]) if m is None else m
        extra = zprime_delta_g(g, m, T, iso.mass_MeV)
    out = {"sm": nsi_weak_charge_sq(phys, iso, flavour, T, form_factor_model, scheme, extra)}
    base = FLAVOUR_INDEX[flavour]
    mu = _vec(phys, {"e": "mu_nu_e", "mu": "mu_nu_mu"}.get(base, ""), P)
    if mu is not None:
        Fp, _ = nucleon_form_factors(T, iso, form_factor_model)
        out["magnetic"] = (mu[:, None] * 1e-10) ** 2 * (iso.Z * Fp[None, :]) ** 2
    gs = _vec(phys, "g_scalar", P)
    if gs is not None:
        ms = _vec(phys, "m_scalar_MeV", P)
        ms = np.full(P, PARAMETERS["m_scalar_MeV"][0]) if ms is None else ms
        Fp, _ = nucleon_form_factors(T, iso, form_factor_model)
        qphi = (gs * gs)[:, None] * (15.1 * iso.Z + 14.0 * iso.N) * Fp[None, :]
        out["scalar"] = qphi**2 / (2.0 * iso.mass_MeV * T[None, :] + (ms * ms)[:, None]) ** 2
    if kernels is not None:
        missing = set(out) - set(kernels)
        if missing:
            raise UnknownNameError("kernel prepared for this model", sorted(missing)[0], kernels)
    return out
