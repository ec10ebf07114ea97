"""The physics of one evaluation, as small scalar functions.

Both kernels (the ``prange`` CPU kernel and the ``numba.cuda`` kernel) call these, so
each formula exists once. They take and return scalars (or read small arrays), allocate
nothing, raise nothing and use only ``math``, so numba-cuda can compile them as device
functions. Every expression keeps the C program's operation order: the float images are
bit-identical with the C's when these are evaluated in float64.
"""
import math

import numpy as np

from . import _jit

SQUARE, ROUND, GAUSS, TOPHAT = 0, 1, 2, 3

#: sqrt of the volume ratio between a cube and its inscribed sphere (ROUND spots)
_SPHERE_NORM = 0.723601254558268


# --- sine and cosine for the inner loop ------------------------------------------------
# libm's sin() is an opaque call that stops the compiler from vectorising the inner loop.
# These are pure arithmetic: Cody-Waite reduction by pi/2 in four parts (three 33-bit
# parts and the remainder) carried as a double-double, then polynomials of sin and cos on
# |r| <= pi/4. They agree with glibc's correctly rounded results to within 1 ulp (about
# 3% of arguments differ by 1 ulp) for |x| < FAST_TRIG_LIMIT; the engine falls back to
# libm beyond that.

FAST_TRIG_LIMIT = 1.6e6          #: |x| below which k * _PIO2_1 is exact (k < 2**20)
_TWO_OVER_PI = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e+00   # pi/2, first 33 bits
_PIO2_2 = 6.07710050630396597660e-11   # next 33 bits
_PIO2_3 = 2.02226624871116645580e-21   # next 33 bits
_PIO2_3T = 8.47842766036889956997e-32  # pi/2 - (_PIO2_1 + _PIO2_2 + _PIO2_3)
_ROUNDER = 6755399441055744.0          # 1.5 * 2**52: x + _ROUNDER - _ROUNDER rounds x to an integer
# Near-minimax polynomials in z = r*r on [0, (pi/4)^2] (Chebyshev fits, regenerate with
# ``python -m profiles.sine_coefficients``): (sin r - r)/r^3 = _S3 + _S5 z + ..., error
# below 2.1e-17; (cos r - 1 + z/2)/z^2 = _C4 + _C6 z + ..., error below 1.3e-18.
_S3, _S5, _S7 = -0.16666666666666666, 0.008333333333330948, -0.00019841269836758574
_S9, _S11, _S13 = 2.755731610255244e-06, -2.5051131845003624e-08, 1.5918129294866608e-10
_C4, _C6, _C8 = 0.041666666666666664, -0.0013888888888887398, 2.480158729876569e-05
_C10, _C12, _C14 = -2.7557317271729793e-07, 2.08761462684032e-09, -1.1382632425521717e-11


@_jit.inline
def cody_waite_reduce(x):
    """(r, rr, q) with x = q pi/2 + r + rr (mod 2 pi), |r| <= pi/4 about, r + rr a
    double-double; exact enough for |x| below ``FAST_TRIG_LIMIT`` (radians)."""
    k = (x * _TWO_OVER_PI + _ROUNDER) - _ROUNDER
    a = x - k * _PIO2_1
    b = k * _PIO2_2
    r = a - b
    bb = r - a
    rr = (((a - (r - bb)) + (-b - bb)) - k * _PIO2_3) - k * _PIO2_3T
    t = r + rr
    return t, rr - (t - r), int(k)


@_jit.inline
def _sin_cos_quadrant(x, shift):
    """sin(x) (shift 0) or cos(x) (shift 1) by reduction to |r| <= pi/4."""
    r, rr, q = cody_waite_reduce(x)
    return _sin_cos_reduced(r, rr, q + shift)


@_jit.inline
def _sin_cos_reduced(r, rr, q):
    """sin(q pi/2 + r + rr) for |r| <= pi/4 and rr a correction far below ulp(r) (q an
    integer; q + 1 gives the cosine)."""
    z = r * r
    ps = _S3 + z * (_S5 + z * (_S7 + z * (_S9 + z * (_S11 + z * _S13))))
    s = r + (r * z * ps + rr * (1.0 - 0.5 * z))
    pc = _C4 + z * (_C6 + z * (_C8 + z * (_C10 + z * (_C12 + z * _C14))))
    hz = 0.5 * z
    w = 1.0 - hz
    c = w + (((1.0 - w) - hz) + (z * z * pc - r * rr))
    v = c if (q & 1) else s
    return -v if (q & 2) else v


@_jit.inline
def sin_fast(x):
    """sin(x) within 1 ulp of libm for |x| < FAST_TRIG_LIMIT (vectorisable)."""
    return _sin_cos_quadrant(x, 0)


@_jit.inline
def cos_fast(x):
    """cos(x) within 1 ulp of libm for |x| < FAST_TRIG_LIMIT (vectorisable)."""
    return _sin_cos_quadrant(x, 1)


@_jit.inline
def sincg(x, n, fast):
    """Grating function sin(n x)/sin(x) of a crystal n cells wide; n at x = 0."""
    if fast:
        v = sin_fast(x * n) / sin_fast(x)
    else:
        v = math.sin(x * n) / math.sin(x)
    return n if x == 0.0 else v


