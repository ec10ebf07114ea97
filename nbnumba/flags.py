"""The one table of every command-line flag: names, arguments, units, defaults, effect.

The argparse parser, ``nbnumba -h``, the man page and the flag reference in the docs are
all generated from :data:`FLAGS`. Each flag's ``apply`` receives the parse state and the
converted values; flags are applied in command-line order (later flags override earlier
ones), exactly like the C program, except that every flag is matched exactly.

Unit conversions are written the way the C writes them (``/1000.0``, ``/1.0e10``,
``*1e-6``, ``/RTD`` ...) so that the values are bit-identical.
"""
import argparse
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Tuple

from .config import Fields, SimulationConfig
from .errors import ConfigError, FlagError
from .io import reflections
from .io.model_sf import MIN_D_MIN
from .constants import HC_EV_ANGSTROM, RTD
from .kernels import DEVICES
from .presets import PRESETS

# ---------------------------------------------------------------------------------------
# value converters (argparse ``type=``): strict, with a clear message on bad input

_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INT = re.compile(r"^[+-]?\d+(\.0*)?$")


_INT_LIMIT = 2 ** 31 - 1   # the C's int


def c_float(text):
    """A decimal number as the C's ``atof`` reads it (no inf/nan, no trailing junk)."""
    if not _FLOAT.match(text):
        raise ValueError(f"{text!r} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is out of range")
    return value


c_float.__name__ = "number"


def c_int(text):
    """An integer (``5`` or ``5.0``) in the C's int range; C ``atoi`` would silently
    truncate ``2.7`` or overflow."""
    if not _INT.match(text):
        raise ValueError(f"{text!r} is not an integer")
    value = int(text.split(".")[0])
    if abs(value) > _INT_LIMIT:
        raise ValueError(f"{text!r} is out of range")
    return value


c_int.__name__ = "integer"


def absorption_depth(text):
    """``-detector_abs``: an attenuation depth in um, or ``inf`` (no absorption)."""
    if "inf" in text.lower():
        return float("inf")
    return c_float(text)


absorption_depth.__name__ = "depth"


def pivot_name(text):
    low = text.lower()
    if "sample" in low:
        return "SAMPLE"
    if "beam" in low:
        return "BEAM"
    raise ValueError(f"{text!r} is not a pivot (use beam or sample)")


pivot_name.__name__ = "pivot"


def detector_name(text):
    if text not in PRESETS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a named detector (use "
                                         f"{', '.join(sorted(PRESETS))})")
    return text


detector_name.__name__ = "detector"


def device_name(text):
    if text not in DEVICES:
        raise ValueError(f"{text!r} is not a device (use {', '.join(DEVICES)})")
    return text


device_name.__name__ = "device"


# ---------------------------------------------------------------------------------------
# parse state


@dataclass
class OutputOptions(Fields):
    """Output files and image options of one CLI run."""
    floatfile: str = "floatimage.bin"
    intfile: str = "intimage.img"
    pgmfile: str = "image.pgm"
    noisefile: str = "noiseimage.img"
    write_pgm: bool = True
    write_noise: bool = True
    int_scale: float = 0.0
    pgm_scale: float = 0.0
    adc: float = 40.0
    seed: Optional[int] = None        #: -seed value (None: clock)
    progress: bool = True
    smv_extended: bool = False
    printout: bool = False
    printout_pixel: Optional[Tuple[int, int]] = None
    expt: Optional[str] = None        #: -expt: DIALS experiment list of the int image
    xds_inp: Optional[str] = None     #: -xds_inp: XDS.INP of the int image
    nexus: Optional[str] = None       #: -nexus: NXmx HDF5 file of the noise image
    nexus_float: bool = False         #: -nexus_float: ... of the float image instead
    #: -expt_images: the images -expt/-xds_inp describe: "int", "noise", "nexus" or a name
    expt_images: str = "int"
    panel_files: bool = False         #: --panel-files: float, SMV, PGM files per panel


@dataclass
class ParseState:
    """What the flags have said so far: the configuration plus files to read."""
    config: SimulationConfig = field(default_factory=SimulationConfig)
    out: OutputOptions = field(default_factory=OutputOptions)
    mat_file: Optional[str] = None
    hkl_file: Optional[str] = None
    source_file: Optional[str] = None
    img_file: Optional[str] = None
    mask_file: Optional[str] = None
    stol_file: Optional[str] = None
    cell: list = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    user_cell: bool = False
    threads: Optional[int] = None
    device: str = "cpu"
    #: structure factors from crystallographers' files (nbnumba only): each a path or None
    mtz_file: Optional[str] = None
    mtz_column: Optional[str] = None
    sf_cif_file: Optional[str] = None
    sf_cif_column: Optional[str] = None
    model_file: Optional[str] = None
    model_d_min: Optional[float] = None      #: --d-min, Angstrom
    model_b_add: Optional[float] = None      #: --b-add, Angstrom^2
    model_solvent: Optional[Tuple[float, float]] = None   #: --bulk-solvent K_SOL B_SOL
    cell_from: Optional[str] = None          #: the file whose cell is simulated (no -cell/-mat)
    notes: list = field(default_factory=list)   #: one-line notes for stderr (header wins ...)
    experiment_file: Optional[str] = None     #: --experiment FILE
    experiment: Any = None                    #: its models (nbnumba.io.expt_read)
    experiment_snapshot: Any = None           #: the configuration right after it
    experiment_exact: bool = False            #: rendered from the file's nbnumba block


