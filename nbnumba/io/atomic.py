"""Safe file output: every target is checked first, regular files are replaced whole.

What happens to an output path depends on what is there:

* nothing, or a regular file: the new content is written to a temporary file in the
  same directory and renamed over the path when the whole set is complete, so a failed,
  interrupted or killed run (a full disk, SIGKILL) leaves the old file or no file, never
  a mix. The new file keeps the old file's permission bits (and, where the user may set
  them, its owner and group). A file with several hard links is replaced the same way:
  the path given gets the new content, its other names keep the old one;
* a symbolic link: the file it points to is replaced (the link stays a link);
* a character device (``/dev/null``) or a FIFO: opened when checked, written at the end,
  never renamed over. A FIFO must already have a reader;
* a directory, block device or socket: refused.

A file the user may not replace is refused, also for root: a regular file with no
write permission bit at all (mode 0444), an immutable or append-only file (``chattr +i``,
``chattr +a``), a file in an append-only directory, or a file in a sticky directory
owned by another user. Two outputs of one run that are the same file (the same path
written twice, or through ``./``, a symbolic or a hard link) are refused
(:func:`check_distinct`). All checks run before anything is rendered and again before
anything is renamed, so a run either replaces its whole set or none of it.

Temporary names are ``.nbnumba-<name>.<tag>-<pid>-<random>.part`` (``<name>`` shortened
so the whole name always fits the file system's limit; ``<tag>`` identifies the target
name and the host). A run removes the temporaries of its own targets left by processes
that no longer exist (a killed run); nothing else is ever removed.
"""
import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import signal
import socket
import stat
import threading
import time

from ..errors import ConfigError, OutputError  # noqa: F401  (OutputError re-exported)


def _default_mode():
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _default_mode()

#: called with (temporary path, "created" | "renamed" | "removed", final path or None) for
#: every temporary file; see :func:`watch_temporaries`
_temporary_watcher = [None]


def follow_umask():
    """Take the mode of new files from the process's umask again: for a process whose
    umask changed after this module was imported (a child of the resident renderer,
    which takes on its client's umask)."""
    global _MODE
    _MODE = _default_mode()


def watch_temporaries(watcher):
    """Call ``watcher(path, state, final)`` for every temporary file of this process:
    when it is created ("created", before anything is written to it), renamed into
    place ("renamed"; ``final`` is the path it now has, else None) or removed
    ("removed"). The resident renderer tells its client, which removes what a killed run
    left; None stops the calls. ``watcher`` must not raise."""
    _temporary_watcher[0] = watcher


def _tell(path, state, final=None):
    watcher = _temporary_watcher[0]
    if watcher is not None:
        watcher(path, state, final)

#: signals held back while renaming a set of files (delivered once the set is complete)
DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


# ---------------------------------------------------------------------------------------
# temporary names


def _name_max(directory):
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _tag(name):
    """10 hex digits identifying a target file name (bytes) on this host."""
    host = socket.gethostname().encode("utf-8", "surrogateescape")
    return hashlib.sha1(host + b"\0" + name).hexdigest()[:10]


def temp_prefix(path):
    """Start of the temporary names used while writing ``path`` when the name is short
    enough to appear whole: ``.nbnumba-<name>.`` (then tag, pid, random and ``.part``)."""
    return ".nbnumba-" + os.path.basename(path) + "."


def temp_name(path, pid=None, name_max=255):
    """A temporary file name (no directory) for writing ``path``; at most ``name_max``
    bytes, whatever the length of the target's name."""
    name = os.fsencode(os.path.basename(path))
    suffix = ("%s-%d-%s.part" % (_tag(name), os.getpid() if pid is None else pid,
                                 secrets.token_hex(3))).encode("ascii")
    room = name_max - len(b".nbnumba-") - 1 - len(suffix)
    stem = name[:max(room, 0)]
    while stem and len(stem) < len(name) and 0x80 <= name[len(stem)] < 0xC0:
        stem = stem[:-1]  # do not cut a UTF-8 character in two
    return os.fsdecode(b".nbnumba-" + stem + b"." + suffix)


