"""Physics parameters of the forward model: one registry of names, units, defaults and allowed ranges.

Names (stable across versions): ``eps_{ee,mumu,tautau,emu,etau,mutau}_{u,d}V`` (vector NSI), ``mu_nu_e``,
``mu_nu_mu`` (magnetic moments, 10⁻¹⁰ μ_B), ``chr_nu_e``, ``chr_nu_mu`` (charge radii on top of the SM ones,
10⁻³² cm²), ``sin2_theta_w``, ``rn_Cs``, ``rn_I``, ``rn_Ar``, ``rn_CsI`` (neutron rms radii, fm), ``g_zprime``,
``g_zprime_BL``, ``m_zprime_MeV``, ``g_scalar``, ``m_scalar_MeV`` (light mediators), ``dm2_41_eV2``, ``Ue4_sq``,
``Umu4_sq`` (3+1 sterile mixing), ``dm_sigma_si_1e45_cm2`` (spin-independent DM–nucleon cross section, for
dark-matter projectiles), ``dp_epsilon``, ``dp_alpha_d``, ``dp_m_v_MeV`` (dark photon: kinetic mixing, dark
coupling, mass; :mod:`cevns.interactions.dark_photon`). Which process of :mod:`cevns.interactions.terms` uses
each name is declared by the process; this module only says what a name means and which values are allowed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cevns import constants as C
from cevns.errors import ConfigError, PhysicsDomainError, UnknownNameError

__all__ = ["PhysicsParameter", "PARAMETERS", "PARAM_NAMES", "describe_params", "physics_defaults", "validate_params",
           "batch_size", "value"]


@dataclass(frozen=True)
class PhysicsParameter:
    """One physics parameter: SM/default value (None: the engine's per-isotope default), unit, allowed closed range."""

    name: str
    default: float | None
    unit: str
    limits: tuple[float, float]
    doc: str
    group: str
    step: float = 0.01  # initial step of a fit (iminuit)

    def start_value(self) -> float:
        """The default, or for a per-isotope default (neutron radii) the Helm radius of the lightest nucleus named."""
        if self.default is not None:
            return float(self.default)
        from cevns.targets.form_factors import helm_rms_radius_default_fm

        A = {"rn_Cs": 133, "rn_I": 127, "rn_Ar": 40, "rn_CsI": 130}[self.name]
        return float(helm_rms_radius_default_fm(A))


def _table() -> dict[str, PhysicsParameter]:
    P = PhysicsParameter
    out = {}
    fam = {"e": "ν_e", "mu": "ν_μ", "tau": "ν_τ"}
    for pair, (a, b) in {"ee": ("e", "e"), "mumu": ("mu", "mu"), "tautau": ("tau", "tau"), "emu": ("e", "mu"),
                         "etau": ("e", "tau"), "mutau": ("mu", "tau")}.items():
        for q in ("u", "d"):
            kind = "flavour-diagonal" if a == b else "flavour-changing"
            out[f"eps_{pair}_{q}V"] = P(f"eps_{pair}_{q}V", 0.0, "1", (-10.0, 10.0),
                                        f"vector NSI ε_{{{fam[a]}{fam[b]}}}^{{{q}V}} with {q} quarks ({kind}, units of G_F)", "nsi",
                                        0.02)
    out["mu_nu_e"] = P("mu_nu_e", 0.0, "1e-10 mu_B", (0.0, 1e4), "ν_e (and ν̄_e) magnetic moment; enters as μ²", "em", 1.0)
    out["mu_nu_mu"] = P("mu_nu_mu", 0.0, "1e-10 mu_B", (0.0, 1e4), "ν_μ (and ν̄_μ) magnetic moment; enters as μ²", "em", 1.0)
    out["chr_nu_e"] = P("chr_nu_e", 0.0, "1e-32 cm^2", (-100.0, 100.0),
                        "ν_e charge radius ⟨r²⟩ added to the coupling scheme's value (shifts g_V^p by −0.0238 per unit)", "em", 0.2)
    out["chr_nu_mu"] = P("chr_nu_mu", 0.0, "1e-32 cm^2", (-100.0, 100.0),
                         "ν_μ charge radius ⟨r²⟩ added to the coupling scheme's value", "em", 0.2)
    out["sin2_theta_w"] = P("sin2_theta_w", C.SIN2_THETA_W_0, "1", (0.0, 1.0),
                            "weak mixing angle at low energy (MS-bar); shifts g_V^p by the coupling scheme's slope", "sm")
    for el, z in (("Cs", "133Cs"), ("I", "127I"), ("Ar", "Ar isotopes"), ("CsI", "133Cs and 127I (one common value)")):
        out[f"rn_{el}"] = P(f"rn_{el}", None, "fm", (2.0, 10.0),
                            f"neutron rms radius of {z} (default: the Lewin-Smith Helm radius of each isotope)", "nuclear",
                            0.1)
    out["g_zprime"] = P("g_zprime", 0.0, "1", (0.0, 1.0), "universal light vector Z' coupling to ν and quarks (and e)", "mediator", 1e-5)
    out["g_zprime_BL"] = P("g_zprime_BL", 0.0, "1", (0.0, 1.0), "B-L light vector coupling (charges ν, e: −1; q: 1/3)", "mediator", 1e-5)
    out["m_zprime_MeV"] = P("m_zprime_MeV", 1000.0, "MeV", (1e-3, 1e6), "Z' mass (used by g_zprime and g_zprime_BL)", "mediator", 10.0)
    out["g_scalar"] = P("g_scalar", 0.0, "1", (0.0, 1.0), "universal light scalar coupling to ν, quarks and e", "mediator", 1e-5)
    out["m_scalar_MeV"] = P("m_scalar_MeV", 1000.0, "MeV", (1e-3, 1e6), "light scalar mass", "mediator", 10.0)
    out["dm2_41_eV2"] = P("dm2_41_eV2", 0.0, "eV^2", (0.0, 1e4), "3+1 sterile mass splitting Δm²₄₁", "oscillation", 0.1)
    out["Ue4_sq"] = P("Ue4_sq", 0.0, "1", (0.0, 1.0), "|U_e4|² (ν_e–sterile mixing)", "oscillation")
    out["Umu4_sq"] = P("Umu4_sq", 0.0, "1", (0.0, 1.0), "|U_μ4|² (ν_μ–sterile mixing)", "oscillation")
    out["dm_sigma_si_1e45_cm2"] = P("dm_sigma_si_1e45_cm2", 1.0, "1e-45 cm^2", (0.0, 1e8),
                                    "spin-independent DM–nucleon cross section σ_n (f_p = f_n; acts on dark-matter "
                                    "projectiles only; default: the reference 1e-45 cm²)", "dark_matter", 0.1)
    out["dp_epsilon"] = P("dp_epsilon", 0.0, "1", (0.0, 1.0),
                          "dark-photon kinetic mixing ε (vector portal; acts on dark-matter projectiles of the "
                          "'dark_photon' process, and on accelerator_dm production; 0: no dark photon)", "dark_matter",
                          1e-5)
    out["dp_alpha_d"] = P("dp_alpha_d", 0.5, "1", (1e-12, 4 * 3.141592653589793),
                          "dark coupling α_D = g_D²/4π of χ to the dark photon", "dark_matter", 0.05)
    out["dp_m_v_MeV"] = P("dp_m_v_MeV", 30.0, "MeV", (1e-3, 1e5), "dark-photon mass m_V", "dark_matter", 1.0)
    return out


#: the registry: name → :class:`PhysicsParameter`
PARAMETERS: dict[str, PhysicsParameter] = _table()
PARAM_NAMES = tuple(PARAMETERS)


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


def batch_size(phys: dict) -> int:
    """Number of parameter points P of a dict of scalars and (P,) arrays."""
    return max([np.size(v) for v in phys.values()] + [1])


def value(phys: dict, name: str, P: int) -> np.ndarray:
    """Parameter ``name`` as a (P,) array (its default when absent)."""
    v = phys.get(name)
    if v is None:
        v = PARAMETERS[name].default
        if v is None:
            raise ConfigError(f"physics parameter {name} has no single default value; give it explicitly")
    return np.broadcast_to(np.asarray(v, float).ravel(), (P,))
