"""numba's on-disk cache of nbnumba's compiled functions: is it usable, and what compiles.

numba compiles a function the first time it is called with a new signature, after
looking it up in its on-disk cache (one index file per function, keyed by signature,
CPU and the function's bytecode). This module

* records whether that cache can be written at all (:func:`cache_problem`; without a
  writable cache directory :mod:`nbnumba._jit` compiles without caching instead of
  failing at import);
* watches numba's own ``numba:compile`` event, which numba raises only after the cache
  lookup missed, so "about to compile" is never guessed (:class:`CompileWatch`,
  :func:`announce_compiles`);
* tells whether a function has a cache entry for this machine (:func:`cached_here`).

Compiling every variant ahead of time is :func:`nbnumba.compile` (the ``nbnumba
--compile`` command), which renders tiny images through these hooks.

This module sits below the kernels and never imports them: the engine registers a
callback that lists the rendering kernels (:func:`register_kernels`).
"""
import contextlib
import errno
import os
import sys
import threading
import time
import warnings


class CacheWarning(UserWarning):
    """Issued once when numba's cache of compiled code fails while a process runs (its
    file system full, its directory made read-only): nbnumba then compiles without
    caching. (A cache that is unusable from the start, e.g. a missing ``NUMBA_CACHE_DIR``,
    is said by the compile notice and :class:`CompileWarning`.)"""


class CompileWarning(UserWarning):
    """Issued once when a call of the library is about to compile nbnumba's code
    (numba's cache has no entry for this machine): the call takes a minute or so longer.
    Silence it with ``warnings.filterwarnings("ignore", category=nbnumba.CompileWarning)``.
    """

#: rough cold compile time of one rendering kernel (a ``prange`` kernel with the whole
#: pixel loop nest inlined), seconds on one core of a 2-core x86-64 machine; the
#: compile line quotes it. Small helpers (random numbers, statistics) take a few seconds.
KERNEL_COMPILE_SECONDS = 60.0

_cache_problem = None
_silenced = [0]          # > 0: announce_compiles says nothing (ahead-of-time compiling)
_announcing = [0]        # > 0: a command's announce_compiles is active (no warning then)
_kernel_lister = [None]  # callable -> the rendering kernels' dispatchers (the engine's)
_local = threading.local()


def register_kernels(lister):
    """Register ``lister``: a callable returning the dispatchers of the rendering
    kernels (imported on demand), so that :func:`compile_notice` can tell whether they
    are cached without this module importing the kernels."""
    _kernel_lister[0] = lister


def record_cache_problem(reason):
    """Remember that numba cannot cache here (``reason``: one line); see :func:`cache_problem`."""
    global _cache_problem
    if _cache_problem is None:
        _cache_problem = str(reason).splitlines()[0] if str(reason) else "unknown reason"


def cache_directory_problem(directory):
    """Why numba cannot cache in ``directory`` (the ``NUMBA_CACHE_DIR`` value; "" or None:
    not set, numba's own places), one line, or None when it can.

    A missing directory is made only when its parent exists (the directory the user
    named, never the ones above it).
    """
    if not directory:
        return None
    shown = "NUMBA_CACHE_DIR=%s" % directory
    try:
        os.mkdir(directory)
    except FileExistsError:
        pass
    except FileNotFoundError:
        return "%s does not exist (nor does the directory it would go in)" % shown
    except OSError as exc:
        return "%s cannot be made: %s" % (shown, exc.strerror or exc)
    if not os.path.isdir(directory):
        return "%s is not a directory" % shown
    if not os.access(directory, os.W_OK | os.X_OK):
        return "%s is not writable" % shown
    return None


def cache_unusable(reason):
    """Say once (a :class:`CacheWarning`) that compiled code is not cached, and why; from
    now on nbnumba compiles what it decorates without caching."""
    first = _cache_problem is None
    record_cache_problem(reason)
    if first:
        warnings.warn("compiled code is not cached: %s; every run compiles what it needs "
                      "(set NUMBA_CACHE_DIR to a writable directory)" % _cache_problem,
                      CacheWarning, stacklevel=2)


