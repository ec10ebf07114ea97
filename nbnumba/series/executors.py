"""Executors: the in-process default, dask clients (by duck typing) and thread counts.

:class:`SerialExecutor`, :func:`available_cores`, :func:`dask_threads`,
:func:`dask_executor` (the only place dask is imported, when it is called) and how a
series' shared inputs reach the workers of an executor.
"""
import contextlib
import hashlib
import os
import pickle
import signal
import sys
import threading
import uuid
import warnings
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures.process import ProcessPoolExecutor

from ..io.atomic import write_atomic
from .cluster import CLUSTER_TIMEOUT, CONNECT_TIMEOUT, by_value, check_address
from .frames import SeriesError
from .tasks import _SHARED, _SHARED_LOCK

#: shared inputs up to this size (pickled) travel with each task to a process pool;
#: larger ones go through one spool file next to the outputs
INLINE_LIMIT = 256 * 1024


# ---------------------------------------------------------------------------------------
# executors


class SerialExecutor(Executor):
    """Runs each submitted call at once in the calling process (the default)."""

    def submit(self, fn, *args, **kwargs):
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: B036 - handed to the caller via the future
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            future.set_exception(exc)
        return future


def available_cores():
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _is_client(obj):
    return hasattr(obj, "get_executor") and hasattr(obj, "scatter")


def _dask_client(executor):
    """The dask client behind ``executor`` (None: not dask, or a :class:`DaskExecutor`
    not started yet)."""
    if _is_client(executor):
        return executor
    client = getattr(executor, "_client", None)
    return client if _is_client(client) else None


def _worker_cores():
    """CPU cores of the process it runs in (sent by value to dask workers)."""
    import os
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def dask_threads(client):
    """numba threads per task on a dask cluster: the cores of each host divided by the
    tasks that host runs at once (its workers' threads), the smallest over hosts."""
    try:
        workers = client.scheduler_info()["workers"]
        cores = client.run(by_value(_worker_cores))
    except Exception:  # pragma: no cover - an unusual cluster: leave numba's default
        return None
    per_host = {}
    for addr, w in workers.items():
        host = w.get("host", addr)
        tasks, c = per_host.get(host, (0, 0))
        per_host[host] = (tasks + int(w.get("nthreads", 1)), max(c, int(cores.get(addr, 1))))
    if not per_host:
        return None
    return max(1, min(c // max(t, 1) for t, c in per_host.values()))


def _executor_threads(executor, client):
    cores = available_cores()
    if isinstance(executor, SerialExecutor):
        return None
    if client is not None:
        return dask_threads(client)
    n = getattr(executor, "_max_workers", None)
    if isinstance(executor, (ProcessPoolExecutor, ThreadPoolExecutor)) and n:
        return max(1, cores // int(n))
    return None


def _executor_width(executor, client):
    """How many tasks to keep submitted at once."""
    if isinstance(executor, SerialExecutor):
        return 1
    if client is not None:
        try:
            n = sum(int(w.get("nthreads", 1))
                    for w in client.scheduler_info()["workers"].values())
        except Exception:  # pragma: no cover
            n = 4
        return max(2, 2 * n)
    return max(2, 2 * int(getattr(executor, "_max_workers", 0) or 4))


#: the warning filter the resource tracker is started with (see DaskExecutor._start)
_TRACKER_QUIET = "ignore:resource_tracker:UserWarning"


def _worker_ready():
    """Run once in each worker process started here: ignore Ctrl-C and SIGTERM (the
    calling process stops the cluster; a batch system's SIGTERM to the whole job reaches
    it too); returns the worker's pid."""
    with contextlib.suppress(ValueError):   # not the worker's main thread: keep the mask
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return os.getpid()


@contextlib.contextmanager
def _stop_signals_kept_from_children():
    """Block SIGINT and SIGTERM in this thread inside the block: a process started from
    it (fork and exec keep the mask) never receives them, while this process still
    does: its handlers stay in place, and a signal sent meanwhile is taken by another of
    its threads or delivered when the block ends (ignoring them here instead would
    lose it). Where signal masks do not exist, they are ignored inside the block."""
    stop = {signal.SIGINT, signal.SIGTERM}
    if hasattr(signal, "pthread_sigmask"):
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in stop}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _children():
    """{pid: process} of this process's multiprocessing children."""
    import multiprocessing
    return {p.pid: p for p in multiprocessing.active_children() if p.pid is not None}


class _Interrupt:
    """Ctrl-C while a series runs on a LocalCluster started here.

    The cluster runs callbacks in this process (garbage-collection hooks, event-loop
    calls) where a KeyboardInterrupt would be swallowed or printed with a traceback; so
    while :meth:`installed` a SIGINT is only noted, and raised as KeyboardInterrupt by
    :meth:`check`, which the run loop calls after each wait for frames (every 0.25 s at
    most), or when the block ends.
    """

    def __init__(self):
        self.active = False
        self.pending = False

    def handler(self, signum, frame):
        if not self.active:
            raise KeyboardInterrupt
        self.pending = True

    def check(self):
        """Raise KeyboardInterrupt if a SIGINT was noted."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        """Note SIGINTs instead of raising them (main thread only; elsewhere nothing
        changes)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self.pending, self.active = False, True
        previous = signal.signal(signal.SIGINT, self.handler)
        try:
            yield
            self.check()
        finally:
            self.active = False
            signal.signal(signal.SIGINT, previous)


INTERRUPT = _Interrupt()


def _dask_logging(level):
    """Raise the level of dask's loggers (and those it runs on) to at least ``level``."""
    import logging
    # distributed's logging configuration gives some of their children levels of their
    # own ("tornado.application": ERROR), so every logger under them is set
    roots = ("distributed", "tornado", "asyncio")
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in roots]
    for name in set(roots).union(names):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < level:
            logger.setLevel(level)


def quiet_shutdown():
    """Silence dask's logging while a cluster is stopped early (interrupt or error):
    its workers' cancelled tasks and lost data are expected then, not news."""
    import logging
    _dask_logging(logging.CRITICAL + 1)


def quiet_warnings():
    """Keep dask's warnings in this process off the terminal while a series runs: lost
    workers, results fetched again, a scheduler reconnecting are what the series
    handles itself (and says in its own words when it cannot). asyncio's own errors are
    dask's client's internals ("Task exception was never retrieved" when a gather ends
    because every worker left): never news to the user, so they are silenced whole."""
    import logging
    _dask_logging(logging.ERROR)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)


