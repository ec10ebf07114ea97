"""What every nbnumba command does around its work: exit status and one-line messages.

An expected failure (bad flag, unreadable input, unwritable output) is one line
``PROG: error: ...`` on stderr; an unexpected one is one line ``PROG: internal error: ...``
unless ``NBNUMBA_DEBUG`` is set, when the traceback is shown. Both exit with
:data:`EXIT_ERROR`; an interrupt exits with 130 (128 + the signal number for SIGTERM
handled as an interrupt: 143). A console that cannot take these lines is ignored. A
Python warning raised while a command runs is one line: a note of the library (a plain
``UserWarning``: an empty region of interest ...) ``PROG: note: ...``, any other warning
(NumPy's ``RuntimeWarning``, a ``CacheWarning``) ``PROG: warning: ...``.
"""
import contextlib
import os
import signal
import sys
import warnings

from . import stopsignals

EXIT_ERROR = 9
EXIT_INTERRUPTED = 130

#: most numba threads allowed per CPU (and at least MIN_THREAD_LIMIT in all): numba
#: starts every thread at the first parallel call, and a huge count crashes the process
THREADS_PER_CPU = 8
MIN_THREAD_LIMIT = 64


def one_line(text):
    """``text`` with line breaks and other unprintable characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def say_error(text):
    """Write ``text`` to stderr; a stderr that cannot take it is ignored."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # AttributeError: no stderr (2>&-)
        pass


def error(prog, message):
    """Write ``PROG: error: MESSAGE`` to stderr as one line; return :data:`EXIT_ERROR`."""
    say_error("%s: error: %s\n" % (prog, one_line(str(message))))
    return EXIT_ERROR


def say_stopped(prog, signum, interrupted="interrupted", terminated="terminated"):
    """Write the one line of a command stopped by a signal (``PROG: TERMINATED`` for
    SIGTERM, ``PROG: INTERRUPTED`` for Ctrl-C: signum None or SIGINT); return its exit
    status (143, 130)."""
    if signum is None or signum == signal.SIGINT:
        say_error("%s: %s\n" % (prog, interrupted))
        return EXIT_INTERRUPTED
    say_error("%s: %s\n" % (prog, terminated))
    return 128 + int(signum)


def version():
    """The installed nbnumba version string (imported only when asked for)."""
    from nbnumba import __version__
    return __version__


def thread_limit():
    """The largest accepted ``NUMBA_NUM_THREADS`` on this machine."""
    return max(MIN_THREAD_LIMIT, THREADS_PER_CPU * (os.cpu_count() or 1))


