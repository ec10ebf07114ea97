"""Detector point-spread functions: the C noisify's direct sum, and an FFT path.

The C spreads every pixel with a positive value over a disc of radius ``r_i`` (in
pixels) around it, weighting each neighbour by the PSF integrated over that neighbour
(``fiber``: g / 2 pi (g^2 + r^2)^(3/2), ``gauss``: a normalised 2-D Gaussian). Unless
the radius is given, it grows with the pixel's value (``r = 1 + ceil(10 g sqrt(I))``
for the fiber PSF), up to the larger image dimension. The photons that fall outside
each disc are added back evenly over the whole image.

Two ways to the same image:

* :func:`direct` -- the C's sum, bit for bit: each output pixel receives its
  contributions in the C's order, rounded to float32 after every addition. Output rows
  are handed to threads, so the result does not depend on the thread count. Cost:
  sum of (2 r_i + 1)^2 over the pixels.
* the FFT path -- every disc is summed directly out to :data:`FFT_MIN_RADIUS` pixels,
  in the C's order; beyond that, the pixels are grouped by radius and each group is
  convolved with its kernel annulus by ``scipy.signal.oaconvolve`` in double
  precision. The result differs from the direct sum only by rounding: at most
  :data:`FFT_TOLERANCE` of the image maximum (``tests/test_toolbox.py``). Summing the
  whole disc by FFT (``method="fft"``) differs by up to a few 1e-6: the direct sum's
  own float32 rounding near bright pixels.

Two details of the C are kept because they decide the numbers: a contribution that
lands one column past the right edge (x = width) continues at column 0 of the next row,
and the kernel is cached at the radius of the brightest pixel.
"""
import math
import sys

import numpy as np
from numba import prange

from .. import _jit

GAUSS = 1
FIBER = 2
PSF_TYPES = {"gauss": GAUSS, "fiber": FIBER}

#: fiber PSF: g = fwhm * G_PER_FWHM (fwhm = sqrt(2^(2/3) - 1) g ... as the C writes it)
G_PER_FWHM = 0.652383013252053
#: the C keeps an error of sqrt(I)/PHOTON_LOSS_FACTOR photons per pixel
PHOTON_LOSS_FACTOR = 10.0
#: above this radius (pixels) the automatic method convolves by FFT
FFT_MIN_RADIUS = 48
#: largest difference of the automatic method from the direct sum, relative to the image
#: maximum (measured: at most 1.2e-7 in tests/test_toolbox.py)
FFT_TOLERANCE = 1e-6
#: the same for ``method="fft"`` (whole discs by FFT; measured: at most 2.2e-6)
FULL_FFT_TOLERANCE = 1e-5
#: the largest image dimension a PSF may be applied to (the kernel is (2 n + 1)^2 doubles)
MAX_PSF_WIDTH = 8192


@_jit.scalar
def _gauss_integral(x, y):
    """Integral of the unit-fwhm 2-D Gaussian from -inf to (x, y)."""
    return 0.125 * (math.erf(2 * x * math.sqrt(math.log(2.0)))
                    * math.erf(y * math.sqrt(math.log(16.0)))
                    * math.sqrt(math.log(16.0) / math.log(2.0)))


@_jit.scalar
def _fiber_integral(x, y, g):
    return math.atan((x * y) / (g * math.sqrt(g * g + x * x + y * y))) / 2.0 / math.pi


@_jit.scalar
def kernel_value(kind, dx, dy, fwhm, g):
    """PSF integrated over the pixel at offset (dx, dy) pixels, as the C evaluates it."""
    if kind == GAUSS:
        x = dx / fwhm
        y = dy / fwhm
        p = 1.0 / fwhm
        return (_gauss_integral(x + p / 2., y + p / 2.) - _gauss_integral(x + p / 2., y - p / 2.)
                - _gauss_integral(x - p / 2., y + p / 2.) + _gauss_integral(x - p / 2., y - p / 2.))
    return (_fiber_integral(dx + 0.5, dy + 0.5, g) - _fiber_integral(dx + 0.5, dy - 0.5, g)
            - _fiber_integral(dx - 0.5, dy + 0.5, g) + _fiber_integral(dx - 0.5, dy - 0.5, g))


@_jit.parallel
def _kernel(kind, radius, fwhm, g):
    size = 2 * radius + 1
    out = np.zeros((size, size))
    for row in prange(size):
        dy = row - radius
        for col in range(size):
            dx = col - radius
            if dx * dx + dy * dy > radius * radius:
                continue
            out[row, col] = kernel_value(kind, np.float64(dx), np.float64(dy), fwhm, g)
    return out


