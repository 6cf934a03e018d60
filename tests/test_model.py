"""The one forward model: fit likelihood ≡ batched model, analytic Jacobians ≡ finite differences, the interpolation
code against HistFactory's formula, count normalisation, combination checks, and the spec sections' error paths."""
import copy

import numpy as np
import pytest

from cevns.errors import ConfigError
from cevns.experiments import load_experiment, load_spec
from cevns.inference.batch import CombinedModel, batch_poisson_chi2, profile_batch
from cevns.inference.likelihood import CombinedLikelihood, Parameter
from cevns.model import ForwardModel, GridModifier, TemplateSample, VariantGrid
from cevns.model.samples import FactorisedSample

EXPERIMENTS = ("coherent-csi-2017", "coherent-csi-2021", "coherent-ar-2020")
#: physics parameters with a range to draw from, covering every process
PHYSICS = {"sin2_theta_w": (0.15, 0.35), "eps_ee_uV": (-0.3, 0.3), "eps_emu_dV": (-0.3, 0.3), "mu_nu_mu": (0.0, 40.0),
           "g_zprime": (0.0, 3e-5), "m_zprime_MeV": (5.0, 200.0), "rn_Cs": (4.0, 6.5), "dm2_41_eV2": (0.5, 5.0),
           "Ue4_sq": (0.0, 0.3)}


@pytest.fixture(scope="module")
def exps():
    return {n: load_experiment(n) for n in EXPERIMENTS}


