"""A progress meter on stderr for long renders: percent done, elapsed time, ETA.

Silent for renders shorter than ``delay`` seconds; afterwards it reports at most every
``interval`` seconds (in place on a terminal, one line per report otherwise). Rendering
goes in row blocks and the meter is called between blocks, so it costs nothing inside
the kernel. The rate (and so the ETA) is measured from the first block on, so a first
block that includes kernel compilation does not distort the estimate.
"""
import time

from nbnumba.progress import StatusLine, clock


class ProgressMeter:
    """Callable ``meter(rows_done, rows_total)`` for :func:`nbnumba.render`'s ``progress``.

    ``delay`` and ``interval`` are in seconds; ``stream`` defaults to stderr.
    """

    def __init__(self, stream=None, delay=1.0, interval=2.0):
        self.line = StatusLine(stream)
        self.delay = delay
        self.interval = interval
        self.start = time.perf_counter()
        self.first = None        # (time, rows done) after the first block
        self.last = None

    def __call__(self, done, total):
        now = time.perf_counter()
        if self.first is None:
            self.first = (now, done)
            return
        elapsed = now - self.start
        if elapsed < self.delay or total <= 0:
            return
        if self.last is not None and now - self.last < self.interval and done < total:
            return
        self.last = now
        t0, d0 = self.first
        rate = (done - d0) / (now - t0) if done > d0 and now > t0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("nan")
        text = "%3d%% done, %s elapsed, %s left" % (100 * done / total, clock(elapsed),
                                                     clock(eta))
        self.line.show(text, final=done >= total)

