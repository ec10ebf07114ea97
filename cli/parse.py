"""Command line -> configuration, with the C program's precedence rules.

1. argparse checks every flag (exact names only) and converts the values;
2. the headers of ``-mask`` and then ``-img`` supply defaults (so the image header wins
   over the mask's, and every flag wins over both, except that a header's
   ``CLOSE_DISTANCE`` decides the distance even after ``-distance``, as in the C: a note
   in ``state.notes`` says so);
3. the flags are applied in command-line order (later ones override earlier ones);
4. input files are read: ``-hkl`` (or ``Fdump.bin`` in the current directory when
   ``-hkl`` is absent), ``-mat``, ``-sourcefile``, ``-stol``.

Every problem is raised as :class:`CliError` with a one-line message.
"""
import argparse
import difflib
import os
import re

from nbnumba.config import StructureFactors
from nbnumba.constants import RTD
from nbnumba.io import fdump, hkl, matrix, smv, sourcefile
from nbnumba.io.errors import InputFileError, read_text

from .flags import FLAGS, GROUPS, ParseState, all_names

PROG = "nbnumba"
DESCRIPTION = ("Simulate X-ray diffraction images of nanocrystals, image for image the same "
               "as the nanoBragg C program, from the same command line.")
EPILOG = ("Angles are in degrees, lengths in mm unless stated. Later flags override earlier "
          "ones. Exit status 0 on success, 9 on any error (as the C program).")


class CliError(Exception):
    """A command-line or input problem, reported as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse with exact matching of single-dash flags and one-line errors."""

    def error(self, message):
        raise CliError(message)

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


class _CompileAction(argparse.Action):
    """``--compile``: compile every kernel variant ahead of time, then exit."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from .precompile import compile_all
        parser.exit(compile_all(parser.prog))


# negative numbers (also with exponents) are values, never flags
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def build_parser(add_options=None):
    """The argparse parser of every C flag (exact matching) plus nbnumba's own.

    add_options: optional callable(parser) run last; another command (``nbnumba-series``)
    adds its own options (and may change ``prog``/``description``) with it.
    """
    from nbnumba import __version__
    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, add_help=False,
                     allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser._negative_number_matcher = _NEGATIVE_NUMBER
    general = parser.add_argument_group("General")
    general.add_argument("-h", "--help", action="help", help="show this help and exit")
    general.add_argument("--version", action="version", version=f"{PROG} {__version__}",
                         help="show the version and exit")
    general.add_argument("--compile", action=_CompileAction,
                         help="compile every kernel variant into numba's cache and exit "
                         "(once per machine and nbnumba version, e.g. in an image build)")
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS}
    for f in FLAGS:
        groups[f.group].add_argument(
            *f.names, dest=f.names[0].lstrip("-"), action=_Ordered, flag=f, type=f.kind,
            nargs=f.nargs if f.nargs != 1 else None, metavar=f.metavar or None, help=f.help,
            default=argparse.SUPPRESS)
    if add_options is not None:
        add_options(parser)
    return parser


def _unknown(extras):
    for token in extras:
        if token.startswith("-"):
            close = difflib.get_close_matches(token, all_names(), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"unknown flag {token!r}{hint}"
    return f"unexpected argument '{extras[0]}' (values must follow their flag)"


def _ingest_header(state, path, is_mask):
    """Apply an SMV header's values (the C reads the mask's, then the image's)."""
    what = "mask" if is_mask else "header image"
    try:
        image = smv.read_smv(path, what)
    except InputFileError as exc:
        raise CliError(str(exc)) from None
    det = state.config.detector
    xtal = state.config.crystal
    det.fpixels, det.spixels = image.width, image.height
    value = image.value
    if value("PIXEL_SIZE") is not None:
        det.pixel_size = value("PIXEL_SIZE") / 1000.0
    det.size_f = det.pixel_size * det.fpixels
    det.size_s = det.pixel_size * det.spixels
    if value("DISTANCE") is not None:
        det.distance = value("DISTANCE") / 1000.0
    if value("CLOSE_DISTANCE") is not None:
        det.close_distance = value("CLOSE_DISTANCE") / 1000.0
    if value("WAVELENGTH") is not None:
        state.config.beam.wavelength = value("WAVELENGTH") / 1e10
    if value("BEAM_CENTER_X") is not None:
        det.xbeam = value("BEAM_CENTER_X") / 1000.0
    if value("BEAM_CENTER_Y") is not None:
        y = value("BEAM_CENTER_Y") / 1000.0
        det.ybeam = det.size_s - y if is_mask else y
    if value("ORGX") is not None:
        det.orgx = value("ORGX")
    if value("ORGY") is not None:
        det.orgy = value("ORGY")
    if value("PHI") is not None:
        xtal.phi0 = value("PHI") / RTD
    if value("OSC_RANGE") is not None:
        xtal.osc = value("OSC_RANGE") / RTD
    if is_mask:
        state.config.render.mask = image.data.reshape(image.height, image.width)
    return image


def parse_arguments(argv, add_options=None):
    """Parse and apply the flags; returns the :class:`ParseState` (no files read yet).

    add_options: see :func:`build_parser`; the values of the options it adds are left
    on ``state.options`` (the argparse namespace).
    """
    parser = build_parser(add_options)
    namespace = argparse.Namespace(ordered=[])
    namespace, extras = parser.parse_known_args(list(argv), namespace)
    if extras:
        raise CliError(_unknown(extras))
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
    for f, values, option in ordered:
        try:
            f.apply(state, values)
        except ValueError as exc:
            raise CliError(f"argument {option}: {exc}") from None
    if header_close is not None:
        _note_header_close_distance(state, ordered, *header_close)
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


def load_inputs(state, cwd="."):
    """Read the input files the flags name and finish the configuration.

    Returns the structure-factor source used: "hkl", "fdump", or "default".
    """
    cfg = state.config
    xtal = cfg.crystal
    if state.user_cell:
        xtal.cell = tuple(state.cell)
    if state.mat_file is None and (xtal.cell is None or xtal.cell[0] == 0.0):
        raise CliError("no unit cell: give -cell a b c alpha beta gamma or -mat FILE")
    try:
        if state.mat_file is not None:
            xtal.a_matrix = matrix.read_matrix(state.mat_file)
        if state.source_file is not None:
            cfg.beam.sources = sourcefile.read_sources(state.source_file)
        if state.stol_file is not None:
            sourcefile.parse_sources(read_text(state.stol_file, "scattering table",
                                               sourcefile.MAX_FILE_BYTES),
                                     name=state.stol_file)
        if state.hkl_file is not None:
            xtal.structure_factors = hkl.read_hkl(state.hkl_file, xtal.default_F)
            return "hkl"
        dump = os.path.join(cwd, fdump.DUMP_NAME)
        if os.path.exists(dump):
            xtal.structure_factors = fdump.read_fdump(dump)
            return "fdump"
    except InputFileError as exc:
        raise CliError(str(exc)) from None
    if xtal.default_F == 0.0:
        raise CliError("no structure factors: give -hkl FILE or -default_F F "
                       "(and no Fdump.bin in the current directory)")
    return "default"


def config_from_args(argv, cwd="."):
    """C-style arguments -> (SimulationConfig, OutputOptions); reads the input files."""
    state = parse_arguments(argv)
    load_inputs(state, cwd)
    return state.config, state.out


__all__ = ["CliError", "build_parser", "parse_arguments", "load_inputs", "config_from_args",
           "StructureFactors"]
