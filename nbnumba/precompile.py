"""Ahead-of-time compilation: :func:`compile` fills numba's on-disk cache with every
function a render can need, so that no later run (in any process, on this machine and
nbnumba version) compiles.

Which compiled functions a run needs depends on its settings (tricubic interpolation, a
curved detector, many evaluations per pixel, absorption layers, the crystal shape,
noise, ...). Rather than name the functions (they change as the kernels evolve),
:func:`compile` renders tiny images through the library itself: one per kernel of the
CPU back end's table (``VARIANTS`` of :mod:`nbnumba.kernels.cpu_backend`), then one per
family of settings (:data:`VARIANTS`, as C-style flags), with the integer, PGM and
noise images and the pixel printout each asks for, then the kernel table again with the
kernels' one-thread twins (what a forked child of a process using GNU OpenMP runs).
"""
import os
import tempfile
import time
from dataclasses import dataclass
from typing import List, Tuple

from . import compilecache


#: flags every variant shares: a tiny detector, files in a scratch directory
BASE = ["-cell", "100", "100", "100", "90", "90", "90", "-N", "2", "-lambda", "1",
        "-distance", "100", "-detpixels", "6", "-pixel", "0.1", "-oversample", "1",
        "-seed", "1", "-noprogress", "-nopgm", "-nonoise"]

_F = ["-default_F", "100"]
_HKL = ["-hkl", "grid.hkl"]
_MOSAIC = ["-mosaic", "0.5", "-mosaic_dom", "10", "-mosaic_seed", "7"]
_SHAPES = (["-round_xtal"], ["-gauss_xtal"], ["-tophat_spots"], ["-square_xtal"])

#: (what it reaches, extra flags): every path the engine can choose, each crystal shape
#: with one and with many evaluations per pixel, the detector and output options that
#: change what is computed per pixel or per image
VARIANTS = (
    [("one evaluation", _F),
     ("structure factors, nearest", _HKL + ["-nointerpolate"]),
     ("tricubic interpolation", _HKL + ["-interpolate"]),
     ("tricubic, switched off part-way", _HKL + ["-interpolate", "-pixel", "5"]),
     ("two sources", _F + ["-sourcefile", "two_sources.txt"]),
     ("three phi steps", _F + ["-osc", "0.3", "-phisteps", "3"]),
     ("five mosaic domains", _F + ["-mosaic", "0.5", "-mosaic_dom", "5"]),
     ("many evaluations, mosaic", _F + _MOSAIC),
     ("many evaluations, phi steps, F grid", _HKL + ["-nointerpolate", "-osc", "0.9", "-phisteps", "9"]),
     ("many evaluations, divergence and dispersion",
      _F + ["-divergence", "0.2", "-divsteps", "3", "-dispersion", "2", "-dispsteps", "3"])]
    + [("shape %s" % s[0], _F + s) for s in _SHAPES]
    + [("shape %s, many evaluations" % s[0], _F + _MOSAIC + s) for s in _SHAPES]
    + [("absorption layers", _F + ["-detector_abs", "300", "-detector_thick", "200",
                                   "-detector_thicksteps", "2", "-oversample_thick"]),
       ("absorption layers, many evaluations", _F + _MOSAIC + ["-detector_abs", "300",
                                                      "-detector_thick", "200",
                                                      "-detector_thicksteps", "2"]),
       ("curved detector", _F + ["-curved_det"]),
       ("curved detector, many evaluations", _F + _MOSAIC + ["-curved_det"]),
       ("point pixel, no polarization", _F + ["-point_pixel", "-nopolar"]),
       ("sub-pixels", _F + ["-oversample", "2", "-oversample_omega", "-oversample_polar"]),
       ("sub-pixels, many evaluations", _F + _MOSAIC + ["-oversample", "2", "-oversample_omega"]),
       ("two-theta, water, dmin", _F + ["-twotheta", "10", "-water", "0.5", "-dmin", "20"]),
       ("libm sine (large crystal)", _F + ["-cell", "500", "500", "500", "90", "90", "90",
                                          "-N", "1000", "-lambda", "0.5"]),
       ("libm sine, many evaluations", _F + _MOSAIC + ["-cell", "500", "500", "500", "90", "90", "90",
                                              "-N", "1000", "-lambda", "0.5"]),
       ("region of interest and mask", _F + ["-roi", "1", "4", "1", "4", "-mask", "mask.img"]),
       ("random misset", _F + ["-misset", "random", "-misset_seed", "3"]),
       ("noise and PGM", _F + ["-noisefile", "noise.img", "-pgmfile", "image.pgm"]),
       ("Gaussian noise", _F + ["-fluence", "1e33", "-noisefile", "noise.img"]),
       ("pixel printout", _F + ["-printout_pixel", "2", "3"]),
       ("one thread", _F + ["-nthreads", "1"])]
)