def _temp_owner(entry, tag):
    """The pid in ``entry`` if it is a temporary name of the target with ``tag``."""
    if not (entry.startswith(".nbnumba-") and entry.endswith(".part")):
        return None
    fields = entry[:-len(".part")].rsplit(".", 1)[-1].split("-")
    if len(fields) != 3 or fields[0] != tag or not fields[1].isdigit():
        return None
    return int(fields[1])


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_temporaries(path):
    """Remove the temporaries of ``path`` left by processes that no longer exist (on
    this host); returns the names removed."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    tag = _tag(os.fsencode(os.path.basename(path)))
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for entry in entries:
        pid = _temp_owner(entry, tag)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, entry))
            removed.append(entry)
    return removed


# ---------------------------------------------------------------------------------------
# checking a target


def _error(path, reason):
    return OutputError(f"cannot write {os.fsdecode(path)}: {reason}")


def _reason(exc):
    return exc.strerror or str(exc)


def _may_write(path, st):
    """May this user write to the existing regular file ``path`` (mode bits and
    immutable flag; root too is refused a file without any write bit)?"""
    if os.geteuid() == 0 and not st.st_mode & 0o222:
        return False
    effective = os.access in os.supports_effective_ids
    return os.access(path, os.W_OK, effective_ids=effective)


_FS_IOC_GETFLAGS = 0x80086601  # Linux: _IOR('f', 1, long)
_FS_IMMUTABLE_FL = 0x10
_FS_APPEND_FL = 0x20


def _inode_flags(path):
    """The Linux inode flags of ``path`` (``lsattr``), 0 where they cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        buf = fcntl.ioctl(fd, _FS_IOC_GETFLAGS, b"\0" * 8)
        return int.from_bytes(buf[:4], "little")
    except OSError:
        return 0
    finally:
        os.close(fd)


def _append_only(path):
    return bool(_inode_flags(path) & (_FS_APPEND_FL | _FS_IMMUTABLE_FL))


def _may_replace(path, st, directory):
    """Reason why the existing file ``path`` cannot be renamed over, or None."""
    dst = os.stat(directory)
    euid = os.geteuid()
    if dst.st_mode & stat.S_ISVTX and euid not in (0, st.st_uid, dst.st_uid):
        return "owned by another user in a sticky directory"
    if _append_only(path):
        return "the file is append-only or immutable (chattr +a or +i)"
    return None


