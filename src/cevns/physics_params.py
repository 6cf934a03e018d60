"""Physics parameters of the forward model: the registry of names, validation, and the one entry point that turns a
(batch of) parameter point(s) into per-node weights of flux-folded kinematic kernels.

Names (stable across versions; issue 4): ``eps_{ee,mumu,tautau,emu,etau,mutau}_{u,d}V``, ``mu_nu_e``, ``mu_nu_mu``
(10⁻¹⁰ μ_B), ``sin2_theta_w``, ``rn_Cs``, ``rn_I``, ``rn_Ar`` (fm), ``g_zprime``, ``m_zprime_MeV``, ``g_scalar``,
``m_scalar_MeV``, ``dm2_41_eV2``, ``Ue4_sq``, ``Umu4_sq``; added here: ``g_zprime_BL`` (B−L vector coupling, sharing
``m_zprime_MeV``) and the charge radii ``chr_nu_e``, ``chr_nu_mu`` (10⁻³² cm², on top of the coupling scheme's).

The rate of any model is Σ_k w_k(θ; T) ⊗ K_k(T) (see :mod:`cevns.interactions.terms`):

* :func:`cevns_rate_terms` (called by :func:`cevns.interactions.terms.rate_terms` for every non-SM parameter)
  gives {kernel name: weights (P, nodes)} for a nucleus: ``"sm"`` (effective Q_W², with NSI, Z′, charge radius,
  sin²θ_W and neutron radius), ``"magnetic"`` (μ² Z² F_p²), ``"scalar"`` (g⁴ Q_S² F²/(2 G_F²(2MT + m²)²));
* :func:`electron_rate_terms` the same for ν–e scattering on the electrons of one atom (step binding);
* :data:`KERNELS` maps each kernel name to its kinematic function (T, E, M) → cm²/MeV for the flux fold, and
  :func:`required_kernels` says which kernels a set of parameter names needs (the key set of the returned dicts
  depends only on the names present, never on their values, so a batch is uniform).

Oscillation parameters act on the flux, not on the recoil weights: see :func:`oscillation_amplitudes` and
:mod:`cevns.interactions.oscillation` (R = R_SM − A(U) R_osc(Δm²)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cevns import constants as C
from cevns.errors import ConfigError, PhysicsDomainError, UnknownNameError
from cevns.interactions.cevns import kinematic_kernel, nucleon_couplings, nucleon_form_factors
from cevns.interactions.electromagnetic import charge_radius_shift, magnetic_kernel
from cevns.interactions.electron import ELECTRON_KERNELS, electron_couplings, electrons_available
from cevns.interactions.mediators import (SCALAR_PER_NUCLEON, SCALAR_PER_PROTON, scalar_kernel, scalar_weight,
                                         vector_epsilon)
from cevns.interactions.nsi import flavour_family, pairs_for_family
from cevns.interactions.oscillation import amplitude as _osc_amplitude
from cevns.targets.isotopes import Isotope, isotope as lookup_isotope

__all__ = ["PhysicsParameter", "PARAMETERS", "PARAM_NAMES", "describe_params", "physics_defaults",
           "validate_params", "KERNELS", "NUCLEAR_KERNELS", "ELECTRON_KERNEL_NAMES", "required_kernels",
           "cevns_rate_terms", "electron_rate_terms", "oscillation_amplitudes",
           "OSCILLATION_PARAMS", "MAGNETIC_PARAMS", "CHARGE_RADIUS_PARAMS"]


@dataclass(frozen=True)
class PhysicsParameter:
    """One physics parameter: SM/default value (None: the engine's per-isotope default), unit, allowed closed range."""

    name: str
    default: float | None
    unit: str
    limits: tuple[float, float]
    doc: str
    group: str


def _table() -> dict[str, PhysicsParameter]:
    P = PhysicsParameter
    out = {}
    fam = {"e": "ν_e", "mu": "ν_μ", "tau": "ν_τ"}
    for pair, (a, b) in {"ee": ("e", "e"), "mumu": ("mu", "mu"), "tautau": ("tau", "tau"), "emu": ("e", "mu"),
                         "etau": ("e", "tau"), "mutau": ("mu", "tau")}.items():
        for q in ("u", "d"):
            kind = "flavour-diagonal" if a == b else "flavour-changing"
            out[f"eps_{pair}_{q}V"] = P(f"eps_{pair}_{q}V", 0.0, "1", (-10.0, 10.0),
                                        f"vector NSI ε_{{{fam[a]}{fam[b]}}}^{{{q}V}} with {q} quarks ({kind}, units of G_F)", "nsi")
    out["mu_nu_e"] = P("mu_nu_e", 0.0, "1e-10 mu_B", (0.0, 1e4), "ν_e (and ν̄_e) magnetic moment; enters as μ²", "em")
    out["mu_nu_mu"] = P("mu_nu_mu", 0.0, "1e-10 mu_B", (0.0, 1e4), "ν_μ (and ν̄_μ) magnetic moment; enters as μ²", "em")
    out["chr_nu_e"] = P("chr_nu_e", 0.0, "1e-32 cm^2", (-100.0, 100.0),
                        "ν_e charge radius ⟨r²⟩ added to the coupling scheme's value (shifts g_V^p by −0.0238 per unit)", "em")
    out["chr_nu_mu"] = P("chr_nu_mu", 0.0, "1e-32 cm^2", (-100.0, 100.0),
                         "ν_μ charge radius ⟨r²⟩ added to the coupling scheme's value", "em")
    out["sin2_theta_w"] = P("sin2_theta_w", C.SIN2_THETA_W_0, "1", (0.0, 1.0),
                            "weak mixing angle at low energy (MS-bar), shifts g_V^p by its tree-level slope −2", "sm")
    for el, z in (("Cs", "133Cs"), ("I", "127I"), ("Ar", "Ar isotopes"), ("CsI", "133Cs and 127I (one common value)")):
        out[f"rn_{el}"] = P(f"rn_{el}", None, "fm", (2.0, 10.0),
                            f"neutron rms radius of {z} (default: the Lewin-Smith Helm radius of each isotope)", "nuclear")
    out["g_zprime"] = P("g_zprime", 0.0, "1", (0.0, 1.0), "universal light vector Z' coupling to ν and quarks (and e)", "mediator")
    out["g_zprime_BL"] = P("g_zprime_BL", 0.0, "1", (0.0, 1.0), "B-L light vector coupling (charges ν, e: −1; q: 1/3)", "mediator")
    out["m_zprime_MeV"] = P("m_zprime_MeV", 1000.0, "MeV", (1e-3, 1e6), "Z' mass (used by g_zprime and g_zprime_BL)", "mediator")
    out["g_scalar"] = P("g_scalar", 0.0, "1", (0.0, 1.0), "universal light scalar coupling to ν, quarks and e", "mediator")
    out["m_scalar_MeV"] = P("m_scalar_MeV", 1000.0, "MeV", (1e-3, 1e6), "light scalar mass", "mediator")
    out["dm2_41_eV2"] = P("dm2_41_eV2", 0.0, "eV^2", (0.0, 1e4), "3+1 sterile mass splitting Δm²₄₁", "oscillation")
    out["Ue4_sq"] = P("Ue4_sq", 0.0, "1", (0.0, 1.0), "|U_e4|² (ν_e–sterile mixing)", "oscillation")
    out["Umu4_sq"] = P("Umu4_sq", 0.0, "1", (0.0, 1.0), "|U_μ4|² (ν_μ–sterile mixing)", "oscillation")
    return out


#: the registry: name → :class:`PhysicsParameter`
PARAMETERS: dict[str, PhysicsParameter] = _table()
PARAM_NAMES = tuple(PARAMETERS)
MAGNETIC_PARAMS = {"e": "mu_nu_e", "mu": "mu_nu_mu"}
CHARGE_RADIUS_PARAMS = {"e": "chr_nu_e", "mu": "chr_nu_mu"}
RADIUS_PARAMS = {"Cs": "rn_Cs", "I": "rn_I", "Ar": "rn_Ar"}
OSCILLATION_PARAMS = ("dm2_41_eV2", "Ue4_sq", "Umu4_sq")
_SCALAR_PARAMS = ("g_scalar", "m_scalar_MeV")
_SM_PARAMS = ("sin2_theta_w", *RADIUS_PARAMS.values(), "rn_CsI")


def describe_params() -> str:
    """A table of every parameter name with default, unit, allowed range and description (``cevns scan --list-params``)."""
    rows = [("name", "default", "unit", "range", "description")]
    for p in PARAMETERS.values():
        d = "isotope" if p.default is None else f"{p.default:g}"
        rows.append((p.name, d, p.unit, f"[{p.limits[0]:g}, {p.limits[1]:g}]", p.doc))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:<{w[2]}}  {r[3]:<{w[3]}}  {r[4]}" for r in rows)