def _write_inputs(folder):
    """The input files the variants read: an F grid, two sources, a mask."""
    lines = ["%d %d %d %.1f" % (h, k, l, 10.0 + (h * 7 + k * 3 + l) % 11)
             for h in range(-3, 4) for k in range(-3, 4) for l in range(-3, 4)]
    with open(os.path.join(folder, "grid.hkl"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(folder, "two_sources.txt"), "w") as f:
        f.write("-10.0 0.0 0.0 1.0 1.0e-10\n-10.0 0.0 0.02 0.2 1.2e-10\n")


class CompileError(RuntimeError):
    """Compiled code cannot be cached here, so compiling ahead of time would keep nothing."""


@dataclass
class CompileReport:
    """What :func:`compile` did."""
    compiled: List[Tuple[str, float]]   #: (function, seconds) of each top-level compile
    seconds: float                      #: wall time of the whole call, s
    variants: int                       #: tiny renders done
    cache: List[str]                    #: folders of numba's cache of the kernels


def _kernel_table():
    """(what, flags) of the tiny render of each kernel in the CPU back end's table."""
    from .kernels import cpu_backend
    return [("kernel %s" % name, list(entry[1]) + ["-noprogress", "-nopgm", "-nonoise"])
            for name, entry in cpu_backend.VARIANTS.items()]


#: the input files the variants name, found in the scratch folder
INPUTS = ("grid.hkl", "two_sources.txt", "mask.img")


def _render_variant(argv, folder):
    """Render one variant as the ``nbnumba`` command would (without writing it)."""
    from . import diagnostics, engine, output
    from .cmdline import config_from_args
    argv = [os.path.join(folder, a) if a in INPUTS else a for a in argv]
    config, out = config_from_args(argv, cwd=folder)
    result = engine.simulate(config)
    ints = output.make_int_image(result, out.int_scale, out.adc)
    if out.write_pgm:
        output.make_pgm(result, out.pgm_scale, ints.scale)
    if out.write_noise:
        output.make_noise_image(result, out.seed if out.seed is not None else 1, out.adc)
    if out.printout:
        inputs = engine.kernel_inputs(result.setup)
        for f, s in diagnostics.printout_pixels(result.setup, out.printout_pixel):
            if 0 <= f < result.setup.fpixels and 0 <= s < result.setup.spixels:
                diagnostics.pixel_report(result, f, s, inputs)
    return result, ints


def _render_all(folder):
    """Render every variant in ``folder``; returns the number rendered."""
    from . import output
    _write_inputs(folder)
    result, ints = _render_variant(BASE + _F, folder)    # an SMV image to read as -mask
    output.write_smv_image(result, os.path.join(folder, "mask.img"), ints.pixels)
    variants = _kernel_table() + [(what, BASE + flags) for what, flags in VARIANTS]
    for what, argv in variants:
        try:
            _render_variant(argv, folder)
        except Exception as exc:
            raise RuntimeError("ahead-of-time variant %r failed: %s" % (what, exc)) from exc
    from .toolbox.warmup import compile_kernels   # nb-nonbragg, nb-noisify
    rendered = len(variants) + 1 + compile_kernels()
    return rendered + _one_thread_twins(folder)


def _one_thread_twins(folder):
    """Render the kernel table and a PSF with the one-thread twins of the parallel
    kernels (what a process forked from one using GNU OpenMP runs,
    :func:`nbnumba._jit.for_this_process`); returns the number of renders."""
    import numpy as np
    from . import _jit
    from .toolbox.detector import noisify
    with _jit.one_thread_kernels():
        for what, argv in _kernel_table():
            _render_variant(argv, folder)
        noisify(np.ones((4, 4), dtype=np.float32), seed=1, psf="gauss", psf_method="direct")
    return len(_kernel_table()) + 1


def _cache_folders():
    folders = set()
    for dispatcher in compilecache.nbnumba_functions():
        path = getattr(getattr(dispatcher, "_cache", None), "cache_path", None)
        if path and compilecache.is_kernel(dispatcher):
            folders.add(path)
    return sorted(folders)


def compile(on_start=None):
    """Compile every function nbnumba's renders can need into numba's on-disk cache.

    Takes a few minutes the first time on a machine (per nbnumba version), a few seconds
    when everything is cached already. Nothing is written outside numba's cache and a
    temporary folder. on_start: optional callable, called once when numba starts
    compiling (not on a cache hit). Returns a :class:`CompileReport`; raises
    :class:`CompileError` when compiled code cannot be cached here.
    """
    problem = compilecache.cache_problem()
    if problem is not None:
        raise CompileError("cannot compile ahead of time: %s; set NUMBA_CACHE_DIR to a "
                           "writable directory" % problem)
    start = time.perf_counter()
    said = []

    def starting(dispatcher):
        if not said and on_start is not None:
            said.append(True)
            on_start()

    with tempfile.TemporaryDirectory(prefix="nbnumba-compile-") as folder, \
            compilecache.silenced(), compilecache.CompileWatch(on_start=starting) as watch:
        rendered = _render_all(folder)
    return CompileReport(compiled=list(watch.compiled), seconds=time.perf_counter() - start,
                         variants=rendered, cache=_cache_folders())
