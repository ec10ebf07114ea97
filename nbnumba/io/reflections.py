"""Reflections from crystallographers' files, through gemmi: the part every reader shares.

The readers (:mod:`nbnumba.io.reflection_files` for MTZ and structure-factor mmCIF,
:mod:`nbnumba.io.model_sf` for coordinate models) return :class:`Reflections`: Miller
indices **expanded to P1** with the amplitude of each, plus the file's cell and space
group. :meth:`nbnumba.StructureFactors.from_mtz` and its siblings put them on the C's
grid with the function the HKL reader uses, so a grid built from a file is the grid of
an HKL file listing the same P1 reflections.

P1 expansion (:func:`expand_to_p1`): every reflection h of the file gives h R for each
rotation R of the space group (h a row vector; the centring and the translations change
phases only) and the Friedel mate -h R of each (no anomalous signal: ``|F(-h)| =
|F(h)|``). A centric reflection's Friedel mate is one of its symmetry equivalents and
is stored once. Two reflections of the file that are symmetry equivalents of each other
must have the same amplitude (else the file is not merged in its space group: an
``InputFileError``). Reflections the file does not list, systematic absences among
them, get ``default_F`` like reflections missing from an HKL file; an absence the file
lists keeps its value.

gemmi (``pip install 'nbnumba[models]'``) is imported only by these readers, when one is
called: without it they refuse at once with the install command.

These modules import nothing of nbnumba above the configuration (errors, memory,
constants, ``io.errors``), so that ``nbnumba.config`` may call them.
"""
import zlib
from typing import NamedTuple, Tuple

import numpy as np

from .. import memory
from ..constants import RTD
from ..errors import ConfigError, InputFileError
from .errors import MiB, open_regular, read_bytes

INSTALL = "pip install 'nbnumba[models]'"

#: largest text file (model, structure-factor mmCIF) read, after decompression (bytes)
MAX_TEXT_BYTES = 1024 * MiB

#: memory gemmi needs while parsing, per byte of mmCIF/PDB text (measured ~3; margin)
PARSE_BYTES_PER_BYTE = 6

#: bytes per reflection while expanding to P1 (indices, keys, values, sort work space)
EXPAND_BYTES_PER_REFLECTION = 96

GZIP_MAGIC = b"\x1f\x8b"
MTZ_MAGIC = b"MTZ "


class Reflections(NamedTuple):
    """P1 reflections read from a file (or computed from a model).

    hkl: (n, 3) int64 Miller indices, each P1 reflection once, sorted;
    F: (n,) float64 amplitudes, electrons;
    cell: (a, b, c, alpha, beta, gamma) in Angstrom and radians (the file's cell, the
    angles divided by the C's degrees-per-radian constant as ``-cell`` divides them);
    space_group: the file's space group (Hermann-Mauguin symbol);
    source: one line saying where the amplitudes came from (for the summary lines);
    listed: the number of reflections the file gave (before the expansion).
    """
    hkl: np.ndarray
    F: np.ndarray
    cell: Tuple[float, ...]
    space_group: str
    source: str
    listed: int


def require_gemmi(what):
    """The gemmi module, or :class:`~nbnumba.ConfigError` naming ``what`` (a flag or a
    function) and the install command."""
    try:
        import gemmi
    except ImportError:
        raise ConfigError(f"{what} needs gemmi, which is not installed: {INSTALL}") from None
    return gemmi


def read_text_file(path, what):
    """The bytes of a text file (model, structure-factor mmCIF), gunzipped when it is
    gzip-compressed (``1abc.cif.gz``), at most :data:`MAX_TEXT_BYTES` either way; the
    memory of gemmi's parse is checked first."""
    data = read_bytes(path, what, MAX_TEXT_BYTES)
    if data[:4] == MTZ_MAGIC:
        raise InputFileError(f"{path} is an MTZ file, not a {what}: give it as --mtz FILE "
                             "(or StructureFactors.from_mtz)")
    if data[:2] == GZIP_MAGIC:
        data = _gunzip(data, path, what)
    memory.require(PARSE_BYTES_PER_BYTE * len(data), f"reading {what} {path}",
                   f"use a smaller {what}", InputFileError)
    if b"\0" in data[:4096]:
        raise InputFileError(f"{what} {path} is not a text file")
    return data


