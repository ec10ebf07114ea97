"""The run loop: submit frames to an executor, retry failures, report progress.

:func:`write_series` (frames to files), :func:`render_series` (frames in memory),
:class:`SeriesReport` and :class:`SeriesProgress`.
"""
import contextlib
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import List, Optional

from .. import engine
from ..io.atomic import OutputError
from ..progress import StatusLine, clock
from . import record
from .cluster import ClusterWatch
from .executors import (INTERRUPT, DaskExecutor, SerialExecutor, _dask_client, quiet_shutdown,
                        _executor_name, _executor_threads, _executor_width, _Shipment)
from .frames import SeriesError, apply_overrides, degrees
from .names import check_names, check_targets
from .tasks import (Frame, FrameInfo, FrameStopped, FrameTask, Staging, _clean_stages,
                    _drop_written_since, check_template, frame_paths, run_frame, warm_up)


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
    #: the frames kept from an earlier run (resume), by index, with their recorded values
    kept: List[FrameInfo] = field(default_factory=list)

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
_KERNEL_FUNCTIONS = {"lanes": "render_rows_lanes", "one_at_a_time": "render_rows",
                     "panels_lanes": "render_panel_rows_lanes",
                     "panels_one_at_a_time": "render_panel_rows"}


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
        name = _KERNEL_FUNCTIONS[backend.kernel_for(setup.interpolate, setup.geometry.curved,
                                                    setup.panels is not None)]
        wanted = [d for d in kernels if d.py_func.__name__ == name] or kernels
    except (AttributeError, KeyError):   # another kernel table: any cold kernel counts
        wanted = kernels
    return any(not compilecache.cached_here(d) for d in wanted)


def _show(meter, text):
    if meter and hasattr(meter, "state"):
        meter.state(text)


def _warm_up(executor, client, watch, shipment, device, threads, overrides, meter, setup):
    """Load or compile the kernels in each worker before its first frame.

    A dask cluster: one warm-up task per admitted worker, pinned to it (a worker that
    leaves meanwhile is not waited for); in this process (serial or threads): one
    warm-up here. A process pool cannot be addressed per worker: its workers load the
    kernels with their first frame. Returns (workers made ready, whether any compiled).
    """
    cold = _kernels_cold(device, setup)
    if client is not None:
        futures = {w: client.submit(warm_up, shipment.key, shipment.payload, device, threads,
                                    overrides, workers=[w], allow_other_workers=False,
                                    pure=False) for w in watch.addresses()}
        n = len(futures)
        text = "%s on %d worker%s" % ("compiling" if cold else "loading the kernels", n,
                                      "" if n == 1 else "s")
        while not all(f.done() for w, f in futures.items() if w in watch.admitted):
            _show(meter, text)
            INTERRUPT.check()
            watch.poll()
            time.sleep(0.1)
        results = []
        for w, f in futures.items():
            if w in watch.admitted and f.status == "finished":
                with contextlib.suppress(Exception):   # a frame on it will say what fails
                    results.append(f.result(timeout=10))
        results = [r for r in results if "error" not in r]
        return len(results), any(r["compiled"] for r in results)
    if isinstance(executor, (SerialExecutor, ThreadPoolExecutor)):
        if cold:
            _show(meter, "compiling")
        result = warm_up(shipment.key, None, device, threads, overrides)
        if "error" not in result:   # (else the first frame will say what fails)
            return 1, result["compiled"]
    return 0, False


#: a frame whose task dask loses this often (its workers die, the scheduler forgets it)
#: fails
MAX_LOST = 25


def _waitable(dask_future):
    """A concurrent.futures.Future that is done when ``dask_future`` is (it is kept as
    ``.dask``), so that dask and local futures are waited for together."""
    waitable = Future()
    waitable.dask = dask_future

    def finished(_):
        with contextlib.suppress(Exception):
            waitable.set_result(None)

    dask_future.add_done_callback(finished)
    return waitable


def _outcome(future):
    """("done", value), ("failed", exception) or ("lost", None) of a finished future:
    lost is a dask task that was cancelled (its scheduler went away) or whose result went
    with its worker; it is rendered again without counting as a failure."""
    dask_future = getattr(future, "dask", None)
    if dask_future is None:
        try:
            return _stopped_or_done(future.result())
        except BaseException as exc:  # noqa: B036 - the run loop decides
            if isinstance(exc, KeyboardInterrupt):
                raise
            return "failed", exc
    status = dask_future.status
    try:
        if status == "finished":
            return _stopped_or_done(dask_future.result(timeout=5))
        if status == "error":
            return "failed", dask_future.exception(timeout=5)
    except Exception:  # noqa: BLE001 - unreachable now: render it again
        pass
    return "lost", None


