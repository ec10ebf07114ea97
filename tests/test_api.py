"""The Python API: units of every configuration field, the exported image makers and
writers, and the promise that the library keeps ``scipy.linalg`` out of the process."""
import dataclasses
import math
import pydoc
import subprocess
import sys

import numpy as np
import pytest

import nbnumba
from nbnumba.constants import RTD
from nbnumba.io.smv import read_smv
from nbnumba.flags import FLAGS

SECTIONS = (nbnumba.BeamConfig, nbnumba.DetectorConfig, nbnumba.CrystalConfig,
            nbnumba.RenderConfig, nbnumba.SimulationConfig)
SMALL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
         "-detpixels", "24", "-distance", "100", "-lambda", "1"]


def cubic(**crystal):
    """A small valid configuration: cubic 100 Angstrom cell, 24x24 detector."""
    return nbnumba.SimulationConfig(
        crystal=nbnumba.CrystalConfig(cell=(100.0, 100.0, 100.0) + (math.pi / 2,) * 3,
                                      default_F=100.0, na=5, nb=5, nc=5, **crystal),
        detector=nbnumba.DetectorConfig(fpixels=24, spixels=24))


# ------------------------------------------------------------------------------- units

@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.__name__)
def test_help_lists_every_field_with_its_unit(cls):
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    for f in dataclasses.fields(cls):
        unit = f.metadata["unit"]
        assert unit, f.name
        assert f"{f.name} [{unit}]" in text, f.name


def test_help_names_the_units_of_lengths_angles_and_cell_edges():
    assert "cell [Angstrom, Angstrom, Angstrom, rad, rad, rad]" in nbnumba.CrystalConfig.__doc__
    assert "distance [m]" in nbnumba.DetectorConfig.__doc__
    assert "wavelength [m]" in nbnumba.BeamConfig.__doc__
    assert "rotx [rad]" in nbnumba.DetectorConfig.__doc__
    assert "dmin [m]" in nbnumba.RenderConfig.__doc__


def test_every_field_names_a_real_flag():
    names = {name for flag in FLAGS for name in flag.names}
    for cls in SECTIONS[:4]:
        for f in dataclasses.fields(cls):
            for name in f.metadata["flag"].split(", "):
                assert name in names or name == "...", (cls.__name__, f.name, name)


@pytest.mark.parametrize("section, name, value, unit", [
    ("crystal", "cell", (1e-8, 1e-8, 1e-8) + (math.pi / 2,) * 3, "Angstrom"),   # metres
    ("crystal", "cell", (100.0, 100.0, 100.0, 90.0, 90.0, 90.0), "rad"),         # degrees
    ("beam", "wavelength", 1.0, "m"),                                           # Angstrom
    ("beam", "hdiv_range", 5.0, "rad"),                                          # degrees
    ("beam", "dispersion", 10.0, "fraction of lambda0"),                         # percent
    ("beam", "beam_size", 0.1, "m"),                                             # mm
    ("detector", "distance", 100.0, "m"),                                        # mm
    ("detector", "pixel_size", 0.172, "m"),                                      # mm
    ("detector", "xbeam", 51.2, "m"),                                            # mm
    ("detector", "twotheta", 20.0, "rad"),                                       # degrees
    ("detector", "thickness", 450.0, "m"),                                       # um
    ("crystal", "sample_size", (1e-6, 2.0, 1e-6), "m"),                          # mm
    ("crystal", "mosaic_spread", 10.0, "rad"),                                   # degrees
    ("crystal", "osc", 30.0, "rad"),                                             # degrees
    ("render", "dmin", 2.0, "m"),                                                # Angstrom
    ("render", "water_size", 100.0, "m"),                                        # um
])
def test_implausible_values_are_rejected_naming_the_unit(section, name, value, unit):
    config = cubic()
    setattr(getattr(config, section), name, value)
    with pytest.raises(nbnumba.ConfigError) as caught:
        nbnumba.check_units(config)
    message = str(caught.value)
    assert f" {unit} is implausible" in message and section in message, message
    with pytest.raises(nbnumba.ConfigError):
        nbnumba.prepare(config)  # the engine runs the same check


def test_cell_edges_in_metres_are_caught_with_a_hint():
    """The mistake that used to give a flat image: cell edges given in metres."""
    config = cubic()
    config.crystal.cell = (100e-10, 100e-10, 100e-10) + (math.pi / 2,) * 3
    with pytest.raises(nbnumba.ConfigError, match=r"cell a \(flag -cell\) = 1e-08 Angstrom "
                                                  r"is implausible.*Angstrom"):
        nbnumba.prepare(config)


def test_plausible_values_pass():
    config = cubic(mosaic_spread=200 / RTD, phi0=100.0, misset=(-3.0, 0.0, 6.0))
    config.detector.distance = 30.0
    config.detector.xbeam = -0.05
    config.beam.wavelength = 1e-13
    config.render.dmin = 2e-10
    nbnumba.check_units(config)
    nbnumba.check_units(nbnumba.SimulationConfig())  # the defaults
    cfg, _ = nbnumba.config_from_args(SMALL + ["-mosaic", "200", "-twotheta", "-90", "-phi",
                                               "720", "-dmin", "1.5", "-pixel", "0.172"])
    nbnumba.check_units(cfg)