@dataclass(frozen=True)
class Flag:
    """One command-line flag (the first name is the main one, the others aliases)."""
    names: Tuple[str, ...]
    nargs: object                 #: 0 (switch), an int, or "+" (-cell, -misset)
    metavar: object               #: tuple of names, or one name for nargs='+'
    kind: Callable                #: converter of each value
    group: str
    help: str
    apply: Callable               #: apply(state, values)


FLAGS = []
GROUPS = (
    ("crystal", "Crystal: cell, orientation, size, shape, mosaicity, structure factors"),
    ("beam", "Beam: wavelength, spectrum, divergence, polarization, intensity"),
    ("detector", "Detector: size, placement, conventions, rotations, sensor"),
    ("sweep", "Rotation sweep and sampling"),
    ("inputs", "Other inputs"),
    ("outputs", "Outputs and noise"),
    ("diagnostics", "Diagnostics (no effect on images)"),
    ("nbnumba", "nbnumba extensions (not in the C program)"),
    ("files", "Structure factors from crystallographic files (nbnumba extensions, need gemmi)"),
)


def flag(names, group, help, apply, nargs=1, kind=c_float, metavar=None):
    names = (names,) if isinstance(names, str) else tuple(names)
    if metavar is None:
        metavar = () if nargs == 0 else ("VALUE",) * (nargs if isinstance(nargs, int) else 1)
    metavar = metavar if isinstance(metavar, str) else tuple(metavar)
    FLAGS.append(Flag(names, nargs, metavar, kind, group, help, apply))


def _det(state):
    return state.config.detector


def _beam(state):
    return state.config.beam


def _xtal(state):
    return state.config.crystal


def _render(state):
    return state.config.render


def _set(getter, attr, convert=lambda v: v, **also):
    """An apply function that sets one attribute (and optionally others)."""
    def apply(state, values):
        target = getter(state)
        setattr(target, attr, convert(values[0]))
        for name, value in also.items():
            setattr(target, name, value)
    return apply


def _switch(getter, attr, value=True, **also):
    def apply(state, values):
        target = getter(state)
        setattr(target, attr, value)
        for name, v in also.items():
            setattr(target, name, v)
    return apply


# ----------------------------------------------------------------------------- crystal
def _set_cells(*attrs):
    def apply(state, values):
        for a in attrs:
            setattr(_xtal(state), a, values[0])
    return apply


flag("-Na", "crystal", "unit cells along a (1 if <= 1; a crystal size along x wins) [default: 1]",
     _set_cells("na"), kind=c_int, metavar=["N"])
flag("-Nb", "crystal", "unit cells along b [default: 1]", _set_cells("nb"), kind=c_int, metavar=["N"])
flag("-Nc", "crystal", "unit cells along c [default: 1]", _set_cells("nc"), kind=c_int, metavar=["N"])
flag("-N", "crystal", "unit cells along a, b and c [default: 1]", _set_cells("na", "nb", "nc"),
     kind=c_int, metavar=["N"])


def _apply_cell(state, values):
    if len(values) > 6:
        raise ValueError("-cell takes at most 6 values: a b c alpha beta gamma")
    state.user_cell = True
    a = state.cell
    for i, v in enumerate(values):
        a[i] = v if i < 3 else v / RTD


flag("-cell", "crystal", "unit cell a b c (Angstrom) alpha beta gamma (degrees); missing b, c "
     "default to a, missing angles to 90", _apply_cell, nargs="+",
     metavar="VALUE")


def _apply_misset(state, values):
    if len(values) == 1 and "rand" in values[0]:
        _xtal(state).misset = "random"
        return
    if len(values) != 3:
        raise ValueError("-misset needs three angles (degrees) or 'random'")
    _xtal(state).misset = tuple(c_float(v) / RTD for v in values)


flag("-misset", "crystal", "crystal rotation about lab x, y, z (degrees), applied to the "
     "orientation; or 'random' [default: none]", _apply_misset, nargs="+", kind=str,
     metavar="VALUE")


def _sample(*axes):
    def apply(state, values):
        size = list(_xtal(state).sample_size)
        for axis in axes:
            size[axis] = values[0] / 1000
        _xtal(state).sample_size = tuple(size)
    return apply


flag(("-samplesize", "-sample_size", "-xtalsize", "-xtal_size"), "crystal",
     "crystal size along x, y and z (mm); converted to unit cells [default: from -N]",
     _sample(0, 1, 2), metavar=["mm"])
flag(("-sample_thick", "-sample_x", "-xtal_thick", "-xtal_x"), "crystal",
     "crystal size along x (mm)", _sample(0), metavar=["mm"])
flag(("-sample_width", "-sample_y", "-width", "-xtal_width", "-xtal_y"), "crystal",
     "crystal size along y (mm); clipped to the beam size", _sample(1), metavar=["mm"])
flag(("-sample_heigh", "-sample_z", "-heigh", "-xtal_heigh", "-xtal_z", "-sample_height",
      "-xtal_height", "-height"), "crystal",
     "crystal size along z (mm); clipped to the beam size", _sample(2), metavar=["mm"])
flag(("-density", "-sample_den"), "crystal", "sample density (g/cm^3); accepted, no effect "
     "(as in the C)", lambda s, v: None, metavar=["g/cm3"])
