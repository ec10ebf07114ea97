"""The physics of one evaluation, as small scalar functions.

Both kernels (the ``prange`` CPU kernel and the ``numba.cuda`` kernel) call these, so
each formula exists once. They take and return scalars (or read small arrays), allocate
nothing, raise nothing and use only ``math``, so numba-cuda can compile them as device
functions. Every expression keeps the C program's operation order: the float images are
bit-identical with the C's when these are evaluated in float64.
"""
import math

from . import _jit

SQUARE, ROUND, GAUSS, TOPHAT = 0, 1, 2, 3

#: sqrt of the volume ratio between a cube and its inscribed sphere (ROUND spots)
_SPHERE_NORM = 0.723601254558268


@_jit.scalar
def sincg(x, n):
    """Grating function sin(n x)/sin(x) of a crystal n cells wide; n at x = 0."""
    if x == 0.0:
        return n
    return math.sin(x * n) / math.sin(x)


@_jit.scalar
def sinc3(x):
    """Fourier transform of a sphere, 3 (sin x / x - cos x) / x^2; 1 at x = 0."""
    if x == 0.0:
        return 1.0
    return 3.0 * (math.sin(x) / x - math.cos(x)) / (x * x)


@_jit.scalar
def lattice_factor(shape, h, k, l, h0, k0, l0, na, nb, nc, fudge, recip):
    """Lattice (shape) transform F_latt of the crystal at fractional index (h, k, l).

    h0, k0, l0: nearest integer indices (floats). na, nb, nc: cells per axis (floats).
    recip: the unrotated reciprocal vectors a*, b*, c* (1/Angstrom) as 9 numbers, used by
    the GAUSS and TOPHAT shapes (never rotated by phi or mosaic, as in the C).
    """
    if shape == SQUARE:
        f = 1.0
        if na > 1.0:
            f *= sincg(math.pi * h, na)
        if nb > 1.0:
            f *= sincg(math.pi * k, nb)
        if nc > 1.0:
            f *= sincg(math.pi * l, nc)
        return f
    dh = h - h0
    dk = k - k0
    dl = l - l0
    if shape == ROUND:
        hrad_sqr = dh * dh * na * na + dk * dk * nb * nb + dl * dl * nc * nc
        return na * nb * nc * _SPHERE_NORM * sinc3(math.pi * math.sqrt(hrad_sqr * fudge))
    dx = dh * recip[0] + dk * recip[3] + dl * recip[6]
    dy = dh * recip[1] + dk * recip[4] + dl * recip[7]
    dz = dh * recip[2] + dk * recip[5] + dl * recip[8]
    rad_star_sqr = (dx * dx + dy * dy + dz * dz) * na * na * nb * nb * nc * nc
    if shape == GAUSS:
        return na * nb * nc * math.exp(-(rad_star_sqr / 0.63 * fudge))
    if rad_star_sqr * fudge < 0.3969:
        return na * nb * nc * 1.0
    return na * nb * nc * 0.0


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


@_jit.scalar
def nearest_F(grid, has_grid, h_min, k_min, l_min, h_max, k_max, l_max, h0, k0, l0, default_F):
    """F of the nearest reflection (integer indices), default_F outside the grid."""
    if (has_grid and h0 <= h_max and h0 >= h_min and k0 <= k_max and k0 >= k_min
            and l0 <= l_max and l0 >= l_min):
        return grid[h0 - h_min, k0 - k_min, l0 - l_min]
    return default_F
