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

Compiling every variant ahead of time is the ``nbnumba --compile`` command
(:mod:`nbnumba_cli.precompile`), which renders tiny images through these hooks.
"""
import contextlib
import sys
import time

#: rough cold compile time of one rendering kernel (a ``prange`` kernel with the whole
#: pixel loop nest inlined), seconds on one core of a 2-core x86-64 machine; the
#: compile line quotes it. Small helpers (random numbers, statistics) take a few seconds.
KERNEL_COMPILE_SECONDS = 60.0

_cache_problem = None
_silenced = [0]          # > 0: announce_compiles says nothing (ahead-of-time compiling)


def record_cache_problem(reason):
    """Remember that numba cannot cache here (``reason``: one line); see :func:`cache_problem`."""
    global _cache_problem
    if _cache_problem is None:
        _cache_problem = str(reason).splitlines()[0] if str(reason) else "unknown reason"


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
        self._depth = 0
        self._t0 = None
        self._listener = None

    def _started(self, dispatcher):
        if self._depth == 0:
            self._t0 = time.perf_counter()
            if self.on_start is not None:
                self.on_start(dispatcher)
        self._depth += 1

    def _ended(self, dispatcher):
        self._depth -= 1
        if self._depth == 0:
            self.compiled.append((function_name(dispatcher), time.perf_counter() - self._t0))

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


def compile_notice(dispatcher):
    """The one line said before nbnumba's first compile in a process (no newline).

    Names the function, says that the result is cached (or, without a writable cache,
    that it is not) and how long it roughly takes: a rendering kernel about
    :data:`KERNEL_COMPILE_SECONDS`; when a helper compiles first (in the set-up), the
    estimate covers the kernels that have no cache entry for this machine yet.
    """
    what = function_name(dispatcher)
    if is_kernel(dispatcher):
        what, seconds = "the rendering kernel " + what, KERNEL_COMPILE_SECONDS
    else:
        from .kernels import get_backend
        get_backend("cpu")  # import the CPU kernels to see whether they are cached
        cold = [d for d in nbnumba_functions() if is_kernel(d) and not cached_here(d)]
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
            "('nbnumba --compile' compiles every kernel ahead of time)"
            % (what, _duration(seconds)))


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

    with CompileWatch(on_start=say) as watch:
        yield watch


@contextlib.contextmanager
def silenced():
    """No :func:`announce_compiles` line while active (the caller reports compiles)."""
    _silenced[0] += 1
    try:
        yield
    finally:
        _silenced[0] -= 1
