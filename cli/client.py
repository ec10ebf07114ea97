"""The console scripts ``nbnumba``, ``nb-nonbragg`` and ``nb-noisify``: a run through the
resident renderer when one is running, else in-process exactly as before.

This is the first code an entry point runs, and it imports only the standard library
(and nbnumba_cli's standard-library modules) until it knows it must render in-process;
then :mod:`nbnumba_cli.entry` takes over (it imports numba). ``nbnumba --server
start|stop|status`` is :mod:`nbnumba_cli.server`.

``NBNUMBA_SERVER`` chooses: ``on`` (the default) uses a renderer when one is running and
never starts one; ``auto`` also starts one in the background when none is running (this
run renders in-process); ``off`` never uses one.

A run through the renderer (:mod:`nbnumba_cli.wire` describes the exchange): the client
sends its arguments, environment and process state (:mod:`nbnumba_cli.procstate`) with
its standard descriptors and a descriptor of its working directory; the renderer's child
either declines (the client then renders in-process) or runs the command, writing to the
client's own stdout and stderr. Meanwhile the client forwards SIGINT and SIGTERM (the run
stops as it would in-process, with the same line and status) and Ctrl-Z (the run is
suspended with the client), notes the temporary files the run creates, and finally
leaves with the run's exit status. If the renderer's process dies during the run, the
client removes the run's temporary files and says so in one line (status 128 + the
signal that killed it, or 9 when the renderer vanished).
"""
import os
import sys

from . import stopsignals

#: seconds to wait for the renderer's first answer before rendering in-process
READY_SECONDS = 5.0
#: values of NBNUMBA_SERVER
MODES = ("on", "auto", "off")


def nbnumba():
    """The ``nbnumba`` console script."""
    _main("nbnumba", "nbnumba")


def nb_nonbragg():
    """The ``nb-nonbragg`` console script."""
    _main("nb-nonbragg", "nb_nonbragg")


def nb_noisify():
    """The ``nb-noisify`` console script."""
    _main("nb-noisify", "nb_noisify")


def _main(prog, entry_name):
    try:
        stopsignals.install()   # in the try: a signal may land as soon as it is in place
        status = _through_renderer(prog)
        if status is None:   # in-process: entry.py's own try takes over the signals
            from . import entry
            launch = getattr(entry, entry_name)
    except KeyboardInterrupt as exc:  # stopped before the run began: as in-process
        stopsignals.ignore()
        from .guard import say_stopped
        status = say_stopped(prog, getattr(exc, "signum", None))
    if status is not None:
        _leave(prog, status)
    launch()


def _leave(prog, status):
    """Leave with ``status`` at once. A stop signal this process received and did not
    forward (it came as the run ended), or that arrives now (from here on it is only
    noted), still ends the command as stopped, with its line, as in-process
    (:func:`nbnumba_cli.stopsignals.exit_status`)."""
    stopsignals.ignore()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(stopsignals.exit_status(status, lambda signum: _say_stopped(prog, signum)))


def _say_stopped(prog, signum):
    from .guard import say_stopped
    say_stopped(prog, signum)


def server_mode(prog):
    """NBNUMBA_SERVER's value ("on" when unset), or None after saying it is invalid."""
    text = os.environ.get("NBNUMBA_SERVER", "")
    mode = text.strip().lower() or "on"
    if mode in MODES:
        return mode
    from .guard import error
    error(prog, "NBNUMBA_SERVER=%s is not one of on (use a running resident renderer, the "
                "default), auto (also start one), off (never use one)" % text)
    return None


def _through_renderer(prog):
    """The exit status of the run through the renderer, or None: render in-process."""
    argv = sys.argv[1:]
    if prog == "nbnumba" and argv[:1] == ["--server"]:
        from . import server
        return server.main(argv[1:])
    mode = server_mode(prog)
    if mode is None:
        from .guard import EXIT_ERROR
        return EXIT_ERROR
    if mode == "off" or os.path.lexists(".numba_config.yaml"):
        return None  # numba reads that file at import: only a process started here sees it
    from . import wire
    conn = wire.connect_renderer()
    if conn is None:
        if mode == "auto":
            from . import server
            return server.start_in_background(prog)
        return None
    return Session(conn, prog).run()


def _standard_fds():
    """([fd 0, 1, 2, working directory], fds to close after sending): /dev/null in
    place of a closed standard descriptor, as the in-process path gives it."""
    fds, opened = [], []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            fds.append(null)
            opened.append(null)
    cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    fds.append(cwd)
    opened.append(cwd)
    return fds, opened


