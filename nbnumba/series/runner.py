"""The run loop: submit frames to an executor, retry failures, report progress.

:func:`write_series` (frames to files), :func:`render_series` (frames in memory),
:class:`SeriesReport` and :class:`SeriesProgress`.
"""
import contextlib
import os
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import List, Optional

from .. import engine
from ..io.atomic import OutputError
from ..progress import StatusLine, clock
from . import record
from .executors import (INTERRUPT, DaskExecutor, SerialExecutor, _dask_client, quiet_shutdown,
                        _executor_name, _executor_threads, _executor_width, _is_client,
                        _Shipment)
from .frames import SeriesError, apply_overrides
from .names import check_names, check_targets
from .tasks import (Frame, FrameInfo, FrameTask, _clean_stages, _drop_written_since,
                    check_template, frame_paths, run_frame, warm_up)


# ---------------------------------------------------------------------------------------
# the driver


@dataclass
class FrameFailure:
    index: int
    error: str
    attempts: int


@dataclass
class SeriesReport:
    """What :func:`write_series` did. Times in seconds of wall time."""
    total: int
    frames: List[FrameInfo]              #: rendered now, by index
    skipped: List[int]                   #: complete already (resume)
    failed: List[FrameFailure]
    seed: Optional[int]                  #: the user noise seed used
    seconds: float                       #: the whole run (start and compile included)
    executor: str
    start_seconds: float = 0.0           #: starting the cluster (or connecting to it)
    compile_seconds: float = 0.0         #: workers loading or compiling their kernels
    frame_seconds: float = 0.0           #: from the first frame sent to the last one back
    cluster_started: bool = False        #: a dask cluster was started (or connected to)
    workers_ready: int = 0               #: processes whose kernels were loaded first
    compiled: bool = False               #: some of them compiled (numba's cache missed)

    @property
    def ok(self):
        return not self.failed

    @property
    def rate(self):
        """Frames rendered per second of the frames' wall time (the cluster's start and
        the kernels' compiling or loading excluded)."""
        return len(self.frames) / self.frame_seconds if self.frame_seconds > 0 else float("nan")

    @property
    def render_seconds(self):
        """Kernel time of the frames rendered now, summed over the workers."""
        return sum(f.render_seconds for f in self.frames)

    @property
    def write_seconds(self):
        """Integer, noise and PGM images and file writing, summed over the workers."""
        return sum(f.write_seconds for f in self.frames)

    def raise_for_failures(self):
        if self.failed:
            raise SeriesError("; ".join(f"frame {f.index}: {f.error}" for f in self.failed))

    def summary(self, seconds=None):
        """The closing line: counts, the whole time (``seconds``: measured by the caller,
        e.g. with the cluster's stop; default :attr:`seconds`) and where it went."""
        seconds = self.seconds if seconds is None else seconds
        n = len(self.frames)
        text = "%d frame%s written, %d skipped, %d failed in %.1f s" % (
            n, "" if n == 1 else "s", len(self.skipped), len(self.failed), seconds)
        parts = []
        if n:
            parts.append("%.2f frames/s rendering" % self.rate)
        if self.cluster_started:
            parts.append("cluster start %.1f s" % self.start_seconds)
        if self.workers_ready:
            parts.append("%s %.1f s" % ("compile" if self.compiled else "kernel loading",
                                        self.compile_seconds))
        if n:
            parts.append("frames %.1f s (render %.1f s, write %.1f s%s)" % (
                self.frame_seconds, self.render_seconds, self.write_seconds,
                " summed over the workers" if self.cluster_started else ""))
        if self.cluster_started:
            parts.append("stop %.1f s" % max(0.0, seconds - self.seconds))
        elif n == 0 and self.skipped:
            parts.append("nothing left to render")
        return text + (" (%s)" % "; ".join(parts) if parts else "")


