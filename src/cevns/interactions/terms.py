"""Physics parameters → per-node weights of each flux-folded kernel, batched over parameter points.

The rate of every model is Σ_k w_k(θ; T) ⊗ K_k(T), where K_k are flux-integrated kinematic kernels computed once per
source and target (``"sm"``: G_F²M/π(1 − T/E − MT/2E²), the CEvNS kernel of :mod:`cevns.interactions.cevns`; other
models add their own kernels, e.g. the magnetic moment's 1/T − 1/E) and w_k are weights on the recoil nodes that
carry all the dependence on θ (for the SM kernel: the effective weak charge squared). Everything is vectorised over
a leading axis of P parameter points.
"""
from __future__ import annotations

import numpy as np

from cevns import constants as C
from cevns.interactions.cevns import nucleon_couplings, nucleon_form_factors

__all__ = ["rate_terms", "sm_charge_parts", "RADIUS_PARAMS", "sin2_qw2_coefficients", "qw2_at"]

#: neutron-radius parameters by element symbol (fm)
RADIUS_PARAMS = {"Cs": "rn_Cs", "I": "rn_I", "Ar": "rn_Ar"}


def _vec(phys: dict, name: str, P: int):
    v = phys.get(name)
    return None if v is None else np.broadcast_to(np.asarray(v, float).ravel(), (P,))


def sm_charge_parts(phys: dict, iso, flavour: str, T_MeV, form_factor_model: str = "helm", scheme: str = "pdg"):
    """(Z g_V^p(θ) F_p, N g_V^n F_n(θ)) on the nodes, shape (P, nodes) each: sin²θ_W shifts g_V^p by its tree-level
    slope (arXiv:1708.01294 Eq. (1)); ``rn_<El>`` replaces the neutron rms radius of the form factor."""
    P = max([np.size(v) for v in phys.values()] + [1])
    T = np.asarray(T_MeV, float)
    gp0, gn = nucleon_couplings(flavour, None, scheme)
    s2 = _vec(phys, "sin2_theta_w", P)
    gp = np.full(P, gp0) if s2 is None else gp0 - 2.0 * (s2 - C.SIN2_THETA_W_0)
    Fp, Fn0 = nucleon_form_factors(T, iso, form_factor_model)
    prot = iso.Z * gp[:, None] * Fp[None, :]
    rn_name = RADIUS_PARAMS.get(iso.symbol)
    rn = _vec(phys, rn_name, P) if rn_name else None
    if rn is None and iso.symbol in ("Cs", "I"):
        rn = _vec(phys, "rn_CsI", P)  # one common neutron radius for Cs and I
    if rn is None:
        neut = np.broadcast_to(iso.N * gn * Fn0[None, :], (P, len(T)))
    else:
        uniq, inv = np.unique(rn, return_inverse=True)
        tab = np.stack([nucleon_form_factors(T, iso, form_factor_model, r_n_fm=float(r))[1] for r in uniq])
        neut = iso.N * gn * tab[inv]
    return prot, neut


def rate_terms(phys: dict, iso, flavour: str, T_MeV, form_factor_model: str = "helm", scheme: str = "pdg",
               kernels: tuple[str, ...] = ("sm",)) -> dict[str, np.ndarray]:
    """Weights on the recoil nodes for each kernel name, shape (P, nodes): {'sm': Q_W,eff², ...}.

    Parameters not given keep their SM value. Known here: sin2_theta_w, rn_Cs, rn_I, rn_Ar, rn_CsI; every other
    name of :mod:`cevns.physics_params` goes through :func:`cevns.physics_params.cevns_rate_terms`.
    """
    bsm_names = {k for k in phys if k not in ("sin2_theta_w", "rn_CsI") and k not in RADIUS_PARAMS.values()}
    if bsm_names:
        from cevns.physics_params import cevns_rate_terms  # NSI, magnetic moment, mediators, charge radius

        # sterile mixing acts on the flux: the batched models fold ⟨sin²⟩-weighted kernels themselves
        return cevns_rate_terms(phys, iso, flavour, T_MeV, form_factor_model=form_factor_model, scheme=scheme,
                                oscillation="ignore", kernels=kernels)
    prot, neut = sm_charge_parts(phys, iso, flavour, T_MeV, form_factor_model, scheme)
    q = prot + neut
    return {"sm": q * q}


def sin2_qw2_coefficients(components, nodes, flavours, form_factor_model: str = "helm", scheme: str = "pdg",
                          s2_ref: float = C.SIN2_THETA_W_0) -> dict[tuple[str, str], np.ndarray]:
    """Q_W² on the recoil nodes as a quadratic in Δ = sin²θ_W − s²_ref: {(flavour, isotope name): (c₀, c₁, c₂)}, shape
    (3, nodes), with Q_W = q₀ + Δ q₁ and q₁ = Z F_p dg_V^p/ds² (g_V^p is linear in s², arXiv:1708.01294 Eq. (1)).
    ``nodes`` maps isotope names to :class:`cevns.rates.RecoilNodes`."""
    out = {}
    for iso, _ in components:
        T = nodes[iso.name].T_MeV
        Fp, Fn = nucleon_form_factors(T, iso, form_factor_model)
        for f in flavours:
            gp, gn = nucleon_couplings(f, s2_ref, scheme)
            gp1, _ = nucleon_couplings(f, s2_ref + 0.01, scheme)
            q0 = iso.Z * gp * Fp + iso.N * gn * Fn
            q1 = iso.Z * (gp1 - gp) / 0.01 * Fp
            out[(f, iso.name)] = np.stack([q0 * q0, 2.0 * q0 * q1, q1 * q1])
    return out


def qw2_at(coefficients: dict, sin2_theta_w: float | None, s2_ref: float = C.SIN2_THETA_W_0) -> dict:
    """Evaluate :func:`sin2_qw2_coefficients` at one sin²θ_W (None: the reference value)."""
    d = 0.0 if sin2_theta_w is None else float(sin2_theta_w) - s2_ref
    return {k: c[0] + d * c[1] + d * d * c[2] for k, c in coefficients.items()}
