"""``nb-nonbragg``: the C nonBragg (amorphous background) from the same command line.

Reads a structure-factor table (``-stol``, ``-4stol`` or ``-Q``), prints the C's
set-up and statistics lines and writes the float image, the SMV integer image, the PGM
preview and the Poisson noise image. Errors are one line on stderr with exit status 9,
and no output file is written or replaced.
"""
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from nbnumba import images, rng
from nbnumba.config import ConfigError
from nbnumba.constants import RTD
from nbnumba.io import smv, sourcefile
from nbnumba.io.atomic import FileSet, OutputError
from nbnumba.io.errors import InputFileError, read_text
from nbnumba.toolbox.amorphous import NonBraggConfig, StolTable, nonbragg, restate

from .console import ConsoleStream, leave
from .guard import error, raise_if_stopped, run_guarded, version
from .report import c_g
from .toolflags import CliError, ToolFlag, build, c_int, c_text, parse

PROG = "nb-nonbragg"
DESCRIPTION = ("Render the diffuse scattering of an amorphous sample (water, air, ...) from "
               "a table of its structure factor versus sin(theta)/lambda, as the C program "
               "nonBragg.")
EPILOG = ("Lengths in mm, angles in degrees unless stated. Later flags override earlier "
          "ones. Exit status 0 on success, 9 on any error.")


@dataclass
class NonBraggState:
    """The parsed command line: the configuration plus files."""
    config: NonBraggConfig = field(default_factory=NonBraggConfig)
    stol_file: Optional[str] = None
    stol_unit: str = "stol"
    source_file: Optional[str] = None
    floatfile: str = "floatimage.bin"
    intfile: str = "intimage.img"
    pgmfile: str = "image.pgm"
    noisefile: str = "noiseimage.img"
    noise: bool = True
    write_pgm: bool = True
    int_scale: float = 0.0
    pgm_scale: float = 0.0
    adc: float = 40.0
    seed: Optional[int] = None
    img: Optional[str] = None
    ignore: list = field(default_factory=list)
    stolout: str = "output.stol"     #: with -img, the C writes this table by default


def _cfg(name, convert=lambda v: v):
    def apply(state, values):
        setattr(state.config, name, convert(values[0]))
    return apply


def _cfg_pivot(name, pivot, convert):
    def apply(state, values):
        setattr(state.config, name, convert(values[0]))
        state.config.pivot = pivot
    return apply


def _own(name, convert=lambda v: v):
    def apply(state, values):
        setattr(state, name, convert(values[0]))
    return apply


def _vector(name):
    def apply(state, values):
        setattr(state.config, name, tuple(values))
    return apply


def _flag(name, value, own=False):
    def apply(state, values):
        setattr(state if own else state.config, name, value)
    return apply


def _mm(v):
    return v / 1000.0


def _deg(v):
    return v / RTD


def _mrad(v):
    return v / 1000.0


def _stol(unit):
    def apply(state, values):
        state.stol_file = values[0]
        state.stol_unit = unit
    return apply


def _samplesize(state, values):
    c = state.config
    c.sample_x = c.sample_y = c.sample_z = values[0] / 1000


def _detsize(state, values):
    state.config.detsize_x = state.config.detsize_y = values[0] / 1000.0


def _detpixels(state, values):
    state.config.xpixels = state.config.ypixels = values[0]


def _divergence(state, values):
    state.config.hdivrange = state.config.vdivrange = values[0] / 1000.0


def _divsteps(state, values):
    state.config.hdivsteps = state.config.vdivsteps = values[0]


def _polar(state, values):
    state.config.polarization = values[0]
    state.config.nopolar = False


def _pivot(state, values):
    text = values[0]
    if "sample" in text:
        state.config.pivot = "sample"
    elif "beam" in text:
        state.config.pivot = "beam"
    else:
        raise ValueError(f"{text!r} is not a pivot (use beam or sample)")


def _energy(state, values):
    if values[0] == 0.0:
        raise ValueError("the photon energy must not be 0")
    state.config.wavelength = (12398.42 / values[0]) / 1.0e10


def _roi(state, values):
    state.config.roi = tuple(values)