class SeriesProgress:
    """A progress line on stderr: frames done/total, rate, ETA (in place on a terminal).

    Before the first frame it can show what is being waited for (:meth:`state`: the
    cluster starting, the workers compiling); the rate and ETA count from :meth:`begin`
    (the first frame sent), so neither includes starting or compiling.
    """

    def __init__(self, total, stream=None, interval=2.0):
        self.line = StatusLine(stream)
        self.total = total
        self.interval = interval
        self.start = time.perf_counter()
        self.last = None
        self._state = None
        self._state_start = None
        self._fraction = 0.0
        self._counts = (0, 0, 0)

    def state(self, text):
        """Show ``text ... m:ss`` (the time since this text was first shown)."""
        now = time.perf_counter()
        if text != self._state:
            self._state, self._state_start, self.last = text, now, None
        if self.last is not None and now - self.last < self.interval:
            return
        self.last = now
        self.line.show("%s ... %s" % (text, clock(now - self._state_start)))

    def begin(self):
        """The frames start now: the rate and ETA count from here."""
        self.start = time.perf_counter()
        self._state = None
        self.last = None

    def rows(self, done, total):
        """Rows ``done`` of ``total`` of the frame being rendered here (serial runs)."""
        self._fraction = done / total if total else 0.0
        self._show(*self._counts)

    def __call__(self, done, skipped, failed):
        self._fraction = 0.0
        self._counts = (done, skipped, failed)
        self._show(done, skipped, failed)

    def _show(self, done, skipped, failed):
        now = time.perf_counter()
        finished = done + skipped + failed >= self.total
        if not finished and self.last is not None and now - self.last < self.interval:
            return
        self.last = now
        elapsed = now - self.start
        progress = done + (self._fraction if not finished else 0.0)
        rate = progress / elapsed if elapsed > 0 else 0.0
        left = self.total - progress - skipped - failed
        eta = left / rate if rate > 0 else float("nan")
        text = "frames %d/%d done" % (done + skipped, self.total)
        if skipped:
            text += " (%d skipped)" % skipped
        if failed:
            text += ", %d failed" % failed
        text += ", %.2f frames/s, %s elapsed, ETA %s" % (rate, clock(elapsed), clock(eta))
        self.line.show(text, final=finished)


def _describe(error):
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _resolve_seed(frameset):
    if frameset.seed is None and frameset.outputs.noise:
        return int(time.time())
    return frameset.seed


def _fixed_base(base):
    """The base with the clock-chosen values fixed once (every worker must agree)."""
    cr = base.crystal
    if isinstance(cr.misset, str) and cr.misset_seed is None:
        base = apply_overrides(base, {"crystal.misset_seed": int(time.time())})
    return base


#: the CPU kernel functions of :func:`nbnumba.kernels.cpu_backend.kernel_for`'s names
_KERNEL_FUNCTIONS = {"lanes": "render_rows_lanes", "one_at_a_time": "render_rows"}


def _kernels_cold(device, setup):
    """True when the CPU kernel that renders ``setup`` has no entry in numba's cache on
    this machine (a worker here compiles it first); False when it is cached, or for GPU
    devices. A guess for workers on other machines."""
    if device != "cpu":
        return False
    from .. import compilecache
    from ..kernels import get_backend
    backend = get_backend("cpu")
    kernels = [d for d in compilecache.nbnumba_functions() if compilecache.is_kernel(d)]
    try:
        name = _KERNEL_FUNCTIONS[backend.kernel_for(setup.interpolate, setup.geometry.curved)]
        wanted = [d for d in kernels if d.py_func.__name__ == name] or kernels
    except (AttributeError, KeyError):   # another kernel table: any cold kernel counts
        wanted = kernels
    return any(not compilecache.cached_here(d) for d in wanted)


def _wait_polling(futures, meter, text):
    """Wait for dask futures, showing ``text`` on the meter; Ctrl-C is checked every
    0.1 s."""
    while not all(f.done() for f in futures):
        if meter and hasattr(meter, "state"):
            meter.state(text)
        INTERRUPT.check()
        time.sleep(0.1)


