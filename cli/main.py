"""``nbnumba``: the nanoBragg-compatible command-line simulator.

Parses the C program's flags, renders the image, prints the C's summary and statistics
lines and writes the same files (float, SMV, PGM, noise, Fdump.bin). Errors are one line
on stderr with exit status 9; no output file is written or replaced by a failed run.
"""
import dataclasses
import os
import re
import sys
import time

import numpy as np

from nbnumba import _jit, engine, output, running
from nbnumba.errors import NbnumbaError
from nbnumba.progress import ProgressMeter
from nbnumba.io import fdump, nexus, smv
from nbnumba.io.atomic import FileSet, OutputError, check_distinct, check_names_given

from . import report, truth
from .console import (ConsoleStream, failure_note, flush_quietly, leave,
                      reopen_closed_standard_streams, sigterm_as_interrupt)
from .guard import error, raise_if_stopped, run_guarded, say_error, version
from .parse import CliError, load_inputs, parse_arguments


def _outputs(out, sf_source=None, panels=1):
    """(flag, path) of every file the run writes; the dump file when ``-hkl`` is read;
    with ``--panel-files``, the images' files of each of ``panels`` panels. An empty
    name given to any of them is refused (:class:`OutputError`) before ``--panel-files``
    derives names from it."""
    images = [("-floatfile", out.floatfile), ("-intfile", out.intfile)]
    if out.write_pgm:
        images.append(("-pgmfile", out.pgmfile))
    if out.write_noise:
        images.append(("-noisefile", out.noisefile))
    others = [(flag, p) for flag, p in (("-expt", out.expt), ("-xds_inp", out.xds_inp),
                                        ("-nexus", out.nexus)) if p is not None]
    check_names_given(images + others)
    if out.panel_files:
        images = [(flag, panel_file_name(p, k)) for flag, p in images for k in range(panels)]
    paths = images[:2] + others + images[2:]
    if sf_source == "hkl":
        paths.append(("the structure-factor dump", fdump.DUMP_NAME))
    return paths


_NUMBERED = re.compile(r"^(?P<head>.*?)(?P<digits>[0-9]{1,12})(?P<ext>\.[^0-9/]*)$")


def panel_file_name(path, index):
    """The file of panel ``index`` of an image file name: ``_pNN`` before the image
    number of a numbered name (``sim_00001.img`` -> ``sim_p03_00001.img``, so that each
    panel's images form a numbered series of their own), else before the extension."""
    directory, name = os.path.split(path)
    match = _NUMBERED.match(name)
    if match and not (match["head"] and match["head"][-1].isdigit()):
        name = "%sp%02d_%s%s" % (match["head"], index, match["digits"], match["ext"])
    else:
        stem, ext = os.path.splitext(name)
        name = "%s_p%02d%s" % (stem, index, ext)
    return os.path.join(directory, name)


def _panel_count(config):
    """Panels of the detector a configuration asks for (before it is prepared)."""
    det = config.detector
    if det.preset is not None:
        from nbnumba.presets import preset
        return preset(det.preset).panel_count
    return len(det.panels) if det.panels is not None else 1


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
        if state.options.server:
            return error("nbnumba", "--server is a command of its own, given first and "
                         "alone: nbnumba --server start|stop|status")
        if state.options.compile:
            from .precompile import compile_all
            return compile_all("nbnumba")
        notes = state.notes
        # ./Fdump.bin is read without -hkl, as the C reads it
        sf_source = load_inputs(state, read_fdump=True,
                                say=lambda text: _large_grid_note(text, state.hkl_file))
        out = state.out
        panels = _panel_count(state.config)
        if out.panel_files and panels < 2:
            raise CliError("--panel-files writes one file per panel of a detector of "
                           "several (--detector, --experiment); this one has one panel")
        outputs = _outputs(out, sf_source, panels)
        check_distinct(outputs)  # two outputs that are one file: refused, not overwritten
        for flag, path in outputs:
            if flag.startswith("-"):
                files.reserve(path)
        if out.seed is None:
            out.seed = int(time.time())
        setup = engine.prepare(state.config)
        experiment_files = truth.image_files(setup, out)
        nexus_frames = truth.nexus_frames([setup], out.nexus, "-nexus")
        started = time.time()
        for note in notes:
            say_error("nbnumba: " + note + "\n")
        say("nbnumba %s - nanoBragg-compatible diffraction simulator" % version())
        for line in report.setup_lines(setup, out, sf_source, state.hkl_file,
                                       cell_from=state.cell_from):
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
            int_scale = _write_outputs(result, out, files, say,
                                       _thread_count(state.threads))
            for path, data, what in experiment_files:
                say("writing %s (%s)" % (path, what))
                files.stage(path, data)
            if nexus_frames:
                say("writing %s (NXmx HDF5)" % out.nexus)
                files.stage(out.nexus, nexus.master_bytes(
                    nexus_frames.records, frames=_nexus_pixels(result, out, int_scale)[None],
                    start_time=started, spectrum=nexus_frames.spectrum,
                    pixel_mask=nexus_frames.pixel_mask))
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


