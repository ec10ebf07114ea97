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
import threading
import uuid
import warnings
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures.process import ProcessPoolExecutor

from ..io.atomic import write_atomic
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
    if _is_client(executor):
        return executor
    client = getattr(executor, "_client", None)
    return client if _is_client(client) else None


def _worker_cores():
    return available_cores()


def dask_threads(client):
    """numba threads per task on a dask cluster: the cores of each host divided by the
    tasks that host runs at once (its workers' threads), the smallest over hosts."""
    try:
        workers = client.scheduler_info()["workers"]
        cores = client.run(_worker_cores)
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


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore SIGINT while worker processes are started: they inherit the ignored signal
    (Python then installs no KeyboardInterrupt handler in them), so a Ctrl-C reaches
    only this process, which stops the cluster. A Ctrl-C during the start (about a
    second) is lost; outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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


def _quiet_shutdown():
    """Silence dask's logging while a cluster is stopped early (interrupt or error):
    its workers' cancelled tasks and lost data are expected then, not news."""
    import logging
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


@contextlib.contextmanager
def dask_executor(workers=None, scheduler=None, threads=None):
    """A dask-backed :class:`~concurrent.futures.Executor` for :func:`write_series`.

    workers=N: start a ``LocalCluster`` of N worker processes, one task each, each task
    with cores // N numba threads (at most ``threads``); the workers ignore Ctrl-C (the
    calling process stops them). scheduler=ADDRESS: connect to a running scheduler (e.g.
    one started by dask-jobqueue). Yields ``(executor, description)``. Needs
    ``pip install 'nbnumba[dask]'``.
    """
    try:
        import logging

        from distributed import Client, LocalCluster
    except ImportError:
        raise SeriesError("dask is not installed: pip install 'nbnumba[dask]'") from None
    held = []   # the SIGINT handler to put back after an interrupted shutdown
    try:
        with contextlib.ExitStack() as stack:
            if scheduler is not None:
                client = stack.enter_context(Client(scheduler, timeout="30s"))
                description = f"dask scheduler {scheduler}"
            else:
                workers = int(workers or 1)
                per = max(1, available_cores() // workers)
                if threads:
                    per = min(per, int(threads))
                with _sigint_ignored(), warnings.catch_warnings():
                    # its HTTP server moves to a free port when 8787 is taken: not news
                    warnings.filterwarnings("ignore", message="Port .* is already in use")
                    cluster = stack.enter_context(LocalCluster(
                        n_workers=workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, silence_logs=logging.ERROR))
                    client = stack.enter_context(Client(cluster))
                    worker_pids = list(client.run(os.getpid).values())
                description = (f"dask LocalCluster: {workers} worker processes x {per} "
                               "numba threads")
            try:
                with INTERRUPT.installed():
                    yield client.get_executor(pure=False), description
            except BaseException as exc:
                _quiet_shutdown()
                if isinstance(exc, KeyboardInterrupt) and \
                        threading.current_thread() is threading.main_thread():
                    # one Ctrl-C stops the run; a repeated one must not cut the shutdown
                    held.append(signal.signal(signal.SIGINT, signal.SIG_IGN))
                if scheduler is None:   # stop our workers now, not after their frames
                    for pid in worker_pids:
                        with contextlib.suppress(OSError):
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
        if client is not None:
            # shipped once to every worker; tasks then find it in their worker's memory
            self.payload = client.scatter(data, broadcast=True, hash=False)
        elif len(data) <= INLINE_LIMIT or spool_dir is None:
            self.payload = data
        else:
            # large inputs go through one file next to the outputs, read once per process
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
    if isinstance(executor, SerialExecutor):
        return "serial (in-process)"
    if client is not None:
        return "dask %s" % getattr(client, "scheduler", None).address \
            if getattr(client, "scheduler", None) is not None else "dask"
    return type(executor).__name__
