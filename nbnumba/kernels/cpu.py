"""The CPU kernel: rows of the region of interest in parallel (``prange``).

Each pixel's sum is computed serially by :func:`nbnumba.pixel.render_pixel`, so the
image does not depend on the number of threads. Per-row results (solid-angle sums, the
first pixel where interpolation switched off) are reduced by the caller in row order.
"""
import numba
import numpy as np

from .. import _jit
from ..pixel import render_pixel


@_jit.parallel
def render_rows(image, fpixels, row_start, row_stop, col_start, col_stop, first_pixel,
                mask, use_mask,
                pix0, fdet, sdet, odet, beam,
                pixel_size, oversample, close_distance, distance, curved, point_pixel,
                n_layers, layer_step, mu, thick_zero,
                incident, wavelengths,
                kahn, polar_axis, no_polar, dmin,
                cells, shape, na, nb, nc, fudge, recip,
                fgrid, hkl_min, hkl_max, hkl_range, has_grid, default_F, interpolate,
                i_bg, water_size, scale, steps,
                over_thick, over_polar, over_omega,
                row_omega, row_switch_col, row_switch_hkl):
    """Render rows [row_start, row_stop) x columns [col_start, col_stop) into ``image``.

    image: float32, flat raster (s * fpixels + f). Pixels with linear index below
    ``first_pixel`` and masked pixels (mask == 0 when ``use_mask``) are left untouched.
    row_omega[r], row_switch_col[r], row_switch_hkl[r] receive, for row
    ``row_start + r``, the solid-angle sum, the first column whose pixel switched
    interpolation off (-1: none) and that evaluation's h, k, l, h0, k0, l0.
    """
    n_rows = row_stop - row_start
    for r in numba.prange(n_rows):
        si = row_start + r
        omega_total = 0.0
        row_switch_col[r] = -1
        for fi in range(col_start, col_stop):
            idx = si * fpixels + fi
            if idx < first_pixel:
                continue
            if use_mask and mask[idx] == 0:
                continue
            value, omega_sum, switched, h, k, l, h0, k0, l0 = render_pixel(
                fi, si, pix0, fdet, sdet, odet, beam,
                pixel_size, oversample, close_distance, distance, curved, point_pixel,
                n_layers, layer_step, mu, thick_zero,
                incident, wavelengths,
                kahn, polar_axis, no_polar, dmin,
                cells, shape, na, nb, nc, fudge, recip,
                fgrid, hkl_min, hkl_max, hkl_range, has_grid, default_F, interpolate,
                i_bg, water_size, scale, steps,
                over_thick, over_polar, over_omega)
            image[idx] = np.float32(0.0 + value)
            omega_total += omega_sum
            if switched and row_switch_col[r] < 0:
                row_switch_col[r] = fi
                row_switch_hkl[r, 0] = h
                row_switch_hkl[r, 1] = k
                row_switch_hkl[r, 2] = l
                row_switch_hkl[r, 3] = h0
                row_switch_hkl[r, 4] = k0
                row_switch_hkl[r, 5] = l0
        row_omega[r] = omega_total