def guard_cache_io(dispatcher):
    """Make a failure of ``dispatcher``'s on-disk cache (a full file system, a directory
    made read-only meanwhile) a cache miss and one :class:`CacheWarning`, never an error
    of the call: a cache that cannot be written must not stop a render."""
    cache = getattr(dispatcher, "_cache", None)
    if cache is None or not hasattr(cache, "save_overload"):
        return
    save, load = cache.save_overload, cache.load_overload

    def save_overload(sig, data):
        try:
            save(sig, data)
        except OSError as exc:
            cache_unusable(_io_reason(exc))

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except OSError as exc:
            cache_unusable(_io_reason(exc))
            return None

    cache.save_overload = save_overload
    cache.load_overload = load_overload


def _io_reason(exc):
    where = getattr(exc, "filename", None)
    where = " (%s)" % os.path.dirname(where) if where else ""
    if exc.errno == errno.ENOSPC:
        return "the cache's file system is full%s" % where
    return "the cache cannot be used%s: %s" % (where, exc.strerror or exc)


def cache_problem():
    """None when compiled functions are cached on disk, else why not (one line).

    A read-only installation without a writable ``NUMBA_CACHE_DIR`` or user cache
    directory cannot cache: nbnumba then compiles in every process (slower start).
    """
    return _cache_problem


def is_nbnumba_function(dispatcher):
    """True when ``dispatcher`` (a numba dispatcher) compiles a function of nbnumba."""
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
    return module == "nbnumba" or module.startswith("nbnumba.")


def is_kernel(dispatcher):
    """True for a parallel rendering kernel (the slow compiles), False for a helper."""
    return bool(getattr(dispatcher, "targetoptions", {}).get("parallel"))


def function_name(dispatcher):
    """``module.qualname`` of the Python function a dispatcher compiles."""
    func = dispatcher.py_func
    return "%s.%s" % (func.__module__, func.__qualname__)


def cached_here(dispatcher):
    """True when numba's cache index of ``dispatcher`` holds an entry for this CPU and
    the function's current bytecode (for any signature); False otherwise, also when the
    function is not cached at all or the index cannot be read."""
    try:
        from numba.core.caching import FunctionCache
        cache = dispatcher._cache
        if not isinstance(cache, FunctionCache):
            return False
        wanted = cache._index_key(None, dispatcher.targetctx.codegen())[1:]
        return any(key[1:] == wanted for key in cache._cache_file._load_index())
    except Exception:  # an unreadable or foreign index: treat as not cached
        return False