@_jit.inline
def sinc3(x, fast):
    """Fourier transform of a sphere, 3 (sin x / x - cos x) / x^2; 1 at x = 0."""
    if fast:
        v = 3.0 * (sin_fast(x) / x - cos_fast(x)) / (x * x)
    else:
        v = 3.0 * (math.sin(x) / x - math.cos(x)) / (x * x)
    return 1.0 if x == 0.0 else v


@_jit.inline
def ceil_small(x):
    """ceil(x) as a float for |x| < 2**51, by round-to-nearest and a correction.

    Pure arithmetic (unlike ``math.ceil``, which returns an integer), so loops using it
    vectorise; NaN stays NaN.
    """
    r = (x + _ROUNDER) - _ROUNDER
    return r + 1.0 if r < x else r


@_jit.inline
def lattice_factor(shape, h, k, l, h0, k0, l0, na, nb, nc, fudge, recip, fast):
    """Lattice (shape) transform F_latt of the crystal at fractional index (h, k, l).

    h0, k0, l0: nearest integer indices (floats). na, nb, nc: cells per axis (floats).
    recip: the unrotated reciprocal vectors a*, b*, c* (1/Angstrom) as 9 numbers, used by
    the GAUSS and TOPHAT shapes (never rotated by phi or mosaic, as in the C).
    fast: use the vectorisable sine (see ``sin_fast``) instead of libm's.
    Written with selects rather than branches so that loops over it vectorise.
    """
    if shape == SQUARE:
        fa = sincg(math.pi * h, na, fast)
        fb = sincg(math.pi * k, nb, fast)
        fc = sincg(math.pi * l, nc, fast)
        f = fa if na > 1.0 else 1.0
        f = f * fb if nb > 1.0 else f
        return f * fc if nc > 1.0 else f
    dh = h - h0
    dk = k - k0
    dl = l - l0
    if shape == ROUND:
        hrad_sqr = dh * dh * na * na + dk * dk * nb * nb + dl * dl * nc * nc
        return na * nb * nc * _SPHERE_NORM * sinc3(math.pi * math.sqrt(hrad_sqr * fudge), fast)
    dx = dh * recip[0] + dk * recip[3] + dl * recip[6]
    dy = dh * recip[1] + dk * recip[4] + dl * recip[7]
    dz = dh * recip[2] + dk * recip[5] + dl * recip[8]
    rad_star_sqr = (dx * dx + dy * dy + dz * dz) * na * na * nb * nb * nc * nc
    if shape == GAUSS:
        return na * nb * nc * math.exp(-(rad_star_sqr / 0.63 * fudge))
    return na * nb * nc * (1.0 if rad_star_sqr * fudge < 0.3969 else 0.0)


@_jit.scalar
def polarization_factor(kahn, ix, iy, iz, dx, dy, dz, px, py, pz):
    """Kahn polarization factor for incident i, diffracted d and E-vector axis p.

    Returns (factor, d normalised). As in the C, i, d and p are re-normalised before use
    and the normalised d replaces the caller's d (it is used by the later sources of the
    same sub-pixel).
    """
    mag = math.sqrt(ix * ix + iy * iy + iz * iz)
    if mag != 0.0:
        ix = ix / mag
        iy = iy / mag
        iz = iz / mag
    mag = math.sqrt(dx * dx + dy * dy + dz * dz)
    if mag != 0.0:
        dx = dx / mag
        dy = dy / mag
        dz = dz / mag
    mag = math.sqrt(px * px + py * py + pz * pz)
    if mag != 0.0:
        px = px / mag
        py = py / mag
        pz = pz / mag
    cos2theta = ix * dx + iy * dy + iz * dz
    cos2theta_sqr = cos2theta * cos2theta
    sin2theta_sqr = 1 - cos2theta_sqr
    psi = 0.0
    if kahn != 0.0:
        bx = py * iz - pz * iy
        by = pz * ix - px * iz
        bz = px * iy - py * ix
        mag = math.sqrt(bx * bx + by * by + bz * bz)
        if mag != 0.0:
            bx = bx / mag
            by = by / mag
            bz = bz / mag
        else:
            bx = 0.0
            by = 0.0
            bz = 0.0
        ex = iy * bz - iz * by
        ey = iz * bx - ix * bz
        ez = ix * by - iy * bx
        mag = math.sqrt(ex * ex + ey * ey + ez * ez)
        if mag != 0.0:
            ex = ex / mag
            ey = ey / mag
            ez = ez / mag
        else:
            ex = 0.0
            ey = 0.0
            ez = 0.0
        e_out = dx * ex + dy * ey + dz * ez
        b_out = dx * bx + dy * by + dz * bz
        psi = -math.atan2(b_out, e_out)
    factor = 0.5 * (1.0 + cos2theta_sqr - kahn * math.cos(2 * psi) * sin2theta_sqr)
    return factor, dx, dy, dz


