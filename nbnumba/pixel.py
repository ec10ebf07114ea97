"""One detector pixel: the full loop nest of ``spec/sampling.md`` as a scalar function.

Both kernels call :func:`render_pixel`; they only differ in how they map pixels to
threads. The loop order (sensor layer, sub-pixel row, sub-pixel column, source, phi step,
mosaic domain) and every expression follow the C program, so the sum for each pixel is
bit-identical with the C's single-threaded result whatever the thread count.

Everything that does not depend on the pixel comes in precomputed:
``cells[i]`` holds the real-space vectors a, b, c (m, 9 numbers) of the crystal for
(phi step, mosaic domain) pair i, phi outermost; ``incident``/``wavelengths`` the unit
incident directions and wavelengths (m) of the sources.

Caching rules reproduced from the C (first value wins unless the matching
``-oversample_*`` switch is on, in which case the factor multiplies the running sum):
solid angle from the first sub-pixel, polarization from the first (sub-pixel, source)
not cut by dmin, capture fraction from the first sub-pixel of each layer (the last
layer's value multiplies the pixel).
"""
import math

from . import _jit
from .physics import (capture_fraction, lattice_factor, nearest_F, outside_interpolation_range,
                      polarization_factor, rotate_about_axis, tricubic_F)


@_jit.scalar
def render_pixel(fi, si,
                 pix0, fdet, sdet, odet, beam,
                 pixel_size, oversample, close_distance, distance, curved, point_pixel,
                 n_layers, layer_step, mu, thick_zero,
                 incident, wavelengths,
                 kahn, polar_axis, no_polar, dmin,
                 cells, shape, na, nb, nc, fudge, recip,
                 fgrid, hkl_min, hkl_max, hkl_range, has_grid, default_F, interpolate,
                 i_bg, water_size, scale, steps,
                 over_thick, over_polar, over_omega):
    """Photons in pixel (fi, si) and bookkeeping for statistics and interpolation.

    Returns (value, omega_sum, switched_off, h, k, l, h0, k0, l0):
    value -- pixel intensity (photons, float64; the caller stores it as float32);
    omega_sum -- the sum of the solid angles used, one per sub-pixel and layer;
    switched_off -- True if an evaluation fell outside the interpolation range while
    ``interpolate`` was on (from then on the pixel used nearest-neighbour F); h..l0 are
    that evaluation's fractional and nearest indices (for the C's warning text).
    """
    subpixel = pixel_size / oversample
    n_sources = wavelengths.shape[0]
    n_cells = cells.shape[0]
    h_min = hkl_min[0]
    k_min = hkl_min[1]
    l_min = hkl_min[2]

    intensity = i_bg
    polar = 1.0 if no_polar else 0.0
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

    for layer in range(n_layers):
        odist = layer * layer_step
        capture = 1.0 if thick_zero else 0.0
        for sub_s in range(oversample):
            for sub_f in range(oversample):
                fdist = subpixel * (fi * oversample + sub_f) + subpixel / 2.0
                sdist = subpixel * (si * oversample + sub_s) + subpixel / 2.0
                px = fdist * fdet[0] + sdist * sdet[0] + odist * odet[0] + pix0[0]
                py = fdist * fdet[1] + sdist * sdet[1] + odist * odet[1] + pix0[1]
                pz = fdist * fdet[2] + sdist * sdet[2] + odist * odet[2] + pix0[2]
                if curved:
                    vx, vy, vz = rotate_about_axis(distance * beam[0], distance * beam[1],
                                                   distance * beam[2], sdet[0], sdet[1],
                                                   sdet[2], py / distance)
                    px, py, pz = rotate_about_axis(vx, vy, vz, fdet[0], fdet[1], fdet[2],
                                                   pz / distance)
                airpath = math.sqrt(px * px + py * py + pz * pz)
                dx = px / airpath
                dy = py / airpath
                dz = pz / airpath

                if omega == 0.0 or over_omega:
                    omega = pixel_size * pixel_size / airpath / airpath * close_distance / airpath
                    if point_pixel:
                        omega = 1.0 / airpath / airpath
                omega_sum += omega

                if capture == 0.0 or over_thick:
                    parallax = dx * odet[0] + dy * odet[1] + dz * odet[2]
                    capture = capture_fraction(layer, layer_step, mu, parallax)

                for src in range(n_sources):
                    ix = incident[src, 0]
                    iy = incident[src, 1]
                    iz = incident[src, 2]
                    lam = wavelengths[src]
                    qx = (dx - ix) / lam
                    qy = (dy - iy) / lam
                    qz = (dz - iz) / lam
                    stol = 0.5 * math.sqrt(qx * qx + qy * qy + qz * qz)
                    if dmin > 0.0 and stol > 0.0:
                        if dmin > 0.5 / stol:
                            continue
                    if polar == 0.0 or over_polar:
                        polar, dx, dy, dz = polarization_factor(
                            kahn, ix, iy, iz, dx, dy, dz,
                            polar_axis[0], polar_axis[1], polar_axis[2])

                    for c in range(n_cells):
                        h = cells[c, 0] * qx + cells[c, 1] * qy + cells[c, 2] * qz
                        k = cells[c, 3] * qx + cells[c, 4] * qy + cells[c, 5] * qz
                        l = cells[c, 6] * qx + cells[c, 7] * qy + cells[c, 8] * qz
                        h0 = math.ceil(h - 0.5)
                        k0 = math.ceil(k - 0.5)
                        l0 = math.ceil(l - 0.5)
                        f_latt = lattice_factor(shape, h, k, l, h0, k0, l0, na, nb, nc,
                                                fudge, recip)
                        if f_latt == 0.0 and water_size == 0.0:
                            continue
                        use_interp = interpolate and not switched_off
                        if use_interp and outside_interpolation_range(
                                h, k, l, h_min, k_min, l_min,
                                hkl_range[0], hkl_range[1], hkl_range[2]):
                            switched_off = True
                            use_interp = False
                            oh = h
                            ok = k
                            ol = l
                            oh0 = int(h0)
                            ok0 = int(k0)
                            ol0 = int(l0)
                        if use_interp:
                            f_cell = tricubic_F(fgrid, h_min, k_min, l_min, h, k, l)
                        else:
                            f_cell = nearest_F(fgrid, has_grid, h_min, k_min, l_min,
                                               hkl_max[0], hkl_max[1], hkl_max[2],
                                               int(h0), int(k0), int(l0), default_F)
                        intensity += f_cell * f_cell * f_latt * f_latt
                        if over_thick:
                            intensity *= capture
                        if over_polar:
                            intensity *= polar
                        if over_omega:
                            intensity *= omega

    value = scale * intensity / steps
    if not over_thick:
        value *= capture
    if not over_polar:
        value *= polar
    if not over_omega:
        value *= omega
    return value, omega_sum, switched_off, oh, ok, ol, oh0, ok0, ol0
