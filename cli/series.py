"""``nbnumba-series``: many frames from one command line, serially or on a dask cluster.

Takes every ``nbnumba`` flag for the base frame plus the series options (``--frames``,
``--frame-osc``, ``--template``, ``--workers``, ``--scheduler``, ``--resume`` ...).
Frame ``i`` is byte for byte the image of ``nbnumba <flags> -phi P_i -osc DEG -seed S_i``
with ``P_i = -phi + i*DEG`` and ``S_i = nbnumba.series.frame_seed(-seed, i)``; the
``--manifest`` file lists each frame's values. Errors are one line on stderr with exit
status 9; a frame that fails twice is reported with its index and leaves no file. Every
file name is checked before anything is rendered; Ctrl-C (exit 130) and SIGTERM (exit
143) stop a run in one line, with its run record written.
"""
import argparse
import contextlib
import dataclasses
import json
import os
import signal
import stat
import sys
import time

from nbnumba import engine, series
from nbnumba.errors import NbnumbaError
from nbnumba.flags import OutputOptions, c_float, c_int
from nbnumba.io.atomic import FileSet, OutputError, check_names_given, write_atomic

from . import truth
from . import stopsignals
from .console import ConsoleStream, Terminated, failure_note, flush_quietly, leave
from .report import FILE_SOURCES, structure_factor_line
from .guard import error, raise_if_stopped, run_guarded, say_error, version
from .parse import CliError, load_inputs, parse_arguments

PROG = "nbnumba-series"
#: the lines of a series stopped by Ctrl-C and by SIGTERM (after the run record is written)
INTERRUPTED = "interrupted (rerun with --resume to complete)"
TERMINATED = "terminated (rerun with --resume to complete)"
DESCRIPTION = ("Render a series of frames (a rotation series, random orientations or noise "
               "realisations) with the nbnumba flags for the base frame, one frame after "
               "another or on a dask cluster; every frame is byte-identical to the "
               "matching single nbnumba run.")


#: most frames one command renders (each frame's plan is held in memory)
MAX_FRAMES = 100_000

#: options that change how a run goes, not what it writes (left out of the run record)
_RUNNER_OPTIONS = {"--resume": 0, "--workers": 1, "--scheduler": 1, "--manifest": 1,
                   "--connect-timeout": 1, "--cluster-timeout": 1,
                   "--expt": 1, "--xds-inp": 1, "-expt": 1, "-xds_inp": 1,
                   "--expt-images": 1, "-expt_images": 1,
                   "-nthreads": 1, "-noprogress": 0, "-progress": 0}


def _positive(text):
    value = c_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


_positive.__name__ = "positive integer"


def _frame_count(text):
    value = _positive(text)
    if value > MAX_FRAMES:
        raise argparse.ArgumentTypeError(
            f"{text} frames: at most {MAX_FRAMES} per run (split a longer series into runs "
            "with -phi and --template)")
    return value


_frame_count.__name__ = "frame count"


def _worker_count(text):
    value = _positive(text)
    cores = series.available_cores()
    if value > cores:
        raise argparse.ArgumentTypeError(
            f"{text} workers: this machine has {cores} core{'' if cores == 1 else 's'} for "
            f"this process, so at most {cores} worker processes (use --scheduler for more "
            "machines)")
    return value


_worker_count.__name__ = "worker count"


def _seconds(text):
    value = c_float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


_seconds.__name__ = "seconds"


def _recorded_flags(argv):
    """The command line without the options that do not change the frames."""
    kept, skip = [], 0
    for token in argv:
        if skip:
            skip -= 1
            continue
        name = token.split("=", 1)[0]
        if name in _RUNNER_OPTIONS:
            skip = 0 if "=" in token else _RUNNER_OPTIONS[name]
            continue
        kept.append(token)
    return kept


