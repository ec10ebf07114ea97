"""The resident renderer: a process that has imported NumPy, numba, nbnumba and every
command and loaded nbnumba's compiled functions, and forks a child for each request.

``nbnumba --server start`` (:mod:`nbnumba_cli.server`) starts it in a session of its own
with the starter's environment and ``sys.path``; :func:`main` then

1. takes the installation's lock (one renderer per user and installation) and notes
   what it started with (:func:`nbnumba_cli.procstate.describe`, the source files'
   fingerprint);
2. warms up (:func:`warm_up`) without running any parallel region: numba's OpenMP
   layer is not safe to fork once a parallel region ran, so the kernels are only
   loaded here and each child sets the layer up for itself;
3. listens on its UNIX socket and, for each connection from a process of the same
   user, forks at once: the child answers it (:mod:`nbnumba_cli.renderchild`) and exits.
   The renderer itself reads nothing from clients, so a slow client never holds it up.
   It keeps its copy of each connection and, when it reaps the child, sends the child's
   exit status, or the signal that killed it, to the client;
4. exits after ``idle`` seconds without a run, on SIGTERM or ``nbnumba --server stop``,
   or when a child found the source files changed; in each case it stops accepting at
   once (socket removed, lock released) and leaves when the runs in progress have
   finished.

Between requests it waits in ``poll`` without a timeout other than the idle one, so it
uses no CPU time. Children die with it (``PR_SET_PDEATHSIG``): a run whose status can
no longer be reported is not left running.
"""
import contextlib
import gc
import os
import select
import signal
import socket
import sys
import time

from . import procstate, renderchild, rundir, wire

_PR_SET_PDEATHSIG = 1


class _NotCached(Exception):
    """numba was about to compile: the function has no cache entry for this machine."""


def _log(text):
    try:
        sys.stderr.write("%s nbnumba renderer %d: %s\n"
                         % (time.strftime("%Y-%m-%d %H:%M:%S"), os.getpid(), text))
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def cached_signatures(dispatcher):
    """The argument types of every entry in numba's cache index of ``dispatcher`` that
    fits this CPU and the function's current code ([] when there is none)."""
    try:
        from numba.core.caching import FunctionCache
        cache = dispatcher._cache
        if not isinstance(cache, FunctionCache):
            return []
        wanted = cache._index_key(None, dispatcher.targetctx.codegen())[1:]
        return [key[0] for key in cache._cache_file._load_index() if key[1:] == wanted]
    except Exception:  # an unreadable or foreign index: nothing to load
        return []


def openmp_expected():
    """True when numba will choose its OpenMP threading layer here (the only layer the
    renderer sets up before forking; under TBB or workqueue each child loads the
    kernels itself)."""
    import numba
    from .guard import _layer_loads
    layer = str(numba.config.THREADING_LAYER).lower()
    if layer == "omp":
        return _layer_loads("omp")
    if layer == "threadsafe":
        return not _layer_loads("tbb") and _layer_loads("omp")
    if layer == "default":
        for name in numba.config.THREADING_LAYER_PRIORITY:
            if name == "workqueue":
                return False
            if _layer_loads(name):
                return name == "omp"
    return False


@contextlib.contextmanager
def compiles_refused():
    """Inside the block, a compile that numba is about to start raises
    :class:`_NotCached` instead (a cache hit raises nothing)."""
    from numba.core import event

    class Refuse(event.Listener):
        def on_start(self, ev):
            raise _NotCached()

        def on_end(self, ev):
            pass

    refuse = Refuse()
    event.register("numba:compile", refuse)
    try:
        yield
    finally:
        event.unregister("numba:compile", refuse)


def load_compiled(kernels):
    """Load every nbnumba function that numba's cache holds for this machine (inside
    :func:`compiles_refused`: a function without a cache entry is compiled by the first
    child that needs it, and cached). ``kernels``: the parallel kernels too. Returns
    the number of compiled functions loaded."""
    from nbnumba import compilecache
    loaded = 0
    for dispatcher in compilecache.nbnumba_functions():
        if compilecache.is_kernel(dispatcher) and not kernels:
            continue
        for signature in cached_signatures(dispatcher):
            try:
                dispatcher.compile(signature)
                loaded += 1
            except _NotCached:
                pass
    return loaded


