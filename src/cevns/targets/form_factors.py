"""Nuclear form factors F(q) with F(0) = 1, as functions of the momentum transfer q [fm^-1].

Models: Helm, Klein–Nystrand, symmetrized Fermi (each parametrised by an rms radius, so that proton and neutron
distributions can differ), and tabulated (Horowitz weak-charge tables shipped in ``cevns/data``).
Use :func:`q_fm_from_recoil` to get q from a recoil energy.
"""
from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources

import numpy as np

from cevns.constants import HBARC_MeV_fm
from cevns.errors import ConfigError, DataError, PhysicsDomainError, UnknownNameError

__all__ = ["q_fm_from_recoil", "helm", "klein_nystrand", "symmetrized_fermi", "tabulated", "FORM_FACTORS",
           "form_factor", "helm_rms_radius_default_fm", "HELM_S_FM"]

HELM_S_FM = 0.9  # Helm skin thickness s [fm], Lewin & Smith, Astropart. Phys. 6, 87 (1996), Sec. 4.2
KN_A_FM = 0.7  # Yukawa range a_k [fm], Klein & Nystrand, arXiv:hep-ph/9902259, Eq. (13)
SF_A_FM = 0.52  # surface diffuseness a [fm] of the symmetrized Fermi distribution (Lewin & Smith value)


def q_fm_from_recoil(T_MeV, M_MeV):
    """|q| [fm^-1] for a nuclear recoil T [MeV] on mass M [MeV]: q² = 2 M T + T² (elastic kinematics)."""
    T = np.asarray(T_MeV, dtype=float)
    return np.sqrt(2.0 * M_MeV * T + T * T) / HBARC_MeV_fm


def _j1_over_x(x):
    """3 j1(x)/x, with its series near 0 (→ 1)."""
    x = np.asarray(x, dtype=float)
    out = np.ones_like(x)
    small = np.abs(x) < 1e-3
    xs = x[~small]
    out[~small] = 3.0 * (np.sin(xs) - xs * np.cos(xs)) / xs**3
    out[small] = 1.0 - x[small] ** 2 / 10.0
    return out


def helm_rms_radius_default_fm(A: int) -> float:
    """Default Helm rms radius [fm] from Lewin & Smith (1996) Eq. (4.11): R0² = c² + 7/3 π² a² − 5 s² with
    c = 1.23 A^{1/3} − 0.60 fm, a = 0.52 fm, s = 0.9 fm; converted to rms via <r²> = 3/5 R0² + 3 s²."""
    c = 1.23 * A ** (1.0 / 3.0) - 0.60
    r0_sq = c * c + 7.0 / 3.0 * math.pi**2 * SF_A_FM**2 - 5.0 * HELM_S_FM**2
    return math.sqrt(0.6 * r0_sq + 3.0 * HELM_S_FM**2)


def _check_radius(r_rms_fm: float, minimum: float, model: str) -> None:
    if not (math.isfinite(r_rms_fm) and r_rms_fm > minimum):
        raise PhysicsDomainError(f"{model} form factor: rms radius must be finite and > {minimum:.3g} fm, got {r_rms_fm!r}")


def helm(q_fm, r_rms_fm: float, s_fm: float = HELM_S_FM):
    """Helm form factor, Helm PR 104, 1466 (1956); Lewin & Smith (1996) Eq. (4.7):
    F = 3 j1(q R0)/(q R0) exp(−q² s²/2) with R0² = 5/3 (R_rms² − 3 s²)."""
    _check_radius(r_rms_fm, math.sqrt(3.0) * s_fm, "Helm")
    r0 = math.sqrt(5.0 / 3.0 * (r_rms_fm**2 - 3.0 * s_fm**2))
    q = np.asarray(q_fm, dtype=float)
    return _j1_over_x(q * r0) * np.exp(-0.5 * (q * s_fm) ** 2)


