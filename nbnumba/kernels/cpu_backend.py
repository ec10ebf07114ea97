"""Run the CPU kernel over a row range in blocks (for progress reports)."""
import numba
import numpy as np

from .cpu import render_rows


def render(region, row_start, row_stop, first_pixel, physics_args, threads=None,
           progress=None, block_rows=None):
    """Render rows [row_start, row_stop) of ``region``; returns per-row bookkeeping.

    region: (image, fpixels, mask, use_mask, col_start, col_stop).
    physics_args: :func:`nbnumba.engine.kernel_arguments`.
    threads: numba thread count for this call (None: leave as is).
    progress: callable(rows_done, rows_total) called after each block.
    Returns (row_omega, row_switch_col, row_switch_hkl) for the rows rendered.
    """
    image, fpixels, mask, use_mask, col_start, col_stop = region
    n_rows = max(row_stop - row_start, 0)
    row_omega = np.zeros(n_rows)
    row_switch_col = np.full(n_rows, -1, dtype=np.int64)
    row_switch_hkl = np.zeros((n_rows, 6))
    if n_rows == 0:
        return row_omega, row_switch_col, row_switch_hkl
    previous = numba.get_num_threads()
    if threads:
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    try:
        block = n_rows if not block_rows else max(int(block_rows), 1)
        for start in range(0, n_rows, block):
            stop = min(start + block, n_rows)
            render_rows(image, fpixels, row_start + start, row_start + stop, col_start, col_stop,
                        first_pixel, mask, use_mask, *physics_args,
                        row_omega[start:stop], row_switch_col[start:stop],
                        row_switch_hkl[start:stop])
            if progress is not None:
                progress(stop, n_rows)
    finally:
        numba.set_num_threads(previous)
    return row_omega, row_switch_col, row_switch_hkl
