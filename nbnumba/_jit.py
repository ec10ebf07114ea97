"""The one place that decides how nbnumba compiles code with numba.

Physics modules say *what* to compile; this module says *how*:

* ``scalar`` — small scalar helpers (no signature, so that numba-cuda can also compile
  them as device functions), cached on disk;
* ``inline`` — scalar helpers of the innermost loop, inlined into their callers at
  numba-IR level so that LLVM sees one loop body it can vectorise (LLVM alone does not
  inline a call chain this deep);
* ``serial`` — whole-array helpers that must run in a fixed order (random numbers,
  statistics), cached; ``serial_nogil`` the same for a long serial loop that runs in a
  worker thread (nb-nonbragg's pixel loop);
* ``parallel`` — the ``prange`` kernels, cached. They release the GIL while they run
  (``nogil``), so that a render in a worker thread leaves the main thread free to handle
  Ctrl-C and SIGTERM (see :mod:`nbnumba.running`); ``nogil`` changes only the
  entry wrapper, not the generated arithmetic.

``fastmath`` is deliberately off everywhere: its ``nnan``/``ninf``/``reassoc`` flags
change rounding and NaN handling and break bit parity with the C program.

Compiled code is cached on disk by numba. Where no cache directory can be written (a
read-only installation without ``NUMBA_CACHE_DIR``), numba refuses ``cache=True`` at
import; nbnumba then compiles without caching, every run, and
:func:`nbnumba.compilecache.cache_problem` says why. The same for a
``NUMBA_CACHE_DIR`` that does not exist (nor its parent: only the directory named is
ever made) or cannot be written; a cache whose file system fills up while a process runs
is one ``CacheWarning`` (a cache that cannot be written never stops a render).

The library's entry points that may compile (``engine.prepare``, ``engine.render``) run
under :func:`no_blas_probe`, which keeps ``scipy.linalg`` out of the process.
"""
import contextlib
import functools
import sys

import numba

from . import compilecache

#: what nbnumba says when numba finds no writable cache directory
NO_CACHE = ("no writable cache directory for compiled code (NUMBA_CACHE_DIR, "
            "__pycache__ beside nbnumba's modules, or the user cache directory)")


def _check_cache_directory():
    """A ``NUMBA_CACHE_DIR`` that is missing (its parent too) or not writable: nothing is
    cached (numba would make the missing directories, or cache elsewhere instead); the
    compile notice, and the library's ``CompileWarning``, say why."""
    problem = compilecache.cache_directory_problem(numba.config.CACHE_DIR)
    if problem is not None:
        compilecache.record_cache_problem(problem)


def _compiler(**options):
    """A decorator: ``numba.njit(cache=True, **options)``, or uncached without a cache;
    a cache that fails while the process runs (a full disk) is a cache miss and a
    warning (:func:`nbnumba.compilecache.guard_cache_io`)."""
    cached = numba.njit(cache=True, **options)
    uncached = numba.njit(**options)

    def decorate(func):
        if compilecache.cache_problem() is None:
            try:
                dispatcher = cached(func)
            except RuntimeError:  # numba: "cannot cache function ...: no locator available"
                compilecache.record_cache_problem(NO_CACHE)
            else:
                compilecache.guard_cache_io(dispatcher)
                return dispatcher
        return uncached(func)
    return decorate


_check_cache_directory()


scalar = _compiler(error_model="numpy")
inline = _compiler(error_model="numpy", inline="always")
serial = _compiler(error_model="numpy")
#: ``serial`` for a long loop run in a worker thread (:mod:`nbnumba.running`): it
#: releases the GIL, so that the main thread stays free for Ctrl-C and SIGTERM
serial_nogil = _compiler(error_model="numpy", nogil=True)
parallel = _compiler(parallel=True, nogil=True, error_model="numpy")


@contextlib.contextmanager
def no_blas_probe():
    """Keep ``scipy.linalg`` out of the process while numba initialises its compiler.

    The first time numba compiles or loads a function from its cache, it checks for a
    BLAS by importing ``scipy.linalg``. nbnumba's kernels use no BLAS, and that import
    costs about 0.2 s and loads scipy's BLAS, which conflicts with the BLAS of a
    pip-installed cctbx (importing ``dxtbx`` afterwards crashes the process). So numba is
    initialised with ``scipy.linalg`` hidden; it then records "no BLAS" for ``np.vdot``
    and ``np.inner`` only (they fall back to a plain loop), while ``np.dot`` and
    ``np.linalg`` in the user's own numba code still import ``scipy.linalg`` when they are
    compiled. Nothing changes once numba is initialised or when ``scipy.linalg`` is
    already loaded.
    """
    if "scipy.linalg" in sys.modules or "numba.np.arraymath" in sys.modules:
        yield
        return
    sys.modules["scipy.linalg"] = None
    try:
        yield
    finally:
        if "scipy.linalg" in sys.modules and sys.modules["scipy.linalg"] is None:
            del sys.modules["scipy.linalg"]


def without_blas_probe(function):
    """Decorator: run ``function`` (an entry point that may compile) in :func:`no_blas_probe`."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with no_blas_probe():
            return function(*args, **kwargs)
    return wrapper
