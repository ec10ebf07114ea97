"""sin, cos, exp and atan2 in plain IEEE arithmetic, for the parity GPU build.

libdevice's versions of these functions (which libNVVM inlines into the kernel) are built
on fused multiply-adds and are not glibc's. The parity CUDA build calls these instead
(see ``nbnumba.kernels.cuda``): they use only ``+ - * /`` and the exact ``floor``, so with
contraction off the GPU evaluates them operation for operation as the CPU would. They
are faithfully rounded (within 1 ulp of the exact result, hence of glibc's correctly
rounded one) for every finite argument; NaN and infinite arguments give what glibc
gives. The CPU kernel keeps calling glibc.

All arguments and results are float64 (angles in radians).
"""
import math

import numpy as np

from . import _jit
from .physics import _ROUNDER, FAST_TRIG_LIMIT, _sin_cos_reduced, cody_waite_reduce

_SPLITTER = 134217729.0                 # 2**27 + 1 (Veltkamp split into 26 + 27 bits)
_PIO2_HI = 1.5707963267948966           # pi/2 as a double-double
_PIO2_LO = 6.123233995736766e-17
_PI_HI = 3.141592653589793              # pi as a double-double
_PI_LO = 1.2246467991473532e-16


def _two_over_pi_chunks(count):
    """2/pi in 24-bit pieces: piece i is its bits 24 i + 1 ... 24 (i + 1) after the point,
    as a float64 integer (< 2**24). Computed exactly with Python integers (Machin's
    formula for pi with guard bits)."""
    bits = 24 * count + 64

    def arctan_inverse(n):  # atan(1/n) * 2**bits
        total, term, k, sign = 0, (1 << bits) // n, 1, 1
        while term:
            total += sign * (term // k)
            term //= n * n
            k += 2
            sign = -sign
        return total

    pi_scaled = 16 * arctan_inverse(5) - 4 * arctan_inverse(239)  # pi * 2**bits
    two_over_pi = (2 << (2 * bits)) // pi_scaled                   # 2/pi * 2**bits
    return np.array([float((two_over_pi >> (bits - 24 * (i + 1))) & 0xFFFFFF)
                     for i in range(count)])


#: 2/pi to 1344 bits (arguments up to 2**1024 need 1024 + about 150)
_TWO_OVER_PI_CHUNKS = _two_over_pi_chunks(56)


@_jit.inline
def _two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@_jit.inline
def _two_product(a, b):
    """(p, e) with p = fl(a b) and p + e = a b exactly (Dekker; |a|, |b| < 2**995 and
    a b far from underflow)."""
    p = a * b
    c = _SPLITTER * a
    a_hi = c - (c - a)
    a_lo = a - a_hi
    c = _SPLITTER * b
    b_hi = c - (c - b)
    b_lo = b - b_hi
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


@_jit.inline
def _pow2(k):
    """2**k as a float64, exactly, for integer -1022 <= k <= 1023."""
    base = 2.0 if k >= 0 else 0.5
    n = k if k >= 0 else -k
    result = 1.0
    while n:
        if n & 1:
            result *= base
        base *= base
        n >>= 1
    return result


@_jit.inline
def _floor_nonnegative(x):
    """floor(x) as a float64 for x >= 0, exactly, without a conversion to an integer."""
    if x >= 4503599627370496.0:  # 2**52: already an integer
        return x
    r = (x + 4503599627370496.0) - 4503599627370496.0
    return r - 1.0 if r > x else r


@_jit.inline
def _add_term(p, quadrant, hi, mid, lo):
    """Add p >= 0 to the sum quadrant + hi + mid + lo, where quadrant is the integer part
    kept modulo 4 and hi + mid + lo the fraction as a triple-double (the fraction can be
    far smaller than its parts, so their sum must carry about 150 bits)."""
    n = _floor_nonnegative(p)
    quadrant += n - 4.0 * _floor_nonnegative(n * 0.25)  # n mod 4, exactly
    quadrant -= 4.0 * _floor_nonnegative(quadrant * 0.25)
    hi, e = _two_sum(hi, p - n)  # p - n: exact, in [0, 1)
    mid, e = _two_sum(mid, e)
    return quadrant, hi, mid, lo + e


@_jit.inline
def _reduce_large(x):
    """(r, rr, q): x = (q + (r + rr) / (pi/2)) mod 4 turns, |r| <= pi/4 about, for
    |x| >= FAST_TRIG_LIMIT (Payne-Hanek: the product x 2/pi is formed from exact partial
    products whose multiples of 4 are dropped; the fraction is kept as a double-double)."""
    ax = x if x > 0.0 else -x
    # ax = xs * 2**(24 j), 2**-3 <= xs < 2**21
    xs = ax
    j = 0
    while xs >= 2097152.0:
        xs *= 5.9604644775390625e-08  # 2**-24
        j += 1
    # xs in three non-negative parts of at most 26 bits (bits 2**20..2**-5,
    # 2**-6..2**-29, 2**-30..2**-55), so that every partial product is exact
    x_1 = _floor_nonnegative(xs * 32.0) * 0.03125
    rest = xs - x_1
    x_2 = _floor_nonnegative(rest * 536870912.0) * 1.862645149230957e-09
    x_3 = rest - x_2
    quadrant = 0.0
    hi = 0.0
    mid = 0.0
    lo = 0.0
    for i in range(max(j - 3, 0), j + 8):
        scale = _pow2(24 * (j - i - 1))
        chunk = _TWO_OVER_PI_CHUNKS[i]
        # each product is exact (26 + 24 bits, times a power of 2)
        quadrant, hi, mid, lo = _add_term(x_1 * chunk * scale, quadrant, hi, mid, lo)
        quadrant, hi, mid, lo = _add_term(x_2 * chunk * scale, quadrant, hi, mid, lo)
        quadrant, hi, mid, lo = _add_term(x_3 * chunk * scale, quadrant, hi, mid, lo)
    n = _floor_nonnegative(hi)
    quadrant += n
    hi -= n  # exact
    if hi + mid > 0.5:
        quadrant += 1.0
        hi -= 1.0  # exact
    hi, e = _two_sum(hi, mid)  # the cancellation happens here, exactly
    hi, lo = _two_sum(hi, e + lo)
    r, e = _two_product(hi, _PIO2_HI)
    e += hi * _PIO2_LO + lo * _PIO2_HI
    r, rr = _two_sum(r, e)
    q = int(quadrant) & 3
    if x < 0.0:
        return -r, -rr, (4 - q) & 3
    return r, rr, q


@_jit.inline
def _reduce(x):
    """(r, rr, q) with x = q pi/2 + r + rr (mod 2 pi), |r| <= pi/4 about."""
    if x >= FAST_TRIG_LIMIT or x <= -FAST_TRIG_LIMIT:
        return _reduce_large(x)
    return cody_waite_reduce(x)


@_jit.scalar
def sin(x):
    """sin(x) for x in radians, faithfully rounded for every finite x; NaN for NaN, inf."""
    if not (-math.inf < x < math.inf):
        return x - x
    if x == 0.0:  # keeps the sign of zero
        return x
    r, rr, q = _reduce(x)
    return _sin_cos_reduced(r, rr, q)


@_jit.scalar
def cos(x):
    """cos(x) for x in radians, faithfully rounded for every finite x; NaN for NaN, inf."""
    if not (-math.inf < x < math.inf):
        return x - x
    r, rr, q = _reduce(x)
    return _sin_cos_reduced(r, rr, q + 1)


# exp: x = k ln2 + r, |r| <= ln2/2; e**r from a rational form of a minimax fit of
# r (e**r + 1)/(e**r - 1) in r*r (the classic one, error below 2**-59).
_LN2_HI = 6.93147180369123816490e-01    # ln 2, 32 bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_P1, _P2 = 1.66666666666666019037e-01, -2.77777777770155933842e-03
_P3, _P4 = 6.61375632143793436117e-05, -1.65339022054652515390e-06
_P5 = 4.13813679705723846039e-08
_EXP_OVERFLOW = 7.09782712893383973096e+02    # exp(x) > DBL_MAX above
_EXP_UNDERFLOW = -7.45133219101941108420e+02  # exp(x) < DBL_TRUE_MIN/2 below


@_jit.scalar
def exp(x):
    """e**x, faithfully rounded (to the nearest subnormal below 2**-1022); inf above
    709.78, 0 below -745.13, NaN for NaN."""
    if x != x:
        return x
    if x > _EXP_OVERFLOW:
        return math.inf
    if x < _EXP_UNDERFLOW:
        return 0.0
    k = (x * _INV_LN2 + _ROUNDER) - _ROUNDER
    hi = x - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    z = r * r
    c = r - z * (_P1 + z * (_P2 + z * (_P3 + z * (_P4 + z * _P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    n = int(k)
    if n > 1023:
        return y * _pow2(n - 1) * 2.0
    if n < -1021:
        return y * _pow2(n + 60) * 8.673617379884035e-19  # 2**-60: one rounding
    return y * _pow2(n)


# atan: t in [0, 1] is reduced to u around 0, 0.5 or 1 (atan(t) = atan(c) + atan(u));
# atan(u) = u - u z (odd minimax polynomial in z = u*u; the classic fit, error < 2**-59).
_ATAN_HI = (4.63647609000806093515e-01, 7.85398163397448278999e-01)
_ATAN_LO = (2.26987774529616870924e-17, 3.06161699786838301793e-17)
_AT0, _AT1, _AT2 = 3.33333333333329318027e-01, -1.99999999998764832476e-01, 1.42857142725034663711e-01
_AT3, _AT4, _AT5 = -1.11111104054623557880e-01, 9.09088713343650656196e-02, -7.69187620504482999495e-02
_AT6, _AT7, _AT8 = 6.66107313738753120669e-02, -5.83357013379057348645e-02, 4.97687799461593236017e-02
_AT9, _AT10 = -3.65315727442169155270e-02, 1.62858201153657823623e-02


@_jit.inline
def _atan_unit(t, t_lo):
    """atan(t + t_lo) for 0 <= t <= 1, |t_lo| <= ulp(t), as a double-double (hi, lo)."""
    if t < 0.4375:
        base_hi, base_lo, u = 0.0, 0.0, t
    elif t < 0.6875:
        base_hi, base_lo, u = _ATAN_HI[0], _ATAN_LO[0], (2.0 * t - 1.0) / (2.0 + t)
    else:
        base_hi, base_lo, u = _ATAN_HI[1], _ATAN_LO[1], (t - 1.0) / (t + 1.0)
    z = u * u
    w = z * z
    s1 = z * (_AT0 + w * (_AT2 + w * (_AT4 + w * (_AT6 + w * (_AT8 + w * _AT10)))))
    s2 = w * (_AT1 + w * (_AT3 + w * (_AT5 + w * (_AT7 + w * _AT9))))
    hi, e = _two_sum(base_hi, u)
    return hi, e + (base_lo - u * (s1 + s2) + t_lo / (1.0 + t * t))


@_jit.scalar
def atan2(y, x):
    """The angle of the point (x, y) in radians, in [-pi, pi], faithfully rounded, with
    glibc's (IEEE 754's) results for zeros of either sign, infinities and NaN."""
    if x != x or y != y:
        return x + y
    y_negative = y < 0.0 or (y == 0.0 and 1.0 / y < 0.0)
    x_negative = x < 0.0 or (x == 0.0 and 1.0 / x < 0.0)
    ax = -x if x_negative else x  # (no fabs: libdevice would be called)
    ay = -y if y_negative else y
    if ay == math.inf or ax == math.inf:
        if ay == math.inf:
            v = (0.75 * _PI_HI if x_negative else 0.25 * _PI_HI) if ax == math.inf else _PIO2_HI
        else:
            v = _PI_HI if x_negative else 0.0
        return -v if y_negative else v
    if ay == 0.0:
        v = _PI_HI if x_negative else 0.0
        return -v if y_negative else v
    if ax == 0.0:
        return -_PIO2_HI if y_negative else _PIO2_HI
    swap = ay > ax
    num, den = (ax, ay) if swap else (ay, ax)
    t = num / den
    t_lo = 0.0
    if t > 1e-290:  # the correction term of the quotient, on operands scaled to [1, 2**53)
        n_s = num
        d_s = den
        while d_s >= 9007199254740992.0:
            d_s *= 1.1102230246251565e-16  # 2**-53
            n_s *= 1.1102230246251565e-16
        while d_s < 1.0:
            d_s *= 9007199254740992.0
            n_s *= 9007199254740992.0
        if n_s > 1e-290:  # and so still exact
            p, e = _two_product(t, d_s)
            t_lo = ((n_s - p) - e) / d_s
    a_hi, a_lo = _atan_unit(t, t_lo)
    if swap:  # pi/2 - a, or pi/2 + a when x < 0
        base_hi, base_lo = _PIO2_HI, _PIO2_LO
        sign = 1.0 if x_negative else -1.0
    elif x_negative:  # pi - a
        base_hi, base_lo, sign = _PI_HI, _PI_LO, -1.0
    else:
        base_hi, base_lo, sign = 0.0, 0.0, 1.0
    s, e = _two_sum(base_hi, sign * a_hi)
    v = s + (e + (base_lo + sign * a_lo))
    return -v if y_negative else v
