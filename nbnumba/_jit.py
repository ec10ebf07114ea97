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
"""
import numba

scalar = numba.njit(cache=True, error_model="numpy")
inline = numba.njit(cache=True, error_model="numpy", inline="always")
serial = numba.njit(cache=True, error_model="numpy")
parallel = numba.njit(cache=True, parallel=True, error_model="numpy")
