"""Vector non-standard interactions (NSI) of neutrinos with u and d quarks in CEvNS.

For an incoming ν_α (α = e, μ, τ) the effective weak charge squared is (Barranco, Miranda & Rashba,
arXiv:hep-ph/0508299, Sec. 2, the NSI cross section; same form in COHERENT arXiv:1708.01294 supplement and Coloma et al.
arXiv:2202.10829 Sec. 2):

    Q²_α = [Z (g_V^p + 2ε_αα^u + ε_αα^d) F_p + N (g_V^n + ε_αα^u + 2ε_αα^d) F_n]²
         + Σ_{β≠α} [Z (2ε_αβ^u + ε_αβ^d) F_p + N (ε_αβ^u + 2ε_αβ^d) F_n]²

in the normalisation of :func:`cevns.interactions.cevns.weak_charge` (Z g_V^p F_p + N g_V^n F_n with g_V^n ≈ −1/2,
tree level g_V^p = 1/2 − 2 s²_W): ε^{qV} = ε^{qL} + ε^{qR} adds to the quark vector coupling g_V^q = g_L^q + g_R^q, and
a proton (uud) carries 2ε^u + ε^d, a neutron (udd) ε^u + 2ε^d. The flavour-changing amplitudes (ν_α → ν_β, β ≠ α)
do not interfere with the flavour-diagonal one and add in quadrature; ε is taken real and symmetric (ε_αβ = ε_βα).
The same expression holds for antineutrinos (the vector amplitudes of SM and NSI flip sign together).

Every amplitude is linear in ε: Q_αα = q_SM + c_u ε_αα^u + c_d ε_αα^d and Q_αβ = c_u ε_αβ^u + c_d ε_αβ^d with
c_u = 2 Z F_p + N F_n and c_d = Z F_p + 2 N F_n on the recoil nodes, so a batch of parameter points is a cheap
contraction (:class:`NSICoefficients`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.interactions.cevns import check_flavour, nucleon_couplings, nucleon_form_factors
from cevns.interactions.process import Process
from cevns.targets.isotopes import Isotope, isotope as lookup_isotope

__all__ = ["FAMILIES", "PAIRS", "flavour_family", "nsi_param_name", "NSI_PARAM_NAMES", "pairs_for_family",
           "quark_coefficients", "NSICoefficients", "nsi_coefficients", "nsi_charge_squared", "nsi_qw2", "NSI_PROCESS"]

#: lepton families of the incoming neutrino
FAMILIES = ("e", "mu", "tau")
#: ε index pairs in the parameter names (``eps_<pair>_<q>V``); off-diagonal pairs are symmetric
PAIRS = ("ee", "mumu", "tautau", "emu", "etau", "mutau")
_PAIR_OF = {("e", "e"): "ee", ("mu", "mu"): "mumu", ("tau", "tau"): "tautau", ("e", "mu"): "emu",
            ("mu", "e"): "emu", ("e", "tau"): "etau", ("tau", "e"): "etau", ("mu", "tau"): "mutau",
            ("tau", "mu"): "mutau"}


def flavour_family(flavour: str) -> str:
    """'e', 'mu' or 'tau' for a flavour name of :data:`cevns.interactions.cevns.FLAVOURS` (antineutrinos included)."""
    check_flavour(flavour)
    return flavour.removeprefix("nu").removesuffix("bar")


def nsi_param_name(alpha: str, beta: str, quark: str) -> str:
    """Parameter name of ε_αβ^{qV}, e.g. ('e', 'mu', 'u') → 'eps_emu_uV' (the names of issue 4)."""
    if quark not in ("u", "d"):
        raise UnknownNameError("NSI quark", quark, ["u", "d"])
    try:
        return f"eps_{_PAIR_OF[(alpha, beta)]}_{quark}V"
    except KeyError:
        raise UnknownNameError("lepton family pair", (alpha, beta), FAMILIES) from None


#: every NSI parameter name, e.g. 'eps_ee_uV'
NSI_PARAM_NAMES = tuple(f"eps_{p}_{q}V" for p in PAIRS for q in ("u", "d"))


def pairs_for_family(alpha: str) -> tuple[str, list[str]]:
    """(diagonal pair, [off-diagonal pairs]) for incoming family α, e.g. 'e' → ('ee', ['emu', 'etau'])."""
    if alpha not in FAMILIES:
        raise UnknownNameError("lepton family", alpha, FAMILIES)
    return _PAIR_OF[(alpha, alpha)], [_PAIR_OF[(alpha, b)] for b in FAMILIES if b != alpha]


def quark_coefficients(Z, N, F_p, F_n):
    """(c_u, c_d) = (2 Z F_p + N F_n, Z F_p + 2 N F_n): the change of the weak charge per unit ε^u and ε^d
    (quark content p = uud, n = udd; arXiv:hep-ph/0508299 Sec. 2). Built from the u and d charges separately."""
    F_p = np.asarray(F_p, float)
    F_n = np.asarray(F_n, float)
    return 2.0 * Z * F_p + N * F_n, Z * F_p + 2.0 * N * F_n


@dataclass(frozen=True)
class NSICoefficients:
    """Linear structure of the NSI amplitudes on recoil nodes (arrays of shape (..., nodes)):
    Q_αα = q_sm + c_u ε_αα^u + c_d ε_αα^d, Q_αβ = c_u ε_αβ^u + c_d ε_αβ^d (β ≠ α).

    ``diag_pair`` and ``off_pairs`` name the ε entering for this incoming flavour (e.g. 'ee', ['emu', 'etau'])."""

    q_sm: np.ndarray
    c_u: np.ndarray
    c_d: np.ndarray
    diag_pair: str
    off_pairs: tuple[str, ...]

    def charge_squared(self, eps_u, eps_d, off_u=None, off_d=None, extra_diag=None) -> np.ndarray:
        """Q²_α on the nodes for P parameter points: ``eps_u``, ``eps_d`` shape (P,) (or scalars) are the diagonal
        ε_αα; ``off_u``, ``off_d`` shape (P, 2) (or (2,)) the off-diagonal ε_αβ in the order of ``off_pairs``;
        ``extra_diag`` (P, nodes) is any further shift of the diagonal amplitude (mediators, charge radius).
        Returns shape (P, nodes)."""
        eu = np.atleast_1d(np.asarray(eps_u, float))[:, None]
        ed = np.atleast_1d(np.asarray(eps_d, float))[:, None]
        q = self.q_sm + self.c_u * eu + self.c_d * ed
        if extra_diag is not None:
            q = q + extra_diag
        out = q * q
        if off_u is not None or off_d is not None:
            ou = np.zeros((1, len(self.off_pairs))) if off_u is None else np.atleast_2d(np.asarray(off_u, float))
            od = np.zeros((1, len(self.off_pairs))) if off_d is None else np.atleast_2d(np.asarray(off_d, float))
            for k in range(len(self.off_pairs)):
                a = self.c_u * ou[:, k, None] + self.c_d * od[:, k, None]
                out = out + a * a
        return out


def nsi_coefficients(T_MeV, iso: Isotope | str, flavour: str = "numu", *, sin2_theta_w: float | None = None,
                     form_factor_model: str = "helm", r_p_fm: float | None = None, r_n_fm: float | None = None,
                     scheme: str = "one_loop") -> NSICoefficients:
    """Coefficients (q_SM, c_u, c_d) on recoil nodes T [MeV] for incoming ``flavour`` (arXiv:hep-ph/0508299 Sec. 2).
    q_SM = Z g_V^p F_p + N g_V^n F_n is exactly :func:`cevns.interactions.cevns.weak_charge`."""
    iso = lookup_isotope(iso)
    T = np.asarray(T_MeV, float)
    if not np.all(np.isfinite(T)) or np.any(T < 0):
        raise PhysicsDomainError("recoil energies T_MeV must be finite and >= 0")
    gp, gn = nucleon_couplings(flavour, sin2_theta_w, scheme)
    Fp, Fn = nucleon_form_factors(T, iso, form_factor_model, r_p_fm, r_n_fm)
    cu, cd = quark_coefficients(iso.Z, iso.N, Fp, Fn)
    diag, off = pairs_for_family(flavour_family(flavour))
    return NSICoefficients(iso.Z * gp * Fp + iso.N * gn * Fn, cu, cd, diag, tuple(off))


def _eps(eps: dict, pair: str, q: str, P: int) -> np.ndarray:
    v = eps.get(f"eps_{pair}_{q}V", 0.0)
    a = np.asarray(v, float).ravel()
    if a.size not in (1, P):
        raise PhysicsDomainError(f"eps_{pair}_{q}V has {a.size} values; expected 1 or {P} (one per parameter point)")
    return np.broadcast_to(a, (P,))


def nsi_charge_squared(coef: NSICoefficients, eps: dict, P: int | None = None, extra_diag=None) -> np.ndarray:
    """Q²_α (P, nodes) from ``eps`` = {'eps_ee_uV': value or (P,) array, ...}; names that are absent are zero.
    Unknown names raise :class:`UnknownNameError`."""
    bad = [k for k in eps if k not in NSI_PARAM_NAMES]
    if bad:
        raise UnknownNameError("NSI parameter", bad[0], NSI_PARAM_NAMES)
    if P is None:
        P = max([np.size(v) for v in eps.values()] + [1])
    eu, ed = _eps(eps, coef.diag_pair, "u", P), _eps(eps, coef.diag_pair, "d", P)
    ou = np.stack([_eps(eps, p, "u", P) for p in coef.off_pairs], axis=1)
    od = np.stack([_eps(eps, p, "d", P) for p in coef.off_pairs], axis=1)
    return coef.charge_squared(eu, ed, ou, od, extra_diag)


def nsi_qw2(T_MeV, iso: Isotope | str, flavour: str, eps: dict, **charge_kwargs) -> np.ndarray:
    """Effective Q_W² (P, nodes) with vector NSI at recoils T [MeV] (arXiv:hep-ph/0508299 Sec. 2); multiply by
    :func:`cevns.interactions.cevns.kinematic_kernel` for dσ/dT. ``charge_kwargs`` go to :func:`nsi_coefficients`."""
    return nsi_charge_squared(nsi_coefficients(T_MeV, iso, flavour, **charge_kwargs), eps)


# ---- the process (see cevns.interactions.process) ------------------------------------------------------------
def _nsi_amplitude(st, phys: dict, P: int):
    """c_u ε_αα^u + c_d ε_αα^d: the flavour-diagonal NSI added to the weak charge (arXiv:hep-ph/0508299 Sec. 2)."""
    from cevns.interactions.parameters import value

    diag, _ = pairs_for_family(st.ctx.species.family)
    return st.cu * value(phys, f"eps_{diag}_uV", P)[:, None] + st.cd * value(phys, f"eps_{diag}_dV", P)[:, None]


def _nsi_incoherent(st, phys: dict, P: int):
    """Σ_{β≠α} (c_u ε_αβ^u + c_d ε_αβ^d)²: flavour-changing NSI, added to the weight of the 'sm' kernel without
    interference (arXiv:hep-ph/0508299 Sec. 2)."""
    from cevns.interactions.parameters import value

    _, off = pairs_for_family(st.ctx.species.family)
    out = None
    for pair in off:
        eu, ed = f"eps_{pair}_uV", f"eps_{pair}_dV"
        if eu in phys or ed in phys:
            a = st.cu * value(phys, eu, P)[:, None] + st.cd * value(phys, ed, P)[:, None]
            out = a * a if out is None else out + a * a
    return {} if out is None else {"sm": out}


#: vector NSI: the diagonal ε shift the weak charge, the flavour-changing ones add in quadrature
NSI_PROCESS = Process("nsi", NSI_PARAM_NAMES, "vector non-standard interactions with u and d quarks",
                      amplitude=_nsi_amplitude, incoherent=_nsi_incoherent, incoherent_kernels=("sm",))
