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

Forked processes. GNU OpenMP (numba's ``omp`` threading layer on Linux) cannot run a
parallel region in a child forked after its thread pool started: numba then stops the
child with "Terminating: fork() called from a process already using GNU OpenMP" (and a
``multiprocessing`` pool waits for it forever). :func:`for_this_process` gives, in such
a child, a one-thread twin of a ``parallel`` function (the same Python function compiled
without ``parallel``, cached under its own name), so that renders in a fork pool give
the same images; everywhere else it gives the function itself. ``tbb`` and
``workqueue`` are fork-safe and never need the twin.
"""
import contextlib
import functools
import os
import sys
import types

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
#: how a parallel function's one-thread twin is compiled (``prange`` runs as ``range``)
_one_thread = _compiler(nogil=True, error_model="numpy")

#: True in a process forked after numba's threading layer had started
_forked_after_threads = [False]

#: > 0: :func:`for_this_process` gives the twins (:func:`one_thread_kernels`)
_one_thread_asked = [0]

#: {id of a parallel dispatcher: its one-thread twin}
_twins = {}


def _threading_layer_started():
    from numba.np.ufunc import parallel as numba_parallel
    return bool(numba_parallel._is_initialized)


def _note_fork():
    """``os.register_at_fork`` hook (in the child): remember whether the parent's threading
    layer had started, i.e. whether the child inherited a thread pool it cannot use."""
    if "numba.np.ufunc.parallel" in sys.modules and _threading_layer_started():
        _forked_after_threads[0] = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_note_fork)


def own_threading_layer():
    """Set numba's threading layer up again for this process, so that parallel code runs
    here (not its one-thread twins): for a process forked from one whose layer was set
    up but never ran parallel code, so that no OpenMP thread exists (nbnumba's resident
    renderer loads the kernels so, and forks a process per run). numba's OpenMP layer
    remembers the pid that set it up and refuses to run in a child of that process;
    numba's own set-up call, made again, records this one."""
    _forked_after_threads[0] = False
    if "numba.np.ufunc.parallel" not in sys.modules or not _threading_layer_started():
        return
    from numba.np.ufunc import parallel as numba_parallel
    if numba_parallel.threading_layer() != "omp":
        return
    import ctypes
    from numba.np.ufunc import omppool
    ctypes.CFUNCTYPE(None, ctypes.c_int)(omppool.launch_threads)(numba_parallel.NUM_THREADS)


def fork_stranded():
    """True when this process cannot run parallel code: it was forked after numba's
    threading layer started, and that layer is GNU OpenMP (numba's ``omp`` on Linux;
    ``tbb``, ``workqueue`` and other OpenMP runtimes are fork-safe)."""
    if not _forked_after_threads[0]:
        return False
    try:
        if numba.threading_layer() != "omp":
            return False
        from numba.np.ufunc import omppool
    except (ValueError, ImportError):
        return False
    return getattr(omppool, "openmp_vendor", "GNU") == "GNU"


def one_thread_twin(dispatcher):
    """The ``parallel`` function ``dispatcher`` compiled for one thread (cached on disk
    under its own name ``<name>__one_thread``, so that it never replaces the parallel
    build in numba's cache)."""
    twin = _twins.get(id(dispatcher))
    if twin is None:
        func = dispatcher.py_func
        copy = types.FunctionType(func.__code__, func.__globals__,
                                  func.__name__ + "__one_thread", func.__defaults__,
                                  func.__closure__)
        copy.__qualname__ = func.__qualname__ + "__one_thread"
        copy.__module__ = func.__module__
        copy.__doc__ = func.__doc__
        twin = _twins[id(dispatcher)] = _one_thread(copy)
    return twin


def one_thread_only():
    """True where parallel functions run as their one-thread twins: in a process that
    cannot run parallel code (:func:`fork_stranded`) or inside :func:`one_thread_kernels`."""
    return bool(_one_thread_asked[0]) or fork_stranded()


def for_this_process(dispatcher):
    """``dispatcher`` (a ``parallel`` function), or its one-thread twin where
    :func:`one_thread_only`. The twin computes the same values: every kernel sums each
    pixel in one thread anyway."""
    return one_thread_twin(dispatcher) if one_thread_only() else dispatcher


@contextlib.contextmanager
def one_thread_kernels():
    """While active (in this process), :func:`for_this_process` gives the one-thread
    twins, as in a stranded fork: ``nbnumba.compile()`` compiles them this way, and the
    tests compare their images with the parallel kernels'."""
    _one_thread_asked[0] += 1
    try:
        yield
    finally:
        _one_thread_asked[0] -= 1


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
