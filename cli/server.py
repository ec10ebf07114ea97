"""``nbnumba --server start|stop|status``: the resident renderer's life from the command
line, and its start in the background under ``NBNUMBA_SERVER=auto``.

Standard library only. The renderer (:mod:`nbnumba_cli.renderer`) is started with this
interpreter, ``sys.path`` and environment, in a session of its own (no terminal: Ctrl-C
and a closed terminal do not reach it), with ``/`` as working directory, stdin from
``/dev/null`` and its own messages in a log file beside its socket. It exits by itself
after ``--idle-timeout`` seconds without a run (``NBNUMBA_SERVER_IDLE``; default 900).
"""
import os
import sys

PROG = "nbnumba"
USAGE = "nbnumba --server start [--idle-timeout SECONDS] | stop | status"
#: environment variable: the idle timeout (seconds) of a renderer started without
#: --idle-timeout
IDLE_VARIABLE = "NBNUMBA_SERVER_IDLE"
#: seconds ``start`` waits for the renderer to be ready, and ``stop`` for it to leave
START_SECONDS = 300.0
STOP_SECONDS = 60.0
#: default seconds without a run after which the renderer exits
IDLE_SECONDS = 900.0
#: exit status of ``status`` when no renderer runs (as ``systemctl status``)
EXIT_NOT_RUNNING = 3

#: what the renderer runs: sys.path from the starter, then nbnumba_cli.renderer.main
_BOOT = ("import sys; i = sys.argv.index('--'); sys.path[:] = sys.argv[1:i]; "
         "del sys.argv[1:i + 1]; from nbnumba_cli.renderer import main; "
         "sys.exit(main(sys.argv[1:]))")


def _error(message):
    from .guard import error
    return error(PROG, message)


def _say(text):
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):
        pass


def idle_seconds(text):
    """The idle timeout given as ``text`` (seconds), or None when it is not a positive
    number of seconds."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if 0 < value < 1e9 else None


def _idle_from_environment():
    text = os.environ.get(IDLE_VARIABLE)
    if text is None:
        return IDLE_SECONDS, None
    value = idle_seconds(text)
    if value is None:
        return None, "%s=%s is not a number of seconds above 0" % (IDLE_VARIABLE, text)
    return value, None


def main(argv):
    """``nbnumba --server ARGS``; returns the exit status."""
    if argv == ["stop"]:
        return stop()
    if argv == ["status"]:
        return status()
    if argv[:1] == ["start"]:
        rest = argv[1:]
        if not rest:
            idle, problem = _idle_from_environment()
            if problem:
                return _error(problem)
            return start(idle)
        if len(rest) == 2 and rest[0] == "--idle-timeout":
            idle = idle_seconds(rest[1])
            if idle is None:
                return _error("--idle-timeout %s is not a number of seconds above 0" % rest[1])
            return start(idle)
    return _error("unknown --server arguments %s; usage: %s"
                  % (" ".join(argv) or "(none)", USAGE))


def _files(create):
    """(the renderer's file paths, None) or (None, one line saying why there are none)."""
    from . import rundir
    directory, problem = rundir.private_directory(create=create)
    if problem is not None:
        return None, problem
    files = rundir.paths(directory)
    if len(os.fsencode(files["socket"])) > rundir.SOCKET_PATH_MAX:
        return None, ("its socket path %s is too long for a UNIX socket; set XDG_RUNTIME_DIR "
                      "to a shorter directory" % files["socket"])
    return files, None


def _ask(message, timeout=10.0):
    """The renderer's answer to ``message``, or None when none is running."""
    from . import wire
    conn = wire.connect_renderer(timeout)
    if conn is None:
        return None
    try:
        conn.settimeout(timeout)
        wire.send(conn, message)
        return wire.Reader(conn).receive()
    except (OSError, wire.ProtocolError):
        return None
    finally:
        conn.close()


def spawn(files, idle, ready_fd=None):
    """Start the renderer (not waiting for it); returns its pid."""
    log = os.open(files["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        argv = [sys.executable, "-c", _BOOT] + list(sys.path) + [
            "--", "--socket", files["socket"], "--lock", files["lock"], "--log", files["log"],
            "--idle", repr(float(idle))]
        if ready_fd is not None:
            argv += ["--ready-fd", str(ready_fd)]
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)]
        return os.posix_spawn(sys.executable, argv, os.environ, file_actions=actions,
                              setsid=True)
    finally:
        os.close(log)


def _read_line(fd, timeout):
    import select
    import time
    deadline = time.monotonic() + timeout
    data = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(int(left * 1000) + 1):
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace").strip()