def _noisefile(state, values):
    state.noisefile = values[0]
    state.noise = True


def _ignored(state, values):
    pass


FILE = dict(kind=c_text, metavar="FILE")
N = dict(kind=c_int, metavar="N")
V3 = dict(nargs=3, metavar="X")

def _ignore(state, values):
    if not -1.0 < values[0] < 65536.0:   # the C keeps it in an unsigned short
        raise ValueError(f"{values[0]:g} is not an SMV pixel value (0 to 65535)")
    state.ignore.append(values[0])


FLAGS = [
    ToolFlag(("-img",), "SMV image to compare with: its header gives the detector (flags "
             "override it) and its pixels the -stolout table", _own("img"), **FILE),
    ToolFlag(("-ignore",), "a pixel value of the -img image that marks an invalid pixel "
             "(repeatable)", _ignore, metavar="COUNTS"),
    ToolFlag(("-stolout",), "with -img: write the measured sin(theta)/lambda, F, rmsd, n "
             "table here (default output.stol)", _own("stolout"), **FILE),
    ToolFlag(("-stol",), "table of sin(theta)/lambda (1/A) and F for one molecule",
             _stol("stol"), **FILE),
    ToolFlag(("-4stol",), "like -stol with 4 sin(theta)/lambda", _stol("4stol"), **FILE),
    ToolFlag(("-Q",), "like -stol with Q = 4 pi sin(theta)/lambda", _stol("Q"), **FILE),
    ToolFlag(("-sourcefile",), "sources: X Y Z weight lambda per line (m)",
             _own("source_file"), **FILE),
    ToolFlag(("-floatfile", "-floatimage"), "float output (default floatimage.bin)",
             _own("floatfile"), **FILE),
    ToolFlag(("-intfile", "-intimage"), "SMV output (default intimage.img)", _own("intfile"),
             **FILE),
    ToolFlag(("-pgmfile", "-pgmimage"), "PGM output (default image.pgm)", _own("pgmfile"),
             **FILE),
    ToolFlag(("-noisefile", "-noiseimage"), "SMV output with Poisson noise (default "
             "noiseimage.img)", _noisefile, **FILE),
    ToolFlag(("-nonoise",), "no noise image", _flag("noise", False, own=True), nargs=0),
    ToolFlag(("-nopgm",), "no PGM image", _flag("write_pgm", False, own=True), nargs=0),
    ToolFlag(("-noreject",), "accepted (no effect, as in the C)", _ignored, nargs=0),
    ToolFlag(("-scale",), "counts per photon of the SMV image (default 55000/max)",
             _own("int_scale")),
    ToolFlag(("-pgmscale",), "grey levels per photon of the PGM (default 250/(5 rmsd))",
             _own("pgm_scale")),
    ToolFlag(("-adc",), "offset added to the integer images, counts (default 40)", _own("adc")),
    ToolFlag(("-seed",), "seed of the noise image (default: the clock)", _own("seed"), **N),
    ToolFlag(("-coherent",), "accepted (no effect, as in the C)", _ignored, nargs=0),
    ToolFlag(("-printout",), "accepted; prints nothing (the C prints every pixel's sums)",
             _ignored, nargs=0),
    ToolFlag(("-printout_pixel",), "accepted; prints nothing (the C prints the pixel's sums)",
             _ignored, nargs=2, kind=c_int, metavar="N"),
    ToolFlag(("-noprogress",), "accepted (no progress lines are printed)", _ignored, nargs=0),
    ToolFlag(("-progress",), "accepted (no progress lines are printed)", _ignored, nargs=0),
    ToolFlag(("-samplesize", "-sample_size"), "edge of a cube-shaped sample (default 0.1)",
             _samplesize),
    ToolFlag(("-thickness", "-sample_thick", "-sample_x", "-thick"),
             "sample thickness along the beam (default 0.1)", _cfg("sample_x", lambda v: v / 1000)),
    ToolFlag(("-width", "-sample_width", "-sample_y"), "sample width (default 0.1)",
             _cfg("sample_y", lambda v: v / 1000)),
    ToolFlag(("-height", "-sample_height", "-sample_z", "-heigh", "-sample_heigh"),
             "sample height (default 0.1)",
             _cfg("sample_z", lambda v: v / 1000)),
    ToolFlag(("-density", "-sample_density", "-sample_den"), "density, g/cm^3 (default 1)",
             _cfg("density", lambda v: v * 1e6)),
    ToolFlag(("-molecules", "-sample_molecules"), "number of molecules (overrides -density)",
             _cfg("molecules")),
    ToolFlag(("-MW", "-molecular_weight", "-molecular"), "molecular weight, g/mol (default 18)",
             _cfg("molecular_weight")),
    ToolFlag(("-Xbeam",), "beam centre x (pivot beam)", _cfg_pivot("xbeam", "beam", _mm)),
    ToolFlag(("-Ybeam",), "beam centre y (pivot beam)", _cfg_pivot("ybeam", "beam", _mm)),
    ToolFlag(("-Xclose",), "closest point x (pivot sample)", _cfg_pivot("xclose", "sample", _mm)),
    ToolFlag(("-Yclose",), "closest point y (pivot sample)", _cfg_pivot("yclose", "sample", _mm)),
    ToolFlag(("-ORGX",), "closest point x, pixels (pivot sample)",
             _cfg_pivot("orgx", "sample", float)),
    ToolFlag(("-ORGY",), "closest point y, pixels (pivot sample)",
             _cfg_pivot("orgy", "sample", float)),
    ToolFlag(("-pivot",), "rotate the detector about the beam spot or the sample", _pivot,
             kind=c_text, metavar="beam|sample"),
    ToolFlag(("-xdet_vector",), "detector fast axis (default 0 0 1)", _vector("xdet_vector"), **V3),
    ToolFlag(("-ydet_vector",), "detector slow axis (default 0 -1 0)", _vector("ydet_vector"),
             **V3),
    ToolFlag(("-zdet_vector",), "accepted (the normal is xdet x ydet, as in the C)",
             _ignored, **V3),
    ToolFlag(("-beam_vector",), "beam direction (default 1 0 0)", _vector("beam_vector"), **V3),
    ToolFlag(("-polar_vector",), "E-vector of the beam (default 0 0 1)", _vector("polar_vector"),
             **V3),
    ToolFlag(("-spindle_axis",), "accepted (no effect on the image)", _ignored, **V3),
    ToolFlag(("-twotheta_axis",), "detector two-theta axis (default 0 1 0)",
             _vector("twotheta_axis"), **V3),
    ToolFlag(("-pix0_vector",), "accepted (no effect: the pivot decides, as in the C)",
             _ignored, **V3),
    ToolFlag(("-distance",), "sample-to-beam-spot distance (default 100; pivot beam)",
             _cfg_pivot("distance", "beam", _mm)),
    ToolFlag(("-close_distance",), "sample-to-detector-plane distance (pivot sample)",
             _cfg_pivot("close_distance", "sample", _mm)),
    ToolFlag(("-source_distance",), "source distance (default 10000)",
             _cfg("source_distance", _mm)),
    ToolFlag(("-twotheta",), "detector two-theta, degrees (pivot sample)",
             _cfg_pivot("twotheta", "sample", _deg)),
    ToolFlag(("-detector_rotx",), "detector rotation about x, degrees",
             (lambda s, v: _set_rot(s, 0, v[0]))),
    ToolFlag(("-detector_roty",), "detector rotation about y, degrees",
             (lambda s, v: _set_rot(s, 1, v[0]))),
    ToolFlag(("-detector_rotz",), "detector rotation about z, degrees",
             (lambda s, v: _set_rot(s, 2, v[0]))),
    ToolFlag(("-detsize",), "detector size (default 102.4)", _detsize),
    ToolFlag(("-detsize_x",), "detector width", _cfg("detsize_x", _mm)),
    ToolFlag(("-detsize_y",), "detector height", _cfg("detsize_y", _mm)),
    ToolFlag(("-detpixels",), "detector pixels per side", _detpixels, **N),
    ToolFlag(("-detpixels_x",), "detector pixels across", _cfg("xpixels"), **N),
    ToolFlag(("-detpixels_y",), "detector pixels down", _cfg("ypixels"), **N),
    ToolFlag(("-curved_det",), "all pixels at the same distance from the sample",
             _flag("curved_detector", True), nargs=0),
    ToolFlag(("-pixel",), "pixel size (default 0.1)", _cfg("pixel_size", _mm)),
    ToolFlag(("-point_pixel",), "inverse-square law only (no obliquity)",
             _flag("point_pixel", True), nargs=0),
    ToolFlag(("-polar",), "Kahn polarization factor (default 0)", _polar),
    ToolFlag(("-nopolar",), "no polarization factor", _flag("nopolar", True), nargs=0),
    ToolFlag(("-oversample",), "sub-pixels per pixel edge (default 1)", _cfg("oversample"), **N),
    ToolFlag(("-roi",), "render only xmin xmax ymin ymax (pixels, inclusive)", _roi, nargs=4,
             kind=c_int, metavar="N"),
    ToolFlag(("-lambda", "-wavelength", "-wave"), "wavelength, Angstrom (default 1)",
             _cfg("wavelength", lambda v: v / 1.0e10)),
    ToolFlag(("-energy",), "photon energy, eV", _energy),
    ToolFlag(("-fluence",), "fluence, photons/m^2", _cfg("fluence")),
    ToolFlag(("-flux",), "flux, photons/s", _cfg("flux")),
    ToolFlag(("-exposure",), "exposure time, s", _cfg("exposure")),
    ToolFlag(("-beamsize",), "beam size (default 0.1)", _cfg("beamsize", lambda v: v / 1000)),
    ToolFlag(("-dispersion",), "spectral dispersion, percent",
             _cfg("dispersion", lambda v: v / 100.0)),
    ToolFlag(("-dispsteps",), "wavelengths in the dispersion", _cfg("dispsteps"), **N),
    ToolFlag(("-divergence",), "beam divergence, mrad", _divergence),
    ToolFlag(("-hdivrange",), "horizontal divergence, mrad", _cfg("hdivrange", _mrad)),
    ToolFlag(("-vdivrange",), "vertical divergence, mrad", _cfg("vdivrange", _mrad)),
    ToolFlag(("-hdivstep",), "horizontal divergence step, mrad", _cfg("hdivstep", _mrad)),
    ToolFlag(("-vdivstep",), "vertical divergence step, mrad", _cfg("vdivstep", _mrad)),
    ToolFlag(("-hdivsteps",), "horizontal divergence steps", _cfg("hdivsteps"), **N),
    ToolFlag(("-vdivsteps",), "vertical divergence steps", _cfg("vdivsteps"), **N),
    ToolFlag(("-divsteps",), "divergence steps in both directions", _divsteps, **N),
    ToolFlag(("-round_div",), "cut the divergence grid to an ellipse (default)",
             _flag("round_div", True), nargs=0),
    ToolFlag(("-square_div",), "keep the whole divergence grid", _flag("round_div", False),
             nargs=0),
    ToolFlag(("-phi",), "phi, degrees (header only)", _cfg("phi0", _deg)),
    ToolFlag(("-osc",), "oscillation, degrees (header only)", _cfg("osc", _deg)),
    ToolFlag(("-phistep",), "phi step, degrees (header only)", _cfg("phistep", _deg)),
    ToolFlag(("-phisteps",), "phi steps (header only)", _cfg("phisteps"), **N),
]


