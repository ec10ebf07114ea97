"""The CPU kernels: rows of the region of interest in parallel (``prange``).

Two kernels: :func:`render_rows_lanes` (several pixels of a row at once in SIMD lanes,
:mod:`nbnumba.lanes`) for every image without tricubic interpolation on a flat
detector, and :func:`render_rows` (one evaluation at a time,
:func:`nbnumba.pixel.render_pixel`) for the rest. Each pixel's sum is computed serially
in the C's order by either, so the image does not depend on the number of threads.
Per-row results (solid-angle sums, the first pixel where interpolation switched off)
are reduced by the caller in row order. Both release the GIL while they run.
"""
import numba
import numpy as np

from .. import _jit
from .. import lanes
from ..pixel import render_pixel


@_jit.parallel
def render_rows(image, fpixels, rows, cols, first_pixel, mask, use_mask,
                det, beam, incident, wavelengths, latt, cells_t, fgrid, fgrid_flat, grid, sums,
                interpolate, row_omega, row_switch_col, row_switch_hkl):
    """Render rows [rows[0], rows[1]) x columns [cols[0], cols[1]) into ``image``,
    one evaluation at a time (needed for tricubic interpolation).

    image: float32, flat raster (s * fpixels + f). Pixels with linear index below
    ``first_pixel`` and masked pixels (mask == 0 when ``use_mask``) are left untouched.
    row_omega[r], row_switch_col[r], row_switch_hkl[r] receive, for row
    ``rows[0] + r``, the solid-angle sum, the first column whose pixel switched
    interpolation off (-1: none) and that evaluation's h, k, l, h0, k0, l0.
    """
    for r in numba.prange(rows[1] - rows[0]):
        si = rows[0] + r
        omega_total = 0.0
        row_switch_col[r] = -1
        for fi in range(cols[0], cols[1]):
            idx = si * fpixels + fi
            if idx < first_pixel:
                continue
            if use_mask and mask[idx] == 0:
                continue
            out = render_pixel(
                fi, si, det, beam, incident, wavelengths, latt, cells_t, fgrid, fgrid_flat,
                grid, sums, interpolate)
            image[idx] = np.float32(0.0 + out[0])
            omega_total += out[1]
            if out[2] and row_switch_col[r] < 0:  # interpolation switched off here
                row_switch_col[r] = fi
                row_switch_hkl[r, 0] = out[3]
                row_switch_hkl[r, 1] = out[4]
                row_switch_hkl[r, 2] = out[5]
                row_switch_hkl[r, 3] = out[6]
                row_switch_hkl[r, 4] = out[7]
                row_switch_hkl[r, 5] = out[8]
        row_omega[r] = omega_total


@_jit.parallel
def render_rows_lanes(image, fpixels, rows, cols, first_pixel, mask, use_mask,
                      det, beam, incident_t, wavelengths, latt, cells_t, fgrid_flat, grid, sums,
                      row_omega):
    """Render rows [rows[0], rows[1]) without interpolation on a flat detector,
    :data:`nbnumba.lanes.LANES` pixels of a row at a time (see :mod:`nbnumba.lanes`).
    Arguments as :func:`render_rows`; incident_t: (3, n_sources)."""
    for r in numba.prange(rows[1] - rows[0]):
        st = lanes.scratch()
        si = rows[0] + r
        omega_total = 0.0
        for f0 in range(cols[0], cols[1], lanes.LANES):
            n = min(lanes.LANES, cols[1] - f0)
            lanes.render_chunk(st, n, f0, si, det, beam, incident_t, wavelengths, latt,
                               cells_t, fgrid_flat, grid, sums)
            for j in range(n):
                idx = si * fpixels + f0 + j
                if idx < first_pixel or (use_mask and mask[idx] == 0):
                    continue
                image[idx] = np.float32(0.0 + lanes.chunk_value(st, j))
                omega_total += lanes.chunk_omega(st, j)
        row_omega[r] = omega_total
