"""``cevns dd-rate`` (dark-matter recoil spectra) and ``cevns fog`` (the neutrino floor / fog of a target)."""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from cevns.errors import ConfigError
from cevns.io import check_cli_outputs, write_text_atomic

#: O'Hare's SHM of the published floors (NeutrinoFog WIMPFuncs.MeanInverseSpeed_SHM defaults: σ_v = 167 km/s,
#: v_esc = 533 km/s, v_lab = 245.6 km/s, ρ = 0.3 GeV/cm³)
OHARE_HALO = {"rho_GeV_cm3": 0.3, "v0_kms": 167.0 * math.sqrt(2.0), "v_esc_kms": 533.0, "v_earth_kms": 245.6}
XENON1T_HALO = {"rho_GeV_cm3": 0.3, "v0_kms": 220.0, "v_esc_kms": 544.0, "v_earth_kms": 232.0}


def _floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{what}: give comma-separated numbers, got {text!r}") from None
    if not vals:
        raise ConfigError(f"{what}: give at least one number")
    return vals


def _halo(args, default: dict):
    from cevns.sources.halo import StandardHaloModel

    h = dict(default)
    for k, a in (("rho_GeV_cm3", "rho_GeV_cm3"), ("v0_kms", "v0_kms"), ("v_esc_kms", "vesc_kms"),
                 ("v_earth_kms", "vearth_kms")):
        v = getattr(args, a, None)
        if v is not None:
            h[k] = v
    return StandardHaloModel(h["rho_GeV_cm3"], h["v0_kms"], h["v_esc_kms"], h["v_earth_kms"]), h


def _halo_args(p) -> None:
    p.add_argument("--rho-GeV-cm3", dest="rho_GeV_cm3", type=float, help="local DM density [GeV/cm³]")
    p.add_argument("--v0-kms", dest="v0_kms", type=float, help="SHM v₀ [km/s]")
    p.add_argument("--vesc-kms", dest="vesc_kms", type=float, help="escape speed [km/s]")
    p.add_argument("--vearth-kms", dest="vearth_kms", type=float, help="Earth speed in the Galactic frame [km/s]")


def register(sub) -> None:
    p = sub.add_parser("dd-rate", help="dark-matter recoil spectrum per tonne-year (elastic, Migdal, Bremsstrahlung)",
                       description="Spin-independent dark-matter spectra per tonne-year and keV. The energy is the "
                                   "nuclear recoil for 'elastic' and the detected electromagnetic energy for 'migdal' "
                                   "and 'brems'. Default halo: XENON1T's (ρ = 0.3 GeV/cm³, v₀ = 220, v_esc = 544, "
                                   "v_E = 232 km/s).")
    p.add_argument("--target", default="Xe", help="target material (Xe, Ar, Ge, NaI, an isotope like Xe131)")
    p.add_argument("--mass-GeV", dest="mass_GeV", type=float, required=True, help="dark-matter mass [GeV]")
    p.add_argument("--sigma-cm2", dest="sigma_cm2", type=float, required=True, help="SI DM–nucleon cross section [cm²]")
    p.add_argument("--process", default="elastic", help="elastic | migdal | brems")
    p.add_argument("--energies-keV", dest="energies_keV", required=True, help="comma-separated energies [keV]")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the spectrum as JSON")
    _halo_args(p)
    p.set_defaults(func=run_dd_rate)

    f = sub.add_parser("fog", help="the neutrino floor (fog index n = 2 boundary) of a target, O'Hare 2021",
                       description="Discovery limits vs exposure against solar, atmospheric, DSNB, geo and reactor "
                                   "CEvNS (fluxes profiled under their uncertainties), the fog index and the floor, "
                                   "beside O'Hare's published floor. Default halo: O'Hare's (the published floors).")
    f.add_argument("--target", default="Xe", help="target material (Xe, Ar, Ge, ...)")
    f.add_argument("--masses-GeV", dest="masses_GeV", default=None,
                   help="comma-separated masses [GeV] (default: 50 log-spaced from 1 to 10⁴ GeV)")
    f.add_argument("--halo", default="ohare", help="ohare | xenon1t (then --rho/--v0/... override)")
    f.add_argument("--json", type=Path, metavar="FILE", help="write floors and discovery-limit curves as JSON")
    f.add_argument("--plot", type=Path, metavar="PNG", help="write a plot of the floor")
    _halo_args(f)
    f.set_defaults(func=run_fog)


