"""Writing a rendered image the way the C program does: float, SMV, PGM and noise files.

Each ``make_*`` function returns the pixels (and the numbers the C prints) without
touching the disk; each ``write_*`` function writes a file atomically.
"""
from dataclasses import dataclass

import numpy as np

from . import images, rng
from .constants import RTD
from .io import smv
from .io.atomic import write_atomic


def smv_header(setup, adc_offset=None):
    """The SMV header bytes nbnumba (like the C program) writes for a rendered set-up.

    adc_offset: None for the C's header (the default); a number adds the nbnumba
    extension ``ADC_OFFSET=<counts>;`` (read by DIALS' dxtbx) and pads a header longer
    than 512 bytes to a multiple of 512, so that every SMV reader finds the pixels.
    """
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
    """The raw float file's content: little-endian float32 in raster order (a buffer)."""
    return memoryview(np.ascontiguousarray(result.image, dtype="<f4")).cast("B")


def write_float_image(result, path):
    """Write ``-floatfile`` (raw little-endian float32, no header)."""
    write_atomic(path, float_bytes(result))


@dataclass
class IntegerImage:
    pixels: np.ndarray   #: uint16, raster order
    scale: float         #: the scale used (counts per photon)


def make_int_image(result, scale=0.0, adc=40.0):
    """Noiseless integer image: scale <= 0 means 55000/max_I (as the C)."""
    used = images.integer_scale(scale, result.stats.max_I)
    setup = result.setup
    pixels = images.integer_image(result.image, setup.fpixels, setup.spixels, setup.roi, used, adc)
    return IntegerImage(pixels, used)


def smv_image_bytes(result, pixels, adc_offset=None):
    """The chunks of an SMV file of uint16 pixels with nbnumba's (the C's) header."""
    return smv.smv_bytes(smv_header(result.setup, adc_offset), pixels)


def write_smv_image(result, path, pixels, adc_offset=None):
    """Write uint16 pixels as an SMV file with the C's header (see :func:`smv_header`
    for the ``adc_offset`` extension)."""
    smv.write_smv(path, smv_header(result.setup, adc_offset), pixels)


@dataclass
class PGMImage:
    pixels: np.ndarray   #: uint8, raster order
    scale: float


def make_pgm(result, scale=0.0, int_scale=1.0):
    """8-bit preview: scale <= 0 means 250/(5 rmsd), or the int scale if rmsd is 0."""
    used = images.pgm_scale(scale, result.stats.rmsd, int_scale)
    setup = result.setup
    return PGMImage(images.pgm_pixels(result.image, setup.fpixels, setup.spixels, setup.roi, used),
                    used)


def pgm_bytes(result, pgm):
    setup = result.setup
    header = ("P5\n%d %d\n# pixels scaled by %g\n255\n"
              % (setup.fpixels, setup.spixels, pgm.scale)).encode("ascii")
    return [header, memoryview(np.ascontiguousarray(pgm.pixels)).cast("B")]


def write_pgm(result, path, pgm):
    """Write a binary PGM (P5) preview."""
    write_atomic(path, pgm_bytes(result, pgm))


@dataclass
class NoiseImage:
    pixels: np.ndarray   #: uint16, raster order
    photons: float       #: sum of the Poisson deviates (before the ADC offset)
    overloads: int       #: pixels clipped at 65535


def make_noise_image(result, seed, adc=40.0):
    """Poisson noise image with the C-compatible generator (bit-identical for a seed).

    seed: the ``-seed`` value. The random table continues from the run's set-up draws,
    exactly as in the C (this matters only for negative seeds).
    """
    setup = result.setup
    pixels, photons, overloads = rng.noise_image(result.image, setup.fpixels, setup.spixels,
                                                 setup.roi, adc, seed, setup.rng_table)
    return NoiseImage(pixels, photons, overloads)