def _warm_up(executor, client, shipment, device, threads, overrides, meter, setup):
    """Load or compile the kernels in each worker before its first frame.

    A dask cluster: one warm-up task per worker, pinned to it; in this process (serial
    or threads): one warm-up here. A process pool cannot be addressed per worker: its
    workers load the kernels with their first frame. Returns (workers made ready,
    whether any compiled).
    """
    cold = _kernels_cold(device, setup)
    if client is not None:
        workers = list(client.scheduler_info()["workers"])
        # each pinned to its worker, but free to go elsewhere if that worker dies
        futures = [client.submit(warm_up, shipment.key, shipment.payload, device, threads,
                                 overrides, workers=[w], allow_other_workers=True,
                                 pure=False) for w in workers]
        n = len(workers)
        _wait_polling(futures, meter, "%s on %d worker%s" % (
            "compiling" if cold else "loading the kernels", n, "" if n == 1 else "s"))
        results = []
        for f in futures:
            with contextlib.suppress(Exception):   # a frame on it will say what fails
                results.append(f.result())
        return len(results), any(r["compiled"] for r in results)
    if isinstance(executor, (SerialExecutor, ThreadPoolExecutor)):
        if cold and meter and hasattr(meter, "state"):
            meter.state("compiling")
        with contextlib.suppress(Exception):   # the first frame will say what fails
            return 1, warm_up(shipment.key, None, device, threads, overrides)["compiled"]
    return 0, False


