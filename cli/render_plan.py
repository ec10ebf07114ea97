"""How a render is cut into blocks, and what to say before a long one.

The kernels run a block of rows without returning to Python, so Ctrl-C and SIGTERM take
effect between blocks. The block size is chosen from an estimate of the work (pixel
evaluations x a measured cost per evaluation) so that a block takes about
:data:`BLOCK_SECONDS`; one row is the smallest block. Renders estimated to take longer
than :data:`ANNOUNCE_SECONDS` are announced with their estimated duration before they
start.
"""
from dataclasses import dataclass

from nbnumba import engine
from nbnumba.kernels import cpu_backend

#: target wall time of one block of rows (s)
BLOCK_SECONDS = 0.25

#: renders estimated to take longer than this (s) are announced on stderr
ANNOUNCE_SECONDS = 10.0

#: approximate cost of one evaluation (source x phi step x mosaic domain x sub-pixel x
#: sensor layer) on one core (s): the batched fast path and the one-at-a-time path
SECONDS_PER_EVALUATION = {"batched": 2e-8, "serial": 1e-7}


@dataclass
class RenderPlan:
    block_rows: int        #: rows per kernel call
    seconds: float         #: estimated render time (s)
    row_seconds: float     #: estimated time of one row (s)
    evaluations: float     #: evaluations in the whole render

    @property
    def announce(self):
        return self.seconds > ANNOUNCE_SECONDS

    def announcement(self):
        """One line: the estimated duration and how soon an interrupt is acted on."""
        from nbnumba.progress import clock
        text = "rendering %.3g evaluations, estimated %s" % (self.evaluations,
                                                             clock(self.seconds))
        block = self.row_seconds * self.block_rows
        if block > 1.0:
            text += "; Ctrl-C takes effect after the current row (about %s)" % clock(block)
        return text


def evaluations_per_pixel(setup):
    """Lattice evaluations summed into one pixel (sources x phi x mosaic x sub-pixels x
    sensor layers)."""
    return float(setup.steps) * max(int(setup.layers), 1)


def plan(setup, threads=None, device="cpu"):
    """A :class:`RenderPlan` for ``setup`` on ``threads`` CPU threads (None: numba's
    default). On a GPU the whole region is one block per progress step, as before."""
    row0, row1, col0, col1 = engine.region_rows(setup)
    rows, cols = row1 - row0, col1 - col0
    progress_rows = max(1, rows // 50)
    per_pixel = evaluations_per_pixel(setup)
    n_terms = setup.sources.count * setup.phi_steps * setup.mosaic_domains
    batched = (not setup.interpolate
               and cpu_backend.MIN_BATCH <= n_terms <= cpu_backend.MAX_BATCH)
    cost = SECONDS_PER_EVALUATION["batched" if batched else "serial"]
    if threads is None:
        import numba
        threads = numba.get_num_threads()
    parallel = max(1, min(int(threads), max(rows, 1)))
    # rows run in parallel: a block of n rows takes about ceil(n / threads) row times
    row_seconds = cols * per_pixel * cost
    seconds = rows * row_seconds / parallel
    if device != "cpu":
        return RenderPlan(progress_rows, seconds / 50.0, row_seconds / 50.0,
                          rows * cols * per_pixel)
    fitting = int(BLOCK_SECONDS / row_seconds) * parallel if row_seconds > 0 else progress_rows
    block = max(parallel if fitting >= parallel else 1, min(progress_rows, fitting))
    return RenderPlan(max(1, block), seconds, row_seconds, rows * cols * per_pixel)
