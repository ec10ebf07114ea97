"""A progress meter on stderr for long renders: percent done, elapsed time, ETA.

Silent for renders shorter than ``delay`` seconds; afterwards it reports at most every
``interval`` seconds (in place on a terminal, one line per report otherwise). Rendering
goes in row blocks and the meter is called between blocks, so it costs nothing inside
the kernel. The rate (and so the ETA) is measured from the first block on, so a first
block that includes kernel compilation does not distort the estimate.
"""
import sys
import time


class ProgressMeter:
    def __init__(self, stream=None, delay=1.0, interval=2.0):
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.interval = interval
        self.start = time.perf_counter()
        self.first = None        # (time, rows done) after the first block
        self.last = None
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

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
        text = "%3d%% done, %s elapsed, %s left" % (100 * done / total, _clock(elapsed),
                                                     _clock(eta))
        if self.tty:
            self.stream.write("\r" + text + ("\n" if done >= total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _clock(seconds):
    if seconds != seconds:
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
