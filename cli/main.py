"""``nbnumba``: the nanoBragg-compatible command-line simulator.

Parses the C program's flags, renders the image, prints the C's summary and statistics
lines and writes the same files (float, SMV, PGM, noise, Fdump.bin). Errors are one line
on stderr with exit status 9; no output file is written or replaced by a failed run.
"""
import os
import sys
import time

from nbnumba import _jit, engine, output
from nbnumba.errors import NbnumbaError
from nbnumba.progress import ProgressMeter
from nbnumba.io import fdump, nexus
from nbnumba.io.atomic import FileSet, OutputError, check_distinct, check_names_given

from . import report, truth
from .console import (ConsoleStream, failure_note, flush_quietly, leave,
                      reopen_closed_standard_streams, sigterm_as_interrupt)
from .guard import error, raise_if_stopped, run_guarded, say_error, version
from .parse import load_inputs, parse_arguments


def _outputs(out, sf_source=None):
    """(flag, path) of every file the run writes; the dump file when ``-hkl`` is read."""
    paths = [("-floatfile", out.floatfile), ("-intfile", out.intfile)]
    paths += [(flag, p) for flag, p in (("-expt", out.expt), ("-xds_inp", out.xds_inp),
                                         ("-nexus", out.nexus)) if p is not None]
    if out.write_pgm:
        paths.append(("-pgmfile", out.pgmfile))
    if out.write_noise:
        paths.append(("-noisefile", out.noisefile))
    if sf_source == "hkl":
        paths.append(("the structure-factor dump", fdump.DUMP_NAME))
    return paths


def run(argv, stdout=None):
    """Run one simulation from C-style arguments; returns the exit status."""
    with _jit.no_blas_probe():  # scipy.linalg stays out, as in the library
        return _run(argv, stdout)


def _run(argv, stdout):
    stdout = ConsoleStream(stdout if stdout is not None else sys.stdout)

    def say(text=""):
        stdout.write(text + "\n")

    notes = []
    files = FileSet()  # every output checked now, replaced at the end (all or none)
    try:
        state = parse_arguments(argv)
        if state.options.compile:
            from .precompile import compile_all
            return compile_all("nbnumba")
        notes = state.notes
        # ./Fdump.bin is read without -hkl, as the C reads it
        sf_source = load_inputs(state, read_fdump=True, say=_large_grid_note)
        out = state.out
        outputs = _outputs(out, sf_source)
        check_names_given(outputs)
        check_distinct(outputs)  # two outputs that are one file: refused, not overwritten
        for flag, path in outputs:
            if flag.startswith("-"):
                files.reserve(path)
        if out.seed is None:
            out.seed = int(time.time())
        setup = engine.prepare(state.config)
        experiment_files = truth.image_files(setup, out)
        nexus_frames = truth.nexus_records([setup], out.nexus, out.adc, "-nexus")
        started = time.time()
        for note in notes:
            say_error("nbnumba: " + note + "\n")
        say("nbnumba %s - nanoBragg-compatible diffraction simulator" % version())
        for line in report.setup_lines(setup, out, sf_source, state.hkl_file):
            say(line)
        if sf_source == "hkl":
            try:
                fdump.write_fdump(setup.structure_factors, fdump.DUMP_NAME)
                say("writing dump file for next time: %s" % fdump.DUMP_NAME)
            except OutputError:
                say("WARNING: unable to open dump file: %s" % fdump.DUMP_NAME)
        stdout.flush()
        meter = None
        if out.progress:
            meter = ProgressMeter(expected_seconds=engine.planned_seconds(
                setup, _thread_count(state.threads)))
        # one kernel call; Ctrl-C and SIGTERM stop it within a second (nbnumba.running)
        raise_if_stopped()   # a stop a library swallowed while loading: stop before the work
        result = engine.render(setup, device=state.device, threads=state.threads,
                               progress=meter)
        if result.interpolation_switch is not None:
            say(result.interpolation_switch.warning())
        if out.printout:
            _printout(result, out.printout_pixel, say)
        say()
        say(report.solid_angle_line(result))
        with files:
            counts = _write_outputs(result, out, files, say)
            for path, data, what in experiment_files:
                say("writing %s (%s)" % (path, what))
                files.stage(path, data)
            if nexus_frames:
                say("writing %s (NXmx HDF5)" % out.nexus)
                records, spectrum = nexus_frames
                files.stage(out.nexus, nexus.master_bytes(
                    records, frames=(result.image if out.nexus_float else counts)[None],
                    start_time=started, spectrum=spectrum))
            offset_note = truth.sampling_note(setup) if experiment_files or nexus_frames else None
            if offset_note:
                say(offset_note)
        stdout.flush()
        note = failure_note("nbnumba", stdout)
        if note:
            say_error(note + "\n")
        return 0
    except NbnumbaError as exc:
        stdout.flush()
        # a note that explains the failure (a header value won) joins the one error line
        return error("nbnumba", "; ".join([str(exc)] + notes))
    except MemoryError:
        return error("nbnumba", "not enough memory for this image")
    finally:
        files.discard()