flag(("-MW", "-molec"), "crystal", "molecular weight (g/mol); accepted, no effect (as in the C)",
     lambda s, v: None, metavar=["g/mol"])


def _set_state(attr):
    def apply(state, values):
        setattr(state, attr, values[0])
    return apply


flag(("-mat", "-matrix"), "crystal", "MOSFLM orientation (A) matrix file: reciprocal "
     "vectors times wavelength; with -cell the cell lengths are kept [default: none]",
     _set_state("mat_file"), kind=str, metavar=["FILE"])
flag(("-hkl", "-hklfile"), "crystal", "structure factors, one 'h k l F' per line (extra "
     "columns ignored); also writes Fdump.bin (an MTZ file or a model is refused, naming "
     "--mtz, --model) [default: read Fdump.bin if present]",
     _set_state("hkl_file"), kind=str, metavar=["FILE"])
flag("-default_F", "crystal", "F of every reflection not in the HKL file [default: 0]",
     _set(_xtal, "default_F"), metavar=["F"])
flag("-square_xtal", "crystal", "parallelepiped crystal: sin(Nx)/sin(x) spots [default]",
     _switch(_xtal, "shape", "square"), nargs=0)
flag("-round_xtal", "crystal", "ellipsoidal crystal: sphere-transform spots",
     _switch(_xtal, "shape", "round"), nargs=0)
flag("-gauss_xtal", "crystal", "Gaussian spots, no inter-Bragg maxima",
     _switch(_xtal, "shape", "gauss"), nargs=0)
flag(("-tophat_spots", "-binary_spots"), "crystal", "flat-top spots clipped at the FWHM",
     _switch(_xtal, "shape", "tophat"), nargs=0)
flag("-fudge", "crystal", "spot-size fudge factor of the round, gauss and tophat shapes "
     "[default: 1]", _set(_xtal, "fudge"), metavar=["FACTOR"])
flag(("-mosaic", "-mosaici", "-mosaic_spr", "-mosaicity", "-mosaic_spread"), "crystal",
     "isotropic mosaic spread (degrees) [default: 0]",
     _set(_xtal, "mosaic_spread", lambda v: v / RTD), metavar=["deg"])
flag(("-mosaic_dom", "-mosaic_domains"), "crystal", "number of mosaic domains [default: 10 "
     "with a spread, else 1]", _set(_xtal, "mosaic_domains"), kind=c_int, metavar=["N"])
flag("-mosaic_seed", "crystal", "random seed of the mosaic domain orientations "
     "[default: 12345678]", _set(_xtal, "mosaic_seed"), kind=c_int, metavar=["SEED"])
flag("-misset_seed", "crystal", "random seed of -misset random [default: the clock; -seed "
     "does not change it]", _set(_xtal, "misset_seed"), kind=c_int, metavar=["SEED"])
flag("-interpolate", "crystal", "tricubic interpolation of F between Bragg peaks [default: "
     "on if any of -N/-Na/-Nb/-Nc <= 2]", _switch(_xtal, "interpolate", True), nargs=0)
flag("-nointerpolate", "crystal", "nearest-reflection F only", _switch(_xtal, "interpolate", False),
     nargs=0)

# -------------------------------------------------------------------------------- beam


def _wavelength(state, values):
    _beam(state).wavelength = values[0] / 1.0e10


def _energy(state, values):
    if not values[0] > 0:
        raise ValueError("the photon energy must be positive")
    _beam(state).wavelength = (HC_EV_ANGSTROM / values[0]) / 1.0e10


flag(("-lambda", "-wave", "-lambda0"), "beam", "wavelength (Angstrom) [default: 1]", _wavelength,
     metavar=["A"])
flag("-energy", "beam", "photon energy (eV), instead of -lambda", _energy, metavar=["eV"])
flag("-dispersion", "beam", "spectral full width (percent of lambda) [default: 0]",
     _set(_beam, "dispersion", lambda v: v / 100.0), metavar=["%"])
flag("-dispsteps", "beam", "number of wavelengths across the dispersion [default: auto]",
     _set(_beam, "dispersion_steps"), kind=c_int, metavar=["N"])


def _divergence(state, values):
    _beam(state).hdiv_range = _beam(state).vdiv_range = values[0] / 1000.0


flag("-divergence", "beam", "horizontal and vertical divergence range (mrad) [default: 0]",
     _divergence, metavar=["mrad"])
flag("-hdivrange", "beam", "horizontal divergence range (mrad)",
     _set(_beam, "hdiv_range", lambda v: v / 1000.0), metavar=["mrad"])
flag("-vdivrange", "beam", "vertical divergence range (mrad)",
     _set(_beam, "vdiv_range", lambda v: v / 1000.0), metavar=["mrad"])
flag("-hdivstep", "beam", "horizontal divergence step (mrad)",
     _set(_beam, "hdiv_step", lambda v: v / 1000.0), metavar=["mrad"])
flag("-vdivstep", "beam", "vertical divergence step (mrad)",
     _set(_beam, "vdiv_step", lambda v: v / 1000.0), metavar=["mrad"])
flag("-hdivsteps", "beam", "number of horizontal divergence points", _set(_beam, "hdiv_steps"),
     kind=c_int, metavar=["N"])
flag("-vdivsteps", "beam", "number of vertical divergence points", _set(_beam, "vdiv_steps"),
     kind=c_int, metavar=["N"])


