"""Run the CPU kernels over a row range in one call.

:data:`VARIANTS` is the one list of the CPU kernels and of what selects each;
:func:`kernel_for` makes the choice.
"""
import numba
import numpy as np

from .. import _jit
from . import rowqueue
from .cpu import render_rows, render_rows_lanes
from .cpu_panels import render_panel_rows, render_panel_rows_lanes

#: every CPU kernel: name -> (when it is used, flags of a tiny render that runs it; the
#: flags are complete nanoBragg command lines apart from the output files and the input
#: files of :data:`nbnumba.precompile.INPUTS`, named as there)
VARIANTS = {
    "lanes": ("no tricubic interpolation and a flat detector (every source, phi, mosaic "
              "and layer count: measured faster than one evaluation at a time for all)",
              ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
               "-detpixels", "8"]),
    "one_at_a_time": ("tricubic interpolation, or a curved detector",
                      ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100",
                       "-N", "5", "-detpixels", "8", "-curved_det"]),
    "panels_lanes": ("a detector of several panels (a named one, or an experiment's), "
                     "no tricubic interpolation",
                     ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100",
                      "-N", "5", "--detector", "pilatus6m", "-roi", "484", "491", "192",
                      "199"]),
    "panels_one_at_a_time": ("a detector of several panels with tricubic interpolation "
                             "(grid.hkl: any small HKL file)",
                             ["-cell", "100", "100", "100", "90", "90", "90", "-hkl",
                              "grid.hkl", "-N", "2", "-interpolate", "--detector",
                              "pilatus6m", "-roi", "484", "491", "192", "199"]),
}


def kernel_for(interpolate, curved, panels=False):
    """Name (a key of :data:`VARIANTS`) of the kernel that renders with these settings
    (panels: a detector of several panels, :mod:`.cpu_panels`)."""
    if panels:
        return "panels_one_at_a_time" if interpolate or curved else "panels_lanes"
    return "one_at_a_time" if interpolate or curved else "lanes"


def row_results(n_rows, n_cols):
    """Zeroed outputs of a render of n_rows x n_cols pixels: (per-pixel solid angle (sr,
    flat, raster order), per-row interpolation switch-off column (-1: none), its h, k, l
    and h0, k0, l0)."""
    return (np.zeros(n_rows * n_cols), np.full(n_rows, -1, dtype=np.int64),
            np.zeros((n_rows, 6)))


def render(region, row_start, row_stop, first_pixel, inputs, interpolate, threads=None,
           control=None, panels=None):
    """Render rows [row_start, row_stop) of ``region`` in one kernel call (blocking; the
    GIL is released meanwhile); returns per-pixel and per-row bookkeeping.

    region: (image, fpixels, mask, use_mask, col_start, col_stop).
    inputs: :class:`nbnumba.engine.KernelInputs`; interpolate: tricubic F on.
    first_pixel: pixels with a smaller linear index are not rendered.
    threads: numba threads for this call (None: the calling thread's numba setting).
    control: a :func:`nbnumba.kernels.rowqueue.control_array` through which the caller
    follows the rows done and stops the call (None: a private one).
    panels: None (one panel: the detector of ``inputs``) or the
    :class:`nbnumba.panel_geometry.KernelTables` of the region (the panels' kernels of
    :mod:`.cpu_panels`).
    Returns (pixel_omega, row_switch_col, row_switch_hkl): see :func:`row_results`.
    """
    image, fpixels, mask, use_mask, col_start, col_stop = region
    n_rows = max(row_stop - row_start, 0)
    n_cols = max(col_stop - col_start, 0)
    pixel_omega, row_switch_col, row_switch_hkl = row_results(n_rows, n_cols)
    if control is None:
        control = rowqueue.control_array()
    if n_rows * n_cols == 0:
        control[rowqueue.DONE] = n_rows
        return pixel_omega, row_switch_col, row_switch_hkl
    rows = (int(row_start), int(row_stop))
    cols = (int(col_start), int(col_stop))
    call = (image, fpixels, rows, cols, first_pixel, mask, use_mask, pixel_omega,
            row_switch_col, row_switch_hkl, control)
    if _jit.one_thread_only():  # e.g. a fork of a process whose GNU OpenMP pool started
        _run_kernel(interpolate, inputs, call, 1, panels)
        return pixel_omega, row_switch_col, row_switch_hkl
    previous = numba.get_num_threads()
    if threads:
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    try:
        _run_kernel(interpolate, inputs, call, min(numba.get_num_threads(), n_rows), panels)
    finally:
        numba.set_num_threads(previous)
    return pixel_omega, row_switch_col, row_switch_hkl


def _run_kernel(interpolate, inputs, call, workers, panels=None):
    """Call the kernel :func:`kernel_for` chooses with ``workers`` threads (its one-thread
    twin where this process cannot run parallel code: :func:`nbnumba._jit.for_this_process`).
    call: (image, fpixels, rows, cols, first_pixel, mask, use_mask, pixel_omega,
    row_switch_col, row_switch_hkl, control), as :func:`render` passes them; panels: as
    there."""
    (image, fpixels, rows, cols, first_pixel, mask, use_mask, pixel_omega, row_switch_col,
     row_switch_hkl, control) = call
    if panels is not None:
        tables = (panels.table, panels.offsets, panels.first_row, panels.row_start,
                  panels.segments)
        if kernel_for(interpolate, inputs.det.curved, True) == "panels_lanes":
            kernel = _jit.for_this_process(render_panel_rows_lanes)
            kernel(image, fpixels, rows, cols, first_pixel, mask, use_mask, *tables,
                   inputs.det, inputs.beam, inputs.incident_t, inputs.wavelengths,
                   inputs.latt, inputs.cells_t, inputs.fgrid_flat, inputs.grid, inputs.sums,
                   pixel_omega, control, workers)
        else:
            kernel = _jit.for_this_process(render_panel_rows)
            kernel(image, fpixels, rows, cols, first_pixel, mask, use_mask, *tables,
                   inputs.det, inputs.beam, inputs.incident, inputs.wavelengths, inputs.latt,
                   inputs.cells_t, inputs.fgrid, inputs.fgrid_flat, inputs.grid, inputs.sums,
                   bool(interpolate), pixel_omega, row_switch_col, row_switch_hkl, control,
                   workers)
        return
    if kernel_for(interpolate, inputs.det.curved) == "lanes":
        kernel = _jit.for_this_process(render_rows_lanes)
        kernel(image, fpixels, rows, cols, first_pixel, mask, use_mask, inputs.det,
               inputs.beam, inputs.incident_t, inputs.wavelengths, inputs.latt,
               inputs.cells_t, inputs.fgrid_flat, inputs.grid, inputs.sums, pixel_omega,
               control, workers)
    else:
        kernel = _jit.for_this_process(render_rows)
        kernel(image, fpixels, rows, cols, first_pixel, mask, use_mask, inputs.det,
               inputs.beam, inputs.incident, inputs.wavelengths, inputs.latt, inputs.cells_t,
               inputs.fgrid, inputs.fgrid_flat, inputs.grid, inputs.sums, bool(interpolate),
               pixel_omega, row_switch_col, row_switch_hkl, control, workers)