def _stopped_or_done(value):
    if isinstance(value, FrameStopped):
        return "failed", OutputError(value.error)
    return "done", value


def _confirm(info, seconds, stop):
    """None when every file of a frame a worker wrote is on disk here with the checksum
    the worker reported; else (path, what is wrong). Retried for ``seconds`` (a network
    file system may show a new file late) unless ``stop`` is set."""
    deadline = time.monotonic() + seconds
    pause = 0.05
    left = list(info.checksums)
    while True:
        problem = None
        for path, want in list(left):
            try:
                got = record.file_sha256(path)
            except OSError as exc:
                problem = (path, "%s here" % (exc.strerror or exc))
                break
            if got != want:
                problem = (path, "its content here is not what the worker wrote")
                break
            left.remove((path, want))
        if problem is None:
            return None
        if time.monotonic() > deadline or stop.wait(pause):
            return problem
        pause = min(1.0, 2 * pause)


def _run(frameset, paths_of, executor, threads, device, skip, progress, retries, staging,
         describe, on_result=None, seed=None, base=None, cluster_timeout=None,
         on_arrival=None):
    """The run loop of :func:`write_series` and :func:`render_series`. on_result: called
    with each frame's value once it is accepted (its files confirmed); on_arrival: with
    each frame's :class:`FrameInfo` as soon as its worker reports it."""
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
    watch = None
    if client is not None:   # frames go only to workers admitted by the watch
        watch = ClusterWatch(
            client, getattr(executor, "scheduler", None),
            staging.directories if staging else (), staging.run if staging else None,
            cluster_timeout if cluster_timeout is not None
            else getattr(executor, "cluster_timeout", None))
        watch.admit_all(lambda text: _show(meter, text), INTERRUPT.check)
        auto = watch.numba_threads()
    else:
        auto = _executor_threads(executor, None)   # workers x threads <= cores
    threads = auto if threads is None else (int(threads) if auto is None
                                            else min(int(threads), auto))
    report.executor = describe or _executor_name(executor, client)

    started = time.time()
    done, failed, lost, retried = {}, [], {}, []
    shipment = _Shipment((base, frameset.outputs), executor, client,
                         staging.home if staging else None)
    running, checking = {}, {}
    queue = deque((i, 1) for i in todo)
    serial = isinstance(executor, SerialExecutor)
    rows = meter.rows if serial and meter and hasattr(meter, "rows") else None
    # files a worker wrote are confirmed here before the frame is recorded (not those
    # written by this process)
    confirm = paths_of(todo[0]) is not None and \
        not isinstance(executor, (SerialExecutor, ThreadPoolExecutor))
    checker = ThreadPoolExecutor(2, thread_name_prefix="nbnumba-confirm") if confirm else None
    stop = threading.Event()
    # how long a file may take to show here: another machine's writes over a network
    # file system (the cluster timeout), or this machine's own
    seconds = watch.timeout if watch is not None else 2.0

    def submit(i, attempt):
        task = FrameTask(index=i, overrides=tuple(frameset.overrides[i].items()),
                         seed=frameset.noise_seed(i, seed) if frameset.outputs.noise else None,
                         job=shipment.key,
                         paths=None if paths_of(i) is None else tuple(paths_of(i)),
                         threads=threads, device=device, attempt=attempt,
                         run=staging.run if staging else None)
        try:
            if watch is not None:
                workers = watch.addresses()
                future = _waitable(client.submit(run_frame, task, shipment.payload,
                                                 workers=workers, allow_other_workers=False,
                                                 pure=False))
                running[future] = (i, attempt, frozenset(workers))
                return
            if rows is not None:   # in this process: the meter follows the rows
                future = executor.submit(run_frame, task, shipment.payload, progress=rows)
            else:
                future = executor.submit(run_frame, task, shipment.payload)
            running[future] = (i, attempt, None)
        except Exception as exc:  # e.g. BrokenProcessPool: the executor cannot run it
            failed.append(FrameFailure(i, _describe(exc), attempt))

    def again(i, attempt, error=None):
        """Render frame ``i`` again: a lost task as the same attempt (at most
        MAX_LOST times), a failed one as the next (at most ``retries`` times)."""
        if error is None:
            lost[i] = lost.get(i, 0) + 1
            if lost[i] <= MAX_LOST:
                queue.appendleft((i, attempt))
                return
            error = "its task was lost %d times (workers dying?)" % MAX_LOST
        elif attempt <= retries and not isinstance(error, BrokenProcessPool):
            if meter and not retried:   # one note: a full disk fails them all
                sys.stderr.write("frame %d failed (%s), retrying (a frame that fails is "
                                 "tried %d times in all)\n" % (i, _describe(error), retries + 1))
            retried.append(i)
            queue.append((i, attempt + 1))
            return
        failed.append(FrameFailure(i, error if isinstance(error, str) else _describe(error),
                                   attempt))

    def orphans():
        """Frames submitted to workers none of which is admitted any more (they all
        left): submitted again to the workers there are now."""
        alive = set(watch.admitted)
        for future, (i, attempt, workers) in list(running.items()):
            if workers is not None and not workers & alive:
                del running[future]        # dropping the dask future releases its task
                queue.appendleft((i, attempt))

    def accept(i, value):
        info = value.info if isinstance(value, Frame) else value
        done[i] = info
        if on_result is not None:
            on_result(value)

    def unconfirmed(info, problem):
        who = watch.describe(info.worker) if watch is not None else "worker %s" % info.worker
        path, what = problem
        return SeriesError(
            "frame %d is not on disk as %s wrote it: %s: %s; every worker must see the "
            "output directories at the same path (a shared file system)"
            % (info.index, who, path, what))

    try:
        t_ready = time.perf_counter()
        report.workers_ready, report.compiled = _warm_up(
            executor, client, watch, shipment, device, threads,
            tuple(frameset.overrides[todo[0]].items()), meter, first)
        t_frames = time.perf_counter()
        report.compile_seconds = t_frames - t_ready if report.workers_ready else 0.0
        if meter:
            if hasattr(meter, "begin"):
                meter.begin()
            if skipped:
                meter(0, len(skipped), 0)
        while queue or running or checking:
            if watch is not None:
                watch.poll()
                orphans()
            width = watch.width() if watch is not None else _executor_width(executor, None)
            while queue and len(running) < width and (watch is None or watch.ready()):
                submit(*queue.popleft())
            if not running and not checking:
                if meter:
                    meter(len(done), len(skipped), len(failed))
                if watch is not None and queue:   # waiting for a worker
                    INTERRUPT.check()
                    time.sleep(0.05)
                continue   # (else every submission failed: a broken executor)
            finished, _ = wait(list(running) + list(checking), timeout=0.25,
                               return_when=FIRST_COMPLETED)
            INTERRUPT.check()
            for fut in finished:
                if fut in checking:
                    i, value = checking.pop(fut)
                    info = value.info if isinstance(value, Frame) else value
                    problem = fut.result()
                    if problem is not None:
                        raise unconfirmed(info, problem)
                    accept(i, value)
                    continue
                i, attempt, _ = running.pop(fut)
                kind, value = _outcome(fut)
                if kind == "lost":
                    again(i, attempt)
                elif kind == "failed":
                    again(i, attempt, value)
                elif checker is not None:
                    info = value.info if isinstance(value, Frame) else value
                    if on_arrival is not None:
                        on_arrival(info)
                    checking[checker.submit(_confirm, info, seconds, stop)] = (i, value)
                else:
                    accept(i, value)
            if meter:
                meter(len(done), len(skipped), len(failed))
        report.frame_seconds = time.perf_counter() - t_frames
    except BaseException:
        if not serial:
            quiet_shutdown()   # a cancelled task's late result is expected, not news
        for fut in running:
            if getattr(fut, "dask", None) is None:   # a dask one is released when dropped
                fut.cancel()
        raise
    finally:
        in_flight = bool(running or checking)
        running.clear()
        stop.set()
        if checker is not None:
            checker.shutdown(wait=False, cancel_futures=True)
        shipment.close()
        if staging is not None:   # from here on no file of this run can land
            staging.withdraw()
        if own:
            executor.shutdown()
        all_paths = [p for i in todo if paths_of(i) is not None for _, p in paths_of(i)]
        if all_paths and not in_flight:
            _clean_stages(all_paths)
            for f in failed:
                if paths_of(f.index) is not None:
                    _drop_written_since([p for _, p in paths_of(f.index)], started)
    failed.sort(key=lambda f: f.index)
    report.frames = [done[i] for i in sorted(done)]
    report.failed = failed
    report.seconds = time.perf_counter() - t0
    return report


