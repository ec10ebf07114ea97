"""What a detector records from an ideal image, as the C program *noisify* computes it.

Order of operations (all per pixel, in raster order, with the C's random generator):

1. photons = fluence * r_e^2 * scale * value  (stored in float32);
2. with noise: 1/f source flicker and the static calibration error multiply the mean,
   then a Poisson deviate is drawn; without noise the PSF blurs the noiseless image;
3. the PSF (if any) blurs the photon counts (:mod:`nbnumba.toolbox.psf`);
4. counts = photons * gain + ADC offset, plus Gaussian read-out noise, at most 65535.

The flicker, Poisson and read-out draws use the ``seed`` stream; the calibration error
uses ``calib_seed``. Both share one shuffle table and one Gaussian spare, exactly as the
C's static variables, so images are identical to the C's for the same seeds.
"""
from dataclasses import dataclass, field
from typing import List, Optional

import math

import numpy as np

from .. import _jit, rng
from ..errors import check_callback
from ..config import (RANGES, SEED_LIMIT, ConfigError, Plausible, check_number, check_plausible,
                      shown, unfit_dtype)
from . import psf as psf_module

#: a PSF wider than a centimetre is a width in micrometres given as metres
_PSF_WIDTH = Plausible(None, 0.01, "lengths are in metres (1 um = 1e-6 m)")

#: the C's Thomson cross section (m^2) and default fluence (photons/m^2): their product
#: is (nearly) 1, so the input is taken as photons per pixel unless -fluence is given
R_E_SQR = 7.94079248018965e-30
#: largest single-precision number (photons per pixel beyond it are infinite)
FLOAT32_MAX = float(np.finfo(np.float32).max)
DEFAULT_FLUENCE = 125932015286227086360700780544.0
#: the C's calibration seed when none is given (used as it is, not negated)
DEFAULT_CALIB_SEED = 123456789


@dataclass
class NoisifyResult:
    """Everything noisify computes for one image (2-D arrays are (slow, fast)).

    photons: float32 noiseless photons per pixel (after the PSF when ``noise`` is off);
    int_pixels: uint16 noiseless counts (``-intfile``); pgm_pixels: uint8 preview;
    noise_pixels: uint16 counts with noise (``-noisefile``), None without noise;
    noisy_photons: float32 photons after noise and PSF, before gain and read-out;
    photons_before_psf, photons_total: sums the C prints; overloads: pixels clipped at
    65535; lines: the C's report lines.
    """
    photons: np.ndarray
    int_pixels: np.ndarray
    pgm_pixels: np.ndarray
    noise_pixels: Optional[np.ndarray] = None
    noisy_photons: Optional[np.ndarray] = None
    photons_before_psf: float = 0.0
    photons_total: float = 0.0
    overloads: int = 0
    lines: List[str] = field(default_factory=list)


@_jit.scalar
def _f32(x):
    return np.float64(np.float32(x))


@_jit.scalar
def gauss_deviate(seed, table, state):
    """noisify's unit normal deviate: as :func:`nbnumba.rng.gauss_deviate`, but the
    logarithm and the square root are the single-precision ``logf``/``sqrtf``."""
    if state[rng._ISET] == 0.0:
        while True:
            v1 = _f32(2.0 * rng.ran1(seed, table) - 1.0)
            v2 = _f32(2.0 * rng.ran1(seed, table) - 1.0)
            rsq = _f32(_f32(v1 * v1) + _f32(v2 * v2))
            if not (rsq >= 1.0 or rsq == 0.0):
                break
        lg = np.float64(math.log(np.float32(rsq)))
        fac = np.float64(math.sqrt(np.float32(-2.0 * lg / rsq)))
        state[rng._GSET] = _f32(v1 * fac)
        state[rng._ISET] = 1.0
        return _f32(v2 * fac)
    state[rng._ISET] = 0.0
    return state[rng._GSET]


