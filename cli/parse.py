"""The ``nbnumba`` command's parser: the library's C-flag parser (:mod:`nbnumba.cmdline`)
plus the command's own ``--compile`` and ``--server`` (documented here; the console
script handles ``--server`` before any flag is parsed, :mod:`nbnumba_cli.server`).

Every problem is raised as an :class:`nbnumba.NbnumbaError` with a one-line message;
:data:`CliError` (a flag problem) is :class:`nbnumba.errors.FlagError`.
"""
from nbnumba import cmdline
from nbnumba.cmdline import DESCRIPTION, EPILOG, PROG, load_inputs  # noqa: F401
from nbnumba.errors import FlagError as CliError


def _add_compile(general):
    general.add_argument("--compile", action="store_true", default=False,
                         help="compile every kernel variant into numba's cache and exit "
                         "(once per machine and nbnumba version, e.g. in an image build)")
    general.add_argument("--server", choices=("start", "stop", "status"), default=None,
                         metavar="start|stop|status",
                         help="the resident renderer, which takes the start-up off every "
                         "run: start it (then --idle-timeout SECONDS may follow; default "
                         "900), stop it, or show its state; given first and alone (see "
                         "NBNUMBA_SERVER)")


def build_parser(add_options=None):
    """The parser of every C flag (exact matching) plus ``--compile`` and ``--server``; see
    :func:`nbnumba.cmdline.build_parser`."""
    return cmdline.build_parser(add_options, add_general=_add_compile)


def parse_arguments(argv, add_options=None):
    """Parse and apply the flags (:func:`nbnumba.cmdline.parse_arguments`), with
    ``--compile`` (``state.options.compile``) and ``--server`` (``state.options.server``)."""
    return cmdline.parse_arguments(argv, add_options, add_general=_add_compile)


def config_from_args(argv, cwd="."):
    """(SimulationConfig, OutputOptions) as the ``nbnumba`` command builds them: reads
    ``./Fdump.bin`` when ``-hkl`` is absent, as the C does."""
    return cmdline.config_from_args(argv, cwd, read_fdump=True)


__all__ = ["CliError", "build_parser", "parse_arguments", "load_inputs", "config_from_args"]