def _divsteps(state, values):
    _beam(state).hdiv_steps = _beam(state).vdiv_steps = values[0]


flag("-divsteps", "beam", "divergence points along both directions", _divsteps, kind=c_int,
     metavar=["N"])
flag("-round_div", "beam", "trim the divergence grid to an ellipse [default]",
     _switch(_beam, "round_divergence", True), nargs=0)
flag("-square_div", "beam", "keep the full rectangular divergence grid",
     _switch(_beam, "round_divergence", False), nargs=0)
flag(("-sourcefile", "-sourcefiles"), "beam", "source list: X Y Z (m) weight lambda (m) per "
     "line; weights are ignored, wavelengths used [default: generated]",
     _set_state("source_file"), kind=str, metavar=["FILE"])


def _polar(state, values):
    _beam(state).kahn_factor = values[0]
    _beam(state).no_polarization = False


flag("-polar", "beam", "Kahn polarization factor K (0 unpolarized, 1 fully polarized) "
     "[default: 0]", _polar, metavar=["K"])
flag("-nopolar", "beam", "no polarization correction (factor 1)",
     _switch(_beam, "no_polarization", True), nargs=0)
flag("-fluence", "beam", "incident fluence (photons/m^2) [default: 1.25932e+29]",
     _set(_beam, "fluence"), metavar=["ph/m2"])
flag("-flux", "beam", "incident flux (photons/s); with -exposure and -beamsize sets the "
     "fluence [default: 0]", _set(_beam, "flux"), metavar=["ph/s"])
flag("-exposure", "beam", "exposure time (s) [default: 1]", _set(_beam, "exposure"),
     metavar=["s"])
flag("-beamsize", "beam", "beam size (mm); also clips the crystal's y and z [default: 0.1]",
     _set(_beam, "beam_size", lambda v: v / 1000), metavar=["mm"])
flag("-water", "beam", "thickness of water around the crystal for a background (um) "
     "[default: 0]", _set(_render, "water_size", lambda v: v / 1e6), metavar=["um"])
flag("-coherent", "beam", "accepted, no effect (as in the C)", lambda s, v: None, nargs=0)
flag("-source_dist", "beam", "source distance (mm); accepted, no effect: the C fixes it at "
     "10 m", lambda s, v: None, metavar=["mm"])

# ---------------------------------------------------------------------------- detector
flag("-pixel", "detector", "pixel size (mm) [default: 0.1]",
     _set(_det, "pixel_size", lambda v: v / 1000.0), metavar=["mm"])


def _pixels(*attrs):
    def apply(state, values):
        for a in attrs:
            setattr(_det(state), a, values[0])
    return apply


flag("-detpixels", "detector", "pixels along fast and slow axes [default: from -detsize]",
     _pixels("fpixels", "spixels"), kind=c_int, metavar=["N"])
flag(("-detpixels_f", "-detpixels_x"), "detector", "pixels along the fast axis",
     _pixels("fpixels"), kind=c_int, metavar=["N"])
flag(("-detpixels_s", "-detpixels_y"), "detector", "pixels along the slow axis",
     _pixels("spixels"), kind=c_int, metavar=["N"])


def _sizes(*attrs):
    def apply(state, values):
        for a in attrs:
            setattr(_det(state), a, values[0] / 1000.0)
    return apply


flag("-detsize", "detector", "detector size along both axes (mm) [default: 102.4]",
     _sizes("size_f", "size_s"), metavar=["mm"])
flag("-detsize_f", "detector", "detector size along the fast axis (mm)", _sizes("size_f"),
     metavar=["mm"])
flag("-detsize_s", "detector", "detector size along the slow axis (mm)", _sizes("size_s"),
     metavar=["mm"])
flag("-distance", "detector", "sample to detector along the beam (mm); pivot beam "
     "[default: 100]", _set(_det, "distance", lambda v: v / 1000.0, pivot="BEAM"), metavar=["mm"])
flag("-close_distance", "detector", "sample to detector plane (mm); wins over -distance; "
     "pivot sample", _set(_det, "close_distance", lambda v: v / 1000.0, pivot="SAMPLE"),
     metavar=["mm"])
flag("-Xbeam", "detector", "beam centre X (mm, convention's axis); pivot beam "
     "[default: detector centre]", _set(_det, "xbeam", lambda v: v / 1000.0, pivot="BEAM"),
     metavar=["mm"])
flag("-Ybeam", "detector", "beam centre Y (mm); pivot beam",
     _set(_det, "ybeam", lambda v: v / 1000.0, pivot="BEAM"), metavar=["mm"])
flag("-Xclose", "detector", "near point X (mm); pivot sample",
     _set(_det, "xclose", lambda v: v / 1000.0, pivot="SAMPLE"), metavar=["mm"])
flag("-Yclose", "detector", "near point Y (mm); pivot sample",
     _set(_det, "yclose", lambda v: v / 1000.0, pivot="SAMPLE"), metavar=["mm"])
flag("-ORGX", "detector", "XDS origin, fast axis (pixels); pivot sample",
     _set(_det, "orgx", pivot="SAMPLE"), metavar=["px"])
flag("-ORGY", "detector", "XDS origin, slow axis (pixels); pivot sample",
     _set(_det, "orgy", pivot="SAMPLE"), metavar=["px"])
