"""The CPU kernels of a detector of several panels: :mod:`.cpu`'s kernels, row by row
of the image that holds the panels.

Each of the call's threads takes the next row of the image from the shared queue
(:mod:`.rowqueue`), as for one panel, and renders the segments of panels that cross it
(:class:`nbnumba.panel_geometry.KernelTables`): for each segment the detector
parameters are the panel's (its corner, axes, normal, pixel size and distance, the
rest the detector's), the pixel indices the panel's own, and the pixel function the
same (:func:`nbnumba.lanes.render_chunk`, or :func:`nbnumba.pixel.render_pixel` for
tricubic interpolation). Pixels in no segment (the gaps) are not computed. So the rows
of all panels share one queue, one call renders the whole detector and its progress
and stop flag cover it; the per-pixel and per-row results are those of :mod:`.cpu`, in
image raster order.
"""
import numba

from .. import _jit
from .. import lanes
from ..pixel import DetectorParams, render_pixel, solid_angle, subpixel_direction
from . import rowqueue
from .cpu import store_chunk, store_pixel


@_jit.inline
def panel_detector(table, p, det):
    """``det`` with panel p's corner, axes, normal, pixel size and sample-to-plane
    distance (row p of the panel table)."""
    return DetectorParams(table[p, 0], table[p, 1], table[p, 2], table[p, 3], table[p, 4],
                          table[p, 5], table[p, 6], table[p, 7], table[p, 8], table[p, 9],
                          table[p, 10], table[p, 11], det.beam_x, det.beam_y, det.beam_z,
                          table[p, 12], det.oversample, table[p, 13], det.distance,
                          det.curved, det.point_pixel, det.n_layers, det.layer_step, det.mu,
                          det.thick_zero)


@_jit.parallel
def render_panel_rows_lanes(image, fpixels, rows, cols, first_pixel, mask, use_mask,
                            table, offsets, first_row, row_start, segments,
                            det, beam, incident_t, wavelengths, latt, cells_t, fgrid_flat,
                            grid, sums, pixel_omega, control, n_workers):
    """Render image rows [rows[0], rows[1]) of the panels, :data:`nbnumba.lanes.LANES`
    pixels of a segment at a time (no interpolation). Arguments as
    :func:`nbnumba.kernels.cpu.render_rows_lanes`, plus the panel tables (table,
    offsets, first_row, row_start, segments: :class:`nbnumba.panel_geometry.KernelTables`);
    cols: the region's columns (for ``pixel_omega``)."""
    n_rows = rows[1] - rows[0]
    n_cols = cols[1] - cols[0]
    for _ in numba.prange(n_workers):
        st = lanes.scratch()
        while True:
            r = rowqueue.take_row(control, n_rows)
            if r < 0:
                break
            row = rows[0] + r
            k = row - first_row
            for q in range(row_start[k], row_start[k + 1]):
                c0 = segments[q, 0]
                c1 = segments[q, 1]
                p = segments[q, 2]
                pdet = panel_detector(table, p, det)
                si = row - offsets[p, 0]
                for f0 in range(c0, c1, lanes.LANES):
                    n = min(lanes.LANES, c1 - f0)
                    lanes.render_chunk(st, n, f0 - offsets[p, 1], si, pdet, beam, incident_t,
                                       wavelengths, latt, cells_t, fgrid_flat, grid, sums)
                    store_chunk(st, n, image, row * fpixels + f0, first_pixel, mask,
                                use_mask, pixel_omega, r * n_cols + f0 - cols[0])
            rowqueue.row_done(control)


@_jit.parallel
def render_panel_rows(image, fpixels, rows, cols, first_pixel, mask, use_mask,
                      table, offsets, first_row, row_start, segments,
                      det, beam, incident, wavelengths, latt, cells_t, fgrid, fgrid_flat, grid,
                      sums, interpolate, pixel_omega, row_switch_col, row_switch_hkl, control,
                      n_workers):
    """As :func:`render_panel_rows_lanes`, one evaluation at a time (tricubic
    interpolation); the interpolation switch-off bookkeeping of
    :func:`nbnumba.kernels.cpu.render_rows`, per image row."""
    n_rows = rows[1] - rows[0]
    n_cols = cols[1] - cols[0]
    for _ in numba.prange(n_workers):
        while True:
            r = rowqueue.take_row(control, n_rows)
            if r < 0:
                break
            row = rows[0] + r
            k = row - first_row
            row_switch_col[r] = -1
            for q in range(row_start[k], row_start[k + 1]):
                p = segments[q, 2]
                pdet = panel_detector(table, p, det)
                si = row - offsets[p, 0]
                for col in range(segments[q, 0], segments[q, 1]):
                    idx = row * fpixels + col
                    if idx < first_pixel or (use_mask and mask[idx] == 0):
                        continue
                    out = render_pixel(col - offsets[p, 1], si, pdet, beam, incident,
                                       wavelengths, latt, cells_t, fgrid, fgrid_flat, grid,
                                       sums, interpolate)
                    store_pixel(out, image, idx, pixel_omega, r * n_cols + col - cols[0],
                                row_switch_col, row_switch_hkl, r, col)
            rowqueue.row_done(control)


@_jit.serial
def raster_omega_sum_recomputed(fpixels, rows, mask, use_mask, table, offsets, first_row,
                                row_start, segments, det):
    """:func:`nbnumba.kernels.cpu.raster_omega_sum_recomputed` over the panels' pixels
    (``-oversample_omega``): every sub-pixel's solid angle recomputed from its panel, in
    image raster order. sr."""
    total = 0.0
    for row in range(rows[0], rows[1]):
        k = row - first_row
        for q in range(row_start[k], row_start[k + 1]):
            p = segments[q, 2]
            pdet = panel_detector(table, p, det)
            subpixel = pdet.pixel_size / pdet.oversample
            si = row - offsets[p, 0]
            for col in range(segments[q, 0], segments[q, 1]):
                if use_mask and mask[row * fpixels + col] == 0:
                    continue
                fi = col - offsets[p, 1]
                for layer in range(pdet.n_layers):
                    odist = layer * pdet.layer_step
                    for sub_s in range(pdet.oversample):
                        for sub_f in range(pdet.oversample):
                            airpath = subpixel_direction(fi, si, sub_f, sub_s, odist, subpixel,
                                                         pdet)[3]
                            total += solid_angle(airpath, pdet)
    return total
