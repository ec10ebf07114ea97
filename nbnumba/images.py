"""From the float image to what the C program prints and writes.

Statistics, integer (SMV) scaling and the PGM preview, each computed in the C's order
and arithmetic so that the printed numbers and the files are identical.
"""
from dataclasses import dataclass

import numpy as np

from . import _jit
from .errors import ConfigError


@dataclass
class ImageStatistics:
    """The C's statistics of a float image (photons per pixel)."""
    max_I: float        #: largest rendered pixel value
    max_index: int      #: linear index of that pixel (-1 if nothing rendered)
    mean: float         #: over rendered pixels
    rms: float          #: sqrt(sum v^2 / (n - 1)) over rendered pixels, v^2 in float32
    rmsd: float         #: deviation from the mean over every pixel inside the ROI
    rendered: int       #: number of rendered pixels


@_jit.serial
def _statistics(values, fpixels, spixels, roi, mask, use_mask):
    max_i = 0.0
    max_index = -1
    total = 0.0
    total_sq = 0.0
    n = 0
    for s in range(spixels):
        for f in range(fpixels):
            if f < roi[0] or f > roi[1] or s < roi[2] or s > roi[3]:
                continue
            i = s * fpixels + f
            if use_mask and mask[i] == 0:
                continue
            v32 = values[i]
            v = np.float64(v32)
            if v > max_i:
                max_i = v
                max_index = i
            total += v
            # the C squares the float pixel in single precision (it can underflow to 0 or
            # overflow to inf) and adds the float square to a double sum
            total_sq += np.float64(np.float32(v32 * v32))
            n += 1
    n0 = n if n > 0 else 1
    mean = total / n0
    n1 = n0 if n0 > 1 else 2
    rms = np.sqrt(total_sq / (n1 - 1))
    dev = 0.0
    m = 0
    for s in range(spixels):
        for f in range(fpixels):
            if f < roi[0] or f > roi[1] or s < roi[2] or s > roi[3]:
                continue
            t = np.float64(values[s * fpixels + f]) - mean
            dev += t * t
            m += 1
    m1 = m if m > 1 else 2
    return max_i, max_index, mean, rms, np.sqrt(dev / (m1 - 1)), n


def statistics(values, fpixels, spixels, roi, mask=None):
    """Statistics of a float32 image (flat, raster order) as the C computes them.

    roi: (xmin, xmax, ymin, ymax) inclusive; mask: flat uint16 (0 = not rendered) or None.
    """
    use_mask = mask is not None
    mask_arr = np.asarray(mask, dtype=np.uint16).ravel() if use_mask else np.zeros(1, np.uint16)
    out = _statistics(np.asarray(values, dtype=np.float32).ravel(), fpixels, spixels,
                      np.asarray(roi, dtype=np.int64), mask_arr, use_mask)
    max_i, max_index, mean, rms, rmsd, n = out
    return ImageStatistics(float(max_i), int(max_index), float(mean), float(rms), float(rmsd), int(n))


@_jit.serial
def c_unsigned(v):
    """The bits the C's cast of a double ``v`` to an unsigned char or short keeps, on
    x86-64 (gcc truncates to a 32-bit integer and keeps the low byte(s)): ``v`` truncated
    toward zero as a 32-bit integer, or 0x80000000 (the "integer indefinite") for NaN and
    values out of its range. So a negative pixel wraps: -633 as a byte is 135."""
    if -2147483649.0 < v < 2147483648.0:  # False for NaN too
        return np.int64(v) & 0xFFFFFFFF
    return np.int64(0x80000000)


@_jit.serial
def _integer_pixels(values, fpixels, spixels, roi, scale, adc, out):
    for s in range(spixels):
        for f in range(fpixels):
            if f < roi[0] or f > roi[1] or s < roi[2] or s > roi[3]:
                continue
            i = s * fpixels + f
            v = np.float64(values[i]) * scale + adc
            if v > 65535.0:
                v = 65535.0
            if v < 0.0:
                v = 0.0
            out[i] = np.uint16(c_unsigned(np.floor(np.float32(v + 0.5))) & 0xFFFF)


