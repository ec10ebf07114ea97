"""The one place that decides how nbnumba compiles code with numba.

Physics modules say *what* to compile; this module says *how*:

* ``scalar`` — small scalar helpers (no signature, so that numba-cuda can also compile
  them as device functions), cached on disk;
* ``serial`` — whole-array helpers that must run in a fixed order (random numbers,
  statistics), cached;
* ``parallel`` — the ``prange`` kernels, cached.

``fastmath`` is deliberately off everywhere: its ``nnan``/``ninf``/``reassoc`` flags
change rounding and NaN handling and break bit parity with the C program.
"""
import numba

scalar = numba.njit(cache=True)
serial = numba.njit(cache=True)
parallel = numba.njit(cache=True, parallel=True)