flag("-pivot", "detector", "rotate the detector about the beam spot or the sample "
     "(honoured by the CUSTOM convention only) [default: beam]", _set(_det, "pivot"),
     kind=pivot_name, metavar=["beam|sample"])
flag("-mosflm", "detector", "MOSFLM convention: beam along +x, pivot beam [default]",
     _switch(_det, "convention", "MOSFLM", pivot="BEAM"), nargs=0)
flag("-xds", "detector", "XDS convention: beam along +z, origin from -ORGX/-ORGY, pivot sample",
     _switch(_det, "convention", "XDS", pivot="SAMPLE"), nargs=0)
flag("-adxv", "detector", "ADXV convention, pivot beam",
     _switch(_det, "convention", "ADXV", pivot="BEAM"), nargs=0)
flag("-denzo", "detector", "DENZO convention, pivot beam",
     _switch(_det, "convention", "DENZO", pivot="BEAM"), nargs=0)
flag("-dials", "detector", "DIALS convention, pivot sample",
     _switch(_det, "convention", "DIALS", pivot="BEAM"), nargs=0)


def _vector(attr):
    def apply(state, values):
        setattr(_det(state), attr, tuple(values))
        _det(state).convention = "CUSTOM"
    return apply


_VEC = ["x", "y", "z"]
flag("-fdet_vector", "detector", "fast-axis direction (CUSTOM convention)",
     _vector("fdet_vector"), nargs=3, metavar=_VEC)
flag("-sdet_vector", "detector", "slow-axis direction (CUSTOM convention)",
     _vector("sdet_vector"), nargs=3, metavar=_VEC)
flag("-odet_vector", "detector", "detector normal, away from the sample (CUSTOM; "
     "regenerated from fast x slow unless its length is exactly 1)",
     _vector("odet_vector"), nargs=3, metavar=_VEC)
flag("-beam_vector", "detector", "X-ray beam direction (CUSTOM convention)",
     _vector("beam_vector"), nargs=3, metavar=_VEC)
flag("-polar_vector", "detector", "X-ray E-vector direction (CUSTOM convention)",
     _vector("polar_vector"), nargs=3, metavar=_VEC)
flag("-spindle_axis", "detector", "phi rotation axis, right-handed (CUSTOM convention)",
     _vector("spindle_axis"), nargs=3, metavar=_VEC)
flag("-twotheta_axis", "detector", "two-theta rotation axis (CUSTOM convention) "
     "[default: 0 1 0]; unlike the C it does not set the angle", _vector("twotheta_axis"),
     nargs=3, metavar=_VEC)
def _pix0(state, values):
    _det(state).convention = "CUSTOM"


flag("-pix0_vector", "detector", "accepted for compatibility: selects CUSTOM but has no "
     "effect on the geometry (as in the C)", _pix0, nargs=3, metavar=_VEC)
flag("-twotheta", "detector", "detector two-theta swing (degrees); pivot sample [default: 0]",
     _set(_det, "twotheta", lambda v: v / RTD, pivot="SAMPLE"), metavar=["deg"])
flag("-detector_rotx", "detector", "detector rotation about lab x (degrees) [default: 0]",
     _set(_det, "rotx", lambda v: v / RTD), metavar=["deg"])
flag("-detector_roty", "detector", "detector rotation about lab y (degrees) [default: 0]",
     _set(_det, "roty", lambda v: v / RTD), metavar=["deg"])
flag("-detector_rotz", "detector", "detector rotation about lab z (degrees) [default: 0]",
     _set(_det, "rotz", lambda v: v / RTD), metavar=["deg"])
flag("-curved_det", "detector", "spherical detector: every pixel at the same distance",
     _switch(_det, "curved", True), nargs=0)
flag("-point_pixel", "detector", "solid angle 1/R^2 (no obliquity, no pixel area)",
     _switch(_det, "point_pixel", True), nargs=0)


def _absorption(state, values):
    depth = values[0]
    det = _det(state)
    if depth == float("inf") or depth == 0.0:
        det.thickness = 0.0
        det.attenuation_mu = 0.0
    elif depth * 1e-6 == 0.0 or not math.isfinite(1.0 / (depth * 1e-6)):
        raise ValueError(f"the attenuation depth {depth:g} um is too small (its inverse, the "
                         "attenuation coefficient, is infinite); give at least 1e-300 um, 0 or inf")
    else:
        # a negative depth gives a negative coefficient, which counts as "not given" (the
        # C's rule): with a sensor thickness the depth defaults to that thickness
        det.attenuation_mu = 1.0 / (depth * 1e-6)


flag(("-detector_abs", "-detector_absorb", "-detector_absorption"), "detector",
     "sensor attenuation depth (um), or inf; 'inf' or 0 also sets the thickness to 0; "
     "a negative depth counts as not given [default: the thickness]", _absorption, kind=absorption_depth, metavar=["um|inf"])
flag("-detector_thick", "detector", "sensor thickness (um) [default: 0]",
     _set(_det, "thickness", lambda v: v * 1e-6), metavar=["um"])
flag(("-detector_thicksteps", "-thicksteps"), "detector", "number of sensor layers "
     "[default: 2 with a thickness, else 1]", _set(_det, "thickness_steps"), kind=c_int,
     metavar=["N"])

# ------------------------------------------------------------------------------- sweep
flag("-phi", "sweep", "first spindle angle (degrees) [default: 0]",
     _set(_xtal, "phi0", lambda v: v / RTD), metavar=["deg"])