def _gunzip(data, path, what):
    """Decompress at most MAX_TEXT_BYTES (a small file that inflates without end is
    refused, not expanded)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(data, MAX_TEXT_BYTES + 1)
    except zlib.error:
        raise InputFileError(f"{what} {path} is not a valid gzip file") from None
    if len(text) > MAX_TEXT_BYTES or inflater.unconsumed_tail:
        raise InputFileError(f"{what} {path} decompresses to more than {MAX_TEXT_BYTES} "
                             "bytes")
    if not inflater.eof:
        raise InputFileError(f"{what} {path} is a truncated gzip file")
    return text


def check_binary_file(path, what, magic, limit):
    """Check that ``path`` is a regular file of at most ``limit`` bytes starting with
    ``magic`` (gemmi then opens it by name). Returns its size."""
    with open_regular(path, what) as (handle, size):
        head = handle.read(len(magic))
    if size > limit:
        raise InputFileError(f"{what} {path} is too large ({size} bytes; at most {limit})")
    if head[:2] == GZIP_MAGIC:
        raise InputFileError(f"{what} {path} is gzip-compressed: decompress it first "
                             "(gunzip)")
    if head != magic:
        raise InputFileError(f"{path} is not an {what} (it does not start with "
                             f"{magic.decode().strip()!r})")
    return size


def cell_of(unit_cell, path, what):
    """(a, b, c, alpha, beta, gamma) in Angstrom and radians from a gemmi.UnitCell,
    refusing a missing or placeholder cell (1 x 1 x 1 A, as in cryo-EM models)."""
    params = (unit_cell.a, unit_cell.b, unit_cell.c, unit_cell.alpha, unit_cell.beta,
              unit_cell.gamma)
    if not unit_cell.is_crystal() or not all(np.isfinite(params)) or min(params[:3]) <= 1.0:
        raise InputFileError(f"{what} {path} has no crystal unit cell (cell "
                             + " ".join("%g" % p for p in params) + ")")
    a, b, c, alpha, beta, gamma = (float(p) for p in params)
    return (a, b, c, alpha / RTD, beta / RTD, gamma / RTD)


def space_group_of(space_group, path, what):
    """The gemmi.SpaceGroup, refusing a file without one."""
    if space_group is None:
        raise InputFileError(f"{what} {path} gives no space group (or one gemmi does "
                             "not know)")
    return space_group


def rotations(space_group):
    """The distinct integer rotation matrices of the space group (m, 3, 3), each
    acting on a row vector of Miller indices (``h R``), and their negatives (Friedel
    mates): (2m, 3, 3)."""
    ops = space_group.operations()
    found = []
    for op in ops.sym_ops:
        matrix = np.array(op.rot, dtype=np.int64)
        if np.any(matrix % op.DEN):
            raise InputFileError(f"space group {space_group.xhm()}: a rotation that is not "
                                 "integral")
        found.append(matrix // op.DEN)
    unique = np.unique(np.array(found), axis=0)
    return np.concatenate([unique, -unique])


def expand_to_p1(hkl, F, space_group, name):
    """P1 reflections from reflections of the space group (module docstring): (hkl (n, 3)
    int64 sorted by h, k, l; F (n,) float64).

    hkl: (m, 3) integers, F: (m,) finite amplitudes; name: the file, for messages.
    """
    matrices = rotations(space_group)
    m = len(hkl)
    count = m * len(matrices)
    memory.require(EXPAND_BYTES_PER_REFLECTION * count,
                   f"expanding the {m} reflections of {name} to P1 ({count} before "
                   "merging)", "use fewer reflections (a lower resolution)", InputFileError)
    every = np.einsum("ni,kij->knj", hkl.astype(np.int64), matrices).reshape(-1, 3)
    values = np.tile(F, len(matrices))
    origin = np.tile(np.arange(m), len(matrices))
    low = every.min(axis=0)
    span = every.max(axis=0) - low + 1
    keys = ((every[:, 0] - low[0]) * span[1] + (every[:, 1] - low[1])) * span[2] \
        + (every[:, 2] - low[2])
    unique_keys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    lowest = np.full(len(unique_keys), np.inf)
    highest = np.full(len(unique_keys), -np.inf)
    np.minimum.at(lowest, inverse, values)
    np.maximum.at(highest, inverse, values)
    clash = np.flatnonzero(lowest != highest)
    if clash.size:
        _refuse_clash(clash[0], inverse, origin, hkl, F, space_group, name)
    return every[first], values[first]


def _refuse_clash(group, inverse, origin, hkl, F, space_group, name):
    members = np.unique(origin[inverse == group])
    i, j = members[0], members[1]
    raise InputFileError(
        f"{name}: reflections {' '.join(map(str, hkl[i]))} (F {F[i]:g}) and "
        f"{' '.join(map(str, hkl[j]))} (F {F[j]:g}) are symmetry equivalents in space "
        f"group {space_group.xhm()} with different amplitudes: the file is not merged in "
        "its space group")


def finite(hkl, F):
    """The reflections whose amplitude is given (missing values, NaN, left out)."""
    keep = np.isfinite(F)
    return hkl[keep], F[keep]


__all__ = ["Reflections", "INSTALL", "require_gemmi", "read_text_file", "check_binary_file",
           "cell_of", "space_group_of", "rotations", "expand_to_p1", "finite"]