@_jit.scalar
def capture_fraction(layer, layer_step, mu, parallax):
    """Fraction of photons absorbed in sensor layer ``layer`` (0-based).

    layer_step: layer thickness, m. mu: attenuation coefficient, 1/m. parallax: d . o.
    """
    return (math.exp(-layer * layer_step * mu / parallax)
            - math.exp(-(layer + 1) * layer_step * mu / parallax))


@_jit.scalar
def rotate_about_axis(vx, vy, vz, ax, ay, az, phi):
    """Right-handed rotation of v by phi (rad) about the unit vector a."""
    s = math.sin(phi)
    c = math.cos(phi)
    d = (ax * vx + ay * vy + az * vz) * (1.0 - c)
    return (ax * d + vx * c + (-az * vy + ay * vz) * s,
            ay * d + vy * c + (+az * vx - ax * vz) * s,
            az * d + vz * c + (-ay * vx + ax * vy) * s)


@_jit.scalar
def lagrange4(x0, x1, x2, x3, y0, y1, y2, y3, x):
    """Value at x of the cubic through (x0,y0)..(x3,y3) (Lagrange form, C term order)."""
    t0 = (x - x1) * (x - x2) * (x - x3) * y0 / ((x0 - x1) * (x0 - x2) * (x0 - x3))
    t1 = (x - x0) * (x - x2) * (x - x3) * y1 / ((x1 - x0) * (x1 - x2) * (x1 - x3))
    t2 = (x - x0) * (x - x1) * (x - x3) * y2 / ((x2 - x0) * (x2 - x1) * (x2 - x3))
    t3 = (x - x0) * (x - x1) * (x - x2) * y3 / ((x3 - x0) * (x3 - x1) * (x3 - x2))
    return t0 + t1 + t2 + t3


@_jit.scalar
def _interp_l(grid, i, j, l0, lf, l):
    """Cubic along l through grid[i, j, l0-1 .. l0+2]; lf is floor(l) as a float."""
    return lagrange4(lf - 1.0, lf, lf + 1.0, lf + 2.0,
                     grid[i, j, l0 - 1], grid[i, j, l0], grid[i, j, l0 + 1], grid[i, j, l0 + 2], l)


@_jit.scalar
def _interp_kl(grid, i, k0, l0, kf, lf, k, l):
    """Bicubic in (k, l) on the h-plane i of the grid."""
    return lagrange4(kf - 1.0, kf, kf + 1.0, kf + 2.0,
                     _interp_l(grid, i, k0 - 1, l0, lf, l), _interp_l(grid, i, k0, l0, lf, l),
                     _interp_l(grid, i, k0 + 1, l0, lf, l), _interp_l(grid, i, k0 + 2, l0, lf, l), k)


@_jit.scalar
def tricubic_F(grid, h_min, k_min, l_min, h, k, l):
    """Tricubic interpolation of the F grid at fractional (h, k, l) (4x4x4 stencil).

    The caller has checked that the stencil floor(x)-1 .. floor(x)+2 lies in the grid.
    """
    hf = math.floor(h)
    kf = math.floor(k)
    lf = math.floor(l)
    i0 = int(hf) - h_min
    k0 = int(kf) - k_min
    l0 = int(lf) - l_min
    return lagrange4(hf - 1.0, hf, hf + 1.0, hf + 2.0,
                     _interp_kl(grid, i0 - 1, k0, l0, kf, lf, k, l),
                     _interp_kl(grid, i0, k0, l0, kf, lf, k, l),
                     _interp_kl(grid, i0 + 1, k0, l0, kf, lf, k, l),
                     _interp_kl(grid, i0 + 2, k0, l0, kf, lf, k, l), h)


@_jit.scalar
def outside_interpolation_range(h, k, l, h_min, k_min, l_min, h_range, k_range, l_range):
    """The C's test for switching interpolation off (stricter than the stencil needs)."""
    return ((h - h_min + 3 > h_range) or (h - 2 < h_min) or
            (k - k_min + 3 > k_range) or (k - 2 < k_min) or
            (l - l_min + 3 > l_range) or (l - 2 < l_min))


@_jit.inline
def grid_index(h0, k0, l0, lo, hi, k_stride, l_stride):
    """Flat index of reflection (h0, k0, l0) (float-valued integers) in the C-ordered F
    grid, or -1 outside it.

    lo, hi: the grid's smallest and largest (h, k, l) as floats (hi < lo: no grid);
    k_stride, l_stride: the grid's strides in elements along h and k.
    """
    inside = ((h0 >= lo[0]) & (h0 <= hi[0]) & (k0 >= lo[1]) & (k0 <= hi[1])
              & (l0 >= lo[2]) & (l0 <= hi[2]))
    idx = (h0 - lo[0]) * k_stride + (k0 - lo[1]) * l_stride + (l0 - lo[2])
    return np.int64(idx) if inside else np.int64(-1)


@_jit.inline
def nearest_F(grid_flat, h0, k0, l0, lo, hi, k_stride, l_stride, default_F):
    """F of the nearest reflection, default_F outside the grid."""
    idx = grid_index(h0, k0, l0, lo, hi, k_stride, l_stride)
    return grid_flat[idx] if idx >= 0 else default_F
