"""The C program's command line -> configuration, with the C's precedence rules.

1. argparse checks every flag (exact names only, from the table of :mod:`nbnumba.flags`)
   and converts the values;
2. the headers of ``-mask`` and then ``-img`` supply defaults (so the image header wins
   over the mask's, and every flag wins over both, except that a header's
   ``CLOSE_DISTANCE`` decides the distance even after ``-distance``, as in the C: a note
   in ``state.notes`` says so);
3. the flags are applied in command-line order (later ones override earlier ones);
4. input files are read: ``-hkl`` (or, when asked, ``Fdump.bin`` in the current
   directory when ``-hkl`` is absent, as the C does), ``-mat``, ``-sourcefile``,
   ``-stol``; or, instead of ``-hkl``, nbnumba's ``--mtz``, ``--sf-cif`` or ``--model``
   (through gemmi; no ``Fdump.bin`` is read or written then).

A flag problem is raised as :class:`~nbnumba.errors.FlagError` (a ``ConfigError``), a
file problem as :class:`~nbnumba.errors.InputFileError`; both are one line, in the
flags' units (mm, degrees, Angstrom).
"""
import argparse
import copy
import difflib
import functools
import os
import re

from ._version import __version__
from .errors import FlagError
from .config import VECTOR_FIELDS, StructureFactors, check_units, shown
from . import experiment_input
from .flags import FLAG_UNITS, FLAGS, GROUPS, PRESET_FLAGS, OutputOptions, ParseState, all_names
from .io import fdump, hkl, matrix, smv, sourcefile
from .io.expt_read import read_experiment
from .io.errors import read_text

PROG = "nbnumba"
DESCRIPTION = ("Simulate X-ray diffraction images of nanocrystals, image for image the same "
               "as the nanoBragg C program, from the same command line.")
EPILOG = ("Angles are in degrees, lengths in mm unless stated. Later flags override earlier "
          "ones. Exit status 0 on success, 9 on any error (as the C program).")


class _Parser(argparse.ArgumentParser):
    """argparse with exact matching of single-dash flags and one-line errors."""

    def error(self, message):
        raise FlagError(message)

    def _get_option_tuples(self, option_string):
        # argparse matches single-dash options by prefix (and splits off glued values)
        # even with allow_abbrev=False; every flag here must be spelled out exactly
        return []


class _Ordered(argparse.Action):
    """Record (flag, values) in command-line order; applied after parsing."""

    def __init__(self, option_strings, dest, flag=None, **kwargs):
        self.flag = flag
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if values is None:
            values = []
        elif not isinstance(values, list):
            values = [values]
        namespace.ordered.append((self.flag, values, option_string))


# negative numbers (also with exponents) are values, never flags
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def build_parser(add_options=None, add_general=None):
    """The argparse parser of every C flag (exact matching).

    add_general: optional callable(group) that adds options to the "General" group
    (which holds ``-h`` and ``--version``); add_options: optional callable(parser) run
    last, with which another command adds its own options (and may change
    ``prog``/``description``).
    """
    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, add_help=False,
                     allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser._negative_number_matcher = _NEGATIVE_NUMBER
    general = parser.add_argument_group("General")
    general.add_argument("-h", "--help", action="help", help="show this help and exit")
    general.add_argument("--version", action="version", version=f"{PROG} {__version__}",
                         help="show the version and exit")
    if add_general is not None:
        add_general(general)
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS}
    for f in FLAGS:
        groups[f.group].add_argument(
            *f.names, dest=f.names[0].lstrip("-"), action=_Ordered, flag=f, type=f.kind,
            nargs=f.nargs if f.nargs != 1 else None, metavar=f.metavar or None, help=f.help,
            default=argparse.SUPPRESS)
    if add_options is not None:
        add_options(parser)
    return parser