class Target:
    """One output path, checked: how it will be written (``kind``) and where (``real``).

    kind: "replace" (temporary file renamed over it) or "stream" (character device or
    FIFO, kept open in ``fd``). ``identity``: what makes two targets the same file
    (device and inode of an existing file, else the resolved path).
    """

    def __init__(self, path, open_streams=True):
        self.path = path
        self._open_streams = open_streams
        try:
            self.real = os.path.realpath(path)
        except FileNotFoundError:  # a relative path, and the current directory was deleted
            raise _error(path, "the current directory no longer exists") from None
        except OSError as exc:
            raise _error(path, _reason(exc)) from None
        self.directory = os.path.dirname(self.real) or "."
        self.fd = None
        self.mode = _MODE
        self.owner = None
        self.kind = "replace"
        self.identity = ("path", os.path.normcase(self.real))
        self._inspect()

    def _inspect(self):
        path, real = self.path, self.real
        name = os.path.basename(real)
        given = os.path.basename(os.fsencode(path))
        if not name or given in (b"", b".", b".."):
            raise _error(path, "not a file name (a path ending in /, . or .. names a directory)")
        try:
            dst = os.stat(self.directory)
        except FileNotFoundError:
            raise _error(path, f"directory {os.fsdecode(self.directory)} does not exist") from None
        except OSError as exc:
            raise _error(path, _reason(exc)) from None
        if not stat.S_ISDIR(dst.st_mode):
            raise _error(path, f"{os.fsdecode(self.directory)} is not a directory")
        if len(os.fsencode(name)) > _name_max(self.directory):
            raise _error(path, "file name too long")
        try:
            st = os.stat(real)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise _error(path, _reason(exc)) from None
        if st is not None:
            self.identity = ("inode", st.st_dev, st.st_ino)
        if st is None:
            self._check_directory()
        elif stat.S_ISREG(st.st_mode):
            if not _may_write(real, st):
                raise _error(path, "permission denied (the file is read-only)")
            self.mode = stat.S_IMODE(st.st_mode)
            self.owner = (st.st_uid, st.st_gid)
            self._check_directory()
            reason = _may_replace(real, st, self.directory)
            if reason:
                raise _error(path, reason)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            self.kind = "stream"
            if self._open_streams:
                self._open_stream(stat.S_ISFIFO(st.st_mode))
            elif not _may_write(real, st):
                raise _error(path, "permission denied")
        elif stat.S_ISDIR(st.st_mode):
            raise _error(path, "it is a directory")
        else:
            raise _error(path, "not a regular file, character device or FIFO")

    def _check_directory(self):
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise _error(self.path, "no write permission in directory "
                         + os.fsdecode(self.directory))
        if _append_only(self.directory):
            raise _error(self.path, "the directory %s is append-only or immutable (chattr +a "
                         "or +i): a file cannot be renamed in it" % os.fsdecode(self.directory))

    def _open_stream(self, fifo):
        flags = os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC | (os.O_NONBLOCK if fifo else 0)
        try:
            self.fd = os.open(self.real, flags)
        except OSError as exc:
            if exc.errno == errno.ENXIO and fifo:
                raise _error(self.path, "FIFO has no reader (start the reader first)") from None
            if exc.errno in (errno.ENXIO, errno.ENODEV):
                raise _error(self.path, "the device is not available (%s)"
                             % _reason(exc)) from None
            raise _error(self.path, _reason(exc)) from None
        if fifo:  # the reader is there: from now on, write as fast as it reads
            os.set_blocking(self.fd, True)

    def recheck(self):
        """Check again, just before renaming, that the target can still be replaced."""
        try:
            st = os.stat(self.real)
        except FileNotFoundError:
            return self._check_directory()
        except OSError as exc:
            raise _error(self.path, _reason(exc)) from None
        if not stat.S_ISREG(st.st_mode):
            raise _error(self.path, "it changed while nbnumba ran")
        if not _may_write(self.real, st):
            raise _error(self.path, "permission denied (the file is read-only)")
        self._check_directory()
        reason = _may_replace(self.real, st, self.directory)
        if reason:
            raise _error(self.path, reason)

    def close(self):
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def check_distinct(outputs):
    """Fail early if two of ``outputs`` are the same file: ``outputs`` is a list of
    (label, path), e.g. ``("-floatfile", "x")``; the same path given twice, or two
    paths that lead to one file (``./x``, a symbolic or a hard link) raise
    :class:`OutputError` naming both. Character devices and FIFOs (``/dev/null``) may be
    shared. Paths that cannot be checked are left to :func:`check_writable`."""
    seen = {}
    for label, path in outputs:
        try:
            target = Target(path, open_streams=False)
        except OutputError:
            continue
        if target.kind != "replace":
            continue
        if target.identity in seen:
            first_label, first_path = seen[target.identity]
            same = "" if first_path == path else " (%s)" % os.fsdecode(first_path)
            raise OutputError("cannot write %s: %s and %s%s are the same file"
                              % (os.fsdecode(path), label, first_label, same))
        seen[target.identity] = (label, path)


def check_names_given(outputs):
    """Fail early if one of ``outputs`` ((label, path), e.g. ``("-nexus", "")``) is an
    empty name (``-nexus ''``), which names no file: :class:`OutputError` naming the
    option, never an option silently left out."""
    for label, path in outputs:
        if path is not None and not os.fspath(path):
            raise OutputError(f"{label}: an empty file name names no file")


