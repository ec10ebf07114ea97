"""Render in a worker thread so that Ctrl-C and SIGTERM stop a command within a second.

Python runs signal handlers only in the main thread, between bytecodes: while the main
thread itself is inside a rendering kernel, a signal waits until the kernel returns,
which for a heavy render (``-phisteps 1000 -mosaic_dom 1000``) can take minutes even
for one row. The CPU kernels release the GIL (:mod:`nbnumba._jit`), so the command
renders in a worker thread while the main thread waits in slices of
:data:`WAIT_SECONDS`, between which its signal handlers run.

After an interrupt the ``KeyboardInterrupt`` goes up the main thread at once; the
worker is told to stop at its next block boundary and is not waited for. So a caller
that catches the interrupt ends the process soon after (the console scripts leave with
``os._exit``): the render writes nothing, so nothing is left half-written.
"""
import threading

#: longest wait (seconds) of the main thread between two chances to handle a signal
WAIT_SECONDS = 0.1


class RenderStopped(Exception):
    """Raised in the worker thread at a block boundary after the command was interrupted."""


def call_interruptibly(function, progress=None):
    """``function(progress=...)``'s result, computed in a worker thread.

    progress: callable(rows_done, rows_total) or None; ``function`` gets a callback that
    calls it between row blocks and stops the work there once the main thread was
    interrupted. An exception of ``function`` is raised again here; a
    ``KeyboardInterrupt`` in the waiting thread (Ctrl-C, or SIGTERM handled as one) is
    raised at once, without waiting for the worker.
    """
    interrupted = threading.Event()
    outcome = {}

    def report(done, total):
        if interrupted.is_set():
            raise RenderStopped()
        if progress is not None:
            progress(done, total)

    def work():
        try:
            outcome["value"] = function(progress=report)
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="nbnumba-render", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(WAIT_SECONDS)
    except BaseException:
        interrupted.set()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
