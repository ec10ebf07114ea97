"""Run the CPU kernels over a row range in blocks (for progress reports).

:data:`VARIANTS` is the one list of the CPU kernels and of what selects each;
:func:`kernel_for` makes the choice.
"""
import numba
import numpy as np

from .cpu import render_rows, render_rows_lanes

#: every CPU kernel: name -> (when it is used, flags of a tiny render that runs it; the
#: flags are complete nanoBragg command lines apart from the output files)
VARIANTS = {
    "lanes": ("no tricubic interpolation and a flat detector (every source, phi, mosaic "
              "and layer count: measured faster than one evaluation at a time for all)",
              ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
               "-detpixels", "8"]),
    "one_at_a_time": ("tricubic interpolation, or a curved detector",
                      ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100",
                       "-N", "5", "-detpixels", "8", "-curved_det"]),
}


def kernel_for(interpolate, curved):
    """Name (a key of :data:`VARIANTS`) of the kernel that renders with these settings."""
    return "one_at_a_time" if interpolate or curved else "lanes"


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
    lanes = kernel_for(interpolate, inputs.det.curved) == "lanes"
    incident_t = inputs.incident_t
    fgrid_flat = inputs.fgrid_flat

    def render_block(start, stop):
        rows = (row_start + start, row_start + stop)
        if lanes:
            render_rows_lanes(image, fpixels, rows, cols, first_pixel, mask, use_mask,
                              inputs.det, inputs.beam, incident_t, inputs.wavelengths,
                              inputs.latt, inputs.cells_t, fgrid_flat, inputs.grid,
                              inputs.sums, row_omega[start:stop])
        else:
            render_rows(image, fpixels, rows, cols, first_pixel, mask, use_mask, inputs.det,
                        inputs.beam, inputs.incident, inputs.wavelengths, inputs.latt,
                        inputs.cells_t, inputs.fgrid, fgrid_flat, inputs.grid, inputs.sums,
                        bool(interpolate), row_omega[start:stop], row_switch_col[start:stop],
                        row_switch_hkl[start:stop])

    previous = numba.get_num_threads()
    if threads:
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    try:
        start = 0
        block = n_rows if not block_rows else max(int(block_rows), 1)
        while start < n_rows:
            stop = min(start + block, n_rows)
            render_block(start, stop)
            if progress is not None:
                progress(stop, n_rows)
            start = stop
    finally:
        numba.set_num_threads(previous)
    return row_omega, row_switch_col, row_switch_hkl