def check_path(path, what="path"):
    """ConfigError unless ``path`` can name a file: str or os.PathLike, not empty,
    without a NUL character."""
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"{what} must be a file name (str or os.PathLike), got "
                          f"{type(path).__name__}")
    try:
        name = os.fspath(path)
    except TypeError as exc:  # an os.PathLike whose __fspath__ gives no file name
        raise ConfigError(f"{what} must be a file name: {exc}") from None
    if not isinstance(name, str):
        raise ConfigError(f"{what} must be a file name given as text (str or os.PathLike), "
                          f"got {type(name).__name__}")
    if len(name) == 0:
        raise ConfigError(f"{what} must be a file name, got an empty one")
    if "\0" in name:
        raise ConfigError(f"{what} {name!r} holds a NUL character, which no file name can")


def check_writable(path):
    """Fail early (before any rendering) if ``path`` cannot be written (see the module
    notes for what is refused); raises :class:`OutputError` naming the path. A device
    or FIFO is not opened here (opening and closing a FIFO would end its reader's
    input); :meth:`FileSet.reserve` opens them."""
    Target(path, open_streams=False).close()


def check_renamable(path, directories=None):
    """Fail (:class:`OutputError` naming ``path``) unless a complete new file can be
    renamed over ``path`` itself, as a series renames each frame's staged files: the
    directory must take a new name, and what is there must not be a directory, a
    regular file with no write permission bit (mode 0444, refused as for any output, root
    included), an immutable or append-only file, or another user's file in a sticky
    directory. Anything else there (a symbolic link, a FIFO, a device) is replaced by the
    rename, not written through. ``directories``: a dict that caches each directory's
    check across many calls (every frame of a series)."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    cache = {} if directories is None else directories
    if directory not in cache:
        cache[directory] = _renaming_problem(directory)
    if cache[directory] is not None:
        raise _error(path, cache[directory])
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _error(path, _reason(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise _error(path, "it is a directory")
    if not stat.S_ISREG(st.st_mode):
        return
    reason = _may_replace(path, st, directory)
    if reason:
        raise _error(path, reason)
    if not _may_write(path, st):
        raise _error(path, "permission denied (the file is read-only)")


def _renaming_problem(directory):
    """Why no file can be renamed into ``directory`` (one phrase), or None."""
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        return f"directory {os.fsdecode(directory)} does not exist"
    except OSError as exc:
        return _reason(exc)
    if not stat.S_ISDIR(st.st_mode):
        return f"{os.fsdecode(directory)} is not a directory"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "no write permission in directory " + os.fsdecode(directory)
    if _append_only(directory):
        return ("the directory %s is append-only or immutable (chattr +a or +i): a file "
                "cannot be renamed in it" % os.fsdecode(directory))
    return None


# ---------------------------------------------------------------------------------------
# writing


def _chunks(data):
    return [data] if isinstance(data, (bytes, bytearray, memoryview)) else list(data)


def _write_all(fd, chunks):
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        while view:
            written = os.write(fd, view)
            view = view[written:]


def _create_temp(target):
    """A new temporary file next to ``target``: (path, descriptor open for writing)."""
    name_max = _name_max(target.directory)
    while True:
        tmp = os.path.join(target.directory, temp_name(target.real, name_max=name_max))
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                                0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _error(target.path, _reason(exc)) from None


def _write_temp(target, chunks):
    """Write ``chunks`` to a new temporary file next to ``target``; returns its path."""
    tmp = fd = None
    try:
        # a stop signal's exception raised as the file is created would lose its name
        # (and leave it behind): created with the signals held back
        with signals_deferred():
            tmp, fd = _create_temp(target)
        # told before anything is written, inside the block that removes the file
        _tell(tmp, "created")
        _write_all(fd, chunks)
        if target.owner is not None:
            with contextlib.suppress(OSError):
                os.fchown(fd, *target.owner)
        os.fchmod(fd, target.mode)
        closing, fd = fd, None
        os.close(closing)
    except BaseException as exc:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        if tmp is None:   # not created
            raise
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _tell(tmp, "removed")
        if isinstance(exc, OSError):
            raise _error(target.path, _reason(exc)) from None
        raise
    return tmp


@contextlib.contextmanager
def signals_deferred(signals=DEFERRED_SIGNALS):
    """Hold back ``signals`` (default SIGINT and SIGTERM) inside the block; the first
    one received is delivered to the previous handler when the block ends. Does
    nothing outside the main thread (where Python cannot install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = {}
    for signum in signals:
        previous[signum] = signal.signal(signum, lambda s, frame: pending.append(s))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if pending:
            _deliver(pending[0], previous[pending[0]])


def _deliver(signum, handler):
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        os.kill(os.getpid(), signum)


def _test_pause(point):
    """Test hook: with ``NBNUMBA_TEST_PAUSE=<point>:<seconds>:<marker file>`` in the
    environment, create the marker file and wait at ``point`` ("staged": every file
    written, nothing renamed; "renaming": after the first rename). For tests only."""
    spec = os.environ.get("NBNUMBA_TEST_PAUSE")
    if not spec:
        return
    where, seconds, marker = spec.split(":", 2)
    if where != point:
        return
    with open(marker, "w"):
        pass
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:
        time.sleep(0.02)


class FileSet:
    """Output files replaced together, as a ``with`` block.

    :meth:`reserve` checks a target early (before rendering; it also removes the stale
    temporaries of killed runs and opens devices and FIFOs). :meth:`stage` writes a
    regular file's content to a temporary name at once (devices and FIFOs keep the
    content until the end). Leaving the block normally writes the devices and FIFOs,
    then, with SIGINT and SIGTERM held back, renames every temporary file into place; an
    exception discards it all, so a run that fails part-way replaces none of its outputs.
    Two paths of one set that are the same regular file (or would be) are refused.
    """

    def __init__(self):
        self._targets = {}
        self._owners = {}   # identity of a regular or new file -> the path that reserved it
        self._staged = []   # (target, temporary path or None, chunks or None)

    def reserve(self, path):
        """Check ``path`` now (raises :class:`OutputError`); returns its :class:`Target`."""
        if path not in self._targets:
            target = Target(path)
            if target.kind == "replace":
                other = self._owners.get(target.identity)
                if other is not None:
                    target.close()
                    raise _error(path, "it is the same file as %s, also an output of this run"
                                 % os.fsdecode(other))
                self._owners[target.identity] = path
                remove_stale_temporaries(target.real)
            self._targets[path] = target
        return self._targets[path]

    def stage(self, path, data):
        """Prepare ``data`` (bytes or byte chunks) for ``path`` (once per path)."""
        target = self.reserve(path)
        if target.kind == "replace" and any(t is target for t, _, _ in self._staged):
            raise _error(path, "it is written twice by this run")
        chunks = _chunks(data)
        if target.kind == "replace":
            self._staged.append((target, _write_temp(target, chunks), None))
        else:
            self._staged.append((target, None, chunks))

    def commit(self):
        """Write every staged file into place (see the class notes for the order)."""
        try:
            _test_pause("staged")
            for target, tmp, _ in self._staged:
                if tmp is not None:
                    target.recheck()
            for target, _, chunks in self._staged:
                if target.kind == "stream":
                    try:
                        _write_all(target.fd, chunks)
                    except OSError as exc:
                        raise _error(target.path, _reason(exc)) from None
            with signals_deferred():
                first = True
                while self._staged:
                    target, tmp, _ = self._staged[0]
                    if tmp is not None:
                        try:
                            os.replace(tmp, target.real)
                        except OSError as exc:
                            raise _error(target.path, _reason(exc)) from None
                        _tell(tmp, "renamed", target.real)
                        if first:
                            _test_pause("renaming")
                            first = False
                    self._staged.pop(0)
        finally:
            self.discard()

    def discard(self):
        """Remove every temporary file not yet renamed and close devices and FIFOs."""
        staged, self._staged = self._staged, []
        removed = [tmp for _, tmp, _ in staged if tmp is not None]
        for tmp in removed:   # every file first: a stop raised while telling removes none less
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        try:
            for tmp in removed:
                _tell(tmp, "removed")
        finally:
            for target in self._targets.values():
                target.close()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.commit()
        else:
            self.discard()
        return False


def write_atomic(path, data):
    """Write ``data`` (bytes, or a list of byte chunks) to ``path`` safely (see the
    module notes: replaced whole, or written through for devices, FIFOs and hard links)."""
    with FileSet() as files:
        files.stage(path, data)