flag("-osc", "sweep", "oscillation range (degrees) [default: 0]",
     _set(_xtal, "osc", lambda v: v / RTD), metavar=["deg"])
flag("-phistep", "sweep", "spindle step (degrees) [default: osc/phisteps]",
     _set(_xtal, "phi_step", lambda v: v / RTD), metavar=["deg"])
flag("-phisteps", "sweep", "number of spindle steps [default: 1, or 2 with -osc]",
     _set(_xtal, "phi_steps"), kind=c_int, metavar=["N"])
flag("-oversample", "sweep", "sub-pixels per pixel axis [default: auto from crystal size]",
     _set(_render, "oversample", lambda v: v if v > 0 else None), kind=c_int, metavar=["N"])
flag("-oversample_thick", "sweep", "recompute the sensor capture fraction per sub-pixel",
     _switch(_render, "oversample_thick", True), nargs=0)
flag("-oversample_polar", "sweep", "recompute polarization per sub-pixel and source "
     "(overrides -nopolar)", _switch(_render, "oversample_polar", True), nargs=0)
flag("-oversample_omega", "sweep", "recompute the solid angle per sub-pixel",
     _switch(_render, "oversample_omega", True), nargs=0)


def _roi(state, values):
    _render(state).roi = tuple(values)


flag("-roi", "sweep", "render only fast xmin..xmax, slow ymin..ymax (pixels, inclusive) "
     "[default: whole detector]", _roi, nargs=4, kind=c_int,
     metavar=["xmin", "xmax", "ymin", "ymax"])
flag("-dmin", "sweep", "skip sources scattering beyond this resolution (Angstrom) "
     "[default: 0 = off]", _set(_render, "dmin", lambda v: v * 1e-10), metavar=["A"])

# ------------------------------------------------------------------------------ inputs
flag(("-img", "-imgfile"), "inputs", "SMV image whose header sets detector size, pixel, "
     "distance, wavelength, beam centre, phi (pixels unused)", _set_state("img_file"),
     kind=str, metavar=["FILE"])
flag(("-mask", "-maskfile"), "inputs", "SMV mask: pixels equal to 0 are not rendered; its "
     "header sets defaults like -img", _set_state("mask_file"), kind=str, metavar=["FILE"])


def _stol(state, values):
    state.stol_file = values[0]


flag("-stol", "inputs", "amorphous scattering table (sin(theta)/lambda, F); read and "
     "checked, unused (as in the C)", _stol, kind=str, metavar=["FILE"])
flag("-4stol", "inputs", "like -stol with 4 sin(theta)/lambda", _stol, kind=str, metavar=["FILE"])
flag("-Q", "inputs", "like -stol with Q", _stol, kind=str, metavar=["FILE"])
flag("-stolout", "inputs", "accepted, no effect (the C never writes it)", lambda s, v: None,
     kind=str, metavar=["FILE"])

# ----------------------------------------------------------------------------- outputs


def _out(attr, **also):
    def apply(state, values):
        setattr(state.out, attr, values[0])
        for name, value in also.items():
            setattr(state.out, name, value)
    return apply


def _out_switch(**values):
    def apply(state, _):
        for name, value in values.items():
            setattr(state.out, name, value)
    return apply


flag(("-floatfile", "-floatimage"), "outputs", "raw float32 image [default: floatimage.bin]",
     _out("floatfile"), kind=str, metavar=["FILE"])
flag(("-intfile", "-intimage"), "outputs", "noiseless SMV image [default: intimage.img]",
     _out("intfile"), kind=str, metavar=["FILE"])
flag(("-pgmfile", "-pgmimage"), "outputs", "8-bit PGM preview; turns the PGM on "
     "[default: image.pgm]", _out("pgmfile", write_pgm=True), kind=str, metavar=["FILE"])
flag(("-noisefile", "-noiseimage"), "outputs", "SMV image with Poisson noise; turns noise on "
     "[default: noiseimage.img]", _out("noisefile", write_noise=True), kind=str, metavar=["FILE"])
flag("-nonoise", "outputs", "no noise image (unless a later -noisefile)",
     _out_switch(write_noise=False), nargs=0)
flag("-nopgm", "outputs", "no PGM image (unless a later -pgmfile/-pgmscale)",
     _out_switch(write_pgm=False), nargs=0)
flag("-scale", "outputs", "int-image scale; <= 0 means 55000/max [default: auto]",
     _out("int_scale"), metavar=["FACTOR"])
flag("-pgmscale", "outputs", "PGM scale; <= 0 means 50/rmsd; turns the PGM on "
     "[default: auto]", _out("pgm_scale", write_pgm=True), metavar=["FACTOR"])
flag("-adc", "outputs", "offset added to int and noise pixels (counts) [default: 40]",
     _out("adc"), metavar=["COUNTS"])
flag("-seed", "outputs", "noise random seed [default: the clock]", _out("seed"), kind=c_int,
     metavar=["SEED"])

# -------------------------------------------------------------------------- diagnostics
flag("-printout", "diagnostics", "print per-pixel details", _out_switch(printout=True), nargs=0)


def _printout_pixel(state, values):
    state.out.printout = True
    state.out.printout_pixel = tuple(values)


flag("-printout_pixel", "diagnostics", "print details of one pixel (fast, slow)",
     _printout_pixel, nargs=2, kind=c_int, metavar=["f", "s"])