def add_series_options(parser):
    """The series options (the hook given to :func:`nbnumba_cli.parse.parse_arguments`)."""
    parser.prog = PROG
    parser.description = DESCRIPTION
    for action in parser._actions:
        if isinstance(action, argparse._VersionAction):
            action.version = f"{PROG} {version()}"
    g = parser.add_argument_group("Series (nbnumba-series)")
    g.add_argument("--frames", type=_frame_count, default=None, metavar="N",
                   help=f"number of frames, at most {MAX_FRAMES} [default: the images of "
                   "the --experiment scan, else 1]")
    g.add_argument("--frame-osc", type=c_float, default=None, metavar="DEG",
                   help="oscillation per frame (degrees): frame i starts at -phi + i x DEG and "
                   "covers DEG, with the base -phisteps/-phistep (and -phi_midpoints) inside "
                   "each frame [default: the base -osc; neither: stills, only the noise "
                   "differs]")
    g.add_argument("--orientation-seed", type=c_int, default=None, metavar="SEED",
                   help="a random orientation per frame: -misset random with -misset_seed "
                   "frame_seed(SEED, i)")
    g.add_argument("--template", default="frame_{:05d}", metavar="NAME",
                   help="Python format string of the frame index, to which .bin (floats), "
                   ".img (int image), .pgm and _noise.img are appended for the outputs the "
                   "flags ask for; missing directories are created [default: frame_{:05d}]")
    g.add_argument("--workers", type=_worker_count, default=None, metavar="N",
                   help="start a local dask cluster of N worker processes (cores/N numba "
                   "threads each; N at most the cores, and no more than the frames are "
                   "used); needs nbnumba[dask]")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="use a running dask scheduler (tcp://host:8786); needs nbnumba[dask]")
    g.add_argument("--connect-timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="how long reaching the --scheduler may take (each step: the host "
                   "name, the connection, the scheduler's greeting) [default: 30]")
    g.add_argument("--cluster-timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="how long a run on dask waits for a lost scheduler, or for a worker "
                   "when it has none, before it stops [default: 60]")
    g.add_argument("--resume", action="store_true",
                   help="keep the frames an earlier run of the same series finished whose "
                   "files still match the checksums in its run record; refuse if that run "
                   "differs (seed, flags, inputs, version)")
    g.add_argument("--manifest", default=None, metavar="FILE",
                   help="write a JSON list of the frames (seed, phi, files, statistics)")
    g.add_argument("--expt", default=None, metavar="FILE",
                   help="also write a DIALS experiment list of the .img frames: one sweep "
                   "(beam, detector, goniometer, scan) with the true crystal; the template "
                   "must end in the frame number (sim_{:05d})")
    g.add_argument("--expt-images", default=None, metavar="WHICH",
                   help="the frames --expt and --xds-inp describe: int (the .img frames), "
                   "noise (the _noise.img frames; --xds-inp only: DIALS needs the number "
                   "at the end of an SMV name), nexus (the --nexus file's frames: the noise "
                   "counts, no renaming; --expt only) or a template of other files with the "
                   "frame number at the end of the name (noisy/sim_{:05d}.img) "
                   "[default: int]")
    g.add_argument("--xds-inp", default=None, metavar="FILE",
                   help="also write an XDS.INP for the .img frames (a rotation series) with "
                   "the true cell")
    g.add_argument("--nexus", default=None, metavar="FILE",
                   help="also write an NXmx (NeXus/HDF5) master file of the sweep; each "
                   "frame's counts go to an .h5 data file beside its other files, joined "
                   "by a virtual dataset; needs h5py (pip install 'nbnumba[hdf5]')")


def _frame_set(state, opts):
    base, out = state.config, state.out
    outputs = series.OutputSpec.from_cli(out)
    if opts.nexus or out.nexus:   # each frame's counts in an .h5 file beside the others
        outputs = dataclasses.replace(outputs, nexus="float" if out.nexus_float else "counts")
    n = opts.frames
    if n is None:   # an experiment's scan: all its images
        n = state.experiment.frames if state.experiment is not None else 1
    osc = opts.frame_osc
    if osc is None and base.crystal.osc is not None:
        osc = series.degrees(base.crystal.osc)
    if osc is not None:
        fs = series.rotation_series(base, n, osc, seed=out.seed, outputs=outputs)
    else:
        fs = series.stills(base, n, seed=out.seed, outputs=outputs)
    if opts.orientation_seed is not None:
        ro = series.random_orientations(base, n, opts.orientation_seed)
        fs = fs.vary(ro.overrides, ro.flags)
    return fs, osc


def _ignored_names(out):
    default = OutputOptions()
    return [flag for flag, name in (("-floatfile", "floatfile"), ("-intfile", "intfile"),
                                    ("-pgmfile", "pgmfile"), ("-noisefile", "noisefile"))
            if getattr(out, name) != getattr(default, name)]


def _executor(opts, threads, frames):
    if opts.workers is not None or opts.scheduler is not None:
        workers = None if opts.workers is None else min(opts.workers, frames)
        return series.dask_executor(workers=workers, scheduler=opts.scheduler, threads=threads,
                                    connect_timeout=opts.connect_timeout,
                                    cluster_timeout=opts.cluster_timeout)
    what = "serial, in-process, %s" % (f"{threads} threads" if threads else "all cores")
    return contextlib.nullcontext((None, what))


def run(argv, stdout=None):
    """Run a series from C-style arguments plus the series options; returns the status.

    A console that cannot take the report (a closed pipe, a full disk, an encoding that
    cannot show a name) never stops the frames: its failure is one warning at the end.
    """
    stdout = ConsoleStream(stdout if stdout is not None else sys.stdout)

    def say(text=""):
        stdout.write(text + "\n")

    held = None   # the FIFOs among the other outputs, open from the start
    try:
        state = parse_arguments(argv, add_options=add_series_options)
        opts = state.options
        if opts.compile:
            from .precompile import compile_all
            return compile_all(PROG)
        sf_source = load_inputs(state, read_fdump=True,   # ./Fdump.bin, as nbnumba reads it
                                say=lambda text: say_error("%s: note: %s\n" % (PROG, text)))
        out = state.out
        check_names_given([("--manifest", opts.manifest), ("--expt", opts.expt),
                           ("--xds-inp", opts.xds_inp), ("--nexus", opts.nexus),
                           ("-expt", out.expt), ("-xds_inp", out.xds_inp),
                           ("-nexus", out.nexus)])
        series.check_template(opts.template)
        if opts.workers is not None and opts.scheduler is not None:
            raise CliError("give --workers or --scheduler, not both")
        if opts.connect_timeout is not None and opts.scheduler is None:
            raise CliError("--connect-timeout applies to --scheduler only")
        if opts.cluster_timeout is not None and opts.workers is None \
                and opts.scheduler is None:
            raise CliError("--cluster-timeout applies to --workers and --scheduler only")
        recorded_seed = out.seed is None and opts.resume and out.write_noise
        if recorded_seed:   # continue the run on disk with the seed it chose
            out.seed = series.recorded_seed(opts.template)
            recorded_seed = out.seed is not None
        clock_seed = out.seed is None
        if clock_seed:
            out.seed = int(time.time())
        xtal = state.config.crystal
        clock_misset = (xtal.misset == "random" and xtal.misset_seed is None
                        and opts.orientation_seed is None)
        if clock_misset:   # one random orientation for the whole series, as printed
            xtal.misset_seed = int(time.time())
        fs, osc = _frame_set(state, opts)
        expt = opts.expt or out.expt
        xds_inp = opts.xds_inp or out.xds_inp
        nexus_path = opts.nexus or out.nexus
        _check_other_outputs(opts, fs, expt, xds_inp, nexus_path)
        experiment_files = truth.series_files(fs, opts.template, out.adc, expt, xds_inp,
                                              opts.expt_images or out.expt_images, nexus_path)
        nexus_frames = truth.series_nexus(fs, nexus_path)
        held = _hold_fifos((opts.manifest, expt, xds_inp, nexus_path))
        say("%s %s - %d frame%s" % (PROG, version(), len(fs), "" if len(fs) == 1 else "s"))
        if sf_source in FILE_SOURCES:   # --mtz, --sf-cif, --model
            say(structure_factor_line(state.config.crystal.structure_factors)
                + (" (and its cell)" if state.cell_from else ""))
        if osc is not None:
            first = series.degrees(state.config.crystal.phi0)
            say("rotation series: frame i starts at phi %g + i x %g deg" % (first, osc))
        if clock_misset:
            say("random orientation: -misset_seed %d (from the clock)" % xtal.misset_seed)
        if opts.orientation_seed is not None:
            say("random orientations: -misset random -misset_seed frame_seed(%d, i)"
                % opts.orientation_seed)
        kinds = fs.outputs.kinds()
        say("files: %s ... %s" % (
            " ".join(p for _, p in series.frame_paths(opts.template, 0, kinds)),
            " ".join(p for _, p in series.frame_paths(opts.template, len(fs) - 1, kinds))))
        ignored = _ignored_names(out)
        if ignored:
            say("note: %s ignored: --template names the files" % ", ".join(ignored))
        if fs.outputs.noise:
            origin = (" (from the clock)" if clock_seed else
                      " (from the run record)" if recorded_seed else "")
            say("noise seed %d%s: frame i uses -seed frame_seed(%d, i)"
                % (out.seed, origin, out.seed))
        started = time.perf_counter()
        started_at = time.time()
        flags = _recorded_flags(argv)
        # lock and check the run directory before a cluster is started
        with series.run_lock(series.record.run_directory(opts.template)):
            if opts.resume:
                series.check_resume(fs, opts.template, flags)
            with _executor(opts, state.threads, len(fs)) as (executor, what):
                say("executor: %s" % what)
                stdout.flush()
                raise_if_stopped()   # a stop a library swallowed while loading
                report = series.write_series(
                    fs, opts.template, executor=executor, resume=opts.resume,
                    progress=bool(out.progress), threads=state.threads, device=state.device,
                    describe=what, flags=flags)
        # the closing line: counts, the whole time and where it went
        say(report.summary(time.perf_counter() - started))
        if opts.manifest:
            _write_manifest(opts.manifest, argv, report)
            say("manifest: %s" % opts.manifest)
        if (experiment_files or nexus_frames) and not report.failed:
            with FileSet() as files:
                for path, data, what in experiment_files:
                    files.stage(path, data)
                    say("%s: %s" % (what, path))
                if nexus_frames:
                    files.stage(nexus_path, truth.series_master(
                        nexus_frames, fs, opts.template, nexus_path, started_at))
                    say("NXmx master file: %s" % nexus_path)
            offset_note = truth.sampling_note(engine.prepare(fs.config(0)))
            if offset_note:
                say(offset_note)
        stdout.flush()
        note = failure_note(PROG, stdout)
        if note:
            say_error(note + "\n")
        if report.failed:
            return error(PROG, _failures_line(report.failed, len(fs)))
        return 0
    except NbnumbaError as exc:
        stdout.flush()
        return error(PROG, exc)
    except MemoryError:
        return error(PROG, "not enough memory for this image")
    finally:
        if held is not None:
            held.discard()


def _failures_line(failed, total):
    """The one line of a run whose frames ``failed`` (a full disk can fail hundreds):
    how many, the first one's error, and how to complete the series (each frame's error
    is in the --manifest)."""
    first = failed[0]
    return ("%d of %d frames failed; the first, frame %d, after %d attempt%s: %s (rerun "
            "with --resume to complete the series)"
            % (len(failed), total, first.index, first.attempts,
               "" if first.attempts == 1 else "s", first.error))


def _hold_fifos(paths):
    """A :class:`FileSet` that holds open, until the run ends, each of ``paths`` that is
    a FIFO: one without a reader is refused now, before any frame is rendered
    (``OutputError``), and a reader does not see the end of its input before the file is
    written into it at the end."""
    held = FileSet()
    try:
        for path in paths:
            if path and _is_fifo(path):
                held.reserve(path)
    except BaseException:
        held.discard()
        raise
    return held


def _is_fifo(path):
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def _check_other_outputs(opts, fs, expt, xds_inp, nexus_path=None):
    """Before anything is rendered: every frame's files distinct and apart from
    ``--manifest``, ``--expt`` and ``--xds-inp``, which must be writable files (their
    directories are created), a device among them accepting a write."""
    others = {"--manifest": opts.manifest,
              ("--expt" if opts.expt else "-expt"): expt,
              ("--xds-inp" if opts.xds_inp else "-xds_inp"): xds_inp,
              "--nexus": nexus_path}
    series.check_names(opts.template, len(fs), fs.outputs.kinds(), others)
    truth.check_paths(opts.manifest, expt, xds_inp, create_directories=True)
    for path in (opts.manifest, expt, xds_inp, nexus_path):
        if path:
            _probe_device(path)


def _probe_device(path):
    """``OutputError`` if ``path`` is a character device that refuses an empty write
    (``/dev/full``). A FIFO is not opened: its reader would see the end of its input."""
    try:
        device = stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:   # not there yet (or checked already)
        return
    if not device:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            os.write(fd, b"")
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_manifest(path, argv, report):
    """The JSON list of every frame of the series: those rendered now and those kept
    from an earlier run (``"kept": true``, with the values the run record keeps)."""
    frames = [dict(dataclasses.asdict(f), kept=False) for f in report.frames]
    frames += [dict(dataclasses.asdict(f), kept=True) for f in report.kept]
    data = {
        "program": PROG, "version": version(), "argv": list(argv), "seed": report.seed,
        "seed_rule": "frame i: -seed nbnumba.series.frame_seed(seed, i)",
        "executor": report.executor, "seconds": report.seconds,
        "frames": sorted(frames, key=lambda f: f["index"]),
        "skipped": report.skipped,
        "failed": [dataclasses.asdict(f) for f in report.failed],
    }
    write_atomic(path, (json.dumps(data, indent=1) + "\n").encode())


class _Termination:
    """SIGTERM (what batch systems send before killing a job) handled like Ctrl-C: the
    frames being written are dropped whole, the run record is written, one line is
    printed and the status is 143. The signal goes to the SIGINT handler in place, so
    that it stops a dask cluster the same careful way; a repeated SIGTERM is ignored
    (the record must be written)."""

    def __init__(self):
        self.signum = None

    def handler(self, signum, frame):
        if self.signum is not None:
            return
        self.signum = signum
        stopsignals.note(signum)
        on_sigint = signal.getsignal(signal.SIGINT)
        if callable(on_sigint):
            on_sigint(signal.SIGINT, frame)
        else:   # SIGINT ignored (a background job): stop here all the same
            raise Terminated(signum)

    @contextlib.contextmanager
    def installed(self):
        self.signum = None
        try:
            previous = signal.signal(signal.SIGTERM, self.handler)
        except ValueError:  # not the main thread: nothing changes
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def run(self, argv):
        """``run(argv)``, with an interrupt that a SIGTERM caused reported as such."""
        with self.installed():
            try:
                return run(argv)
            except KeyboardInterrupt:
                if self.signum is None:
                    raise
                say_error("%s: %s\n" % (PROG, TERMINATED))
                return 128 + self.signum


def main(argv=None):
    """Console entry point: never shows a traceback unless NBNUMBA_DEBUG is set; Ctrl-C
    exits with 130, SIGTERM with 143, both after writing the run record."""
    status = run_guarded(_Termination().run, sys.argv[1:] if argv is None else argv, PROG,
                         interrupted=INTERRUPTED, numba=True, terminated=TERMINATED)
    if argv is None:
        # the command is over and its cluster stopped: leave now, so that a repeated
        # signal (or one still travelling) cannot turn the exit into a crash, and a
        # console that cannot take buffered text cannot change the status
        leave(PROG, status, interrupted=INTERRUPTED, terminated=TERMINATED)
    return status


if __name__ == "__main__":
    sys.exit(main())