#: FrameInfo fields kept in the run record (a later --resume lists the frame with them)
_RECORDED_INFO = ("max_I", "mean", "int_scale", "photons", "overloads", "seconds",
                  "render_seconds", "write_seconds", "worker", "threads", "attempt")


def write_series(frameset, template, executor=None, resume=False, progress=True, threads=None,
                 retries=1, device="cpu", describe=None, flags=None, cluster_timeout=None):
    """Render every frame of ``frameset`` and write its files; returns a :class:`SeriesReport`.

    template: Python format string of the frame index (``"out/frame_{:05d}"``); each
        output's extension is appended (``.bin``, ``.img``, ``.pgm``, ``_noise.img``).
        Missing directories are created.
    executor: a :class:`concurrent.futures.Executor` or a dask ``distributed.Client``;
        None: one frame after another in this process, every core on each frame.
        Workers write the files themselves (atomically) and return only metadata; the
        files a worker wrote are read back here (SHA-256) before the frame is recorded.
        On dask, a worker gets frames only once it has shown the same versions as this
        process and that it sees the output directories (a probe file each way).
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
    cluster_timeout: seconds a dask run waits for a lost scheduler, or for a worker when
        it has none, before it stops with :class:`SeriesError` (default: the
        executor's, or 60).

    Before anything is rendered, every frame's files are checked (:func:`check_targets`):
    one that cannot be replaced (a directory, mode 0444, ``chattr +i`` or ``+a``) raises
    :class:`~nbnumba.io.atomic.OutputError` and nothing is rendered or changed.

    While it runs, the directory of frame 0 is locked (:func:`record.run_lock`): a second
    series writing there is refused with :class:`SeriesError`. Its frames are staged in
    the run's staging directories, removed when it ends however it ends: no file of a
    stopped run lands afterwards.
    """
    kinds = frameset.outputs.kinds()
    check_names(template, len(frameset), kinds)
    # absolute names: a worker's working directory need not be ours
    home = record.run_directory(template)
    directories = [home] + sorted({os.path.dirname(os.path.abspath(template.format(i)))
                                   for i in range(len(frameset))} - {home})
    for d in directories:
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create directory {d}: {exc.strerror or exc}") from None

    def paths_of(i):
        return [(k, os.path.abspath(p)) for k, p in frame_paths(template, i, kinds)]

    with record.run_lock(home):
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
        staging = None

        def finished(value):
            info = value.info if isinstance(value, Frame) else value
            run.add(info.index, key_of(info.index), info.checksums,
                    {name: getattr(info, name) for name in _RECORDED_INFO})
            if info.files:
                staging.forget_attempts(info.index, info.files[0], info.attempt)

        started = run.written_at()
        reported = {}   # index -> FrameInfo of the frames reported, not yet confirmed
        report = None
        try:
            staging = Staging.create(run.data["run"], directories)
            report = _run(frameset, paths_of, executor, threads, device, skip, progress,
                          retries, staging, describe, on_result=finished, seed=seed,
                          base=base, cluster_timeout=cluster_timeout,
                          on_arrival=lambda info: reported.__setitem__(info.index, info))
        except BaseException:
            if staging is not None:
                staging.withdraw()
            # stopped (Ctrl-C, SIGTERM, an error): also record the frames whose files
            # were all put in place but whose result had not come back yet; part of a
            # frame this run was writing is removed (no file of it is recorded)
            for i in range(len(frameset)):
                if str(i) not in run.data["frames"]:
                    paths = [p for _, p in paths_of(i)]
                    info = reported.get(i)
                    if not run.adopt(i, key_of(i), paths, started, info and {
                            name: getattr(info, name) for name in _RECORDED_INFO}):
                        _drop_newer(paths, started)
            raise
        finally:
            try:
                run.write(final=True)
            except OutputError:
                if report is None or not report.failed:
                    raise
                # frames failed too (a full disk fails them and then the record): the
                # record's journal keeps what the record could not take, for --resume,
                # and the frames' failure is what the run reports
        report.kept = [_kept_frame(frameset, seed, i, run, [p for _, p in paths_of(i)])
                       for i in report.skipped]
        return report


