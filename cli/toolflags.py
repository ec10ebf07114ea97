"""Flag tables and parsing shared by ``nb-nonbragg`` and ``nb-noisify``.

Each command has its own table of :class:`ToolFlag` (names, arguments, help, effect).
Flags are matched exactly (the C matches by substring), applied in command-line order,
and every problem is one :class:`~nbnumba_cli.parse.CliError` line, as for ``nbnumba``.
"""
import argparse
from dataclasses import dataclass
from typing import Callable, Tuple

from nbnumba.cmdline import _NEGATIVE_NUMBER, _Ordered, _Parser, unknown_argument
from nbnumba.flags import c_float, c_int

from .parse import CliError


@dataclass
class ToolFlag:
    """One flag: ``apply(state, values)`` receives the converted values."""
    names: Tuple[str, ...]
    help: str
    apply: Callable
    nargs: int = 1
    kind: Callable = c_float
    metavar: str = "X"


def c_text(text):
    return text


c_text.__name__ = "text"


def build(prog, description, epilog, flags):
    """The argparse parser of a tool's flag table (exact names, one-line errors)."""
    from nbnumba import __version__
    parser = _Parser(prog=prog, description=description, epilog=epilog, add_help=False,
                     allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser._negative_number_matcher = _NEGATIVE_NUMBER
    general = parser.add_argument_group("General")
    general.add_argument("-h", "--help", action="help", help="show this help and exit")
    general.add_argument("--version", action="version", version=f"{prog} {__version__}",
                         help="show the version and exit")
    group = parser.add_argument_group("Flags (as the C program; lengths in mm)")
    for f in flags:
        nargs = f.nargs if f.nargs != 1 else None
        group.add_argument(*f.names, dest=f.names[0].lstrip("-"), action=_Ordered, flag=f,
                           type=f.kind if f.nargs else None, nargs=nargs,
                           metavar=(f.metavar if f.nargs else None), help=f.help,
                           default=argparse.SUPPRESS)
    return parser


def parse(parser, flags, argv, state):
    """Apply ``argv`` to ``state`` flag by flag, in order; returns ``state``."""
    namespace = argparse.Namespace(ordered=[])
    namespace, extras = parser.parse_known_args(list(argv), namespace)
    if extras:
        raise CliError(unknown_argument(extras, [n for f in flags for n in f.names]))
    for f, values, option in namespace.ordered:
        try:
            f.apply(state, values)
        except ValueError as exc:
            raise CliError(f"argument {option}: {exc}") from None
    return state


__all__ = ["ToolFlag", "build", "parse", "c_float", "c_int", "c_text", "CliError"]