@_jit.scalar
def poisson_deviate(xm, seed, table, state):
    """noisify's Poisson deviate of mean ``xm`` (a float32 value): as
    :func:`nbnumba.rng.poisson_deviate`, but the rejection method uses the
    single-precision ``sqrtf``, ``logf``, ``tanf`` and ``expf`` (the noisify source does)."""
    if xm > 1.0e6:
        return _f32(xm + math.sqrt(xm) * gauss_deviate(seed, table, state))
    if xm < 12.0:
        if xm != state[rng._OLDM]:
            state[rng._OLDM] = xm
            state[rng._G] = _f32(math.exp(-xm))
        em = -1.0
        t = 1.0
        while True:
            em += 1.0
            t = _f32(t * rng.ran1(seed, table))
            if not (t > state[rng._G]):
                break
        return em
    if xm != state[rng._OLDM]:
        state[rng._OLDM] = xm
        state[rng._SQ] = np.float64(math.sqrt(np.float32(2.0 * xm)))
        state[rng._ALXM] = np.float64(math.log(np.float32(xm)))
        state[rng._G] = _f32(_f32(xm * state[rng._ALXM]) - rng.gammln(_f32(xm + 1.0)))
    sq = state[rng._SQ]
    alxm = state[rng._ALXM]
    g = state[rng._G]
    while True:
        while True:
            y = np.float64(math.tan(np.float32(math.pi * rng.ran1(seed, table))))
            em = _f32(_f32(sq * y) + xm)
            if not (em < 0.0):
                break
        em = _f32(math.floor(em))
        e = np.float32(_f32(_f32(em * alxm) - rng.gammln(_f32(em + 1.0))) - g)
        t = _f32(0.9 * (1.0 + _f32(y * y)) * np.float64(math.exp(e)))
        if not (rng.ran1(seed, table) > t):
            break
    return em


@_jit.serial
def _counts(photons, gain, adc, out):
    """Noiseless counts: truncated photons * gain + adc, clipped to 0..65535."""
    for i in range(photons.size):
        adu = np.float64(photons[i]) * gain + adc
        if adu > 65535.0:
            adu = 65535.0
        if adu < 0.0:
            adu = 0.0
        out[i] = np.uint16(adu)


@_jit.serial
def _poisson(photons, flicker, calibration, seed, calib_seed, table, state, out):
    total = 0.0
    for i in range(photons.size):
        p0 = np.float64(photons[i])
        if flicker > 0.0:
            p0 *= (1.0 + flicker * gauss_deviate(seed, table, state))
        if calibration > 0.0:
            p0 *= (1.0 + calibration * gauss_deviate(calib_seed, table, state))
        v = np.float32(poisson_deviate(np.float64(np.float32(p0)), seed, table, state))
        out[i] = v
        total += np.float64(v)
    return total


@_jit.serial
def _readout(photons, gain, adc, readout, seed, table, state, out):
    total = 0.0
    overloads = 0
    for i in range(photons.size):
        total += np.float64(photons[i])
        adu = np.float64(photons[i]) * gain + adc
        if readout > 0.0:
            adu += readout * gauss_deviate(seed, table, state)
        if adu > 65535.0:
            adu = 65535.0
            overloads += 1
        if adu < 0.0:
            adu = 0.0
        out[i] = np.uint16(adu)
    return total, overloads


def single(value):
    """``value`` rounded to single precision as the C stores it (a float), inf beyond
    its range (no warning)."""
    with np.errstate(over="ignore"):
        return float(np.float32(value))


def _pgm(counts):
    return np.minimum(counts, 255).astype(np.uint8)