def _drop_newer(paths, since):
    """Remove the files in ``paths`` modified at or after ``since`` (ns, the file
    system's clock): part of a frame this run was writing when it stopped."""
    for p in paths:
        with contextlib.suppress(OSError):
            if os.stat(p).st_mtime_ns >= since:
                os.unlink(p)


def _kept_frame(frameset, seed, index, run, paths):
    """The :class:`FrameInfo` of a frame kept from an earlier run: its seed and phi from
    the frame set, its checksums and statistics from the run record (statistics None
    for a frame recorded without them: one a stopped run found complete on disk)."""
    entry = run.data["frames"].get(str(index), {})
    said = entry.get("info") if isinstance(entry.get("info"), dict) else {}
    files = entry.get("files", {})
    cfg = frameset.config(index)
    values = {name: said.get(name) for name in _RECORDED_INFO}
    values["attempt"] = values["attempt"] or 1
    return FrameInfo(
        index=index, files=tuple(paths),
        seed=frameset.noise_seed(index, seed) if frameset.outputs.noise else None,
        phi=degrees(cfg.crystal.phi0),
        osc=None if cfg.crystal.osc is None else degrees(cfg.crystal.osc),
        checksums=tuple((p, files.get(os.path.relpath(p, run.directory))) for p in paths),
        **values)


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
