"""Every physics path of the forward model against a brute-force reference computed here, independently of the rate
engine: closed-form cross sections written out in this file, integrated over a fine (T, E) grid with the trapezoid
rule, folded with the detector response on the fine grid and weighted with the time factors. A sign flip, a missing
term or a factor 1.04 anywhere in the chain (kernels, weights, stacked response matrices, oscillation folds, ν–e
electron recoils, response variants, the argon ratio) fails here."""
import math

import numpy as np
import pytest

from cevns import constants as C
from cevns.experiments import load_experiment
from cevns.interactions.electron import ATOMIC_SHELLS_eV
from cevns.sources import michel_nue_pdf, michel_numubar_pdf
from cevns.targets.form_factors import helm, helm_rms_radius_default_fm, q_fm_from_recoil

GF2 = C.G_FERMI_MeV2 ** 2
HC2 = C.HBARC2_MeV2_cm2
ALPHA = C.ALPHA_EM
ME = C.M_ELECTRON


@pytest.fixture(scope="module")
def csi():
    return load_experiment("coherent-csi-2021")


@pytest.fixture(scope="module")
def ar():
    return load_experiment("coherent-ar-2020")


# ---- the reference cross sections (tree-level couplings, Helm form factors; the specs' choices) -------------------
def _F(T, iso, r_n=None):
    q = q_fm_from_recoil(T, iso.mass_MeV)
    r0 = helm_rms_radius_default_fm(iso.A)
    return helm(q, r0), helm(q, r0 if r_n is None else r_n)


def _kin(T, E, M):
    k = 1.0 - T / E - M * T / (2 * E * E)
    return np.where(k > 0, k, 0.0)


def nuclear_xsec(T, E, iso, flavour, th):
    """dσ/dT [cm²/MeV] per nucleus with every BSM term of ``th`` written out (see the citations in the engine)."""
    M, Z, N, A = iso.mass_MeV, iso.Z, iso.N, iso.A
    Fp, Fn = _F(T, iso, th.get("rn_Cs") if iso.symbol == "Cs" else None)
    s2 = th.get("sin2_theta_w", C.SIN2_THETA_W_0)
    gp, gn = 0.5 - 2 * s2, -0.5
    fam = flavour.removeprefix("nu").removesuffix("bar")
    eu = th.get("eps_ee_uV", 0.0) if fam == "e" else 0.0
    ed = th.get("eps_ee_dV", 0.0) if fam == "e" else 0.0
    q = Z * (gp + 2 * eu + ed) * Fp + N * (gn + eu + 2 * ed) * Fn
    if "g_zprime" in th:  # universal Z': ε^u = ε^d = g²/(√2 G_F (q² + m²)), q² = 2MT
        eps = th["g_zprime"] ** 2 / (math.sqrt(2) * C.G_FERMI_MeV2 * (2 * M * T + th["m_zprime_MeV"] ** 2))
        q = q + 3 * eps * (Z * Fp + N * Fn)
    q2 = q * q
    if fam in ("e", "mu"):  # flavour-changing ε_eμ^d for ν_e and ν_μ: amplitude (Z + 2N) ε F, added in quadrature
        ed_off = th.get("eps_emu_dV", 0.0)
        q2 = q2 + ((Z * Fp + 2 * N * Fn) * ed_off) ** 2
    out = GF2 * M / math.pi * _kin(T, E, M) * q2 * HC2
    mu = th.get({"e": "mu_nu_e", "mu": "mu_nu_mu"}.get(fam, "-"), 0.0) * 1e-10
    if mu:
        val = np.where(_kin(T, E, M) > 0, 1 / T - 1 / E + T / (4 * E * E), 0.0)
        out = out + math.pi * ALPHA ** 2 * mu ** 2 / ME ** 2 * (Z * Fp) ** 2 * val * HC2
    if "g_scalar" in th:
        g, m = th["g_scalar"], th["m_scalar_MeV"]
        QS = 14.0 * (Z * Fp + N * Fn) + 1.1 * Z * Fp
        val = g ** 4 * QS ** 2 * M ** 2 * T / (4 * math.pi * E * E * (2 * M * T + m * m) ** 2)
        out = out + np.where(_kin(T, E, M) > 0, val, 0.0) * HC2
    return out


def electron_xsec(T, E, flavour, th):
    """ν–e dσ/dT_e [cm²/MeV] per free electron (PDG 2024 §10, tree level) + magnetic moment (Vogel & Engel)."""
    s2 = th.get("sin2_theta_w", C.SIN2_THETA_W_0)
    gL, gR = -0.5 + s2, s2
    if flavour.removesuffix("bar") == "nue":
        gL += 1.0
    if flavour.endswith("bar"):
        gL, gR = gR, gL
    ok = T <= 2 * E * E / (ME + 2 * E)
    y = 1 - T / E
    out = 2 * GF2 * ME / math.pi * (gL * gL + gR * gR * y * y - gL * gR * ME * T / (E * E)) * HC2
    fam = flavour.removeprefix("nu").removesuffix("bar")
    mu = th.get({"e": "mu_nu_e", "mu": "mu_nu_mu"}.get(fam, "-"), 0.0) * 1e-10
    if mu:
        out = out + math.pi * ALPHA ** 2 * mu ** 2 / ME ** 2 * (1 / T - 1 / E) * HC2
    return np.where(ok, out, 0.0)