def _set_rot(state, axis, degrees):
    rot = list(state.config.detector_rot)
    rot[axis] = degrees / RTD
    state.config.detector_rot = tuple(rot)


def parser():
    return build(PROG, DESCRIPTION, EPILOG, FLAGS)


_SEPARATORS = re.compile(r"[ \t,;:!]+")
#: largest -stol table read (bytes)
MAX_TABLE_BYTES = sourcefile.MAX_FILE_BYTES


def read_stol(path, unit="stol"):
    """A ``-stol`` table: one ``sin(theta)/lambda F`` pair per non-blank line (a missing F
    is 0, further columns are ignored). Words, comments and non-increasing
    sin(theta)/lambda are errors naming the file and line."""
    text = read_text(path, "scattering table", MAX_TABLE_BYTES)
    xs, fs = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        tokens = [t for t in _SEPARATORS.split(line.rstrip("\r")) if t]
        if not tokens:
            continue
        values = []
        for token in tokens[:2]:
            try:
                value = float(token)
            except ValueError:
                raise InputFileError(f"scattering table {path} line {number}: {token!r} is not "
                                     "a number (expected sin(theta)/lambda and F)") from None
            if not np.isfinite(value):
                raise InputFileError(f"scattering table {path} line {number}: {token!r} is not "
                                     "a finite number")
            values.append(value)
        if xs and values[0] <= xs[-1]:
            raise InputFileError(f"scattering table {path} line {number}: sin(theta)/lambda "
                                 f"{values[0]:g} does not increase")
        xs.append(values[0])
        fs.append(values[1] if len(values) > 1 else np.nan)
    if not xs:
        raise InputFileError(f"scattering table {path}: no data")
    if all(np.isnan(fs)):
        raise InputFileError(f"scattering table {path}: no F values (second column)")
    try:
        return StolTable(np.array(xs), np.array(fs), unit)
    except ConfigError as exc:
        raise InputFileError(f"scattering table {path}: {exc}") from None


