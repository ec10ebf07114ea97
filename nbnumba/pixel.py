"""One detector pixel: the loop nest of ``spec/sampling.md`` as scalar functions.

The loop order (sensor layer, sub-pixel row, sub-pixel column, source, phi step, mosaic
domain) and every expression follow the C program, so each pixel's sum does not depend
on the thread count. Everything that does not depend on the pixel comes in precomputed,
as small named tuples of scalars (:class:`DetectorParams`, :class:`BeamParams`,
:class:`LatticeParams`, :class:`GridParams`, :class:`SumParams`) plus a few arrays:
``incident``/``incident_t`` and ``wavelengths`` for the sources, ``cells_t`` whose
column i holds the real-space vectors a, b, c (m, 9 numbers) of the crystal for
(phi step, mosaic domain) pair i (phi outermost), and the F grid.

Caching rules reproduced from the C (first value wins unless the matching
``-oversample_*`` switch is on, in which case the factor multiplies the running sum):
solid angle from the first sub-pixel, polarization from the first (sub-pixel, source)
not cut by dmin, capture fraction from the first sub-pixel of each layer (the last
layer's value multiplies the pixel).

:func:`render_pixel` runs the nest literally, one evaluation at a time. It is the GPU
kernel's body and the CPU's path for tricubic interpolation (whose switch-off rule
depends on the visiting order) and for the curved detector. It is inlined into the
kernels (``_jit.inline``): a call per pixel with array arguments would cost atomic
reference-count updates that dominate a cheap pixel. The CPU's fast path,
:mod:`nbnumba.lanes`, runs the same nest with the pixels of a row innermost and reuses
the per-sub-pixel and per-evaluation functions below.
"""
import math
from collections import namedtuple

from . import _jit
from .physics import (capture_fraction, ceil_small, grid_index, lattice_factor,
                      nearest_F, outside_interpolation_range, polarization_factor,
                      rotate_about_axis, tricubic_F)

# numba passes named tuples of plain scalars into parallel loops (but not nested
# tuples), so vectors are spelled out component by component.

#: detector geometry and sampling: vectors (pix0 in m, the others unit) and lengths (m)
DetectorParams = namedtuple("DetectorParams", [
    "pix0_x", "pix0_y", "pix0_z", "f_x", "f_y", "f_z", "s_x", "s_y", "s_z",
    "o_x", "o_y", "o_z", "beam_x", "beam_y", "beam_z", "pixel_size", "oversample",
    "close_distance", "distance", "curved", "point_pixel", "n_layers", "layer_step", "mu",
    "thick_zero"])
#: polarization: Kahn factor, E-vector axis, -nopolar; the dmin cut (m)
BeamParams = namedtuple("BeamParams", ["kahn", "pol_x", "pol_y", "pol_z", "no_polar", "dmin"])
#: crystal shape: code, cells per axis (floats), fudge, unrotated reciprocal vectors
#: a*, b*, c* (1/A), whether the vectorisable sine is accurate for this run
LatticeParams = namedtuple("LatticeParams", [
    "shape", "na", "nb", "nc", "fudge", "as_x", "as_y", "as_z", "bs_x", "bs_y", "bs_z",
    "cs_x", "cs_y", "cs_z", "fast_trig"])
#: structure-factor grid: bounds as floats (hi < lo: no grid), integer minimum and ranges,
#: strides of the flat grid, default F
GridParams = namedtuple("GridParams", [
    "h_lo", "k_lo", "l_lo", "h_hi", "k_hi", "l_hi", "h_min", "k_min", "l_min", "h_range",
    "k_range", "l_range", "k_stride", "l_stride", "default_F"])
#: the running sum: water background, scale r_e^2 * fluence, steps, -oversample_* switches
SumParams = namedtuple("SumParams", ["i_bg", "water_size", "scale", "steps", "over_thick",
                                     "over_polar", "over_omega"])


@_jit.inline
def grid_low(grid):
    """Smallest (h, k, l) of the F grid, as a 3-tuple of floats."""
    return (grid.h_lo, grid.k_lo, grid.l_lo)


@_jit.inline
def grid_high(grid):
    """Largest (h, k, l) of the F grid, as a 3-tuple of floats."""
    return (grid.h_hi, grid.k_hi, grid.l_hi)


