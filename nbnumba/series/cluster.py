"""A dask cluster under watch while a series runs on it.

:func:`check_address` tries a scheduler's address before dask connects to it, so that a
refused, silent, non-Dask or unknown address is one line within the connect time;
:class:`ClusterWatch` admits each worker before it gets a frame (the same nbnumba, numba
and NumPy versions as the command, checked by a function sent by value so that it also
runs where nbnumba is missing; then a probe file each way in every output directory),
follows workers that join or leave, and stops the run in one line when the scheduler is
gone, or no worker is left, for longer than the cluster timeout.

Dask is only reached through the client given (nothing here imports it).
"""
import builtins
import errno
import os
import secrets
import socket
import threading
import time
import types
import urllib.parse

from . import record
from .frames import SeriesError
from .tasks import DRIVER_PROBE, probe_storage, stage_directory

#: default seconds to reach a scheduler (each step: the name, the connection, its greeting)
CONNECT_TIMEOUT = 30.0
#: default seconds a run waits for a lost scheduler, or for a worker when it has none
CLUSTER_TIMEOUT = 60.0
#: the port a dask scheduler listens on unless told otherwise, and its dashboard's
SCHEDULER_PORT, DASHBOARD_PORT = 8786, 8787
#: how often the scheduler is asked for its workers while frames run (seconds)
LIST_INTERVAL = 1.0
#: at most this many output directories are probed (the others are checked by every
#: frame: a worker writes only into staging directories the command made)
PROBED_DIRECTORIES = 8
#: seconds the first frame waits for the other workers' admission once one is admitted
ADMISSION_WAIT = 30.0
#: versions a worker must share with the command (the same images)
COMPARED = ("nbnumba", "numba", "numpy")
_NAMES = {"nbnumba": "nbnumba", "numba": "numba", "numpy": "NumPy"}


# ---------------------------------------------------------------------------------------
# the address


def _split_address(address):
    """(scheme, host, port) of a dask address (``tcp://host:8786``, ``host:8786``)."""
    text = str(address).strip()
    scheme, sep, _ = text.partition("://")
    if not sep:
        scheme, text = "tcp", "tcp://" + text
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise SeriesError(f"{address!r} is not a dask scheduler address ({exc}): give "
                          "tcp://HOST:PORT") from None
    if not parts.hostname:
        raise SeriesError(f"{address!r} is not a dask scheduler address: give tcp://HOST:PORT")
    return scheme.lower(), parts.hostname, SCHEDULER_PORT if port is None else port


def _in_thread(function, seconds):
    """(finished, result or exception) of ``function()`` run in a daemon thread for at
    most ``seconds`` (a name lookup cannot be given a timeout of its own)."""
    box = {}

    def call():
        try:
            box["value"] = function()
        except BaseException as exc:  # noqa: B036 - handed to the waiting thread
            box["error"] = exc

    thread = threading.Thread(target=call, name="nbnumba-resolve", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return False, None
    return True, box.get("error", box.get("value"))


def _looks_like_dask(head):
    """True when ``head`` (the first bytes a server sent) starts a dask message: the
    length of its frames, then their count (8-byte little-endian integers)."""
    if len(head) < 16:
        return False
    total = int.from_bytes(head[:8], "little")
    frames = int.from_bytes(head[8:16], "little")
    return 16 <= total <= 1 << 24 and 1 <= frames <= 64


def check_address(address, timeout=CONNECT_TIMEOUT):
    """Raise :class:`SeriesError` (one line naming ``address`` and the likely cause) unless
    ``address`` is a dask scheduler that answers: the host name resolves, the port
    accepts a connection and the server greets as dask does. Each step waits at most
    ``timeout`` seconds (the whole check about that: the greeting shares the rest).
    Addresses of other protocols (``tls://``, ``ucx://``) are left to dask's own
    connect."""
    scheme, host, port = _split_address(address)
    if scheme != "tcp":
        return
    where = f"cannot use the dask scheduler at {address}"
    deadline = time.monotonic() + timeout
    finished, found = _in_thread(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM),
                                 timeout)
    if not finished:
        raise SeriesError(f"{where}: the name {host!r} did not resolve within {timeout:g} s "
                          "(a name server problem?)")
    if isinstance(found, socket.gaierror):
        raise SeriesError(f"{where}: unknown host {host!r} (a typo in the name?)")
    if isinstance(found, BaseException):
        raise SeriesError(f"{where}: {found}")
    sock, last = None, None
    for family, kind, proto, _, sockaddr in found:
        candidate = socket.socket(family, kind, proto)
        candidate.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            candidate.connect(sockaddr)
        except OSError as exc:
            candidate.close()
            last = exc
            continue
        sock = candidate
        break
    if sock is None:
        if isinstance(last, ConnectionRefusedError):
            raise SeriesError(f"{where}: connection refused (nothing listens on port {port} "
                              f"of {host}: is the scheduler running? it listens on "
                              f"{SCHEDULER_PORT} unless told otherwise)")
        if isinstance(last, socket.timeout):
            raise SeriesError(f"{where}: no answer to a connection within {timeout:g} s (a "
                              "wrong host, or a firewall in between?)")
        raise SeriesError(f"{where}: {getattr(last, 'strerror', None) or last}")
    with sock:
        _check_greeting(sock, address, where, deadline, timeout)