def _large_grid_note(text, hkl_file):
    """Say before allocating it that the structure factors ask for a large grid (which
    the C also writes to Fdump.bin when they come from an HKL file)."""
    dump = ", and written to %s as the C does" % fdump.DUMP_NAME if hkl_file else ""
    say_error("nbnumba: note: %s%s\n" % (text, dump))


def _write_outputs(result, out, files, say, threads):
    """Stage the float, SMV, PGM and noise images in the C's order, with its lines (with
    ``--panel-files``, each image one file per panel); returns the int image's scale
    (counts per photon). With more than one thread, the noise image (one serial random
    stream) is drawn in a thread of its own while the others are made and staged."""
    setup = result.setup
    noise = None
    if out.write_noise and threads > 1:
        noise = running.Background(lambda: output.make_noise_image(result, out.seed, out.adc),
                                   name="nbnumba-noise")
    per_panel = _PanelFiles(result, files) if out.panel_files else None
    say("writing %s as %d 4-byte floats" % (_named(out.floatfile, per_panel),
                                              setup.fpixels * setup.spixels))
    if per_panel:
        per_panel.floats(out.floatfile)
    else:
        files.stage(out.floatfile, output.float_bytes(result))
    for line in report.statistics_lines(result):
        say(line)
    ints = output.make_int_image(result, out.int_scale, out.adc)
    say("intfile_scale = %g" % ints.scale)
    say("writing %s as 2-byte integers" % _named(out.intfile, per_panel))
    adc_header = out.adc if out.smv_extended else None
    if per_panel:
        per_panel.smv(out.intfile, ints.pixels, adc_header)
    else:
        files.stage(out.intfile, output.smv_image_bytes(result, ints.pixels, adc_header))
    _warn_overloads(result, out.intfile, int((ints.pixels >= 65535).sum()))
    if out.write_pgm:
        pgm = output.make_pgm(result, out.pgm_scale, ints.scale)
        say("pgm_scale = %g" % pgm.scale)
        say("writing %s as 1-byte integers" % _named(out.pgmfile, per_panel))
        if per_panel:
            per_panel.pgm(out.pgmfile, pgm)
        else:
            files.stage(out.pgmfile, output.pgm_bytes(result, pgm))
    if out.write_noise:
        noise = (noise.result() if noise is not None
                 else output.make_noise_image(result, out.seed, out.adc))
        say("%s photons on noise image (%d overloads)" % (report.c_g(noise.photons, "%.0f"),
                                                          noise.overloads))
        say("writing %s as 2-byte integers" % _named(out.noisefile, per_panel))
        if per_panel:
            per_panel.smv(out.noisefile, noise.pixels, adc_header)
        else:
            files.stage(out.noisefile, output.smv_image_bytes(result, noise.pixels,
                                                              adc_header))
        _warn_overloads(result, out.noisefile, noise.overloads)
    return ints.scale


def _named(path, per_panel):
    """A file's name in the output lines: with ``--panel-files``, the first and the last
    panel's."""
    if per_panel is None:
        return path
    return "%s ... %s (one file per panel)" % (panel_file_name(path, 0), panel_file_name(
        path, len(per_panel.panels) - 1))


class _PanelFiles:
    """``--panel-files``: stage each panel's pixels of an image as a file of its own,
    an SMV file with a header stating that panel's geometry."""

    def __init__(self, result, files):
        self.result, self.files = result, files
        self.panels = result.setup.panels

    def _each(self, path, image):
        for k in range(len(self.panels)):
            yield k, panel_file_name(path, k), np.ascontiguousarray(
                self.panels.pixels_of(image, k))

    def floats(self, path):
        for _, name, pixels in self._each(path, self.result.image):
            self.files.stage(name, memoryview(pixels.astype("<f4")).cast("B"))

    def smv(self, path, pixels, adc_header):
        setup = self.result.setup
        for k, name, part in self._each(path, pixels):
            alone = dataclasses.replace(setup, geometry=self.panels.panel_geometry(
                setup.geometry, k), panels=None, mask=None)
            self.files.stage(name, smv.smv_bytes(output.smv_header(alone, adc_header), part))

    def pgm(self, path, pgm):
        for _, name, part in self._each(path, pgm.pixels):
            header = ("P5\n%d %d\n# pixels scaled by %g\n255\n"
                      % (part.shape[1], part.shape[0], pgm.scale)).encode("ascii")
            self.files.stage(name, [header, memoryview(part).cast("B")])


def _nexus_pixels(result, out, int_scale):
    """What the -nexus file holds: the float image (-nexus_float), or the counts of the
    noise image (of the int image with -nonoise) without the -adc offset that the SMV
    files carry: NXmx counts are what a counting detector reads (the same Poisson
    deviates, the same scale)."""
    if out.nexus_float:
        return result.image
    if out.write_noise:
        return output.make_noise_image(result, out.seed, adc=0.0).pixels
    return output.make_int_image(result, int_scale, adc=0.0).pixels


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
