"""Progress reports: a status line on stderr, the render meter, and what ``progress=``
of :func:`nbnumba.simulate` and :func:`nbnumba.render` accepts.

The status line is rewritten in place on a terminal; on a pipe or a log file each
report is a line of its own. Used by the library (``progress=True``), the ``nbnumba``
command and the series runner.
"""
import sys
import time

from .errors import check_callback


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
        self._width = 0          # length of the text on the terminal's line

    def show(self, text, final=False):
        """Replace the line with ``text`` (on a terminal), else append it; ``final`` ends it.
        A stream that cannot be written is ignored."""
        try:
            if self.tty:  # spaces over the rest of a longer previous text
                padded = text.ljust(self._width)
                self._width = 0 if final else len(text)
                self.stream.write("\r" + padded + ("\n" if final else ""))
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a console that cannot take it never stops the work
            pass


#: evaluations per second and thread assumed when estimating a render's length: below
#: what the kernels reach on any current x86-64 core, so that the estimate is an upper one
PLANNING_RATE = 4.0e6

#: shown while numba compiles a kernel, followed by the time spent so far
COMPILING = "compiling the kernel (once per machine) ..."


def expected_seconds(pixels, per_pixel, threads):
    """Upper estimate (s) of how long rendering ``pixels`` pixels of ``per_pixel``
    evaluations each takes on ``threads`` threads, at :data:`PLANNING_RATE` evaluations
    per second and thread (compiling not included)."""
    return pixels * max(per_pixel, 1) / (PLANNING_RATE * max(int(threads), 1))


class ProgressMeter:
    """A meter on ``stream`` (default stderr): ``meter(rows_done, rows_total)`` prints
    ``NN% done, m:ss elapsed, m:ss left``; :meth:`compiling` shows the compile state
    (``compiling the kernel (once per machine) ... 0:12``) and :meth:`rendering` starts
    the rate clock again, so that compile time never enters the rate or the time left.

    Silent until ``delay`` seconds have passed (a short render stays silent), then a line
    at most every ``interval`` seconds, rewritten in place on a terminal.
    ``expected_seconds``: the render's planned length (see :func:`expected_seconds`);
    when it is at least ``delay``, a ``0% done`` line with it as an upper estimate of the
    time left is shown at once.
    """

    def __init__(self, stream=None, delay=1.0, interval=2.0, expected_seconds=None):
        self.line = StatusLine(stream)
        self.delay = delay
        self.interval = interval
        self.start = time.perf_counter()
        self.first = None        # (time, rows done) when the rate clock started
        self.last = None         # time of the last line shown
        self.compiled = 0.0      # seconds spent compiling while the meter ran
        self._compile_text = None
        if expected_seconds is not None and expected_seconds >= delay:
            self._show(0.0, 0, 1, expected_seconds, bound=True)

    def _show(self, elapsed, done, total, eta, bound=False):
        self.last = time.perf_counter()
        text = "%3d%% done, %s elapsed, %s%s left" % (100 * done / total, clock(elapsed),
                                                       "at most about " if bound else "",
                                                       clock(eta))
        self.line.show(text, final=done >= total)

    def compiling(self, seconds):
        """numba has been compiling for ``seconds`` (s): show the compile state (on a
        terminal whenever its clock changes, elsewhere every ``interval``)."""
        text = "%s %s" % (COMPILING, clock(seconds))
        now = time.perf_counter()
        due = (self._compile_text is None or (self.line.tty and text != self._compile_text)
               or now - (self.last or 0.0) >= self.interval)
        self._compile_text = text
        if due:
            self.last = now
            self.line.show(text)

    def rendering(self, compile_seconds=0.0):
        """Rendering (re)starts after ``compile_seconds`` (s) of compiling: the rate clock
        starts at the next report."""
        self.compiled += compile_seconds
        self.first = None
        self._compile_text = None

    def __call__(self, done, total):
        now = time.perf_counter()
        if total <= 0:
            return
        finished = done >= total
        if self.first is None:
            self.first = (now, done)
            if not (finished and self.last is not None):
                return
        elapsed = now - self.start
        if self.last is None and elapsed < self.delay:
            return    # silent until the render has taken `delay`; a short one stays silent
        if self.last is not None and now - self.last < self.interval and not finished:
            return
        t0, d0 = self.first
        rate = (done - d0) / (now - t0) if done > d0 and now > t0 else 0.0
        eta = 0.0 if finished else (total - done) / rate if rate > 0 else float("nan")
        self._show(elapsed, done, total, eta)


#: the longest time (s) between two calls of a progress callable during a render
CALL_INTERVAL = 1.0


class Reporter:
    """Feeds a render's progress (rows done of rows total) to what ``progress=`` gave:
    a callable ``(done, total)``, a tqdm-like object (``update(n)``, ``total``) or a
    :class:`ProgressMeter`. Use :func:`reporter` to make one."""

    def __init__(self, target, kind):
        self.target = target
        self.kind = kind            # "call", "bar" or "meter"
        self.reported = 0
        self.when = None
        self._compile_start = None

    def update(self, done, total):
        """Report ``done`` of ``total`` rows when it changed (a callable: also when
        :data:`CALL_INTERVAL` passed since its last call)."""
        now = time.perf_counter()
        if self._compile_start is not None:
            if self.kind == "meter":
                self.target.rendering(now - self._compile_start)
            self._compile_start = None
        if self.kind == "bar":
            if getattr(self.target, "total", None) is None:
                self.target.total = total
            if done > self.reported:
                self.target.update(done - self.reported)
                self.reported = done
            return
        if (done != self.reported or self.when is None or done >= total
                or now - self.when >= CALL_INTERVAL):
            self.reported, self.when = done, now
            self.target(done, total)

    def compiling(self, seconds):
        """numba has been compiling for ``seconds`` (s) (only the meter shows it)."""
        if self._compile_start is None:
            self._compile_start = time.perf_counter() - seconds
        if self.kind == "meter":
            self.target.compiling(seconds)


def reporter(progress, expected=None):
    """A :class:`Reporter` for ``progress`` (None when it is None or False).

    progress: None/False (silent), True (a :class:`ProgressMeter` on stderr, given the
    ``expected`` seconds), a tqdm-like object (has ``update`` and ``total``), a
    :class:`ProgressMeter`, or a callable ``(rows_done, rows_total)``. Anything else
    raises :class:`nbnumba.ConfigError`.
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        return Reporter(ProgressMeter(expected_seconds=expected), "meter")
    if isinstance(progress, ProgressMeter):
        return Reporter(progress, "meter")
    if callable(getattr(progress, "update", None)) and hasattr(progress, "total"):
        return Reporter(progress, "bar")
    if callable(progress):
        check_callback(progress, "progress", ("rows_done", "rows_total"))
        return Reporter(progress, "call")
    from .config import ConfigError, shown
    raise ConfigError("progress must be None, False, True, a callable (rows_done, rows_total) "
                      "or a tqdm-like object with update() and total; got %s" % shown(progress))