def klein_nystrand(q_fm, r_rms_fm: float, a_fm: float = KN_A_FM):
    """Klein–Nystrand form factor, arXiv:hep-ph/9902259 Eq. (14): F = 3 j1(q R_A)/(q R_A) / (1 + q² a²),
    a hard sphere folded with a Yukawa; R_A from the rms radius via <r²> = 3/5 R_A² + 6 a²."""
    _check_radius(r_rms_fm, math.sqrt(6.0) * a_fm, "Klein-Nystrand")
    ra = math.sqrt(5.0 / 3.0 * (r_rms_fm**2 - 6.0 * a_fm**2))
    q = np.asarray(q_fm, dtype=float)
    return _j1_over_x(q * ra) / (1.0 + (q * a_fm) ** 2)


def symmetrized_fermi(q_fm, r_rms_fm: float, a_fm: float = SF_A_FM):
    """Symmetrized Fermi form factor, Piekarewicz et al. arXiv:1604.07799 Eq. (6) (Sprung & Martorell):
    F = 3/(qc[(qc)² + (πqa)²]) · πqa/sinh(πqa) · [πqa/tanh(πqa) sin(qc) − qc cos(qc)], which is 1 at q = 0;
    c from the rms radius via <r²> = 3/5 c² + 7/5 π² a²."""
    _check_radius(r_rms_fm, math.sqrt(7.0 / 5.0) * math.pi * a_fm, "symmetrized Fermi")
    c = math.sqrt(5.0 / 3.0 * (r_rms_fm**2 - 7.0 / 5.0 * math.pi**2 * a_fm**2))
    q = np.asarray(q_fm, dtype=float)
    out = np.ones_like(q)
    nz = q > 1e-6
    qq = q[nz]
    x, y = qq * c, math.pi * qq * a_fm
    val = 3.0 / (x * (x * x + y * y)) * (y / np.sinh(y)) * (y / np.tanh(y) * np.sin(x) - x * np.cos(x))
    out[nz] = val  # the expression tends to 1 as q -> 0 (expand to O(q^2)): no extra normalisation needed
    return out


_TABLE_NUCLEI = ("Ar40", "C12", "Ge76", "Ne20", "O16", "Si28", "Xe132")


@lru_cache(maxsize=None)
def _load_table(nucleus: str) -> tuple[np.ndarray, np.ndarray]:
    if nucleus not in _TABLE_NUCLEI:
        raise UnknownNameError("Horowitz form-factor table", nucleus, _TABLE_NUCLEI)
    path = resources.files("cevns") / "data" / "horowitz_formfactors" / f"{nucleus}.FF"
    try:
        arr = np.loadtxt(str(path), ndmin=2)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read form-factor table {path}: {exc}") from exc
    if arr.shape[1] != 2 or arr.shape[0] < 10 or not np.all(np.diff(arr[:, 0]) > 0) or not np.all(np.isfinite(arr)):
        raise DataError(f"form-factor table {path} is malformed (need >= 10 rows of increasing q and F)")
    return arr[:, 0], arr[:, 1]


def tabulated(q_fm, nucleus: str):
    """Horowitz relativistic-mean-field weak form factor (tables in cevns/data/horowitz_formfactors, see SOURCE.md),
    linearly interpolated in q [fm^-1]; q beyond the table raises."""
    qt, ft = _load_table(nucleus)
    q = np.asarray(q_fm, dtype=float)
    if np.any(q > qt[-1]) or np.any(q < 0):
        raise PhysicsDomainError(f"q outside the {nucleus} table range [0, {qt[-1]}] fm^-1")
    return np.interp(q, qt, ft)


FORM_FACTORS = ("helm", "klein_nystrand", "symmetrized_fermi", "tabulated", "none")


def form_factor(model: str, q_fm, r_rms_fm: float | None = None, nucleus: str | None = None):
    """Dispatch by model name; ``r_rms_fm`` for the analytic models, ``nucleus`` for 'tabulated'."""
    if model == "none":
        return np.ones_like(np.asarray(q_fm, dtype=float))
    if model == "tabulated":
        if nucleus is None:
            raise ConfigError("tabulated form factor needs the nucleus name")
        return tabulated(q_fm, nucleus)
    funcs = {"helm": helm, "klein_nystrand": klein_nystrand, "symmetrized_fermi": symmetrized_fermi}
    if model not in funcs:
        raise UnknownNameError("form-factor model", model, FORM_FACTORS)
    if r_rms_fm is None:
        raise ConfigError(f"{model} form factor needs an rms radius r_rms_fm")
    return funcs[model](q_fm, r_rms_fm)
