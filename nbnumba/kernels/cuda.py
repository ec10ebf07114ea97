"""The ``numba.cuda`` twin of the CPU kernel: one GPU thread per pixel.

This is the only module of nbnumba that imports ``numba.cuda`` (from the optional
``numba-cuda`` package). The thread body is :func:`nbnumba.pixel.render_pixel`, the
same function the CPU kernel runs, so the physics exists once; numba-cuda compiles it
(and everything it calls) as device functions.

The kernel is built two ways (:data:`BUILDS`):

* ``parity`` (``-device cuda``): libNVVM's contraction of multiply-adds into fused
  multiply-adds is off (``-fma=0``). With numba-cuda's defaults (no fastmath: IEEE
  division and square root, no flush-to-zero) every ``+ - * / sqrt`` then rounds as on
  the CPU, so the GPU sums what the CPU sums, bit for bit. The calls of libdevice's
  ``sin``, ``cos``, ``exp`` and ``atan2`` (built on fused multiply-adds) are redirected
  to :mod:`nbnumba.gpu_math`'s arithmetic versions, so the only libdevice functions
  left are the exact ``sqrt`` and ``floor`` (see docs/architecture.md).
* ``fast`` (``-device cuda-fast``): libNVVM's default contraction (``-fma=1``), and
  libdevice's sine in the lattice factor (the back end passes ``fast_trig`` off).

:func:`compile_ptx` compiles either build for a given compute capability without a GPU
or a driver (libNVVM and NVRTC come from the CUDA wheels of ``nbnumba[cuda]``).
"""
import contextlib
import functools
import re
from types import SimpleNamespace

import numpy as np
from numba import config, cuda

from ..pixel import render_pixel

#: threads per block
BLOCK = 128

#: NVVM options each build adds to numba-cuda's own (``-opt=3``, no fastmath)
BUILDS = {"parity": {"fma": False}, "fast": {}}

#: builds whose libdevice calls of these functions go to nbnumba.gpu_math's instead
OWN_MATH_BUILDS = {"parity"}
#: {name: number of float64 arguments}
OWN_MATH = {"sin": 1, "cos": 1, "exp": 1, "atan2": 2}

_LIBDEVICE_CALL = re.compile(r'@"?__nv_(%s)"?(?=\()' % "|".join(OWN_MATH))


def _render_region(image, fpixels, row0, col0, n_rows, n_cols, first_pixel, mask, use_mask,
                   det, beam, incident, wavelengths, latt, cells_t, fgrid, fgrid_flat, grid,
                   sums, interpolate, pixel_omega, row_switch):
    """Render pixel (row0 + i // n_cols, col0 + i % n_cols) for thread i.

    image: float32 flat raster; pixel_omega[i]: the solid angle the pixel used last (0
    when not rendered); row_switch[r]: smallest column of row r whose pixel switched tricubic
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
    pixel_omega[i] = out[24]
    if out[2]:  # interpolation switched off in this pixel
        cuda.atomic.min(row_switch, r, fi)


#: one dispatcher per build, so that each keeps its own compiled kernels
KERNELS = {build: cuda.jit(_render_region) for build in BUILDS}
render_region = KERNELS["parity"]


@functools.cache
def own_math_ir():
    """LLVM IR of :mod:`nbnumba.gpu_math`'s functions as device functions with C names
    ``nbnumba_<name>`` and the signatures of libdevice's ``__nv_<name>`` (the IR does
    not depend on the compute capability)."""
    from numba import float64
    from numba.cuda.compiler import _compile_pyfunc_with_fixup
    from .. import gpu_math

    modules = []
    with _assumed_device((8, 0)):
        for name, n_args in OWN_MATH.items():
            library, _ = _compile_pyfunc_with_fixup(
                getattr(gpu_math, name).py_func, float64(*[float64] * n_args),
                device=True, abi="c", abi_info={"abi_name": f"nbnumba_{name}"}, cc=(8, 0))
            modules.extend(library.llvm_strs)
    return tuple(modules)


def prepare_ir(modules, build):
    """The IR modules ``modules`` as libNVVM compiles them for ``build``: for the builds
    of :data:`OWN_MATH_BUILDS`, calls of libdevice's sin, cos, exp and atan2 renamed to
    nbnumba's and the modules defining those appended."""
    if build not in OWN_MATH_BUILDS:
        return list(modules)
    return [_LIBDEVICE_CALL.sub(r'@nbnumba_\1', ir) for ir in modules] + list(own_math_ir())


@contextlib.contextmanager
def build_compilation(build):
    """Compile every kernel in the block as ``build``: its NVVM options added to
    numba-cuda's and its IR prepared by :func:`prepare_ir`.

    numba-cuda builds libNVVM's option list from ``fastmath`` and ``opt`` alone and has no
    argument for others such as ``-fma``; both are applied where the kernel's IR reaches
    libNVVM (``numba.cuda.cudadrv.nvvm.compile_ir``). numba's compiler lock is held
    throughout, so no other compilation sees them.
    """
    from numba.cuda.core.compiler_lock import global_compiler_lock
    from numba.cuda.cudadrv import nvvm

    extra = BUILDS[build]
    with global_compiler_lock:
        if build in OWN_MATH_BUILDS:
            own_math_ir()  # compiled before the hook is in place
        original = nvvm.compile_ir

        def compile_ir(llvmir, **options):
            modules = [llvmir] if isinstance(llvmir, str) else llvmir
            return original(prepare_ir(modules, build), **{**options, **extra})

        nvvm.compile_ir = compile_ir
        try:
            yield
        finally:
            nvvm.compile_ir = original