def _random_point(rng, model_params, n, avoid_kinks=False):
    """n points: constrained parameters within ±2σ of their means, free ones within their limits."""
    out = np.empty((n, len(model_params)))
    for j, p in enumerate(model_params):
        lo, hi = p.limits
        if p.constraint is not None:
            m, s = p.constraint
            v = m + s * rng.uniform(-2.0, 2.0, n)
        else:
            v = p.value * rng.uniform(0.3, 1.7, n) if p.value else rng.uniform(0.0, 1.0, n)
        out[:, j] = np.clip(v, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
    if avoid_kinks:
        out += rng.uniform(1e-5, 3e-5, out.shape)
    return out


def _phys(rng, n):
    return {k: rng.uniform(lo, hi, n) for k, (lo, hi) in PHYSICS.items()}


@pytest.mark.parametrize("combo", [("coherent-csi-2017",), ("coherent-csi-2021",), ("coherent-ar-2020",),
                                   ("coherent-csi-2021", "coherent-ar-2020"),
                                   ("coherent-csi-2017", "coherent-csi-2021", "coherent-ar-2020")])
def test_fit_likelihood_equals_batched_model(exps, combo):
    """χ² of the fit likelihood (P = 1, parameter vectors, θ cache, pulls) = χ² of the batched model at 50 points."""
    rng = np.random.default_rng(len(combo))
    names = tuple(PHYSICS)
    models = [exps[n].model("physics", names) for n in combo]
    comb = CombinedModel(models)
    liks = [exps[n].likelihood("physics", names) for n in combo]
    lik = liks[0] if len(liks) == 1 else CombinedLikelihood(liks)
    P = 50
    phys = _phys(rng, P)
    nu = _random_point(rng, comb.nuisances, P)
    # batched: each part's expectation, Baker–Cousins χ² summed, plus the pulls of the merged parameter list
    chi_b = np.zeros(P)
    for part, mp in zip(comb.parts, comb._maps):
        chi_b += batch_poisson_chi2(part.expected(part.prepare(phys), nu[:, mp]), part.observed)
    for j, q in enumerate(comb.nuisances):
        if q.constraint:
            chi_b += ((nu[:, j] - q.constraint[0]) / q.constraint[1]) ** 2
    for p in range(P):
        vals = {k: v[p] for k, v in phys.items()}
        vals.update({q.name: nu[p, j] for j, q in enumerate(comb.nuisances)})
        x = lik.x_from(vals)
        assert lik.chi2(x) == pytest.approx(chi_b[p], rel=1e-9)


def _model_points(exp, mode, seed, P, avoid_kinks=False):
    """(model in ``mode``, rng, P random nuisance points, the prepared state at P random physics points)."""
    if mode not in exp.modes:
        pytest.skip("mode needs a predicted signal")
    physics = tuple(PHYSICS) if mode == "physics" else ()
    m = exp.model(mode, physics)
    rng = np.random.default_rng(seed)
    nu = _random_point(rng, m.nuisances, P, avoid_kinks=avoid_kinks)
    return m, rng, nu, m.prepare(_phys(rng, P) if physics else {})


@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.parametrize("mode", ["counts", "xsec_scale", "physics", "flavour"])
def test_analytic_jacobian_equals_central_differences(exps, name, mode):
    m, rng, nu, st = _model_points(exps[name], mode, 11, 5, avoid_kinks=True)
    mu, J = m.value_and_jacobian(st, nu, dtype=float)
    assert np.allclose(mu, m.expected(st, nu), rtol=1e-13)
    for j, p in enumerate(m.nuisances):
        h = 1e-7 * max(1.0, abs(p.value))
        up, dn = nu.copy(), nu.copy()
        up[:, j] += h
        dn[:, j] -= h
        fd = (m.expected(st, up) - m.expected(st, dn)) / (2 * h)
        scale = np.abs(fd).max() + 1e-9
        assert np.abs(J[:, j] - fd).max() <= 1e-5 * scale, p.name


def _jacobian_contracted(m, st, nu, w):
    mu, J = m.value_and_jacobian(st, nu, dtype=float)
    return mu, np.einsum("pkb,pb->pk", J, w)


@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.parametrize("mode", ["counts", "xsec_scale", "physics", "flavour"])
def test_gradient_path_equals_jacobian_contracted(exps, name, mode):
    """The Jacobian-free gradient (∂μ/∂ν contracted with bin weights through the factored derivative blocks) equals
    the materialised Jacobian contracted, in every mode (count normalisation, flavour scales, morphing, physics)."""
    m, rng, nu, st = _model_points(exps[name], mode, 12, 6)
    w = rng.normal(size=(6, m.observed.size))
    mu_g, g = m.value_and_gradient(st, nu, lambda mu: w)
    mu_j, gj = _jacobian_contracted(m, st, nu, w)
    assert np.allclose(mu_g, mu_j, rtol=1e-13)
    assert np.allclose(g, gj, rtol=1e-10, atol=1e-10 * np.abs(gj).max())


def test_gradient_path_of_a_factorised_sample_with_every_modifier():
    """A synthetic factorised sample with group scales, fixed energy and time variants, a bin mask and a free count:
    the factored gradient equals the Jacobian contracted, and the Jacobian equals finite differences."""
    rng = np.random.default_rng(3)
    n_e, n_t = 4, 5
    energy = rng.uniform(1.0, 2.0, (3, n_e))
    time = rng.uniform(0.5, 1.5, (2, n_t))
    ev = np.stack([energy * (1 + 0.1 * k * np.linspace(-1, 1, n_e)) for k in (-1, 0, 1)])  # shape changes, not only
    tv = np.stack([time * (1 - 0.05 * k * np.linspace(-1, 1, n_t)) for k in (-1, 0, 1)])  # the normalisation
    mask = np.ones((n_e, n_t), bool)
    mask[0, :2] = False
    s = FactorisedSample("s", n_e, n_t, time, group_time=np.array([0, 1, 1]), energy=energy,
                         energy_mods=[GridModifier(1, VariantGrid([-1, 0, 1], 0.0), ev)],
                         time_mods=[GridModifier(2, VariantGrid([-1, 0, 1], 0.0), tv)],
                         norms=[0], group_norms=np.array([-1, 3, 4]), count=5, mask=mask)
    params = [Parameter(n, v, constraint=None) for n, v in
              [("a", 1.1), ("e", 0.3), ("t", -0.4), ("g1", 0.9), ("g2", 1.2), ("n", 50.0)]]
    m = ForwardModel("synthetic", (), params, np.ones(s.n_bins), [s])
    P = 4
    nu = np.tile([p.value for p in params], (P, 1)) + rng.uniform(-0.2, 0.2, (P, len(params)))
    w = rng.normal(size=(P, s.n_bins))
    _, g = m.value_and_gradient([None], nu, lambda mu: w)
    mu, gj = _jacobian_contracted(m, [None], nu, w)
    assert np.allclose(g, gj, rtol=1e-11)
    _, J = m.value_and_jacobian([None], nu, dtype=float)
    for j in range(len(params)):
        up, dn = nu.copy(), nu.copy()
        up[:, j] += 1e-6
        dn[:, j] -= 1e-6
        fd = (m.expected([None], up) - m.expected([None], dn)) / 2e-6
        assert np.abs(fd).max() > 1e-3  # every parameter acts
        assert np.allclose(J[:, j], fd, rtol=1e-6, atol=1e-8 * np.abs(fd).max())


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_single_point_path_equals_batch(exps, name):
    m = exps[name].model("physics", ("sin2_theta_w", "eps_ee_uV"))
    rng = np.random.default_rng(5)
    nu = _random_point(rng, m.nuisances, 6)
    phys = {"sin2_theta_w": rng.uniform(0.1, 0.4, 6), "eps_ee_uV": rng.uniform(-0.3, 0.3, 6)}
    st = m.prepare(phys)
    mu = m.expected(st, nu)
    for p in range(6):
        assert np.allclose(m.expected1(m.take_state(st, np.array([p])), nu[p]), mu[p], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.parametrize("mode", ["counts", "xsec_scale"])
def test_single_point_path_equals_batch_in_count_modes(exps, name, mode):
    """The P = 1 path (fits) against the batch path in the modes with a free count or a cross-section scale (the
    count normalisation n/Σ shape is computed separately in each path)."""
    m = exps[name].model(mode)
    rng = np.random.default_rng(8)
    nu = _random_point(rng, m.nuisances, 4)
    st = m.prepare({})
    mu = m.expected(st, nu)
    for p in range(4):
        assert np.allclose(m.expected1(m.take_state(st, np.array([p])), nu[p]), mu[p], rtol=1e-12, atol=1e-14)


def test_interpolation_is_histfactory_code0():
    """Grid {−1, 0, +1}: T₀ + θ(T₊ − T₀) for θ ≥ 0, T₀ + θ(T₀ − T₋) for θ < 0, linear beyond ±1 (CERN-OPEN-2012-016
    Eq. (8)), written out here independently of the implementation."""
    t0, tp, tm = np.array([10.0, 5.0, 1.0]), np.array([12.0, 4.0, 1.5]), np.array([9.0, 5.5, 0.2])
    mod = GridModifier(1, VariantGrid([-1, 0, 1], 0.0), np.stack([tm, t0, tp]))
    s = TemplateSample("t", t0, [mod], norms=[0])
    for th in (-3.0, -1.0, -0.4, 0.0, 0.3, 1.0, 2.5):
        want = t0 + (th * (tp - t0) if th >= 0 else th * (t0 - tm))
        got = s.evaluate(None, np.array([[2.0, th]]))[0]
        assert np.allclose(got, 2.0 * np.maximum(want, 0.0))


def test_interpolation_fine_grid_and_additivity():
    g1 = VariantGrid([0.0, 0.5, 1.0, 2.0], 0.5)
    g2 = VariantGrid([-1.0, 0.0, 1.0], 0.0)
    v1 = np.array([[1.0, 0.0], [2.0, 1.0], [4.0, 2.0], [5.0, 6.0]])
    v2 = np.array([[1.5, 1.0], [2.0, 1.0], [3.0, 0.0]])
    s = TemplateSample("t", v1[1], [GridModifier(0, g1, v1), GridModifier(1, g2, v2)])
    x = np.array([[1.5, -0.5]])
    # (1) piecewise linear in ν₀ between 1.0 and 2.0, (2) ν₁ adds its own shift from the nominal, one at a time
    want = (v1[2] + 0.5 * (v1[3] - v1[2])) + (0.5 * (v2[0] - v2[1]))
    assert np.allclose(s.evaluate(None, x)[0], np.maximum(want, 0))


def test_count_normalisation():
    t0 = np.array([1.0, 3.0])
    s = TemplateSample("t", t0, [GridModifier(1, VariantGrid([-1, 0, 1], 0.0), np.stack([t0 * 0.5, t0, t0 * 2]))],
                       count=0)
    for th in (-0.7, 0.0, 0.6):
        mu = s.evaluate(None, np.array([[40.0, th]]))[0]
        assert mu.sum() == pytest.approx(40.0)  # the free count is the events in the model's bins, whatever the shape


def test_factorised_sample_is_an_outer_product():
    A = np.array([[1.0, 2.0, 0.5], [0.2, 0.1, 3.0]])
    B = np.array([[0.5, 0.5], [0.1, 0.9]])
    s = FactorisedSample("s", 3, 2, B, [0, 1], energy=A, norms=[0])
    mu = s.evaluate(None, np.array([[1.5]]))[0].reshape(3, 2)
    assert np.allclose(mu, 1.5 * (np.outer(A[0], B[0]) + np.outer(A[1], B[1])))


def test_shared_parameter_must_agree(exps):
    a = exps["coherent-csi-2021"].model("physics", ("sin2_theta_w",))
    fake = ForwardModel("other", ("sin2_theta_w",), [Parameter("sns_flux_norm", 1.0, (0.3, 2.0), (1.0, 0.2))],
                        np.ones(1), [TemplateSample("s", np.ones(1), norms=[0])])
    with pytest.raises(ConfigError, match="sns_flux_norm.*different constraints"):
        CombinedModel([a, fake])
    fake2 = ForwardModel("other", ("sin2_theta_w",), [Parameter("sns_flux_norm", 1.0, (0.0, 3.0), (1.0, 0.1))],
                         np.ones(1), [TemplateSample("s", np.ones(1), norms=[0])])
    with pytest.raises(ConfigError, match="sns_flux_norm.*different limits"):
        CombinedModel([a, fake2])
    with pytest.raises(ConfigError, match="more than once"):
        CombinedModel([a, a])


def test_shared_flux_is_defined_once(exps):
    defs = {n: next(p for p in exps[n].model("physics").nuisances if p.name == "sns_flux_norm") for n in EXPERIMENTS}
    assert len({(d.constraint, d.limits) for d in defs.values()}) == 1
    spec = load_spec("coherent-csi-2021")
    spec["nuisances"]["sns_flux_norm"] = {"type": "normsys", "sigma": 0.2}
    with pytest.raises(ConfigError, match="shared parameter"):
        load_experiment(spec)


def test_batched_profile_reaches_the_minimum_of_each_point(exps):
    """profile_batch minimises every point: χ² at its ν̂ is not above a few random feasible starts' profiles."""
    m = exps["coherent-csi-2021"].model("physics", ("sin2_theta_w",))
    s2 = np.array([0.15, 0.22, 0.3])
    chi, nu = profile_batch(m, {"sin2_theta_w": s2}, n_iter=30)
    st = m.prepare({"sin2_theta_w": s2})
    direct = batch_poisson_chi2(m.expected(st, nu), m.observed)
    for j, q in enumerate(m.nuisances):
        if q.constraint:
            direct += ((nu[:, j] - q.constraint[0]) / q.constraint[1]) ** 2
    assert np.allclose(chi, direct, rtol=1e-12)
    from cevns.inference import fit

    lik = exps["coherent-csi-2021"].likelihood("physics", ("sin2_theta_w",))
    for k, v in enumerate(s2):
        ref = fit(lik, fixed={"sin2_theta_w": float(v)})
        assert chi[k] <= ref.chi2 + 0.05


def test_spec_section_errors():
    base = load_spec("coherent-csi-2021")
    cases = [
        (lambda s: s["binning"]["axes"][0].update(edges=[0, 10, 5, 60]), "strictly increasing"),
        (lambda s: s["binning"].update(roi={"pe": [30, 6]}), "lo < hi"),
        (lambda s: s["detector"]["quenching"].update(model="lindhardt"), "quenching"),
        (lambda s: s["source"].update(type="beta_beam"), "unknown source type"),  # ('reactor' exists since issue 11)
        (lambda s: s["nuisances"].update(csi21_typo={"type": "normsys", "sigma": 0.1}), "declared but no sample uses"),
        (lambda s: s["backgrounds"]["brn"].update(modifiers=["csi21_brn_nrom"]), "not declared"),
        (lambda s: s["signal"]["modifiers"].append({"name": "csi21_ff_norm", "modes": ["physic"]}), "physic"),
        (lambda s: s["target"].update(coupling_scheme="pdg"), "coupling_scheme"),
        (lambda s: s["data"].pop("observed"), "observed"),
    ]
    for change, msg in cases:
        spec = copy.deepcopy(base)
        change(spec)
        with pytest.raises(ConfigError, match=msg):
            load_experiment(spec)


def test_low_rank_fold_equals_the_direct_product():
    """The signal fold w @ M through a row basis (weights spanning few functions of the recoil energy) equals the
    direct product for rank-1, rank-3 and full-rank (fallback) batches, and the NSI signal equals the direct fold."""
    import cevns.model.signal as sig_mod

    rng = np.random.default_rng(2)
    M = rng.normal(size=(96, 375))
    U = rng.normal(size=(3, 96))
    for w in (rng.normal(size=(40, 1)) * U[:1], rng.normal(size=(40, 3)) @ U, rng.normal(size=(40, 96))):
        assert np.allclose(sig_mod._fold(w, M), w @ M, rtol=1e-11, atol=1e-11 * np.abs(w @ M).max())
    assert sig_mod._row_basis(rng.normal(size=(3, 2)) @ U[:2]).shape == (2, 96)
    assert sig_mod._row_basis(rng.normal(size=(40, 96))) is None
    exp = load_experiment("coherent-csi-2021")
    # with sin²θ_W every weight varies (all folds factored); under quark NSI alone the ν_μ and electron weights do
    # not (folded once, shared by all points)
    for names in (("eps_ee_uV", "eps_ee_dV", "sin2_theta_w"), ("eps_ee_uV", "eps_ee_dV")):
        m = exp.model("physics", names)
        phys = {"eps_ee_uV": rng.uniform(-0.5, 0.7, 64), "eps_ee_dV": rng.uniform(-0.5, 0.7, 64),
                "sin2_theta_w": rng.uniform(0.2, 0.26, 64)}
        phys = {k: v for k, v in phys.items() if k in names}
        A, Vs = m.samples[0].physics(phys)
        factors = sig_mod._fold_factors
        try:
            sig_mod._fold_factors = lambda w, M_: (np.broadcast_to(w, (64, w.shape[1])), M_)  # every fold direct
            A_ref, Vs_ref = m.samples[0].physics(phys)
        finally:
            sig_mod._fold_factors = factors
        assert np.allclose(A, A_ref, rtol=1e-12, atol=1e-12 * np.abs(A_ref).max())
        for (o, sg), (o_r, sg_r) in zip(Vs, Vs_ref):
            assert np.allclose(o, o_r, rtol=1e-10, atol=1e-12 * np.abs(A_ref).max())


def test_morph_state_equals_differences_of_the_response_settings():
    """The state of a predicted signal (nominal, offsets V_j,k − V_nominal and segments V_j,k+1 − V_j,k, folded
    through difference matrices in one product) against the spectra of every response setting (all_settings),
    differenced here, for a batch of NSI points on CsI 2021 (quenching and efficiency grids)."""
    rng = np.random.default_rng(5)
    m = load_experiment("coherent-csi-2021").model("physics", ("eps_ee_uV", "eps_ee_dV"))
    sig = m.samples[0].physics
    phys = {"eps_ee_uV": rng.uniform(-0.5, 0.7, 32), "eps_ee_dV": rng.uniform(-0.5, 0.7, 32)}
    A0, Vs = sig(phys)
    allv = sig.all_settings(phys)  # (P, V, G, n_E)
    scale = np.abs(allv).max()
    assert len(Vs) == len(sig.response.modifiers) >= 3
    np.testing.assert_allclose(A0, allv[:, 0], rtol=0, atol=1e-12 * scale)
    for (off, seg), (_, grid, settings) in zip(Vs, sig.response.modifiers):
        V = allv[:, settings].transpose(0, 2, 1, 3)  # (P, G, n_j, n_E)
        assert off.shape == V.shape and seg.shape == (V.shape[0], V.shape[1], V.shape[2] - 1, V.shape[3])
        np.testing.assert_allclose(off, V - A0[:, :, None], rtol=0, atol=1e-12 * scale)
        np.testing.assert_allclose(seg, np.diff(V, axis=2), rtol=0, atol=1e-12 * scale)
        assert np.abs(off[:, :, grid.nominal_index]).max() == 0.0  # the nominal offset is exactly zero
    # terms every point shares are folded once and kept: a second call, and a fresh signal, give the same state
    A1, Vs1 = sig(phys)
    A2, Vs2 = sig.with_response(sig.response)(phys)
    assert np.array_equal(A1, A0) and np.array_equal(A2, A0)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(Vs1 + Vs2, Vs + Vs))
    # a batch whose points all share their θ (rows equal within the batch, not between batches): each batch its own
    for u in (0.3, -0.2):
        same = {"eps_ee_uV": np.full(8, u), "eps_ee_dV": np.full(8, 0.1)}
        kept, fresh = sig(same), sig.with_response(sig.response)(same)
        assert np.array_equal(kept[0], fresh[0]) and np.array_equal(kept[1][0][0], fresh[1][0][0])


@pytest.mark.parametrize("with_state", [False, True])
def test_template_morphed_below_zero_is_clipped_with_its_derivatives(with_state):
    """μ = c · max(T(ν), 0) · r: a variant that drives bins negative gives μ = 0 there and a zero derivative; the other
    bins' derivatives equal central differences; the gradient path equals the Jacobian contracted. Checked with
    and without a physics ratio r, at points where no bin is clipped and where some are (both code paths)."""
    from cevns.model.samples import GradientAccumulator, JacobianAccumulator

    t0 = np.array([4.0, 1.0, 0.5, 2.0, 0.2])
    up = np.array([5.0, 1.5, -1.0, 2.5, -0.4])  # bins 2 and 4 go below zero for ν ≳ 0.33
    down = np.array([3.0, 0.6, 0.7, 1.0, 0.3])
    ratio = np.array([[1.0, 0.9, 1.2, 1.1, 0.8], [0.7, 1.3, 1.0, 0.95, 1.05], [1.0, 1.0, 1.5, 0.5, 2.0]])
    s = TemplateSample("t", t0, [GridModifier(1, VariantGrid([-1.0, 0.0, 1.0], 0.0), np.stack([down, t0, up]))],
                       norms=[0], physics=(lambda phys: ratio) if with_state else None)
    nu = np.array([[2.0, 0.1], [1.5, 0.6], [0.8, -0.4]])  # the second point is clipped in bins 2 and 4
    st = s.prepare({}) if with_state else None
    r = ratio if with_state else 1.0
    T = np.where(nu[:, 1:2] >= 0, t0 + nu[:, 1:2] * (up - t0), t0 + nu[:, 1:2] * (t0 - down))  # HistFactory code 0
    assert np.any(T < 0) and np.all(T[[0, 2]] > 0)
    mu_ref = nu[:, :1] * np.maximum(T, 0.0) * r
    J = JacobianAccumulator(3, 2, 5, dtype=np.float64)
    mu = s.evaluate(st, nu, J)
    assert np.allclose(mu, mu_ref, rtol=1e-13, atol=1e-15)
    jac = J.result()
    h = 1e-6
    for k in range(2):
        dp, dm = nu.copy(), nu.copy()
        dp[:, k] += h
        dm[:, k] -= h
        fd = (s.evaluate(st, dp) - s.evaluate(st, dm)) / (2 * h)
        assert np.allclose(jac[:, k], fd, rtol=1e-6, atol=1e-9), k
    assert np.all(jac[1, 1, [2, 4]] == 0.0) and np.all(mu[1, [2, 4]] == 0.0)
    w = np.random.default_rng(2).normal(size=(3, 5))
    G = GradientAccumulator(3, 2)
    s.evaluate(st, nu, G)
    assert np.allclose(G.contract(w), np.einsum("pkb,pb->pk", jac, w), rtol=1e-12, atol=1e-14)
