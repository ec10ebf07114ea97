"""What every nbnumba command does around its work: exit status and one-line messages.

An expected failure (bad flag, unreadable input, unwritable output) is one line
``PROG: error: ...`` on stderr; an unexpected one is one line ``PROG: internal error: ...``
unless ``NBNUMBA_DEBUG`` is set, when the traceback is shown. Both exit with
:data:`EXIT_ERROR`; an interrupt exits with 130 (128 + the signal number for SIGTERM
handled as an interrupt: 143). A console that cannot take these lines is ignored.

The installed console scripts start here (:func:`nbnumba`, :func:`nbnumba_series`): they
check the environment numba reads at import (``NUMBA_NUM_THREADS``) before importing
anything that imports numba, so that a bad value is one line, not a traceback or a crash.
"""
import contextlib
import os
import sys

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
    except (OSError, ValueError):
        pass


def error(prog, message):
    """Write ``PROG: error: MESSAGE`` to stderr as one line; return :data:`EXIT_ERROR`."""
    say_error("%s: error: %s\n" % (prog, one_line(str(message))))
    return EXIT_ERROR


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
    if text is None or text.strip() == "":
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


def run_guarded(run, argv, prog, interrupted="interrupted", numba=False):
    """``run(argv)``'s exit status; an interrupt or an internal error becomes one line.

    numba: the command compiles or runs nbnumba's kernels: check the environment first
    (:func:`environment_problem`) and say so in one line on stderr before numba compiles
    a function that is not in its cache (:func:`nbnumba.compilecache.announce_compiles`).
    """
    try:
        if not numba:
            return run(argv)
        problem = environment_problem()
        if problem is not None:
            return error(prog, problem)
        from nbnumba.compilecache import announce_compiles
        with announce_compiles(prog):
            return run(argv)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", None)
        if signum is not None:  # SIGTERM handled as an interrupt
            say_error("%s: terminated\n" % prog)
            return 128 + int(signum)
        say_error("%s: %s\n" % (prog, interrupted))
        return EXIT_INTERRUPTED
    except Exception as exc:  # an internal error: report it in one line
        if os.environ.get("NBNUMBA_DEBUG"):
            raise
        say_error("%s: internal error: %s: %s (set NBNUMBA_DEBUG=1 for details)\n"
                  % (prog, type(exc).__name__, one_line(str(exc))))
        return EXIT_ERROR


@contextlib.contextmanager
def _lean_numba_import():
    """Skip what numba imports at start-up that nbnumba never uses (about 10% of
    numba's import time): SciPy, imported only to check its version, and PyYAML, used
    only to read a ``.numba_config.yaml`` in the current directory (kept when one is
    there). Both stay importable afterwards."""
    hidden = [name for name in ("scipy", "yaml") if name not in sys.modules]
    if os.path.exists(".numba_config.yaml") and "yaml" in hidden:
        hidden.remove("yaml")
    if "numba" in sys.modules:
        hidden = []
    for name in hidden:
        sys.modules[name] = None
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def _start(prog):
    """Check the environment before numba is imported (exit 9 with one line on a
    problem), then import numba without what nbnumba never uses."""
    problem = environment_problem()
    if problem is not None:
        sys.exit(error(prog, problem))
    with _lean_numba_import():
        import numba  # noqa: F401


def nbnumba():
    """The ``nbnumba`` console script: :func:`nbnumba_cli.main.console` after the
    environment check, which runs before numba is imported."""
    _start("nbnumba")
    from .main import console
    console()


def nbnumba_series():
    """The ``nbnumba-series`` console script: :func:`nbnumba_cli.series.main` after the
    environment check, which runs before numba is imported."""
    _start("nbnumba-series")
    from .series import main
    sys.exit(main())