def _large_grid_note(text):
    """Say before allocating it that an HKL file asks for a large grid (which the C also
    writes to Fdump.bin)."""
    say_error("nbnumba: note: %s, and written to %s as the C does\n" % (text, fdump.DUMP_NAME))


def _write_outputs(result, out, files, say):
    """Stage the float, SMV, PGM and noise images in the C's order, with its lines;
    returns the counts of the last SMV image (noise, or the int image with -nonoise)."""
    setup = result.setup
    say("writing %s as %d 4-byte floats" % (out.floatfile, setup.fpixels * setup.spixels))
    files.stage(out.floatfile, output.float_bytes(result))
    for line in report.statistics_lines(result):
        say(line)
    ints = output.make_int_image(result, out.int_scale, out.adc)
    say("intfile_scale = %g" % ints.scale)
    say("writing %s as 2-byte integers" % out.intfile)
    adc_header = out.adc if out.smv_extended else None
    files.stage(out.intfile, output.smv_image_bytes(result, ints.pixels, adc_header))
    _warn_overloads(result, out.intfile, int((ints.pixels >= 65535).sum()))
    if out.write_pgm:
        pgm = output.make_pgm(result, out.pgm_scale, ints.scale)
        say("pgm_scale = %g" % pgm.scale)
        say("writing %s as 1-byte integers" % out.pgmfile)
        files.stage(out.pgmfile, output.pgm_bytes(result, pgm))
    if out.write_noise:
        noise = output.make_noise_image(result, out.seed, out.adc)
        say("%s photons on noise image (%d overloads)" % (report.c_g(noise.photons, "%.0f"),
                                                          noise.overloads))
        say("writing %s as 2-byte integers" % out.noisefile)
        files.stage(out.noisefile, output.smv_image_bytes(result, noise.pixels, adc_header))
        _warn_overloads(result, out.noisefile, noise.overloads)
        return noise.pixels
    return ints.pixels


def _warn_overloads(result, path, overloaded):
    """Warn on stderr when most pixels of an SMV image are clipped (-water 100 ...)."""
    line = report.overload_warning(path, overloaded, result.stats.rendered, result.stats.mean)
    if line is not None:
        say_error("nbnumba: " + line + "\n")


def _printout(result, pixel, say):
    """The -printout blocks (the selected pixel, or every rendered pixel)."""
    from nbnumba import diagnostics
    from nbnumba.engine import kernel_inputs
    inputs = kernel_inputs(result.setup)
    for f, s in diagnostics.printout_pixels(result.setup, pixel):
        for line in diagnostics.pixel_report(result, f, s, inputs):
            say(line)


def _thread_count(requested):
    """The CPU threads a render uses: -nthreads (capped by numba's pool) or all of them."""
    import numba
    pool = numba.config.NUMBA_NUM_THREADS
    return min(int(requested), pool) if requested else pool


def main(argv=None):
    """Console entry point: never shows a traceback unless NBNUMBA_DEBUG is set; SIGTERM
    stops a run like Ctrl-C (exit status 143 instead of 130)."""
    with sigterm_as_interrupt():
        return run_guarded(run, sys.argv[1:] if argv is None else argv, "nbnumba",
                           numba=True)


def console():
    """The ``nbnumba`` command: :func:`main`, then a fast exit.

    Interpreter shutdown (tearing down numba, LLVM and the thread pool) takes about 0.2 s;
    every output file is complete and closed at this point, so the process leaves
    without it once stdout and stderr are flushed.
    """
    reopen_closed_standard_streams()
    leave("nbnumba", main())


if __name__ == "__main__":
    console()