def physics_defaults() -> dict[str, float]:
    """SM/default values of every parameter that has one (the rn_* defaults are per isotope and left out)."""
    return {n: p.default for n, p in PARAMETERS.items() if p.default is not None}


def validate_params(params: dict) -> dict[str, np.ndarray]:
    """Check names and values; return {name: float array (0-d or 1-d)}. Raises :class:`UnknownNameError` for an
    unknown name, :class:`PhysicsDomainError` for a non-finite or out-of-range value (the message names the allowed
    range) or for |U_e4|² + |U_μ4|² > 1, :class:`ConfigError` for a non-numeric value or inconsistent batch sizes."""
    out = {}
    for name, v in params.items():
        if name not in PARAMETERS:
            raise UnknownNameError("physics parameter", name, PARAM_NAMES)
        try:
            a = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            raise ConfigError(f"physics parameter {name}: value {v!r} is not a number") from None
        if a.ndim > 1:
            raise ConfigError(f"physics parameter {name}: give a scalar or a 1-D array of parameter points, got shape {a.shape}")
        p = PARAMETERS[name]
        if not np.all(np.isfinite(a)):
            raise PhysicsDomainError(f"{name} must be finite, got {v!r}")
        lo, hi = p.limits
        if np.any(a < lo) or np.any(a > hi):
            bad = a[(a < lo) | (a > hi)].ravel()[0] if a.ndim else float(a)
            raise PhysicsDomainError(f"{name} = {bad:g} {p.unit} is outside its allowed range [{lo:g}, {hi:g}] ({p.doc})")
        out[name] = a
    sizes = {a.size for a in out.values() if a.ndim == 1 and a.size != 1}
    if len(sizes) > 1:
        raise ConfigError(f"parameter arrays have different lengths {sorted(sizes)}; give one length P (or scalars)")
    ue, um = out.get("Ue4_sq", 0.0), out.get("Umu4_sq", 0.0)
    if np.any(np.asarray(ue) + np.asarray(um) > 1.0):
        raise PhysicsDomainError("unitarity: Ue4_sq + Umu4_sq must be <= 1")
    return out


