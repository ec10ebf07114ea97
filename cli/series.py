"""``nbnumba-series``: many frames from one command line, serially or on a dask cluster.

Takes every ``nbnumba`` flag for the base frame plus the series options (``--frames``,
``--frame-osc``, ``--template``, ``--workers``, ``--scheduler``, ``--resume`` ...).
Frame ``i`` is byte for byte the image of ``nbnumba <flags> -phi P_i -osc DEG -seed S_i``
with ``P_i = -phi + i*DEG`` and ``S_i = nbnumba.series.frame_seed(-seed, i)``; the
``--manifest`` file lists each frame's values. Errors are one line on stderr with exit
status 9; a frame that fails twice is reported with its index and leaves no file.
"""
import argparse
import contextlib
import dataclasses
import json
import sys
import time

from nbnumba import engine, series
from nbnumba.io.atomic import FileSet, OutputError, write_atomic
from nbnumba.io.errors import InputFileError
from nbnumba.kernels import DeviceError

from . import truth
from .entry import error, run_guarded, version
from .flags import OutputOptions, c_float, c_int
from .parse import CliError, load_inputs, parse_arguments

PROG = "nbnumba-series"
DESCRIPTION = ("Render a series of frames (a rotation series, random orientations or noise "
               "realisations) with the nbnumba flags for the base frame, one frame after "
               "another or on a dask cluster; every frame is byte-identical to the "
               "matching single nbnumba run.")


def _positive(text):
    value = c_int(text)
    if value < 1:
        raise ValueError(f"'{text}' is not a positive integer")
    return value


_positive.__name__ = "positive integer"


def add_series_options(parser):
    """The series options (the hook given to :func:`nbnumba_cli.parse.parse_arguments`)."""
    parser.prog = PROG
    parser.description = DESCRIPTION
    for action in parser._actions:
        if isinstance(action, argparse._VersionAction):
            action.version = f"{PROG} {version()}"
    g = parser.add_argument_group("Series (nbnumba-series)")
    g.add_argument("--frames", type=_positive, default=1, metavar="N",
                   help="number of frames [default: 1]")
    g.add_argument("--frame-osc", type=c_float, default=None, metavar="DEG",
                   help="oscillation per frame (degrees): frame i starts at -phi + i x DEG and "
                   "covers DEG, with the base -phisteps/-phistep inside each frame "
                   "[default: the base -osc; neither: stills, only the noise differs]")
    g.add_argument("--orientation-seed", type=c_int, default=None, metavar="SEED",
                   help="a random orientation per frame: -misset random with -misset_seed "
                   "frame_seed(SEED, i)")
    g.add_argument("--template", default="frame_{:05d}", metavar="NAME",
                   help="Python format string of the frame index, to which .bin (floats), "
                   ".img (int image), .pgm and _noise.img are appended for the outputs the "
                   "flags ask for; missing directories are created [default: frame_{:05d}]")
    g.add_argument("--workers", type=_positive, default=None, metavar="N",
                   help="start a local dask cluster of N worker processes (cores/N numba "
                   "threads each); needs nbnumba[dask]")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="use a running dask scheduler (tcp://host:8786); needs nbnumba[dask]")
    g.add_argument("--resume", action="store_true",
                   help="skip frames whose files are all present and complete")
    g.add_argument("--manifest", default=None, metavar="FILE",
                   help="write a JSON list of the frames (seed, phi, files, statistics)")
    g.add_argument("--expt", default=None, metavar="FILE",
                   help="also write a DIALS experiment list of the .img frames: one sweep "
                   "(beam, detector, goniometer, scan) with the true crystal; the template "
                   "must end in the frame number (sim_{:05d})")
    g.add_argument("--xds-inp", default=None, metavar="FILE",
                   help="also write an XDS.INP for the .img frames (a rotation series) with "
                   "the true cell")


def _frame_set(state, opts):
    base, out = state.config, state.out
    outputs = series.OutputSpec.from_cli(out)
    n = opts.frames
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


