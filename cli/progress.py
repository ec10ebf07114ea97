"""A progress meter on stderr for long renders: percent done, elapsed time, ETA.

Rendering goes in blocks of rows and the meter is called between blocks, so it costs
nothing inside the kernel. :func:`render_plan` sizes the blocks from the work per row so
that a block takes a fraction of a second, and tells how long the render may take: a
render expected to take longer than ``delay`` seconds shows a ``0% done`` line at once,
then a line at most every ``interval`` seconds (in place on a terminal, one line per
report otherwise). Short renders stay silent. The rate (and so the ETA) is measured from
the end of the first block on, so a first block that includes kernel compilation does
not distort the estimate.
"""
import time

from nbnumba.progress import StatusLine, clock

#: evaluations per second and thread assumed when planning blocks: below what the
#: kernels reach on any current x86-64 core, so that blocks end up shorter, not longer
PLANNING_RATE = 4.0e6

#: seconds of work per block (at :data:`PLANNING_RATE`)
BLOCK_SECONDS = 0.25

#: at least this many blocks per render when rows allow, for a smooth meter
MIN_BLOCKS = 50


def evaluations_per_pixel(setup):
    """Inner-loop evaluations of one pixel: sub-pixels x sensor layers x sources x phi
    steps x mosaic domains."""
    return (setup.oversample ** 2 * max(setup.layers, 1) * len(setup.sources.wavelengths)
            * max(setup.phi_steps, 1) * max(setup.mosaic_domains, 1))


def render_plan(setup, threads):
    """(rows per block, expected seconds) for rendering ``setup`` on ``threads`` threads.

    A block is about :data:`BLOCK_SECONDS` of work at :data:`PLANNING_RATE` per thread,
    at least one row per thread (rows are what the threads share) and at most
    1/:data:`MIN_BLOCKS` of the rows. The expected seconds use the same rate, so they
    overestimate on fast machines.
    """
    from nbnumba.engine import region_rows
    row0, row1, col0, col1 = region_rows(setup)
    rows, cols = row1 - row0, col1 - col0
    threads = max(int(threads), 1)
    per_row = max(cols * evaluations_per_pixel(setup), 1)
    rate = PLANNING_RATE * threads
    block = int(BLOCK_SECONDS * rate / per_row)
    block = max(threads, min(block, rows // MIN_BLOCKS))
    return max(block, 1), rows * per_row / rate


class ProgressMeter:
    """Callable ``meter(rows_done, rows_total)`` for :func:`nbnumba.render`'s ``progress``.

    ``delay`` and ``interval`` are in seconds; ``stream`` defaults to stderr.
    ``expected_seconds``: the render's expected length (see :func:`render_plan`); when it
    is at least ``delay``, a ``0% done`` line with that estimate as the time left ("at most
    about ...") is shown immediately.
    """

    def __init__(self, stream=None, delay=1.0, interval=2.0, expected_seconds=None):
        self.line = StatusLine(stream)
        self.delay = delay
        self.interval = interval
        self.start = time.perf_counter()
        self.first = None        # (time, rows done) after the first block
        self.last = None         # time of the last line shown
        if expected_seconds is not None and expected_seconds >= delay:
            # before any block has run, the plan's (deliberately slow) rate bounds the ETA
            self._show(0.0, 0, 1, expected_seconds, bound=True)

    def _show(self, elapsed, done, total, eta, bound=False):
        self.last = time.perf_counter()
        text = "%3d%% done, %s elapsed, %s%s left" % (100 * done / total, clock(elapsed),
                                                       "at most about " if bound else "",
                                                       clock(eta))
        self.line.show(text, final=done >= total)

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
