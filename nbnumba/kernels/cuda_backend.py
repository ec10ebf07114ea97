"""Run the CUDA kernel over a row range; same protocol as :mod:`cpu_backend`.

The hoisted tables go to GPU memory once per call, the float image comes back once.
Per-row bookkeeping is reduced on the host in row order, so the statistics match the
CPU's; the indices printed in the interpolation warning are recomputed on the CPU for
the one pixel concerned.
"""
import numpy as np

from . import DeviceError
from .. import _jit

_INSTALL_HINT = "install the GPU extra: pip install 'nbnumba[cuda]'"

#: run time (s) of the most recent kernel launch, without transfers (for benchmarks)
last_kernel_seconds = 0.0


def check_available():
    """Raise :class:`DeviceError` with the reason when no CUDA GPU can be used."""
    try:
        from . import cuda as cuda_kernel
    except ImportError as exc:
        raise DeviceError(f"-device cuda needs numba-cuda ({exc}); {_INSTALL_HINT}") from None
    ok, reason = cuda_kernel.is_available()
    if not ok:
        raise DeviceError(f"-device cuda: {reason}")


@_jit.serial
def _row_sums(pixel_omega, n_rows, n_cols, out):
    for r in range(n_rows):
        total = 0.0
        for c in range(n_cols):
            total += pixel_omega[r * n_cols + c]
        out[r] = total


def render(region, row_start, row_stop, first_pixel, inputs, interpolate, threads=None,
           progress=None, block_rows=None):
    """Render rows [row_start, row_stop) of ``region`` on the GPU.

    Arguments and return value as :func:`nbnumba.kernels.cpu_backend.render`
    (``threads`` and ``block_rows`` are ignored: the GPU renders the region at once).
    """
    from . import cpu_backend
    from . import cuda as cuda_kernel
    image, fpixels, mask, use_mask, col_start, col_stop = region
    n_rows = max(row_stop - row_start, 0)
    n_cols = max(col_stop - col_start, 0)
    row_omega, row_switch_col, row_switch_hkl = cpu_backend.row_results(n_rows)
    n = n_rows * n_cols
    if n == 0:
        return row_omega, row_switch_col, row_switch_hkl

    d_image = cuda_kernel.to_device(image)
    d_omega = cuda_kernel.to_device(np.zeros(n))
    no_switch = np.iinfo(np.int64).max
    d_switch = cuda_kernel.to_device(np.full(n_rows, no_switch, dtype=np.int64))
    global last_kernel_seconds
    last_kernel_seconds = cuda_kernel.launch(
        n, d_image, fpixels, row_start, col_start, n_rows, n_cols, first_pixel,
        cuda_kernel.to_device(mask), bool(use_mask), inputs.det, inputs.beam,
        cuda_kernel.to_device(inputs.incident), cuda_kernel.to_device(inputs.wavelengths),
        inputs.latt, cuda_kernel.to_device(inputs.cells_t), cuda_kernel.to_device(inputs.fgrid),
        cuda_kernel.to_device(inputs.fgrid_flat), inputs.grid, inputs.sums, bool(interpolate),
        d_omega, d_switch)
    image[:] = d_image.copy_to_host()
    _row_sums(d_omega.copy_to_host(), n_rows, n_cols, row_omega)
    switch = d_switch.copy_to_host()
    for r in np.nonzero(switch != no_switch)[0]:
        col = int(switch[r])
        row_switch_col[r] = col
        # the warning's h, k, l: the same pixel once more on the CPU, into scratch
        scratch = np.zeros_like(image)
        probe = (scratch, fpixels, mask, use_mask, col, col + 1)
        _, cols, hkl = cpu_backend.render(probe, row_start + r, row_start + r + 1, first_pixel,
                                          inputs, True, threads=1)
        row_switch_hkl[r] = hkl[0]
    if progress is not None:
        progress(n_rows, n_rows)
    return row_omega, row_switch_col, row_switch_hkl
