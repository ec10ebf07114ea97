"""The one place that decides how nbnumba compiles code with numba.

Physics modules say *what* to compile; this module says *how*:

* ``scalar`` — small scalar helpers (no signature, so that numba-cuda can also compile
  them as device functions), cached on disk;
* ``inline`` — scalar helpers of the innermost loop, inlined into their callers at
  numba-IR level so that LLVM sees one loop body it can vectorise (LLVM alone does not
  inline a call chain this deep);
* ``serial`` — whole-array helpers that must run in a fixed order (random numbers,
  statistics), cached;
* ``parallel`` — the ``prange`` kernels, cached.

``fastmath`` is deliberately off everywhere: its ``nnan``/``ninf``/``reassoc`` flags
change rounding and NaN handling and break bit parity with the C program.

Compiled code is cached on disk by numba. Where no cache directory can be written (a
read-only installation without ``NUMBA_CACHE_DIR``), numba refuses ``cache=True`` at
import; nbnumba then compiles without caching, every run, and
:func:`nbnumba.compilecache.cache_problem` says why.
"""
import numba

from . import compilecache

#: what nbnumba says when numba finds no writable cache directory
NO_CACHE = ("no writable cache directory for compiled code (NUMBA_CACHE_DIR, "
            "__pycache__ beside nbnumba's modules, or the user cache directory)")


def _compiler(**options):
    """A decorator: ``numba.njit(cache=True, **options)``, or uncached without a cache."""
    cached = numba.njit(cache=True, **options)
    uncached = numba.njit(**options)

    def decorate(func):
        if compilecache.cache_problem() is None:
            try:
                return cached(func)
            except RuntimeError:  # numba: "cannot cache function ...: no locator available"
                compilecache.record_cache_problem(NO_CACHE)
        return uncached(func)
    return decorate


scalar = _compiler(error_model="numpy")
inline = _compiler(error_model="numpy", inline="always")
serial = _compiler(error_model="numpy")
parallel = _compiler(parallel=True, error_model="numpy")
