"""Compare nbnumba's float image with the C program's.

Rule (per pixel, b the C's value): ``|a - b| <= 1e-6 * max(|b|, 1e-6 * max|b|)``, i.e.
one part per million relative, with a floor of 1e-12 of the image maximum for pixels near
zero. NaN in both images counts as equal; NaN in one only never does. The images are raw
native-endian float32 rasters (photons per pixel) of the same size, compared in chunks so
that a 4096 x 4096 image needs little memory.
"""
import os

import numpy as np

#: relative tolerance of the rule
RTOL = 1e-6
#: floor of the denominator, as a fraction of the C image's largest |value|
FLOOR = 1e-6
#: pixels per chunk
CHUNK = 1 << 20


def read_float_image(path):
    """A float image file as a flat float32 array (memory-mapped)."""
    return np.memmap(path, dtype=np.float32, mode="r")


def _max_abs_finite(b):
    """Largest |value| among the finite pixels of ``b`` (0 when none)."""
    top = 0.0
    for i in range(0, b.size, CHUNK):
        chunk = np.abs(b[i:i + CHUNK].astype(np.float64))
        chunk = chunk[np.isfinite(chunk)]
        if chunk.size:
            top = max(top, float(chunk.max()))
    return top


def _chunk_stats(a, b, floor):
    """(bad pixels, max relative diff, max |a - b|, bit-identical) of one chunk."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    diff = np.abs(a64 - b64)
    diff[np.isnan(a64) & np.isnan(b64)] = 0.0   # NaN in both: the same
    diff[np.isnan(diff)] = np.inf                # NaN in one only: never within the rule
    denom = np.maximum(np.abs(np.nan_to_num(b64)), floor)
    bad = int((~(diff <= RTOL * denom)).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0.0, 0.0, diff / denom)
    identical = bool(np.array_equal(a.view(np.uint32), b.view(np.uint32)))
    return bad, float(rel.max()), float(diff.max()), identical


def compare(a, b):
    """Compare image ``a`` (nbnumba) with ``b`` (C, the reference), flat float32 arrays.

    Returns a dict: ``equal`` (every pixel within the rule), ``identical`` (bit for bit),
    ``max_rel_diff`` (largest |a - b| / max(|b|, FLOOR * max|b|); 0 for identical images),
    ``max_abs_diff`` (photons), ``bad_pixels`` (outside the rule), ``pixels``; or
    ``error`` when the sizes differ.
    """
    if a.shape != b.shape:
        return {"equal": False, "identical": False, "pixels": int(b.size),
                "error": "sizes differ: %d vs %d floats" % (a.size, b.size)}
    floor = FLOOR * _max_abs_finite(b)
    bad, max_rel, max_abs, identical = 0, 0.0, 0.0, True
    for i in range(0, b.size, CHUNK):
        n, rel, dif, same = _chunk_stats(a[i:i + CHUNK], b[i:i + CHUNK], floor)
        bad, max_rel, max_abs = bad + n, max(max_rel, rel), max(max_abs, dif)
        identical = identical and same
    return {"equal": bad == 0, "identical": identical, "max_rel_diff": max_rel,
            "max_abs_diff": max_abs, "bad_pixels": bad, "pixels": int(b.size)}


def compare_files(nb_path, c_path):
    """:func:`compare` of two float image files (``error`` when one is missing)."""
    missing = [p for p in (nb_path, c_path) if not os.path.isfile(p)]
    if missing:
        return {"equal": False, "identical": False, "error": "no float image %s" % missing[0]}
    return compare(read_float_image(nb_path), read_float_image(c_path))
