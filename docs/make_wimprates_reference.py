"""Print the wimprates reference numbers stored in tests/test_direct_detection.py (needs ``pip install wimprates``;
checked with wimprates 0.5.0, numericalunits 1.28, numpy 2). Halo: v₀ = 220 km/s, v_esc = 544 km/s, ρ = 0.3 GeV/cm³
and wimprates' own annual-mean Earth speed (t = None); target: wimprates' xenon (A = 131.293, M = A u).

The numbers are wimprates' as it returns them: its Earth-frame speed distribution is multiplied by N_esc instead of
divided (∫ f dv = N_esc² = 0.98677 for these parameters), so the test compares them with ours × N_esc²."""
import warnings

import numpy as np

warnings.filterwarnings("ignore")
import numericalunits as nu  # noqa: E402
import wimprates as wr  # noqa: E402

kms = nu.km / nu.s
halo = wr.StandardHaloModel(v_0=220 * kms, v_esc=544 * kms, rho_dm=0.3 * nu.GeV / nu.c0**2 / nu.cm**3)
unit = 1 / (1000 * nu.kg * 365.25 * nu.day * nu.keV)
print("V_EARTH_KMS =", repr(wr.v_earth(None, v_0=220 * kms) / kms))
cases = {"elastic": ((10.0, 50.0, 200.0), (1.0, 5.0, 10.0, 20.0, 40.0), 1e-45, wr.rate_elastic),
         "migdal": ((0.5, 1.0, 2.0), (0.2, 0.5, 1.0, 2.0), 1e-40, wr.rate_migdal),
         "brems": ((0.5, 1.0, 2.0), (0.1, 0.3, 1.0, 2.0), 1e-40, wr.rate_bremsstrahlung)}
for name, (masses, E, sigma, fn) in cases.items():
    print(f"WIMPRATES_{name.upper()} = {{  # mass [GeV] -> dR/dE [1/(t·yr·keV)] at E = {E} keV, sigma = {sigma} cm²")
    for m in masses:
        r = fn(np.array(E) * nu.keV, m * nu.GeV / nu.c0**2, sigma * nu.cm**2, halo_model=halo) / unit
        print(f"    {m}: {[float(x) for x in r]},")
    print("}")