def _check_greeting(sock, address, where, deadline, timeout):
    """A dask server sends a greeting as soon as it accepts a connection: wait for it
    (a third of the time left), then ask in HTTP whether it is a web server."""
    head = _receive(sock, time.monotonic() + max(0.1, (deadline - time.monotonic()) / 3))
    if head is None:   # silent so far: a dashboard (HTTP) waits for a request
        try:
            sock.sendall(b"HEAD / HTTP/1.0\r\nHost: nbnumba\r\n\r\n")
        except OSError:
            pass
        head = _receive(sock, max(deadline, time.monotonic() + 0.1))
        if head is None:
            raise SeriesError(f"{where}: it accepted a connection but said nothing within "
                              f"{timeout:g} s: not a Dask scheduler (another service on that "
                              "port? a wrong port?)")
    if head.startswith(b"HTTP/"):
        raise SeriesError(f"{where}: it is a web server, not a Dask scheduler (the "
                          f"dashboard? it listens on {DASHBOARD_PORT}, the scheduler on "
                          f"{SCHEDULER_PORT} unless told otherwise)")
    if not head:
        raise SeriesError(f"{where}: it closed the connection without a word: not a Dask "
                          "scheduler (or one that refuses this machine)")
    if not _looks_like_dask(head):
        shown = head[:24].decode("ascii", "replace").encode("unicode_escape").decode()
        raise SeriesError(f"{where}: it answers, but not as a Dask scheduler (it sent "
                          f"'{shown}'): a wrong port?")


def _receive(sock, until):
    """Up to 16 bytes from ``sock`` before ``until`` (monotonic); None: nothing came,
    b"": the other end closed."""
    head = b""
    while len(head) < 16:
        left = until - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(16 - len(head))
        except socket.timeout:
            break
        except OSError:
            return head
        if not chunk:
            return head
        head += chunk
    return head or None


# ---------------------------------------------------------------------------------------
# versions


