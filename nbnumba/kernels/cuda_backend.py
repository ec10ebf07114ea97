"""Run the CUDA kernel over a row range; same protocol as :mod:`cpu_backend`.

The hoisted tables go to GPU memory once per call, the float image comes back once.
The per-pixel solid angles come back to the host and are reduced there as the CPU's
are, so the statistics match the CPU's; the indices printed in the interpolation warning are recomputed on the CPU for
the one pixel concerned.

Two back ends share this code: ``-device cuda`` runs the ``parity`` build of the kernel
and ``-device cuda-fast`` the ``fast`` one (see :mod:`nbnumba.kernels.cuda`).
"""
import numpy as np

from ..errors import DeviceError

_INSTALL_HINT = "pip install 'nbnumba[cuda]'"

#: device name -> kernel build
BUILD_OF_DEVICE = {"cuda": "parity", "cuda-fast": "fast"}

#: row_switch value of a row where interpolation never switched off
_NO_SWITCH = np.iinfo(np.int64).max

#: run time (s) of the most recent kernel launch, without transfers (for benchmarks)
last_kernel_seconds = 0.0


def check_available(device="cuda"):
    """Raise :class:`DeviceError` (a one-line reason) when ``device`` cannot be used."""
    try:
        from . import cuda as cuda_kernel
    except ImportError:
        raise DeviceError(f"-device {device} needs the numba-cuda package, which is not "
                          f"installed: {_INSTALL_HINT}") from None
    except Exception as exc:  # numba-cuda present but broken (e.g. an incompatible numpy)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeviceError(f"-device {device}: numba-cuda failed to load ({reason}); "
                          f"{_INSTALL_HINT} installs a working set") from None
    ok, reason = cuda_kernel.is_available()
    if not ok:
        raise DeviceError(f"-device {device}: {reason}")


class CudaBackend:
    """The back end of one kernel build ("parity" or "fast"); see :func:`render`."""

    def __init__(self, build):
        self.build = build

    def render(self, region, row_start, row_stop, first_pixel, inputs, interpolate,
               threads=None, control=None):
        """:func:`render` with this back end's build."""
        return render(region, row_start, row_stop, first_pixel, inputs, interpolate,
                      threads=threads, control=control, build=self.build)


def backend(device):
    """The back end of ``device`` ("cuda" or "cuda-fast")."""
    return CudaBackend(BUILD_OF_DEVICE[device])


def kernel_arguments(region, row_start, row_stop, first_pixel, inputs, interpolate, build,
                     device_array):
    """The kernel's arguments for rows [row_start, row_stop) of ``region``.

    device_array: callable that puts a host array on the GPU (``cuda.to_device``; the
    identity to inspect the argument types). Returns (n_threads, args, image, omega,
    switch) where the last three are the device arrays the kernel writes: the float
    image, the per-pixel solid-angle sums and the per-row switch-off columns.
    """
    image, fpixels, mask, use_mask, col_start, col_stop = region
    n_rows = max(row_stop - row_start, 0)
    n_cols = max(col_stop - col_start, 0)
    n = n_rows * n_cols
    latt = inputs.latt
    if build == "fast":  # libdevice's sine rather than the arithmetic one
        latt = latt._replace(fast_trig=False)
    d_image = device_array(image)
    d_omega = device_array(np.zeros(n))
    d_switch = device_array(np.full(n_rows, _NO_SWITCH, dtype=np.int64))
    args = (d_image, int(fpixels), int(row_start), int(col_start), int(n_rows), int(n_cols),
            int(first_pixel), device_array(mask), bool(use_mask), inputs.det, inputs.beam,
            device_array(inputs.incident), device_array(inputs.wavelengths), latt,
            device_array(inputs.cells_t), device_array(inputs.fgrid),
            device_array(inputs.fgrid_flat), inputs.grid, inputs.sums, bool(interpolate),
            d_omega, d_switch)
    return n, args, d_image, d_omega, d_switch


def render(region, row_start, row_stop, first_pixel, inputs, interpolate, threads=None,
           control=None, build="parity"):
    """Render rows [row_start, row_stop) of ``region`` on the GPU in one launch.

    Arguments and return value as :func:`nbnumba.kernels.cpu_backend.render`
    (``threads`` is ignored; the launch is not stopped part-way: a stop asked through
    ``control`` before the launch skips it, and every row counts as done after it);
    build: "parity" or "fast".
    """
    from . import cpu_backend, rowqueue
    from . import cuda as cuda_kernel
    image, fpixels, mask, use_mask, col_start, col_stop = region
    n_rows = max(row_stop - row_start, 0)
    n_cols = max(col_stop - col_start, 0)
    pixel_omega, row_switch_col, row_switch_hkl = cpu_backend.row_results(n_rows, n_cols)
    if control is None:
        control = rowqueue.control_array()
    if n_rows * n_cols == 0 or control[rowqueue.STOP]:
        control[rowqueue.DONE] = 0 if control[rowqueue.STOP] else n_rows
        return pixel_omega, row_switch_col, row_switch_hkl

    n, args, d_image, d_omega, d_switch = kernel_arguments(
        region, row_start, row_stop, first_pixel, inputs, interpolate, build,
        cuda_kernel.to_device)
    global last_kernel_seconds
    last_kernel_seconds = cuda_kernel.launch(build, n, *args)
    image[:] = d_image.copy_to_host()
    pixel_omega[:] = d_omega.copy_to_host()
    switch = d_switch.copy_to_host()
    for r in np.nonzero(switch != _NO_SWITCH)[0]:
        col = int(switch[r])
        row_switch_col[r] = col
        # the warning's h, k, l: the same pixel once more on the CPU, into scratch
        scratch = np.zeros_like(image)
        probe = (scratch, fpixels, mask, use_mask, col, col + 1)
        _, cols, hkl = cpu_backend.render(probe, row_start + r, row_start + r + 1, first_pixel,
                                          inputs, True, threads=1)
        row_switch_hkl[r] = hkl[0]
    control[rowqueue.DONE] = n_rows
    return pixel_omega, row_switch_col, row_switch_hkl
