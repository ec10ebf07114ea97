"""``Fdump.bin``: the structure-factor cache the C program writes after reading ``-hkl``.

Layout: the text ``"h_min h_max k_min k_max l_min l_max\\n\\f"`` followed by the whole
padded grid, (h_range+1)(k_range+1)(l_range+1) little-endian float64, h outermost and l
innermost. The reader takes the text up to the first newline and then requires one form
feed byte (the C's reader also swallows following whitespace bytes, corrupting grids
whose first value starts with one; nbnumba does not).
"""
import numpy as np

from .. import memory
from ..config import StructureFactors
from .atomic import write_atomic
from .errors import InputFileError, open_regular
from .hkl import MAX_GRID_POINTS

DUMP_NAME = "Fdump.bin"

#: longest header line read (bytes)
MAX_HEADER = 200


def _header(sf: StructureFactors):
    h_max, k_max, l_max = sf.maxima
    return f"{sf.h_min} {h_max} {sf.k_min} {k_max} {sf.l_min} {l_max}\n\f".encode("ascii")


def fdump_bytes(sf: StructureFactors):
    """The bytes of an Fdump.bin file for a structure-factor grid."""
    return _header(sf) + np.ascontiguousarray(sf.grid, dtype="<f8").tobytes()


def write_fdump(sf: StructureFactors, path=DUMP_NAME):
    """Write the structure-factor cache (safely, see :mod:`nbnumba.io.atomic`), without
    copying the grid."""
    grid = np.ascontiguousarray(sf.grid, dtype="<f8")
    write_atomic(path, [_header(sf), memoryview(grid).cast("B")])


def parse_fdump(data, name=DUMP_NAME):
    """Parse Fdump.bin bytes into :class:`StructureFactors` (count = number of grid points)."""
    newline = data.find(b"\n")
    if newline < 0 or newline > 200:
        raise InputFileError(f"{name}: not a structure-factor dump (no header line)")
    try:
        bounds = [int(x) for x in data[:newline].decode("ascii").split()]
    except (UnicodeDecodeError, ValueError):
        raise InputFileError(f"{name}: malformed header line") from None
    if len(bounds) != 6:
        raise InputFileError(f"{name}: header needs 6 integers, found {len(bounds)}")
    if data[newline + 1:newline + 2] != b"\f":
        raise InputFileError(f"{name}: missing form feed after the header line")
    h_min, h_max, k_min, k_max, l_min, l_max = bounds
    ranges = (h_max - h_min + 1, k_max - k_min + 1, l_max - l_min + 1)
    if min(ranges) < 1:
        raise InputFileError(f"{name}: empty index range in header")
    shape = tuple(r + 1 for r in ranges)
    body = data[newline + 2:]
    need = 8 * shape[0] * shape[1] * shape[2]
    if len(body) < need:
        raise InputFileError(f"{name}: truncated ({len(body)} of {need} data bytes)")
    grid = np.frombuffer(body[:need], dtype="<f8").astype(float).reshape(shape)
    values = grid[:-1, :-1, :-1]
    if not np.all(np.isfinite(values)):
        index = np.unravel_index(int(np.argmax(~np.isfinite(values))), values.shape)
        hkl = (h_min + int(index[0]), k_min + int(index[1]), l_min + int(index[2]))
        raise InputFileError(f"{name}: structure factor of {hkl[0]} {hkl[1]} {hkl[2]} is "
                             f"{values[index]} (a dump holds finite numbers, as HKL files "
                             "do); delete it, or give -hkl")
    # the padding slices are never read; they hold zeros, as in a dump the C writes
    grid[-1, :, :] = grid[:, -1, :] = grid[:, :, -1] = 0.0
    return StructureFactors(grid=grid, h_min=h_min, k_min=k_min, l_min=l_min,
                            count=ranges[0] * ranges[1] * ranges[2])


def _grid_bytes(head, name):
    """Data bytes announced by a header (checked against the grid limit and memory)."""
    newline = head.find(b"\n")
    try:
        bounds = [int(x) for x in head[:newline].decode("ascii").split()] if newline > 0 else []
    except (UnicodeDecodeError, ValueError):
        return 0  # the parser reports the malformed header
    if len(bounds) != 6:
        return 0
    shape = [max(hi - lo + 2, 0) for lo, hi in zip(bounds[0::2], bounds[1::2])]
    points = shape[0] * shape[1] * shape[2]
    if points > MAX_GRID_POINTS:
        raise InputFileError(f"{name}: a grid of {points} structure factors "
                             f"(at most {MAX_GRID_POINTS})")
    memory.require(8 * points, f"the structure-factor grid of {name}",
                   "delete it or give -hkl with a smaller range of Miller indices",
                   InputFileError)
    return 8 * points


def read_fdump(path=DUMP_NAME):
    """Read an Fdump.bin file (a regular file; only the bytes its header announces)."""
    name = str(path)
    with open_regular(path, "structure-factor dump") as (handle, _):
        head = handle.read(MAX_HEADER + 2)
        need = _grid_bytes(head, name)
        data = head + handle.read(max(need - (len(head) - head.find(b"\n") - 2), 0))
    return parse_fdump(data, name=name)
