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
:func:`dask_executor` imports ``distributed`` only when its cluster starts, which is when
the first frame is due (a series with nothing left to render starts none).

The code lives in these modules, each re-exported here (``nbnumba.series.X`` is the API):
:mod:`~nbnumba.series.frames` (frame sets, overrides, seeds, the constructors),
:mod:`~nbnumba.series.tasks` (one frame's task in the worker: rendering, atomic writing,
the shared-input cache, the fault hook), :mod:`~nbnumba.series.executors` (the serial
default, dask, thread counts, shipping the shared inputs) and
:mod:`~nbnumba.series.runner` (the run loop, retries, progress and report) and
:mod:`~nbnumba.series.record` (the run record and lock beside the frames: what
``resume`` checks); :mod:`~nbnumba.series.names` checks every file name of a series
before anything is rendered; :mod:`~nbnumba.series.cluster` watches a dask cluster while
a series runs on it (its address checked first, each worker admitted before it gets
frames: the same versions, the output directories seen; a lost scheduler or no worker
for too long ends the run).
"""
from .executors import (INLINE_LIMIT, DaskExecutor, SerialExecutor, available_cores,
                        dask_executor, dask_threads)
from .frames import (EXTENSIONS, SEED_LIMIT, FrameSet, OutputSpec, SeriesError,
                     apply_overrides, degrees, frame_seed, matrix_series, misset_series,
                     random_orientations, rotation_series, stills)
from .names import check_names
from .record import recorded_seed, run_lock
from .runner import (FrameFailure, SeriesProgress, SeriesReport, check_resume, render_series,
                     write_series)
from .tasks import (FAULT_ENV, Frame, FrameInfo, FrameTask, check_template, frame_complete,
                    frame_paths, run_frame)

__all__ = ["FrameSet", "OutputSpec", "FrameInfo", "Frame", "FrameFailure", "SeriesReport",
           "SeriesError", "SerialExecutor", "frame_seed", "degrees", "stills", "rotation_series",
           "misset_series", "matrix_series", "random_orientations", "apply_overrides",
           "check_names",
           "frame_paths", "check_template", "frame_complete", "write_series", "render_series",
           "dask_executor", "DaskExecutor", "dask_threads", "available_cores", "run_frame",
           "EXTENSIONS", "SEED_LIMIT", "recorded_seed", "run_lock", "check_resume"]