def nbnumba_functions():
    """Every numba dispatcher defined in the nbnumba modules imported so far."""
    from numba.core.dispatcher import Dispatcher
    found = {}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "nbnumba" or name.startswith("nbnumba.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and is_nbnumba_function(value):
                found[id(value)] = value
    return list(found.values())


class CompileWatch:
    """Listens to numba's compile events for nbnumba's functions while active.

    ``on_start(dispatcher)`` is called when numba starts compiling one of them (never on
    a cache hit); the watch counts the top-level compiles (a function compiled while
    compiling another is part of it) and their seconds. Use as a context manager.
    """

    def __init__(self, on_start=None):
        self.on_start = on_start
        self.compiled = []        #: [(function name, seconds)] of the top-level compiles
        #: perf_counter() when the compile in progress started; None when none is
        self.compiling_since = None
        self._depth = 0
        self._t0 = None
        self._listener = None

    def _started(self, dispatcher):
        if self._depth == 0:
            self._t0 = time.perf_counter()
            self.compiling_since = self._t0
            if self.on_start is not None:
                self.on_start(dispatcher)
        self._depth += 1

    def _ended(self, dispatcher):
        self._depth -= 1
        if self._depth == 0:
            self.compiled.append((function_name(dispatcher), time.perf_counter() - self._t0))
            self.compiling_since = None

    def __enter__(self):
        from numba.core import event

        watch = self

        class _Listener(event.Listener):
            def on_start(self, ev):
                dispatcher = ev.data["dispatcher"]
                if is_nbnumba_function(dispatcher):
                    watch._started(dispatcher)

            def on_end(self, ev):
                dispatcher = ev.data["dispatcher"]
                if is_nbnumba_function(dispatcher):
                    watch._ended(dispatcher)

        self._listener = _Listener()
        event.register("numba:compile", self._listener)
        return self

    def __exit__(self, *exc):
        from numba.core import event
        event.unregister("numba:compile", self._listener)
        return False

    @property
    def seconds(self):
        """Total seconds of the top-level compiles seen."""
        return sum(s for _, s in self.compiled)


def _duration(seconds):
    if seconds < 20:
        return "a few seconds"
    if seconds < 90:
        return "about a minute"
    return "about %d minutes" % round(seconds / 60.0)


def compile_notice(dispatcher, ahead="'nbnumba --compile'"):
    """The one line said before nbnumba's first compile in a process (no newline).

    Names the function, says that the result is cached (or, without a writable cache,
    that it is not) and how long it roughly takes: a rendering kernel about
    :data:`KERNEL_COMPILE_SECONDS`; when a helper compiles first (in the set-up), the
    estimate covers the kernels (listed by the :func:`register_kernels` callback) that
    have no cache entry for this machine yet. ``ahead``: how to compile ahead of time.
    """
    what = function_name(dispatcher)
    if is_kernel(dispatcher):
        what, seconds = "the rendering kernel " + what, KERNEL_COMPILE_SECONDS
    else:
        lister = _kernel_lister[0]
        kernels = lister() if lister is not None else nbnumba_functions()
        cold = [d for d in kernels if is_kernel(d) and not cached_here(d)]
        if cold:
            what, seconds = what + " and the rendering kernel", KERNEL_COMPILE_SECONDS
        else:
            seconds = 5.0
    problem = cache_problem()
    if problem is not None:
        return ("compiling %s for this run only, %s: %s, so nothing compiled is kept; "
                "set NUMBA_CACHE_DIR to a writable directory to compile once"
                % (what, _duration(seconds), problem))
    return ("compiling %s for this CPU, %s; done once per machine and nbnumba version "
            "(%s compiles every kernel ahead of time)" % (what, _duration(seconds), ahead))


@contextlib.contextmanager
def announce_compiles(prog="nbnumba", stream=None):
    """While active, write ``PROG: compile_notice(...)`` to ``stream`` (default stderr)
    once, when numba starts compiling the first nbnumba function (a cache miss).

    Yields the :class:`CompileWatch` (``.compiled`` lists what was compiled).
    """
    said = []

    def say(dispatcher):
        if said or _silenced[0]:
            return
        said.append(True)
        out = stream if stream is not None else sys.stderr
        try:
            out.write("%s: %s\n" % (prog, compile_notice(dispatcher)))
            out.flush()
        except (OSError, ValueError):  # a closed or full stderr must not stop the run
            pass

    _announcing[0] += 1
    try:
        with CompileWatch(on_start=say) as watch:
            yield watch
    finally:
        _announcing[0] -= 1


def _caller_location():
    """(filename, line number) of the innermost frame outside nbnumba
    (and outside ``contextlib``, through which the library enters this)."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "") or ""
        if not (name in ("nbnumba", "contextlib") or name.startswith("nbnumba.")):
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back
    return "nbnumba", 0


def active_watch():
    """The :class:`CompileWatch` of this thread's :func:`library_notice`, or None."""
    return getattr(_local, "watch", None)


@contextlib.contextmanager
def library_notice():
    """While active (around a library call that may compile), issue a
    :class:`CompileWarning` pointing at the caller's line when numba starts compiling an
    nbnumba function (once per call; nested calls share the outer one's). Nothing is
    issued while a command announces compiles itself or while compiling ahead of time.

    Yields the :class:`CompileWatch` (``compiling_since`` tells when a compile runs).
    """
    outer = getattr(_local, "watch", None)
    if outer is not None:
        yield outer
        return
    filename, lineno = _caller_location()
    said = []

    def warn(dispatcher):
        if said or _silenced[0] or _announcing[0]:
            return
        said.append(True)
        message = "nbnumba: " + compile_notice(dispatcher, ahead="nbnumba.compile()")
        warnings.warn_explicit(message, CompileWarning, filename, lineno)

    with CompileWatch(on_start=warn) as watch:
        _local.watch = watch
        try:
            yield watch
        finally:
            _local.watch = None


@contextlib.contextmanager
def silenced():
    """No :func:`announce_compiles` line while active (the caller reports compiles)."""
    _silenced[0] += 1
    try:
        yield
    finally:
        _silenced[0] -= 1
