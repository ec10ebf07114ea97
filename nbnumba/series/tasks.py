"""One frame's task, run in the worker: render it, then write its files atomically.

:class:`FrameTask` (what a worker gets), :class:`FrameInfo` and :class:`Frame` (what it
returns), :func:`run_frame`, :func:`warm_up` (a worker's kernels loaded before its first
frame), :func:`probe_storage` (a worker shows it sees the output directories), the file
names of a frame and their staging (no partial frame is ever left; a run's staging
directories, :class:`Staging`, are what makes its stop final), the per-process cache of
shared inputs and the fault-injection hook of the tests (:data:`FAULT_ENV`).
"""
import contextlib
import errno
import hashlib
import json
import os
import pickle
import re
import secrets
import shutil
import socket
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numba
import numpy as np

from .. import engine, output
from ..io import nexus
from ..io.atomic import OutputError, check_renamable
from ..constants import RTD
from .frames import EXTENSIONS, SeriesError, apply_overrides, degrees

#: environment variable of the fault-injection hook (tests only), see :func:`_fault`
FAULT_ENV = "NBNUMBA_SERIES_FAULT"


# ---------------------------------------------------------------------------------------
# file names


def frame_paths(template, index, kinds):
    """[(kind, path)] of frame ``index``: ``template.format(index)`` + each extension."""
    name = template.format(index)
    return [(k, name + EXTENSIONS[k]) for k in kinds]


def check_template(template):
    """Raise :class:`SeriesError` unless ``template`` names each frame differently."""
    try:
        a, b = template.format(0), template.format(1)
    except (IndexError, KeyError, ValueError) as exc:
        raise SeriesError(f"template {template!r}: {exc} (use e.g. 'frame_{{:05d}}')") from None
    if a == b:
        raise SeriesError(f"template {template!r} gives the same name to every frame; "
                          "it needs a {} field for the frame index, e.g. 'frame_{:05d}'")


def _min_sizes(pixels):
    # float: exact; SMV: header (512 bytes at least) + uint16; PGM: a short header + uint8
    return {"float": (4 * pixels, True), "int": (512 + 2 * pixels, False),
            "noise": (512 + 2 * pixels, False), "pgm": (pixels + 11, False),
            "nexus": (800, False)}


def frame_complete(paths, pixels):
    """True when every file of a frame exists with (at least) the size it must have."""
    sizes = _min_sizes(pixels)
    for kind, path in paths:
        try:
            size = os.path.getsize(path)
        except OSError:
            return False
        need, exact = sizes[kind]
        if size < need or (exact and size != need):
            return False
    return True


def _stage_name(path, run=None):
    """Where a frame file is written before it is renamed into place: in the run's
    staging directory (``run``: its id) under a name no other writer uses, or (no run)
    beside the file as ``.nbnumba-stage-PID-TID-NAME``."""
    d, b = os.path.split(path)
    if run is not None:
        return os.path.join(stage_directory(d, run), "%s-%s" % (secrets.token_hex(6), b))
    return os.path.join(d, ".nbnumba-stage-%d-%d-%s" % (os.getpid(), threading.get_ident(), b))


def _clean_stages(paths):
    """Remove staging files left by killed workers for these outputs."""
    by_dir = {}
    for p in paths:
        d, b = os.path.split(p)
        by_dir.setdefault(d or ".", set()).add(b)
    for d, names in by_dir.items():
        try:
            entries = os.listdir(d)
        except OSError:
            continue
        for e in entries:
            if _is_stage_of(e, names):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(d, e))


def _drop_written_since(paths, since):
    """Remove the outputs of a failed frame that this run wrote (a worker killed while
    renaming its staged files can leave part of a frame); older files stay."""
    for p in paths:
        with contextlib.suppress(OSError):
            if os.stat(p).st_mtime >= since:
                os.unlink(p)


def _is_stage_of(entry, names):
    """True for a staging file ``.nbnumba-stage-PID-TID-NAME`` of one of ``names``, or for
    the temporary file of an atomic write of one (``.nbnumba-<staging name>.XXXX.part``,
    left by a worker killed while writing it)."""
    core = entry
    if core.startswith(".nbnumba-.nbnumba-stage-") and core.endswith(".part"):
        core = core[len(".nbnumba-"):].rsplit(".", 2)[0]
    if not core.startswith(".nbnumba-stage-"):
        return False
    parts = core.split("-", 4)
    return len(parts) == 5 and parts[4] in names