def start(idle):
    """Start the renderer and wait until it serves; returns the exit status."""
    files, problem = _files(create=True)
    if problem is not None:
        return _error("cannot start the resident renderer: " + problem)
    answer = _ask(("status",))
    if answer is not None and answer[0] == "status":
        _say("nbnumba: the resident renderer is already running (pid %d)" % answer[1]["pid"])
        return 0
    r, w = os.pipe()
    try:
        os.set_inheritable(w, True)
        pid = spawn(files, idle, ready_fd=w)
    finally:
        os.close(w)
    try:
        line = _read_line(r, START_SECONDS)
    finally:
        os.close(r)
    word, _, rest = (line or "").partition(" ")
    if word == "ready":
        _say("nbnumba: resident renderer started (pid %s; it exits after %g s without a "
             "run; nbnumba --server stop stops it)" % (rest, idle))
        _note_mode()
        return 0
    if word == "running":
        _say("nbnumba: the resident renderer is already running (pid %s)" % rest)
        return 0
    if word == "error":
        return _error("the resident renderer cannot start: " + rest)
    try:
        os.kill(pid, 15)
    except OSError:
        pass
    return _error("the resident renderer did not start (see %s)" % files["log"])


def _note_mode():
    if os.environ.get("NBNUMBA_SERVER", "").strip().lower() == "off":
        _say("nbnumba: note: NBNUMBA_SERVER=off: commands run in-process and do not use it")


def start_in_background(prog):
    """NBNUMBA_SERVER=auto found no renderer: start one for the next runs unless one is
    starting already; this run renders in-process. Returns None, or an exit status
    after a one-line error (bad NBNUMBA_SERVER_IDLE)."""
    idle, problem = _idle_from_environment()
    if problem:
        _error(problem)
        from .guard import EXIT_ERROR
        return EXIT_ERROR
    files, problem = _files(create=True)
    if problem is not None:
        return None
    import fcntl
    try:
        fd = os.open(files["lock"], os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return None  # a renderer holds it: starting, or serving others
    finally:
        os.close(fd)
    try:
        spawn(files, idle)
    except OSError:
        pass
    return None


def _gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def stop():
    """Ask the renderer to stop and wait until it has left (its runs in progress
    finish first); returns the exit status."""
    import time
    answer = _ask(("stop",))
    if answer is None or answer[0] != "stopping":
        _say("nbnumba: no resident renderer is running")
        return 0
    pid = int(answer[1])
    deadline = time.monotonic() + STOP_SECONDS
    while not _gone(pid):
        if time.monotonic() > deadline:
            _say("nbnumba: the resident renderer (pid %d) no longer takes runs and leaves "
                 "when those in progress finish" % pid)
            return 0
        time.sleep(0.02)
    _say("nbnumba: resident renderer stopped (pid %d)" % pid)
    return 0


def _clock(seconds):
    seconds = int(seconds)
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def _mib(kib):
    return "?" if kib is None else "%.1f MiB" % (kib / 1024.0)


def describe(facts):
    """The lines ``nbnumba --server status`` prints for a running renderer."""
    import time
    cpu = facts["cpu_seconds"]
    since = "" if cpu is None or facts["cpu_at_ready"] is None else \
        " (%.2f s since it was ready)" % (cpu - facts["cpu_at_ready"])
    left = max(facts["idle_timeout"] - facts["idle_for"], 0.0)
    lines = [
        "nbnumba: resident renderer running",
        "  pid %d, nbnumba %s, Python %s, up %s (ready after %.2f s)" % (
            facts["pid"], facts["version"], facts["python"],
            _clock(time.time() - facts["started"]), facts["ready_after"] or 0.0),
        "  runs: %d served, %d run in-process instead, %d in progress" % (
            facts["served"], facts["declined"], facts["running"]),
        "  idle timeout %g s: exits in %s without a run" % (facts["idle_timeout"],
                                                           _clock(left)),
        "  memory: %s resident; largest run %s peak, last run %s peak" % (
            _mib(facts["rss_kib"]), _mib(facts["largest_rss_kib"] or None),
            _mib(facts["last_rss_kib"] or None)),
        "  CPU time: %s%s" % ("?" if cpu is None else "%.2f s" % cpu, since),
        "  %s thread%s; %d compiled functions loaded; numba threading layer: %s" % (
            facts.get("threads") or "?", "" if facts.get("threads") == 1 else "s",
            facts["loaded"], facts["layer"] or "set up by each run"),
        "  socket %s, log %s" % (facts["socket"], facts["log"]),
    ]
    return lines


def status():
    """Print the renderer's state; exit status 0 when one runs, 3 when none does."""
    answer = _ask(("status",))
    if answer is None or answer[0] != "status":
        from . import rundir
        _say("nbnumba: no resident renderer is running (%s)"
             % rundir.paths(rundir.base_directory())["socket"])
        return EXIT_NOT_RUNNING
    for line in describe(answer[1]):
        _say(line)
    return 0