class Session:
    """One run through the renderer, from the request to the exit status."""

    def __init__(self, conn, prog):
        from . import wire
        self.conn = conn
        self.prog = prog
        self.reader = wire.Reader(conn)
        self.pending = []        # stop signals received, not yet forwarded
        self.temporaries = set()  # the run's temporary files that exist
        self.written = []         # outputs renamed into place
        self.pidfd = None
        self.wake = None
        self.previous = {}

    # -- signals ----------------------------------------------------------------------

    def _note(self, signum, frame):
        stopsignals.note(signum)   # counted at the exit even if the run ends first
        self.pending.append(signum)

    def _suspend(self, signum, frame):
        """Ctrl-Z: suspend the run's process, then this one; resume both."""
        import _signal as signal
        self._to_child(signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)
        signal.signal(signal.SIGTSTP, self._suspend)
        self._to_child(signal.SIGCONT)

    def _to_child(self, signum):
        if self.pidfd is None:
            return
        import _signal as signal
        try:
            signal.pidfd_send_signal(self.pidfd, signum)
        except OSError:
            pass

    def _catch_signals(self):
        import _signal as signal
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake = (r, w)
        signal.set_wakeup_fd(w)
        for signum in stopsignals.STOP_SIGNALS:
            if signal.getsignal(signum) != signal.SIG_IGN:
                self.previous[signum] = signal.signal(signum, self._note)

    def _release_signals(self):
        import _signal as signal
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}
        if self.wake is not None:
            signal.set_wakeup_fd(-1)
            for fd in self.wake:
                os.close(fd)
            self.wake = None

    # -- the exchange -----------------------------------------------------------------

    def _wait(self, timeout=None):
        """The next message (None: end of stream), or "signal" when a stop signal is
        pending; raises TimeoutError."""
        import select
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.conn.fileno(), select.POLLIN)
        poller.register(self.wake[0], select.POLLIN)
        while True:
            message = self.reader.next()
            if message is not None:
                return message
            if self.reader.eof:
                return None
            if self.pending:
                return "signal"
            left = None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError()
            ready = poller.poll(None if left is None else int(left * 1000) + 1)
            for fd, _ in ready:
                if fd == self.wake[0]:
                    try:
                        while os.read(fd, 64):
                            pass
                    except BlockingIOError:
                        pass
                elif fd == self.conn.fileno():
                    self.reader.fill()

    def run(self):
        """The run's exit status, or None when it must render in-process."""
        from . import procstate, wire
        request = procstate.describe(self.prog)  # before the signal handlers change
        self._catch_signals()
        try:
            try:
                accepted = self._request(request, wire)
            except (OSError, wire.ProtocolError, TimeoutError):
                accepted = False
            if not accepted:
                self._give_up()
                return None
            return self._follow(wire)
        finally:
            self._release_signals()
            self.conn.close()
            if self.pidfd is not None:
                os.close(self.pidfd)

    def _give_up(self):
        """Back to in-process: a stop signal that came meanwhile stops it at once."""
        self.reader.close_fds()
        if self.pending:
            self._release_signals()
            raise stopsignals.stop_exception(self.pending[0])

    def _request(self, request, wire):
        fds, opened = _standard_fds()
        try:
            self.conn.settimeout(READY_SECONDS)
            wire.send(self.conn, ("run", request), fds)
        finally:
            for fd in opened:
                os.close(fd)
        self.conn.setblocking(False)
        reply = self._wait(READY_SECONDS)
        if reply == "signal" or not isinstance(reply, tuple):
            return False
        if reply[0] == "declined":
            if os.environ.get("NBNUMBA_DEBUG"):
                from .guard import say_error
                say_error("%s: note: rendering in-process, not in the resident renderer: %s\n"
                          % (self.prog, reply[1]))
            return False
        if reply[0] != "ready" or self.pending:
            return False
        try:
            self.pidfd = os.pidfd_open(reply[1])
        except (OSError, TypeError, AttributeError):
            self.pidfd = None
        self.conn.setblocking(True)
        wire.send(self.conn, ("go",))
        self.conn.setblocking(False)
        import _signal as signal
        if signal.getsignal(signal.SIGTSTP) == signal.SIG_DFL:
            self.previous[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, self._suspend)
        return True

    def _follow(self, wire):
        """Forward signals and note temporaries until the renderer reports the end."""
        while True:
            try:
                message = self._wait()
            except (OSError, wire.ProtocolError):
                message = None
            if message == "signal":
                self._forward(wire)
                continue
            if message is None:
                return self._lost(None)
            kind = message[0]
            if kind == "temporary" and len(message) == 4:
                _, path, state, final = message
                if state == "created":
                    self.temporaries.add(path)
                else:
                    self.temporaries.discard(path)
                if state == "renamed" and final:
                    self.written.append(final)
            elif kind == "exit":
                return int(message[1])
            elif kind == "killed":
                return self._lost(int(message[1]))

    def _forward(self, wire):
        pending, self.pending = self.pending, []
        self.conn.setblocking(True)
        try:
            for signum in pending:
                wire.send(self.conn, ("signal", signum))
        except OSError:
            pass
        finally:
            self.conn.setblocking(False)

    def _lost(self, signum):
        """The run's process died without finishing: remove its temporary files, say so
        in one line; the status a shell gives a process killed by ``signum``."""
        for path in sorted(self.temporaries):
            name = os.path.basename(path)
            if name.startswith(".nbnumba-") and name.endswith(".part"):
                try:
                    os.unlink(path)
                except OSError:
                    pass
        how = ""
        if signum is not None:
            import signal
            try:
                how = " (killed by %s)" % signal.Signals(signum).name
            except ValueError:
                how = " (killed by signal %d)" % signum
        if self.written:
            what = "written before it stopped: %s" % ", ".join(self.written)
        else:
            what = "nothing was written"
        from .guard import EXIT_ERROR, error
        error(self.prog, "the resident renderer stopped during the run%s; %s" % (how, what))
        return 128 + signum if signum is not None else EXIT_ERROR
