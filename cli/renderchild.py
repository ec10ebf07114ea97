"""One request to the resident renderer, in the child process forked for it.

The renderer (:mod:`nbnumba_cli.renderer`) accepts a connection and forks at once; the
child reads the request (:mod:`nbnumba_cli.wire`) and:

* for a run: checks that it can run it exactly as the client's own process would
  (:func:`nbnumba_cli.procstate.differences`; the renderer's source files unchanged since
  it started), takes on the client's state (:func:`nbnumba_cli.procstate.apply`), says
  "ready", waits for "go" and calls the command's console function: the very function
  the console script calls in-process (:mod:`nbnumba_cli.entry`), which leaves with
  ``os._exit(status)``; the child sends that status to the client as it leaves
  (:func:`_report_exit`), and the renderer reports the signal of a child that died
  otherwise. Meanwhile a thread watches the connection: a stop signal the
  client received is raised here (same line, same status as in-process); the end of the
  connection (the client was killed) sends the output to ``/dev/null`` and stops the run
  as SIGTERM does (temporary files removed). The names of the temporary files are sent
  to the client as they come and go, so that it removes them if this child is killed;
* for ``status``: the renderer's facts; for ``stop``: the renderer stops (new requests
  are refused, those in progress finish).

The child's own exit statuses in :data:`OUTCOMES` tell the renderer what happened to a
request that was not run.
"""
import os
import signal
import sys
import threading

from . import procstate, rundir, stopsignals, wire

#: the child's exit status for a request it did not run, and what the renderer makes
#: of it (these are above every status a command leaves with: 0, 9, 130, 128 + signal)
DECLINED, STALE, CONTROL, STOP, FAILED = 250, 251, 252, 253, 254
OUTCOMES = {DECLINED: "declined", STALE: "stale", CONTROL: "control", STOP: "stop",
            FAILED: "failed"}

#: the console functions of the commands served (names in nbnumba_cli.entry)
COMMANDS = {"nbnumba": "nbnumba", "nb-nonbragg": "nb_nonbragg", "nb-noisify": "nb_noisify"}

#: seconds a client has to send its request, and "go" once the child is ready
REQUEST_SECONDS = 10.0


def serve(conn, zygote):
    """Answer the connection ``conn`` (a :class:`nbnumba_cli.renderer.Zygote` forked
    this child); returns the exit status when the request is not run (a run leaves
    through the command's own ``os._exit``)."""
    conn.settimeout(REQUEST_SECONDS)
    reader = wire.Reader(conn)
    try:
        message = reader.receive()
    except (OSError, wire.ProtocolError):
        reader.close_fds()
        return FAILED
    if message is None:
        reader.close_fds()
        return CONTROL
    kind = message[0]
    if kind == "status":
        reader.close_fds()
        _reply(conn, ("status", zygote.facts()))
        return CONTROL
    if kind == "stop":
        reader.close_fds()
        _reply(conn, ("stopping", os.getppid()))
        return STOP
    if kind != "run" or len(message) != 2 or not isinstance(message[1], dict):
        reader.close_fds()
        return FAILED
    return _run(conn, reader, message[1], zygote)


def _reply(conn, message):
    try:
        wire.send(conn, message)
    except OSError:
        pass


def _decline(conn, reader, reason, status=DECLINED):
    reader.close_fds()
    _reply(conn, ("declined", reason))
    return status


def _run(conn, reader, request, zygote):
    fds = reader.take_fds()
    if COMMANDS.get(request.get("prog")) is None:
        for fd in fds:
            os.close(fd)
        return _decline(conn, reader, "not a command the renderer runs")
    try:
        reason = procstate.differences(request, zygote.description, zygote.default_threads)
    except (KeyError, TypeError, ValueError, AttributeError):
        reason = "malformed request"
    if reason is None and rundir.source_fingerprint(*zygote.sources) != zygote.fingerprint:
        for fd in fds:
            os.close(fd)
        return _decline(conn, reader, "nbnumba's files changed since the renderer started",
                        STALE)
    if reason is not None:
        for fd in fds:
            os.close(fd)
        return _decline(conn, reader, reason)
    replaced = []
    try:
        procstate.apply(request, fds, replaced)
    except procstate.Declined as exc:
        return _decline(conn, reader, str(exc))
    except OSError as exc:
        return _decline(conn, reader, "cannot take on the client's state (%s)" % exc)
    _signals(request.get("sigint_ignored"))
    _reply(conn, ("ready", os.getpid()))
    try:
        go = reader.receive()
    except (OSError, wire.ProtocolError):
        go = None
    if go != ("go",):
        return CONTROL
    conn.settimeout(None)
    _own_thread_pool()
    _report_exit(conn)
    _watch_temporaries(conn)
    threading.Thread(target=_watch_client, args=(reader,), name="nbnumba-client",
                     daemon=True).start()
    return _command(request["prog"])


def _signals(sigint_ignored):
    """Signal handlers as a console script has them after its first instruction."""
    signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_ignored else signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    stopsignals.install()


def _own_thread_pool():
    """numba's threading layer set up for this child (:func:`nbnumba._jit.own_threading_layer`):
    the renderer loaded the kernels, which set the layer up, but never ran parallel code,
    so no OpenMP thread exists; the child's runs render on every thread, as in-process."""
    from nbnumba import _jit
    _jit.own_threading_layer()


def _report_exit(conn):
    """Tell the client the exit status as the command leaves: ``os._exit`` (through which
    every command leaves) is wrapped, in this child only, so that the client's
    descriptors are let go and the status is sent first; the kernel then takes a few
    milliseconds to tear the process down, which the client need not wait for. (A child
    that dies otherwise is reported by the renderer.)"""
    real_exit = os._exit

    def leave(status):
        try:
            stopsignals.ignore()  # the client may be gone already: its end means SIGTERM
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            wire.send(conn, ("exit", int(status) & 0xFF))
        except (OSError, TypeError, ValueError):
            pass
        real_exit(status)
    os._exit = leave


def _watch_temporaries(conn):
    """New files take the client's umask; the temporary files' names go to the client."""
    from nbnumba.io import atomic
    atomic.follow_umask()

    def tell(path, state, final):
        try:
            wire.send(conn, ("temporary", path, state, final))
        except OSError:  # the client is gone: _watch_client stops the run
            pass
    atomic.watch_temporaries(tell)


def _watch_client(reader):
    """Raise the stop signals the client forwards; when the client is gone, stop as
    SIGTERM does, with the output sent to /dev/null."""
    try:
        while True:
            message = reader.receive()
            if message is None:
                break
            if message[0] == "signal" and message[1:] in ((signal.SIGINT,), (signal.SIGTERM,)):
                os.kill(os.getpid(), message[1])
    except (OSError, wire.ProtocolError):
        pass
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    os.kill(os.getpid(), signal.SIGTERM)


def _command(prog):
    """Run the command's console function as the console script does; it leaves with
    ``os._exit``. A ``SystemExit`` or an exception that escapes it ends the child as
    the interpreter would end a cold process."""
    from . import entry
    try:
        getattr(entry, COMMANDS[prog])()
        status = 0
    except SystemExit as exc:
        status = _exit_code(exc.code)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    return status


def _exit_code(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(str(code) + "\n")
    except (OSError, ValueError, AttributeError):
        pass
    return 1
