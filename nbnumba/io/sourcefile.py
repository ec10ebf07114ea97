"""Source list files (``-sourcefile``): one source per line, ``X Y Z weight lambda``.

Columns are positions (m, from the sample towards the source), a weight (read and
reported, never applied) and a wavelength (m). Any of the six characters
space, tab, ``,``, ``;``, ``:``, ``!`` separates columns; a line may give 1 to 5
columns and later columns are ignored; missing columns get defaults later (see
:func:`nbnumba.sources.file_sources`). Lines holding only separators are skipped.

Where the C reader silently turns bad lines into zeros (a NaN image), this reader
stops with an error naming the file and line: comment lines, words, and lines with no
number at all. Windows (CR-LF) line ends and a last line without a newline are read as
the user meant them.
"""
import re

import numpy as np

from ..config import SourceList
from .errors import MiB, InputFileError, read_text

#: largest source (or -stol) file read (bytes): about 100 000 lines of 40 characters
MAX_FILE_BYTES = 4 * MiB

_SEPARATORS = re.compile(r"[ \t,;:!]+")


def parse_sources(text, name="source file", empty="no sources in file"):
    """Parse source-file text into a :class:`SourceList` (NaN for missing columns).

    empty: what to say when the text holds no line of numbers (the ``-stol`` table,
    read with the same parser, says so in its own words)."""
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        tokens = [t for t in _SEPARATORS.split(line) if t]
        if not tokens:
            continue
        values = []
        for token in tokens[:5]:
            try:
                value = float(token)
            except ValueError:
                raise InputFileError(
                    f"{name} line {number}: {token!r} is not a number "
                    "(expected X Y Z weight lambda; comments are not allowed)") from None
            if not np.isfinite(value):
                raise InputFileError(f"{name} line {number}: {token!r} is not a finite number")
            values.append(value)
        rows.append(values + [np.nan] * (5 - len(values)))
    if not rows:
        raise InputFileError(f"{name}: {empty}")
    table = np.array(rows, dtype=float)
    # any direction, as the C renders it (a source downstream of the sample too)
    return SourceList(positions=table[:, :3].copy(), weights=table[:, 3].copy(),
                      wavelengths=table[:, 4].copy(), upstream_only=False)


def read_sources(path):
    """Read a ``-sourcefile`` into a :class:`SourceList`."""
    return parse_sources(read_text(path, "source file", MAX_FILE_BYTES), name=str(path))
