"""The run record and lock of a written series, kept beside the frames.

A series run holds an exclusive lock on its directory (the directory of frame 0) for as
long as it runs: ``fcntl.flock`` on ``.nbnumba-series.lock``, which the kernel releases
when the process ends, however it ends. A second run on that directory is refused.

The run record (``.nbnumba-series-<hash of the template's file name>.json``, replaced
atomically) says what the run is: the nbnumba version, the noise seed, the output kinds,
the flags (when the command line gave them), a SHA-256 of the base configuration and,
per finished frame, a key of its per-frame values, the SHA-256 of each of its files and
(``info``) its statistics, which a later run's manifest lists.
``--resume`` keeps a frame only when its key and every file's checksum match the record,
and refuses to continue a run that would render any frame differently.

Between two writes of the record, each finished frame is appended as one line to the
record's journal (``.nbnumba-series-<hash>.journal``, tagged with the run's random id and
removed when the run ends), so a run killed outright still has every frame it finished.
Only regular files are ever read back (a FIFO in a frame's place is never opened), and a
record damaged by hand is read as far as it is well formed.
"""
import contextlib
import errno
import hashlib
import json
import os
import pickle
import re
import secrets
import stat
import time

from ..io.atomic import write_atomic
from .frames import SeriesError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: runs are not locked
    fcntl = None

#: version of the record's layout
FORMAT = 1
LOCK_NAME = ".nbnumba-series.lock"
RECORD_PREFIX = ".nbnumba-series-"
#: the record is rewritten at most this often while frames finish (seconds)
FLUSH_INTERVAL = 2.0
#: the most of a record (or journal) that is read (bytes): 100000 frames with their
#: statistics take about 60 MB
_MAX_READ = 256 << 20


def run_directory(template):
    """The directory of frame 0 (absolute): where the lock and the record live."""
    return os.path.dirname(os.path.abspath(template.format(0)))


def record_path(template):
    """The run record of ``template`` (one per template file name and directory)."""
    name = os.path.basename(template)
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return os.path.join(run_directory(template), RECORD_PREFIX + digest + ".json")


def journal_path(path):
    """The journal of the run record at ``path``: one line per frame finished since the
    record was last replaced."""
    return os.path.splitext(path)[0] + ".journal"


def digest(value):
    """SHA-256 (hex) of a picklable value: configurations, overrides, seeds."""
    return hashlib.sha256(pickle.dumps(value, protocol=4)).hexdigest()


def _open_regular(path):
    """A binary reader of the regular file ``path``; ``OSError`` for anything else (a
    FIFO, a device or a directory is never read: opening a FIFO could wait forever)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_sha256(path):
    """SHA-256 (hex) of a regular file's content, read in 1 MiB blocks; ``OSError`` if
    ``path`` is not a regular file."""
    h = hashlib.sha256()
    with _open_regular(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def recorded_seed(template):
    """The noise seed in the run record of ``template`` (None: no record, or no noise)."""
    data = load(record_path(template))
    seed = None if data is None else data.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


_HELD = {}   # directory -> how many times this process holds its lock


@contextlib.contextmanager
def run_lock(directory):
    """Hold the series lock of ``directory``; :class:`SeriesError` if another run has it.

    Creates ``directory`` if needed. Re-entrant within a process (a command may lock
    before calling :func:`write_series`).
    """
    directory = os.path.abspath(directory)
    if fcntl is None or _HELD.get(directory):
        _HELD[directory] = _HELD.get(directory, 0) + 1
        try:
            yield
        finally:
            _HELD[directory] -= 1
        return
    path = os.path.join(directory, LOCK_NAME)
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                     | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SeriesError(f"cannot lock {directory}: {LOCK_NAME} is a symbolic link "
                              "(remove it)") from None
        raise SeriesError(f"cannot lock {directory}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SeriesError(f"cannot lock {directory}: {LOCK_NAME} is not a regular file "
                          "(remove it)")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            raise SeriesError(
                "another nbnumba-series run%s is writing frames in %s: wait for it to end, "
                "or give another --template directory"
                % (f" (process {holder})" if holder.isdigit() else "", directory)) from None
        except OSError as exc:
            raise SeriesError(f"cannot lock {directory}: {exc.strerror or exc}") from None
        with contextlib.suppress(OSError):   # the holder's id is only a courtesy
            os.ftruncate(fd, 0)
            os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        _HELD[directory] = 1
        try:
            yield
        finally:
            _HELD.pop(directory, None)
    finally:
        os.close(fd)   # closing releases the lock


def load(path, journal=False):
    """The record at ``path`` as a dict, or None if there is none (or it is unreadable,
    not a regular file, or not a record). Frame entries that are not well formed (a
    hand-edited record) are left out: those frames are rendered again. ``journal``: with
    the frames the run's journal adds (those finished after its last record write)."""
    try:
        with _open_regular(path) as handle:
            data = json.loads(handle.read(_MAX_READ))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    for name, kind in _FIELDS.items():
        value = data.get(name)
        if value is not None and not kind(value):
            return None
    frames = data.get("frames")
    data["frames"] = {index: entry for index, entry in (frames or {}).items()
                      if _INDEX.match(index) and _well_formed(entry)}
    if journal and data.get("run") is not None:
        data["frames"].update(_journal_entries(journal_path(path), data["run"]))
    return data


