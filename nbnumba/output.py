"""Writing a rendered image the way the C program does: float, SMV, PGM and noise files.

Each ``make_*`` function returns the pixels (and the numbers the C prints) without
touching the disk, as 2-D arrays (slow, fast) like ``Result.image``; each ``write_*``
function writes a file atomically. All of them are exported by the ``nbnumba`` package.
"""
from dataclasses import dataclass

import numpy as np

from . import images, rng
from .config import SEED_LIMIT, check_number
from .constants import RTD
from .errors import ConfigError
from .io import smv
from .io.atomic import check_path, write_atomic

#: how to make the counts an SMV file holds from photons
COUNTS_HINT = ("make counts with nbnumba.make_int_image(result) or make_noise_image (the C's "
               "rounding), or round them yourself: np.rint(photons).astype(np.uint16)")


def _check_result(result):
    """ConfigError unless ``result`` is what :func:`nbnumba.simulate` returns."""
    from .engine import Result
    if not isinstance(result, Result):
        raise ConfigError(f"result must be a Result (from nbnumba.simulate or nbnumba.render), "
                          f"got {type(result).__name__}")


def _check_setup(setup):
    """ConfigError unless ``setup`` is (or looks like) what :func:`nbnumba.prepare`
    returns: it has the resolved ``geometry`` and its ``config``."""
    if not all(hasattr(setup, name) for name in ("geometry", "config", "osc")):
        raise ConfigError(f"setup must be a Setup (from nbnumba.prepare, or a Result's .setup), "
                          f"got {type(setup).__name__}")


def _shape(result):
    return result.setup.spixels, result.setup.fpixels


def _check_image(result):
    """The result's float image, checked: float32 of the detector's shape (a Result whose
    ``image`` was replaced by something else is refused rather than converted)."""
    image = result.image
    if not (isinstance(image, np.ndarray) and image.dtype == np.float32
            and image.shape == _shape(result)):
        raise ConfigError(f"result.image must be the float32 array of shape {_shape(result)} "
                          "the render made, got "
                          + (f"dtype {image.dtype} and shape {image.shape}"
                             if isinstance(image, np.ndarray) else type(image).__name__))
    return image


def smv_header(setup, adc_offset=None):
    """The SMV header bytes nbnumba (like the C program) writes for a rendered set-up.

    adc_offset: None for the C's header (the default); a number adds the nbnumba
    extension ``ADC_OFFSET=<counts>;`` (read by DIALS' dxtbx) and pads a header longer
    than 512 bytes to a multiple of 512, so that every SMV reader finds the pixels.
    """
    _check_setup(setup)
    if adc_offset is not None:
        check_number("adc_offset", "counts", adc_offset)
    g = setup.geometry
    cfg = setup.config
    pixel = g.pixel_size
    frame = g.frame
    phi0 = cfg.crystal.phi0
    fields = [
        ("SIZE1", "%d" % g.fpixels, True),
        ("SIZE2", "%d" % g.spixels, True),
        ("PIXEL_SIZE", "%g" % (pixel * 1000.0), True),
        ("DISTANCE", "%g" % (g.distance * 1000.0), True),
        ("WAVELENGTH", "%g" % (cfg.beam.wavelength * 1e10), True),
        ("BEAM_CENTER_X", "%g" % (frame.xbeam * 1000.0), True),
        ("BEAM_CENTER_Y", "%g" % (frame.ybeam * 1000), True),
        ("ADXV_CENTER_X", "%g" % (g.fbeam * 1000.0), True),
        ("ADXV_CENTER_Y", "%g" % ((frame.size_s - g.sbeam) * 1000), True),
        ("MOSFLM_CENTER_X", "%g" % ((g.sbeam - 0.5 * pixel) * 1000.0), True),
        ("MOSFLM_CENTER_Y", "%g" % ((g.fbeam - 0.5 * pixel) * 1000), True),
        ("DENZO_X_BEAM", "%g" % ((g.sbeam - 0.0 * pixel) * 1000.0), True),
        ("DENZO_Y_BEAM", "%g" % ((g.fbeam - 0.0 * pixel) * 1000), True),
        ("DIALS_ORIGIN", "%g,%g,%g" % g.dials_origin, False),
        ("XDS_ORGX", "%g" % g.orgx, True),
        ("XDS_ORGY", "%g" % g.orgy, True),
        ("CLOSE_DISTANCE", "%g" % (g.close_distance * 1000.0), True),
        ("PHI", "%g" % (phi0 * RTD), True),
        ("OSC_START", "%g" % (phi0 * RTD), True),
        ("OSC_RANGE", "%g" % (setup.osc * RTD), True),
        ("TWOTHETA", "%g" % (g.twotheta * RTD), True),
        ("DETECTOR_SN", "000", True),
        ("BEAMLINE", "fake", True),
    ]
    if adc_offset is None:
        return smv.header_text(fields)
    fields.append(("ADC_OFFSET", "%d" % round(adc_offset), True))
    return smv.padded_header(fields)


def float_bytes(result):
    """The raw float file's content: little-endian float32 photons per pixel in raster
    order (a buffer)."""
    return memoryview(np.ascontiguousarray(result.image, dtype="<f4")).cast("B")


