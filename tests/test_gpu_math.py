"""nbnumba.gpu_math against glibc (Python's math), run on the CPU.

The functions replace libdevice's in the parity GPU build; here they are plain numba
code. Every result must be within 1 ulp of glibc's (which is correctly rounded for these
functions, so within 1 ulp means faithfully rounded), special values must match exactly
(sign of zero included), and the fraction of results not identical to glibc's is bounded
by what was measured (docs/performance.md).
"""
import math

import numba
import numpy as np
import pytest

from nbnumba import gpu_math

N = 20000
SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 0.5, np.pi, -np.pi / 2, 5e-324, -5e-324,
                    2.2250738585072014e-308, 1e-300, 1.7976931348623157e308,
                    -1.7976931348623157e308, np.inf, -np.inf, np.nan])


@numba.njit
def _apply1(function, xs):
    out = np.empty_like(xs)
    for i in range(xs.size):
        out[i] = function(xs[i])
    return out


@numba.njit
def _apply2(function, ys, xs):
    out = np.empty_like(xs)
    for i in range(xs.size):
        out[i] = function(ys[i], xs[i])
    return out


def _glibc(function, *args):
    try:
        return function(*args)
    except OverflowError:  # math.exp raises where glibc returns inf
        return math.inf
    except ValueError:     # math.sin/cos raise where glibc returns NaN
        return math.nan


def ulp_distance(a, b):
    """Distance in units in the last place between float64 arrays (0 for equal values,
    NaN and NaN; signed zeros count as distinct, 1 apart)."""
    def ordered(v):
        i = v.view(np.int64)
        return np.where(i < 0, np.int64(-2**63) - i, i)
    same = (a.view(np.int64) == b.view(np.int64)) | (np.isnan(a) & np.isnan(b))
    return np.where(same, 0, np.abs(ordered(a) - ordered(b)))


def compare(ours, reference):
    """(max ulp distance, fraction of results not identical)."""
    d = ulp_distance(np.asarray(ours), np.asarray(reference))
    return int(d.max()), float((d > 0).mean())


def _log_uniform(rng, lo, hi, n):
    """n numbers of random sign with log-uniform magnitude in [lo, hi)."""
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return sign * np.exp(rng.uniform(np.log(lo), np.log(hi), n))


TRIG_RANGES = [(1e-8, 10.0), (10.0, 1.6e6), (1.6e6, 1e15), (1e15, 1e300)]


@pytest.mark.parametrize("name", ["sin", "cos"])
@pytest.mark.parametrize("lo, hi", TRIG_RANGES, ids=lambda v: f"{v:g}")
def test_sin_cos_faithful(name, lo, hi):
    x = _log_uniform(np.random.default_rng(11), lo, hi, N)
    ours = _apply1(getattr(gpu_math, name), x)
    worst, differing = compare(ours, [getattr(math, name)(v) for v in x])
    assert worst <= 1
    assert differing < 0.05


def test_sin_cos_known_hard_arguments():
    # near multiples of pi/2: the reduction must keep the small remainder's bits
    x = np.array([1.5707963267948966, 3.141592653589793, 6.283185307179586, 1e22,
                  2.5e15, 1.7976931348623157e308, 1.6e6, -1.6e6, 1599999.9999999998])
    for name in ("sin", "cos"):
        ours = _apply1(getattr(gpu_math, name), x)
        assert compare(ours, [getattr(math, name)(v) for v in x])[0] <= 1


def test_cos_of_the_double_closest_to_a_multiple_of_pi_over_2():
    # x = 6381956970095103 * 2**797 is within 4.7e-19 of a multiple of pi/2 (Muller,
    # "Elementary Functions"): cos(x) = -4.68716592425462761e-19. (glibc's cos is 8 ulp
    # off here; the exact value is checked instead.)
    x = np.array([6381956970095103 * 2.0**797])
    assert _apply1(gpu_math.cos, x)[0] == -4.68716592425462761e-19
    assert _apply1(gpu_math.sin, x)[0] == 1.0


def test_exp_faithful():
    rng = np.random.default_rng(12)
    x = np.concatenate([rng.uniform(-745.1, 709.78, N), rng.uniform(-30.0, 30.0, N),
                        rng.uniform(-745.1, -708.0, N),  # subnormal results
                        _log_uniform(rng, 1e-300, 1e-3, N)])
    worst, differing = compare(_apply1(gpu_math.exp, x), [math.exp(v) for v in x])
    assert worst <= 1
    assert differing < 0.08


def test_atan2_faithful():
    rng = np.random.default_rng(13)
    for scale in (20.0, 700.0):
        y = rng.standard_normal(N) * np.exp(rng.uniform(-scale, scale, N))
        x = rng.standard_normal(N) * np.exp(rng.uniform(-scale, scale, N))
        ours = _apply2(gpu_math.atan2, y, x)
        worst, differing = compare(ours, [math.atan2(a, b) for a, b in zip(y, x)])
        assert worst <= 1
        assert differing < 0.005


@pytest.mark.parametrize("name", ["sin", "cos", "exp"])
def test_special_values_as_glibc(name):
    ours = _apply1(getattr(gpu_math, name), SPECIAL)
    reference = np.array([_glibc(getattr(math, name), v) for v in SPECIAL])
    exact = np.isnan(SPECIAL) | np.isinf(SPECIAL) | (SPECIAL == 0.0)
    assert compare(ours[exact], reference[exact]) == (0, 0.0)
    assert compare(ours, reference)[0] <= 1


def test_atan2_special_values_as_glibc():
    y, x = (v.ravel() for v in np.meshgrid(SPECIAL, SPECIAL))
    ours = _apply2(gpu_math.atan2, y, x)
    reference = np.array([math.atan2(a, b) for a, b in zip(y, x)])
    assert compare(ours, reference) == (0, 0.0)  # zeros' signs, infinities, NaN included