def kernel(kind, radius, fwhm):
    """The PSF kernel the C caches: (2 radius + 1)^2 doubles, zero outside the disc.

    kind: GAUSS or FIBER; radius: pixels; fwhm: full width at half maximum, pixels.
    """
    return _jit.for_this_process(_kernel)(kind, int(radius), float(fwhm),
                                          float(fwhm) * G_PER_FWHM)


@_jit.scalar
def pixel_radius(kind, value, fwhm, g, user_radius, maxwidth):
    """The C's rendering radius for one pixel of ``value`` photons (> 0)."""
    if user_radius != 0:
        r = user_radius
    else:
        lost = math.sqrt(value) / PHOTON_LOSS_FACTOR
        if kind == GAUSS:
            arg = -math.log(lost / value) / math.log(16.)
            # below 0.01 photons nothing is lost: the C takes the root of a negative number
            x = 1.0 + math.ceil(math.sqrt(arg) * fwhm) if arg > 0.0 else 1.0
        else:
            x = 1.0 + math.ceil(g * (value / lost))
        r = int(min(x, 2147483647.0))
    if r == 0:
        r = 1
    if r > maxwidth:
        r = maxwidth
    return r


@_jit.scalar
def lost_fraction(kind, value, radius, fwhm, g):
    """Photons of a pixel of ``value`` falling outside ``radius`` (the C's estimate)."""
    if kind == GAUSS:
        rsq = np.float64(radius)
        rsq = rsq / fwhm
        rsq = rsq * rsq
        return value * math.exp(-math.log(16.) * rsq)
    return value * g / math.sqrt(g * g + np.float64(radius * radius))


@_jit.serial
def _radii(image, kind, fwhm, g, user_radius, maxwidth, radii):
    """Per-pixel radii (0 where nothing is spread) and the total lost photons, in the
    C's order."""
    lost = 0.0
    for i in range(image.size):
        v = np.float64(image[i])
        if v <= 0.0:
            radii[i] = 0
            continue
        r = pixel_radius(kind, v, fwhm, g, user_radius, maxwidth)
        radii[i] = r
        lost += lost_fraction(kind, v, r, fwhm, g)
    return lost


@_jit.parallel
def _scatter(image, radii, kern, kr, xpixels, ypixels, out):
    """The C's sum, gathered per output row (rows in parallel, same order per pixel).

    radii: per-source radius of the part summed here (0: none; the FFT path adds the
    rest of a disc).
    """
    # the largest radius of each source row, to skip rows out of reach
    row_max = np.zeros(ypixels, dtype=np.int64)
    for y0 in range(ypixels):
        m = 0
        for x0 in range(xpixels):
            i = y0 * xpixels + x0
            if radii[i] > m:
                m = radii[i]
        row_max[y0] = m
    rmax = 0
    for y0 in range(ypixels):
        if row_max[y0] > rmax:
            rmax = row_max[y0]
    for yo in prange(ypixels):
        base = yo * xpixels
        lo = max(0, yo - 1 - rmax)
        hi = min(ypixels - 1, yo + rmax)
        for y0 in range(lo, hi + 1):
            m = row_max[y0]
            dy = yo - y0
            dyw = yo - 1 - y0   # the row whose column "width" wraps onto (0, yo)
            if m == 0 or (abs(dy) > m and abs(dyw) > m):
                continue
            for x0 in range(xpixels):
                i = y0 * xpixels + x0
                r = radii[i]
                if r <= 0:
                    continue
                v = np.float64(image[i])
                if abs(dy) <= r:
                    ky = kr + dy
                    xlo = max(-r, -x0)
                    xhi = min(r, xpixels - 1 - x0)
                    for dx in range(xlo, xhi + 1):
                        kv = kern[ky, kr + dx]
                        if kv == 0.0 or dx * dx + dy * dy > r * r:
                            continue
                        j = base + x0 + dx
                        out[j] = np.float32(np.float64(out[j]) + v * kv)
                if yo >= 1 and abs(dyw) <= r:
                    dx = xpixels - x0
                    if dx <= r:
                        kv = kern[kr + dyw, kr + dx]
                        if kv != 0.0 and dx * dx + dyw * dyw <= r * r:
                            out[base] = np.float32(np.float64(out[base]) + v * kv)