def p_active(flavour, E, th, L):
    """1 − P(ν_α → ν_s): 4|U_α4|²|U_s4|² sin²(Δm² x/4E) averaged numerically over x uniform in [L − ½, L + ½] m."""
    if "dm2_41_eV2" not in th:
        return np.ones_like(E)
    fam = flavour.removeprefix("nu").removesuffix("bar")
    ue, um = th.get("Ue4_sq", 0.0), th.get("Umu4_sq", 0.0)
    u = {"e": ue, "mu": um}.get(fam, 0.0)
    x = np.linspace(L - 0.5, L + 0.5, 801)  # m
    # Δm² L/(4E) with Δm² [eV²], L [m], E [MeV]: ×1e6 (eV·m → MeV·µm... via ħc = 197.327 MeV fm)
    phase = th["dm2_41_eV2"] * x[None, :] / (4.0 * E[:, None]) / (C.HBARC_MeV_fm * 1e-15) * 1e-12
    return 1 - 4 * u * (1 - ue - um) * np.trapezoid(np.sin(phase) ** 2, x, axis=1) / 1.0


_R_CACHE: dict = {}


def _matrix(det, T, electron):
    key = (id(det), T.size, float(T[-1]), electron)
    if key not in _R_CACHE:
        _R_CACHE[key] = det.matrix(T / C.keV, electron=electron)
    return _R_CACHE[key]


def brute_energy_spectrum(exp, th, nuclear=True, electrons=True):
    """Signal per energy bin (time-summed with the model's own time factors), by brute force."""
    return brute_by_component(exp, th, nuclear, electrons).T @ exp.time.source_factors().sum(axis=1)


def brute_by_component(exp, th, nuclear=True, electrons=True):
    """Signal energy spectra per timing component (components, energy bins) before the time factors."""
    src = exp.source.source
    det = exp.detector
    comp = {s: c for c, g in enumerate(exp.source.groups) for s in g}
    b = np.eye(len(exp.source.groups))
    L = exp.source.baseline_m
    out = 0.0
    E_m = np.linspace(1e-3, C.M_MUON / 2, 401)
    for s in src.species:
        line = s == "numu"
        E = np.array([C.E_NU_PROMPT]) if line else E_m
        w = np.ones(1) if line else (michel_nue_pdf(E) if s == "nue" else michel_numubar_pdf(E))
        w = w * p_active(s, E, th, L)
        if nuclear:
            for iso, n in exp.target.components:
                tmax = 2 * E.max() ** 2 / (iso.mass_MeV + 2 * E.max())
                T = np.linspace(1e-7, tmax, 2501)
                xs = nuclear_xsec(T[:, None], E[None, :], iso, s, th)
                dndt = xs[:, 0] * w[0] if line else np.trapezoid(xs * w[None, :], E, axis=1)
                R = _matrix(det, T, False)
                out = out + src.fluence_per_cm2(s) * n * np.outer(b[comp[s]], np.trapezoid(R * dndt[None, :], T, axis=1))
        if electrons and exp.spec["signal"].get("electron_recoils"):
            Tmax = 1.3e-3 * det.electron_energy_max_keV()
            T = np.geomspace(1e-7, Tmax, 4001)
            xs = electron_xsec(T[:, None], E[None, :], s, th)
            dndt = xs[:, 0] * w[0] if line else np.trapezoid(xs * w[None, :], E, axis=1)
            R = _matrix(det, T, True)
            for el, n_atoms in exp.target.atoms.items():
                zeff = sum(k * (T / C.eV > be) for k, be in ATOMIC_SHELLS_eV[el])
                out = out + src.fluence_per_cm2(s) * n_atoms * np.outer(
                    b[comp[s]], np.trapezoid(R * (zeff * dndt)[None, :], T, axis=1))
    return out


def model_energy_spectrum(exp, th):
    names = tuple(th)
    m = exp.model("physics", names)
    comps = m.components(m.prepare({k: np.array([v]) for k, v in th.items()}), m.defaults()[None, :])
    full = exp.binning.full(comps["cevns"][0])
    return exp.projection(full, "energy")


def test_sm_prediction_matches_brute_force(csi):
    ours, ref = model_energy_spectrum(csi, {}), brute_energy_spectrum(csi, {})
    assert ours.sum() == pytest.approx(ref.sum(), rel=3e-3)
    big = ref > 1.0
    assert np.allclose(ours[big], ref[big], rtol=5e-3)