#: kinematic kernels (T, E, M) → cm²/MeV by name: nuclear 'sm', 'magnetic', 'scalar'; ν–e 'e_L', 'e_R', 'e_LR',
#: 'e_magnetic', 'e_scalar' (electron kernels ignore M)
KERNELS = {"sm": kinematic_kernel, "magnetic": magnetic_kernel, "scalar": scalar_kernel, **ELECTRON_KERNELS}
NUCLEAR_KERNELS = ("sm", "magnetic", "scalar")
ELECTRON_KERNEL_NAMES = tuple(ELECTRON_KERNELS)


def required_kernels(names, target: str = "nucleus") -> tuple[str, ...]:
    """Kernel names whose weights :func:`cevns_rate_terms` (target 'nucleus') or :func:`electron_rate_terms`
    (target 'electron') return for parameters ``names``: fold exactly these with the flux."""
    names = set(names)
    for n in names:
        if n not in PARAMETERS:
            raise UnknownNameError("physics parameter", n, PARAM_NAMES)
    mag = bool(names & set(MAGNETIC_PARAMS.values()))
    sca = bool(names & set(_SCALAR_PARAMS))
    if target == "nucleus":
        return ("sm",) + (("magnetic",) if mag else ()) + (("scalar",) if sca else ())
    if target == "electron":
        return ("e_L", "e_R", "e_LR") + (("e_magnetic",) if mag else ()) + (("e_scalar",) if sca else ())
    raise UnknownNameError("scattering target", target, ["nucleus", "electron"])


def _batch(phys: dict) -> int:
    return max([np.size(v) for v in phys.values()] + [1])


def _val(phys: dict, name: str, P: int) -> np.ndarray:
    v = phys.get(name)
    if v is None:
        v = PARAMETERS[name].default
    return np.broadcast_to(np.asarray(v, float).ravel(), (P,))


def _check_oscillation(phys: dict, oscillation: str) -> None:
    if oscillation not in ("raise", "ignore"):
        raise UnknownNameError("oscillation handling", oscillation, ["raise", "ignore"])
    if oscillation == "raise" and any(np.any(np.asarray(phys.get(n, 0.0)) != 0) for n in ("Ue4_sq", "Umu4_sq")):
        raise ConfigError("sterile mixing (Ue4_sq/Umu4_sq) acts on the flux, not on recoil weights: fold the kernels "
                          "with cevns.interactions.oscillation.sin2_kernel and use oscillation_amplitudes(), or pass "
                          "oscillation='ignore' when the caller handles it")