flag(("-trace_pixel", "-dump_pixel"), "diagnostics", "accepted for compatibility "
     "(slow, fast); no effect", lambda s, v: None, nargs=2, kind=c_int, metavar=["s", "f"])
flag("-noprogress", "diagnostics", "no progress meter", _out_switch(progress=False), nargs=0)
flag("-progress", "diagnostics", "progress meter on stderr for long renders [default]",
     _out_switch(progress=True), nargs=0)

# ----------------------------------------------------------------------------- nbnumba


def _threads(state, values):
    if values[0] < 1:
        raise ValueError("-nthreads must be at least 1")
    state.threads = values[0]


flag("-nthreads", "nbnumba", "CPU threads [default: NUMBA_NUM_THREADS or all cores]",
     _threads, kind=c_int, metavar=["N"])
flag("-device", "nbnumba", "compute device: cpu, cuda (GPU, same images as the CPU) or "
     "cuda-fast (GPU with fused multiply-adds: last bits may differ) [default: cpu]",
     _set_state("device"), kind=device_name, metavar=["cpu|cuda|cuda-fast"])
flag("-smv_extended", "nbnumba", "SMV headers for every reader: add ADC_OFFSET (read by DIALS) "
     "and pad headers longer than 512 bytes to a multiple of 512 (bytes then differ from the "
     "C program's) [default: the C's header]", _out_switch(smv_extended=True), nargs=0)

flag("-expt", "nbnumba", "also write a DIALS experiment list (JSON, as dials.import writes) "
     "of the -intfile image (see -expt_images): beam, detector, goniometer and scan, and the "
     "true crystal at phi = 0; the image name must end in its number (-intfile "
     "sim_00001.img) "
     "[default: none]", _out("expt"), kind=str, metavar=["FILE"])
flag("-xds_inp", "nbnumba", "also write an XDS.INP for the -intfile image (a rotation: needs "
     "-osc) with the true cell as UNIT_CELL_CONSTANTS; numbered name as for -expt "
     "[default: none]", _out("xds_inp"), kind=str, metavar=["FILE"])
flag("-expt_images", "nbnumba", "the images -expt and -xds_inp describe: int (the -intfile "
     "image), noise (the -noisefile image), nexus (the -nexus file; -expt only) or the name "
     "of another image file; a series takes a template with the frame number "
     "(noisy/sim_{:05d}.img) [default: int]", _out("expt_images"), kind=str,
     metavar=["WHICH"])
flag("-nexus", "nbnumba", "also write an NXmx (NeXus/HDF5) file of the frame, as DIALS and "
     "XDS read an Eiger's: the noise image's counts (the -intfile image's with -nonoise) "
     "without the -adc offset, with the beam, detector and goniometer geometry and the "
     "polarization; needs h5py (pip install "
     "'nbnumba[hdf5]') [default: none]", _out("nexus"), kind=str, metavar=["FILE"])
flag("-nexus_float", "nbnumba", "the -nexus file holds the float image (photons, float32) "
     "instead of counts", _out_switch(nexus_float=True), nargs=0)
flag("-phi_midpoints", "nbnumba", "sample phi at the midpoints of the -phisteps steps, "
     "phi + (k+1/2) x phistep, so that an image is the integral over [phi, phi+osc] that "
     "-expt/-xds_inp state (images then differ from the C program's, which samples phi + k "
     "x phistep: an orientation offset of -osc/(2 phisteps) about the spindle) [default: "
     "the C's sampling]", _switch(_xtal, "phi_midpoints", True), nargs=0)


flag("--experiment", "nbnumba", "render what a DIALS experiment list (.expt) describes: "
     "the beam (wavelength, direction, polarization), every detector panel, the "
     "goniometer, the scan's first image (-phi, -osc) and the crystal; other flags "
     "override what they name (-N, -hkl, -mosaic, -lambda, -phi ...), flags that place "
     "the detector are refused; a file nbnumba wrote (-expt) renders bit for bit as "
     "the command that wrote it [default: none]", _set_state("experiment_file"), kind=str,
     metavar=["FILE"])


def _preset(state, values):
    det = _det(state)
    p = PRESETS[values[0]]
    det.preset = p.name
    det.pixel_size = p.pixel_size
    det.fpixels, det.spixels = p.raster
    det.size_f, det.size_s = p.pixel_size * det.fpixels, p.pixel_size * det.spixels


flag("--detector", "nbnumba", "a named detector of several modules with its gaps: "
     + ", ".join(sorted(PRESETS)) + "; it sets the pixel size and counts and is placed by "
     "-distance, the beam centre, rotations and -twotheta like the C's detector "
     "[default: none]", _preset, kind=detector_name, metavar=["NAME"])

flag("--panel-files", "nbnumba", "with a detector of several panels: write the float, "
     "int, PGM and noise images one file per panel (NAME_p00.bin ..., or sim_p00_00001.img "
     "for a numbered name), each SMV header stating its panel's geometry, instead of one "
     "image holding every panel [default: one image]", _out_switch(panel_files=True),
     nargs=0)

#: flags that set what a named detector sets
PRESET_FLAGS = ("-pixel", "-detpixels", "-detpixels_f", "-detpixels_s", "-detsize",
                "-detsize_f", "-detsize_s", "-img")


