"""Units and physical constants: the one convention of the package.

Convention (everywhere unless a name says otherwise):
    energy        MeV        (recoil energies may be keV where the name ends in ``_keV``)
    length        cm         (fm for nuclear radii, m for baselines where the name says ``_m`` / ``_fm``)
    time          s          (µs where the name says ``_us``)
    cross section cm^2       (differential: cm^2 / MeV)
    mass          MeV (natural units, c = 1); detector masses in kg where named ``_kg``

Values: PDG 2024 (Review of Particle Physics, PRD 110, 030001 (2024)), which takes the fundamental constants
from CODATA 2018.
"""
from __future__ import annotations

import math

# --- unit conversions -------------------------------------------------------------------------------------
MeV = 1.0
keV = 1e-3
GeV = 1e3
eV = 1e-6
cm = 1.0
m = 100.0
fm = 1e-13
s = 1.0
us = 1e-6
kg = 1.0

HBARC_MeV_fm = 197.3269804  # ħc [MeV fm], PDG 2024 Table 1.1
HBARC_MeV_cm = HBARC_MeV_fm * fm  # ħc [MeV cm]
HBARC2_MeV2_cm2 = HBARC_MeV_cm**2  # (ħc)^2 [MeV^2 cm^2] = 3.8938e-22: converts MeV^-2 to cm^2

# --- couplings ------------------------------------------------------------------------------------------
G_FERMI_MeV2 = 1.1663788e-11  # G_F/(ħc)^3 [MeV^-2], PDG 2024
ALPHA_EM = 1.0 / 137.035999084  # fine-structure constant at q^2 = 0, PDG 2024 (CODATA 2018)
SIN2_THETA_W_0 = 0.23857  # sin^2θ_W(0) in MS-bar at zero momentum transfer, PDG 2024 §10 (Erler & Ferro-Hernández)

# Neutrino-nucleon vector couplings at one loop (default coupling scheme 'one_loop'): PDG 2024 §10 "Electroweak model
# and constraints on new physics" (Erler & Freitas), the ν–hadron couplings g_V^{νu,νd} of Eq. (10.32)-(10.33) with
# the radiative-correction parameters of the same section (from Erler & Su, arXiv:1303.5522):
#   g_V^{νu} = ρ_νN (1/2 − 4/3 κ̂_νN ŝ²_Z) + λ_uL + λ_uR,   g_V^{νd} = ρ_νN (−1/2 + 2/3 κ̂_νN ŝ²_Z) + λ_dL + λ_dR,
#   g_V^p = 2 g_V^{νu} + g_V^{νd},  g_V^n = g_V^{νu} + 2 g_V^{νd}.
# κ̂_νN carries the ν_μ charge radius, so these are ν_μ couplings; other flavours differ through their SM charge radii
# (cevns.interactions.electromagnetic.SM_CHARGE_RADII_1E32_CM2). Values typed from the PDG review (not re-checked
# against the printed table here); they give g_V^n = −0.5120 (the PDG quotes −0.5117) and g_V^p(ν_μ) = 0.0305
# (≈ 0.030 in the recent CEvNS literature, which uses slightly different inputs).
RHO_NU_N = 1.0082
KAPPA_NU_N = 0.9972
LAMBDA_UL = -0.0031
LAMBDA_DL = -0.0025
LAMBDA_DR = 7.5e-5
LAMBDA_UR = 0.5 * LAMBDA_DR
SIN2_THETA_W_MZ = 0.23129  # ŝ²_Z, MS-bar at the Z pole, PDG 2024 §10

# Flavour-dependent set including the neutrino charge-radius corrections of Cadeddu et al. (arXiv:2005.01645, Sec. II):
# g_V^p(ν_e) = 0.0401, g_V^p(ν_μ) = 0.0318, g_V^n = -0.5094 (no ν_τ value given); coupling scheme 'charge_radius'.
G_V_PROTON_CR = {"nue": 0.0401, "numu": 0.0318}
G_V_NEUTRON_CR = -0.5094

# --- masses [MeV] ---------------------------------------------------------------------------------------
M_ELECTRON = 0.51099895000  # PDG 2024
M_MUON = 105.6583755  # PDG 2024
M_PION_CHARGED = 139.57039  # PDG 2024
M_PION_NEUTRAL = 134.9768  # PDG 2024
M_PROTON = 938.27208816  # PDG 2024
M_NEUTRON = 939.56542052  # PDG 2024
AMU_MeV = 931.49410242  # unified atomic mass unit, PDG 2024 (CODATA 2018)

# --- lifetimes [s] --------------------------------------------------------------------------------------
TAU_PION_CHARGED_s = 2.6033e-8  # PDG 2024
TAU_MUON_s = 2.1969811e-6  # PDG 2024
TAU_PION_CHARGED_us = TAU_PION_CHARGED_s / us
TAU_MUON_us = TAU_MUON_s / us

# --- misc -----------------------------------------------------------------------------------------------
AVOGADRO = 6.02214076e23  # mol^-1, exact (SI 2019)
GRAM_PER_AMU = 1.0 / AVOGADRO  # g per u
MU_BOHR_MeV_INV = 1.0 / (2.0 * M_ELECTRON)  # μ_B = e/(2 m_e) in natural units times e: used as μ_B/e [MeV^-1]
GWH_IN_MeV = 1e9 * 3600.0 / 1.602176634e-13  # 1 GW·h expressed in MeV (e = 1.602176634e-19 C exact)
PI = math.pi

#: Prompt ν_μ energy from π⁺ → μ⁺ ν_μ at rest, E = (m_π² − m_μ²)/(2 m_π) [MeV] (two-body kinematics).
E_NU_PROMPT = (M_PION_CHARGED**2 - M_MUON**2) / (2.0 * M_PION_CHARGED)
#: End point of the Michel spectra from μ⁺ decay at rest, m_μ/2 [MeV] (electron mass neglected).
E_NU_MICHEL_MAX = M_MUON / 2.0
