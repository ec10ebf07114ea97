"""The run loop: submit frames to an executor, retry failures, report progress.

:func:`write_series` (frames to files), :func:`render_series` (frames in memory),
:class:`SeriesReport` and :class:`SeriesProgress`.
"""
import os
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import List, Optional

from .. import engine
from ..io.atomic import OutputError, check_writable
from ..progress import StatusLine, clock
from . import record
from .executors import (INTERRUPT, SerialExecutor, _dask_client, _executor_name,
                        _executor_threads, _executor_width, _is_client, _Shipment)
from .frames import SeriesError, apply_overrides
from .names import check_names
from .tasks import (Frame, FrameInfo, FrameTask, _clean_stages, _drop_written_since,
                    check_template, frame_paths, run_frame)


# ---------------------------------------------------------------------------------------
# the driver


@dataclass
class FrameFailure:
    index: int
    error: str
    attempts: int


@dataclass
class SeriesReport:
    """What :func:`write_series` did."""
    total: int
    frames: List[FrameInfo]              #: rendered now, by index
    skipped: List[int]                   #: complete already (resume)
    failed: List[FrameFailure]
    seed: Optional[int]                  #: the user noise seed used
    seconds: float
    executor: str

    @property
    def ok(self):
        return not self.failed

    @property
    def rate(self):
        """Frames rendered per second of wall time."""
        return len(self.frames) / self.seconds if self.seconds > 0 else float("nan")

    def raise_for_failures(self):
        if self.failed:
            raise SeriesError("; ".join(f"frame {f.index}: {f.error}" for f in self.failed))


class SeriesProgress:
    """A progress line on stderr: frames done/total, rate, ETA (in place on a terminal)."""

    def __init__(self, total, stream=None, interval=2.0):
        self.line = StatusLine(stream)
        self.total = total
        self.interval = interval
        self.start = time.perf_counter()
        self.last = None

    def __call__(self, done, skipped, failed):
        now = time.perf_counter()
        finished = done + skipped + failed >= self.total
        if not finished and self.last is not None and now - self.last < self.interval:
            return
        self.last = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        left = self.total - done - skipped - failed
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


def _run(frameset, paths_of, executor, threads, device, skip, progress, retries, spool_dir,
         describe, on_result=None, seed=None, base=None):
    seed = _resolve_seed(frameset) if seed is None else seed
    base = _fixed_base(frameset.base) if base is None else base
    n = len(frameset)
    # validate the configuration (once, here) before any work is sent out
    engine.prepare(apply_overrides(base, frameset.overrides[0]))
    own = executor is None
    executor = SerialExecutor() if executor is None else executor
    client = _dask_client(executor)
    if client is not None and _is_client(executor):
        executor = client.get_executor(pure=False)
    auto = _executor_threads(executor, client)   # workers x threads <= cores
    threads = auto if threads is None else (int(threads) if auto is None
                                            else min(int(threads), auto))
    width = _executor_width(executor, client)
    name = describe or _executor_name(executor, client)

    skipped = []
    for i in range(n):
        INTERRUPT.check()
        if skip is not None and skip(i):
            skipped.append(i)
    todo = sorted(set(range(n)) - set(skipped))

    t0 = time.perf_counter()
    started = time.time()
    meter = SeriesProgress(n) if progress is True else progress
    done, failed = {}, []
    shipment = _Shipment((base, frameset.outputs), executor, client, spool_dir)
    running = {}
    queue = deque((i, 1) for i in todo)

    def submit(i, attempt):
        task = FrameTask(index=i, overrides=tuple(frameset.overrides[i].items()),
                         seed=frameset.noise_seed(i, seed) if frameset.outputs.noise else None,
                         job=shipment.key,
                         paths=None if paths_of(i) is None else tuple(paths_of(i)),
                         threads=threads, device=device, attempt=attempt)
        try:
            running[executor.submit(run_frame, task, shipment.payload)] = (i, attempt)
        except Exception as exc:  # e.g. BrokenProcessPool: the executor cannot run it
            failed.append(FrameFailure(i, _describe(exc), attempt))

    try:
        if meter and skipped:
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
                        if meter:
                            sys.stderr.write("frame %d failed (%s), retrying\n"
                                             % (i, _describe(exc)))
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
    except BaseException:
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
    return SeriesReport(total=n, frames=[done[i] for i in sorted(done)], skipped=skipped,
                        failed=failed, seed=seed if frameset.outputs.noise else None,
                        seconds=time.perf_counter() - t0, executor=name)


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
    for _, p in frame_paths(template, 0, kinds):
        check_writable(p)

    def paths_of(i):
        return [(k, os.path.abspath(p)) for k, p in frame_paths(template, i, kinds)]

    with record.run_lock(record.run_directory(template)):
        run, seed, base, key_of = _open_record(frameset, template, resume, flags)
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
    from .. import __version__
    seed = _resolve_seed(frameset)
    base = _fixed_base(frameset.base)

    def key_of(i):
        if i >= len(frameset):
            return None
        noise = frameset.noise_seed(i, seed) if frameset.outputs.noise else None
        return record.digest((sorted(frameset.overrides[i].items()), noise))[:16]

    run = record.RunRecord(template, __version__, seed if frameset.outputs.noise else None,
                           frameset.outputs.kinds(), record.digest((base, frameset.outputs)),
                           flags)
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
