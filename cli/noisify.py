"""``nb-noisify``: the C noisify from the same command line.

Reads a raw float image (``-floatfile``), prints the C's lines and writes the noiseless
SMV image (``-intfile``), its PGM preview and the noise image (``-noisefile``). Errors
are one line on stderr with exit status 9, and no output file is written or replaced.
"""
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from nbnumba.config import ConfigError
from nbnumba.io import smv
from nbnumba.io.atomic import FileSet, OutputError
from nbnumba.io.errors import InputFileError, open_regular
from nbnumba.toolbox import detector as nz
from nbnumba.toolbox import psf as psf_module

from .console import ConsoleStream, leave
from .guard import error, raise_if_stopped, run_guarded, version
from .toolflags import CliError, ToolFlag, build, c_int, c_text, parse

PROG = "nb-noisify"
DESCRIPTION = ("Turn an ideal float image (photons per pixel) into what a detector records: "
               "photon noise, point-spread function, read-out noise, flicker, calibration "
               "error, gain and ADC offset, as the C program noisify.")
EPILOG = ("Lengths in mm, PSF width in um. Later flags override earlier ones. Exit status 0 "
          "on success, 9 on any error.")
#: the largest float image read (bytes)
MAX_INPUT_BYTES = 4 << 30


@dataclass
class NoisifyState:
    """The C noisify's variables after the flags (SI units)."""
    distance: float = 100.0e-3
    detsize_x: float = 102.4e-3
    detsize_y: float = 102.4e-3
    pixel: float = 0.1e-3
    xbeam: float = -1e99
    ybeam: float = -1e99
    xpixels: int = 0
    ypixels: int = 0
    wavelength: float = 1.0      #: Angstrom (written to the header as given)
    psf: Optional[str] = None
    psf_fwhm: float = 46e-6
    psf_radius: int = 0
    psf_method: str = "auto"
    fluence: float = nz.DEFAULT_FLUENCE
    floatfile: Optional[str] = None
    header: Optional[str] = None
    pgmfile: str = "image.pgm"
    intfile: str = "intimage.img"
    noisefile: str = "noiseimage.img"
    noise: bool = True
    write_pgm: bool = True
    readout: float = 0.0
    flicker: float = 0.0
    calibration: float = 0.03
    scale: float = 1.0
    seed: Optional[int] = None
    calib_seed: Optional[int] = None
    adc: float = 40.0
    gain: float = 1.0
    phi: float = 0.0
    osc: float = 1.0
    notes: list = field(default_factory=list)


def _set(name, convert=lambda v: v):
    def apply(state, values):
        setattr(state, name, convert(values[0]))
    return apply


def _detsize(state, values):
    state.detsize_x = state.detsize_y = values[0] / 1000.0


def _pixel_count(value):
    if value < 0:
        raise ValueError(f"{value} is not a pixel count (give a positive number, or leave "
                         "the flag out to take the size from the file)")
    return value


def _detpixels(state, values):
    state.xpixels = state.ypixels = _pixel_count(values[0])


def _psf(state, values):
    if values[0] not in psf_module.PSF_TYPES:
        raise ValueError(f"{values[0]!r} is not a PSF type (use gauss or fiber)")
    state.psf = values[0]


def _psf_method(state, values):
    if values[0] not in ("auto", "direct", "fft"):
        raise ValueError(f"{values[0]!r} is not auto, direct or fft")
    state.psf_method = values[0]


def _off(name):
    def apply(state, values):
        setattr(state, name, False)
    return apply


def _mm(value):
    return value / 1000.0


