"""``nbnumba --compile``: :func:`nbnumba.compile` (every kernel variant into numba's
cache, ahead of time), with one line on stderr when compiling starts and one summary
line on stdout.

A cluster image build or a job prologue can pay the compile once, before the first real
run. The test suite checks that after ``--compile`` no golden case compiles anything.
"""
import sys

from .guard import error


def compile_all(prog="nbnumba", stdout=None):
    """Compile every kernel variant into numba's cache; returns the exit status.

    Says one line on stdout: how many functions were compiled and in how many seconds
    (or that all were cached already) and where the cache is. Exit status 9 when
    compiled code cannot be cached here (nothing would be kept).
    """
    from nbnumba.precompile import CompileError, compile as compile_ahead
    stdout = stdout if stdout is not None else sys.stdout
    stderr = sys.stderr

    def starting():
        stderr.write("%s: compiling every kernel variant for this CPU (a few minutes, "
                     "once per machine and nbnumba version) ...\n" % prog)
        stderr.flush()

    try:
        report = compile_ahead(on_start=starting)
    except CompileError as exc:
        return error(prog, str(exc))
    where = ", ".join(report.cache) or "?"
    if report.compiled:
        stdout.write("%s: compiled %d functions in %.1f s (%d variants rendered); cache: %s\n"
                     % (prog, len(report.compiled), report.seconds, report.variants, where))
    else:
        stdout.write("%s: every kernel variant is already compiled (%d variants checked in "
                     "%.1f s); cache: %s\n" % (prog, report.variants, report.seconds, where))
    stdout.flush()
    return 0