@pytest.mark.parametrize("th", [
    {"sin2_theta_w": 0.30},
    {"eps_ee_uV": 0.2, "eps_ee_dV": -0.15},
    {"eps_emu_dV": 0.3},
    {"mu_nu_e": 40.0},
    {"mu_nu_mu": 30.0, "sin2_theta_w": 0.25},
    {"g_zprime": 4e-5, "m_zprime_MeV": 30.0},
    {"g_scalar": 3e-5, "m_scalar_MeV": 10.0},
    {"rn_Cs": 6.2},
    {"dm2_41_eV2": 1.3, "Ue4_sq": 0.2, "Umu4_sq": 0.1},
], ids=lambda th: "+".join(th))
def test_bsm_paths_match_brute_force(csi, th):
    ours, ref = model_energy_spectrum(csi, th), brute_energy_spectrum(csi, th)
    sm = brute_energy_spectrum(csi, {})
    big = sm > 1.0
    assert ours.sum() == pytest.approx(ref.sum(), rel=4e-3)
    assert np.allclose(ours[big], ref[big], rtol=8e-3)
    assert not np.allclose(ref[big], sm[big], rtol=0.02)  # the test point changes the rate visibly


def test_neutrino_electron_scattering_with_binding(csi):
    """The electron-recoil contribution on its own (μ_ν makes it visible): model minus its nuclear part."""
    th = {"mu_nu_e": 50.0, "mu_nu_mu": 50.0}
    ref_e = brute_energy_spectrum(csi, th, nuclear=False)
    ref_n = brute_energy_spectrum(csi, th, electrons=False)
    ours = model_energy_spectrum(csi, th)
    assert ref_e.sum() > 20  # a visible electron-recoil signal
    assert (ours - ref_n).sum() == pytest.approx(ref_e.sum(), rel=0.02)


def test_argon_ratio_matches_brute_force(ar):
    """Argon's released template × r(θ)[E, t]: the model's signal equals Σ T_released(E, F90, t) · r_ref(E, t) with
    r_ref the brute-force ratio of our argon prediction per (energy, time) bin."""
    th = {"eps_ee_uV": 0.3, "mu_nu_mu": 30.0}
    m = ar.model("physics", tuple(th))
    comps = lambda t: m.components(m.prepare({k: np.array([v]) for k, v in t.items()}), m.defaults()[None, :])
    T = ar.time.source_factors()
    et = lambda t: brute_by_component(ar, t).T @ T  # (E, t)
    sm, bsm = et({}), et(th)
    r_ref = np.where(sm > 0, bsm / np.where(sm > 0, sm, 1), 1.0)
    rel = ar.signal.nominal  # (E, F90, t)
    want = float(np.sum(rel * r_ref[:, None, :]))
    got = float(comps(th)["cevns"].sum())
    assert got == pytest.approx(want, rel=4e-3)
    assert abs(want / rel.sum() - 1) > 0.05
    assert comps({k: 0.0 for k in th})["cevns"].sum() == pytest.approx(ar.spec["signal"]["prediction"], rel=5e-3)


@pytest.mark.parametrize("name,value", [("csi21_qf_pc0", 1.0), ("csi21_qf_pc1", -1.0), ("csi21_eff", 1.0),
                                        ("csi21_eff", -0.5), ("csi21_eff", 0.25), ("csi21_qf_pc0", -1.7)])
def test_response_variants_match_the_detector_at_that_setting(csi, name, value):
    """The morphed signal at a response parameter value equals (at grid points) or linearly interpolates (between
    them) the prediction computed with the detector at that setting directly."""
    m = csi.model("physics")
    nu = m.defaults()
    nu[m.index(name)] = value
    got = csi.binning.full(m.components(m.prepare({}), nu[None, :])["cevns"][0])
    grid = np.asarray(csi.spec["nuisances"][name]["grid"], float)
    i = min(max(np.searchsorted(grid, value, side="right") - 1, 0), grid.size - 2)
    f = (value - grid[i]) / (grid[i + 1] - grid[i])
    at = lambda v: csi.engine_prediction(settings={name: float(v)} if v != 0 else {})  # noqa: E731
    want = (1 - f) * at(grid[i]) + f * at(grid[i + 1])
    assert np.allclose(got, want, rtol=1e-9)
    assert not np.allclose(got, csi.engine_prediction(), rtol=1e-3)


def test_pulse_timing_variant(csi):
    m = csi.model("physics")
    tm = csi.source.timing
    g = m.nuisances[m.index(tm.mean_parameter)]
    nu = m.defaults()
    nu[m.index(tm.mean_parameter)] = g.value + 0.1  # a grid point (step 0.01 µs)
    got = csi.binning.full(m.components(m.prepare({}), nu[None, :])["cevns"][0])
    want = csi.signal.engine.energy_time(mean_us=g.value + 0.1)[0]
    assert np.allclose(got, want, rtol=1e-9)
