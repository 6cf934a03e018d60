"""Numbers and figure of docs/reactor.md (issue 11): ``python docs/make_reactor_results.py`` (about a minute).

Writes docs/results/reactor_summary.json and docs/reactor_qf.png. Every number goes through the specs' forward models
(cevns.commands.predict and cevns.inference.scan); nothing here is a second implementation.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from cevns.commands.predict import _plot_predictions, predict, sensitivity, significance, spec_with_quenching
from cevns.experiments.registry import load_experiment

HERE = Path(__file__).resolve().parent
CONFIGS = ("dresden-ii", "conus-like", "ricochet-like", "coherent-cryocsi")


def qf_table() -> dict:
    out = {}
    variants = {"lindhard k=0.157": ("lindhard", None), "lindhard k=0.18": ("lindhard", 0.18), "ybe (Scholz 2016)": ("ybe", None)}
    preds = {}
    for label, (qf, k) in variants.items():
        row = {}
        for mode in ("include", "subtract", "no_noise"):
            spec = spec_with_quenching("dresden-ii", qf, k=k)
            if mode == "no_noise":
                spec["detector"]["smearing"].update(sigma_noise_eV=0.01, fano=0.0)
            else:
                spec["detector"]["smearing"]["pedestal"] = mode
            p = predict(load_experiment(spec))
            row[mode] = {"cevns": p["cevns_nuclear_counts"], "electron": p["electron_counts"]}
            if mode == "include":
                preds[label] = p
        out[label] = row
    _plot_predictions(preds, HERE / "reactor_qf.png")
    return out


def main() -> int:
    t0 = time.time()
    summary = {"flux": {}, "predictions": {}, "qf_dresden": qf_table(), "significance": {}, "sensitivity": {}}
    for name in CONFIGS:
        e = load_experiment(name)
        p = predict(e)
        summary["predictions"][name] = {k: p[k] for k in ("flux_cm2_s", "nu_per_second", "total_counts",
                                                           "cevns_nuclear_counts", "electron_counts",
                                                           "background_counts")}
        if p["flux_cm2_s"]:
            summary["flux"][name] = p["source"]
        summary["significance"][name] = significance(e, (0.25, 1.0, 4.0))
    scans = {"sin2_theta_w": np.linspace(0.15, 0.35, 201), "mu_nu_e": np.linspace(0.0, 40.0, 401),
             "eps_ee_uV": np.linspace(-1.0, 1.0, 201)}
    for name in CONFIGS:
        row = {}
        for par, vals in scans.items():
            d, _ = sensitivity([name], {par: vals})
            row[par] = {"interval_90": d.get("interval_90"), "upper_limit_90": d.get("upper_limit_90")}
        gz = {}
        for m in (1.0, 10.0, 100.0):
            d, _ = sensitivity([name], {"g_zprime": np.geomspace(1e-7, 1e-3, 161)}, truth={"m_zprime_MeV": m})
            gz[f"{m:g}"] = d.get("upper_limit_90")
        row["g_zprime_at_m_zprime_MeV"] = gz
        summary["sensitivity"][name] = row
    comb = {}
    for exps in (("coherent-csi-2021", "coherent-ar-2020"), ("coherent-csi-2021", "coherent-ar-2020", "dresden-ii"),
                 ("dresden-ii",)):
        d, _ = sensitivity(list(exps), {"mu_nu_e": np.linspace(0.0, 60.0, 241)}, data="observed")
        comb[" + ".join(exps)] = d["upper_limit_90"]
    summary["mu_nu_e_limit_90_with_coherent_data"] = comb
    summary["seconds"] = time.time() - t0
    out = HERE / "results" / "reactor_summary.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=1, default=float))
    print(json.dumps(summary, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