# ---------------------------------------------------------------------------------------
# a run's staging directories


#: a run's staging directory in each output directory: this prefix and the run's id
STAGE_PREFIX = ".nbnumba-stage-"
_RUN_ID = re.compile(r"^[0-9a-f]{16}$")
#: the file the command writes in each staging directory for the workers to read
DRIVER_PROBE = "probe"


def stage_directory(directory, run):
    """The staging directory of run ``run`` (16 hex digits) in ``directory``."""
    return os.path.join(directory, STAGE_PREFIX + run)


class Staging:
    """The staging directories of one run, one in each output directory.

    Workers write a frame's files there and rename them into place from there; they never
    create one. :meth:`withdraw` removes them with whatever is staged in them, after which
    no file of this run can land: a stop is final even for a worker that is still
    rendering, or that the command can no longer reach. Made by :meth:`create` (which
    also removes the staging directories that killed runs left).
    """

    def __init__(self, run, directories):
        self.run = run
        self.directories = tuple(directories)

    @classmethod
    def create(cls, run, directories):
        """Make the staging directories of run ``run`` in ``directories`` (absolute paths,
        the directory of frame 0 first)."""
        if not _RUN_ID.match(run):
            raise SeriesError(f"a run id is 16 hex digits, not {run!r}")
        staging = cls(run, directories)
        for d in staging.directories:
            _remove_old_stages(d, run)
            try:
                os.mkdir(stage_directory(d, run))
            except FileExistsError:
                pass
            except OSError as exc:
                raise OutputError(f"cannot write in {d}: {exc.strerror or exc}") from None
        return staging

    @property
    def home(self):
        """The staging directory in the directory of frame 0 (the run's own files)."""
        return stage_directory(self.directories[0], self.run)

    def forget_attempts(self, index, path, attempts):
        """Remove the attempt markers of a recorded frame (see :func:`_count_attempt`)."""
        stage = stage_directory(os.path.dirname(path), self.run)
        for n in range(1, int(attempts) + 1):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(stage, "attempt-%d-%d" % (index, n)))

    def withdraw(self):
        """Remove every staging directory of the run with what is staged in it. A worker
        that creates a file meanwhile only makes this go round again."""
        for d in self.directories:
            stage = stage_directory(d, self.run)
            for _ in range(1000):
                try:
                    entries = os.listdir(stage)
                except OSError:
                    break
                for entry in entries:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(stage, entry))
                try:
                    os.rmdir(stage)
                    break
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY:
                        break


