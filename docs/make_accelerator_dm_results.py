"""Produce the numbers and figures of docs/accelerator_dm.md (issue 12): branching ratios, the dark-matter yield and
recoil spectrum at m_χ = 10 MeV, the 90 % CL limit on Y for α_D = 0.5, 0.1, 0.02 (m_V = 3 m_χ), the relic lines
(exact propagator and the heavy-mediator approximation) and the Monte Carlo seed spread.

    python docs/make_accelerator_dm_results.py        # writes docs/results/accelerator_dm.json and docs/*.png
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    from cevns.commands.dm_limit import dm_experiment, limit_curve, relic_crossings
    from cevns.interactions import dark_photon as dp
    from cevns.sources import accelerator_dm as ad

    out: dict = {}
    out["br_pi0_gamma_v_over_eps2"] = {str(m): float(ad.br_pi0_gamma_v(m)) for m in (1.0, 10.0, 30.0, 60.0, 100.0,
                                                                                    130.0)}
    out["width_chichi_over_alpha_d_MeV"] = {"m_V=30,m_chi=10": float(dp.width_chichi_MeV(30.0, 10.0, 1.0))}
    out["pairs_per_meson_eps1e-4_alphaD0.5"] = {
        f"m_chi={m}": {ch: ad.production_br(ch, 3 * m, m, 1e-4, 0.5) for ch in ad.CHANNELS}
        for m in (1.0, 10.0, 20.0, 30.0, 40.0, 45.0, 50.0, 60.0)}

    t0 = time.perf_counter()
    exp, x = dm_experiment("coherent-csi-2021")
    out["build_seconds"] = time.perf_counter() - t0
    # the yield and the recoil spectrum at the benchmark point
    x.set_point(m_chi_MeV=10.0, m_v_over_m_chi=3.0, alpha_d=0.5)
    src = x.source
    out["benchmark_point"] = {
        "m_chi_MeV": 10.0, "m_v_MeV": 30.0, "alpha_d": 0.5, "epsilon": 1e-4,
        "y": float(dp.y_parameter(1e-4, 0.5, 10.0, 30.0)),
        "chi_per_pot_per_cm2": src.per_pot_per_cm2(), "fluence_per_cm2": src.fluence_per_cm2("chi"),
        "mean_chi_energy_MeV": src.mean_energy_MeV, "dm_counts_in_bins": x.expected_counts(),
        "delay_quantiles_ns": [float(v) for v in src.delay_quantiles_ns(4)[0]]}
    et = x.energy_time()
    pe_edges = exp.binning.edges("energy")
    out["benchmark_point"]["counts_per_pe_bin"] = {f"{a:g}-{b:g}": float(v) for a, b, v in
                                                  zip(pe_edges[:-1], pe_edges[1:], et.sum(axis=1))}
    spec = x.recoil_spectrum()
    fig, ax = plt.subplots(figsize=(6, 4))
    for iso, (T, r) in spec.items():
        ax.plot(T, r, label=f"{iso}, complex scalar")
    x.set_point(m_chi_MeV=10.0, statistics="dirac")
    for iso, (T, r) in x.recoil_spectrum().items():
        ax.plot(T, r, "--", label=f"{iso}, Dirac")
    ratio = {f"{t:g}keV": float(np.interp(t, *x.recoil_spectrum()["Cs133"]) / np.interp(t, *spec["Cs133"]))
             for t in (5, 10, 20, 40)}
    out["benchmark_point"]["dirac_over_scalar_Cs_recoil_rate"] = ratio
    out["benchmark_point"]["dirac_counts_in_bins"] = x.expected_counts()
    x.set_point(m_chi_MeV=10.0, statistics="complex_scalar")
    ax.set_yscale("log")
    ax.set_xlim(0, 120)
    ax.set_xlabel("nuclear recoil T [keV]")
    ax.set_ylabel("dN/dT [events/keV] (no detector response)")
    ax.set_title("χ from the SNS on CsI: m_χ = 10 MeV, m_V = 30 MeV, ε = 10⁻⁴, α_D = 0.5", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(HERE / "accelerator_dm_recoils.png", dpi=130)
    plt.close(fig)

    # Monte Carlo seed spread of the yield
    spread = {}
    for m in (2.0, 10.0, 30.0):
        v = []
        for seed in range(6):
            x.set_point(m_chi_MeV=m, seed=seed)
            v.append(x.expected_counts())
        spread[str(m)] = float(np.std(v) / np.mean(v))
    x.set_point(m_chi_MeV=10.0, seed=20211021)
    out["mc_relative_spread_of_counts_6_seeds"] = spread

    masses = np.geomspace(1.0, 220.0, 40)
    curves = {}
    for a in (0.5, 0.1, 0.02):
        c = limit_curve("coherent-csi-2021", masses, alpha_d=a, dm=(exp, x))
        curves[str(a)] = c
    out["limit_curves"] = curves
    base = curves["0.5"]
    y_rel_heavy = [dp.y_relic(float(m), 3.0, 0.5, heavy_mediator=True) for m in masses]
    out["y_relic_heavy_mediator"] = y_rel_heavy
    out["relic_excluded_ranges_MeV"] = {a: c["relic_excluded_ranges_MeV"] for a, c in curves.items()}
    out["relic_excluded_ranges_heavy_mediator_line_MeV"] = {
        a: relic_crossings(c["m_chi_MeV"], c["y_upper_limit"], y_rel_heavy) for a, c in curves.items()}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "accelerator_dm.json").write_text(json.dumps(out, indent=1))

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for (a, c), col in zip(curves.items(), ("tab:blue", "tab:purple", "tab:green")):
        y = np.array([np.nan if v is None else v for v in c["y_upper_limit"]], float)
        ax.plot(masses, y, color=col, label=f"CsI 2021, 90 % CL, α_D = {a}")
    ax.plot(masses, base["y_relic"], "k", lw=1.2, label="thermal relic, complex scalar (exact propagator)")
    ax.plot(masses, y_rel_heavy, "k:", lw=1.2, label="thermal relic, heavy-mediator approximation")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1, 220)
    ax.set_ylim(1e-13, 1e-6)
    ax.set_xlabel("m_χ [MeV]")
    ax.set_ylabel("Y = ε² α_D (m_χ/m_V)⁴")
    ax.set_title("scalar dark matter from the SNS, m_V = 3 m_χ (π⁰ and π⁻ capture; no η)", fontsize=9)
    ax.legend(fontsize=7.5, frameon=False, loc="upper left")
    fig.tight_layout()
    fig.savefig(HERE / "accelerator_dm_limit.png", dpi=130)
    plt.close(fig)
    print(json.dumps({k: out[k] for k in ("benchmark_point", "relic_excluded_ranges_MeV",
                                          "relic_excluded_ranges_heavy_mediator_line_MeV",
                                          "mc_relative_spread_of_counts_6_seeds")}, indent=1))


if __name__ == "__main__":
    main()