def _run(frameset, paths_of, executor, threads, device, skip, progress, retries, spool_dir,
         describe, on_result=None, seed=None, base=None):
    t0 = time.perf_counter()
    seed = _resolve_seed(frameset) if seed is None else seed
    base = _fixed_base(frameset.base) if base is None else base
    n = len(frameset)
    # validate the configuration (once, here) before any work is sent out
    first = engine.prepare(apply_overrides(base, frameset.overrides[0]))

    skipped = []
    for i in range(n):
        INTERRUPT.check()
        if skip is not None and skip(i):
            skipped.append(i)
    todo = sorted(set(range(n)) - set(skipped))
    meter = SeriesProgress(n) if progress is True else progress
    report = SeriesReport(total=n, frames=[], skipped=skipped, failed=[],
                          seed=seed if frameset.outputs.noise else None, seconds=0.0,
                          executor=describe or _executor_name(executor, None))
    if not todo:   # nothing to render: start nothing
        if meter and skipped:
            meter(0, len(skipped), 0)
        report.seconds = time.perf_counter() - t0
        return report

    own = executor is None
    executor = SerialExecutor() if executor is None else executor
    if isinstance(executor, DaskExecutor):
        if meter and hasattr(meter, "state") and not executor.started:
            meter.state("starting %s" % ("%d dask workers" % executor.workers
                                         if executor.workers else "the dask client"))
        report.cluster_started = not executor.started
        executor.start()
        report.start_seconds = executor.start_seconds if report.cluster_started else 0.0
    client = _dask_client(executor)
    if client is not None and _is_client(executor):
        executor = client.get_executor(pure=False)
    auto = _executor_threads(executor, client)   # workers x threads <= cores
    threads = auto if threads is None else (int(threads) if auto is None
                                            else min(int(threads), auto))
    width = _executor_width(executor, client)
    report.executor = describe or _executor_name(executor, client)

    started = time.time()
    done, failed, retried = {}, [], []
    shipment = _Shipment((base, frameset.outputs), executor, client, spool_dir)
    running = {}
    queue = deque((i, 1) for i in todo)
    serial = isinstance(executor, SerialExecutor)
    rows = meter.rows if serial and meter and hasattr(meter, "rows") else None

    def submit(i, attempt):
        task = FrameTask(index=i, overrides=tuple(frameset.overrides[i].items()),
                         seed=frameset.noise_seed(i, seed) if frameset.outputs.noise else None,
                         job=shipment.key,
                         paths=None if paths_of(i) is None else tuple(paths_of(i)),
                         threads=threads, device=device, attempt=attempt)
        try:
            if rows is not None:   # in this process: the meter follows the rows
                future = executor.submit(run_frame, task, shipment.payload, progress=rows)
            else:
                future = executor.submit(run_frame, task, shipment.payload)
            running[future] = (i, attempt)
        except Exception as exc:  # e.g. BrokenProcessPool: the executor cannot run it
            failed.append(FrameFailure(i, _describe(exc), attempt))

    try:
        t_ready = time.perf_counter()
        report.workers_ready, report.compiled = _warm_up(
            executor, client, shipment, device, threads,
            tuple(frameset.overrides[todo[0]].items()), meter, first)
        t_frames = time.perf_counter()
        report.compile_seconds = t_frames - t_ready if report.workers_ready else 0.0
        if meter:
            if hasattr(meter, "begin"):
                meter.begin()
            if skipped:
                meter(0, len(skipped), 0)
        while queue or running:
            while queue and len(running) < width:
                submit(*queue.popleft())
            if not running:   # every submission failed (a broken executor)
                if meter:
                    meter(len(done), len(skipped), len(failed))
                continue
            finished, _ = wait(list(running), timeout=0.25, return_when=FIRST_COMPLETED)
            INTERRUPT.check()
            for fut in finished:
                i, attempt = running.pop(fut)
                try:
                    value = fut.result()
                except BaseException as exc:
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    broken = isinstance(exc, BrokenProcessPool)
                    if attempt <= retries and not broken:
                        if meter and not retried:   # one note: a full disk fails them all
                            sys.stderr.write("frame %d failed (%s), retrying (a frame that "
                                             "fails is tried %d times in all)\n"
                                             % (i, _describe(exc), retries + 1))
                        retried.append(i)
                        queue.append((i, attempt + 1))
                    else:
                        failed.append(FrameFailure(i, _describe(exc), attempt))
                    continue
                info = value.info if isinstance(value, Frame) else value
                done[i] = info
                if on_result is not None:
                    on_result(value)
            if meter:
                meter(len(done), len(skipped), len(failed))
        report.frame_seconds = time.perf_counter() - t_frames
    except BaseException:
        if not isinstance(executor, SerialExecutor):
            quiet_shutdown()   # a cancelled task's late result is expected, not news
        for fut in running:
            fut.cancel()
        raise
    finally:
        shipment.close()
        if own:
            executor.shutdown()
        all_paths = [p for i in todo if paths_of(i) is not None for _, p in paths_of(i)]
        if all_paths and not running:
            _clean_stages(all_paths)
            for f in failed:
                if paths_of(f.index) is not None:
                    _drop_written_since([p for _, p in paths_of(f.index)], started)
    failed.sort(key=lambda f: f.index)
    report.frames = [done[i] for i in sorted(done)]
    report.failed = failed
    report.seconds = time.perf_counter() - t0
    return report


