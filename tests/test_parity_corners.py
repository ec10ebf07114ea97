"""Corners where the C's bytes and lines come from casts and NaN: PGM and SMV pixels of
negative or NaN values, the photon count of a noise image with NaN deviates, and the
-printout blocks. With NB_C_BIN set, each case is also compared with the C itself."""
import math
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from nbnumba import images, rng
from nbnumba_cli import report

C_BIN = os.environ.get("NB_C_BIN")
needs_c = pytest.mark.skipif(not (C_BIN and os.path.exists(C_BIN)),
                             reason="no C nanoBragg binary (set NB_C_BIN)")

P1 = ["-hkl", "P1_small.hkl", "-cell", "70", "80", "90", "-N", "1", "-detpixels", "32",
      "-phi", "1", "-seed", "1"]
PRINTOUT = re.compile(r"(\s*-?\d+\s+-?\d+ : stol = .*|at .*|hkl= .*| F_cell=.*|I/steps .*|"
                      r"polar   .*|omega   .*|capfrac .*|pixel   .*|  -?\d+ divergence steps)$")


@pytest.fixture
def p1(tmp_path, golden_dir):
    shutil.copy(golden_dir / "inputs" / "P1_small.hkl", tmp_path)
    (tmp_path / "src.txt").write_text("-10 0 0 1 1e-10\n-10 0.001 0 1 1e-10\n")
    return tmp_path


# ---------------------------------------------------------------------------------------
# the C's casts


@pytest.mark.parametrize("value,scale,byte", [
    (-633.0, 1.0, 135), (-1.0, 1.0, 255), (-0.5, 1.0, 0), (-256.0, 1.0, 0), (-255.5, 1.0, 1),
    (254.5, 1.0, 254), (300.0, 1.0, 255), (float("nan"), 1.0, 0), (-float("inf"), 1.0, 0),
    (-1.0, 3e9, 0), (-1.0, 2147483648.5, 0), (-1.0, 2147483647.7, 1),
    (-1.0, 2147483649.0, 0)])
def test_pgm_pixel_is_the_c_cast_of_a_negative_value(value, scale, byte):
    # x86-64: the double truncated to a 32-bit integer (0x80000000 when out of its range
    # or NaN), then its low byte
    out = images.pgm_pixels(np.array([value], np.float32), 1, 1, (0, 0, 0, 0), scale)
    assert int(out[0]) == byte


def test_pgm_scale_beyond_a_32_bit_integer_gives_zero():
    out = images.pgm_pixels(np.array([-1.0, -3.0], np.float32), 2, 1, (0, 1, 0, 0), 1e12)
    assert list(out) == [0, 0]


def test_nan_poisson_mean_gives_nan_photons_and_zero_pixels():
    values = np.array([1.0, np.nan, 5.0, np.inf], np.float32)
    table = rng.RandomTable()
    pixels, photons, overloads = rng.noise_image(values, 4, 1, (0, 3, 0, 0), 40.0, 1, table)
    assert math.isnan(photons)       # not -2**63 from an integer floor of NaN
    assert pixels[1] == 0            # the C's (unsigned short) of NaN
    assert report.c_g(-math.nan, "%.0f") == "-nan"


def test_negative_adc_wraps_noise_pixels_as_the_c():
    values = np.zeros(4, np.float32)
    pixels, photons, _ = rng.noise_image(values, 4, 1, (0, 3, 0, 0), -100.0, 1,
                                         rng.RandomTable())
    assert photons == 0.0 and list(pixels) == [65436] * 4


# ---------------------------------------------------------------------------------------
# -printout


def _blocks(text):
    return [line for line in text.splitlines() if PRINTOUT.match(line)]


def test_printout_after_the_interpolation_switch_off_uses_nearest_f(cli, p1):
    run = cli(P1 + ["-printout_pixel", "16", "16", "-nopgm"])
    assert run.code == 0, run.err
    assert " F_cell=95.916  F_latt=1   I = 9199.88" in run.out.splitlines()


def test_printout_pixel_outside_the_roi_prints_nothing(cli, p1):
    run = cli(P1 + ["-printout_pixel", "16", "16", "-roi", "3", "4", "5", "5", "-nopgm"])
    assert run.code == 0, run.err
    assert not any(": stol =" in line for line in run.out.splitlines())


def test_printout_pixel_with_negative_fast_index_prints_every_roi_pixel(cli, p1):
    run = cli(P1 + ["-printout_pixel", "-1", "-1", "-roi", "3", "4", "5", "5", "-nopgm"])
    assert run.code == 0, run.err
    starts = [line.split(":")[0].split() for line in run.out.splitlines() if ": stol =" in line]
    assert starts == [["3", "5"], ["4", "5"]]


def test_source_file_reports_minus_one_divergence_steps(cli, p1):
    run = cli(P1 + ["-sourcefile", "src.txt", "-nopgm"])
    assert run.code == 0, run.err
    assert "  -1 divergence steps" in run.out.splitlines()


# ---------------------------------------------------------------------------------------
# against the C


def _c(args, cwd):
    done = subprocess.run([C_BIN] + args, cwd=cwd, capture_output=True, text=True, timeout=300)
    # the C writes its interpolation warning without a line break before the printout
    return done.stdout.replace("WARNING: further warnings will not be printed! ", "\n")


FILES = ["-floatfile", "{}.bin", "-intfile", "{}.img", "-pgmfile", "{}.pgm",
         "-noisefile", "{}n.img"]


@needs_c
@pytest.mark.parametrize("extra", [
    ["-water", "-5"], ["-close_distance", "-100"], ["-twotheta", "180"],
    ["-curved_det", "-twotheta", "180"], ["-curved_det", "-close_distance", "-100"],
    ["-water", "-5", "-pgmscale", "1e6"], ["-adc", "-100"], ["-fluence", "1e300"]])
def test_pgm_smv_noise_bytes_and_photon_line_equal_the_c(cli, p1, extra):
    c_out = _c(P1 + extra + [f.format("c") for f in FILES], p1)
    run = cli(P1 + extra + [f.format("n") for f in FILES])
    assert run.code == 0, run.err
    for c_name, n_name in (("c.bin", "n.bin"), ("c.img", "n.img"), ("c.pgm", "n.pgm"),
                           ("cn.img", "nn.img")):
        assert (p1 / c_name).read_bytes() == (p1 / n_name).read_bytes(), (extra, c_name)
    photons = [line for line in c_out.splitlines() if "photons on noise image" in line]
    assert photons and photons[0] in run.out.splitlines()


@needs_c
@pytest.mark.parametrize("extra", [
    ["-printout_pixel", "16", "16"], ["-printout_pixel", "16", "16", "-roi", "3", "4", "5", "5"],
    ["-printout_pixel", "-1", "-1", "-roi", "3", "4", "5", "5"], ["-printout_pixel", "5", "-1"],
    ["-sourcefile", "src.txt", "-printout_pixel", "2", "3"]])
def test_printout_lines_equal_the_c(cli, p1, extra):
    files = ["-floatfile", "/dev/null", "-intfile", "/dev/null", "-nopgm"]
    c_lines = _blocks(_c(P1 + extra + files, p1))
    run = cli(P1 + extra + files)
    assert run.code == 0, run.err
    assert _blocks(run.out) == c_lines
