"""Light mediators in CEvNS and ν–e scattering: a vector Z′ (universal, or B−L) and a universal scalar.

Vector Z′ with L ⊃ g Z′_μ (Q_ν ν̄_L γ^μ ν_L + Σ_f Q_f f̄ γ^μ f): the exchange adds to the SM amplitude a
momentum-dependent vector NSI (Liao & Marfatia arXiv:1708.04255 Sec. 2; Cerdeño et al. arXiv:1604.01025 Sec. 2;
Coloma et al. arXiv:2202.10829 Sec. 2)

    ε^{fV}(q²) = g² Q_ν Q_f / (√2 G_F (q² + m_Z′²)),   q² = 2 M T,

so that Q_W → Q_W + (2ε^u + ε^d) Z F_p + (ε^u + 2ε^d) N F_n (the NSI charge of :mod:`cevns.interactions.nsi`),
which interferes with the SM amplitude. For m_Z′² ≫ q² this is the contact NSI ε^q = g² Q_ν Q_q/(√2 G_F m_Z′²).
Models: 'universal' (Q_ν = Q_u = Q_d = Q_e = 1: ΔQ = 3 A g²/(√2 G_F (q² + m²)) at F = 1, destructive with the SM
charge ≈ −N/2) and 'B-L' (Q_ν = Q_e = −1, Q_u = Q_d = 1/3: ΔQ = −A g²/(√2 G_F (q² + m²)), constructive). The u and
d couplings are kept separate throughout (the d-quark term is built from Q_d, not Q_u: pyCEvNS's known bug).
For ν–e scattering the same ε^{eV}(q² = 2 m_e T) shifts g_V^e (arXiv:1604.01025 Sec. 2).

Universal scalar φ with L ⊃ g φ (ν̄ ν + Σ_q q̄ q + ē e): no interference with the SM (chirality flip); incoherent

    dσ/dT = g⁴ Q_S² F² M² T / (4π E² (2MT + m_φ²)²),   Q_S = 14 A + 1.1 Z

(Cerdeño et al. arXiv:1604.01025 Sec. 2 and Table IV for Q_S; Dent et al. arXiv:1701.07443 Sec. 3), written here as
:func:`scalar_kernel` (G_F² M/π · M T/(2E²), folded with the flux) times :func:`scalar_weight`
(g⁴ Q_S² F²/(2 G_F² (2MT + m²)²)) so that weight × kernel is the cross section. For electrons Q_S → 1, M → m_e.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.interactions.cevns import t_max
from cevns.interactions.nsi import quark_coefficients
from cevns.interactions.process import Process

__all__ = ["VectorCharges", "VECTOR_MODELS", "vector_epsilon", "contact_nsi", "zprime_charge_shift",
           "scalar_kernel", "electron_scalar_kernel", "scalar_nuclear_charge", "scalar_weight",
           "SCALAR_PER_NUCLEON", "SCALAR_PER_PROTON", "VECTOR_MEDIATOR_PROCESS", "SCALAR_MEDIATOR_PROCESS"]


@dataclass(frozen=True)
class VectorCharges:
    """U(1)′ charges of ν_L, u, d and e (the coupling of species f is g Q_f)."""

    nu: float
    u: float
    d: float
    e: float


VECTOR_MODELS = {
    "universal": VectorCharges(nu=1.0, u=1.0, d=1.0, e=1.0),
    "B-L": VectorCharges(nu=-1.0, u=1.0 / 3.0, d=1.0 / 3.0, e=-1.0),
}

#: universal scalar charge of a nucleus Q_S = 14 A + 1.1 Z (arXiv:1604.01025 Table IV)
SCALAR_PER_NUCLEON = 14.0
SCALAR_PER_PROTON = 1.1


def _charges(model) -> VectorCharges:
    if isinstance(model, VectorCharges):
        return model
    try:
        return VECTOR_MODELS[model]
    except (KeyError, TypeError):
        raise UnknownNameError("vector mediator model", model, VECTOR_MODELS) from None


def _coupling_mass(g, m_MeV, what: str):
    g = np.atleast_1d(np.asarray(g, float))
    m = np.atleast_1d(np.asarray(m_MeV, float))
    if not np.all(np.isfinite(g)):
        raise PhysicsDomainError(f"{what} coupling must be finite, got {g[~np.isfinite(g)][:3]}")
    if not (np.all(np.isfinite(m)) and np.all(m > 0)):
        raise PhysicsDomainError(f"{what} mass must be finite and > 0 [MeV], got min {m.min()!r}")
    return g, m


def vector_epsilon(g, m_MeV, q2_MeV2, model="universal") -> dict[str, np.ndarray]:
    """Momentum-dependent vector NSI of a Z′: {'u', 'd', 'e'} → g² Q_ν Q_f/(√2 G_F (q² + m²)) (arXiv:1708.04255
    Sec. 2). ``g``, ``m_MeV`` shape (P,) or scalars, ``q2_MeV2`` shape (nodes,) → arrays (P, nodes). Each fermion
    uses its own charge (ε^d from Q_d)."""
    ch = _charges(model)
    g, m = _coupling_mass(g, m_MeV, "Z'")
    q2 = np.asarray(q2_MeV2, float)
    base = (g * g)[:, None] * ch.nu / (math.sqrt(2.0) * C.G_FERMI_MeV2 * (q2[None, :] + (m * m)[:, None]))
    return {"u": base * ch.u, "d": base * ch.d, "e": base * ch.e}


def contact_nsi(g, m_MeV, model="universal") -> dict[str, np.ndarray]:
    """Heavy-mediator (contact) limit ε^f = g² Q_ν Q_f/(√2 G_F m²) (arXiv:1708.04255 Sec. 2), shape (P,)."""
    return {k: v[:, 0] for k, v in vector_epsilon(g, m_MeV, np.zeros(1), model).items()}


def zprime_charge_shift(g, m_MeV, T_MeV, M_MeV: float, Z: int, N: int, F_p, F_n, model="universal") -> np.ndarray:
    """Shift of the weak charge by a Z′, ΔQ = (2ε^u + ε^d) Z F_p + (ε^u + 2ε^d) N F_n with ε^q(q² = 2MT)
    (arXiv:1708.04255 Sec. 2; arXiv:hep-ph/0508299 Sec. 2 for the quark content). Shape (P, nodes); add it to
    Z g_V^p F_p + N g_V^n F_n before squaring (interference)."""
    T = np.asarray(T_MeV, float)
    eps = vector_epsilon(g, m_MeV, 2.0 * M_MeV * T, model)
    cu, cd = (np.broadcast_to(c, T.shape) for c in quark_coefficients(Z, N, F_p, F_n))
    return eps["u"] * cu[None, :] + eps["d"] * cd[None, :]


def scalar_kernel(T_MeV, E_MeV, M_MeV):
    """Scalar-mediator kinematic kernel [cm²/MeV]: G_F² M/π · M T/(2E²) (ħc)², zero outside 0 ≤ T ≤ T_max(E, M);
    times :func:`scalar_weight` it is g⁴ Q_S² F² M² T/(4π E² (2MT + m²)²) (arXiv:1604.01025 Sec. 2)."""
    T = np.asarray(T_MeV, float)
    E = np.asarray(E_MeV, float)
    ok = (T >= 0) & (E > 0) & (T <= t_max(np.where(E > 0, E, 0.0), M_MeV))
    with np.errstate(divide="ignore", invalid="ignore"):
        val = M_MeV * T / (2.0 * E * E)
    return np.where(ok, C.G_FERMI_MeV2**2 * M_MeV / math.pi * val * C.HBARC2_MeV2_cm2, 0.0)


def electron_scalar_kernel(T_MeV, E_MeV, M_MeV=C.M_ELECTRON):
    """:func:`scalar_kernel` for an electron target (M = m_e; the ``M_MeV`` argument is ignored)."""
    return scalar_kernel(T_MeV, E_MeV, C.M_ELECTRON)


def scalar_nuclear_charge(Z: int, N: int, F_p, F_n) -> np.ndarray:
    """Q_S(q) = 14 (Z F_p + N F_n) + 1.1 Z F_p for a universal scalar coupling to quarks (arXiv:1604.01025 Table IV:
    Q_S = 14 A + 1.1 Z at q = 0)."""
    F_p = np.asarray(F_p, float)
    F_n = np.asarray(F_n, float)
    return SCALAR_PER_NUCLEON * (Z * F_p + N * F_n) + SCALAR_PER_PROTON * Z * F_p


def scalar_weight(g, m_MeV, T_MeV, M_MeV: float, charge) -> np.ndarray:
    """Weight of :func:`scalar_kernel`: g⁴ Q_S²/(2 G_F² (2MT + m²)²) (dimensionless), shape (P, nodes) for ``g``,
    ``m_MeV`` of shape (P,) and ``charge`` (Q_S F on the nodes, shape (nodes,) or (P, nodes); 1 for an electron) (arXiv:1604.01025 Sec. 2)."""
    g, m = _coupling_mass(g, m_MeV, "scalar")
    T = np.asarray(T_MeV, float)
    den = 2.0 * M_MeV * T[None, :] + (m * m)[:, None]
    q = np.asarray(charge, float)  # scalar, (nodes,) or (P, nodes): broadcasts against (P, nodes)
    return (g**4)[:, None] * (q * q) / (2.0 * C.G_FERMI_MeV2**2 * den * den)


# ---- the processes (see cevns.interactions.process) ----------------------------------------------------------
_VECTOR_COUPLINGS = (("g_zprime", "universal"), ("g_zprime_BL", "B-L"))


def _vector_amplitude(st, phys: dict, P: int):
    """ε^u(q²) c_u + ε^d(q²) c_d for each vector coupling present (arXiv:1708.04255 Sec. 2), interfering with Q_W."""
    from cevns.interactions.parameters import value

    out = None
    for gname, model in _VECTOR_COUPLINGS:
        if gname in phys:
            eps = vector_epsilon(value(phys, gname, P), value(phys, "m_zprime_MeV", P), st.ctx.q2, model)
            d = eps["u"] * st.cu + eps["d"] * st.cd
            out = d if out is None else out + d
    return out


def _vector_electron(ec, phys: dict, P: int):
    """ε^e(q² = 2 m_e T): shift of g_V^e (arXiv:1604.01025 Sec. 2)."""
    from cevns.interactions.parameters import value

    out = None
    for gname, model in _VECTOR_COUPLINGS:
        if gname in phys:
            d = vector_epsilon(value(phys, gname, P), value(phys, "m_zprime_MeV", P), ec.q2, model)["e"]
            out = d if out is None else out + d
    return out


def _scalar_nuclear(st, phys: dict, P: int):
    """{'scalar': g⁴ Q_S²/(2G_F²(2MT + m²)²)}, Q_S = 14(Z F_p + N F_n) + 1.1 Z F_p (arXiv:1604.01025 Sec. 2, Table IV)."""
    from cevns.interactions.parameters import value

    qs = SCALAR_PER_NUCLEON * (st.ctx.ZFp[None, :] + st.NFn) + SCALAR_PER_PROTON * st.ctx.ZFp[None, :]
    return {"scalar": scalar_weight(value(phys, "g_scalar", P), value(phys, "m_scalar_MeV", P), st.ctx.T_MeV,
                                    st.ctx.iso.mass_MeV, qs)}


def _scalar_electron(ec, phys: dict, P: int):
    """{'e_scalar': Z_eff g⁴/(2G_F²(2 m_e T + m²)²)} per atom (arXiv:1604.01025 Sec. 2)."""
    from cevns.interactions.parameters import value

    return {"e_scalar": ec.zeff[None, :] * scalar_weight(value(phys, "g_scalar", P), value(phys, "m_scalar_MeV", P),
                                                         ec.T_MeV, C.M_ELECTRON, 1.0)}


#: light vector mediators (universal and B−L couplings share the mass m_zprime_MeV)
VECTOR_MEDIATOR_PROCESS = Process("vector_mediator", ("g_zprime", "g_zprime_BL", "m_zprime_MeV"),
                                  "light vector Z' exchange interfering with the SM (universal or B-L charges)",
                                  amplitude=_vector_amplitude, electron_shift=_vector_electron)
#: light universal scalar mediator: incoherent
SCALAR_MEDIATOR_PROCESS = Process("scalar_mediator", ("g_scalar", "m_scalar_MeV"), "light universal scalar exchange",
                                  incoherent=_scalar_nuclear, incoherent_kernels=("scalar",),
                                  kernels={"scalar": scalar_kernel}, electron_incoherent=_scalar_electron,
                                  electron_incoherent_kernels=("e_scalar",),
                                  electron_kernels={"e_scalar": electron_scalar_kernel})