def _ingest_img(state):
    """The -img header's values (before the flags, which override them); its pixels."""
    image = smv.read_smv(state.img, "-img image")
    c = state.config
    c.xpixels, c.ypixels = image.width, image.height
    g = image.geometry()
    c.pixel_size = g.get("PIXEL_SIZE", c.pixel_size)
    c.detsize_x = c.pixel_size * c.xpixels
    c.detsize_y = c.pixel_size * c.ypixels
    c.distance = g.get("DISTANCE", c.distance)
    c.close_distance = g.get("CLOSE_DISTANCE", c.close_distance)
    c.wavelength = g.get("WAVELENGTH", c.wavelength)
    c.xbeam = g.get("BEAM_CENTER_X", c.xbeam)
    if "BEAM_CENTER_Y" in g:   # nonBragg flips the -img image's y, as nanoBragg a mask's
        c.ybeam = c.detsize_y - g["BEAM_CENTER_Y"]
    c.orgx = g.get("ORGX", c.orgx)
    c.orgy = g.get("ORGY", c.orgy)
    c.phi0 = g.get("PHI", c.phi0)
    c.osc = g.get("OSC_RANGE", c.osc)
    return image.data[:c.xpixels * c.ypixels].astype(np.float32)


def _stolout(result, path, files, say):
    from nbnumba.toolbox.stolfit import MIN_PIXELS, fit_table
    rows = fit_table(result.observed_F)
    text = []
    last = 0
    for b, (stol, median, avg, rmsd, n) in enumerate(rows, start=2):
        last = n
        if n > MIN_PIXELS:
            text.append("%s %s %s  %d\n" % (c_g(stol), c_g(avg), c_g(rmsd), n))
        else:
            # an empty bin has no mean (the C prints an uninitialised value): 0
            say("WARNING: not enough pixels in bin= %d n=%d stol= %s median= %s avg_arej= %s"
                % (b, n, c_g(stol), c_g(median), c_g(avg if n > 0 else 0.0)))
    files.stage(path, "".join(text).encode("ascii"))
    say("wrote %s as %d lines of text" % (path, len(text)))
    return last