class DaskExecutor(Executor):
    """A dask executor whose cluster (or connection) starts on first use.

    Made by :func:`dask_executor`. Nothing is started until a frame must be rendered
    (:meth:`start`): a resumed series with nothing left to do starts no cluster.
    ``started`` says whether it was started; ``start_seconds`` how long the start took.
    """

    def __init__(self, stack, workers=None, scheduler=None, per=None, connect_timeout=None,
                 cluster_timeout=None):
        self._stack = stack
        self.workers = workers
        self.scheduler = scheduler
        self.per = per
        #: seconds to reach the scheduler (each step of :func:`cluster.check_address`)
        self.connect_timeout = CONNECT_TIMEOUT if connect_timeout is None \
            else float(connect_timeout)
        #: seconds a run waits for a lost scheduler, or for a worker when it has none
        self.cluster_timeout = CLUSTER_TIMEOUT if cluster_timeout is None \
            else float(cluster_timeout)
        self.started = False
        self.start_seconds = 0.0
        self.worker_pids = []
        self._client = None
        self._executor = None

    @property
    def description(self):
        if self.scheduler is not None:
            return f"dask scheduler {self.scheduler}"
        return (f"dask LocalCluster: {self.workers} worker processes x {self.per} numba "
                "threads")

    @property
    def client(self):
        """The ``distributed.Client`` (None before :meth:`start`)."""
        return self._client

    def start(self):
        """Start the cluster (or connect to the scheduler) unless done; returns the
        client. A Ctrl-C meanwhile stops the start at once: the processes it made are
        killed and KeyboardInterrupt is raised."""
        if self.started:
            return self._client
        import time
        t0 = time.perf_counter()
        self._client = self._start()
        quiet_warnings()
        self._executor = self._client.get_executor(pure=False)
        self.started = True
        self.start_seconds = time.perf_counter() - t0
        return self._client

    def _make(self, box, abandoned):
        """Start the LocalCluster and its client, or connect to the scheduler (in a
        thread, so that the calling thread can take a Ctrl-C meanwhile)."""
        import logging

        from distributed import Client, LocalCluster
        try:
            cluster = None
            if self.scheduler is not None:
                client = self._connect(Client)
                pids = []
            else:
                with warnings.catch_warnings():
                    # its HTTP server moves to a free port when 8787 is taken: not news
                    warnings.filterwarnings("ignore", message="Port .* is already in use")
                    # env: the fork server keeps the environment of its start; the
                    # workers get this process's environment as it is now, with a numba
                    # thread pool of the threads each may use
                    env = dict(os.environ, NUMBA_NUM_THREADS=str(self.per))
                    cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                           processes=True, dashboard_address=None,
                                           silence_logs=logging.ERROR, env=env)
                    try:
                        client = Client(cluster)
                        pids = list(client.run(_worker_ready).values())
                    except BaseException:
                        cluster.close()
                        raise
            if abandoned.is_set():   # the caller gave up while we were starting
                quiet_shutdown()
                client.close()
                if cluster is not None:
                    cluster.close()
                return
            box["value"] = (cluster, client, pids)
        except BaseException as exc:  # noqa: B036 - handed to the waiting thread
            box["error"] = exc

    def _connect(self, Client):
        """A client of the scheduler given by address, checked first (one line for a
        wrong address); its reconnection after a lost connection lasts the cluster
        timeout."""
        check_address(self.scheduler, self.connect_timeout)
        try:
            client = Client(self.scheduler, timeout=max(self.connect_timeout,
                                                        self.cluster_timeout))
        except (OSError, TimeoutError) as exc:
            raise SeriesError(f"cannot connect to the dask scheduler at {self.scheduler}: "
                              f"{exc}") from None
        kind = client.scheduler_info().get("type", "Scheduler")
        if kind != "Scheduler":
            _close(client)
            raise SeriesError(f"cannot use the dask scheduler at {self.scheduler}: it is a "
                              f"dask {kind.lower()}, not the scheduler")
        return client

    def _start(self):
        """Start the LocalCluster (or connect) while this thread stays ready for a Ctrl-C.

        The worker processes must never see a Ctrl-C (the terminal sends it to the whole
        process group, and a batch system's SIGTERM the whole job): they are forked by
        multiprocessing's fork server, itself started with SIGINT and SIGTERM blocked
        (:func:`_stop_signals_kept_from_children`), so every worker starts with both
        blocked (and :func:`_worker_ready` ignores them too). This process keeps its
        handlers all along: a Ctrl-C or SIGTERM during the start kills the processes made
        so far and raises KeyboardInterrupt.
        """
        import multiprocessing

        import dask
        import distributed  # noqa: F401 - its configuration must exist before it is set
        main = threading.current_thread() is threading.main_thread()
        if self.scheduler is None and main and \
                "forkserver" in multiprocessing.get_all_start_methods():
            from multiprocessing import forkserver, resource_tracker
            # the resource tracker frees the semaphores of a start cut by Ctrl-C; it
            # need not warn about them after the one line of the interrupt
            sys.warnoptions.append(_TRACKER_QUIET)
            try:
                resource_tracker.ensure_running()   # it ignores both signals itself
                with _stop_signals_kept_from_children():
                    forkserver.ensure_running()
            finally:
                sys.warnoptions.remove(_TRACKER_QUIET)
            # kept while the cluster lives: a worker that dies is replaced the same way
            self._stack.enter_context(dask.config.set(
                {"distributed.worker.multiprocessing-method": "forkserver"}))
        box, abandoned = {}, threading.Event()
        before = set(_children())
        thread = threading.Thread(target=self._make, args=(box, abandoned),
                                  name="nbnumba-cluster-start", daemon=True)
        thread.start()
        try:
            while thread.is_alive():
                thread.join(0.05)
                INTERRUPT.check()
        except BaseException:
            abandoned.set()
            quiet_shutdown()
            for pid in _children():
                if pid not in before:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            raise
        if "error" in box:
            raise box["error"]
        cluster, client, self.worker_pids = box["value"]
        if cluster is not None:
            self._stack.callback(cluster.close)
        self._stack.callback(_close, client)
        return client

    def submit(self, fn, *args, **kwargs):
        self.start()
        return self._executor.submit(fn, *args, **kwargs)

    def map(self, fn, *iterables, **kwargs):
        self.start()
        return self._executor.map(fn, *iterables, **kwargs)

    def shutdown(self, wait=True, **kwargs):
        if self._executor is not None:
            self._executor.shutdown(wait=wait, **kwargs)


