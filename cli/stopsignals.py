"""Stop signals (SIGINT, SIGTERM) of the commands, from their first instruction to their last.

Standard library only, and only its smallest modules (``_thread``, ``_signal``, ``sys``):
the console scripts install it before importing anything else, so that the time a
SIGTERM still kills a command silently is Python's own start-up alone.

Python runs a signal handler in the main thread between two bytecodes, wherever that
thread is. When it is inside a callback that C code invoked (numba's and llvmlite's cache
notifications, a weakref callback, a ``__del__``), the exception the handler raises
cannot propagate: Python prints "Exception ignored ... Traceback" and carries on, and the
command would finish with status 0 although a batch system asked it to stop. So:

* :func:`install` makes SIGINT raise ``KeyboardInterrupt`` and SIGTERM raise
  :class:`Terminated` (a ``KeyboardInterrupt`` too, so every path that handles Ctrl-C
  handles both), and notes the first signal received;
* an exception of either kind that Python could not propagate is not printed: the
  signal is sent again to the main thread (:func:`_redeliver`), so that a handler runs
  once more at the next bytecode outside the callback and the stop takes its usual way.
  That handler raises the stop exception once, whatever handler a command has put in
  place meanwhile (the series' own SIGTERM handler takes a repeated signal as one to
  ignore), and then gives the command's handler back;
* a stop exception that C code prints and replaces (``PyErr_Print``: numpy's
  ``import_array()`` in an extension module whose import the signal cut) is not printed
  (``sys.excepthook``); the error it becomes is taken as the stop;
* :func:`exit_status` is the last word: a command that received a stop signal never
  leaves with status 0 (or any status but 130/143), even when every output was written.
"""
import _signal as signal  # the signal module without its enums: about 5 ms less start-up
import _thread
import sys

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: the thread that imported this module: the console scripts import it first, in the main
#: thread (``threading`` costs a few milliseconds of start-up more; where it is loaded, its
#: own idea of the main thread is used)
_IMPORTING_THREAD = _thread.get_ident()


def _main_thread_ident():
    threading = sys.modules.get("threading")
    return threading.main_thread().ident if threading is not None else _IMPORTING_THREAD


def _in_main_thread():
    return _thread.get_ident() == _main_thread_ident()


_state = {"received": None, "installed": False, "previous_hook": None, "main": None,
          "previous_excepthook": None}


class Terminated(KeyboardInterrupt):
    """SIGTERM (or another terminating signal) received; handled like Ctrl-C."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def received():
    """The number of the first stop signal received since :func:`install`, or None."""
    return _state["received"]


def stop_exception(signum):
    """The exception a stop signal raises: ``KeyboardInterrupt`` for SIGINT,
    :class:`Terminated` for any other."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def note(signum):
    """Note ``signum`` as received (the first one counts): for handlers of the commands'
    own that take a stop signal another way (the series stops its cluster first)."""
    if _state["received"] is None:
        _state["received"] = signum


def handler(signum, frame):
    """The handler :func:`install` puts in place: note the signal, raise its exception."""
    note(signum)
    raise stop_exception(signum)


def _signal_of(exc):
    if isinstance(exc, Terminated):
        return exc.signum
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT
    return None


def _send(thread_id, signum):
    try:
        signal.pthread_kill(thread_id, signum)
    except (OSError, ValueError):  # the process is leaving
        pass


def _redeliver(signum):
    """Send ``signum`` to the main thread again, from another thread: a handler then
    runs at the main thread's next bytecode check, after the callback that swallowed the
    first exception (sent from the main thread itself, the signal would be handled at
    once, inside the callback still)."""
    _thread.start_new_thread(_send, (_state["main"], signum))


def _raising_once(previous):
    """A handler that puts ``previous`` back and raises the stop exception of the
    signal it gets."""
    def raise_once(signum, frame):
        _restore(signum, raise_once, previous)
        note(signum)
        raise stop_exception(signum)
    return raise_once


def _restore(signum, expected, previous):
    try:
        if signal.getsignal(signum) is expected:
            signal.signal(signum, previous)
    except ValueError:   # not the main thread
        pass


def _unraisable(unraisable):
    """``sys.unraisablehook``: a stop signal's exception lost in a callback is sent again
    instead of printed (dropped when the command no longer handles the signal: it is
    leaving already); anything else goes to the previous hook."""
    signum = _signal_of(unraisable.exc_value)
    if signum is None or _state["received"] is None:
        (_state["previous_hook"] or sys.__unraisablehook__)(unraisable)
        return
    current = signal.getsignal(signum)
    if not callable(current):
        return
    if current is not handler and _thread.get_ident() == _state["main"]:
        try:
            signal.signal(signum, _raising_once(current))
        except ValueError:
            pass
    _redeliver(signum)


def _excepthook(kind, value, traceback):
    """``sys.excepthook``: a stop signal's exception is not printed (a C extension's
    ``import_array()`` prints the error that cut its import short with ``PyErr_Print``,
    then fails with an ``ImportError``, which the command takes as the stop it is, with
    its one line); anything else goes to the previous hook."""
    if _signal_of(value) is not None and _state["received"] is not None:
        return
    (_state["previous_excepthook"] or sys.__excepthook__)(kind, value, traceback)


def install():
    """Put :func:`handler` in place for SIGTERM, and for SIGINT unless it is ignored (a
    background job started by a shell that ignores it), and the hook for lost
    exceptions. Main thread only (elsewhere nothing changes); installing twice does
    nothing more. A signal may be raised as soon as its handler is in place, inside this
    function still: call it inside the ``try`` that handles ``KeyboardInterrupt``."""
    if _state["installed"] or not _in_main_thread():
        return
    # the hook first: from the moment a handler is in place, its exception may be lost
    _state["main"] = _thread.get_ident()
    _state["previous_hook"] = sys.unraisablehook
    sys.unraisablehook = _unraisable
    _state["previous_excepthook"] = sys.excepthook
    sys.excepthook = _excepthook
    _state["installed"] = True
    if signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
        signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def stop_status(signum):
    """The exit status of a command stopped by ``signum``: 130 for SIGINT, 128 + the
    signal number for the others (143 for SIGTERM)."""
    return 130 if signum == signal.SIGINT else 128 + int(signum)


def exit_status(status, say_stopped):
    """The status a command leaves with, given the ``status`` its work returned.

    When a stop signal was received but the work still returned something other than
    that signal's status (its exception was lost somewhere), ``say_stopped(signum)`` is
    called to print the command's one line, and the signal's status is returned: a
    stopped command never reports success.
    """
    signum = _state["received"]
    if signum is None or status == stop_status(signum):
        return status
    say_stopped(signum)
    return stop_status(signum)


def _note_only(signum, frame):
    note(signum)


def ignore():
    """From now on a stop signal is only noted, never raised (the command is leaving; a
    second signal must not turn the exit into a traceback): :func:`exit_status` called
    afterwards still counts it. Main thread only (elsewhere nothing changes)."""
    for signum in STOP_SIGNALS:
        try:
            if signal.getsignal(signum) != signal.SIG_IGN:   # a background job's
                signal.signal(signum, _note_only)
        except ValueError:   # not the main thread
            return