def _needs_gemmi(attr, name):
    """Store the value; refuse at once when gemmi, which reads the file, is missing."""
    def apply(state, values):
        try:
            reflections.require_gemmi(name)
        except ConfigError as exc:
            raise FlagError(str(exc)) from None
        setattr(state, attr, values[0])
    return apply


def _d_min(state, values):
    if not values[0] >= MIN_D_MIN:
        raise ValueError(f"{values[0]:g} Angstrom: the resolution of the structure factors "
                         f"must be at least {MIN_D_MIN:g} Angstrom")
    state.model_d_min = values[0]


def _bulk_solvent(state, values):
    if values[0] < 0:
        raise ValueError("K_SOL must be positive (e/Angstrom^3, typically 0.35) or 0 (none)")
    state.model_solvent = (values[0], values[1])


flag("--mtz", "files", "structure factors from a merged MTZ file, expanded to P1 with its "
     "space group (Friedel mates included); its cell is simulated when -cell and -mat are "
     "absent, and must agree with them within 1 percent and 1 degree; no Fdump.bin is written; "
     "needs gemmi (pip install 'nbnumba[models]') [default: none]",
     _needs_gemmi("mtz_file", "--mtz"), kind=str, metavar=["FILE"])
flag("--mtz-column", "files", "the --mtz column to read: amplitudes (type F) or intensities "
     "(type J, read as F = sqrt(max(I, 0))) [default: the file's one amplitude column, else "
     "its one intensity column]", _set_state("mtz_column"), kind=str, metavar=["LABEL"])
flag("--sf-cif", "files", "structure factors from a structure-factor mmCIF file (as the PDB "
     "distributes them, .gz or not; the first data block with a _refln loop), as --mtz "
     "[default: none]", _needs_gemmi("sf_cif_file", "--sf-cif"), kind=str, metavar=["FILE"])
flag("--sf-cif-column", "files", "the --sf-cif _refln tag to read (F_meas_au, "
     "intensity_meas ...) [default: chosen as for --mtz]", _set_state("sf_cif_column"),
     kind=str, metavar=["TAG"])
flag("--model", "files", "structure factors computed from a coordinate model (mmCIF or PDB, "
     ".gz or not; the first model, every atom with its occupancy and B; X-ray form factors, "
     "as 'gemmi sfcalc'), to the resolution --d-min, expanded to P1; its cell is used as "
     "for --mtz [default: none]", _needs_gemmi("model_file", "--model"), kind=str, metavar=["FILE"])
flag("--d-min", "files", "resolution of the --model structure factors (Angstrom: every "
     "reflection with a d-spacing at least this; the others get -default_F). Not -dmin, "
     "which cuts the rendering [required with --model]", _d_min, metavar=["A"])
flag("--b-add", "files", "B added to every atom of the --model (A^2) [default: 0]",
     _set_state("model_b_add"), metavar=["A^2"])
flag("--bulk-solvent", "files", "flat bulk solvent added to the --model structure factors: "
     "density (e/A^3) and B (A^2), e.g. 0.35 46 [default: none]", _bulk_solvent, nargs=2,
     metavar=["K_SOL", "B_SOL"])


def all_names():
    """Every accepted flag string, aliases included."""
    return [n for f in FLAGS for n in f.names]


#: the unit of each plausibility-checked field as its flag takes it: field name ->
#: (flag, unit, factor from the field's SI unit), so that an implausible flag value is
#: reported in the flag's own unit (:func:`nbnumba.config.check_units`)
_MM, _DEG = 1e3, RTD
FLAG_UNITS = {
    "wavelength": ("-lambda", "Angstrom", 1e10), "dispersion": ("-dispersion", "%", 100.0,
                   "above 200 % the shortest wavelength, lambda (1 - dispersion/2), is negative"),
    "hdiv_range": ("-hdivrange", "mrad", 1e3), "vdiv_range": ("-vdivrange", "mrad", 1e3),
    "hdiv_step": ("-hdivstep", "mrad", 1e3), "vdiv_step": ("-vdivstep", "mrad", 1e3),
    "beam_size": ("-beamsize", "mm", _MM), "pixel_size": ("-pixel", "mm", _MM),
    "size_f": ("-detsize_f", "mm", _MM), "size_s": ("-detsize_s", "mm", _MM),
    "distance": ("-distance", "mm", _MM), "close_distance": ("-close_distance", "mm", _MM),
    "xbeam": ("-Xbeam", "mm", _MM), "ybeam": ("-Ybeam", "mm", _MM),
    "xclose": ("-Xclose", "mm", _MM), "yclose": ("-Yclose", "mm", _MM),
    "rotx": ("-detector_rotx", "degrees", _DEG), "roty": ("-detector_roty", "degrees", _DEG),
    "rotz": ("-detector_rotz", "degrees", _DEG), "twotheta": ("-twotheta", "degrees", _DEG),
    "thickness": ("-detector_thick", "um", 1e6), "sample_size": ("-xtalsize", "mm", _MM),
    "mosaic_spread": ("-mosaic", "degrees", _DEG), "osc": ("-osc", "degrees", _DEG),
    "phi_step": ("-phistep", "degrees", _DEG), "dmin": ("-dmin", "Angstrom", 1e10),
    "water_size": ("-water", "um", 1e6),
    "cell_edge": ("-cell", "Angstrom", 1.0, "cell edges are in Angstrom (1 nm = 10 Angstrom)"), "cell_angle": ("-cell", "degrees", _DEG),
}