def write_float_image(result, path):
    """Write ``result.image`` as ``-floatfile`` does: raw little-endian float32 (photons
    per pixel), raster order, no header. path: a file name (str or os.PathLike).
    ConfigError for anything but a Result of float32 pixels and a file name."""
    _check_result(result)
    _check_image(result)
    check_path(path)
    write_atomic(path, float_bytes(result))


@dataclass
class IntegerImage:
    """A noiseless integer image.

    pixels: uint16 (slow, fast), ADC counts; scale: the scale used, counts per photon.
    """
    pixels: np.ndarray
    scale: float


def make_int_image(result, scale=0.0, adc=40.0):
    """Noiseless integer image (``-intfile``): counts = photons x scale + adc, rounded.

    scale: counts per photon; <= 0 means 55000/max_I (as the C). adc: offset, counts.
    """
    _check_result(result)
    check_number("scale", "counts per photon", scale)
    check_number("adc", "counts", adc)
    used = images.integer_scale(scale, result.stats.max_I)
    setup = result.setup
    pixels = images.integer_image(result.image, setup.fpixels, setup.spixels, setup.roi, used, adc)
    return IntegerImage(pixels.reshape(result.image.shape), used)


def smv_image_bytes(result, pixels, adc_offset=None):
    """The chunks of an SMV file of uint16 pixels with nbnumba's (the C's) header."""
    return smv.smv_bytes(smv_header(result.setup, adc_offset), pixels)


def write_smv_image(result, path, pixels, adc_offset=None):
    """Write counts as an SMV file with the C's header (see :func:`smv_header` for the
    ``adc_offset`` extension, counts).

    pixels: the counts, of the result's detector: shape (slow, fast) or flat raster
    order, uint16 (e.g. the ``pixels`` of :func:`make_int_image` or
    :func:`make_noise_image`), or another integer dtype whose values all lie in 0..65535.
    A wrong shape, values that would wrap, and floats (which would be truncated) raise
    :class:`ConfigError` saying what is expected.
    """
    _check_result(result)
    check_path(path)
    counts = images.check_pixels(pixels, _shape(result), "pixels", np.uint16, hint=COUNTS_HINT)
    smv.write_smv(path, smv_header(result.setup, adc_offset), counts)


@dataclass
class PGMImage:
    """An 8-bit preview. pixels: uint8 (slow, fast), grey levels; scale: levels per photon."""
    pixels: np.ndarray
    scale: float


def make_pgm(result, scale=0.0, int_scale=1.0):
    """8-bit preview: scale (grey levels per photon) <= 0 means 250/(5 rmsd), or
    ``int_scale`` (counts per photon) if rmsd is 0."""
    _check_result(result)
    check_number("scale", "grey levels per photon", scale)
    check_number("int_scale", "counts per photon", int_scale)
    used = images.pgm_scale(scale, result.stats.rmsd, int_scale)
    setup = result.setup
    pixels = images.pgm_pixels(result.image, setup.fpixels, setup.spixels, setup.roi, used)
    return PGMImage(pixels.reshape(result.image.shape), used)


def pgm_bytes(result, pgm):
    setup = result.setup
    header = ("P5\n%d %d\n# pixels scaled by %g\n255\n"
              % (setup.fpixels, setup.spixels, pgm.scale)).encode("ascii")
    return [header, memoryview(np.ascontiguousarray(pgm.pixels)).cast("B")]


def write_pgm(result, path, pgm):
    """Write a :class:`PGMImage` (from :func:`make_pgm`) as a binary PGM (P5) file.
    ConfigError for anything else, or pixels that are not uint8 grey levels of the
    result's detector."""
    _check_result(result)
    check_path(path)
    if not isinstance(pgm, PGMImage):
        raise ConfigError(f"pgm must be a PGMImage (from nbnumba.make_pgm(result)), got "
                          f"{type(pgm).__name__}")
    check_number("pgm.scale", "grey levels per photon", pgm.scale)
    pixels = images.check_pixels(pgm.pixels, _shape(result), "pgm.pixels", np.uint8,
                                 hint="make them with nbnumba.make_pgm(result)")
    write_atomic(path, pgm_bytes(result, PGMImage(pixels.reshape(_shape(result)), pgm.scale)))


@dataclass
class NoiseImage:
    """A Poisson noise image.

    pixels: uint16 (slow, fast), ADC counts; photons: sum of the Poisson deviates (before
    the ADC offset); overloads: number of pixels clipped at 65535 counts.
    """
    pixels: np.ndarray
    photons: float
    overloads: int


def make_noise_image(result, seed, adc=40.0):
    """Poisson noise image (``-noisefile``) with the C-compatible generator
    (bit-identical for a seed): counts = Poisson(photons) + adc, at most 65535.

    seed: the ``-seed`` value (an integer). adc: offset, counts. The random table
    continues from the run's set-up draws, exactly as in the C (this matters only for
    negative seeds).
    """
    _check_result(result)
    check_number("seed", "seed", seed, integer=True, limit=SEED_LIMIT)
    check_number("adc", "counts", adc)
    setup = result.setup
    pixels, photons, overloads = rng.noise_image(result.image, setup.fpixels, setup.spixels,
                                                 setup.roi, adc, seed, setup.rng_table)
    return NoiseImage(pixels.reshape(result.image.shape), photons, overloads)