@contextlib.contextmanager
def _assumed_device(cc):
    """Let numba-cuda compile device functions for compute capability ``cc`` without a
    driver.

    numba-cuda compiles each function the kernel calls as a device function for the
    capability of the current device (``get_current_device()`` in its dispatcher), even
    when the kernel itself is compiled for an explicit ``cc``; without a driver that
    call fails. Inside the block it answers with a device of capability ``cc``. (The
    device functions' code does not depend on it here: the kernel's PTX is generated
    for ``cc`` from all of them together.)
    """
    from numba.cuda import dispatcher
    from numba.cuda.core.compiler_lock import global_compiler_lock

    original = dispatcher.get_current_device
    with global_compiler_lock:
        dispatcher.get_current_device = lambda: SimpleNamespace(compute_capability=cc)
        try:
            yield
        finally:
            dispatcher.get_current_device = original


def argument_types(args):
    """numba types of kernel arguments as :func:`launch` passes them (host arrays stand
    for the C-contiguous device arrays made from them)."""
    from numba import types
    from numba.cuda.typing.typeof import typeof
    from numba.np.numpy_support import from_dtype

    return tuple(types.Array(from_dtype(a.dtype), a.ndim, "C") if isinstance(a, np.ndarray)
                 else typeof(a) for a in args)


def compile_ptx(argtypes, ccs, build="parity"):
    """Compile the kernel for argument types ``argtypes`` without a GPU or driver.

    ccs: compute capabilities, e.g. [(8, 0), (9, 0)]; the kernel is typed and lowered
    once (for the first) and libNVVM generates PTX for each. Returns {cc: (ptx,
    own_ptx, nvvm_ir)}: the kernel's PTX (libdevice inlined, as it runs); the PTX of
    nbnumba's own code alone, with the libdevice functions left as external calls
    (libNVVM otherwise inlines them, and their bodies use fused multiply-adds by
    design); and the LLVM IR handed to libNVVM (after :func:`prepare_ir`), where the
    calls of libdevice functions (``__nv_*``) are visible.
    """
    from numba.cuda.compiler import _compile_pyfunc_with_fixup  # the core of cuda.compile
    from numba.cuda.cudadrv import nvvm

    results = {}
    plain_compile_ir = nvvm.compile_ir
    with _assumed_device(ccs[0]), build_compilation(build):
        library, _ = _compile_pyfunc_with_fixup(_render_region, argtypes, device=False,
                                                abi="numba", cc=ccs[0])
        compile_ir = nvvm.compile_ir
        for cc in ccs:
            seen = {}

            def recording_compile_ir(llvmir, **options):
                seen.update(options)
                return compile_ir(llvmir, **options)

            nvvm.compile_ir = recording_compile_ir
            try:
                ptx = library.get_asm_str(cc=cc)
            finally:
                nvvm.compile_ir = compile_ir
            modules = prepare_ir(library.llvm_strs, build)
            opaque = [re.sub(r'@"?__nv_(\w+)"?', r'@"nbnumba_libdevice_\1"', ir)
                      for ir in modules]
            own_ptx = plain_compile_ir(opaque, **{**seen, **BUILDS[build]})
            results[cc] = (ptx, own_ptx.decode().strip("\x00").strip(), "\n".join(modules))
    return results


def is_available():
    """(True, "") when a CUDA GPU is usable, else (False, reason)."""
    try:
        if cuda.is_available():
            return True, ""
        return False, "no CUDA GPU was found"
    except Exception as exc:  # the driver can fail in many ways
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, f"no CUDA GPU was found ({reason})"


def to_device(array):
    """Copy a host array to the GPU."""
    return cuda.to_device(np.ascontiguousarray(array))


def _compiled(build, args):
    """The kernel dispatcher of ``build``, compiled for ``args`` with the build's NVVM
    options (the simulator compiles nothing)."""
    kernel = KERNELS[build]
    if config.ENABLE_CUDASIM:
        return kernel
    signature = tuple(kernel.typeof_pyval(a) for a in args)
    if signature not in kernel.overloads:
        with build_compilation(build):
            kernel.compile(signature)
    return kernel


def launch(build, n_threads, *args):
    """Run the kernel of ``build`` over ``n_threads`` pixels and wait for it.

    Returns the kernel's own run time in seconds (CUDA events; no transfers).
    """
    kernel = _compiled(build, args)
    blocks = (n_threads + BLOCK - 1) // BLOCK
    start, stop = cuda.event(), cuda.event()
    start.record()
    kernel[blocks, BLOCK](*args)
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / 1000.0
