import numpy as np
import pytest

from cevns.errors import ConfigError, UnknownNameError
from cevns.inference import (BinnedPoissonLikelihood, Parameter, fit, interval_from_profile, poisson_chi2, profile_scan,
                             significance_from_delta_chi2)


def test_baker_cousins_identities():
    n = np.array([0.0, 3.0, 10.0])
    assert poisson_chi2(n + (n == 0) * 0.0, n) == pytest.approx(0.0)  # μ = n (the n = 0 bin contributes 2μ = 0)
    assert poisson_chi2(np.array([2.0]), np.array([0.0])) == pytest.approx(4.0)
    assert poisson_chi2(np.array([0.0]), np.array([1.0])) == float("inf")
    # large-count limit → Neyman/Pearson χ²
    assert poisson_chi2(np.array([1010.0]), np.array([1000.0])) == pytest.approx(0.1, rel=0.02)


def _toy_lik(name="a", sigma=0.1, scale=1.0):
    sig = np.array([5.0, 20.0, 5.0]) * scale
    bkg = np.array([10.0, 10.0, 10.0])
    obs = sig * 1.0 + bkg
    params = [Parameter("mu", 1.0, (0, 10), None, 0.1, "poi"), Parameter("b", 1.0, (0, 5), (1.0, sigma))]
    return BinnedPoissonLikelihood(name, params, lambda x: x[0] * sig + x[1] * bkg, obs)


def test_fit_recovers_asimov_and_profile_interval():
    lik = _toy_lik()
    r = fit(lik, start={"mu": 0.3})
    assert r.values["mu"] == pytest.approx(1.0, abs=5e-3) and r.chi2 == pytest.approx(0.0, abs=1e-4)
    xs = np.linspace(0.0, 2.5, 51)
    prof = profile_scan(lik, "mu", xs)
    lo, hi = interval_from_profile(xs, prof - prof.min(), 1.0)
    assert lo < 1.0 < hi
    assert (hi - lo) / 2 == pytest.approx(r.errors["mu"], rel=0.1)  # parabolic ≈ profile near the minimum
    z = significance_from_delta_chi2(fit(lik, fixed={"mu": 0.0}).chi2 - r.chi2)
    assert z > 3


def test_combination_shares_parameters_by_name():
    a, b = _toy_lik("a"), _toy_lik("b", scale=2.0)
    comb = a + b
    assert comb.parameter_names == ["mu", "b"]
    x = np.array([1.3, 0.9])
    assert comb.chi2(x) == pytest.approx(a.data_chi2(x) + b.data_chi2(x) + ((0.9 - 1) / 0.1) ** 2)
    with pytest.raises(ConfigError, match="shared parameter 'b'"):
        _toy_lik("a") + _toy_lik("c", sigma=0.2)


def test_unknown_parameter():
    with pytest.raises(UnknownNameError, match="parameter"):
        fit(_toy_lik(), fixed={"nope": 1.0})


def test_batch_poisson_chi2_equals_the_baker_cousins_sum_bin_by_bin():
    """Every row against 2 Σ [μ − n + n ln(n/μ)] written out per bin; μ ≤ 0 where n > 0 gives +inf, μ = 0 where
    n = 0 contributes nothing, for data given once (bins,) and per row (P, bins)."""
    from cevns.inference.batch import batch_poisson_chi2

    rng = np.random.default_rng(3)
    n = rng.poisson(2.0, 40).astype(float)
    n[:5] = 0.0
    mu = rng.uniform(0.2, 5.0, (6, 40))
    mu[1, 0] = 0.0  # n = 0: finite
    mu[2, 7 + np.argmax(n[7:] > 0)] = 0.0  # n > 0: +inf
    mu[3, 7 + np.argmax(n[7:] > 0)] = -1.0  # n > 0: +inf

    def direct(m, k):
        if np.any((m <= 0) & (k > 0)):
            return np.inf
        return 2.0 * sum(mi - ki + (ki * np.log(ki / mi) if ki > 0 else 0.0) for mi, ki in zip(m, k))

    want = [direct(m, n) for m in mu]
    assert np.isinf(want[2]) and np.isinf(want[3]) and np.isfinite(want[1])
    np.testing.assert_allclose(batch_poisson_chi2(mu, n), want, rtol=1e-12)
    np.testing.assert_allclose(batch_poisson_chi2(mu, np.tile(n, (6, 1))), want, rtol=1e-12)