def _nucleon_parts(phys: dict, iso: Isotope, flavour: str, T, form_factor_model: str, scheme: str, P: int):
    """(SM charge (P,n), Z F_p (n,), N F_n (P,n)) with sin²θ_W and the neutron radius applied."""
    from cevns.interactions.terms import sm_charge_parts  # the SM part shared with the lead's term interface

    sm_phys = {k: phys[k] for k in _SM_PARAMS if k in phys}
    prot, neut = sm_charge_parts(sm_phys, iso, flavour, T, form_factor_model, scheme)
    gn = nucleon_couplings(flavour, None, scheme)[1]
    Fp, _ = nucleon_form_factors(T, iso, form_factor_model)
    # N F_n: one row when the neutron radius is not varied (a broadcast view), else (P, nodes)
    nfn = (neut[:1] if neut.ndim == 2 and neut.strides[0] == 0 else neut) / gn
    return np.broadcast_to(prot + neut, (P, len(T))), iso.Z * Fp, nfn


def cevns_rate_terms(phys: dict, iso: Isotope | str, flavour: str, T_MeV, form_factor_model: str = "helm",
                     scheme: str = "pdg", oscillation: str = "raise", kernels=None) -> dict[str, np.ndarray]:
    """THE entry point for CEvNS: {kernel name: weights on the recoil nodes, shape (P, nodes)} for incoming
    ``flavour`` on ``iso`` at recoils T [MeV]; dσ/dT = Σ_k weights_k(T) · KERNELS[k](T, E, M).

    ``phys``: {parameter name: scalar or (P,) array}; absent parameters take their SM/default value. Terms:
    'sm' = Q²_eff = [q_SM + c_u ε_αα^u + c_d ε_αα^d + ΔQ_Z′(q²) − x(⟨r²⟩) Z F_p]² + Σ_{β≠α}(c_u ε_αβ^u + c_d ε_αβ^d)²
    (arXiv:hep-ph/0508299 Sec. 2; arXiv:1708.04255 Sec. 2; arXiv:1810.05606 Sec. 2), 'magnetic' = (μ_α/10⁻¹⁰μ_B)² Z² F_p²
    when a magnetic-moment name is present (arXiv:1505.03202 Sec. II), 'scalar' = g⁴ Q_S² /(2G_F²(2MT + m²)²) with
    Q_S = 14(Z F_p + N F_n) + 1.1 Z F_p when a scalar name is present (arXiv:1604.01025 Sec. 2, Table IV).
    Oscillation parameters: see :func:`oscillation_amplitudes` (``oscillation='raise'`` refuses non-zero mixing here).
    ``kernels`` (optional): the kernel names the caller has folded; a term outside them raises UnknownNameError.
    """
    if kernels is not None:
        missing = [k for k in required_kernels(phys) if k not in kernels]
        if missing:
            raise UnknownNameError("kernel prepared for this model", missing[0], kernels)
    phys = validate_params(phys)
    _check_oscillation(phys, oscillation)
    iso = lookup_isotope(iso)
    T = np.asarray(T_MeV, float)
    if T.ndim != 1 or not (np.all(np.isfinite(T)) and np.all(T > 0)):
        raise PhysicsDomainError("T_MeV must be a 1-D array of finite recoil energies > 0 [MeV]")
    P = _batch(phys)
    fam = flavour_family(flavour)
    q, ZFp, NFn = _nucleon_parts(phys, iso, flavour, T, form_factor_model, scheme, P)
    cu = 2.0 * ZFp[None, :] + NFn  # per unit ε^u  (p = uud, n = udd)
    cd = ZFp[None, :] + 2.0 * NFn  # per unit ε^d
    diag, off = pairs_for_family(fam)
    q = q + cu * _val(phys, f"eps_{diag}_uV", P)[:, None] + cd * _val(phys, f"eps_{diag}_dV", P)[:, None]
    if fam in CHARGE_RADIUS_PARAMS and CHARGE_RADIUS_PARAMS[fam] in phys:
        q = q - charge_radius_shift(_val(phys, CHARGE_RADIUS_PARAMS[fam], P))[:, None] * ZFp[None, :]
    q2 = 2.0 * iso.mass_MeV * T  # q² = 2MT [MeV²]
    for gname, model in (("g_zprime", "universal"), ("g_zprime_BL", "B-L")):
        if gname in phys:
            eps = vector_epsilon(_val(phys, gname, P), _val(phys, "m_zprime_MeV", P), q2, model)
            q = q + eps["u"] * cu + eps["d"] * cd
    sm = q * q
    for pair in off:
        eu, ed = f"eps_{pair}_uV", f"eps_{pair}_dV"
        if eu in phys or ed in phys:
            a = cu * _val(phys, eu, P)[:, None] + cd * _val(phys, ed, P)[:, None]
            sm = sm + a * a
    terms = {"sm": sm}
    if any(n in phys for n in MAGNETIC_PARAMS.values()):
        mu = _val(phys, MAGNETIC_PARAMS[fam], P) if fam in MAGNETIC_PARAMS else np.zeros(P)
        terms["magnetic"] = (mu * mu)[:, None] * (ZFp * ZFp)[None, :]
    if any(n in phys for n in _SCALAR_PARAMS):
        qs = SCALAR_PER_NUCLEON * (ZFp[None, :] + NFn) + SCALAR_PER_PROTON * ZFp[None, :]  # Q_S(q), (P, nodes)
        terms["scalar"] = scalar_weight(_val(phys, "g_scalar", P), _val(phys, "m_scalar_MeV", P), T, iso.mass_MeV, qs)
    return terms