def write_series(frameset, template, executor=None, resume=False, progress=True, threads=None,
                 retries=1, device="cpu", describe=None, flags=None):
    """Render every frame of ``frameset`` and write its files; returns a :class:`SeriesReport`.

    template: Python format string of the frame index (``"out/frame_{:05d}"``); each
        output's extension is appended (``.bin``, ``.img``, ``.pgm``, ``_noise.img``).
        Missing directories are created.
    executor: a :class:`concurrent.futures.Executor` or a dask ``distributed.Client``;
        None: one frame after another in this process, every core on each frame.
        Workers write the files themselves (atomically) and return only metadata.
    resume: keep the frames that an earlier run of the same series finished and whose
        files still have the checksums in its run record; raises :class:`SeriesError`
        when the earlier run differs (another seed, other flags or inputs, another
        nbnumba version).
    progress: True (a line on stderr), False, or a callable(done, skipped, failed).
    threads: numba threads per frame (None: the cores divided by the executor's
        workers, or all cores when serial).
    retries: times a failed frame is tried again (frames that still fail are in
        ``report.failed``; a failed frame leaves none of its files).
    flags: the command line of the run, kept in the run record (it names what differs
        when a resume is refused).

    Before anything is rendered, every frame's files are checked (:func:`check_targets`):
    one that cannot be replaced (a directory, mode 0444, ``chattr +i`` or ``+a``) raises
    :class:`~nbnumba.io.atomic.OutputError` and nothing is rendered or changed.

    While it runs, the directory of frame 0 is locked (:func:`record.run_lock`): a second
    series writing there is refused with :class:`SeriesError`.
    """
    kinds = frameset.outputs.kinds()
    check_names(template, len(frameset), kinds)
    # absolute names: a worker's working directory need not be ours
    directories = {os.path.dirname(os.path.abspath(template.format(i)))
                   for i in range(len(frameset))}
    for d in sorted(directories):
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create directory {d}: {exc.strerror or exc}") from None

    def paths_of(i):
        return [(k, os.path.abspath(p)) for k, p in frame_paths(template, i, kinds)]

    with record.run_lock(record.run_directory(template)):
        run, seed, base, key_of = _open_record(frameset, template, resume, flags)
        # every frame's files replaceable, before the record is touched: a frame that
        # resume may keep is checked when it must be rendered after all (run_frame)
        recorded = set((run.previous or {}).get("frames", {})) if resume else set()
        check_targets(template, len(frameset), kinds, unless=lambda i: str(i) in recorded)
        skip = None
        if resume:   # the earlier run's frames stay recorded until checked
            run.carry(len(frameset))

            def skip(i):
                return run.verified(i, key_of(i), [p for _, p in paths_of(i)])
        run.write()

        def finished(info):
            run.add(info.index, key_of(info.index), info.checksums)

        started = run.written_at()
        try:
            return _run(frameset, paths_of, executor, threads, device, skip, progress,
                        retries, os.path.dirname(os.path.abspath(template.format(0))),
                        describe, on_result=finished, seed=seed, base=base)
        except BaseException:
            # stopped (Ctrl-C, SIGTERM, an error): also record the frames whose files
            # were all put in place but whose result had not come back yet
            for i in range(len(frameset)):
                if str(i) not in run.data["frames"]:
                    run.adopt(i, key_of(i), [p for _, p in paths_of(i)], started)
            raise
        finally:
            run.write(final=True)


def _open_record(frameset, template, resume, flags):
    """(run record, noise seed, base, frame key function) of a series about to be
    written; with ``resume``, :class:`SeriesError` if the run on disk is another one."""
    from .._version import __version__
    seed = _resolve_seed(frameset)
    base = _fixed_base(frameset.base)

    def key_of(i):
        if i >= len(frameset):
            return None
        noise = frameset.noise_seed(i, seed) if frameset.outputs.noise else None
        return record.digest((sorted(frameset.overrides[i].items()), noise))[:16]

    run = record.RunRecord(template, __version__, seed if frameset.outputs.noise else None,
                           frameset.outputs.kinds(), record.digest((base, frameset.outputs)),
                           flags, frames=len(frameset))
    why = run.difference(key_of) if resume else None
    if why is not None:
        raise SeriesError("cannot resume: %s holds frames of another run (%s); rerun without "
                          "--resume to replace them, or give another --template"
                          % (record.run_directory(template), why))
    return run, seed, base, key_of


def check_resume(frameset, template, flags=None):
    """Raise :class:`SeriesError` if ``write_series(frameset, template, resume=True)``
    would refuse to continue the run on disk (cheap: no file is read but the record)."""
    check_template(template)
    _open_record(frameset, template, True, flags)


def render_series(frameset, executor=None, progress=False, threads=None, retries=1,
                  device="cpu"):
    """Render every frame and return them, in order, as :class:`Frame` objects.

    The images travel back from the workers: meant for in-memory work on modest sets
    (use :func:`write_series` for large ones). Raises :class:`SeriesError` if a frame
    fails twice.
    """
    frames = {}

    def keep(value):
        frames[value.info.index] = value

    report = _run(frameset, lambda i: None, executor, threads, device, None, progress,
                  retries, None, None, on_result=keep)
    report.raise_for_failures()
    return [frames[i] for i in sorted(frames)]
