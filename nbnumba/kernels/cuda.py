"""The ``numba.cuda`` twin of the CPU kernel: one GPU thread per pixel.

This is the only module of nbnumba that imports ``numba.cuda`` (from the optional
``numba-cuda`` package). The thread body is :func:`nbnumba.pixel.render_pixel`, the
same function the CPU kernel runs, so the physics exists once; numba-cuda compiles it
(and everything it calls) as device functions.
"""
import numpy as np
from numba import cuda

from ..pixel import render_pixel

#: threads per block
BLOCK = 128


@cuda.jit
def render_region(image, fpixels, row0, col0, n_rows, n_cols, first_pixel, mask, use_mask,
                  det, beam, incident, wavelengths, latt, cells_t, fgrid, fgrid_flat, grid, sums,
                  interpolate, pixel_omega, row_switch):
    """Render pixel (row0 + i // n_cols, col0 + i % n_cols) for thread i.

    image: float32 flat raster; pixel_omega[i]: the pixel's solid-angle sum (0 when not
    rendered); row_switch[r]: smallest column of row r whose pixel switched tricubic
    interpolation off (left unchanged when none did).
    """
    i = cuda.grid(1)
    if i >= n_rows * n_cols:
        return
    r = i // n_cols
    si = row0 + r
    fi = col0 + (i - r * n_cols)
    idx = si * fpixels + fi
    pixel_omega[i] = 0.0
    if idx < first_pixel:
        return
    if use_mask and mask[idx] == 0:
        return
    out = render_pixel(
        fi, si, det, beam, incident, wavelengths, latt, cells_t, fgrid, fgrid_flat, grid, sums,
        interpolate)
    image[idx] = np.float32(0.0 + out[0])
    pixel_omega[i] = out[1]
    if out[2]:  # interpolation switched off in this pixel
        cuda.atomic.min(row_switch, r, fi)


def is_available():
    """(True, "") when a CUDA GPU is usable, else (False, reason)."""
    try:
        if cuda.is_available():
            return True, ""
        return False, "no CUDA GPU or driver found"
    except Exception as exc:  # the driver can fail in many ways
        return False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def to_device(array):
    """Copy a host array to the GPU."""
    return cuda.to_device(np.ascontiguousarray(array))


def launch(n_threads, *args):
    """Run :func:`render_region` over ``n_threads`` pixels and wait for it.

    Returns the kernel's own run time in seconds (CUDA events; no transfers).
    """
    blocks = (n_threads + BLOCK - 1) // BLOCK
    start, stop = cuda.event(), cuda.event()
    start.record()
    render_region[blocks, BLOCK](*args)
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / 1000.0
