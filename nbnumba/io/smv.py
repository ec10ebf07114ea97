"""SMV (ADSC) images: the writer for ``-intfile``/``-noisefile`` and the header reader.

Writer: a text header in the C program's key order and ``%g`` formatting, closed by
``}`` and a form feed and padded with spaces to 512 bytes (a longer header is written
unpadded, as the C does, while still saying HEADER_BYTES=512), then little-endian
unsigned 16-bit pixels in raster order.

Reader: a header value is found at the *last* occurrence of its key anywhere in the
text (so ``DISTANCE`` reads ``CLOSE_DISTANCE`` in nanoBragg headers); pixel data start
at HEADER_BYTES.
"""
import re
from dataclasses import dataclass

import numpy as np

from .. import memory
from ..constants import RTD
from .atomic import write_atomic
from .errors import InputFileError, open_regular

HEADER_BYTES = 512

#: largest header read (bytes)
MAX_HEADER_BYTES = 1 << 20
_MAGIC = b"{\nHEADER_BYT"
_C_FLOAT = re.compile(rb"^[ \t\n\v\f\r]*([+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?))")


def header_text(fields, header_bytes=HEADER_BYTES):
    """SMV header bytes (without padding) from an ordered list of (key, text, semicolon).

    A field whose ``semicolon`` is false is written without the ``;``
    (``DIALS_ORIGIN=a,b,c``, as the C writes it).
    """
    lines = ["{", f"HEADER_BYTES={header_bytes};", "DIM=2;", "BYTE_ORDER=little_endian;",
             "TYPE=unsigned_short;"]
    for key, text, semicolon in fields:
        lines.append(f"{key}={text}{';' if semicolon else ''}")
    return ("\n".join(lines) + "\n}\f").encode("ascii")