def _journal_entries(path, run):
    """{index: entry} of the well-formed lines of the journal at ``path`` that belong to
    the run ``run`` (a line cut short by a kill, or one of another run, is skipped)."""
    try:
        with _open_regular(path) as handle:
            lines = handle.read(_MAX_READ).splitlines()
    except OSError:
        return {}
    entries = {}
    for line in lines:
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if (isinstance(item, dict) and item.get("run") == run
                and isinstance(item.get("frame"), str) and _INDEX.match(item["frame"])
                and _well_formed(item.get("entry"))):
            entries[item["frame"]] = item["entry"]
    return entries


def _strings(value):
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


#: the type of each top-level field of a record (None is accepted for every field)
_FIELDS = {"nbnumba": lambda v: isinstance(v, str),
           "seed": lambda v: isinstance(v, int) and not isinstance(v, bool),
           "kinds": _strings, "flags": _strings, "base": lambda v: isinstance(v, str),
           "frames": lambda v: isinstance(v, dict), "run": lambda v: isinstance(v, str)}
_INDEX = re.compile(r"^(0|[1-9][0-9]{0,8})$")


def _well_formed(entry):
    """True for a frame entry ``{"key": str, "files": {name: sha256 hex}}``."""
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
        return False
    files = entry.get("files")
    return isinstance(files, dict) and all(isinstance(h, str) for h in files.values())


_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
#: options whose change alone never makes another run (more frames extend a series)
_NOT_COMPARED = {"--frames", "--template"}


def _flag_values(tokens):
    """{flag: its last values} of a command line (negative numbers are values)."""
    values, current = {}, None
    for token in tokens:
        if token.startswith("-") and not _NUMBER.match(token):
            name, _, glued = token.partition("=")
            current = name
            values[name] = [glued] if glued else []
        elif current is not None:
            values[current].append(token)
    return values


def _flag_difference(old, new):
    """The flags that differ between two command lines, e.g. '-seed 7 -> 8; added -N 3'."""
    a, b = _flag_values(old), _flag_values(new)
    changes = []
    for flag in list(a) + [f for f in b if f not in a]:
        if flag in _NOT_COMPARED or a.get(flag) == b.get(flag):
            continue
        if flag not in b:
            changes.append("without %s" % " ".join([flag] + a[flag]))
        elif flag not in a:
            changes.append("added %s" % " ".join([flag] + b[flag]))
        else:
            changes.append("%s %s -> %s" % (flag, " ".join(a[flag]), " ".join(b[flag])))
    return "; ".join(changes[:4]) if changes else None