def test_a_flag_in_its_unit_gives_the_same_double_as_the_field():
    """The command line converts the C's way; the fields hold what the C computes."""
    cfg, _ = nbnumba.config_from_args(SMALL + ["-pixel", "0.172", "-twotheta", "7.3"])
    assert cfg.detector.pixel_size == 0.172 / 1000.0
    assert cfg.detector.twotheta == 7.3 / RTD
    assert cfg.detector.distance == 100 / 1000.0
    assert cfg.crystal.cell[:3] == (100.0, 100.0, 100.0)


def test_the_library_rejects_what_the_command_line_rejects(cli):
    """The same check, each in the units of its interface: the flag's on the command line,
    the field's (SI) in Python."""
    run = cli(SMALL + ["-cell", "1e-8", "1e-8", "1e-8", "90", "90", "90", "-nopgm", "-nonoise"])
    assert run.code == 9
    assert run.err.startswith("nbnumba: error: -cell a 1e-08 Angstrom is implausible")
    config = cubic()
    config.crystal.cell = (1e-8, 1e-8, 1e-8) + (math.pi / 2,) * 3
    with pytest.raises(nbnumba.ConfigError, match=r"^crystal.cell a \(flag -cell\) = 1e-08 "):
        nbnumba.prepare(config)


@pytest.mark.parametrize("flags, words", [
    (["-distance", "100000"], "-distance 100000 mm is implausible (accepted magnitude at most "
                              "50000 mm): -distance is in mm"),
    (["-pixel", "100"], "-pixel 100 mm is implausible"),
    (["-twotheta", "1000"], "-twotheta 1000 degrees is implausible"),
    (["-detector_thick", "1e5"], "-detector_thick 100000 um is implausible"),
    (["-lambda", "1e7"], "-lambda 1e+07 Angstrom is implausible"),
    (["-cell", "100", "100", "100", "90", "90", "200"], "-cell gamma 200 degrees is implausible"),
])
def test_command_line_plausibility_errors_speak_the_flags_units(cli, flags, words):
    run = cli(SMALL + flags + ["-nopgm", "-nonoise"])
    assert run.code == 9 and run.err.startswith("nbnumba: error: " + words), run.err
    assert "metres" not in run.err and "radians" not in run.err


# ------------------------------------------------------------------- images and writers

@pytest.fixture(scope="module")
def result():
    return nbnumba.simulate(cubic())


def test_images_are_two_dimensional_like_the_float_image(result):
    shape = result.image.shape
    assert shape == (24, 24)
    noise = nbnumba.make_noise_image(result, seed=7)
    ints = nbnumba.make_int_image(result)
    pgm = nbnumba.make_pgm(result, int_scale=ints.scale)
    assert noise.pixels.shape == ints.pixels.shape == pgm.pixels.shape == shape
    assert noise.pixels.dtype == ints.pixels.dtype == np.uint16 and pgm.pixels.dtype == np.uint8
    assert noise.photons > 0 and noise.overloads == 0
    brightest = np.unravel_index(np.argmax(result.image), shape)
    assert ints.pixels[brightest] == ints.pixels.max()


def test_writers_write_what_the_command_writes(result, tmp_path, cli):
    noise = nbnumba.make_noise_image(result, seed=7)
    ints = nbnumba.make_int_image(result)
    pgm = nbnumba.make_pgm(result, int_scale=ints.scale)
    nbnumba.write_float_image(result, tmp_path / "api.bin")
    nbnumba.write_smv_image(result, tmp_path / "api_int.img", ints.pixels)
    nbnumba.write_smv_image(result, tmp_path / "api_noise.img", noise.pixels)
    nbnumba.write_pgm(result, tmp_path / "api.pgm", pgm)
    assert np.array_equal(np.fromfile(tmp_path / "api.bin", "<f4").reshape(24, 24), result.image)
    smv = read_smv(str(tmp_path / "api_noise.img"))
    assert np.array_equal(smv.data.reshape(smv.height, smv.width), noise.pixels)
    run = cli(SMALL + ["-seed", "7", "-floatfile", "c.bin", "-intfile", "c_int.img",
                       "-noisefile", "c_noise.img", "-pgmfile", "c.pgm", "-noprogress"])
    assert run.code == 0, run.err
    for api, command in (("api.bin", "c.bin"), ("api_int.img", "c_int.img"),
                         ("api_noise.img", "c_noise.img"), ("api.pgm", "c.pgm")):
        assert (tmp_path / api).read_bytes() == (tmp_path / command).read_bytes(), api


def test_public_names_are_exported():
    for name in ("make_noise_image", "make_int_image", "make_pgm", "write_float_image",
                 "write_smv_image", "write_pgm", "check_units", "ConfigError"):
        assert name in nbnumba.__all__ and callable(getattr(nbnumba, name))


# ------------------------------------------------------------------------ scipy.linalg

def test_library_keeps_scipy_linalg_out():
    """numba's first compile would import scipy.linalg (whose BLAS conflicts with a
    pip-installed cctbx's); importing nbnumba and simulating must not."""
    script = (
        "import sys, math, nbnumba\n"
        "cfg, _ = nbnumba.config_from_args(%r)\n"
        "r = nbnumba.simulate(cfg)\n"
        "nbnumba.make_noise_image(r, seed=1)\n"
        "assert r.stats.max_I > 0\n"
        "print('scipy.linalg' in sys.modules)\n"
        "import scipy.linalg\n"  # and it still imports afterwards
        "print(scipy.linalg.det([[2.0]]))\n" % (SMALL,))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "2.0"]
