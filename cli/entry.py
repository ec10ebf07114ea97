"""The installed console scripts start here (:func:`nbnumba`, :func:`nbnumba_series`).

They check the environment numba reads at import (``NUMBA_NUM_THREADS``) before
importing anything that imports numba, so that a bad value is one line, not a traceback
or a crash. Exit statuses and one-line messages: :mod:`nbnumba_cli.guard`.
"""
import contextlib
import os
import sys

from .guard import (EXIT_ERROR, EXIT_INTERRUPTED, MIN_THREAD_LIMIT, THREADS_PER_CPU,  # noqa: F401
                    environment_problem, error, one_line, run_guarded, say_error, thread_limit,
                    version)


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