def _header(fields):
    return smv.header_text(fields)


def run(argv, stdout=None):
    """Run nonBragg from C-style arguments; returns the exit status."""
    stdout = ConsoleStream(stdout if stdout is not None else sys.stdout)

    def say(text=""):
        stdout.write(text + "\n")

    files = FileSet()
    try:
        state = NonBraggState()
        prior = parse(parser(), FLAGS, argv, NonBraggState())
        observed = None
        if prior.img is not None:
            state.img = prior.img
            observed = _ingest_img(state)
        state = parse(parser(), FLAGS, argv, state)
        state.ignore = prior.ignore
        if state.stol_file is None:
            raise CliError("no scattering table: give -stol FILE (sin(theta)/lambda and F)")
        paths = [state.floatfile, state.intfile]
        paths += [state.pgmfile] if state.write_pgm else []
        paths += [state.noisefile] if state.noise else []
        paths += [state.stolout] if state.stolout and state.img else []
        for path in paths:
            files.reserve(path)
        table = read_stol(state.stol_file, state.stol_unit)
        if state.source_file is not None:
            src = sourcefile.read_sources(state.source_file)
            state.config.sources = np.column_stack([src.positions, src.weights,
                                                    src.wavelengths])
        seed = state.seed if state.seed is not None else int(time.time())
        if state.img is not None:
            say("reading %s" % state.img)
        say("nonBragg amorphous material diffraction simulator - nbnumba %s" % version())
        pending = []
        # the C reads the table after the detector set-up lines
        raise_if_stopped()   # a stop a library swallowed while loading: stop before the work
        result = nonbragg(table, state.config, say=pending.append, observed=observed,
                          ignore=state.ignore, adc=state.adc)
        at = next(i for i, line in enumerate(pending) if line.startswith("pivoting")) + 1
        for line in pending[:at] + ["reading %s" % state.stol_file] + pending[at:]:
            say(line)
        if state.noise:
            say("")
            say("  noise image paramters:")
            say("  seed: %d" % -seed)
        stdout.flush()
        image = result.image
        ys, xs = image.shape
        say("")
        say("solid angle subtended by detector = %g steradian ( %g%% sphere)"
            % (result.omega_sum, 100 * result.omega_sum / 4 / np.pi))
        roi = result.roi
        flat = image.ravel()
        with files:
            if state.stolout and observed is not None:
                last = _stolout(result, state.stolout, files, say)
                result.mean, result.rms, result.rmsd = restate(result, last)
            say("writing %s as %d 4-byte floats" % (state.floatfile, xs * ys))
            files.stage(state.floatfile, memoryview(np.ascontiguousarray(flat, "<f4")).cast("B"))
            say("max_I = %s  at %s %s" % (c_g(result.max_I), c_g(result.max_xy[0]),
                                          c_g(result.max_xy[1])))
            say("mean= %s rms= %s rmsd= %s" % (c_g(result.mean), c_g(result.rms),
                                              c_g(result.rmsd)))
            int_scale = images.integer_scale(state.int_scale, result.max_I)
            say("intfile_scale = %g" % int_scale)
            ints = images.integer_image(flat, xs, ys, roi, int_scale, state.adc)
            say("writing %s as 2-byte integers" % state.intfile)
            header = _header(result.header)
            files.stage(state.intfile, smv.smv_bytes(header, ints))
            pgm_scale = images.pgm_scale(state.pgm_scale, result.rmsd, int_scale)
            say("pgm_scale = %g" % pgm_scale)
            if state.write_pgm:
                pgm = images.pgm_pixels(flat, xs, ys, roi, pgm_scale)
                say("writing %s as 1-byte integers" % state.pgmfile)
                head = ("P5\n%d %d\n# pixels scaled by %g\n255\n" % (xs, ys, pgm_scale))
                files.stage(state.pgmfile, [head.encode("ascii"), pgm.tobytes()])
            if state.noise:
                noise, photons, overloads = rng.noise_image(
                    flat, xs, ys, roi, state.adc, seed, rng.RandomTable())
                say("%s photons on noise image (%d overloads)" % (c_g(photons, "%.0f"),
                                                                  overloads))
                say("writing %s as 2-byte integers" % state.noisefile)
                files.stage(state.noisefile, smv.smv_bytes(header, noise))
        stdout.flush()
        return 0
    except (CliError, ConfigError, InputFileError, OutputError) as exc:
        stdout.flush()
        return error(PROG, str(exc))
    except MemoryError:
        return error(PROG, "not enough memory for this image")
    finally:
        files.discard()


def main(argv=None):
    return run_guarded(run, sys.argv[1:] if argv is None else argv, PROG, numba=True)


def console():
    """The ``nb-nonbragg`` command."""
    leave(PROG, main())


if __name__ == "__main__":
    console()