def integer_scale(requested, max_I):
    """The scale the int image uses: the requested one if > 0, else 55000/max_I (or 1)."""
    if requested > 0.0:
        return float(requested)
    return 55000.0 / max_I if max_I > 0.0 else 1.0


def integer_image(values, fpixels, spixels, roi, scale, adc):
    """uint16 pixels of the noiseless SMV image: floor(float32(v*scale + adc + 0.5)).

    Pixels outside the ROI are 0; masked pixels inside it hold the ADC offset.
    """
    out = np.zeros(fpixels * spixels, dtype=np.uint16)
    _integer_pixels(np.asarray(values, dtype=np.float32).ravel(), fpixels, spixels,
                    np.asarray(roi, dtype=np.int64), float(scale), float(adc), out)
    return out


def pgm_scale(requested, rmsd, int_scale):
    """The PGM scale: the requested one if > 0, else 250/(5 rmsd) (or the int scale)."""
    if requested > 0.0:
        return float(requested)
    return 250.0 / (5.0 * rmsd) if rmsd > 0.0 else int_scale


@_jit.serial
def _pgm_pixels(values, fpixels, spixels, roi, scale, out):
    for s in range(spixels):
        for f in range(fpixels):
            if f < roi[0] or f > roi[1] or s < roi[2] or s > roi[3]:
                continue
            i = s * fpixels + f
            v = np.float64(values[i]) * scale
            if v > 255.0:
                v = 255.0
            out[i] = np.uint8(c_unsigned(v) & 0xFF)  # the C's (unsigned char) cast


def pgm_pixels(values, fpixels, spixels, roi, scale):
    """uint8 PGM pixels: min(v*scale, 255) truncated toward zero, 0 outside the ROI.

    A negative (or NaN) value gives the C's bytes on x86-64 (see :func:`_c_byte`): the
    low byte of the value truncated to a 32-bit integer, 0 for NaN and below -2**31.
    """
    out = np.zeros(fpixels * spixels, dtype=np.uint8)
    _pgm_pixels(np.asarray(values, dtype=np.float32).ravel(), fpixels, spixels,
                np.asarray(roi, dtype=np.int64), float(scale), out)
    return out


#: largest value of the unsigned integer dtypes the files hold
_LIMITS = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def check_pixels(pixels, shape, what, target=np.uint16, also=(), hint=""):
    """``pixels`` for a file of a detector of ``shape`` (slow, fast): an array of that
    shape (or flat, the same number of pixels) of dtype ``target`` (an unsigned integer
    dtype) or one of ``also``. Integers of another dtype are converted when every value
    fits ``target`` (nothing is truncated or wrapped); anything else, and a wrong shape,
    raise :class:`ConfigError` saying what was expected. ``what``: the argument's name
    in the message; ``hint``: how to make such an array (for a float array)."""
    target = np.dtype(target)
    names = " or ".join(str(np.dtype(d)) for d in (target,) + tuple(also))
    rows, cols = shape
    if isinstance(pixels, (str, bytes)) or pixels is None:
        raise ConfigError(f"{what} must be an array of {names} of shape ({rows}, {cols}), got "
                          f"{type(pixels).__name__}")
    try:
        array = np.asarray(pixels)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{what} must be an array of {names} of shape ({rows}, {cols}), "
                          f"got {type(pixels).__name__}") from None
    if array.shape not in ((rows, cols), (rows * cols,)):
        raise ConfigError(f"{what} has shape {array.shape}, but the result's detector has "
                          f"{cols}x{rows} pixels: give shape ({rows}, {cols}) (slow, fast) or "
                          f"({rows * cols},)")
    if array.dtype == target or array.dtype in [np.dtype(d) for d in also]:
        return array
    if array.dtype.kind in "iu":
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if 0 <= low and high <= _LIMITS[target]:
            return array.astype(target)
        raise ConfigError(f"{what} holds values from {low} to {high}, but a file of {target} "
                          f"pixels holds 0 to {_LIMITS[target]}: they would wrap; clip them "
                          f"first (np.clip(pixels, 0, {_LIMITS[target]}))")
    why = {"f": "they would be truncated" + (f"; {hint}" if hint else ""),
           "b": "booleans are not counts"}.get(array.dtype.kind, "they are not numbers")
    raise ConfigError(f"{what} must be {names}, got dtype {array.dtype}: {why}")