def _executor(opts, threads):
    if opts.workers is not None and opts.scheduler is not None:
        raise CliError("give --workers or --scheduler, not both")
    if opts.workers is not None or opts.scheduler is not None:
        return series.dask_executor(workers=opts.workers, scheduler=opts.scheduler,
                                    threads=threads)
    what = "serial, in-process, %s" % (f"{threads} threads" if threads else "all cores")
    return contextlib.nullcontext((None, what))


def run(argv, stdout=None):
    """Run a series from C-style arguments plus the series options; returns the status."""
    stdout = stdout if stdout is not None else sys.stdout

    def say(text=""):
        stdout.write(text + "\n")

    try:
        state = parse_arguments(argv, add_options=add_series_options)
        opts = state.options
        load_inputs(state)
        out = state.out
        clock_seed = out.seed is None
        if clock_seed:
            out.seed = int(time.time())
        series.check_template(opts.template)
        xtal = state.config.crystal
        clock_misset = (xtal.misset == "random" and xtal.misset_seed is None
                        and opts.orientation_seed is None)
        if clock_misset:   # one random orientation for the whole series, as printed
            xtal.misset_seed = int(time.time())
        fs, osc = _frame_set(state, opts)
        expt = opts.expt or out.expt
        xds_inp = opts.xds_inp or out.xds_inp
        truth.check_paths(expt, xds_inp, create_directories=True)
        experiment_files = truth.series_files(fs, opts.template, out.adc, expt, xds_inp)
        say("%s %s - %d frame%s" % (PROG, version(), len(fs), "" if len(fs) == 1 else "s"))
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
            say("noise seed %d%s: frame i uses -seed frame_seed(%d, i)"
                % (out.seed, " (from the clock)" if clock_seed else "", out.seed))
        with _executor(opts, state.threads) as (executor, what):
            say("executor: %s" % what)
            stdout.flush()
            report = series.write_series(
                fs, opts.template, executor=executor, resume=opts.resume,
                progress=bool(out.progress), threads=state.threads, device=state.device,
                describe=what)
        say("%d frame%s written, %d skipped, %d failed in %.1f s%s"
            % (len(report.frames), "" if len(report.frames) == 1 else "s",
               len(report.skipped), len(report.failed), report.seconds,
               " (%.2f frames/s)" % report.rate if report.frames else ""))
        if opts.manifest:
            _write_manifest(opts.manifest, argv, report)
            say("manifest: %s" % opts.manifest)
        if experiment_files and not report.failed:
            with FileSet() as files:
                for path, data, what in experiment_files:
                    files.stage(path, data)
                    say("%s: %s" % (what, path))
        stdout.flush()
        for f in report.failed:
            error(PROG, "frame %d failed after %d attempt%s: %s"
                  % (f.index, f.attempts, "" if f.attempts == 1 else "s", f.error))
        if report.failed:
            return error(PROG, "%d of %d frames failed (rerun with --resume to complete "
                         "the series)" % (len(report.failed), len(fs)))
        return 0
    except (CliError, engine.ConfigError, InputFileError, OutputError, DeviceError,
            series.SeriesError) as exc:
        stdout.flush()
        return error(PROG, exc)
    except MemoryError:
        return error(PROG, "not enough memory for this image")


def _write_manifest(path, argv, report):
    data = {
        "program": PROG, "version": version(), "argv": list(argv), "seed": report.seed,
        "seed_rule": "frame i: -seed nbnumba.series.frame_seed(seed, i)",
        "executor": report.executor, "seconds": report.seconds,
        "frames": [dataclasses.asdict(f) for f in report.frames],
        "skipped": report.skipped,
        "failed": [dataclasses.asdict(f) for f in report.failed],
    }
    write_atomic(path, (json.dumps(data, indent=1) + "\n").encode())


def main(argv=None):
    """Console entry point: never shows a traceback unless NBNUMBA_DEBUG is set."""
    return run_guarded(run, sys.argv[1:] if argv is None else argv, PROG,
                       interrupted="interrupted (rerun with --resume to complete)", numba=True)


if __name__ == "__main__":
    sys.exit(main())
