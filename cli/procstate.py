"""What a command's run depends on in its process, so that the resident renderer can run
it as the client's own process would, or decline.

Standard library only. The client describes itself (:func:`describe`); the renderer
recorded the same description of itself when it started (:func:`describe` too); a
forked child of the renderer compares the two (:func:`differences`) and then takes on
the client's per-run state (:func:`apply`).

Two kinds of state:

* **fixed at start-up** in the renderer, and so required to be equal, else the request
  runs in-process: the interpreter (``sys.executable``, version, flags, ``sys.path``,
  warning options), the installation, the environment variables read when the
  interpreter, NumPy, numba, LLVM, OpenMP or the BLAS start (:func:`startup_variables`),
  the user and groups, the Linux namespaces, the stack limit, and the CPU count numba
  sizes its thread pool from (when ``NUMBA_NUM_THREADS`` is unset);
* **per run**, taken on by the child: standard input, output and error (the client's own
  descriptors, passed over the socket, with its streams' encoding and buffering), the
  working directory (a descriptor of it: relative paths and ``./Fdump.bin`` resolve
  there), every other environment variable (``TZ`` included: ``time.tzset``), the umask,
  the CPU affinity, the resource limits, the nice value and scheduling policy, the
  control group (the child moves into the client's; where it may not, as in a batch
  job's cgroup owned by root, the request runs in-process, so that a job's CPU and
  memory limits hold), the arguments, and whether SIGINT is ignored.
"""
import _signal as signal  # (the signal module's enums cost the client start-up time)
import os
import sys

#: environment variables (names, and prefixes ending in "_" or a letter run) whose value
#: is read when the interpreter or a library starts: a request must match the renderer's
STARTUP_PREFIXES = (
    "PYTHON",                       # interpreter: path, hash seed, I/O encoding, warnings
    "NUMBA_", "LLVM", "NUMPY_", "NPY_", "SCIPY_",   # numba's config, LLVM, NumPy features
    "OMP_", "GOMP_", "KMP_", "TBB_",                 # threading layers
    "MKL_", "OPENBLAS_", "GOTO", "BLIS_", "VECLIB_",  # BLAS thread pools
    "CUDA", "NVIDIA_",                               # the CUDA driver and toolkit
    "HDF5_", "H5PY_",                                # HDF5 plugins, file locking
    "LD_", "MALLOC_", "GLIBC_",                      # dynamic loader and allocator
    "LC_", "COVERAGE_",
)
STARTUP_NAMES = ("LANG", "LANGUAGE", "HOME", "XDG_CACHE_HOME")

#: namespaces a client must share with the renderer (files, pids, users, host name,
#: cgroup paths)
NAMESPACES = ("mnt", "pid", "user", "uts", "cgroup")

#: resource limits the child takes on (RLIMIT_STACK must be equal: thread stacks follow it)
RLIMITS = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
           "RLIMIT_MEMLOCK", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS")


class Declined(Exception):
    """The request cannot be run here as the client's own process would run it."""


def is_startup_variable(name):
    """True for an environment variable (bytes or str name) fixed at start-up."""
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return name in STARTUP_NAMES or name.startswith(STARTUP_PREFIXES)


def startup_variables(environ):
    """The start-up part (:func:`is_startup_variable`) of a bytes environment."""
    return {k: v for k, v in environ.items() if is_startup_variable(k)}


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _namespaces():
    found = []
    for name in NAMESPACES:
        try:
            found.append(os.readlink("/proc/self/ns/" + name))
        except OSError:
            found.append("")
    return found


def _stream(stream):
    """(encoding, errors, line buffering, write through) of a standard text stream, or
    None when it is not one (closed at start-up: None)."""
    if stream is None:
        return None
    try:
        return (stream.encoding, stream.errors, bool(stream.line_buffering),
                bool(getattr(stream, "write_through", False)))
    except AttributeError:
        return None


def _rlimits():
    import resource
    return {name: resource.getrlimit(getattr(resource, name))
            for name in RLIMITS + ("RLIMIT_STACK",) if hasattr(resource, name)}


def describe(prog=None):
    """This process as the renderer sees a request: a dict of plain values."""
    from . import rundir
    mask = os.umask(0o022)
    os.umask(mask)
    scheduler = os.sched_getscheduler(0)
    return {
        "prog": prog,
        "argv": list(sys.argv),
        "environ": dict(os.environb),
        "umask": mask,
        "affinity": sorted(os.sched_getaffinity(0)),
        "rlimits": _rlimits(),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "scheduler": (scheduler, os.sched_getparam(0).sched_priority),
        "ids": (os.getuid(), os.geteuid(), os.getgid(), os.getegid(), sorted(os.getgroups())),
        "cgroup": _read("/proc/self/cgroup"),
        "namespaces": _namespaces(),
        "python": (sys.executable, sys.version, tuple(sys.flags), list(sys.path),
                   list(sys.warnoptions), dict(sys._xoptions)),
        "installation": rundir.installation(),
        "stdio": [_stream(s) for s in (sys.stdin, sys.stdout, sys.stderr)],
        "sigint_ignored": signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
    }


def _variable_difference(wanted, own):
    for name in sorted(set(wanted) | set(own)):
        if wanted.get(name) != own.get(name):
            return "the environment variable %s differs" % os.fsdecode(name)
    return None