FLAGS = [
    ToolFlag(("-floatfile", "-floatimage", "-bin"), "input: raw 4-byte float image, photons/pixel",
             _set("floatfile"), kind=c_text, metavar="FILE"),
    ToolFlag(("-header",), "take the header (and image size, pixel, distance, wavelength, beam "
             "centre) from this SMV file", _set("header"), kind=c_text, metavar="FILE"),
    ToolFlag(("-intfile", "-intimage"), "noiseless SMV output (default intimage.img)",
             _set("intfile"), kind=c_text, metavar="FILE"),
    ToolFlag(("-noisefile", "-noiseimage"), "SMV output with noise (default noiseimage.img)",
             _set("noisefile"), kind=c_text, metavar="FILE"),
    ToolFlag(("-pgmfile", "-pgmimage"), "PGM preview of the noiseless image (default image.pgm)",
             _set("pgmfile"), kind=c_text, metavar="FILE"),
    ToolFlag(("-nonoise",), "no noise: write only the noiseless image (PSF applied to it)",
             _off("noise"), nargs=0),
    ToolFlag(("-nopgm",), "do not write the PGM preview", _off("write_pgm"), nargs=0),
    ToolFlag(("-scale",), "factor applied to every input value", _set("scale")),
    ToolFlag(("-fluence",), "fluence, photons/m^2 (default: input in photons/pixel)",
             _set("fluence")),
    ToolFlag(("-gain",), "counts (ADU) per photon (default 1)", _set("gain")),
    ToolFlag(("-adc",), "offset added to every pixel, counts (default 40)", _set("adc")),
    ToolFlag(("-readout_noise", "-readout", "-readnoise"),
             "Gaussian read-out noise, counts rms (default 0)", _set("readout")),
    ToolFlag(("-flicker",), "fractional 1/f noise of the source (default 0)", _set("flicker")),
    ToolFlag(("-calibration",), "static fractional calibration error per pixel (default 0.03)",
             _set("calibration")),
    ToolFlag(("-seed",), "seed of the noise (default: the clock)", _set("seed"), kind=c_int,
             metavar="N"),
    ToolFlag(("-calib_seed",), "seed of the calibration error", _set("calib_seed"), kind=c_int,
             metavar="N"),
    ToolFlag(("-psf",), "point-spread function: gauss or fiber (default none)", _psf,
             kind=c_text, metavar="TYPE"),
    ToolFlag(("-psf_fwhm", "-psf_sigma", "-psf_width", "-psf_size"),
             "PSF full width at half maximum, um (default 46)",
             _set("psf_fwhm", lambda v: v / 1e6), metavar="UM"),
    ToolFlag(("-psf_radius",), "PSF rendering radius, pixels (default 0: automatic)",
             _set("psf_radius"), kind=c_int, metavar="N"),
    ToolFlag(("-psf_method",), "auto (FFT for large radii), direct (the C's sum, "
             "bit-identical) or fft (nbnumba extension)", _psf_method, kind=c_text,
             metavar="METHOD"),
    ToolFlag(("-distance",), "detector distance (header only)", _set("distance", _mm)),
    ToolFlag(("-detsize",), "detector size", _detsize),
    ToolFlag(("-detsize_x",), "detector width", _set("detsize_x", _mm)),
    ToolFlag(("-detsize_y",), "detector height", _set("detsize_y", _mm)),
    ToolFlag(("-detpixels",), "image size, pixels (default: from the file size)", _detpixels,
             kind=c_int, metavar="N"),
    ToolFlag(("-detpixels_x",), "image width, pixels", _set("xpixels", _pixel_count),
             kind=c_int, metavar="N"),
    ToolFlag(("-detpixels_y",), "image height, pixels", _set("ypixels", _pixel_count),
             kind=c_int, metavar="N"),
    ToolFlag(("-pixel",), "pixel size (default 0.1)", _set("pixel", _mm)),
    ToolFlag(("-lambda",), "wavelength, Angstrom (header only)", _set("wavelength")),
    ToolFlag(("-Xbeam",), "beam centre x (header only)", _set("xbeam", _mm)),
    ToolFlag(("-Ybeam",), "beam centre y (header only)", _set("ybeam", _mm)),
    ToolFlag(("-phi",), "phi, degrees (header only)", _set("phi")),
    ToolFlag(("-osc",), "oscillation range, degrees (header only)", _set("osc")),
]


def parser():
    return build(PROG, DESCRIPTION, EPILOG, FLAGS)


def _read_header(path):
    """(SMVImage, the raw header bytes) of a ``-header`` file."""
    image = smv.read_smv(path, "header image")
    with open(path, "rb") as handle:
        raw = handle.read(image.header_size)
    return image, raw


def _dimensions(state, pixels_in_file):
    """The C's rules for the image size (guessing from the file size if needed)."""
    xp, yp, pixels = state.xpixels, state.ypixels, pixels_in_file
    if not xp and not yp:
        state.notes.append("WARNING: guessing xy pixel dimensions.")
        xp = int(math.sqrt(pixels))
        yp = pixels // xp if xp else 0
        while xp > 0 and pixels != xp * yp:
            xp -= 1
            yp = pixels // xp if xp else 0
        if pixels != xp * yp:
            xp, yp = pixels, 1
    if xp and not yp:
        yp = pixels // xp
    if not xp and yp:
        xp = pixels // yp
    return xp, yp