class RunRecord:
    """The record of the run in progress, with what an earlier run left (``previous``)."""

    def __init__(self, template, version, seed, kinds, base_digest, flags=None, frames=None):
        self.path = record_path(template)
        self.directory = os.path.dirname(self.path)
        self.journal = journal_path(self.path)
        self.previous = load(self.path, journal=True)
        self.data = {"program": "nbnumba-series", "format": FORMAT, "nbnumba": version,
                     "template": template, "seed": seed, "kinds": list(kinds),
                     "flags": None if flags is None else [str(f) for f in flags],
                     "base": base_digest, "count": frames, "frames": {}}
        self._written = 0.0
        self._journal_fd = None
        self.data["run"] = secrets.token_hex(8)   # tags this run's journal lines

    def difference(self, frame_keys):
        """Why the previous run is not this one (one phrase), or None when it is."""
        old, new = self.previous, self.data
        if old is None:
            return None
        if old.get("nbnumba") != new["nbnumba"]:
            return "they were written by nbnumba %s (this is %s)" % (old.get("nbnumba"),
                                                                    new["nbnumba"])
        if old.get("seed") != new["seed"] and old.get("kinds") == new["kinds"]:
            return "they have noise seed -seed %s, this run -seed %s" % (old.get("seed"),
                                                                        new["seed"])
        if old.get("kinds") != new["kinds"]:
            return "they have the outputs %s, this run writes %s" % (
                "/".join(old.get("kinds") or []), "/".join(new["kinds"]))
        if "nexus" in new["kinds"] and old.get("count") != new["count"]:
            # an NXmx file describes one sweep: its frame count is part of it
            return "they are a sweep of %s frames, this run asks for %s" % (
                old.get("count"), new["count"])
        if old.get("base") != new["base"]:
            flags = (_flag_difference(old["flags"], new["flags"])
                     if old.get("flags") is not None and new["flags"] is not None else None)
            return ("their flags differ: %s" % flags if flags else
                    "their configuration or input files differ")
        for index, entry in sorted(old["frames"].items(), key=lambda kv: int(kv[0])):
            key = frame_keys(int(index))
            if key is not None and entry.get("key") != key:
                return ("frame %s was rendered with other per-frame values "
                        "(--frame-osc, --orientation-seed ...)" % index)
        return None

    def carry(self, frames):
        """Keep the previous run's entries of frames ``0 .. frames - 1`` until they are
        checked (:meth:`verified`), so that a run stopped before checking them all
        leaves them recorded."""
        for index, entry in (self.previous or {}).get("frames", {}).items():
            if int(index) < frames:
                self.data["frames"][index] = entry

    def verified(self, index, key, paths):
        """True when the previous run finished frame ``index`` with this ``key`` and every
        file in ``paths`` still has the checksum it was written with (the frame stays in
        this run's record; otherwise it leaves it)."""
        entry = (self.previous or {}).get("frames", {}).get(str(index))
        if entry is None or entry.get("key") != key or not self._intact(entry, paths):
            self.data["frames"].pop(str(index), None)
            return False
        self.data["frames"][str(index)] = entry
        return True

    def _intact(self, entry, paths):
        files = entry["files"]
        if len(files) != len(paths):
            return False
        for path in paths:
            want = files.get(os.path.relpath(path, self.directory))
            try:
                if want is None or file_sha256(path) != want:
                    return False
            except OSError:
                return False
        return True

    def written_at(self):
        """The modification time of the record on disk (ns, the file system's clock)."""
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return time.time_ns()

    def adopt(self, index, key, paths, since, info=None):
        """Record frame ``index`` if every file in ``paths`` was modified after ``since``
        (:meth:`written_at` when the run started, so that the file system's own clock
        decides): a frame finished by a run that was stopped before the frame's result
        came back. Files are only ever renamed into place complete, so such a set is the
        whole frame. ``info``: its statistics, when its worker reported them. Returns
        whether it was recorded."""
        try:
            if not all(os.stat(p).st_mtime_ns > since for p in paths):
                return False
            checksums = [(p, file_sha256(p)) for p in paths]
        except OSError:
            return False
        entry = {"key": key,
                 "files": {os.path.relpath(p, self.directory): h for p, h in checksums}}
        if info is not None:
            entry["info"] = info
        self.data["frames"][str(index)] = entry
        return True

    def add(self, index, key, checksums, info=None):
        """Record a finished frame: ``checksums`` is ((path, sha256 hex), ...); ``info``
        an optional dict of its statistics (kept for the manifest of a later resume).
        The frame is in the journal at once (a killed run keeps it) and in the record
        within :data:`FLUSH_INTERVAL` seconds."""
        entry = {"key": key,
                 "files": {os.path.relpath(p, self.directory): h for p, h in checksums}}
        if info is not None:
            entry["info"] = info
        self.data["frames"][str(index)] = entry
        if time.monotonic() - self._written >= FLUSH_INTERVAL:
            self.write()
        elif self._journal_fd is not None:
            line = json.dumps({"run": self.data["run"], "frame": str(index), "entry": entry})
            try:
                os.write(self._journal_fd, line.encode() + b"\n")
            except OSError:   # no journal: the record alone, as often as it is written
                self._close_journal()

    def write(self, final=False):
        """Replace the record on disk (atomically) and empty the journal; ``final``: the
        run is over, the journal is removed (kept, and closed, when the record cannot be
        written: it holds the frames the record on disk lacks)."""
        try:
            write_atomic(self.path, (json.dumps(self.data, indent=0) + "\n").encode())
        except BaseException:
            if final:
                self._close_journal()
            raise
        self._written = time.monotonic()
        if final:
            self._close_journal()
            with contextlib.suppress(OSError):
                os.unlink(self.journal)
            return
        if self._journal_fd is None:
            self._open_journal()
        if self._journal_fd is not None:
            try:
                os.ftruncate(self._journal_fd, 0)
            except OSError:
                self._close_journal()

    def _open_journal(self):
        try:
            fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
                         | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
        except OSError:
            return
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return
        self._journal_fd = fd

    def _close_journal(self):
        if self._journal_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._journal_fd)
            self._journal_fd = None
