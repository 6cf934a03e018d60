"""Property test: for random profiles with several minima, the reported confidence set equals a brute-force reading of
the grid (every grid point below the level is inside, every point above is outside, and between grid points the set
follows the linear interpolation of Δχ², read here on a 50× finer grid)."""
import numpy as np
from hypothesis import given, settings, strategies as st

from cevns.inference.intervals import confidence_set

wells = st.lists(st.tuples(st.floats(-5, 5), st.floats(0.05, 20), st.floats(0, 6)), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(wells=wells, n=st.integers(2, 80), level=st.sampled_from([1.0, 2.296, 2.706, 3.841, 4.605]),
       lo=st.floats(-6, -0.5), width=st.floats(1.0, 12.0))
def test_confidence_set_equals_brute_force(wells, n, level, lo, width):
    x = np.linspace(lo, lo + width, n)
    chi2 = np.min([a * (x - c) ** 2 + b for c, a, b in wells], axis=0)  # several parabolic minima
    d = chi2 - chi2.min()
    cs = confidence_set(x, d, level)

    # the grid points themselves (away from the level by a hair, where rounding could decide either way)
    clear = np.abs(d - level) > 1e-9
    inside = np.array([cs.contains(v) for v in x])
    assert np.array_equal(inside[clear], (d <= level)[clear])

    # a 50× finer reading of the linearly interpolated profile
    xf = np.linspace(x[0], x[-1], 50 * (n - 1) + 1)
    df = np.interp(xf, x, d)
    clear_f = np.abs(df - level) > 1e-7 * max(1.0, level)
    inside_f = np.array([cs.contains(v) for v in xf])
    assert np.array_equal(inside_f[clear_f], (df <= level)[clear_f])

    # one reported interval per run of inside grid points (+ segments dipping below the level between two outside
    # grid points cannot happen for a piecewise-linear profile), increasing and disjoint
    runs = np.count_nonzero(np.diff(np.r_[0, (d <= level).astype(int), 0]) == 1)
    assert len(cs.intervals) == runs
    flat = [v for iv in cs.intervals for v in iv]
    assert all(a <= b for a, b in zip(flat, flat[1:]))
    assert cs.open_low == bool(d[0] <= level) and cs.open_high == bool(d[-1] <= level)
