"""Run the CPU kernels over a row range in blocks (for progress reports)."""
import numba
import numpy as np

from .cpu import render_rows, render_rows_batched

#: largest (sources x phi steps x mosaic domains) batch of the fast path; beyond it the
#: per-thread scratch would be large and the one-at-a-time kernel is used
MAX_BATCH = 1 << 20

#: smallest batch worth the per-sub-pixel set-up of the fast path
MIN_BATCH = 8

#: the batch is padded to a multiple of this (vector length x unrolling) so that the
#: vectorised loop needs no scalar remainder
VECTOR_PAD = 8


def row_results(n_rows):
    """Zeroed per-row outputs of a render: (solid angle sum (sr), interpolation
    switch-off column (-1: none), its h, k, l and h0, k0, l0)."""
    return (np.zeros(n_rows), np.full(n_rows, -1, dtype=np.int64), np.zeros((n_rows, 6)))


def render(region, row_start, row_stop, first_pixel, inputs, interpolate, threads=None,
           progress=None, block_rows=None):
    """Render rows [row_start, row_stop) of ``region``; returns per-row bookkeeping.

    region: (image, fpixels, mask, use_mask, col_start, col_stop).
    inputs: :class:`nbnumba.engine.KernelInputs`; interpolate: tricubic F on.
    first_pixel: pixels with a smaller linear index are not rendered.
    threads: numba thread count for this call (None: leave as is).
    progress: callable(rows_done, rows_total) called after each block.
    Returns (row_omega, row_switch_col, row_switch_hkl) for the rows rendered.
    """
    image, fpixels, mask, use_mask, col_start, col_stop = region
    n_rows = max(row_stop - row_start, 0)
    row_omega, row_switch_col, row_switch_hkl = row_results(n_rows)
    if n_rows == 0:
        return row_omega, row_switch_col, row_switch_hkl
    cols = (int(col_start), int(col_stop))
    n_sources = inputs.wavelengths.shape[0]
    n_cells = inputs.cells_t.shape[1]
    batched = not interpolate and MIN_BATCH <= n_sources * n_cells <= MAX_BATCH
    if batched:
        incident_t = inputs.incident_t
        tiled = np.tile(inputs.cells_t, (1, n_sources))
        pad = -tiled.shape[1] % VECTOR_PAD
        cells_tiled = np.ascontiguousarray(np.pad(tiled, ((0, 0), (0, pad))))
    fgrid_flat = inputs.fgrid_flat

    def serial(start, stop):
        render_rows(image, fpixels, (row_start + start, row_start + stop), cols, first_pixel,
                    mask, use_mask, inputs.det, inputs.beam, inputs.incident, inputs.wavelengths,
                    inputs.latt, inputs.cells_t, inputs.fgrid, fgrid_flat, inputs.grid,
                    inputs.sums, bool(interpolate), row_omega[start:stop],
                    row_switch_col[start:stop], row_switch_hkl[start:stop])

    previous = numba.get_num_threads()
    if threads:
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    try:
        start = 0
        if batched and first_pixel > row_start * fpixels:
            serial(0, 1)  # a row that starts part-way: one evaluation at a time
            start = 1
        block = n_rows if not block_rows else max(int(block_rows), 1)
        while start < n_rows:
            stop = min(start + block, n_rows)
            if batched:
                render_rows_batched(image, fpixels, (row_start + start, row_start + stop), cols,
                                    mask, use_mask, inputs.det, inputs.beam, incident_t,
                                    inputs.wavelengths, inputs.latt, cells_tiled, n_cells,
                                    fgrid_flat, inputs.grid, inputs.sums, row_omega[start:stop])
            else:
                serial(start, stop)
            if progress is not None:
                progress(stop, n_rows)
            start = stop
    finally:
        numba.set_num_threads(previous)
    return row_omega, row_switch_col, row_switch_hkl
