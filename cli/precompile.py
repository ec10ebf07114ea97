"""``nbnumba --compile``: compile every kernel variant into numba's cache ahead of time.

numba compiles a kernel the first time a run needs it and caches it on disk; a cluster
image build or a job prologue can instead pay that once, before the first real run.
Which compiled functions a run needs depends on its flags (tricubic interpolation, a
curved detector, many evaluations per pixel, absorption layers, the crystal shape,
noise, ...). Rather than name the functions (they change as the kernels evolve), this
renders tiny images through the ``nbnumba`` command itself: the one of each kernel in
the CPU back end's kernel table (``VARIANTS`` of :mod:`nbnumba.kernels.cpu_backend`),
then one per family of flags, so exactly the functions real runs use are compiled. The
test suite checks that after ``--compile`` no golden case compiles anything.
"""
import io
import os
import sys
import tempfile
import time

from .entry import error

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


def _kernel_table():
    """(what, flags) of the tiny render of each kernel in the CPU back end's table."""
    from nbnumba.kernels import cpu_backend
    table = getattr(cpu_backend, "VARIANTS", {})
    return [("kernel %s" % name, list(entry[1]) + ["-noprogress", "-nopgm", "-nonoise"])
            for name, entry in table.items()]


def _render_all(folder):
    """Render every variant in ``folder``; returns the number rendered."""
    from .main import run
    _write_inputs(folder)
    mask = BASE + _F + ["-intfile", "mask.img"]   # an SMV image to read as -mask
    variants = ([("mask image", mask)] + _kernel_table()
                + [(what, BASE + flags) for what, flags in VARIANTS])
    for what, argv in variants:
        stderr = io.StringIO()
        saved, sys.stderr = sys.stderr, stderr
        try:
            code = run(argv, stdout=io.StringIO())
        finally:
            sys.stderr = saved
        if code != 0:
            raise RuntimeError("ahead-of-time variant %r failed: %s"
                               % (what, stderr.getvalue().strip()))
    from nbnumba.toolbox.warmup import compile_kernels   # nb-nonbragg, nb-noisify
    return len(variants) + compile_kernels()


def _cache_folders():
    from nbnumba import compilecache
    folders = set()
    for dispatcher in compilecache.nbnumba_functions():
        path = getattr(getattr(dispatcher, "_cache", None), "cache_path", None)
        if path and compilecache.is_kernel(dispatcher):
            folders.add(path)
    return sorted(folders)


def compile_all(prog="nbnumba", stdout=None):
    """Compile every kernel variant into numba's cache; returns the exit status.

    Says one line on stdout: how many functions were compiled and in how many seconds
    (or that all were cached already) and where the cache is. Exit status 9 when
    compiled code cannot be cached here (nothing would be kept).
    """
    from nbnumba import compilecache
    stdout = stdout if stdout is not None else sys.stdout
    problem = compilecache.cache_problem()
    if problem is not None:
        return error(prog, "cannot compile ahead of time: %s; set NUMBA_CACHE_DIR to a "
                     "writable directory" % problem)
    start = time.perf_counter()
    stderr = sys.stderr   # the variants' own messages are captured, not this line
    said = []

    def starting(dispatcher):
        if said:
            return
        said.append(True)
        stderr.write("%s: compiling every kernel variant for this CPU (a few minutes, "
                     "once per machine and nbnumba version) ...\n" % prog)
        stderr.flush()

    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="nbnumba-compile-") as folder, \
            compilecache.silenced(), compilecache.CompileWatch(on_start=starting) as watch:
        os.chdir(folder)
        try:
            rendered = _render_all(folder)
        finally:
            os.chdir(old)
    seconds = time.perf_counter() - start
    where = ", ".join(_cache_folders()) or "?"
    if watch.compiled:
        stdout.write("%s: compiled %d functions in %.1f s (%d variants rendered); cache: %s\n"
                     % (prog, len(watch.compiled), seconds, rendered, where))
    else:
        stdout.write("%s: every kernel variant is already compiled (%d variants checked in "
                     "%.1f s); cache: %s\n" % (prog, rendered, seconds, where))
    stdout.flush()
    return 0