def _remove_old_stages(directory, run):
    """Remove the staging directories of other runs in ``directory`` (runs that were
    killed: the series lock keeps a live one away)."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        if entry.startswith(STAGE_PREFIX) and _RUN_ID.match(entry[len(STAGE_PREFIX):]) \
                and entry != STAGE_PREFIX + run:
            path = os.path.join(directory, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)


def _missing_stage(directory, exc):
    """The error of a worker that finds no staging directory in ``directory``."""
    return OutputError(
        f"cannot write in {directory}: the run's staging directory is not there "
        f"({exc.strerror or exc}): the series was stopped, or this worker does not see "
        "the directory the command sees")


def _count_attempt(task):
    """Mark one more start of frame ``task.index`` in its run's staging directory and
    return how many there were (the first is 1): Dask's re-runs after a worker died count
    as they happen. Raises :class:`OutputError` when the staging directory is gone."""
    directory = os.path.dirname(task.paths[0][1])
    stage = stage_directory(directory, task.run)
    n = 1
    while True:
        try:
            fd = os.open(os.path.join(stage, "attempt-%d-%d" % (task.index, n)),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            n += 1
            continue
        except OSError as exc:
            raise _missing_stage(directory, exc) from None
        os.close(fd)
        return n


def probe_storage(directories, run, token):
    """Runs on a worker before it gets frames: show that it sees the output
    ``directories`` as the command does. Reads the probe file the command wrote in each
    run's staging directory (it must hold ``token``, bytes) and writes one of its own
    there for the command to read.

    Returns {"worker": host:pid, "written": [(directory, path, content)], "error": None}
    or, when it cannot, "error": what failed (a phrase naming the directory).
    """
    answer = {"worker": worker_name(), "written": [], "error": None}
    for d in directories:
        stage = stage_directory(d, run)
        try:
            with open(os.path.join(stage, DRIVER_PROBE), "rb") as handle:
                seen = handle.read(len(token) + 1)
        except OSError as exc:
            answer["error"] = (f"does not see {d} as the command does: the probe file the "
                               f"command wrote there is not there ({exc.strerror or exc})")
            return answer
        if seen != token:
            answer["error"] = (f"does not see {d} as the command does: the probe file "
                               "there holds something else (another directory of that name)")
            return answer
        mine = os.path.join(stage, "probe-%s" % secrets.token_hex(8))
        content = secrets.token_hex(16).encode()
        try:
            with open(mine, "xb") as handle:
                handle.write(content)
        except OSError as exc:
            answer["error"] = f"cannot write in {d}: {exc.strerror or exc}"
            return answer
        answer["written"].append((d, mine, content))
    return answer


def worker_name():
    """host:pid of this process (how frames and messages name a worker)."""
    return "%s:%d" % (socket.gethostname(), os.getpid())


# ---------------------------------------------------------------------------------------
# the task (runs in the worker)


@dataclass(frozen=True)
class FrameTask:
    """What a worker gets for one frame: small, never an image."""
    index: int
    overrides: Tuple[Tuple[str, Any], ...]
    seed: Optional[int]                         #: noise -seed of this frame
    job: str                                    #: key of the shared base (per process cache)
    paths: Optional[Tuple[Tuple[str, str], ...]]  #: None: return the images
    threads: Optional[int] = None               #: numba threads for this frame
    device: str = "cpu"
    attempt: int = 1
    #: the run's id: files are staged in its staging directories (:class:`Staging`) and
    #: each start is counted there; None: staged beside the files, attempts as given
    run: Optional[str] = None


@dataclass
class FrameInfo:
    """Metadata of a rendered frame (what a worker returns)."""
    index: int
    files: Tuple[str, ...]
    seed: Optional[int]
    phi: float                  #: first phi, degrees
    osc: float                  #: oscillation, degrees
    max_I: float
    mean: float
    int_scale: float
    photons: Optional[float]    #: on the noise image
    overloads: Optional[int]
    seconds: float              #: set-up, render and write time in the worker
    worker: str                 #: host:pid
    threads: int
    attempt: int                #: starts of this frame in its run so far, this one included
    checksums: Tuple[Tuple[str, str], ...] = ()   #: (path, SHA-256 hex) of each file
    render_seconds: float = 0.0  #: of ``seconds``: the kernel (engine.render)
    write_seconds: float = 0.0   #: of ``seconds``: integer, noise, PGM images and the files


@dataclass
class FrameStopped:
    """What a task returns, instead of raising, when its run's staging directory is gone:
    the run was stopped (nobody waits for the answer: a worker must not log a failure
    then), or the worker does not see the directory (the run reports ``error``). Nothing
    of the frame was written."""
    index: int
    error: str


@dataclass
class Frame:
    """A frame returned by :func:`render_series`."""
    info: FrameInfo
    image: np.ndarray                   #: float32 (slow, fast), photons per pixel
    int_pixels: np.ndarray              #: uint16 (slow, fast), noiseless SMV pixels
    noise_pixels: Optional[np.ndarray]  #: uint16 (slow, fast) or None


_SHARED = OrderedDict()      # job key -> (base config, OutputSpec), per process
_SHARED_LOCK = threading.Lock()
_SHARED_KEEP = 4


def _shared(key, payload):
    """The (base, outputs) of job ``key``: built once per process, then cached."""
    with _SHARED_LOCK:
        if key in _SHARED:
            _SHARED.move_to_end(key)
            return _SHARED[key]
    if payload is None:
        raise SeriesError(f"job {key[:12]} is not known in process {os.getpid()}")
    if isinstance(payload, tuple) and payload[0] == "file":
        try:
            with open(payload[1], "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise OutputError(f"cannot read the series' inputs {payload[1]} on "
                              f"{worker_name()}: {exc.strerror or exc}") from None
        if hashlib.sha256(data).hexdigest() != key:
            raise SeriesError(f"the series' inputs {payload[1]} are not the ones the "
                              "command wrote (damaged, or another file of that name)")
    else:
        data = payload
    value = pickle.loads(data)
    with _SHARED_LOCK:
        _SHARED[key] = value
        while len(_SHARED) > _SHARED_KEEP:
            _SHARED.popitem(last=False)
    return value


def _fault(task, stage):
    """Fault injection for the tests: ``NBNUMBA_SERIES_FAULT`` holds JSON
    ``{"frames": [..], "stage": "start"|"write", "mode": "raise"|"exit"|"sleep", "times": n,
    "marker": dir, "seconds": s}``; the first ``n`` attempts (all processes together,
    counted with files in ``marker``; no ``times``: every attempt) of those frames fail
    (or, with "sleep", pause ``s`` seconds there: a slow frame)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    spec = json.loads(spec)
    if task.index not in spec.get("frames", ()) or spec.get("stage", "start") != stage:
        return
    times = spec.get("times")
    if times is not None:
        for n in range(int(times)):
            try:
                fd = os.open(os.path.join(spec["marker"], "fault-%d-%d" % (task.index, n)),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
            os.close(fd)
            break
        else:
            return
    if spec.get("mode") == "sleep":
        time.sleep(float(spec.get("seconds", 1.0)))
        return
    if spec.get("mode") == "exit":
        os._exit(70)
    raise RuntimeError(f"injected fault in frame {task.index} ({stage})")


def _ignore_rows(done, total):
    """The row progress of a frame rendered where nobody watches it (a worker)."""


def run_frame(task, payload=None, progress=None):
    """Render one frame and write its files (or return its images). Runs in the worker.

    progress: optional callable(rows_done, rows_total) handed to :func:`engine.render`
    (the frame is one kernel call: no blocks of rows).
    """
    try:
        return _run_frame(task, payload, progress)
    except OSError as exc:
        if task.run and task.paths:
            directory = os.path.dirname(task.paths[0][1])
            if not os.path.isdir(stage_directory(directory, task.run)):
                return FrameStopped(task.index, str(_missing_stage(directory, exc)))
        raise


def _run_frame(task, payload, progress):
    t0 = time.perf_counter()
    attempt = _count_attempt(task) if task.run and task.paths else task.attempt
    base, outputs = _shared(task.job, payload)
    _fault(task, "start")
    cfg = apply_overrides(base, task.overrides)
    with warnings.catch_warnings():  # the series said it once, for its first frame
        warnings.filterwarnings("ignore", message="the region of interest", category=UserWarning)
        setup = engine.prepare(cfg)
    t1 = time.perf_counter()
    result = engine.render(setup, device=task.device, threads=task.threads,
                           progress=progress if progress is not None else _ignore_rows)
    t2 = time.perf_counter()
    ints = output.make_int_image(result, outputs.int_scale, outputs.adc)
    pgm = output.make_pgm(result, outputs.pgm_scale, ints.scale) if outputs.pgm else None
    noise = (output.make_noise_image(result, task.seed, outputs.adc) if outputs.noise
             else None)
    checksums = ()
    if task.paths is not None:
        checksums = _write_frame(task, outputs, result, ints, pgm, noise)
    t3 = time.perf_counter()
    info = FrameInfo(
        index=task.index, files=tuple(p for _, p in task.paths or ()),
        seed=task.seed if outputs.noise else None, phi=degrees(cfg.crystal.phi0),
        osc=setup.osc * RTD, max_I=float(result.stats.max_I), mean=float(result.stats.mean),
        int_scale=float(ints.scale), photons=None if noise is None else float(noise.photons),
        overloads=None if noise is None else int(noise.overloads),
        seconds=t3 - t0, worker=worker_name(),
        threads=int(task.threads or numba.get_num_threads()), attempt=attempt,
        checksums=checksums, render_seconds=t2 - t1, write_seconds=t3 - t2)
    if task.paths is not None:
        return info
    shape = result.image.shape
    return Frame(info, result.image, ints.pixels.reshape(shape),
                 None if noise is None else noise.pixels.reshape(shape))


#: the region a warm-up renders: one pixel (xmin, xmax, ymin, ymax, inclusive)
WARM_UP_ROI = (0, 0, 0, 0)


def warm_up(job, payload=None, device="cpu", threads=None, overrides=()):
    """Load or compile, in this process, every kernel and helper a frame of ``job``
    needs, by rendering one pixel of it with ``overrides`` (those of its first frame) and
    making its integer, PGM and noise images (nothing is written).

    Returns {"worker": host:pid, "seconds": wall time (s), "compiled": whether numba
    compiled anything (False: everything came from its cache)}, or {"error": what
    failed} (the first frame says it again; a worker whose run was stopped meanwhile
    must not log a failed task).
    """
    try:
        return _warm_up(job, payload, device, threads, overrides)
    except Exception as exc:  # noqa: BLE001 - reported as data, see above
        return {"error": "%s: %s" % (type(exc).__name__, exc)}


def _warm_up(job, payload, device, threads, overrides):
    from ..compilecache import CacheWarning, CompileWarning, CompileWatch
    t0 = time.perf_counter()
    base, outputs = _shared(job, payload)
    cfg = apply_overrides(base, tuple(overrides) + (("render.roi", WARM_UP_ROI),))
    with CompileWatch() as watch, warnings.catch_warnings():
        # the series' meter shows the compile as a state of its own; the command says
        # once that its cache cannot be written
        warnings.simplefilter("ignore", CompileWarning)
        warnings.simplefilter("ignore", CacheWarning)
        setup = engine.prepare(cfg)
        result = engine.render(setup, device=device, threads=threads, progress=_ignore_rows)
        ints = output.make_int_image(result, outputs.int_scale, outputs.adc)
        if outputs.pgm:
            output.make_pgm(result, outputs.pgm_scale, ints.scale)
        if outputs.noise:
            output.make_noise_image(result, 1, outputs.adc)
    return {"worker": worker_name(), "seconds": time.perf_counter() - t0,
            "compiled": bool(watch.compiled)}


def _nexus_pixels(outputs, result, ints, seed):
    """A frame's NXmx data: the float image, or the counts of the noise image (of the
    int image without noise) without the ``adc`` offset of the SMV files (the same
    deviates, the same scale): NXmx counts are what a counting detector reads."""
    if outputs.nexus == "float":
        return result.image
    if outputs.noise:
        return output.make_noise_image(result, seed, 0.0).pixels
    return output.make_int_image(result, ints.scale, 0.0).pixels


def _frame_bytes(outputs, result, ints, pgm, noise, seed=None):
    """{kind: the file's content as byte chunks} of a frame (nothing is copied)."""
    return {
        "float": lambda: [output.float_bytes(result)],
        "int": lambda: output.smv_image_bytes(result, ints.pixels),
        "pgm": lambda: output.pgm_bytes(result, pgm),
        "noise": lambda: output.smv_image_bytes(result, noise.pixels),
        "nexus": lambda: [nexus.frame_file_bytes(_nexus_pixels(outputs, result, ints, seed))],
    }


def _write_stage(path, stage, chunks):
    """Write ``chunks`` to the new file ``stage`` (a name no one else uses); returns the
    SHA-256 (hex) of what was written, computed from memory (nothing is read back)."""
    digest = hashlib.sha256()
    try:
        fd = os.open(stage, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            for chunk in chunks:
                view = memoryview(chunk).cast("B")
                digest.update(view)
                while view:
                    view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _write_frame(task, outputs, result, ints, pgm, noise):
    """Write every file of the frame under staging names, check that every file of the
    frame can still be replaced, then rename them all; on any failure remove what this
    attempt wrote (no partial frame is ever left; a frame one of whose files cannot be
    replaced keeps all its earlier files). Returns
    ((path, SHA-256 hex of what was written), ...) for the run record.

    A staging name is unique to this process and thread, so it is written directly (no
    temporary of its own, no look for stale temporaries in a directory that may hold
    many thousand frames); the checksums come from the bytes in memory.
    """
    contents = _frame_bytes(outputs, result, ints, pgm, noise, task.seed)
    staged, renamed, checksums = [], [], []
    try:
        for kind, path in task.paths:
            stage = _stage_name(path, task.run)
            if task.run is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(stage)    # left by an earlier process with the same pid
            staged.append(stage)
            checksums.append((path, _write_stage(path, stage, contents[kind]())))
            _fault(task, "write")
        for _, path in task.paths:   # all replaceable still, or none is touched
            check_renamable(path)
        for stage, (_, path) in zip(staged, task.paths):
            os.replace(stage, path)
            renamed.append(path)
    except BaseException:
        for p in staged:
            with contextlib.suppress(OSError):
                os.unlink(p)
        if renamed:  # the set would mix two renders: drop the whole frame
            for _, p in task.paths:
                with contextlib.suppress(OSError):
                    os.unlink(p)
        raise
    return tuple(checksums)
