"""The CPU kernels: one call renders a whole region, its rows handed to threads one at a time.

Two kernels: :func:`render_rows_lanes` (several pixels of a row at once in SIMD lanes,
:mod:`nbnumba.lanes`) for every image without tricubic interpolation on a flat
detector, and :func:`render_rows` (one evaluation at a time,
:func:`nbnumba.pixel.render_pixel`) for the rest. Each of the call's ``n_workers``
threads takes the next row from a shared queue (:mod:`.rowqueue`) until none is left or
the caller asks it to stop, and counts each finished row there (the caller's progress).
Each pixel's sum is computed serially in the C's order by either kernel, so the image
does not depend on the number of threads or on which thread rendered a row. Per-pixel
and per-row results (the pixel's solid angle, the first pixel of a row where
interpolation switched off) are reduced by the caller in raster order. Both kernels
release the GIL while they run.
"""
import numba
import numpy as np

from .. import _jit
from .. import lanes
from ..pixel import render_pixel, solid_angle, subpixel_direction
from . import rowqueue


@_jit.parallel
def render_rows(image, fpixels, rows, cols, first_pixel, mask, use_mask,
                det, beam, incident, wavelengths, latt, cells_t, fgrid, fgrid_flat, grid, sums,
                interpolate, pixel_omega, row_switch_col, row_switch_hkl, control, n_workers):
    """Render rows [rows[0], rows[1]) x columns [cols[0], cols[1]) into ``image``,
    one evaluation at a time (needed for tricubic interpolation).

    image: float32, flat raster (s * fpixels + f). Pixels with linear index below
    ``first_pixel`` and masked pixels (mask == 0 when ``use_mask``) are left untouched.
    pixel_omega[r * n_cols + c] receives the solid angle (sr) the pixel at row
    ``rows[0] + r``, column ``cols[0] + c`` used last (0 where not rendered);
    row_switch_col[r] and row_switch_hkl[r] the first column whose pixel switched
    interpolation off (-1: none) and that evaluation's h, k, l, h0, k0, l0.
    control: the row queue (:mod:`nbnumba.kernels.rowqueue`); n_workers: threads.
    """
    n_rows = rows[1] - rows[0]
    n_cols = cols[1] - cols[0]
    for _ in numba.prange(n_workers):
        while True:
            r = rowqueue.take_row(control, n_rows)
            if r < 0:
                break
            si = rows[0] + r
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
                store_pixel(out, image, idx, pixel_omega, r * n_cols + fi - cols[0],
                            row_switch_col, row_switch_hkl, r, fi)
            rowqueue.row_done(control)


@_jit.parallel
def render_rows_lanes(image, fpixels, rows, cols, first_pixel, mask, use_mask,
                      det, beam, incident_t, wavelengths, latt, cells_t, fgrid_flat, grid, sums,
                      pixel_omega, control, n_workers):
    """Render rows [rows[0], rows[1]) without interpolation on a flat detector,
    :data:`nbnumba.lanes.LANES` pixels of a row at a time (see :mod:`nbnumba.lanes`).
    Arguments as :func:`render_rows`; incident_t: (3, n_sources)."""
    n_rows = rows[1] - rows[0]
    n_cols = cols[1] - cols[0]
    for _ in numba.prange(n_workers):
        st = lanes.scratch()
        while True:
            r = rowqueue.take_row(control, n_rows)
            if r < 0:
                break
            si = rows[0] + r
            for f0 in range(cols[0], cols[1], lanes.LANES):
                n = min(lanes.LANES, cols[1] - f0)
                lanes.render_chunk(st, n, f0, si, det, beam, incident_t, wavelengths, latt,
                                   cells_t, fgrid_flat, grid, sums)
                store_chunk(st, n, image, si * fpixels + f0, first_pixel, mask, use_mask,
                            pixel_omega, r * n_cols + f0 - cols[0])
            rowqueue.row_done(control)


@_jit.inline
def store_pixel(out, image, idx, pixel_omega, omega_idx, row_switch_col, row_switch_hkl, r, col):
    """Store one evaluation of :func:`nbnumba.pixel.render_pixel` (``out``): the photons
    as float32 at image[idx], the solid angle (sr) it used last at pixel_omega[omega_idx],
    and, for the first pixel of region row ``r`` where tricubic interpolation switched
    off, its image column ``col`` and that evaluation's h, k, l, h0, k0, l0."""
    image[idx] = np.float32(0.0 + out[0])
    pixel_omega[omega_idx] = out[24]
    if out[2] and row_switch_col[r] < 0:  # interpolation switched off here
        row_switch_col[r] = col
        row_switch_hkl[r, 0] = out[3]
        row_switch_hkl[r, 1] = out[4]
        row_switch_hkl[r, 2] = out[5]
        row_switch_hkl[r, 3] = out[6]
        row_switch_hkl[r, 4] = out[7]
        row_switch_hkl[r, 5] = out[8]


@_jit.inline
def store_chunk(st, n, image, idx0, first_pixel, mask, use_mask, pixel_omega, omega_idx0):
    """Store the ``n`` pixels of a chunk rendered in SIMD lanes (:mod:`nbnumba.lanes`),
    pixel j at image[idx0 + j] (float32 photons) and pixel_omega[omega_idx0 + j] (its
    last solid angle, sr); pixels below ``first_pixel`` or masked are left untouched."""
    for j in range(n):
        idx = idx0 + j
        if idx < first_pixel or (use_mask and mask[idx] == 0):
            continue
        image[idx] = np.float32(0.0 + lanes.chunk_value(st, j))
        pixel_omega[omega_idx0 + j] = lanes.chunk_last_omega(st, j)


@_jit.serial
def raster_omega_sum(pixel_omega, contributions):
    """The solid angles of a region summed as the C sums them: one running total over the
    pixels in raster order, each pixel adding its (cached) solid angle once per sub-pixel
    and sensor layer (``contributions`` times). pixel_omega: per-pixel solid angles (sr)
    in raster order, 0 where a pixel was not rendered. Returns sr."""
    total = 0.0
    for i in range(pixel_omega.shape[0]):
        v = pixel_omega[i]
        if v != 0.0:
            for _ in range(contributions):
                total += v
    return total


@_jit.serial
def raster_omega_sum_recomputed(fpixels, rows, cols, mask, use_mask, det):
    """As :func:`raster_omega_sum` when every sub-pixel has its own solid angle
    (``-oversample_omega``): each one recomputed as the kernels compute it, in the C's
    order (pixels in raster order, then sensor layer, sub-pixel row and column). sr."""
    subpixel = det.pixel_size / det.oversample
    total = 0.0
    for si in range(rows[0], rows[1]):
        for fi in range(cols[0], cols[1]):
            if use_mask and mask[si * fpixels + fi] == 0:
                continue
            for layer in range(det.n_layers):
                odist = layer * det.layer_step
                for sub_s in range(det.oversample):
                    for sub_f in range(det.oversample):
                        airpath = subpixel_direction(fi, si, sub_f, sub_s, odist, subpixel,
                                                     det)[3]
                        total += solid_angle(airpath, det)
    return total
