"""Kernel back ends. ``get_backend("cpu")`` or ``get_backend("cuda")``.

A back end renders a block of rows of the region of interest; both call the same
per-pixel function (:func:`nbnumba.pixel.render_pixel`) and differ only in how pixels
are mapped to threads. Importing nbnumba never imports CUDA: the CUDA back end is
loaded on first request and raises :class:`DeviceError` when no GPU is usable.
"""


class DeviceError(RuntimeError):
    """The requested compute device is not available."""


DEVICES = ("cpu", "cuda")


def get_backend(device):
    """The back-end module for ``device`` ("cpu" or "cuda")."""
    if device == "cpu":
        from . import cpu_backend
        return cpu_backend
    if device == "cuda":
        from . import cuda_backend
        cuda_backend.check_available()
        return cuda_backend
    raise DeviceError(f"unknown device {device!r} (choose cpu or cuda)")
