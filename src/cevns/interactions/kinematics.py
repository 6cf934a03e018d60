"""Elastic two-body kinematics of a projectile of mass m (0 for neutrinos) on a target of mass M at rest.

E is the projectile's total energy [MeV] (its kinetic energy for m = 0), T the target's recoil kinetic energy [MeV].
Momentum conservation gives the largest recoil at backward scattering (e.g. Lewin & Smith, Astropart. Phys. 6, 87
(1996), Sec. 3; for m = 0 the CEvNS end point of arXiv:1708.01294):

    T_max(E) = 2 M (E² − m²) / (m² + M² + 2 M E),        m = 0:  T_max = 2E²/(M + 2E)

and, inverting it, the smallest projectile energy that can give a recoil T:

    E_min(T) = T/2 + √(T²/4 + [T (m² + M²) + 2 M m²]/(2M)),   m = 0:  E_min = (T + √(T² + 2MT))/2.
"""
from __future__ import annotations

import numpy as np

__all__ = ["t_max", "e_min"]


def t_max(E_MeV, M_MeV, m_MeV: float = 0.0):
    """Largest recoil T [MeV] of a target of mass M hit by a projectile of mass m and total energy E [MeV]:
    2M(E² − m²)/(m² + M² + 2ME); zero below E = m (elastic kinematics, see the module docstring)."""
    E = np.asarray(E_MeV, dtype=float)
    if m_MeV == 0.0:
        return 2.0 * E * E / (M_MeV + 2.0 * E)
    p2 = np.maximum(E * E - m_MeV * m_MeV, 0.0)
    return 2.0 * M_MeV * p2 / (m_MeV * m_MeV + M_MeV * M_MeV + 2.0 * M_MeV * E)


def e_min(T_MeV, M_MeV, m_MeV: float = 0.0):
    """Smallest projectile total energy [MeV] that can give a recoil T [MeV] on mass M (inverse of :func:`t_max`)."""
    T = np.asarray(T_MeV, dtype=float)
    if m_MeV == 0.0:
        return 0.5 * (T + np.sqrt(T * T + 2.0 * M_MeV * T))
    m2 = m_MeV * m_MeV
    return 0.5 * T + np.sqrt(0.25 * T * T + (T * (m2 + M_MeV * M_MeV) + 2.0 * M_MeV * m2) / (2.0 * M_MeV))
