"""One frame's task, run in the worker: render it, then write its files atomically.

:class:`FrameTask` (what a worker gets), :class:`FrameInfo` and :class:`Frame` (what it
returns), :func:`run_frame`, :func:`warm_up` (a worker's kernels loaded before its first
frame), the file names of a frame and their staging (no partial frame
is ever left), the per-process cache of shared inputs and the fault-injection hook of the
tests (:data:`FAULT_ENV`).
"""
import contextlib
import hashlib
import json
import os
import pickle
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


def _stage_name(path):
    d, b = os.path.split(path)
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
    attempt: int
    checksums: Tuple[Tuple[str, str], ...] = ()   #: (path, SHA-256 hex) of each file
    render_seconds: float = 0.0  #: of ``seconds``: the kernel (engine.render)
    write_seconds: float = 0.0   #: of ``seconds``: integer, noise, PGM images and the files


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
        with open(payload[1], "rb") as handle:
            data = handle.read()
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
    ``{"frames": [..], "stage": "start"|"write", "mode": "raise"|"exit", "times": n,
    "marker": dir}``; the first ``n`` attempts (all processes together, counted with
    files in ``marker``; no ``times``: every attempt) of those frames fail."""
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
    t0 = time.perf_counter()
    base, outputs = _shared(task.job, payload)
    _fault(task, "start")
    cfg = apply_overrides(base, task.overrides)
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
        seconds=t3 - t0, worker="%s:%d" % (socket.gethostname(), os.getpid()),
        threads=int(task.threads or numba.get_num_threads()), attempt=task.attempt,
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
    compiled anything (False: everything came from its cache)}.
    """
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
    return {"worker": "%s:%d" % (socket.gethostname(), os.getpid()),
            "seconds": time.perf_counter() - t0, "compiled": bool(watch.compiled)}


def _frame_bytes(outputs, result, ints, pgm, noise):
    """{kind: the file's content as byte chunks} of a frame (nothing is copied)."""
    return {
        "float": lambda: [output.float_bytes(result)],
        "int": lambda: output.smv_image_bytes(result, ints.pixels),
        "pgm": lambda: output.pgm_bytes(result, pgm),
        "noise": lambda: output.smv_image_bytes(result, noise.pixels),
        "nexus": lambda: [nexus.frame_file_bytes(
            result.image if outputs.nexus == "float"
            else ints.pixels if noise is None else noise.pixels)],
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
    contents = _frame_bytes(outputs, result, ints, pgm, noise)
    staged, renamed, checksums = [], [], []
    try:
        for kind, path in task.paths:
            stage = _stage_name(path)
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