@_jit.inline
def reciprocal_vectors(latt):
    """The unrotated a*, b*, c* as one 9-tuple (1/A)."""
    return (latt.as_x, latt.as_y, latt.as_z, latt.bs_x, latt.bs_y, latt.bs_z,
            latt.cs_x, latt.cs_y, latt.cs_z)


@_jit.inline
def subpixel_direction(fi, si, sub_f, sub_s, odist, subpixel, det):
    """Unit vector from the sample to a sub-pixel, and its distance (m)."""
    n = det.oversample
    fdist = subpixel * (fi * n + sub_f) + subpixel / 2.0
    sdist = subpixel * (si * n + sub_s) + subpixel / 2.0
    px = fdist * det.f_x + sdist * det.s_x + odist * det.o_x + det.pix0_x
    py = fdist * det.f_y + sdist * det.s_y + odist * det.o_y + det.pix0_y
    pz = fdist * det.f_z + sdist * det.s_z + odist * det.o_z + det.pix0_z
    if det.curved:
        d = det.distance
        vx, vy, vz = rotate_about_axis(d * det.beam_x, d * det.beam_y, d * det.beam_z,
                                       det.s_x, det.s_y, det.s_z, py / d)
        px, py, pz = rotate_about_axis(vx, vy, vz, det.f_x, det.f_y, det.f_z, pz / d)
    airpath = math.sqrt(px * px + py * py + pz * pz)
    return px / airpath, py / airpath, pz / airpath, airpath


@_jit.inline
def solid_angle(airpath, det):
    """Solid angle of a pixel seen at distance ``airpath`` (sr); 1/R^2 for point pixels."""
    if det.point_pixel:
        return 1.0 / airpath / airpath
    p = det.pixel_size
    return p * p / airpath / airpath * det.close_distance / airpath


@_jit.inline
def miller(cells_t, c, qx, qy, qz):
    """Fractional Miller indices h, k, l of scattering vector q (1/m) for crystal setting c.

    cells_t: (9, n) real-space vectors a, b, c (m) of each setting, one per column.
    """
    h = cells_t[0, c] * qx + cells_t[1, c] * qy + cells_t[2, c] * qz
    k = cells_t[3, c] * qx + cells_t[4, c] * qy + cells_t[5, c] * qz
    l = cells_t[6, c] * qx + cells_t[7, c] * qy + cells_t[8, c] * qz
    return h, k, l


@_jit.inline
def lattice_and_index(h, k, l, latt, shape, fast_trig, recip, lo, hi, grid):
    """(F_latt, flat F-grid index or -1) of one evaluation."""
    h0 = ceil_small(h - 0.5)
    k0 = ceil_small(k - 0.5)
    l0 = ceil_small(l - 0.5)
    return (lattice_factor(shape, h, k, l, h0, k0, l0, latt.na, latt.nb, latt.nc, latt.fudge,
                           recip, fast_trig),
            grid_index(h0, k0, l0, lo, hi, grid.k_stride, grid.l_stride))


@_jit.inline
def finish_pixel(intensity, capture, polar, omega, sums):
    """Photons in the pixel from its running sum and the cached correction factors."""
    value = sums.scale * intensity / sums.steps
    if not sums.over_thick:
        value *= capture
    if not sums.over_polar:
        value *= polar
    if not sums.over_omega:
        value *= omega
    return value