def environment_problem(environ=None):
    """None, or a one-line description of an environment value numba cannot start with.

    Checks ``NUMBA_NUM_THREADS``: numba prints a traceback for 0 or a negative count,
    warns and ignores text, and crashes (segmentation fault) when it cannot start a
    huge number of threads. Accepted: an integer from 1 to :func:`thread_limit`.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("NUMBA_NUM_THREADS")
    if text is None:
        return None
    limit = thread_limit()
    try:
        count = int(text.strip())
    except ValueError:
        count = None
    if count is None or not 1 <= count <= limit:
        return ("NUMBA_NUM_THREADS=%s is not a thread count from 1 to %d (%d per CPU); "
                "unset it to use every core" % (text, limit, THREADS_PER_CPU))
    return None


#: NUMBA_THREADING_LAYER values, and the layers of which one must load for each
THREADING_LAYERS = {"default": (), "workqueue": (), "forksafe": (), "tbb": ("tbb",),
                    "safe": ("tbb",), "omp": ("omp",), "threadsafe": ("tbb", "omp")}


def _layer_loads(layer):
    try:
        if layer == "tbb":
            from numba.np.ufunc.parallel import _check_tbb_version_compatible
            _check_tbb_version_compatible()
            from numba.np.ufunc import tbbpool  # noqa: F401
        else:
            from numba.np.ufunc import omppool  # noqa: F401
    except ImportError:
        return False
    return True


def threading_layer_problem(environ=None):
    """None, or one line saying why numba cannot start the ``NUMBA_THREADING_LAYER``
    asked for (an unknown name, or TBB / OpenMP not installed); numba itself says so
    only at the first parallel call, as a multi-line exception."""
    environ = os.environ if environ is None else environ
    text = environ.get("NUMBA_THREADING_LAYER")
    if text is None:
        return None
    layer = text.strip().lower()
    if layer not in THREADING_LAYERS:
        return ("NUMBA_THREADING_LAYER=%s is not a numba threading layer (one of %s); unset "
                "it to let numba choose" % (text, ", ".join(THREADING_LAYERS)))
    needed = THREADING_LAYERS[layer]
    if needed and not any(_layer_loads(name) for name in needed):
        missing = " or ".join({"tbb": "Intel TBB (pip install tbb)",
                               "omp": "OpenMP"}[name] for name in needed)
        return ("NUMBA_THREADING_LAYER=%s needs %s, which cannot be loaded here; unset it "
                "to let numba choose" % (text, missing))
    return None


@contextlib.contextmanager
def warnings_as_lines(prog):
    """Inside the block, a Python warning is one line on stderr, never Python's file name,
    line number and source line: ``PROG: note: MESSAGE`` for a plain ``UserWarning`` (the
    library's notes, which it points at the caller's line, meaningless to a command's
    user), ``PROG: warning: MESSAGE`` for any other (a NumPy ``RuntimeWarning``, a
    :class:`nbnumba.compilecache.CacheWarning`)."""
    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message).strip().splitlines()
        kind = "note" if category is UserWarning else "warning"
        say_error("%s: %s: %s\n" % (prog, kind, one_line(text[0] if text else
                                                         category.__name__)))

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def raise_if_stopped():
    """Raise the stop exception of a stop signal received already: an error raised while
    one was on its way (a library that turned the exception into another one, numba's
    ``ImportError`` for a C module whose import it cut) is that stop, not a failure; and
    a stop that code the command ran swallowed (C code that clears errors, a bare
    ``except`` while a module loads) is acted on at the next such checkpoint, before the
    command's work, instead of at its end."""
    signum = stopsignals.received()
    if signum is not None and _RUN["stop_before"] is None:
        raise stopsignals.stop_exception(signum)


#: the stop signal noted before the command in progress began (a process that runs
#: several commands in turn, as the tests do: an old one is not this command's stop)
_RUN = {"stop_before": None}


def run_guarded(run, argv, prog, interrupted="interrupted", numba=False,
                terminated="terminated"):
    """``run(argv)``'s exit status; an interrupt or an internal error becomes one line
    (an internal error raised after a stop signal arrived is that stop: ``interrupted``
    or ``terminated``).

    numba: the command compiles or runs nbnumba's kernels: check the environment first
    (:func:`environment_problem`) and say so in one line on stderr before numba compiles
    a function that is not in its cache (:func:`nbnumba.compilecache.announce_compiles`).
    """
    earlier = _RUN["stop_before"] = stopsignals.received()
    try:
        with warnings_as_lines(prog):
            if not numba:
                return run(argv)
            problem = environment_problem() or threading_layer_problem()
            if problem is not None:
                return error(prog, problem)
            from nbnumba.compilecache import announce_compiles
            with announce_compiles(prog):
                return run(argv)
    except KeyboardInterrupt as exc:
        return say_stopped(prog, getattr(exc, "signum", None), interrupted, terminated)
    except MemoryError:
        return error(prog, "not enough memory for this run")
    except Exception as exc:  # an internal error: report it in one line
        if earlier is None and stopsignals.received() is not None:
            return say_stopped(prog, stopsignals.received(), interrupted, terminated)
        if os.environ.get("NBNUMBA_DEBUG"):
            raise
        say_error("%s: internal error: %s: %s (set NBNUMBA_DEBUG=1 for details)\n"
                  % (prog, type(exc).__name__, one_line(str(exc))))
        return EXIT_ERROR