def run_dd_rate(args: argparse.Namespace) -> int:
    from cevns.directdetection.spectra import dd_rate

    check_cli_outputs(args)
    E = _floats(args.energies_keV, "--energies-keV")
    halo, hd = _halo(args, XENON1T_HALO)
    r = dd_rate(args.process, E, args.mass_GeV, args.sigma_cm2, args.target, halo)
    unit = "nuclear recoil" if args.process == "elastic" else "electromagnetic"
    print(f"{args.process} spectrum, m = {args.mass_GeV:g} GeV, σ_n = {args.sigma_cm2:g} cm², target {args.target} "
          f"(energy: {unit}, keV)")
    print(f"{'E [keV]':>10}  {'dR/dE [1/(t·yr·keV)]':>22}")
    for e, v in zip(E, r):
        print(f"{e:>10g}  {v:>22.6g}")
    if args.json:
        out = {"process": args.process, "target": args.target, "mass_GeV": args.mass_GeV, "sigma_cm2": args.sigma_cm2,
               "halo": hd, "energies_keV": list(E), "rate_per_tonne_year_keV": [float(x) for x in r],
               "energy": unit}
        write_text_atomic(args.json, json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    return 0


def run_fog(args: argparse.Namespace) -> int:
    from cevns.directdetection.fog import neutrino_floor, published_floor

    check_cli_outputs(args)
    masses = np.geomspace(1.0, 1e4, 50) if args.masses_GeV is None else np.array(_floats(args.masses_GeV, "--masses-GeV"))
    if args.halo not in ("ohare", "xenon1t"):
        from cevns.errors import UnknownNameError

        raise UnknownNameError("halo preset", args.halo, ["ohare", "xenon1t"])
    halo, hd = _halo(args, OHARE_HALO if args.halo == "ohare" else XENON1T_HALO)
    t0 = time.perf_counter()
    res = neutrino_floor(masses, args.target, halo=halo)
    try:
        pm, ps = published_floor(args.target)
        pub = np.exp(np.interp(np.log(masses), np.log(pm), np.log(ps), left=np.nan, right=np.nan))
    except Exception:  # no published floor for this target
        pub = np.full(masses.shape, np.nan)
    print(f"neutrino floor (fog index n = 2), target {args.target}, halo {hd}  ({time.perf_counter() - t0:.1f} s)")
    print(f"{'mass [GeV]':>11}  {'floor [cm²]':>12}  {'O’Hare [cm²]':>12}  {'ratio':>6}  {'exposure [t·yr]':>15}")
    for m, f, p, x in zip(masses, res.floor_cm2, pub, res.floor_exposure_t_yr):
        print(f"{m:>11.4g}  {f:>12.4g}  {p:>12.4g}  {f / p:>6.3f}  {x:>15.4g}")
    if args.json:
        d = res.to_dict()
        d.update(halo=hd, published_floor_cm2=[None if not np.isfinite(p) else float(p) for p in pub])
        d = json.loads(json.dumps(d, default=float).replace("NaN", "null"))
        write_text_atomic(args.json, json.dumps(d, indent=2))
        print(f"wrote {args.json}")
    if args.plot:
        from cevns.plotting import plt, save

        fig, ax = plt.subplots(figsize=(6.0, 4.2))
        ax.plot(masses, res.floor_cm2, color="k", label="ours (n = 2)")
        if np.isfinite(pub).any():
            ax.plot(masses, pub, color="tab:orange", ls="--", label="O'Hare 2021")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("DM mass (GeV)")
        ax.set_ylabel("SI cross section (cm²)")
        ax.set_title(f"neutrino floor, {args.target}", fontsize=10)
        ax.legend(frameon=False, fontsize=8)
        save(fig, args.plot)
        print(f"wrote {args.plot}")
    return 0