def _stand_in(kernel):
    def load_only(*args):
        try:
            kernel.compile(tuple(kernel.typeof_pyval(a) for a in args))
        except _NotCached:
            pass
    return load_only


@contextlib.contextmanager
def kernels_stood_in():
    """Inside the block, every parallel kernel of nbnumba (wherever a module holds it)
    is replaced by a stand-in that loads the kernel compiled for its arguments' types
    from numba's cache and returns None without running it: no parallel region runs,
    and the image stays zero."""
    from numba.core.dispatcher import Dispatcher
    from nbnumba import compilecache
    replaced = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "nbnumba" or name.startswith("nbnumba.")):
            continue
        for attribute, value in list(vars(module).items()):
            if isinstance(value, Dispatcher) and compilecache.is_kernel(value):
                replaced.append((module, attribute, value))
                setattr(module, attribute, _stand_in(value))
    try:
        yield
    finally:
        for module, attribute, value in replaced:
            setattr(module, attribute, value)


#: a structure-factor table of nb-nonbragg's rehearsal (sin(theta)/lambda, F)
_STOL = "0 2.0\n0.2 3.0\n0.5 1.0\n1.0 0.5\n"


def _rehearsals():
    """(command module name, arguments) of :func:`rehearse`, in order: the ``nbnumba``
    runs write the float image that ``nb-noisify`` reads."""
    from nbnumba.kernels import cpu_backend
    images = ["-floatfile", "float.bin", "-intfile", "int.img", "-pgmfile", "image.pgm",
              "-noisefile", "noise.img", "-seed", "1", "-noprogress"]
    runs = [("main", list(flags) + images) for _, flags in cpu_backend.VARIANTS.values()]
    runs.append(("nonbragg", ["-stol", "water.stol", "-detpixels", "8", "-distance", "100",
                              "-floatfile", "water.bin", "-intfile", "water.img",
                              "-pgmfile", "water.pgm", "-noisefile", "water-noise.img",
                              "-seed", "1"]))
    runs.append(("noisify", ["-floatfile", "float.bin", "-detpixels", "8", "-seed", "1",
                             "-intfile", "ideal.img", "-noisefile", "real.img",
                             "-pgmfile", "real.pgm"]))
    return runs


def rehearse():
    """Run each command on a tiny image in a scratch folder, as a client's run would,
    with the kernels stood in (:func:`kernels_stood_in`): everything a run imports on
    its way, every helper it calls and the kernels it loads are ready in the renderer.
    Returns {"command arguments": exit status}."""
    import importlib
    import io
    import tempfile
    statuses = {}
    # nbnumba's own run-time variables (a test pause, tracebacks) are the clients' business
    own = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("NBNUMBA_")}
    try:
        with tempfile.TemporaryDirectory(prefix="nbnumba-renderer-") as folder:
            with open(os.path.join(folder, "water.stol"), "w") as f:
                f.write(_STOL)
            os.chdir(folder)
            with kernels_stood_in():
                for module, argv in _rehearsals():
                    command = importlib.import_module("nbnumba_cli." + module)
                    text = io.StringIO()
                    try:
                        with contextlib.redirect_stdout(text), \
                                contextlib.redirect_stderr(text):
                            status = command.main(argv)
                    except Exception as exc:  # a rehearsal only warms up: never fatal
                        status = "%s: %s" % (type(exc).__name__, exc)
                    statuses["%s %s" % (module, " ".join(argv))] = status
    finally:
        os.chdir("/")
        os.environ.update(own)
    return statuses


def warm_up():
    """Import what the commands import and load the compiled functions; returns (None,
    facts) or (one line saying why the renderer cannot start, facts)."""
    import warnings
    from . import entry
    from .guard import environment_problem, threading_layer_problem
    facts = {"loaded": 0, "layer": None, "rehearsals": {}}
    with warnings.catch_warnings():  # a warning shown here is shown again by a child
        problem = environment_problem() or entry._import_numba() or threading_layer_problem()
        if problem is not None:
            return problem, facts
        from . import main, noisify, nonbragg  # noqa: F401  (and all they import)
        from nbnumba import _jit
        from nbnumba.kernels import cpu_backend  # noqa: F401
        from numba.np.ufunc import parallel
        kernels = openmp_expected()
        with _jit.no_blas_probe(), compiles_refused():
            if kernels:  # a rehearsal sets numba's threading layer up: OpenMP only
                facts["rehearsals"] = rehearse()
            facts["loaded"] = load_compiled(kernels)
    if parallel._is_initialized:
        facts["layer"] = parallel.threading_layer()
        if facts["layer"] != "omp":
            return ("numba set up its %s threading layer while loading the kernels; the "
                    "renderer forks only before OpenMP runs" % facts["layer"]), facts
    return None, facts