@_jit.inline
def render_pixel(fi, si, det, beam, incident, wavelengths, latt, cells_t, fgrid, fgrid_flat,
                 grid, sums, interpolate):
    """Photons in pixel (fi, si), one evaluation at a time.

    Returns a flat tuple (value, omega_sum, switched_off, h, k, l, h0, k0, l0, *last):
    value -- pixel intensity (photons, float64; the caller stores it as float32);
    omega_sum -- the sum of the solid angles used, one per sub-pixel and layer;
    switched_off -- True if an evaluation fell outside the interpolation range while
    ``interpolate`` was on (from then on the pixel used nearest-neighbour F); h..l0 are
    that evaluation's fractional and nearest indices (for the C's warning text);
    last -- 18 values of the last evaluation for ``-printout``: stol, airpath, dx, dy, dz,
    h, k, l, h0, k0, l0, F_cell, F_latt, running sum, polar, omega, capture and the
    crystal setting (column of cells_t). Kernels keep the first nine.
    """
    subpixel = det.pixel_size / det.oversample
    n_sources = wavelengths.shape[0]
    n_cells = cells_t.shape[1]
    lo = grid_low(grid)
    hi = grid_high(grid)
    recip = reciprocal_vectors(latt)

    intensity = sums.i_bg
    polar = 1.0 if beam.no_polar else 0.0
    omega = 0.0
    omega_sum = 0.0
    capture = 0.0
    switched_off = False
    oh = 0.0
    ok = 0.0
    ol = 0.0
    oh0 = 0
    ok0 = 0
    ol0 = 0
    stol = airpath = dx = dy = dz = h = k = l = h0 = k0 = l0 = f_cell = f_latt = 0.0
    last_cell = 0

    for layer in range(det.n_layers):
        odist = layer * det.layer_step
        capture = 1.0 if det.thick_zero else 0.0
        for sub_s in range(det.oversample):
            for sub_f in range(det.oversample):
                dx, dy, dz, airpath = subpixel_direction(fi, si, sub_f, sub_s, odist, subpixel,
                                                         det)
                if omega == 0.0 or sums.over_omega:
                    omega = solid_angle(airpath, det)
                omega_sum += omega
                if capture == 0.0 or sums.over_thick:
                    capture = capture_fraction(layer, det.layer_step, det.mu,
                                               dx * det.o_x + dy * det.o_y + dz * det.o_z)

                for src in range(n_sources):
                    ix = incident[src, 0]
                    iy = incident[src, 1]
                    iz = incident[src, 2]
                    lam = wavelengths[src]
                    qx = (dx - ix) / lam
                    qy = (dy - iy) / lam
                    qz = (dz - iz) / lam
                    stol = 0.5 * math.sqrt(qx * qx + qy * qy + qz * qz)
                    if beam.dmin > 0.0 and stol > 0.0:
                        if beam.dmin > 0.5 / stol:
                            continue
                    if polar == 0.0 or sums.over_polar:
                        polar, dx, dy, dz = polarization_factor(
                            beam.kahn, ix, iy, iz, dx, dy, dz, beam.pol_x, beam.pol_y, beam.pol_z)

                    for c in range(n_cells):
                        last_cell = c
                        h, k, l = miller(cells_t, c, qx, qy, qz)
                        h0 = ceil_small(h - 0.5)
                        k0 = ceil_small(k - 0.5)
                        l0 = ceil_small(l - 0.5)
                        f_latt = lattice_factor(latt.shape, h, k, l, h0, k0, l0, latt.na,
                                                latt.nb, latt.nc, latt.fudge, recip,
                                                latt.fast_trig)
                        if f_latt == 0.0 and sums.water_size == 0.0:
                            continue
                        use_interp = interpolate and not switched_off
                        if use_interp and outside_interpolation_range(
                                h, k, l, grid.h_min, grid.k_min, grid.l_min,
                                grid.h_range, grid.k_range, grid.l_range):
                            switched_off = True
                            use_interp = False
                            oh = h
                            ok = k
                            ol = l
                            oh0 = int(h0)
                            ok0 = int(k0)
                            ol0 = int(l0)
                        if use_interp:
                            f_cell = tricubic_F(fgrid, grid.h_min, grid.k_min, grid.l_min,
                                                h, k, l)
                        else:
                            f_cell = nearest_F(fgrid_flat, h0, k0, l0, lo, hi, grid.k_stride,
                                               grid.l_stride, grid.default_F)
                        intensity += f_cell * f_cell * f_latt * f_latt
                        if sums.over_thick:
                            intensity *= capture
                        if sums.over_polar:
                            intensity *= polar
                        if sums.over_omega:
                            intensity *= omega

    value = finish_pixel(intensity, capture, polar, omega, sums)
    return (value, omega_sum, switched_off, oh, ok, ol, oh0, ok0, ol0, stol, airpath, dx, dy, dz,
            h, k, l, h0, k0, l0, f_cell, f_latt, intensity, polar, omega, capture, last_cell)