def unknown_argument(extras, names=None):
    """The one-line message for arguments no flag took: the first unknown flag, with the
    closest of ``names`` (default: every nanoBragg flag) as a hint, or the first stray
    value."""
    names = all_names() if names is None else names
    for token in extras:
        if token.startswith("-"):
            close = difflib.get_close_matches(token, names, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"unknown flag {token!r}{hint}"
    return f"unexpected argument {extras[0]!r} (values must follow their flag)"


def _ingest_header(state, path, is_mask):
    """Apply an SMV header's values (the C reads the mask's, then the image's)."""
    what = "mask" if is_mask else "header image"
    image = smv.read_smv(path, what)
    det = state.config.detector
    xtal = state.config.crystal
    det.fpixels, det.spixels = image.width, image.height
    g = image.geometry()
    det.pixel_size = g.get("PIXEL_SIZE", det.pixel_size)
    det.size_f = det.pixel_size * det.fpixels
    det.size_s = det.pixel_size * det.spixels
    det.distance = g.get("DISTANCE", det.distance)
    det.close_distance = g.get("CLOSE_DISTANCE", det.close_distance)
    state.config.beam.wavelength = g.get("WAVELENGTH", state.config.beam.wavelength)
    det.xbeam = g.get("BEAM_CENTER_X", det.xbeam)
    if "BEAM_CENTER_Y" in g:
        det.ybeam = det.size_s - g["BEAM_CENTER_Y"] if is_mask else g["BEAM_CENTER_Y"]
    det.orgx = g.get("ORGX", det.orgx)
    det.orgy = g.get("ORGY", det.orgy)
    xtal.phi0 = g.get("PHI", xtal.phi0)
    xtal.osc = g.get("OSC_RANGE", xtal.osc)
    if is_mask:
        state.config.render.mask = image.data.reshape(image.height, image.width)
    return image


@functools.lru_cache(maxsize=8)
def _shared_parser(add_options, add_general):
    """:func:`build_parser`'s parser, built once per pair of option adders (about 4 ms of
    every run, which a resident renderer's children then skip): parsing leaves a parser
    unchanged (the values go to the namespace given)."""
    return build_parser(add_options, add_general)


def parse_arguments(argv, add_options=None, add_general=None):
    """Parse and apply the flags; returns the :class:`~nbnumba.flags.ParseState` (no
    input file read yet, except the ``-mask``/``-img`` headers).

    add_options, add_general: see :func:`build_parser`; the values of the options they
    add are left on ``state.options`` (the argparse namespace).
    """
    try:
        argv = list(argv) if not isinstance(argv, (str, bytes)) else None
    except TypeError:  # not iterable (None, a number)
        argv = None
    if argv is None or not all(isinstance(a, str) for a in argv):
        raise FlagError("the arguments must be a list of strings, as on a command line "
                        "(e.g. ['-distance', '100'])")
    parser = _shared_parser(add_options, add_general)
    namespace = argparse.Namespace(ordered=[])
    namespace, extras = parser.parse_known_args(argv, namespace)
    if extras:
        raise FlagError(unknown_argument(extras))
    state = ParseState()
    state.options = namespace
    ordered = namespace.ordered
    masks = [v[0] for f, v, _ in ordered if f.names[0] == "-mask"]
    imgs = [v[0] for f, v, _ in ordered if f.names[0] == "-img"]
    header_close = None
    for paths, is_mask in ((masks, True), (imgs, False)):
        if paths:
            _ingest_header(state, paths[-1], is_mask)
            if state.config.detector.close_distance is not None:
                header_close = ("-mask" if is_mask else "-img", paths[-1])
    given = [f.names[0] for f, _, _ in ordered]
    experiments = [v[0] for f, v, _ in ordered if f.names[0] == "--experiment"]
    if experiments:   # the experiment first, so that every other flag overrides it
        experiment_input.refuse_flags(given, experiments[-1])
        state.experiment_file = experiments[-1]
        state.experiment = read_experiment(experiments[-1])
        experiment_input.apply_models(state, state.experiment)
        state.experiment_snapshot = copy.deepcopy(state.config)
    for f, values, option in ordered:
        try:
            f.apply(state, values)
        except FlagError:
            raise
        except ValueError as exc:
            raise FlagError(f"argument {option}: {exc}") from None
    if header_close is not None:
        _note_header_close_distance(state, ordered, *header_close)
    det = state.config.detector
    if det.convention != "CUSTOM":  # a convention flag after a vector flag: the C's
        for name in VECTOR_FIELDS:  # named convention replaces every vector given
            setattr(det, name, None)
    if state.config.detector.preset is not None:
        for name in given:
            if name in PRESET_FLAGS:
                raise FlagError(f"{name} cannot be combined with --detector "
                                f"{state.config.detector.preset}: the named detector sets the "
                                "pixel size and counts")
    return state


def _note_header_close_distance(state, ordered, flag, path):
    """Note when a header's CLOSE_DISTANCE wins over an explicit -distance (the C's rule:
    a close distance, from a header or -close_distance, always decides the distance)."""
    given = {f.names[0]: values for f, values, _ in ordered}
    if "-distance" not in given or "-close_distance" in given:
        return
    close_mm = state.config.detector.close_distance * 1000.0
    state.notes.append(f"note: the {flag} header's CLOSE_DISTANCE ({close_mm:g} mm, {path}) "
                       f"wins over -distance {given['-distance'][0]:g} (as in the C); give "
                       "-close_distance instead")


def load_inputs(state, cwd=".", read_fdump=False, say=None):
    """Read the input files the flags name and finish the configuration.

    read_fdump: without ``-hkl``, read ``Fdump.bin`` from ``cwd`` when it exists (what
    the C program and the ``nbnumba`` command do); off by default, so that a library
    call never depends on a file left in the working directory.
    say: callable(text) told before a large structure-factor grid is allocated
    (default: a ``warnings.warn``).
    Returns the structure-factor source used: "hkl", "mtz", "sf-cif", "model", "fdump",
    or "default". With ``--mtz``, ``--sf-cif`` or ``--model`` and neither ``-cell`` nor
    ``-mat``, the file's cell is simulated (``state.cell_from`` names the file).
    """
    cfg = state.config
    xtal = cfg.crystal
    if state.user_cell:
        xtal.cell = tuple(state.cell)
    sf_file = structure_factor_file(state)
    no_cell = state.mat_file is None and xtal.a_matrix is None and (xtal.cell is None
                                                                    or xtal.cell[0] == 0.0)
    if no_cell and sf_file is None:
        where = (f"; the experiment {state.experiment_file} has no crystal"
                 if state.experiment is not None else "")
        raise FlagError("no unit cell: give -cell a b c alpha beta gamma or -mat FILE "
                        "(or --mtz, --sf-cif or --model, whose cell is then used)" + where)
    # implausible values said in the flags' units (the library's own check speaks SI)
    check_units(cfg, FLAG_UNITS)
    if state.mat_file is not None:
        xtal.a_matrix = matrix.read_matrix(state.mat_file)
    if state.experiment is not None:
        experiment_input.finish(state, state.experiment_snapshot, state.experiment)
        cfg = state.config
        xtal = cfg.crystal
    if state.source_file is not None:
        cfg.beam.sources = sourcefile.read_sources(state.source_file)
    if state.stol_file is not None:
        sourcefile.parse_sources(read_text(state.stol_file, "scattering table",
                                           sourcefile.MAX_FILE_BYTES), name=state.stol_file,
                                 empty="the scattering table (-stol) holds no line of numbers")
    if sf_file is not None:
        xtal.structure_factors = read_structure_factor_file(state, sf_file, xtal.default_F, say)
        if no_cell:
            xtal.cell = tuple(xtal.structure_factors.cell)
            state.cell_from = sf_file[1]
        return sf_file[0].lstrip("-")
    if state.hkl_file is not None:
        xtal.structure_factors = hkl.read_hkl(state.hkl_file, xtal.default_F, say)
        return "hkl"
    dump = os.path.join(cwd, fdump.DUMP_NAME)
    if read_fdump and os.path.exists(dump):
        xtal.structure_factors = fdump.read_fdump(dump)
        return "fdump"
    if xtal.default_F == 0.0:
        where = ("and no Fdump.bin in the current directory" if read_fdump else
                 "or config_from_args(..., read_fdump=True) to read ./Fdump.bin as the "
                 "nbnumba command does")
        raise FlagError(f"no structure factors: give -hkl FILE or -default_F F ({where})")
    return "default"


#: flags of the files that give structure factors (at most one of them): flag -> attribute
SF_FILE_FLAGS = {"-hkl": "hkl_file", "--mtz": "mtz_file", "--sf-cif": "sf_cif_file",
                 "--model": "model_file"}

#: flags that only make sense with another: flag -> (attribute, the flag it needs)
_NEEDS = {"--mtz-column": ("mtz_column", "--mtz"), "--sf-cif-column": ("sf_cif_column", "--sf-cif"),
          "--d-min": ("model_d_min", "--model"), "--b-add": ("model_b_add", "--model"),
          "--bulk-solvent": ("model_solvent", "--model")}


def structure_factor_file(state):
    """(flag, path) of the --mtz, --sf-cif or --model file, or None; refuses two sources
    of structure factors (-hkl among them) and options without their file."""
    given = [(flag, getattr(state, attr)) for flag, attr in SF_FILE_FLAGS.items()
             if getattr(state, attr) is not None]
    if len(given) > 1:
        raise FlagError("give one source of structure factors, not "
                        + " and ".join(flag for flag, _ in given))
    flags = {flag for flag, _ in given}
    for option, (attr, needed) in _NEEDS.items():
        if getattr(state, attr) is not None and needed not in flags:
            raise FlagError(f"{option} is an option of {needed}, which is not given")
    if "--model" in flags and state.model_d_min is None:
        raise FlagError("--model needs --d-min A: the resolution of the structure factors "
                        "to compute (e.g. --d-min 2.0)")
    return given[0] if given and given[0][0] != "-hkl" else None


def read_structure_factor_file(state, sf_file, default_F, say=None):
    """:class:`~nbnumba.StructureFactors` of the --mtz, --sf-cif or --model file."""
    flag, path = sf_file
    if flag == "--mtz":
        return StructureFactors.from_mtz(path, state.mtz_column, default_F, say)
    if flag == "--sf-cif":
        return StructureFactors.from_sf_cif(path, state.sf_cif_column, default_F, say)
    k_sol, b_sol = state.model_solvent or (0.0, 46.0)
    return StructureFactors.from_model(path, state.model_d_min, default_F,
                                       b_add=state.model_b_add or 0.0, k_sol=k_sol,
                                       b_sol=b_sol, say=say)


def config_from_experiment(path, argv=(), cwd=".", read_fdump=False):
    """(SimulationConfig, OutputOptions) of what the DIALS experiment list ``path``
    describes, with the C program's flags ``argv`` applied on top: the same as
    ``config_from_args(["--experiment", path, *argv])``.

    The experiment gives the beam (wavelength, direction, polarization), every detector
    panel (``DetectorConfig.panels``), the goniometer and the scan's first image
    (``CrystalConfig.phi0``, ``osc``) and the crystal (``CrystalConfig.a_matrix``), in
    its laboratory frame; flags override what they name, flags that place the detector
    raise :class:`FlagError`; the pedestal becomes ``OutputOptions.adc``. A file
    nbnumba wrote renders bit for bit as the command that wrote it
    (:mod:`nbnumba.experiment_input`). Structure factors come from the flags
    (``-hkl``, ``-default_F``). Raises :class:`~nbnumba.errors.InputFileError` for a
    file that cannot be read or holds what nbnumba cannot render, in one line.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise FlagError(f"the experiment list must be a path, got {type(path).__name__}")
    if isinstance(argv, str) or not isinstance(argv, (list, tuple)):
        raise FlagError("the flags must be a list of strings, as on a command line "
                        "(e.g. ['-N', '5'])")
    return config_from_args(["--experiment", os.fspath(path)] + list(argv), cwd=cwd,
                            read_fdump=read_fdump)


def config_from_args(argv, cwd=".", read_fdump=False):
    """(SimulationConfig, OutputOptions) from the C program's command-line flags.

    argv: the flags as a list of strings (without the program name), in the C's units
    (mm, degrees, Angstrom, keV ...), converted to the configuration's (SI) exactly as
    the C converts them. Reads the files the flags name (``-hkl``, ``-mat``,
    ``-sourcefile``, ``-img``, ``-mask``; relative names from the working directory).
    cwd: where to look for ``Fdump.bin``; read_fdump: without ``-hkl``, read
    ``cwd/Fdump.bin`` if there is one, as the C program does (default False: the
    configuration depends on the arguments alone).

    Raises :class:`~nbnumba.errors.FlagError` (a ``ConfigError``) for a bad flag and
    :class:`~nbnumba.errors.InputFileError` for a bad file.
    """
    try:
        folder = os.fspath(cwd) if isinstance(cwd, (str, os.PathLike)) else None
    except TypeError:  # an os.PathLike whose __fspath__ gives no name
        folder = None
    if not isinstance(folder, str):
        raise FlagError(f"cwd must be a folder name (str or os.PathLike), got "
                        f"{type(cwd).__name__}")
    if not isinstance(read_fdump, bool):
        raise FlagError(f"read_fdump must be True or False, got {shown(read_fdump)}")
    for token in argv if isinstance(argv, (list, tuple)) else ():
        if token in ("-h", "--help", "--version"):
            raise FlagError(f"{token} is an option of the nbnumba command (it prints and "
                            "exits), not a configuration flag")
    state = parse_arguments(argv)
    load_inputs(state, cwd, read_fdump=read_fdump)
    return state.config, state.out


__all__ = ["FlagError", "build_parser", "parse_arguments", "load_inputs", "config_from_args",
           "config_from_experiment",
           "OutputOptions", "ParseState", "PROG", "DESCRIPTION", "EPILOG"]