def _set_parent_death_signal():
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Zygote:
    """The renderer's state: what it started with, its socket, its children."""

    def __init__(self, socket_path, lock_fd, log_path, idle):
        self.socket_path = socket_path
        self.lock_fd = lock_fd
        self.log_path = log_path
        self.idle = idle
        self.pid = os.getpid()
        self.started = time.time()
        self.description = procstate.describe()
        directories = rundir.package_directories()
        self.fingerprint = rundir.source_fingerprint(directories)
        self.sources = (directories, ())
        self.default_threads = None
        self.warm = {}
        self.ready_after = None
        self.cpu_at_ready = None
        self.listener = None
        self.socket_inode = None
        self.children = {}  # pid -> the connection of its client
        self.served = 0
        self.declined = 0
        self.last_run = time.monotonic()
        self.largest_rss_kib = 0
        self.last_rss_kib = 0
        self.stopping = None
        self.wake = None
        self.spare = None  # (pid, socket) of the child forked for the next connection
        self.handed_counts = None  # in a spare child: counts() when it got its connection

    # -- start-up ---------------------------------------------------------------------

    def prepare(self):
        """Warm up; None, or one line saying why the renderer cannot serve."""
        problem, self.warm = warm_up()
        if problem is not None:
            return problem
        import numba
        import numpy
        import llvmlite
        modules = tuple(os.path.realpath(m.__file__) for m in (numpy, numba, llvmlite))
        self.fingerprint += rundir.source_fingerprint((), modules)
        self.sources = (self.sources[0], modules)
        self.default_threads = numba.config.NUMBA_DEFAULT_NUM_THREADS
        return None

    def listen(self):
        """Bind the socket under a temporary name and rename it into place."""
        temporary = "%s.%d.tmp" % (self.socket_path, self.pid)
        if os.path.lexists(temporary):
            os.unlink(temporary)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(temporary)
        os.chmod(temporary, 0o600)
        listener.listen(64)
        listener.setblocking(False)
        os.replace(temporary, self.socket_path)
        self.socket_inode = os.lstat(self.socket_path).st_ino
        self.listener = listener

    def ready(self):
        gc.collect()
        gc.freeze()  # children leave the renderer's objects alone: fewer copied pages
        self.ready_after = time.time() - self.started
        times = os.times()
        self.cpu_at_ready = times.user + times.system

    # -- the loop ---------------------------------------------------------------------

    def _on_signal(self, signum, frame):
        if signum != signal.SIGCHLD and self.stopping is None:
            self.stopping = "signal %d" % signum

    def serve(self):
        """Accept, fork and reap until stopped and every child has been reaped."""
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake = (wake_r, wake_w)
        signal.set_wakeup_fd(wake_w)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        poller = select.poll()
        poller.register(wake_r, select.POLLIN)
        poller.register(self.listener, select.POLLIN)
        self.fork_spare()
        while True:
            if self.stopping is not None and self.listener is not None:
                self.stop_accepting(poller)
            if self.stopping is not None and not self.children:
                break
            timeout = None
            if not self.children and self.stopping is None:
                left = self.last_run + self.idle - time.monotonic()
                if left <= 0:
                    self.stopping = "idle for %g s" % self.idle
                    continue
                timeout = max(int(left * 1000) + 1, 1)
            events = poller.poll(timeout)
            for fd, _ in events:
                if fd == wake_r:
                    try:
                        while os.read(wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
            self.reap()
            if self.listener is not None and self.stopping is None and \
                    any(fd == self.listener.fileno() for fd, _ in events):
                self.accept()
            elif self.spare is None and not self.children:
                self.fork_spare()  # between runs: forking then holds up no one
        _log("stopped (%s); %d runs served" % (self.stopping, self.served))

    def accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                _log("accept failed: %s" % exc)
                break
            try:
                uid = wire.peer_uid(conn)
            except OSError:
                uid = None
            if uid != os.geteuid():
                _log("refused a connection from uid %s" % uid)
                conn.close()
                continue
            if not self.hand_over(conn):
                self.fork(conn)

    # -- children ---------------------------------------------------------------------

    def _flush(self):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass

    def _child(self, conn, spare_end=None):
        """The life of a forked child: serve ``conn`` (or, for the spare, the connection
        the renderer hands over on ``spare_end``) and exit."""
        status = renderchild.FAILED
        try:
            self.enter_child(keep=spare_end)
            if spare_end is not None:
                conn = self.wait_for_connection(spare_end)
            if conn is None:
                status = renderchild.CONTROL
            else:
                status = renderchild.serve(conn, self)
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(status)

    def fork(self, conn):
        """A child for ``conn``, forked now."""
        self._flush()
        try:
            pid = os.fork()
        except OSError as exc:
            _log("fork failed: %s" % exc)
            conn.close()
            return
        if pid == 0:
            self._child(conn)
        self.children[pid] = conn

    def fork_spare(self):
        """Fork the child that will take the next connection, so that the next client
        does not wait for a fork (1 to 6 ms for a process of this size). It is forked
        when no run is in progress: a fork slows the page faults of a running child."""
        if self.listener is None or self.stopping is not None:
            return
        self._flush()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = os.fork()
        except OSError as exc:
            _log("fork failed: %s" % exc)
            ours.close()
            theirs.close()
            return
        if pid == 0:
            ours.close()
            self._child(None, theirs)
        theirs.close()
        self.spare = (pid, ours)

    def hand_over(self, conn):
        """Give ``conn`` to the spare child, with the renderer's counts as they are now;
        False when there is no spare."""
        if self.spare is None:
            return False
        pid, ours = self.spare
        self.spare = None
        try:
            wire.send(ours, ("connection", self.counts()), [conn.fileno()])
        except OSError:
            ours.close()
            return False
        ours.close()
        self.children[pid] = conn
        return True

    def wait_for_connection(self, spare_end):
        """In the spare child: the connection the renderer hands over (a socket), or
        None when the renderer stops first."""
        reader = wire.Reader(spare_end)
        try:
            message = reader.receive()
        except (OSError, wire.ProtocolError):
            message = None
        fds = reader.take_fds()
        spare_end.close()
        if message is None or message[0] != "connection" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            return None
        self.handed_counts = dict(message[1])
        return socket.socket(fileno=fds[0])

    def enter_child(self, keep=None):
        """In a freshly forked child: die with the renderer, drop its descriptors (all
        but ``keep``) and signal handlers."""
        _set_parent_death_signal()
        if os.getppid() != self.pid:
            os._exit(renderchild.FAILED)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        for fd in (self.wake or ()) + (self.lock_fd,):
            if fd >= 0:
                os.close(fd)
        self.listener.close()
        for other in self.children.values():
            other.close()
        if self.spare is not None:
            self.spare[1].close()
        self.children, self.spare = {}, None
        # the renderer's objects stay frozen (never collected: a collection would copy
        # every page they are on); Python reseeds `random` after a fork, NumPy does not
        if "numpy.random" in sys.modules:
            sys.modules["numpy"].random.seed()

    def reap(self):
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.spare is not None and pid == self.spare[0]:
                self.spare[1].close()   # the spare died unused: the next accept forks
                self.spare = None
                continue
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            self.finished(conn, status, usage)
            conn.close()

    def finished(self, conn, status, usage):
        """Count a reaped child's outcome and report it to its client (a child that
        left normally has reported its status already; a second report is ignored)."""
        code = os.waitstatus_to_exitcode(status)
        outcome = renderchild.OUTCOMES.get(code)
        if outcome in ("declined", "stale"):
            self.declined += 1
        if outcome == "stale":
            self.stopping = self.stopping or "nbnumba's files changed"
        elif outcome == "stop":
            self.stopping = self.stopping or "asked to stop"
        if outcome is not None:
            return
        self.served += 1
        self.last_run = time.monotonic()
        self.last_rss_kib = usage.ru_maxrss
        self.largest_rss_kib = max(self.largest_rss_kib, usage.ru_maxrss)
        message = ("exit", code) if code >= 0 else ("killed", -code)
        try:
            conn.send(wire.encode(message), socket.MSG_DONTWAIT)
        except OSError:  # the client is gone (or has left with the child's own report)
            pass

    def stop_accepting(self, poller):
        """No new requests: socket closed and removed (if still ours), lock released."""
        poller.unregister(self.listener)
        self.listener.close()
        self.listener = None
        try:
            if os.lstat(self.socket_path).st_ino == self.socket_inode:
                os.unlink(self.socket_path)
        except OSError:
            pass
        os.close(self.lock_fd)
        self.lock_fd = -1
        if self.spare is not None:  # it reads the end of its pipe and leaves
            self.spare[1].close()
            self.spare = None
        _log("stopping (%s); %d runs in progress" % (self.stopping, len(self.children)))

    # -- facts for `nbnumba --server status` (called in a forked child) ------------------

    def facts(self):
        """What ``nbnumba --server status`` shows (in a child: the renderer is the parent)."""
        from nbnumba import __version__
        parent = os.getppid()
        rss = threads = None
        for line in _read_text("/proc/%d/status" % parent).splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
        fields = _read_text("/proc/%d/stat" % parent).rpartition(")")[2].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks if len(fields) > 12 else None
        facts = {"pid": parent, "version": __version__, "python": sys.version.split()[0],
                 "started": self.started, "ready_after": self.ready_after,
                 "idle_timeout": self.idle, "rss_kib": rss, "threads": threads,
                 "cpu_seconds": cpu,
                 "cpu_at_ready": self.cpu_at_ready, "loaded": self.warm.get("loaded", 0),
                 "layer": self.warm.get("layer"), "socket": self.socket_path,
                 "log": self.log_path}
        facts.update(self.counts())
        facts["idle_for"] = time.monotonic() - facts.pop("last_run")
        return facts

    def counts(self):
        """The renderer's changing state, as the child that answers a request needs it
        (a spare child was forked earlier: the renderer hands them over with the
        connection)."""
        if self.handed_counts is not None:
            return dict(self.handed_counts)
        return {"served": self.served, "declined": self.declined,
                "running": len(self.children), "last_run": self.last_run,
                "largest_rss_kib": self.largest_rss_kib, "last_rss_kib": self.last_rss_kib}


def _read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _take_lock(path):
    """The lock file's descriptor, locked; or (None, pid of the holder)."""
    import fcntl
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip()
        os.close(fd)
        return None, holder
    os.ftruncate(fd, 0)
    os.write(fd, b"%d\n" % os.getpid())
    try:
        os.ftruncate(2, 0)  # the log (stderr) starts with this renderer
    except OSError:
        pass
    return fd, None


def _tell_starter(fd, line):
    if fd is None:
        return
    try:
        os.write(fd, line.encode("utf-8", "backslashreplace") + b"\n")
    except OSError:
        pass
    try:
        os.close(fd)
    except OSError:
        pass


def main(argv):
    """Run the renderer: ``--socket PATH --lock PATH --log PATH --idle SECONDS
    [--ready-fd FD]`` (as :mod:`nbnumba_cli.server` starts it)."""
    options = dict(zip(argv[::2], argv[1::2]))
    ready_fd = int(options["--ready-fd"]) if "--ready-fd" in options else None
    os.umask(0o077)
    os.chdir("/")
    lock_fd, holder = _take_lock(options["--lock"])
    if lock_fd is None:
        _tell_starter(ready_fd, "running %s" % holder)
        return 0
    zygote = Zygote(options["--socket"], lock_fd, options["--log"], float(options["--idle"]))
    _log("starting (nbnumba_cli in %s, Python %s)"
         % (zygote.sources[0][0], sys.version.split()[0]))
    problem = zygote.prepare()
    from . import stopsignals
    if problem is None and stopsignals.received() is not None:
        problem = "stopped by signal %d while warming up" % stopsignals.received()
    if problem is not None:
        _log("cannot serve: " + problem)
        _tell_starter(ready_fd, "error " + problem)
        return 9
    for run, status in zygote.warm["rehearsals"].items():
        if status != 0:
            _log("rehearsal %r ended with %s (its remaining steps are left to the first "
                 "run that needs them)" % (run, status))
    zygote.listen()
    zygote.ready()
    _log("ready after %.2f s: %d compiled functions loaded, threading layer %s, %d threads"
         % (zygote.ready_after, zygote.warm["loaded"], zygote.warm["layer"] or "not set up",
            len(os.listdir("/proc/self/task"))))
    _tell_starter(ready_fd, "ready %d" % os.getpid())
    zygote.serve()
    return 0
