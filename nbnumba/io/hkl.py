"""HKL text files (``-hkl``): one reflection per line, ``h k l F``.

The first four whitespace-separated numbers of each non-blank line are h, k, l and F;
further columns (sigma, phase, ...) are ignored. Indices must be integers (``1.0`` is
read as 1; ``1.5`` is an error naming the line). Later duplicates replace earlier ones.
The grid spans the indices read; points missing from the file hold ``default_F`` and
lookups outside the grid give ``default_F`` too (see :mod:`nbnumba.physics`).

For files with exactly four integer columns this is what the C program reads; for
others the C scrambles columns across lines, which nbnumba does not reproduce. An MTZ
file, a coordinate model or a structure-factor mmCIF file given as an HKL file is
refused with the flag that reads it (``--mtz``, ``--model``, ``--sf-cif``).
"""
import contextlib
import os
import re

import numpy as np

from .. import memory
from ..config import MAX_GRID_POINTS, MAX_INDEX, build_grid  # noqa: F401
from .errors import MiB, InputFileError, read_bytes

#: largest HKL file read (bytes): about 8 million reflections of 30 characters
MAX_FILE_BYTES = 256 * MiB

#: memory used while parsing, per byte of HKL text (measured: 25 for lines of 9 bytes)
PARSE_BYTES_PER_BYTE = 32


def parse_hkl(text, name="HKL file"):
    """Parse HKL text into integer index arrays and F values: (hkl (n,3) int64, F (n,))."""
    indices, values = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 4:
            raise InputFileError(f"{name} line {number}: expected h k l F, got {len(tokens)} value(s)")
        try:
            numbers = [float(t) for t in tokens[:4]]
        except ValueError:
            raise InputFileError(f"{name} line {number}: h k l F must be numbers: {line.strip()!r}") from None
        if not all(np.isfinite(numbers)):
            raise InputFileError(f"{name} line {number}: h k l F must be finite numbers")
        hkl = numbers[:3]
        if any(x != round(x) for x in hkl):
            raise InputFileError(f"{name} line {number}: Miller indices must be integers, got "
                                 + repr(" ".join(tokens[:3])))
        if any(abs(x) > MAX_INDEX for x in hkl):
            raise InputFileError(f"{name} line {number}: Miller index out of range")
        indices.append([int(round(x)) for x in hkl])
        values.append(numbers[3])
    if not indices:
        raise InputFileError(f"{name}: no reflections found")
    return np.array(indices, dtype=np.int64), np.array(values, dtype=float)


def grid_from_reflections(hkl, F, default_F, name="HKL file", say=None):
    """Structure factors on a dense grid spanning the given indices
    (:func:`nbnumba.config.build_grid`; a grid too large is an :class:`InputFileError`
    naming the file, a large one is announced through ``say`` first)."""
    return build_grid(hkl, F, default_F, InputFileError, f"the reflections of {name}", say,
                      "use an HKL file with a smaller range of Miller indices")


def read_hkl(path, default_F=0.0, say=None):
    """Read an ``-hkl`` file (a regular file of at most :data:`MAX_FILE_BYTES`) into
    :class:`StructureFactors`; the memory of the parse and of the grid is checked first.

    say: callable(text) told before a large grid is allocated (default: a warning)."""
    with contextlib.suppress(OSError):
        size = os.stat(path).st_size
        if size <= MAX_FILE_BYTES:
            memory.require(PARSE_BYTES_PER_BYTE * size, f"reading HKL file {path}",
                           "use a smaller HKL file", InputFileError)
    data = read_bytes(path, "HKL file", MAX_FILE_BYTES)
    if data[:4] == MTZ_MAGIC:
        raise InputFileError(f"HKL file {path} is an MTZ file: give it as --mtz {path} "
                             "(-hkl reads text, one 'h k l F' per line)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError(f"HKL file {path} is not a text file") from None
    try:
        hkl, F = parse_hkl(text, name=str(path))
    except InputFileError:
        other = _other_format(text)
        if other:
            raise InputFileError(f"HKL file {path} is {other}") from None
        raise
    return grid_from_reflections(hkl, F, default_F, str(path), say)


#: MTZ files start with these bytes
MTZ_MAGIC = b"MTZ "

#: a PDB file's coordinate and cell records
_PDB_RECORDS = re.compile(r"^(ATOM  |HETATM|CRYST1)", re.MULTILINE)


def _other_format(text):
    """What a text that is not an HKL file is, with the flag that reads it, or None."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first.startswith("data_") or first.startswith("#"):
        if "_atom_site." in text:
            return "a coordinate model (mmCIF): give it as --model FILE --d-min A"
        if "_refln." in text:
            return "a structure-factor mmCIF file: give it as --sf-cif FILE"
    if _PDB_RECORDS.search(text):
        return "a coordinate model (PDB): give it as --model FILE --d-min A"
    return None