def _close(client, seconds=10.0):
    """Close a dask client within ``seconds`` (its scheduler may be gone)."""
    with contextlib.suppress(Exception):
        client.close(timeout=seconds)


@contextlib.contextmanager
def dask_executor(workers=None, scheduler=None, threads=None, connect_timeout=None,
                  cluster_timeout=None):
    """A dask-backed :class:`~concurrent.futures.Executor` for :func:`write_series`.

    workers=N: a ``LocalCluster`` of N worker processes, one task each, each task with
    cores // N numba threads (at most ``threads``); the workers ignore Ctrl-C (the
    calling process stops them). scheduler=ADDRESS: connect to a running scheduler (e.g.
    one started by dask-jobqueue), checked first (a refused, silent, non-Dask or unknown
    address is a :class:`SeriesError` within about ``connect_timeout`` seconds, default
    30). cluster_timeout (seconds, default 60): a run whose scheduler is gone, or that
    has no worker, for that long stops with :class:`SeriesError`. Yields
    ``(executor, description)``: a
    :class:`DaskExecutor` that starts the cluster (or connects) when the first frame is
    submitted, so a series with nothing to render starts none. Needs
    ``pip install 'nbnumba[dask]'``.
    """
    import importlib.util
    if importlib.util.find_spec("distributed") is None:
        raise SeriesError("dask is not installed: pip install 'nbnumba[dask]'")
    held = []   # the SIGINT handler to put back after an interrupted shutdown
    try:
        with contextlib.ExitStack() as stack:
            timeouts = {"connect_timeout": connect_timeout, "cluster_timeout": cluster_timeout}
            if scheduler is not None:
                executor = DaskExecutor(stack, scheduler=scheduler, **timeouts)
            else:
                workers = int(workers or 1)
                per = max(1, available_cores() // workers)
                if threads:
                    per = min(per, int(threads))
                executor = DaskExecutor(stack, workers=workers, per=per, **timeouts)
            try:
                with INTERRUPT.installed():
                    yield executor, executor.description
            except BaseException as exc:
                quiet_shutdown()
                if isinstance(exc, KeyboardInterrupt) and \
                        threading.current_thread() is threading.main_thread():
                    # one Ctrl-C stops the run; a repeated one must not cut the shutdown
                    held.append(signal.signal(signal.SIGINT, signal.SIG_IGN))
                for pid in executor.worker_pids:   # stop our workers now, not after
                    with contextlib.suppress(OSError):   # their frames
                        os.kill(pid, signal.SIGKILL)
                raise
    finally:
        if held:
            signal.signal(signal.SIGINT, held[0])


class _Shipment:
    """The shared (base, outputs) of a series: how tasks reach it in their process."""

    def __init__(self, value, executor, client, spool_dir):
        self.spool = None
        if isinstance(executor, (SerialExecutor, ThreadPoolExecutor)):
            self.key = "local-" + uuid.uuid4().hex
            with _SHARED_LOCK:
                _SHARED[self.key] = value
            self.payload = None
            self.local = True
            return
        self.local = False
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.key = hashlib.sha256(data).hexdigest()
        if client is not None and spool_dir is None:
            # shipped once to every worker; tasks then find it in their worker's memory
            self.payload = client.scatter(data, broadcast=True, hash=False)
        elif (len(data) <= INLINE_LIMIT and client is None) or spool_dir is None:
            self.payload = data
        else:
            # large inputs (on a dask cluster: all) go through one file beside the
            # outputs, read once per process: on the file system the workers are proved
            # to share, it outlives any worker
            self.spool = os.path.join(spool_dir, ".nbnumba-series-%s.pkl" % self.key[:16])
            write_atomic(self.spool, data)
            self.payload = ("file", os.path.abspath(self.spool))

    def close(self):
        if self.local:
            with _SHARED_LOCK:
                _SHARED.pop(self.key, None)
        if self.spool is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.spool)
        self.payload = None


def _executor_name(executor, client):
    if isinstance(executor, DaskExecutor):
        return executor.description
    if isinstance(executor, SerialExecutor):
        return "serial (in-process)"
    if client is not None:
        return "dask %s" % getattr(client, "scheduler", None).address \
            if getattr(client, "scheduler", None) is not None else "dask"
    return type(executor).__name__