@_jit.without_blas_probe
def noisify(image, *, scale=1.0, fluence=DEFAULT_FLUENCE, gain=1.0, adc=40.0,
            readout=0.0, flicker=0.0, calibration=0.03, seed=None, calib_seed=None,
            noise=True, psf=None, psf_fwhm=46e-6, pixel_size=0.1e-3, psf_radius=0,
            psf_method="auto", say=None, name="image"):
    """Turn an ideal image into detector counts, exactly as the C noisify.

    image: 2-D array (slow, fast) of photons per pixel (converted to float32).
    scale: factor applied to every value; fluence: photons/m^2 (the default makes the
    input photons per pixel); gain: counts per photon; adc: offset, counts.
    readout: Gaussian read-out noise, counts rms; flicker: fractional 1/f source noise;
    calibration: static fractional error per pixel.
    seed: ``-seed`` value (integer; None: the clock, as the C); calib_seed: the
    ``-calib_seed`` value (None: the C's fixed default).
    noise: False skips all noise (and calibration, readout, flicker).
    psf: None, "gauss" or "fiber"; psf_fwhm: full width at half maximum, m (rounded to
    float32 as the C stores it); pixel_size: m; psf_radius: pixels (0: automatic);
    psf_method: "auto", "direct" (bit-identical to the C) or "fft".
    say: callable for the C's report lines (they are also kept in ``lines``); name:
    the input's name in them.
    Returns a :class:`NoisifyResult`. Raises ConfigError for unusable values.
    """
    _check_arguments(dict(scale=scale, fluence=fluence, gain=gain, adc=adc, readout=readout,
                          flicker=flicker, calibration=calibration, psf_fwhm=psf_fwhm,
                          pixel_size=pixel_size), seed, calib_seed, noise, psf, psf_radius,
                     psf_method, say, name)
    lines = []

    def tell(line):
        lines.append(line)
        if say is not None:
            say(line)

    try:
        values = np.asarray(image)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"noisify: image must be a 2-D array of numbers, got "
                          f"{type(image).__name__}") from None
    if values.dtype.kind not in "biuf" or unfit_dtype(values.dtype) is not None:
        why = unfit_dtype(values.dtype) or "not numbers"
        raise ConfigError(f"noisify: image must be an array of real numbers (photons), got "
                          f"dtype {values.dtype}: {why}")
    if values.ndim != 2 or values.size == 0:
        raise ConfigError("noisify: image must be a non-empty 2-D array")
    values = np.ascontiguousarray(values, dtype=np.float32)
    if not np.isfinite(values).all():
        raise ConfigError("noisify: image has NaN or infinite pixels")
    if psf is not None and psf not in psf_module.PSF_TYPES:
        raise ConfigError(f"noisify: unknown PSF type {shown(psf)} (use gauss or fiber)")
    if psf_method not in ("auto", "direct", "fft"):
        raise ConfigError(f"noisify: psf_method {shown(psf_method)} is not auto, direct or fft")
    fwhm = single(psf_fwhm)
    if psf is not None and not fwhm > 0.0:
        raise ConfigError("noisify: the PSF has zero size (give a positive psf_fwhm)")
    if psf is not None and not math.isfinite(fwhm):
        raise ConfigError("noisify: psf_fwhm %g m is beyond single precision" % psf_fwhm)
    if psf is not None and max(values.shape) > psf_module.MAX_PSF_WIDTH:
        raise ConfigError(f"noisify: a PSF on an image wider than {psf_module.MAX_PSF_WIDTH} "
                          "pixels is not supported")
    if not pixel_size > 0.0:
        raise ConfigError("noisify: pixel_size must be positive")
    if not noise:
        calibration = readout = flicker = 0.0
    internal = -int(seed) if seed is not None else rng.internal_seed(_clock())
    calib_internal = -int(calib_seed) if calib_seed is not None else DEFAULT_CALIB_SEED

    max_I = max(0.0, float(values.max()))
    for v in values.ravel()[values.ravel() < 0.0]:
        tell("WARNING: negative intensity in %s: %g" % (name, v))
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    factor = (fluence * R_E_SQR) * scale
    if not (math.isfinite(factor) and abs(factor) * peak <= FLOAT32_MAX):
        raise ConfigError("noisify: the scaled image overflows single precision: scale "
                          "(%g) x fluence (%g photons/m^2) x r_e^2 x the largest pixel (%g) "
                          "is more than %g photons" % (scale, fluence, peak, FLOAT32_MAX))
    photons = (factor * values.astype(np.float64)).astype(np.float32)
    tell("maximum value in input file: %g ( %g on photon scale)"
         % (max_I, max_I * scale * fluence * R_E_SQR))
    fwhm_pixels = fwhm / pixel_size
    blur = psf is not None

    if not noise and blur:
        tell("  applying PSF to noiseless image width = %g pixels" % fwhm_pixels)
        photons = psf_module.apply(photons, psf, fwhm_pixels, psf_radius, psf_method, tell)

    counts = np.zeros(photons.size, dtype=np.uint16)
    _counts(photons.ravel(), float(gain), float(adc), counts)
    counts = counts.reshape(photons.shape)
    result = NoisifyResult(photons=photons, int_pixels=counts, pgm_pixels=_pgm(counts),
                           lines=lines)
    if not noise:
        return result

    seed_arr = np.array([internal], dtype=np.int64)
    calib_arr = np.array([calib_internal], dtype=np.int64)
    table = rng.RandomTable().table
    state = np.array([-1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    noisy = np.zeros(photons.size, dtype=np.float32)
    before = _poisson(photons.ravel(), float(flicker), float(calibration), seed_arr, calib_arr,
                      table, state, noisy)
    noisy = noisy.reshape(photons.shape)
    if not math.isfinite(before):   # the C writes the clipped counts of inf or NaN photons
        raise ConfigError("noisify: the noisy photon counts overflow (inf or NaN): flicker "
                          "(%g) or calibration (%g) is too large" % (flicker, calibration))
    if blur:
        tell("%.0f photons on noise image before PSF" % before)
        tell("  applying PSF width = %g um" % (fwhm * 1e6))
        noisy = psf_module.apply(noisy, psf, fwhm_pixels, psf_radius, psf_method, tell)
    out = np.zeros(photons.size, dtype=np.uint16)
    total, overloads = _readout(noisy.ravel(), float(gain), float(adc), float(readout),
                                seed_arr, table, state, out)
    tell("%.0f photons on noise image (%d overloads)" % (total, overloads))
    result.noise_pixels = out.reshape(photons.shape)
    result.noisy_photons = noisy
    result.photons_before_psf = float(before)
    result.photons_total = float(total)
    result.overloads = int(overloads)
    return result


#: (unit, accepted magnitudes, the nb-noisify flag and its unit) of noisify's lengths
_UNITS = {"psf_fwhm": ("m", _PSF_WIDTH, "-psf_fwhm, um"),
          "pixel_size": ("m", RANGES["pixel"], "-pixel, mm")}


def _check_arguments(numbers, seed, calib_seed, noise, psf, psf_radius, psf_method, say, name):
    """ConfigError for an argument of :func:`noisify` of the wrong type or implausible for
    its unit (a pixel size in mm given as m), before any work."""
    for key, value in numbers.items():
        unit, limits, flag = _UNITS.get(key, ("as documented", None, None))
        check_number(f"noisify: {key}", unit, value)
        if limits is not None:
            check_plausible(f"noisify: {key} (flag {flag})", value, unit, limits)
    for key, value in (("seed", seed), ("calib_seed", calib_seed)):
        if value is not None:
            check_number(f"noisify: {key}", "seed", value, integer=True, limit=SEED_LIMIT)
    check_number("noisify: psf_radius", "pixels", psf_radius, integer=True)
    if not isinstance(noise, (bool, np.bool_)):
        raise ConfigError(f"noisify: noise must be True or False, got {shown(noise)}")
    if psf is not None and (not isinstance(psf, str) or psf not in psf_module.PSF_TYPES):
        raise ConfigError(f"noisify: unknown PSF type {shown(psf)} (use gauss or fiber)")
    if not isinstance(psf_method, str) or psf_method not in ("auto", "direct", "fft"):
        raise ConfigError(f"noisify: psf_method {shown(psf_method)} is not auto, direct or fft")
    if say is not None:
        check_callback(say, "noisify: say", ("line",))
    if not isinstance(name, str):
        raise ConfigError(f"noisify: name must be a string, got {type(name).__name__}")


def _clock():
    import time
    return int(time.time())
