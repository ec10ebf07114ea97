"""Many frames: rotation series, orientation sweeps and noise sets, serial or distributed.

A :class:`FrameSet` is a base configuration (anything :func:`nbnumba.prepare` takes) plus
what changes from frame to frame: one small dictionary of overrides per frame
(``{"crystal.phi0": 0.1, "crystal.osc": 0.01}``: the dataclass fields of
:class:`nbnumba.SimulationConfig`, in its units). The constructors build the usual cases:

* :func:`rotation_series`: frame ``i`` starts at ``start + i * osc`` degrees and covers
  ``osc`` degrees (the base ``phi_steps``/``phi_step`` apply within each frame);
* :func:`misset_series`: explicit per-frame missetting angles (degrees);
* :func:`matrix_series`: explicit per-frame MOSFLM orientation (A) matrices;
* :func:`random_orientations`: the C's ``-misset random`` with a per-frame seed derived
  from one orientation seed;
* :func:`stills`: the same frame N times (only the noise differs);
* ``FrameSet(base, overrides=[...])``: any list of per-frame overrides.

:func:`write_series` renders the frames through any :class:`concurrent.futures.Executor`
(default: in-process, one frame after another, every core on each frame; a dask
``distributed.Client`` is accepted too) and writes each frame's files from the process
that rendered it; :func:`render_series` returns the images instead.

Determinism: every frame is a pure function of (base, overrides, noise seed). The noise
seed of frame ``i`` is :func:`frame_seed` ``(seed, i)``, an ordinary ``-seed`` value, so
the frame is byte for byte the image of ``nbnumba <base flags> <frameset.cli_flags(i)>``
whatever the executor, the number of workers or the order of completion.

Nothing here imports dask: a ``Client`` is recognised by duck typing, and
:func:`dask_executor` imports ``distributed`` only when it is called.
"""
import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
import pickle
import socket
import sys
import threading
import time
import uuid
from collections import OrderedDict, deque
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numba
import numpy as np

from . import engine, output
from .config import SimulationConfig
from .constants import RTD
from .io.atomic import OutputError, check_writable, write_atomic

#: derived seeds lie in [1, SEED_LIMIT]: positive ``-seed`` values the C's generator
#: (Park-Miller, modulus 2^31 - 1) accepts as they are
SEED_LIMIT = 2147483646

#: output kinds, in writing order, with the extension appended to the frame's name
EXTENSIONS = OrderedDict([("float", ".bin"), ("int", ".img"), ("pgm", ".pgm"),
                          ("noise", "_noise.img")])

_SECTIONS = ("beam", "detector", "crystal", "render")

#: shared inputs up to this size (pickled) travel with each task to a process pool;
#: larger ones go through one spool file next to the outputs
INLINE_LIMIT = 256 * 1024
_SEED_KEY = "seed"

#: environment variable of the fault-injection hook (tests only), see :func:`_fault`
FAULT_ENV = "NBNUMBA_SERIES_FAULT"


class SeriesError(Exception):
    """A frame set that cannot be run (bad template, bad override, no frames ...)."""


# ---------------------------------------------------------------------------------------
# seeds and angles


def frame_seed(seed, index):
    """The noise ``-seed`` of frame ``index`` of a series with user seed ``seed``.

    A hash (SHA-256 of ``"nbnumba-series:<seed>:<index>"``) folded into
    [1, 2147483646], so neighbouring frames get unrelated Park-Miller streams. Stable
    across versions and platforms: it is part of the file format of a series.
    """
    digest = hashlib.sha256(b"nbnumba-series:%d:%d" % (int(seed), int(index))).digest()
    return int.from_bytes(digest[:8], "little") % SEED_LIMIT + 1


def degrees(radians):
    """A degree value ``d`` with ``d / RTD == radians`` exactly (as ``-phi d`` sets it).

    ``radians * RTD`` is usually that value; otherwise a neighbouring float is.
    """
    d = radians * RTD
    if d / RTD == radians:
        return d
    for direction in (math.inf, -math.inf):
        x = d
        for _ in range(8):
            x = math.nextafter(x, direction)
            if x / RTD == radians:
                return x
    return d


