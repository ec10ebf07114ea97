"""The installed console scripts start here (:func:`nbnumba`, :func:`nbnumba_series`).

They check the environment numba reads at import (``NUMBA_NUM_THREADS``) before
importing anything that imports numba, so that a bad value is one line, not a traceback
or a crash. Exit statuses and one-line messages: :mod:`nbnumba_cli.guard`.

The stop-signal handlers (:mod:`nbnumba_cli.stopsignals`) are the first thing a script
does: this module imports nothing else at the top (``guard`` is imported once they are
in place), so that only Python's own start-up runs before them.
"""
import contextlib
import os
import sys

from . import stopsignals


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


def _numba_warning_problem(caught):
    """One line for the first warning numba gave at import about a setting it could not
    parse (``NUMBA_OPT=abc``, ``NUMBA_NUM_THREADS=''``, a value in .numba_config.yaml),
    or None. numba's own warning carries a traceback; it is replaced by this line."""
    for w in caught:
        text = str(w.message)
        if not text.startswith("Environment variable '"):
            continue
        name = text.split("'")[1]
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        cause = lines[-1] if lines else text
        if name in os.environ:
            return "numba cannot use %s=%r: %s" % (name, os.environ[name], cause)
        return ("numba cannot use the %s value set in .numba_config.yaml in the current "
                "directory: %s" % (name, cause))
    return None


def _import_numba():
    """Import numba (without what nbnumba never uses); None, or one line saying why its
    configuration (environment or ``.numba_config.yaml``) is unusable."""
    import warnings

    from . import guard
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with _lean_numba_import():
                import numba  # noqa: F401
        except Exception as exc:  # numba reads .numba_config.yaml at import
            guard.raise_if_stopped()   # a stop signal cut the import short, not numba
            first = guard.one_line(str(exc).splitlines()[0] if str(exc) else "")
            if os.path.isfile(".numba_config.yaml"):
                return ("numba cannot read .numba_config.yaml in the current directory "
                        "(%s: %s); fix or remove it" % (type(exc).__name__, first))
            return "numba cannot start: %s: %s" % (type(exc).__name__, first)
    problem = _numba_warning_problem(caught)
    for w in caught:  # the other warnings, as Python would have shown them
        if problem is None or not str(w.message).startswith("Environment variable '"):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return problem


def _start(prog):
    """Make closed standard streams harmless, check the environment before numba is
    imported, then import numba (exit 9 with one line on a problem)."""
    from .console import reopen_closed_standard_streams
    reopen_closed_standard_streams()
    from . import guard
    problem = (guard.environment_problem() or _import_numba()
               or guard.threading_layer_problem())
    if problem is not None:
        sys.exit(guard.error(prog, problem))


def _stopped_at_start(prog, exc):
    """Ctrl-C or SIGTERM before the command's own handling is in place: one line, exit
    130 or 143. ``exc``: the ``KeyboardInterrupt``, or the error a stop signal became
    on its way (Python wraps one raised in ``__set_name__`` in a ``RuntimeError``, numba
    turns one in its import into an ``ImportError``); any other error is raised again."""
    if isinstance(exc, KeyboardInterrupt):
        signum = getattr(exc, "signum", None)
    elif stopsignals.received() is not None:
        signum = stopsignals.received()
    else:
        raise exc
    stopsignals.ignore()   # a second signal must not cut this short
    from .guard import say_stopped
    os._exit(say_stopped(prog, signum))


def _launch(prog, load_console):
    """Install the stop-signal handlers first, check the environment (before numba is
    imported), then run the command's ``console()`` (``load_console()`` imports and
    returns it); a stop signal before the command's own handling is in place is one
    line."""
    try:
        stopsignals.install()   # in the try: a signal may land as soon as it is in place
        _start(prog)
        from .guard import raise_if_stopped, warnings_as_lines
        with warnings_as_lines(prog):
            console = load_console()
        raise_if_stopped()   # one that code run by the imports swallowed (a bare except)
    except (KeyboardInterrupt, Exception) as exc:
        _stopped_at_start(prog, exc)
    console()


def nbnumba():
    """The ``nbnumba`` console script: :func:`nbnumba_cli.main.console` after the
    environment check, which runs before numba is imported."""
    def load():
        from .main import console
        return console
    _launch("nbnumba", load)


def nb_nonbragg():
    """The ``nb-nonbragg`` console script (:func:`nbnumba_cli.nonbragg.console`)."""
    def load():
        from .nonbragg import console
        return console
    _launch("nb-nonbragg", load)


def nb_noisify():
    """The ``nb-noisify`` console script (:func:`nbnumba_cli.noisify.console`)."""
    def load():
        from .noisify import console
        return console
    _launch("nb-noisify", load)


def nbnumba_series():
    """The ``nbnumba-series`` console script: :func:`nbnumba_cli.series.main` after the
    environment check, which runs before numba is imported."""
    try:
        stopsignals.install()
        _start("nbnumba-series")
        from .guard import raise_if_stopped, warnings_as_lines
        with warnings_as_lines("nbnumba-series"):
            from .series import main
        raise_if_stopped()
    except (KeyboardInterrupt, Exception) as exc:
        _stopped_at_start("nbnumba-series", exc)
    sys.exit(main())