def _load(state):
    """Read the header (if any) and the float image; returns (image, raw header)."""
    raw_header = None
    lines = []
    if state.header is not None:
        lines.append("taking header from %s" % state.header)
        lines.append("reading %s" % state.header)
        head, raw_header = _read_header(state.header)
        state.xpixels, state.ypixels = head.width, head.height
        if head.value("PIXEL_SIZE") is not None:
            state.pixel = head.value("PIXEL_SIZE") / 1000.0
        if head.value("DISTANCE") is not None:
            state.distance = head.value("DISTANCE") / 1000.0
        if head.value("WAVELENGTH") is not None:
            state.wavelength = head.value("WAVELENGTH") / 1e10
        state.detsize_x = state.pixel * state.xpixels
        state.detsize_y = state.pixel * state.ypixels
        if head.value("BEAM_CENTER_X") is not None:
            state.xbeam = head.value("BEAM_CENTER_X") / 1000.0
        if head.value("BEAM_CENTER_Y") is not None:
            state.ybeam = state.detsize_y - head.value("BEAM_CENTER_Y") / 1000.0
    with open_regular(state.floatfile, "float image") as (handle, size):
        if size > MAX_INPUT_BYTES:
            raise InputFileError(f"float image {state.floatfile} is too large ({size} bytes)")
        if size < 4:
            raise InputFileError(f"float image {state.floatfile} is empty")
        xp, yp = _dimensions(state, size // 4)
        lines[len(lines):] = state.notes
        lines.append("importing %d pixel intensites: %s" % (xp * yp, state.floatfile))
        if xp <= 0 or yp <= 0 or 4 * xp * yp != size:
            raise InputFileError(
                f"float image {state.floatfile} has {size} bytes, not the {4 * xp * yp} of "
                f"{xp}x{yp} 4-byte floats (give -detpixels_x/-detpixels_y or -header)")
        data = np.frombuffer(handle.read(size), dtype="<f4").reshape(yp, xp)
    state.xpixels, state.ypixels = xp, yp
    state.detsize_x = state.pixel * xp
    state.detsize_y = state.pixel * yp
    if state.xbeam <= -1e99:
        state.xbeam = state.detsize_x / 2.0
    if state.ybeam <= -1e99:
        state.ybeam = state.detsize_y / 2.0
    return data, raw_header, lines


def _summary(state, seed, calib_seed):
    """The C's set-up report (its printf calls, joined and split at the line breaks:
    a negative -psf_radius leaves the PSF line unterminated, as in the C)."""
    s = state
    text = ("  distance=%g detsize=%gx%g  pixel=%g meters (%dx%d pixels)\n"
            % (s.distance, s.detsize_x, s.detsize_y, s.pixel, s.xpixels, s.ypixels))
    text += "  Xbeam=%g Ybeam=%g\n" % (s.xbeam, s.ybeam)
    fwhm_um = nz.single(s.psf_fwhm) * 1e6
    if s.psf == "gauss":
        text += "  Gaussian PSF fwhm = %g um " % fwhm_um
    if s.psf == "fiber":
        text += "  fiber PSF fwhm = %g um " % fwhm_um
    if s.psf is not None and s.psf_radius == 0:
        text += "  with automatic rendering radius\n"
    if s.psf is not None and s.psf_radius >= 0:
        text += "  with rendering radius: %d\n" % s.psf_radius
    text += ("  seed: %d\n  calibration noise seed: %d\n" % (seed, calib_seed)
             + "  calibration_noise = %g %%\n" % (s.calibration * 100)
             + "  input file scale = %g\n" % s.scale
             + "  readout_noise = %g ADU\n" % s.readout
             + "  flicker_noise = %g %%\n" % (s.flicker * 100)
             + "  quantum_gain = %g ADU/photon\n" % s.gain
             + "  adc_offset = %g ADU\n\n" % s.adc)
    return text.split("\n")[:-1]


def _smv_header(state):
    fields = [("SIZE1", "%d" % state.xpixels, True), ("SIZE2", "%d" % state.ypixels, True),
              ("PIXEL_SIZE", "%g" % (state.pixel * 1000.0), True),
              ("DISTANCE", "%g" % (state.distance * 1000.0), True),
              ("WAVELENGTH", "%g" % state.wavelength, True),
              ("BEAM_CENTER_X", "%g" % (state.xbeam * 1000.0), True),
              ("BEAM_CENTER_Y", "%g" % ((state.detsize_y - state.ybeam) * 1000), True),
              ("PHI", "%g" % state.phi, True), ("OSC_START", "%g" % state.phi, True),
              ("OSC_RANGE", "%g" % state.osc, True), ("TIME", "%g" % state.osc, True),
              ("DETECTOR_SN", "000", True), ("BEAMLINE", "fake", True)]
    return smv.header_text(fields)


def _smv(header, raw_header, pixels):
    if raw_header is not None:
        return [raw_header, memoryview(np.ascontiguousarray(pixels, dtype="<u2")).cast("B")]
    return smv.smv_bytes(header, pixels)


def run(argv, stdout=None):
    """Run noisify from C-style arguments; returns the exit status."""
    stdout = ConsoleStream(stdout if stdout is not None else sys.stdout)

    def say(text=""):
        stdout.write(text + "\n")

    files = FileSet()
    try:
        state = parse(parser(), FLAGS, argv, NoisifyState())
        if state.floatfile is None:
            raise CliError("no input: give -floatfile FILE (a raw 4-byte float image)")
        if state.psf is not None and not nz.single(state.psf_fwhm) > 0.0:
            raise CliError("argument -psf_fwhm: the PSF has zero size (give a positive width)")
        if state.psf is not None and not math.isfinite(nz.single(state.psf_fwhm)):
            raise CliError("argument -psf_fwhm: %g um is beyond single precision, where the "
                           "PSF width is kept (give a finite width)" % (state.psf_fwhm * 1e6))
        if not state.pixel > 0.0:
            raise CliError("argument -pixel: the pixel size must be positive")
        paths = [state.intfile] + ([state.pgmfile] if state.write_pgm else [])
        paths += [state.noisefile] if state.noise else []
        for path in paths:
            files.reserve(path)
        image, raw_header, load_lines = _load(state)
        seed = -state.seed if state.seed is not None else -int(time.time())
        calib = -state.calib_seed if state.calib_seed is not None else nz.DEFAULT_CALIB_SEED
        noise = state.noise
        if not noise:
            state.calibration = state.readout = state.flicker = 0.0
        say("noisify - add noise to pixels - nbnumba %s" % version())
        for line in load_lines + _summary(state, seed, calib):
            say(line)
        pending = []
        raise_if_stopped()   # a stop a library swallowed while loading: stop before the work
        result = nz.noisify(
            image, scale=state.scale, fluence=state.fluence, gain=state.gain, adc=state.adc,
            readout=state.readout, flicker=state.flicker, calibration=state.calibration,
            seed=-seed, calib_seed=(state.calib_seed if state.calib_seed is not None else None),
            noise=noise, psf=state.psf, psf_fwhm=state.psf_fwhm, pixel_size=state.pixel,
            psf_radius=state.psf_radius, psf_method=state.psf_method, say=pending.append,
            name=state.floatfile)
        header = _smv_header(state)
        pixels = state.xpixels * state.ypixels
        # the C prints the noiseless part, writes its files, then the noise part
        split = _noise_start(pending, noise, state.psf is not None)
        with files:
            for line in pending[:split]:
                say(line)
            say("writing %s as %d 2-byte integers" % (state.intfile, pixels))
            files.stage(state.intfile, _smv(header, raw_header, result.int_pixels))
            if state.write_pgm:
                say("writing %s as 1-byte integers" % state.pgmfile)
                head = ("P5\n%d %d\n# pixels scaled by %g\n255\n"
                        % (state.xpixels, state.ypixels, 1.0)).encode("ascii")
                files.stage(state.pgmfile, [head, result.pgm_pixels.tobytes()])
            for line in pending[split:]:
                say(line)
            if noise:
                say("writing %s as 2-byte integers" % state.noisefile)
                files.stage(state.noisefile, _smv(header, raw_header, result.noise_pixels))
        stdout.flush()
        return 0
    except (CliError, ConfigError, InputFileError, OutputError) as exc:
        stdout.flush()
        return error(PROG, str(exc))
    except MemoryError:
        return error(PROG, "not enough memory for this image")
    finally:
        files.discard()


def _noise_start(lines, noise, blur):
    """Index of the first line of the noise part (after the noiseless files)."""
    if not noise:
        return len(lines)
    for i, line in enumerate(lines):
        if line.endswith("photons on noise image before PSF") or \
                (not blur and "photons on noise image (" in line):
            return i
    return len(lines)


def main(argv=None):
    return run_guarded(run, sys.argv[1:] if argv is None else argv, PROG, numba=True)


def console():
    """The ``nb-noisify`` command."""
    leave(PROG, main())


if __name__ == "__main__":
    console()