def _flag_number(x):
    """A float as a command-line value that parses back to exactly ``x``."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


# ---------------------------------------------------------------------------------------
# the frame set


@dataclass(frozen=True)
class OutputSpec:
    """Which files a frame writes and the image options (the C's output flags)."""
    float_image: bool = True      #: ``.bin``: raw float32 (the C's -floatfile)
    int_image: bool = True        #: ``.img``: noiseless SMV (-intfile)
    pgm: bool = False             #: ``.pgm``: 8-bit preview (-pgmfile)
    noise: bool = True            #: ``_noise.img``: SMV with Poisson noise (-noisefile)
    int_scale: float = 0.0        #: -scale (<= 0: 55000/max per frame)
    pgm_scale: float = 0.0        #: -pgmscale (<= 0: auto per frame)
    adc: float = 40.0             #: -adc

    @classmethod
    def from_cli(cls, out):
        """From the CLI's OutputOptions: the C always writes the float and int images."""
        return cls(float_image=True, int_image=True, pgm=bool(out.write_pgm),
                   noise=bool(out.write_noise), int_scale=float(out.int_scale),
                   pgm_scale=float(out.pgm_scale), adc=float(out.adc))

    def kinds(self):
        chosen = {"float": self.float_image, "int": self.int_image, "pgm": self.pgm,
                  "noise": self.noise}
        return [k for k in EXTENSIONS if chosen[k]]


def _check_key(key):
    if key == _SEED_KEY:
        return
    section, _, name = key.partition(".")
    if section not in _SECTIONS or not name:
        raise SeriesError(f"override {key!r}: use 'seed' or SECTION.FIELD with SECTION one of "
                          f"{', '.join(_SECTIONS)} (e.g. 'crystal.phi0')")
    target = SimulationConfig.__dataclass_fields__[section].default_factory
    if name not in {f.name for f in dataclasses.fields(target)}:
        raise SeriesError(f"override {key!r}: {section} has no field {name!r}")


def apply_overrides(base, overrides):
    """A copy of ``base`` with ``overrides`` ((key, value) pairs or a dict) applied.

    Only the touched sections are copied (shallowly); ``base`` is never changed and
    large arrays (the structure-factor grid) are shared, not copied.
    """
    items = overrides.items() if isinstance(overrides, Mapping) else overrides
    cfg = copy.copy(base)
    copied = {}
    for key, value in items:
        if key == _SEED_KEY:
            continue
        section, _, name = key.partition(".")
        if section not in copied:
            copied[section] = copy.copy(getattr(base, section))
            setattr(cfg, section, copied[section])
        setattr(copied[section], name, value)
    return cfg


@dataclass
class FrameSet:
    """A base configuration plus one dictionary of overrides per frame.

    base: the :class:`~nbnumba.config.SimulationConfig` every frame starts from.
    overrides: per frame, ``{"section.field": value}`` in the configuration's units
        (radians, metres), and optionally ``"seed"``: that frame's noise ``-seed``.
    seed: the user noise seed; frame ``i`` uses :func:`frame_seed` ``(seed, i)``.
        None: chosen from the clock when the series starts (and reported).
    outputs: which files each frame writes (:class:`OutputSpec`).
    flags: optional, per frame, the ``nbnumba`` flags that set the same overrides
        (filled in by the constructors; see :meth:`cli_flags`).
    """
    base: SimulationConfig
    overrides: List[Dict[str, Any]]
    seed: Optional[int] = None
    outputs: OutputSpec = field(default_factory=OutputSpec)
    flags: Optional[List[Optional[List[str]]]] = None

    def __post_init__(self):
        self.overrides = [dict(o) for o in self.overrides]
        if not self.overrides:
            raise SeriesError("a frame set needs at least one frame")
        for o in self.overrides:
            for key in o:
                _check_key(key)
        if self.flags is not None and len(self.flags) != len(self.overrides):
            raise SeriesError("flags must have one entry per frame")

    def __len__(self):
        return len(self.overrides)

    def config(self, index):
        """The :class:`SimulationConfig` of frame ``index``."""
        return apply_overrides(self.base, self.overrides[index])

    def noise_seed(self, index, seed=None):
        """The ``-seed`` value of frame ``index`` (an explicit ``"seed"`` override wins)."""
        explicit = self.overrides[index].get(_SEED_KEY)
        if explicit is not None:
            return int(explicit)
        seed = self.seed if seed is None else seed
        if seed is None:
            raise SeriesError("no noise seed: give FrameSet.seed (or -seed)")
        return frame_seed(seed, index)

    def cli_flags(self, index, seed=None):
        """``nbnumba`` flags that, appended to the base command line, render frame ``index``.

        Raises :class:`SeriesError` for overrides with no flag (e.g. a matrix series).
        """
        own = self.flags[index] if self.flags is not None else None
        flags = list(own) if own is not None else None
        keys = [k for k in self.overrides[index] if k != _SEED_KEY]
        if flags is None and keys:
            raise SeriesError(f"frame {index}: no command-line equivalent for {keys}")
        flags = flags or []
        if self.outputs.noise:
            flags += ["-seed", str(self.noise_seed(index, seed))]
        return flags

    def vary(self, overrides, flags=None):
        """A new frame set whose frame ``i`` also gets ``overrides[i]`` (later ones win)."""
        if len(overrides) != len(self):
            raise SeriesError(f"{len(overrides)} overrides for {len(self)} frames")
        merged = [{**a, **dict(b)} for a, b in zip(self.overrides, overrides)]
        new_flags = None
        if self.flags is not None and flags is not None:
            new_flags = [None if a is None or b is None else list(a) + list(b)
                         for a, b in zip(self.flags, flags)]
        return dataclasses.replace(self, overrides=merged, flags=new_flags)


def stills(base, frames, seed=None, outputs=None):
    """``frames`` frames of the base configuration: only the noise seed differs."""
    return FrameSet(base, [{} for _ in range(int(frames))], seed=seed,
                    outputs=outputs or OutputSpec(), flags=[[] for _ in range(int(frames))])


def rotation_series(base, frames, osc, start=None, seed=None, outputs=None):
    """A rotation series: frame ``i`` covers ``start + i*osc`` .. ``+ osc`` degrees.

    osc: oscillation per frame, degrees (as ``-osc``); start: first phi, degrees (as
    ``-phi``; None: the base's ``phi0``). The base ``phi_steps``/``phi_step`` apply
    within each frame (with neither, the C's rule gives 2 steps of osc/2).
    """
    start = degrees(base.crystal.phi0) if start is None else float(start)
    osc = float(osc)
    overrides, flags = [], []
    for i in range(int(frames)):
        phi = start + i * osc
        overrides.append({"crystal.phi0": phi / RTD, "crystal.osc": osc / RTD})
        flags.append(["-phi", _flag_number(phi), "-osc", _flag_number(osc)])
    return FrameSet(base, overrides, seed=seed, outputs=outputs or OutputSpec(), flags=flags)


def misset_series(base, missets, seed=None, outputs=None):
    """One frame per (rx, ry, rz) missetting triple, degrees (as ``-misset``)."""
    overrides, flags = [], []
    for m in missets:
        m = tuple(float(x) for x in m)
        if len(m) != 3:
            raise SeriesError("each misset needs three angles (degrees)")
        overrides.append({"crystal.misset": tuple(x / RTD for x in m)})
        flags.append(["-misset"] + [_flag_number(x) for x in m])
    return FrameSet(base, overrides, seed=seed, outputs=outputs or OutputSpec(), flags=flags)


def matrix_series(base, matrices, seed=None, outputs=None):
    """One frame per MOSFLM A matrix (3x3, rows as in a ``-mat`` file)."""
    overrides = []
    for m in matrices:
        m = np.array(m, dtype=np.float64).reshape(3, 3)
        overrides.append({"crystal.a_matrix": m})
    return FrameSet(base, overrides, seed=seed, outputs=outputs or OutputSpec())


def random_orientations(base, frames, orientation_seed, seed=None, outputs=None):
    """``frames`` random orientations: frame ``i`` is ``-misset random -misset_seed S_i``
    with ``S_i = frame_seed(orientation_seed, i)``."""
    overrides, flags = [], []
    for i in range(int(frames)):
        s = frame_seed(orientation_seed, i)
        overrides.append({"crystal.misset": "random", "crystal.misset_seed": s})
        flags.append(["-misset", "random", "-misset_seed", str(s)])
    return FrameSet(base, overrides, seed=seed, outputs=outputs or OutputSpec(), flags=flags)


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
            "noise": (512 + 2 * pixels, False), "pgm": (pixels + 11, False)}


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
            if e.startswith(".nbnumba-stage-"):
                parts = e.split("-", 4)
                if len(parts) == 5 and parts[4] in names:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(d, e))


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
    seconds: float              #: render and write time in the worker
    worker: str                 #: host:pid
    threads: int
    attempt: int


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


