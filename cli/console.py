"""Console text that can never cost a run its images.

The images are what a run is for; the lines on stdout and stderr are a report of it.
:class:`ConsoleStream` wraps a text stream so that a failed write (``> /dev/full``, a
closed pipe, a strict encoding that cannot show a file name) is noted once instead of
raised, and later text to that stream is dropped.
"""
import contextlib
import os
import signal
import sys

from . import stopsignals
from .stopsignals import Terminated


class ConsoleStream:
    """A text stream whose write and flush never raise ``OSError`` or encoding errors.

    ``failure`` holds the first ``OSError`` (None while every write succeeded). Text
    the stream's encoding cannot represent is written with backslash escapes.
    """

    def __init__(self, stream):
        self.stream = stream
        self.failure = None if stream is not None else OSError("stream closed")

    def write(self, text):
        if self.failure is not None:
            return
        try:
            try:
                self.stream.write(text)
            except UnicodeEncodeError:
                encoding = getattr(self.stream, "encoding", None) or "ascii"
                self.stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
        except OSError as exc:
            self.failure = exc
        except (ValueError, AttributeError):  # the stream was closed
            self.failure = OSError("stream closed")

    def flush(self):
        if self.failure is not None:
            return
        try:
            self.stream.flush()
        except OSError as exc:
            self.failure = exc
        except (ValueError, AttributeError):
            self.failure = OSError("stream closed")

    def isatty(self):
        try:
            return self.stream.isatty()
        except (OSError, ValueError, AttributeError):
            return False


def failure_note(prog, stream):
    """One line for stderr saying that ``stream``'s text was lost (None if it was not)."""
    if stream.failure is None:
        return None
    reason = getattr(stream.failure, "strerror", None) or str(stream.failure)
    return "%s: warning: console output was lost (%s); the output files were written" % (
        prog, reason)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Inside the block, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``), so
    it stops a run the way Ctrl-C does: temporary files removed, old outputs kept (the
    console scripts install this handler at their first instruction already:
    :mod:`nbnumba_cli.stopsignals`)."""
    try:
        previous = signal.signal(signal.SIGTERM, stopsignals.handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def reopen_closed_standard_streams():
    """Give a closed standard descriptor (``>&-``, ``2>&-``) ``/dev/null``, so that no
    file opened later takes its number (text meant for the console would land in an
    image), and a ``sys.stdout``/``sys.stderr`` that Python left as None a stream that
    discards text. Returns the names of the streams that were closed."""
    import os
    closed = []
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                opened = os.open(os.devnull, os.O_RDWR)
                if opened != fd:
                    os.dup2(opened, fd)
                    os.close(opened)
                os.set_inheritable(fd, True)
            closed.append(name)
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))
    return closed


def flush_quietly():
    """Flush stdout and stderr, ignoring a console that cannot take the text."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


__all__ = ["ConsoleStream", "failure_note", "Terminated", "sigterm_as_interrupt",
           "flush_quietly", "reopen_closed_standard_streams"]


def leave(prog, code, interrupted="interrupted", terminated="terminated"):
    """Flush the console quietly and exit with ``code`` at once (every output file is
    complete and closed by now; interpreter shutdown would only add time). A stop signal
    whose exception was lost on its way, or that arrives now (it is only noted from here
    on), still ends the command as stopped
    (:func:`nbnumba_cli.stopsignals.exit_status`), with its line."""
    from .guard import say_stopped
    stopsignals.ignore()
    flush_quietly()
    os._exit(stopsignals.exit_status(
        code, lambda signum: say_stopped(prog, signum, interrupted, terminated)))