def _worker_versions():
    """Runs on a worker (sent by value): its host, process, cores and the versions of
    what renders the images; a module that cannot be imported gives None and its error."""
    import importlib
    import os
    import socket
    found = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        found["cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        found["cores"] = os.cpu_count() or 1
    for name in ("nbnumba", "numba", "numpy"):
        try:
            found[name] = str(importlib.import_module(name).__version__)
        except Exception as exc:  # noqa: BLE001 - any failure is the answer
            found[name] = None
            found[name + " error"] = "%s: %s" % (type(exc).__name__, exc)
    return found


def by_value(function):
    """A copy of ``function`` that pickles by value: its code travels, not a reference
    to this module, so that it runs on a worker where nbnumba is missing or another
    version (a task that names a module the worker cannot import makes a dask worker
    drop its connection). ``function`` may use builtins and local imports only."""
    return types.FunctionType(function.__code__,
                              {"__builtins__": builtins, "__name__": "nbnumba-sent-by-value"},
                              function.__name__)


#: :func:`_worker_versions`, ready to send
worker_versions = by_value(_worker_versions)


def local_versions():
    """The versions a worker must share with this process."""
    return _worker_versions()


# ---------------------------------------------------------------------------------------
# the watch


class ClusterWatch:
    """The workers a series may use on a dask cluster, and the cluster's health.

    A worker gets frames only once admitted: its versions match this process's, and
    (when ``directories`` are given) it read the probe file written here in each run's
    staging directory and wrote one that is read back here. A worker that fails is
    refused: :class:`SeriesError` naming it, which stops the run. :meth:`poll` (called
    by the run loop) admits workers that join, forgets those that leave, and raises when
    the scheduler has been gone, or no worker admitted, for ``timeout`` seconds.
    """

    def __init__(self, client, address=None, directories=(), run=None, timeout=None):
        self.client = client
        self.address = address or getattr(getattr(client, "scheduler", None), "address",
                                           "?")
        self.timeout = CLUSTER_TIMEOUT if timeout is None else float(timeout)
        self.run = run
        self.directories = tuple(directories)[:PROBED_DIRECTORIES] if run else ()
        self.versions = local_versions()
        self.token = secrets.token_hex(16).encode()
        self.admitted = {}   # address -> what the worker said (versions, host, cores)
        self.threads = {}    # address -> its task slots (dask threads)
        self.names = {}      # host:pid -> address
        self.pending = {}    # address -> (step, future)
        self.known = {}      # address -> the scheduler's worker info, as last listed
        self.ever_admitted = False
        self._said = {}      # address -> its versions, until its probe is read back
        self._listed = False
        self._lost_since = None
        self._alone_since = time.monotonic()
        self._next_listing = 0.0
        if self.directories:
            self._write_driver_probes()

    # -- what the run loop asks

    def ready(self):
        """True when frames may be submitted (the scheduler is there, a worker admitted)."""
        return self.client.status == "running" and bool(self.admitted)

    def addresses(self):
        """The admitted workers (the restriction of every frame submitted now)."""
        return sorted(self.admitted)

    def width(self):
        """Frames to keep submitted: twice the admitted workers' task slots."""
        return max(2, 2 * sum(self.threads.get(a, 1) for a in self.admitted))

    def numba_threads(self):
        """numba threads per task: on each host, its cores divided by the tasks its
        admitted workers run at once; the smallest over the hosts (None: no worker)."""
        per_host = {}
        for address, said in self.admitted.items():
            tasks, cores = per_host.get(said["host"], (0, 0))
            per_host[said["host"]] = (tasks + self.threads.get(address, 1),
                                      max(cores, int(said.get("cores") or 1)))
        if not per_host:
            return None
        return max(1, min(c // max(t, 1) for t, c in per_host.values()))

    def describe(self, worker):
        """How messages name a worker given as host:pid (a frame's ``worker``)."""
        address = self.names.get(worker)
        host, _, pid = str(worker).rpartition(":")
        if address is None:
            return f"worker {worker}"
        return f"worker {address} (host {host}, process {pid})"

    def lost(self):
        """The line of a lost scheduler."""
        return f"lost the dask scheduler at {self.address}; rerun with --resume"

    # -- admission

    def admit_all(self, waiting=None, check=None):
        """Admit the workers the scheduler has now (at least one) before the first frame;
        a worker still busy answering :data:`ADMISSION_WAIT` seconds after the first was
        admitted (another client's long task ahead of the question) is admitted, or
        refused, while frames run on the others.

        waiting: optional callable(text) showing what is waited for; check: optional
        callable run every 0.05 s (a Ctrl-C check)."""
        first = None
        while True:
            self.poll()
            if self.admitted and self._listed:
                first = time.monotonic() if first is None else first
                if not self.pending or time.monotonic() - first > ADMISSION_WAIT:
                    return
            if waiting is not None:
                n = len(self.known)
                waiting("checking %d dask worker%s" % (n, "" if n == 1 else "s") if n
                        else "waiting for a dask worker")
            if check is not None:
                check()
            time.sleep(0.05)

    def poll(self):
        """Follow the cluster: raise :class:`SeriesError` when the scheduler is lost or
        no worker was admitted for the timeout, or a worker is refused; admit workers
        that joined and forget those that left."""
        now = time.monotonic()
        if not self._scheduler_there(now):
            return
        if now >= self._next_listing:
            self._list_workers()
            self._next_listing = now + LIST_INTERVAL
        self._advance()
        if self.admitted:
            self._alone_since = None
        elif self._alone_since is None:
            self._alone_since = now
        elif now - self._alone_since > self.timeout:
            if self.ever_admitted:
                raise SeriesError(f"no dask worker left at the scheduler {self.address} for "
                                  f"{self.timeout:g} s; rerun with --resume once workers "
                                  "are back")
            raise SeriesError(f"no dask worker joined the scheduler at {self.address} within "
                              f"{self.timeout:g} s (start workers with: dask worker "
                              f"{self.address}; or give more time with --cluster-timeout)")

    def _scheduler_there(self, now):
        status = self.client.status
        if status == "running":
            if self._lost_since is not None:   # reconnected: its workers start afresh
                self._lost_since = None
                self._forget(list(self.admitted) + list(self.pending))
                self._next_listing = 0.0
            return True
        if status in ("closing", "closed"):
            raise SeriesError(self.lost())
        if self._lost_since is None:
            self._lost_since = now
        elif now - self._lost_since > self.timeout:
            raise SeriesError(self.lost())
        return False

    def _list_workers(self):
        try:
            info = self.client.sync(self.client.scheduler.identity, n_workers=-1,
                                    callback_timeout=max(1.0, min(10.0, self.timeout)))
        except Exception:  # noqa: BLE001 - unreachable now: the status says how long
            return
        self.known = dict(info.get("workers", {}))
        self._listed = True
        self._forget([a for a in list(self.admitted) + list(self.pending)
                      if a not in self.known])
        for address, worker in self.known.items():
            if address not in self.admitted and address not in self.pending:
                self.threads[address] = int(worker.get("nthreads") or 1)
                self.pending[address] = ("versions", self._pinned(address, worker_versions))

    def _forget(self, addresses):
        for address in addresses:
            self.admitted.pop(address, None)
            self.pending.pop(address, None)
            self._said.pop(address, None)
        self.names = {n: a for n, a in self.names.items() if a in self.admitted}

    def _pinned(self, address, function, *args):
        return self.client.submit(function, *args, workers=[address],
                                  allow_other_workers=False, pure=False)

    def _advance(self):
        for address, (step, future) in list(self.pending.items()):
            if not future.done():
                continue
            if future.status == "error":
                fetched, error = _fetched(future.exception)
                if fetched:
                    raise SeriesError(f"worker {address}: {_phrase(error)}")
            fetched, value = (False, None) if future.status != "finished" else \
                _fetched(future.result)
            if not fetched:   # cancelled, or its result went with the worker: ask again
                self.pending.pop(address)
                self._said.pop(address, None)
                continue
            if step == "versions":
                self._check_versions(address, value)
                if self.directories:
                    self.pending[address] = ("probe", self._pinned(
                        address, probe_storage, self.directories, self.run, self.token))
                    continue
                self.pending.pop(address)
                self._admit(address, value)
            else:
                self._check_probe(address, value)
                self.pending.pop(address)
                self._admit(address, self._said.pop(address))

    def _admit(self, address, said):
        self.admitted[address] = said
        self.names["%s:%d" % (said["host"], said["pid"])] = address
        self.ever_admitted = True

    def _check_versions(self, address, said):
        who = f"worker {address} (host {said.get('host')})"
        for name in COMPARED:
            ours, theirs = self.versions[name], said.get(name)
            if theirs is None:
                raise SeriesError(
                    f"{who} cannot import {name} ({said.get(name + ' error')}): install "
                    f"nbnumba {self.versions['nbnumba']} with numba {self.versions['numba']} "
                    f"and NumPy {self.versions['numpy']} where the workers run")
            if theirs != ours:
                raise SeriesError(
                    f"{who} has {_NAMES[name]} {theirs}, this command {ours}: the images "
                    "could differ; give the workers the versions of the command")
        self._said[address] = said

    def _write_driver_probes(self):
        for d in self.directories:
            path = os.path.join(stage_directory(d, self.run), DRIVER_PROBE)
            try:
                with open(path, "wb") as handle:
                    handle.write(self.token)
            except OSError as exc:
                raise SeriesError(f"cannot write in {d}: {exc.strerror or exc}") from None

    def _check_probe(self, address, answer):
        said = self._said.get(address, {})
        who = f"worker {address} (host {said.get('host')})"
        if answer.get("error"):
            raise SeriesError(f"{who} {answer['error']}; every worker must see the output "
                              "directories at the same path (a shared file system)")
        for directory, path, content in answer["written"]:
            seen, problem = _read_back(path, len(content), max(1.0, min(10.0, self.timeout)))
            if seen != content:
                raise SeriesError(
                    f"{who} writes into {directory}, but this command does not see what it "
                    f"writes there ({problem or 'another content'}); every worker must see "
                    "the output directories at the same path (a shared file system)")
            try:
                os.unlink(path)
            except OSError:
                pass


def _read_back(path, size, seconds):
    """(content, error phrase) of a file another machine wrote, retried for ``seconds``
    (a network file system may show a new name late)."""
    deadline = time.monotonic() + seconds
    pause = 0.05
    while True:
        try:
            with record._open_regular(path) as handle:
                return handle.read(size + 1), None
        except OSError as exc:
            problem = exc.strerror or str(exc)
            if exc.errno not in (errno.ENOENT, errno.ESTALE) or time.monotonic() > deadline:
                return None, problem
        time.sleep(pause)
        pause = min(1.0, pause * 2)


def _fetched(call, seconds=10):
    """(True, ``call(timeout=seconds)``), or (False, None) when the call fails (the value
    is gone with its worker, or the scheduler is unreachable)."""
    try:
        return True, call(timeout=seconds)
    except Exception:  # noqa: BLE001 - the caller asks again
        return False, None


def _phrase(error):
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
