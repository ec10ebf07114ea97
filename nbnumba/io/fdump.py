"""``Fdump.bin``: the structure-factor cache the C program writes after reading ``-hkl``.

Layout: the text ``"h_min h_max k_min k_max l_min l_max\\n\\f"`` followed by the whole
padded grid, (h_range+1)(k_range+1)(l_range+1) little-endian float64, h outermost and l
innermost. The reader takes the text up to the first newline and then requires one form
feed byte (the C's reader also swallows following whitespace bytes, corrupting grids
whose first value starts with one; nbnumba does not).
"""
import numpy as np

from ..config import StructureFactors
from .atomic import write_atomic
from .errors import InputFileError, read_bytes

DUMP_NAME = "Fdump.bin"


def fdump_bytes(sf: StructureFactors):
    """The bytes of an Fdump.bin file for a structure-factor grid."""
    h_max, k_max, l_max = sf.maxima
    header = f"{sf.h_min} {h_max} {sf.k_min} {k_max} {sf.l_min} {l_max}\n\f".encode("ascii")
    return header + np.ascontiguousarray(sf.grid, dtype="<f8").tobytes()


def write_fdump(sf: StructureFactors, path=DUMP_NAME):
    """Write the structure-factor cache (atomically)."""
    write_atomic(path, fdump_bytes(sf))


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
    return StructureFactors(grid=grid, h_min=h_min, k_min=k_min, l_min=l_min,
                            count=ranges[0] * ranges[1] * ranges[2])


def read_fdump(path=DUMP_NAME):
    """Read an Fdump.bin file."""
    return parse_fdump(read_bytes(path, "structure-factor dump"), name=str(path))
