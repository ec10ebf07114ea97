"""Kernel back ends: ``get_backend("cpu")``, ``get_backend("cuda")`` (the GPU build whose
images equal the CPU's) or ``get_backend("cuda-fast")`` (the GPU build with fused
multiply-adds and libdevice's sine).

A back end renders rows of the region of interest in one call (``render(region,
row_start, row_stop, first_pixel, inputs, interpolate, threads, control)``, where
``control`` is a :mod:`.rowqueue` control array: rows done, stop flag); both call the
same per-pixel function (:func:`nbnumba.pixel.render_pixel`) and differ only in how
pixels are mapped to threads. Importing nbnumba never imports CUDA: the CUDA back end is
loaded on first request and raises :class:`DeviceError` when no GPU is usable.
"""
from ..errors import DeviceError  # noqa: F401  (re-exported)

DEVICES = ("cpu", "cuda", "cuda-fast")


def get_backend(device):
    """The back end for ``device`` (one of :data:`DEVICES`): an object with ``render``."""
    if not isinstance(device, str):
        raise DeviceError(f"device must be one of {', '.join(DEVICES)} (a string), got "
                          f"{type(device).__name__}")
    if device == "cpu":
        from . import cpu_backend
        return cpu_backend
    if device in ("cuda", "cuda-fast"):
        from . import cuda_backend
        cuda_backend.check_available(device)
        return cuda_backend.backend(device)
    raise DeviceError(f"unknown device {device!r} (choose {', '.join(DEVICES)})")
