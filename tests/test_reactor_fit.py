"""Issue 11, the fit path: a residual spectrum (energy, counts, 1σ per bin) generated from the model itself (Asimov
and seeded toys, never invented data), the on/off bookkeeping, the command line, and combination with COHERENT."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cevns.commands.predict import experiment_with_residual, spec_with_residual
from cevns.errors import ConfigError, DataError
from cevns.experiments.registry import load_experiment
from cevns.experiments.sections.data import residual_from_on_off
from cevns.inference import fit

ALPHA = 96.4 / 25.0  # Dresden-II reactor-on / reactor-off live time


def _truth():
    e = load_experiment("dresden-ii")
    comps = e.components_at({})
    edges = e.binning.edges("energy")
    return e, 0.5 * (edges[1:] + edges[:-1]), comps["cevns"][:, 0], comps["flat"][:, 0]


def _write(path, c, r, sig):
    np.savetxt(path, np.column_stack([c, r, sig]), header="energy_keVee residual sigma")
    return path


def test_asimov_residual_fit_returns_the_truth(tmp_path):
    """Asimov on/off: N_on = s + b, N_off = b/α → r = s, σ² = s + b + α b; the fitted count is Σ s and σ/σ_SM = 1."""
    e, c, s, b = _truth()
    r, sig = residual_from_on_off(s + b, b / ALPHA, ALPHA)
    assert np.allclose(r, s) and np.allclose(sig**2, s + b + ALPHA * b)
    path = _write(tmp_path / "residual.txt", c, r, sig)
    ex = experiment_with_residual("dresden-ii", path)
    assert sorted(ex.backgrounds) == ["residual_offset"]
    assert np.allclose(ex.observed, sig**2)
    res = fit(ex.likelihood("counts"))
    assert res.values["n_cevns"] == pytest.approx(s.sum(), rel=2e-3)
    res = fit(ex.likelihood("xsec_scale"))
    assert res.values["xsec_scale"] == pytest.approx(1.0, abs=3e-3)
    # its Gaussian error ≈ √(Σ ... ) of the linearised χ² with every nuisance fixed
    var = 1.0 / np.sum(s**2 / sig**2)
    res = fit(ex.likelihood("xsec_scale"), fixed={"dresden_flux_norm": 1.0, "reactor_spectrum_shape": 0.0,
                                                  "dresden_lindhard_k": 0.157})
    assert res.errors["xsec_scale"] == pytest.approx(np.sqrt(var), rel=0.03)


def test_seeded_toys_give_unbiased_counts(tmp_path):
    """Seeded on/off toys → residuals → fits of σ/σ_SM: unbiased, pulls of unit width. The first toy goes through the
    file loader and the experiment; the others reuse its model with their own data and offset (the same likelihood:
    checked on the first toy)."""
    from cevns.inference.likelihood import BinnedPoissonLikelihood

    e, c, s, b = _truth()
    rng = np.random.default_rng(11)
    fixed = {"dresden_flux_norm": 1.0, "reactor_spectrum_shape": 0.0, "dresden_lindhard_k": 0.157}
    pulls, m = [], None
    for k in range(40):
        on = rng.poisson(s + b).astype(float)
        off = rng.poisson(b / ALPHA).astype(float)
        r, sig = residual_from_on_off(on, off, ALPHA)
        if m is None:
            ex = experiment_with_residual("dresden-ii", _write(tmp_path / "toy0.txt", c, r, sig))
            full = fit(ex.likelihood("xsec_scale"), fixed=fixed)
            m = ex.model("xsec_scale")
            st = m.prepare({})
            sig_sample = [x for x in m.samples if x.name == "cevns"][0]
        lik = BinnedPoissonLikelihood("toy", m.nuisances, lambda x, o=sig**2 - r: sig_sample.evaluate1(st[0], x) + o,
                                      sig**2)
        res = fit(lik, fixed=fixed)
        if k == 0:
            assert res.values["xsec_scale"] == pytest.approx(full.values["xsec_scale"], rel=1e-6)
        pulls.append((res.values["xsec_scale"] - 1.0) / res.errors["xsec_scale"])
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 3.0 / np.sqrt(len(pulls))
    assert 0.6 < pulls.std(ddof=1) < 1.4


def test_residual_file_errors(tmp_path):
    e, c, s, b = _truth()
    bad = _write(tmp_path / "bad.txt", c, s, np.sqrt(0.5 * s) + 1e-3)  # σ² < r in the first bins
    with pytest.raises(DataError, match="sigma"):
        experiment_with_residual("dresden-ii", bad)
    short = _write(tmp_path / "short.txt", c[:-1], s[:-1], np.sqrt(s[:-1] + b[:-1]))
    with pytest.raises(DataError, match="rows"):
        experiment_with_residual("dresden-ii", short)
    spec = spec_with_residual("dresden-ii", tmp_path / "short.txt")
    assert "dresden_bkg_norm" not in spec["nuisances"]


def test_scaled_dataset_background_is_the_off_spectrum(tmp_path):
    """The reactor-off spectrum × α as a background (a user with both spectra, nd_grid files)."""
    e, c, s, b = _truth()
    from cevns.experiments.registry import load_spec

    spec = load_spec("dresden-ii")
    on = np.round(s + b)
    off = np.round(b / ALPHA)
    for name, v in (("on.txt", on), ("off.txt", off)):
        np.savetxt(tmp_path / name, np.column_stack([c, np.full(c.size, 0.5), v]))
    spec["data"] = {"observed": {"file": str(tmp_path / "on.txt"), "format": "nd_grid"},
                    "reactor_off": {"file": str(tmp_path / "off.txt"), "format": "nd_grid"}}
    spec["backgrounds"] = {"off": {"type": "scaled_dataset", "data": "reactor_off", "scale": ALPHA,
                                   "modifiers": ["dresden_bkg_norm"]}}
    spec["nuisances"]["dresden_bkg_norm"] = {"type": "normsys", "sigma": {"poisson_count": "reactor_off"}}
    ex = load_experiment(spec)
    comps = ex.components_at({})
    assert np.allclose(comps["off"][:, 0], ALPHA * off)
    p = ex.model("counts").nuisances[ex.model("counts").index("dresden_bkg_norm")]
    assert p.constraint[1] == pytest.approx(1 / np.sqrt(off.sum()))


def test_cli_predict_json(tmp_path, capsys):
    from cevns.cli import main

    out = tmp_path / "d2.json"
    assert main(["predict", "--experiment", "dresden-ii", "--qf", "lindhard", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    for key in ("flux_cm2_s", "nu_per_second", "total_counts", "bins"):
        assert key in d
    assert {"lo", "hi", "unit", "counts"} <= set(d["bins"][0])
    assert d["bins"][0]["unit"] == "keVee" and d["bins"][0]["lo"] == pytest.approx(0.2)
    assert sum(x["counts"] for x in d["bins"]) == pytest.approx(d["total_counts"], rel=1e-12)
    assert 3.5e13 < d["flux_cm2_s"] < 5e13
    assert main(["predict", "--experiment", "conus-like", "--json", str(tmp_path / "c.json")]) == 0  # the spec's QF
    assert json.loads((tmp_path / "c.json").read_text())["quenching"]["k"] == 0.18
    assert main(["predict", "--experiment", "dresden-ii", "--qf", "fef"]) == 2
    assert "needs a table" in capsys.readouterr().err
    # a user's table (here the YBe curve written as a table, to check the tabulated path against the preset)
    from cevns.detectors.quenching import Lindhard

    T = np.geomspace(0.01, 5.0, 400)
    np.savetxt(tmp_path / "qf.txt", np.column_stack([T, Lindhard(0.179, 32, 0.16).qf(T)]))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["predict", "--experiment", "dresden-ii", "--qf", "fef", "--qf-table", str(tmp_path / "qf.txt"),
                 "--json", str(a)]) == 0
    assert main(["predict", "--experiment", "dresden-ii", "--qf", "ybe", "--json", str(b)]) == 0
    ta, tb = json.loads(a.read_text())["total_counts"], json.loads(b.read_text())["total_counts"]
    assert ta == pytest.approx(tb, rel=2e-3)


def test_combines_with_coherent_by_parameter_name():
    """The Dresden-II Asimov set and COHERENT CsI: one model, μ_ν shared by name, the reactor's nuisances its own; the
    combined 90 % CL limit is below either alone. CONUS-like and Dresden-II share the spectral nuisance."""
    from cevns.inference.scan import ModelRecipe, scan, upper_limit

    axes = {"mu_nu_e": np.linspace(0.0, 40.0, 81)}
    lims = {}
    for exps in (("dresden-ii",), ("coherent-csi-2021",), ("coherent-csi-2021", "dresden-ii")):
        res = scan(ModelRecipe(exps, ("mu_nu_e",)), axes, progress=False)
        lims[exps] = upper_limit(axes["mu_nu_e"], res.delta_chi2)
    assert lims[("coherent-csi-2021", "dresden-ii")] <= min(lims[("dresden-ii",)], lims[("coherent-csi-2021",)])
    assert lims[("dresden-ii",)] < lims[("coherent-csi-2021",)]
    m = ModelRecipe(("dresden-ii", "conus-like"), ("mu_nu_e",)).build()
    names = [p.name for p in m.nuisances]
    assert names.count("reactor_spectrum_shape") == 1 and "dresden_lindhard_k" in names and "conus_lindhard_k" in names
    with pytest.raises(ConfigError):
        from cevns.commands.predict import sensitivity

        sensitivity(["dresden-ii"], axes, data="observed", exposure_scale=2.0)
