"""PNG previews for ``nb-compare``: a minimal PNG writer, greyscale and difference maps,
and a label strip (which image, what scale) drawn with a built-in 5 x 7 pixel font.

No imaging library is needed: PNG is zlib-compressed rows plus CRC-checked chunks, and
the label text is also stored in the file as ``tEXt`` chunks (``Title``, ``Description``).
"""
import struct
import zlib

import numpy as np

# 5 x 7 glyphs: seven rows of five bits each, the leftmost pixel in bit 4
_GLYPHS = {
    "0": "0E 11 13 15 19 11 0E", "1": "04 0C 04 04 04 04 0E", "2": "0E 11 01 02 04 08 1F",
    "3": "1F 02 04 02 01 11 0E", "4": "02 06 0A 12 1F 02 02", "5": "1F 10 1E 01 01 11 0E",
    "6": "06 08 10 1E 11 11 0E", "7": "1F 01 02 04 08 08 08", "8": "0E 11 11 0E 11 11 0E",
    "9": "0E 11 11 0F 01 02 0C", "A": "0E 11 11 11 1F 11 11", "B": "1E 11 11 1E 11 11 1E",
    "C": "0E 11 10 10 10 11 0E", "D": "1C 12 11 11 11 12 1C", "E": "1F 10 10 1E 10 10 1F",
    "F": "1F 10 10 1E 10 10 10", "G": "0E 11 10 17 11 11 0F", "H": "11 11 11 1F 11 11 11",
    "I": "0E 04 04 04 04 04 0E", "J": "07 02 02 02 02 12 0C", "K": "11 12 14 18 14 12 11",
    "L": "10 10 10 10 10 10 1F", "M": "11 1B 15 15 11 11 11", "N": "11 11 19 15 13 11 11",
    "O": "0E 11 11 11 11 11 0E", "P": "1E 11 11 1E 10 10 10", "Q": "0E 11 11 11 15 12 0D",
    "R": "1E 11 11 1E 14 12 11", "S": "0F 10 10 0E 01 01 1E", "T": "1F 04 04 04 04 04 04",
    "U": "11 11 11 11 11 11 0E", "V": "11 11 11 11 11 0A 04", "W": "11 11 11 15 15 15 0A",
    "X": "11 11 0A 04 0A 11 11", "Y": "11 11 11 0A 04 04 04", "Z": "1F 01 02 04 08 10 1F",
    " ": "00 00 00 00 00 00 00", ".": "00 00 00 00 00 0C 0C", "-": "00 00 00 1F 00 00 00",
    "+": "00 04 04 1F 04 04 00", ":": "00 0C 0C 00 0C 0C 00", "=": "00 00 1F 00 1F 00 00",
    "(": "02 04 08 08 08 04 02", ")": "08 04 02 02 02 04 08", ",": "00 00 00 00 0C 04 08",
    "/": "00 01 02 04 08 10 00", "?": "0E 11 01 02 04 00 04", "%": "18 19 02 04 08 13 03",
    "|": "04 04 04 04 04 04 04", "_": "00 00 00 00 00 00 1F", "<": "02 04 08 10 08 04 02",
    ">": "08 04 02 01 02 04 08",
}
_CELL = 6          # glyph width plus one column of space
_MARGIN = 2        # pixels around the text, at scale 1


def _glyph(char):
    rows = _GLYPHS.get(char.upper(), _GLYPHS["?"])
    bits = [int(r, 16) for r in rows.split()]
    return np.array([[(b >> (4 - k)) & 1 for k in range(5)] for b in bits], dtype=bool)


def label_scale(width):
    """Size factor of the label font for an image ``width`` pixels wide (1 ... 4)."""
    return int(min(4, max(1, width // 400)))


def label_height(width):
    """Height in pixels of the label strip above an image ``width`` pixels wide."""
    return (7 + 2 * _MARGIN) * label_scale(width)


def text_mask(text, scale=1):
    """Boolean (rows, columns) bitmap of ``text`` (letters drawn as capitals), with margins."""
    mask = np.zeros((7 + 2 * _MARGIN, 2 * _MARGIN + _CELL * len(text)), dtype=bool)
    for k, char in enumerate(text):
        x = _MARGIN + _CELL * k
        mask[_MARGIN:_MARGIN + 7, x:x + 5] = _glyph(char)
    return np.kron(mask, np.ones((scale, scale), dtype=bool)) if scale > 1 else mask


def labelled(pixels, text):
    """``pixels`` (uint8, (h, w) or (h, w, 3)) under a black strip with ``text`` in white;
    columns beyond the image (when the text is wider) are mid grey."""
    h, w = pixels.shape[:2]
    mask = text_mask(text, label_scale(w))
    width = max(w, mask.shape[1])
    canvas = np.full((mask.shape[0] + h, width) + pixels.shape[2:], 128, dtype=np.uint8)
    canvas[:mask.shape[0]] = 0
    canvas[:mask.shape[0], :mask.shape[1]][mask] = 255
    canvas[mask.shape[0]:, :w] = pixels
    return canvas


def png_bytes(pixels, text=None):
    """PNG file content of uint8 pixels: (h, w) greyscale or (h, w, 3) RGB; ``text``:
    optional {keyword: value} stored as ``tEXt`` chunks (Latin-1)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    colour = 0 if pixels.ndim == 2 else 2
    rows = pixels.reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter 0

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    notes = b"".join(chunk(b"tEXt", key.encode("latin-1") + b"\0"
                           + value.encode("latin-1", "replace"))
                     for key, value in (text or {}).items())
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
            + notes + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def labelled_png(pixels, title, description):
    """PNG of ``pixels`` with ``title`` drawn above them; both strings also as tEXt."""
    return png_bytes(labelled(pixels, title),
                     {"Title": title, "Description": description})


def grey_preview(image, lo, hi):
    """uint8 greyscale, linear between lo (black) and hi (white); non-finite -> black."""
    x = np.nan_to_num(image.astype(np.float64), nan=lo, posinf=lo, neginf=lo)
    span = hi - lo if hi > lo else 1.0
    return (np.clip((x - lo) / span, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def diff_scale(c, nb):
    """The |nb - c| shown at full colour: the 99.5th percentile (or the largest value)."""
    d = nb.astype(np.float64) - c.astype(np.float64)
    mags = np.abs(d[np.isfinite(d)])
    scale = float(np.percentile(mags, 99.5)) if mags.size else 0.0
    if scale == 0.0 and mags.size:
        scale = float(mags.max())
    return scale


def diff_preview(c, nb):
    """RGB map of nb - c: red positive, blue negative, white zero, black non-finite."""
    d = nb.astype(np.float64) - c.astype(np.float64)
    finite = np.isfinite(d)
    scale = diff_scale(c, nb)
    t = np.clip(np.where(finite, d, 0.0) / (scale if scale > 0 else 1.0), -1.0, 1.0)
    fade = ((1.0 - np.abs(t)) * 255.0 + 0.5).astype(np.uint8)
    rgb = np.empty(d.shape + (3,), np.uint8)
    rgb[..., 0] = np.where(t < 0, fade, 255)
    rgb[..., 1] = fade
    rgb[..., 2] = np.where(t > 0, fade, 255)
    rgb[~finite] = 0
    return rgb


def percentile_range(image):
    """(lo, hi): the 0.5th and 99.5th percentiles of the finite pixels (or min, max)."""
    values = image[np.isfinite(image)].astype(np.float64)
    if not values.size:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
    return float(lo), float(hi)