def differences(request, own, default_threads):
    """None when ``request`` (a :func:`describe` of the client) can run in a process
    that started as ``own`` did, else one line saying what differs.
    ``default_threads``: the thread count numba chose at start-up without
    ``NUMBA_NUM_THREADS`` (it follows the CPU affinity)."""
    if request.get("installation") != own["installation"]:
        return "another installation"
    if request.get("python") != own["python"]:
        return "another interpreter, interpreter options or sys.path"
    difference = _variable_difference(startup_variables(request["environ"]),
                                      startup_variables(own["environ"]))
    if difference:
        return difference
    if request["ids"] != own["ids"]:
        return "other user or group ids"
    if request["namespaces"] != own["namespaces"]:
        return "another namespace (a container)"
    if request["rlimits"].get("RLIMIT_STACK") != own["rlimits"].get("RLIMIT_STACK"):
        return "another stack size limit"
    if b"NUMBA_NUM_THREADS" not in request["environ"] and \
            len(request["affinity"]) != default_threads:
        return "a CPU affinity of %d CPUs (numba's thread pool here has %d threads)" % (
            len(request["affinity"]), default_threads)
    if len(request["stdio"]) != 3:
        return "malformed request"
    return None


# ---------------------------------------------------------------------------------------
# taking on the client's state (in a forked child of the renderer)


def _cgroup_mounts():
    """[(controllers, mount point, mount root)] of the cgroup file systems: controllers
    is an empty set for cgroup v2, else the options of a v1 hierarchy (``memory``,
    ``name=systemd`` ...)."""
    mounts = []
    for line in _read("/proc/self/mountinfo").decode("utf-8", "replace").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        options = set(tail[2].split(",")) if tail[0] == "cgroup" else set()
        mounts.append((options, fields[4].replace("\\040", " "), fields[3]))
    return mounts


def _cgroup_lines(text):
    """{controllers (a sorted tuple; () for cgroup v2): path} of /proc/PID/cgroup text."""
    found = {}
    for line in text.decode("utf-8", "replace").splitlines():
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        found[tuple(sorted(c for c in controllers.split(",") if c))] = path
    return found


def _procs_file(mounts, controllers, path):
    for options, point, root in mounts:
        if (not controllers and not options) or (controllers and options.issuperset(controllers)):
            relative = os.path.relpath(path, root)
            if relative == "." or not relative.startswith(".."):
                return os.path.join(point, "" if relative == "." else relative, "cgroup.procs")
    return None


def join_cgroup(wanted):
    """Move this process into the control groups ``wanted`` (the text of a client's
    ``/proc/self/cgroup``); raises :class:`Declined` where it may not."""
    own = _read("/proc/self/cgroup")
    if own == wanted:
        return
    mounts = _cgroup_mounts()
    mine = _cgroup_lines(own)
    for controllers, path in _cgroup_lines(wanted).items():
        if mine.get(controllers) == path:
            continue
        target = _procs_file(mounts, controllers, path)
        if target is None:
            raise Declined("another control group (%s)" % path)
        try:
            with open(target, "w") as f:
                f.write("%d\n" % os.getpid())
        except OSError:
            raise Declined("another control group (%s) this user may not join, as a "
                           "batch job's" % path) from None


def _text_stream(fd, spec, write, name):
    """A standard stream on ``fd`` as the interpreter makes it at start-up."""
    import io
    if spec is None:
        return None
    encoding, errors, line_buffering, write_through = spec
    if write and write_through:
        buffer = raw = io.open(fd, "wb", 0, closefd=False)
    else:
        buffer = io.open(fd, "wb" if write else "rb", -1, closefd=False)
        raw = buffer.raw
    raw.name = name
    stream = io.TextIOWrapper(buffer, encoding, errors, "\n", line_buffering, write_through)
    stream.mode = "w" if write else "r"
    return stream


def _limits(wanted):
    import resource
    for name, (soft, hard) in wanted.items():
        if not hasattr(resource, name) or name == "RLIMIT_STACK":
            continue
        which = getattr(resource, name)
        if resource.getrlimit(which) == (soft, hard):
            continue
        try:
            resource.setrlimit(which, (soft, hard))
        except (OSError, ValueError):
            raise Declined("a resource limit (%s) this process cannot take on" % name) from None


def _scheduling(request):
    nice = request["nice"]
    if os.getpriority(os.PRIO_PROCESS, 0) != nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except OSError:
            raise Declined("a nice value (%d) this process cannot take on" % nice) from None
    policy, priority = request["scheduler"]
    if (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) != (policy, priority):
        try:
            os.sched_setscheduler(0, policy, os.sched_param(priority))
        except OSError:
            raise Declined("a scheduling policy this process cannot take on") from None


def apply(request, fds, keep):
    """Take on the client's per-run state (see the module notes): ``fds`` are its
    stdin, stdout, stderr and working directory, received with the request. The
    replaced standard streams are appended to ``keep`` (they must never be flushed or
    closed again: their descriptors are the client's now). Raises :class:`Declined`."""
    if len(fds) != 4:
        raise Declined("malformed request (descriptors)")
    join_cgroup(request["cgroup"])
    _limits(request["rlimits"])
    _scheduling(request)
    os.sched_setaffinity(0, request["affinity"])
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
        os.close(fd)
    try:
        os.fchdir(fds[3])
    finally:
        os.close(fds[3])
    os.umask(request["umask"])
    os.environ.clear()
    for name, value in request["environ"].items():
        os.environb[name] = value
    import time
    time.tzset()
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = None
    keep += [sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__]
    specs = request["stdio"]
    sys.stdin = sys.__stdin__ = _text_stream(0, specs[0], False, "<stdin>")
    sys.stdout = sys.__stdout__ = _text_stream(1, specs[1], True, "<stdout>")
    sys.stderr = sys.__stderr__ = _text_stream(2, specs[2], True, "<stderr>")
    sys.argv[:] = request["argv"]
