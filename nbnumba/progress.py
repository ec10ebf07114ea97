"""Progress reports on stderr: one status line, rewritten in place on a terminal.

Used by the render progress meter of the ``nbnumba`` command and by the series runner;
on a pipe or a log file each report is a line of its own.
"""
import sys


def clock(seconds):
    """``seconds`` (s, float) as ``h:mm:ss`` or ``m:ss``; ``?`` when it is not a number."""
    if seconds != seconds:
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class StatusLine:
    """A line of status text on ``stream`` (default stderr)."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def show(self, text, final=False):
        """Replace the line with ``text`` (on a terminal), else append it; ``final`` ends it.
        A stream that cannot be written is ignored."""
        try:
            if self.tty:
                self.stream.write("\r" + text + ("\n" if final else ""))
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a console that cannot take it never stops the work
            pass