def _fft_groups(image, radii, inner, kern, kr, xpixels, ypixels):
    """Float64 sum of the FFT-path sources over the annulus ``inner < d <= r_i``, each
    group of equal radius in one convolution, with the C's column wrap.

    scipy.signal needs scipy.linalg, which :func:`nbnumba._jit.no_blas_probe` hides while
    numba initialises; numba is initialised by now (the kernel is computed first), so
    the hiding is lifted for this import."""
    if "scipy.linalg" in sys.modules and sys.modules["scipy.linalg"] is None:
        del sys.modules["scipy.linalg"]
    from scipy.signal import oaconvolve
    canvas = np.zeros((ypixels + 1, xpixels + 1))
    img2 = image.reshape(ypixels, xpixels).astype(np.float64)
    rad2 = radii.reshape(ypixels, xpixels)
    sel = (rad2 > inner) & (rad2 > 0)
    for r in np.unique(rad2[sel]):
        r = int(r)
        mask = sel & (rad2 == r)
        ys, xs = np.nonzero(mask)
        y1, y2, x1, x2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        patch = np.where(mask[y1:y2, x1:x2], img2[y1:y2, x1:x2], 0.0)
        k = kern[kr - r:kr + r + 1, kr - r:kr + r + 1].copy()
        d = np.arange(-r, r + 1)
        dsq = d[:, None] ** 2 + d[None, :] ** 2
        k[dsq > r * r] = 0.0
        if inner >= 0:
            k[dsq <= inner * inner] = 0.0
        conv = oaconvolve(patch, k)
        # conv[0, 0] lies at (y1 - r, x1 - r); keep rows 0..ypixels, columns 0..xpixels
        oy, ox = y1 - r, x1 - r
        cy1, cx1 = max(0, -oy), max(0, -ox)
        cy2 = min(conv.shape[0], ypixels + 1 - oy)
        cx2 = min(conv.shape[1], xpixels + 1 - ox)
        if cy2 > cy1 and cx2 > cx1:
            canvas[oy + cy1:oy + cy2, ox + cx1:ox + cx2] += conv[cy1:cy2, cx1:cx2]
    out = canvas[:ypixels, :xpixels].copy()
    out[1:, 0] += canvas[:ypixels - 1, xpixels]
    return out


def apply(image, kind, fwhm, radius=0, method="auto", say=None):
    """Blur a photon image with a PSF exactly as the C noisify does.

    image: 2-D float32 array (slow, fast), photons per pixel.
    kind: "gauss" or "fiber"; fwhm: full width at half maximum in pixels (> 0).
    radius: rendering radius in pixels; 0 chooses one per pixel from its value (the C's
    rule), a negative radius spreads nothing (every photon counts as lost).
    method: "direct" (the C's sum, bit-identical), "fft", or "auto" (FFT for the
    pixels whose radius exceeds :data:`FFT_MIN_RADIUS`).
    say: callable receiving the C's report lines (or None).
    Returns a new float32 array.
    """
    say = say or (lambda line: None)
    code = PSF_TYPES[kind]
    ypixels, xpixels = image.shape
    flat = np.ascontiguousarray(image, dtype=np.float32).ravel()
    pixels = flat.size
    g = fwhm * G_PER_FWHM
    maxwidth = max(xpixels, ypixels)
    kr = int(radius)
    if kr <= 0:
        max_I = float(flat.max()) if pixels else 0.0
        max_I = max(max_I, 0.0)
        say("  maximum input photon/pixel: %g" % max_I)
        if max_I <= 0.0:
            say("WARNING: no photons, PSF skipped")
            return np.zeros_like(image, dtype=np.float32)
        lost = math.sqrt(max_I) / PHOTON_LOSS_FACTOR
        if code == GAUSS:
            arg = -math.log(lost / max_I) / math.log(4.) / 2.
            kr = 1 + math.ceil(math.sqrt(arg) * fwhm) if arg > 0.0 else 1
        else:
            kr = 1 + math.ceil(g * (max_I / lost))
        say("  auto-selected psf_radius = %d pixels" % kr)
        if kr == 0:
            kr = 1
    kr = min(kr, maxwidth)
    from .. import memory
    from ..config import ConfigError
    size = 2 * kr + 1
    memory.require(8 * size * size * 3 + 40 * pixels,
                   f"the PSF kernel ({size} x {size} pixels)",
                   "give a smaller -psf_radius", ConfigError)
    kern = kernel(code, kr, fwhm)
    radii = np.zeros(pixels, dtype=np.int64)
    total_lost = _radii(flat, code, float(fwhm), g, int(radius), maxwidth, radii)
    # the direct sum covers each disc up to ``inner``; the FFT path the rest
    inner = {"direct": maxwidth + 1, "fft": -1}.get(method, FFT_MIN_RADIUS)
    out = np.zeros(pixels, dtype=np.float32)
    near = np.minimum(radii, inner)
    if near.max(initial=0) > 0:
        _jit.for_this_process(_scatter)(flat, near, kern, kr, xpixels, ypixels, out)
    if ((radii > inner) & (radii > 0)).any():
        extra = _fft_groups(flat, radii, inner, kern, kr, xpixels, ypixels)
        out = (out.astype(np.float64) + extra.ravel()).astype(np.float32)
    say("adding back %g lost photons" % total_lost)
    out = (out.astype(np.float64) + total_lost / pixels).astype(np.float32)
    return out.reshape(ypixels, xpixels)
