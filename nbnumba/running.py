"""Run one kernel call in a worker thread while the calling thread watches it.

The kernels release the GIL, and Python runs signal handlers only in the main thread
between bytecodes; a kernel called from the main thread would hold off Ctrl-C until it
returned. So :func:`run_kernel` starts the call in a worker thread and waits for it in
slices of :data:`POLL_SECONDS`, between which it reports the rows done (read from the
kernel's control array, :mod:`nbnumba.kernels.rowqueue`) and whether numba is compiling.
On ``KeyboardInterrupt`` (Ctrl-C, or a signal handled as one) it asks the kernel to stop
(each kernel thread stops before its next row), waits for it up to
:data:`STOP_WAIT_SECONDS` and raises the ``KeyboardInterrupt`` again.

numba's ``workqueue`` threading layer (used when neither OpenMP nor TBB is available)
aborts the process when two threads launch parallel kernels at once; under it (and
before the first launch, when the layer is not yet chosen) launches wait for each other
on one lock. Under ``omp`` and ``tbb`` concurrent launches run side by side.
"""
import threading
import time

import numba

from .kernels import rowqueue

#: longest wait (s) of the calling thread between two looks at the kernel
POLL_SECONDS = 0.1

#: longest wait (s) for a stopped kernel to finish its rows in progress before the
#: interrupt is raised anyway (its threads then end those rows in the background)
STOP_WAIT_SECONDS = 0.5

_launch_lock = threading.Lock()


def serialized_launches():
    """True when kernel launches must not overlap: numba's threading layer is
    ``workqueue``, or not chosen yet (no parallel kernel has run in this process)."""
    try:
        return numba.threading_layer() == "workqueue"
    except ValueError:  # "Threading layer is not initialized."
        return True


class Background:
    """``call()`` started now in a worker thread, its result taken later: for work that
    releases the GIL (a ``nogil`` function), to overlap what the calling thread does
    meanwhile. :meth:`wait` and :meth:`result` wait in slices of :data:`POLL_SECONDS`, so
    Ctrl-C and SIGTERM still reach the calling thread; an exception of ``call`` is raised
    again by :meth:`result`."""

    def __init__(self, call, name="nbnumba-background"):
        self._outcome = {}
        # an Event rather than Thread.join: a join interrupted by KeyboardInterrupt can
        # leave the Thread object reporting a running thread as finished (CPython 3.11)
        self._finished = threading.Event()
        threading.Thread(target=self._work, args=(call,), name=name, daemon=True).start()

    def _work(self, call):
        try:
            self._outcome["value"] = call()
        except BaseException as exc:  # handed to the calling thread
            self._outcome["error"] = exc
        finally:
            self._finished.set()

    def wait(self, seconds):
        """True once the call has ended, waiting at most ``seconds`` (s) for it."""
        return self._finished.wait(seconds)

    def result(self):
        """The call's return value, once it has ended."""
        while not self._finished.wait(POLL_SECONDS):
            pass
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["value"]


def run_kernel(call, control, total, reporter=None, watch=None):
    """``call()``'s result, computed in a worker thread; see the module's description.

    control: the call's control array (rows done; the stop flag set on an interrupt);
    total: rows of the call; reporter: a :class:`nbnumba.progress.Reporter` or None;
    watch: a :class:`nbnumba.compilecache.CompileWatch` telling when numba compiles.
    An exception of ``call`` is raised again here.
    """
    def launch():
        if serialized_launches():
            with _launch_lock:
                return call()
        return call()

    worker = Background(launch, name="nbnumba-render")
    try:
        while not worker.wait(POLL_SECONDS):
            if reporter is not None:
                since = watch.compiling_since if watch is not None else None
                if since is not None:
                    reporter.compiling(time.perf_counter() - since)
                else:
                    reporter.update(int(control[rowqueue.DONE]), total)
    except BaseException:
        control[rowqueue.STOP] = 1
        worker.wait(STOP_WAIT_SECONDS)
        raise
    value = worker.result()
    if reporter is not None:
        reporter.update(total, total)
    return value