def run_frame(task, payload=None):
    """Render one frame and write its files (or return its images). Runs in the worker."""
    t0 = time.perf_counter()
    base, outputs = _shared(task.job, payload)
    _fault(task, "start")
    cfg = apply_overrides(base, task.overrides)
    setup = engine.prepare(cfg)
    rows = setup.roi[3] - setup.roi[2] + 1
    result = engine.render(setup, device=task.device, threads=task.threads,
                           block_rows=max(1, rows // 50))
    ints = output.make_int_image(result, outputs.int_scale, outputs.adc)
    pgm = output.make_pgm(result, outputs.pgm_scale, ints.scale) if outputs.pgm else None
    noise = (output.make_noise_image(result, task.seed, outputs.adc) if outputs.noise
             else None)
    if task.paths is not None:
        _write_frame(task, result, ints, pgm, noise)
    info = FrameInfo(
        index=task.index, files=tuple(p for _, p in task.paths or ()),
        seed=task.seed if outputs.noise else None, phi=degrees(cfg.crystal.phi0),
        osc=setup.osc * RTD, max_I=float(result.stats.max_I), mean=float(result.stats.mean),
        int_scale=float(ints.scale), photons=None if noise is None else float(noise.photons),
        overloads=None if noise is None else int(noise.overloads),
        seconds=time.perf_counter() - t0, worker="%s:%d" % (socket.gethostname(), os.getpid()),
        threads=int(task.threads or numba.get_num_threads()), attempt=task.attempt)
    if task.paths is not None:
        return info
    shape = result.image.shape
    return Frame(info, result.image, ints.pixels.reshape(shape),
                 None if noise is None else noise.pixels.reshape(shape))


def _write_frame(task, result, ints, pgm, noise):
    """Write every file of the frame under staging names, then rename them all; on any
    failure remove what this attempt wrote (no partial frame is ever left)."""
    writers = {
        "float": lambda p: output.write_float_image(result, p),
        "int": lambda p: output.write_smv_image(result, p, ints.pixels),
        "pgm": lambda p: output.write_pgm(result, p, pgm),
        "noise": lambda p: output.write_smv_image(result, p, noise.pixels),
    }
    staged, renamed = [], []
    try:
        for kind, path in task.paths:
            stage = _stage_name(path)
            staged.append(stage)
            writers[kind](stage)
            _fault(task, "write")
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


# ---------------------------------------------------------------------------------------
# executors


class SerialExecutor(Executor):
    """Runs each submitted call at once in the calling process (the default)."""

    def submit(self, fn, *args, **kwargs):
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: B036 - handed to the caller via the future
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            future.set_exception(exc)
        return future


def available_cores():
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _is_client(obj):
    return hasattr(obj, "get_executor") and hasattr(obj, "scatter")


def _dask_client(executor):
    if _is_client(executor):
        return executor
    client = getattr(executor, "_client", None)
    return client if _is_client(client) else None


def _worker_cores():
    return available_cores()


def dask_threads(client):
    """numba threads per task on a dask cluster: the cores of each host divided by the
    tasks that host runs at once (its workers' threads), the smallest over hosts."""
    try:
        workers = client.scheduler_info()["workers"]
        cores = client.run(_worker_cores)
    except Exception:  # pragma: no cover - an unusual cluster: leave numba's default
        return None
    per_host = {}
    for addr, w in workers.items():
        host = w.get("host", addr)
        tasks, c = per_host.get(host, (0, 0))
        per_host[host] = (tasks + int(w.get("nthreads", 1)), max(c, int(cores.get(addr, 1))))
    if not per_host:
        return None
    return max(1, min(c // max(t, 1) for t, c in per_host.values()))


def _executor_threads(executor, client):
    cores = available_cores()
    if isinstance(executor, SerialExecutor):
        return None
    if client is not None:
        return dask_threads(client)
    n = getattr(executor, "_max_workers", None)
    if isinstance(executor, (ProcessPoolExecutor, ThreadPoolExecutor)) and n:
        return max(1, cores // int(n))
    return None


def _executor_width(executor, client):
    """How many tasks to keep submitted at once."""
    if isinstance(executor, SerialExecutor):
        return 1
    if client is not None:
        try:
            n = sum(int(w.get("nthreads", 1))
                    for w in client.scheduler_info()["workers"].values())
        except Exception:  # pragma: no cover
            n = 4
        return max(2, 2 * n)
    return max(2, 2 * int(getattr(executor, "_max_workers", 0) or 4))


@contextlib.contextmanager
def dask_executor(workers=None, scheduler=None, threads=None):
    """A dask-backed :class:`~concurrent.futures.Executor` for :func:`write_series`.

    workers=N: start a ``LocalCluster`` of N worker processes, one task each, with
    ``NUMBA_NUM_THREADS`` = cores // N (at most ``threads``). scheduler=ADDRESS: connect
    to a running scheduler (e.g. one started by dask-jobqueue). Yields
    ``(executor, description)``. Needs ``pip install 'nbnumba[dask]'``.
    """
    try:
        import logging

        from distributed import Client, LocalCluster
    except ImportError:
        raise SeriesError("dask is not installed: pip install 'nbnumba[dask]'") from None
    if scheduler is not None:
        with Client(scheduler, timeout="30s") as client:
            yield client.get_executor(pure=False), f"dask scheduler {scheduler}"
        return
    workers = int(workers or 1)
    per = max(1, available_cores() // workers)
    if threads:
        per = min(per, int(threads))
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR,
                      env={"NUMBA_NUM_THREADS": str(per)}) as cluster, \
            Client(cluster) as client:
        yield client.get_executor(pure=False), \
            f"dask LocalCluster: {workers} worker processes x {per} numba threads"


class _Shipment:
    """The shared (base, outputs) of a series: how tasks reach it in their process."""

    def __init__(self, value, executor, client, spool_dir):
        self.spool = None
        if isinstance(executor, (SerialExecutor, ThreadPoolExecutor)):
            self.key = "local-" + uuid.uuid4().hex
            with _SHARED_LOCK:
                _SHARED[self.key] = value
            self.payload = None
            self.local = True
            return
        self.local = False
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.key = hashlib.sha256(data).hexdigest()
        if client is not None:
            # shipped once to every worker; tasks then find it in their worker's memory
            self.payload = client.scatter(data, broadcast=True, hash=False)
        elif len(data) <= INLINE_LIMIT or spool_dir is None:
            self.payload = data
        else:
            # large inputs go through one file next to the outputs, read once per process
            self.spool = os.path.join(spool_dir, ".nbnumba-series-%s.pkl" % self.key[:16])
            write_atomic(self.spool, data)
            self.payload = ("file", os.path.abspath(self.spool))

    def close(self):
        if self.local:
            with _SHARED_LOCK:
                _SHARED.pop(self.key, None)
        if self.spool is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.spool)
        self.payload = None


# ---------------------------------------------------------------------------------------
# the driver


@dataclass
class FrameFailure:
    index: int
    error: str
    attempts: int


@dataclass
class SeriesReport:
    """What :func:`write_series` did."""
    total: int
    frames: List[FrameInfo]              #: rendered now, by index
    skipped: List[int]                   #: complete already (resume)
    failed: List[FrameFailure]
    seed: Optional[int]                  #: the user noise seed used
    seconds: float
    executor: str

    @property
    def ok(self):
        return not self.failed

    @property
    def rate(self):
        """Frames rendered per second of wall time."""
        return len(self.frames) / self.seconds if self.seconds > 0 else float("nan")

    def raise_for_failures(self):
        if self.failed:
            raise SeriesError("; ".join(f"frame {f.index}: {f.error}" for f in self.failed))


class SeriesProgress:
    """A progress line on stderr: frames done/total, rate, ETA (in place on a terminal)."""

    def __init__(self, total, stream=None, interval=2.0):
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.interval = interval
        self.start = time.perf_counter()
        self.last = None
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, done, skipped, failed):
        now = time.perf_counter()
        finished = done + skipped + failed >= self.total
        if not finished and self.last is not None and now - self.last < self.interval:
            return
        self.last = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        left = self.total - done - skipped - failed
        eta = left / rate if rate > 0 else float("nan")
        text = "frames %d/%d done" % (done + skipped, self.total)
        if skipped:
            text += " (%d skipped)" % skipped
        if failed:
            text += ", %d failed" % failed
        text += ", %.2f frames/s, %s elapsed, ETA %s" % (rate, _clock(elapsed), _clock(eta))
        if self.tty:
            self.stream.write("\r" + text + ("\n" if finished else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _clock(seconds):
    if seconds != seconds:
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _describe(error):
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _resolve_seed(frameset):
    if frameset.seed is None and frameset.outputs.noise:
        return int(time.time())
    return frameset.seed


def _fixed_base(base):
    """The base with the clock-chosen values fixed once (every worker must agree)."""
    cr = base.crystal
    if isinstance(cr.misset, str) and cr.misset_seed is None:
        base = apply_overrides(base, {"crystal.misset_seed": int(time.time())})
    return base


def _run(frameset, paths_of, executor, threads, device, resume, progress, retries, spool_dir,
         describe, on_result=None):
    seed = _resolve_seed(frameset)
    base = _fixed_base(frameset.base)
    n = len(frameset)
    # validate the configuration (once, here) before any work is sent out
    first = engine.prepare(apply_overrides(base, frameset.overrides[0]))
    own = executor is None
    executor = SerialExecutor() if executor is None else executor
    client = _dask_client(executor)
    if client is not None and _is_client(executor):
        executor = client.get_executor(pure=False)
    auto = _executor_threads(executor, client)   # workers x threads <= cores
    threads = auto if threads is None else (int(threads) if auto is None
                                            else min(int(threads), auto))
    width = _executor_width(executor, client)
    name = describe or _executor_name(executor, client)

    skipped = []
    todo = []
    pixels = first.fpixels * first.spixels
    for i in range(n):
        paths = paths_of(i)
        if resume and paths is not None:
            px = pixels
            if any(k.startswith("detector.") for k in frameset.overrides[i]):
                s = engine.prepare(frameset.config(i))
                px = s.fpixels * s.spixels
            if frame_complete(paths, px):
                skipped.append(i)
                continue
        todo.append(i)

    t0 = time.perf_counter()
    meter = SeriesProgress(n) if progress is True else progress
    done, failed = {}, []
    shipment = _Shipment((base, frameset.outputs), executor, client, spool_dir)
    running = {}
    queue = deque((i, 1) for i in todo)

    def submit(i, attempt):
        task = FrameTask(index=i, overrides=tuple(frameset.overrides[i].items()),
                         seed=frameset.noise_seed(i, seed) if frameset.outputs.noise else None,
                         job=shipment.key,
                         paths=None if paths_of(i) is None else tuple(paths_of(i)),
                         threads=threads, device=device, attempt=attempt)
        try:
            running[executor.submit(run_frame, task, shipment.payload)] = (i, attempt)
        except Exception as exc:  # e.g. BrokenProcessPool: the executor cannot run it
            failed.append(FrameFailure(i, _describe(exc), attempt))

    try:
        if meter and skipped:
            meter(0, len(skipped), 0)
        while queue or running:
            while queue and len(running) < width:
                submit(*queue.popleft())
            if not running:   # every submission failed (a broken executor)
                if meter:
                    meter(len(done), len(skipped), len(failed))
                continue
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                i, attempt = running.pop(fut)
                try:
                    value = fut.result()
                except BaseException as exc:
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    broken = isinstance(exc, BrokenProcessPool)
                    if attempt <= retries and not broken:
                        if meter:
                            sys.stderr.write("frame %d failed (%s), retrying\n"
                                             % (i, _describe(exc)))
                        queue.append((i, attempt + 1))
                    else:
                        failed.append(FrameFailure(i, _describe(exc), attempt))
                    continue
                info = value.info if isinstance(value, Frame) else value
                done[i] = info
                if on_result is not None:
                    on_result(value)
            if meter:
                meter(len(done), len(skipped), len(failed))
    except BaseException:
        for fut in running:
            fut.cancel()
        raise
    finally:
        shipment.close()
        if own:
            executor.shutdown()
        all_paths = [p for i in todo if paths_of(i) is not None for _, p in paths_of(i)]
        if all_paths and not running:
            _clean_stages(all_paths)
    failed.sort(key=lambda f: f.index)
    return SeriesReport(total=n, frames=[done[i] for i in sorted(done)], skipped=skipped,
                        failed=failed, seed=seed if frameset.outputs.noise else None,
                        seconds=time.perf_counter() - t0, executor=name)


def _executor_name(executor, client):
    if isinstance(executor, SerialExecutor):
        return "serial (in-process)"
    if client is not None:
        return "dask %s" % getattr(client, "scheduler", None).address \
            if getattr(client, "scheduler", None) is not None else "dask"
    return type(executor).__name__


def write_series(frameset, template, executor=None, resume=False, progress=True, threads=None,
                 retries=1, device="cpu", describe=None):
    """Render every frame of ``frameset`` and write its files; returns a :class:`SeriesReport`.

    template: Python format string of the frame index (``"out/frame_{:05d}"``); each
        output's extension is appended (``.bin``, ``.img``, ``.pgm``, ``_noise.img``).
        Missing directories are created.
    executor: a :class:`concurrent.futures.Executor` or a dask ``distributed.Client``;
        None: one frame after another in this process, every core on each frame.
        Workers write the files themselves (atomically) and return only metadata.
    resume: skip frames whose files are all present and complete.
    progress: True (a line on stderr), False, or a callable(done, skipped, failed).
    threads: numba threads per frame (None: the cores divided by the executor's
        workers, or all cores when serial).
    retries: times a failed frame is tried again (frames that still fail are in
        ``report.failed``; a failed frame leaves none of its files).
    """
    check_template(template)
    kinds = frameset.outputs.kinds()
    # absolute names: a worker's working directory need not be ours
    directories = {os.path.dirname(os.path.abspath(template.format(i)))
                   for i in range(len(frameset))}
    for d in sorted(directories):
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create directory {d}: {exc.strerror or exc}") from None
    for _, p in frame_paths(template, 0, kinds):
        check_writable(p)

    def paths_of(i):
        return [(k, os.path.abspath(p)) for k, p in frame_paths(template, i, kinds)]

    return _run(frameset, paths_of, executor, threads, device, resume, progress, retries,
                os.path.dirname(os.path.abspath(template.format(0))), describe)


def render_series(frameset, executor=None, progress=False, threads=None, retries=1,
                  device="cpu"):
    """Render every frame and return them, in order, as :class:`Frame` objects.

    The images travel back from the workers: meant for in-memory work on modest sets
    (use :func:`write_series` for large ones). Raises :class:`SeriesError` if a frame
    fails twice.
    """
    frames = {}

    def keep(value):
        frames[value.info.index] = value

    report = _run(frameset, lambda i: None, executor, threads, device, False, progress,
                  retries, None, None, on_result=keep)
    report.raise_for_failures()
    return [frames[i] for i in sorted(frames)]


__all__ = ["FrameSet", "OutputSpec", "FrameInfo", "Frame", "FrameFailure", "SeriesReport",
           "SeriesError", "SerialExecutor", "frame_seed", "degrees", "stills", "rotation_series",
           "misset_series", "matrix_series", "random_orientations", "apply_overrides",
           "frame_paths", "check_template", "frame_complete", "write_series", "render_series",
           "dask_executor", "dask_threads", "available_cores", "run_frame", "EXTENSIONS",
           "SEED_LIMIT"]