def padded_header(fields):
    """Header text whose HEADER_BYTES is a multiple of 512 that holds it (an nbnumba
    extension: the C program writes longer headers unpadded while saying 512)."""
    size = HEADER_BYTES
    while True:
        text = header_text(fields, size)
        if len(text) <= size:
            return text
        size = -(-len(text) // HEADER_BYTES) * HEADER_BYTES


def smv_bytes(header, pixels):
    """Complete SMV file content: header, space padding to HEADER_BYTES, uint16 data."""
    size = int(header_value(header, "HEADER_BYTES") or HEADER_BYTES)
    pad = b" " * max(0, size - len(header))
    return [header, pad, memoryview(np.ascontiguousarray(pixels, dtype="<u2")).cast("B")]


def write_smv(path, header, pixels):
    """Write an SMV image atomically. ``pixels``: uint16 array in raster order."""
    write_atomic(path, smv_bytes(header, pixels))


def c_atof(text):
    """C ``atof`` of bytes: the longest numeric prefix after whitespace, 0.0 if none."""
    m = _C_FLOAT.match(text)
    return float(m.group(1)) if m else 0.0


@dataclass
class SMVImage:
    """An SMV file as the C reads it: header text, size and raw pixel values."""
    path: str
    header: bytes
    header_size: int
    width: int
    height: int
    data: np.ndarray  #: uint16, raster order (slow index outer)

    def value(self, key):
        """The number after the last occurrence of ``key`` (None if the key is absent)."""
        return header_value(self.header, key)

    def geometry(self):
        """{key: value} of the geometry keys of :data:`HEADER_GEOMETRY` the header holds,
        in the configuration's units (m, rad; ORGX and ORGY in pixels), converted as the
        C converts them."""
        found = {}
        for key, divisor in HEADER_GEOMETRY:
            v = self.value(key)
            if v is not None:
                found[key] = v / divisor if divisor is not None else v
        return found


#: the geometry keys an SMV header may give (read by -img and -mask), and the divisor
#: to the configuration's units: mm -> m, Angstrom -> m, degrees -> rad, pixels as they are
HEADER_GEOMETRY = (("PIXEL_SIZE", 1000.0), ("DISTANCE", 1000.0), ("CLOSE_DISTANCE", 1000.0),
                   ("WAVELENGTH", 1e10), ("BEAM_CENTER_X", 1000.0), ("BEAM_CENTER_Y", 1000.0),
                   ("ORGX", None), ("ORGY", None), ("PHI", RTD), ("OSC_RANGE", RTD))


def header_value(header, key):
    """C ``ValueOf``: last occurrence of ``key`` as a substring, then the text after '='."""
    k = key.encode("ascii")
    pos = header.rfind(k)
    if pos < 0:
        return None
    eq = header.find(b"=", pos + len(k))
    if eq < 0:
        return 0.0
    return c_atof(header[eq + 1:])


def _count(value, key, what, path):
    """A header count as an int (0 when the key is absent); an error when out of range."""
    if value is None:
        return 0
    if not (abs(value) < 2 ** 31):
        raise InputFileError(f"{what} {path}: {key} value {value:g} is out of range")
    return int(value)


def read_smv(path, what="SMV image"):
    """Read an SMV file's header and pixels; InputFileError if it is not one.

    The file must be a regular file; only the header (at most :data:`MAX_HEADER_BYTES`)
    and the pixels it announces are read, after a check that they fit in memory.
    """
    with open_regular(path, what) as (handle, size):
        data = handle.read(HEADER_BYTES)
        if data.startswith(_MAGIC):
            first = data.split(b"\0", 1)[0]
            declared = header_value(first, "HEADER_BYTES")
            if declared is not None and HEADER_BYTES < declared <= MAX_HEADER_BYTES:
                data += handle.read(int(declared) - HEADER_BYTES)
            if declared is not None and declared > MAX_HEADER_BYTES:
                raise InputFileError(f"{what} {path}: HEADER_BYTES {declared:g} is larger "
                                     f"than {MAX_HEADER_BYTES}")
            data += handle.read(_pixel_bytes(data, what, path, size))
    return _parse_smv(data, path, what)


def _pixel_bytes(header, what, path, size):
    """Bytes of pixel data a header announces (memory checked), capped by the file."""
    head = header.split(b"\0", 1)[0]
    width = _count(header_value(head, "SIZE1"), "SIZE1", what, path)
    height = _count(header_value(head, "SIZE2"), "SIZE2", what, path)
    if width == 0:
        width = height = _count(header_value(head, "DETECTOR_DIMENSIONS"),
                                "DETECTOR_DIMENSIONS", what, path)
    need = 2 * max(width, 0) * max(height, 0)
    memory.require(min(need, size) * 3, f"{what} {path} ({width}x{height} pixels)",
                   "use a smaller image", InputFileError)
    return min(need, size)


def _parse_smv(data, path, what):
    if not data.startswith(_MAGIC):
        raise InputFileError(f"{what} {path} does not look like an SMV (ADSC) image")
    first = data[:HEADER_BYTES].split(b"\0", 1)[0]
    header_size = _count(header_value(first, "HEADER_BYTES"), "HEADER_BYTES", what, path)
    if header_size <= 0:
        raise InputFileError(f"{what} {path}: bad HEADER_BYTES")
    header = data[:header_size].split(b"\0", 1)[0] if header_size != HEADER_BYTES else first
    width = _count(header_value(header, "SIZE1"), "SIZE1", what, path)
    height = _count(header_value(header, "SIZE2"), "SIZE2", what, path)
    if width == 0:
        width = height = _count(header_value(header, "DETECTOR_DIMENSIONS"),
                                "DETECTOR_DIMENSIONS", what, path)
    if width <= 0 or height <= 0:
        raise InputFileError(f"{what} {path}: no image size (SIZE1/SIZE2) in header")
    need = 2 * width * height
    body = data[header_size:header_size + need]
    if len(body) < need:
        raise InputFileError(f"{what} {path}: truncated ({len(body)} of {need} pixel bytes)")
    pixels = np.frombuffer(body, dtype="<u2").copy()
    return SMVImage(path=str(path), header=header, header_size=header_size, width=width,
                    height=height, data=pixels)