def electron_rate_terms(phys: dict, element: str, flavour: str, T_MeV, oscillation: str = "raise") -> dict[str, np.ndarray]:
    """ν–e scattering on one atom of ``element``: {kernel name: weights (P, nodes)} at electron recoils T [MeV], with
    dσ/dT = Σ_k weights_k · KERNELS[k](T, E): 'e_L' Z_eff g_L², 'e_R' Z_eff g_R², 'e_LR' Z_eff g_L g_R (PDG 2024 §10;
    sin²θ_W, charge radius and the Z′ shift of g_V^e included), 'e_magnetic' Z_eff μ² (Vogel & Engel), 'e_scalar'
    Z_eff g⁴/(2G_F²(2 m_e T + m²)²) (arXiv:1604.01025). Z_eff(T) is the step-approximation electron count of
    :func:`cevns.interactions.electron.electrons_available`. Quark NSI do not act on electrons."""
    phys = validate_params(phys)
    _check_oscillation(phys, oscillation)
    T = np.asarray(T_MeV, float)
    if T.ndim != 1 or not (np.all(np.isfinite(T)) and np.all(T > 0)):
        raise PhysicsDomainError("T_MeV must be a 1-D array of finite electron recoil energies > 0 [MeV]")
    P = _batch(phys)
    fam = flavour_family(flavour)
    zeff = electrons_available(element, T)[None, :]
    delta = np.zeros((P, T.size))
    if fam in CHARGE_RADIUS_PARAMS and CHARGE_RADIUS_PARAMS[fam] in phys:
        delta = delta + charge_radius_shift(_val(phys, CHARGE_RADIUS_PARAMS[fam], P))[:, None]
    q2 = 2.0 * C.M_ELECTRON * T
    for gname, model in (("g_zprime", "universal"), ("g_zprime_BL", "B-L")):
        if gname in phys:
            delta = delta + vector_epsilon(_val(phys, gname, P), _val(phys, "m_zprime_MeV", P), q2, model)["e"]
    s2 = _val(phys, "sin2_theta_w", P)[:, None]
    gL, gR = electron_couplings(flavour, s2, delta)
    terms = {"e_L": zeff * gL * gL, "e_R": zeff * gR * gR, "e_LR": zeff * gL * gR}
    if any(n in phys for n in MAGNETIC_PARAMS.values()):
        mu = _val(phys, MAGNETIC_PARAMS[fam], P) if fam in MAGNETIC_PARAMS else np.zeros(P)
        terms["e_magnetic"] = (mu * mu)[:, None] * zeff
    if any(n in phys for n in _SCALAR_PARAMS):
        terms["e_scalar"] = zeff * scalar_weight(_val(phys, "g_scalar", P), _val(phys, "m_scalar_MeV", P), T,
                                                 C.M_ELECTRON, 1.0)
    return terms


def oscillation_amplitudes(phys: dict, flavour: str, mode: str = "nc") -> tuple[np.ndarray, np.ndarray]:
    """(A (P,), Δm² (P,) [eV²]) for ``flavour``: the rate is R_SM − A · R_osc(Δm²) where R_osc folds the same kernels
    with ⟨sin²(1.267 Δm² L/E)⟩ (:func:`cevns.interactions.oscillation.sin2_kernel`); arXiv:2203.07323 Sec. 2.
    mode 'nc' (active → sterile; CEvNS) or 'survival' (P_αα)."""
    phys = validate_params(phys)
    P = _batch(phys)
    A = _osc_amplitude(flavour, _val(phys, "Ue4_sq", P), _val(phys, "Umu4_sq", P), mode)
    return np.broadcast_to(A, (P,)), _val(phys, "dm2_41_eV2", P)
