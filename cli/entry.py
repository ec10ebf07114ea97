"""What every nbnumba command does around its work: exit status and one-line messages.

An expected failure (bad flag, unreadable input, unwritable output) is one line
``PROG: error: ...`` on stderr; an unexpected one is one line ``PROG: internal error: ...``
unless ``NBNUMBA_DEBUG`` is set, when the traceback is shown. Both exit with
:data:`EXIT_ERROR`; an interrupt exits with 130 (128 + the signal number for SIGTERM
handled as an interrupt: 143). A console that cannot take these lines is ignored.
"""
import os
import sys

EXIT_ERROR = 9
EXIT_INTERRUPTED = 130


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


def run_guarded(run, argv, prog, interrupted="interrupted"):
    """``run(argv)``'s exit status; an interrupt or an internal error becomes one line."""
    try:
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
