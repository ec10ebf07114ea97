"""Degenerate input: the C program's behaviour where it means something, a one-line error
with the reason and the fix where the C writes NaN or depends on undefined behaviour
(docs/parity.md, "Degenerate input"), and the statistics lines in the C's arithmetic.

Every expected line and image checksum below was obtained by running the C nanoBragg
(single thread) on the same command line.
"""
import hashlib
import math

import numpy as np
import pytest

from nbnumba import geometry, images
from nbnumba.config import DetectorConfig
from nbnumba_cli.report import c_g

CUBIC = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5"]
SMALL = CUBIC + ["-detpixels", "16", "-nonoise", "-nopgm", "-noprogress"]


def _error_line(run):
    lines = run.err.splitlines()
    assert run.code == 9, run.err
    assert len(lines) == 1 and lines[0].startswith("nbnumba: error: "), run.err
    return lines[0]


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ statistics lines

#: (flags, the C's solid-angle, max_I, mean and noise lines) on a 16-pixel cubic case
C_STATISTICS = [
    (["-fluence", "1e4"],
     ["solid angle subtended by detector = 1.59999e-05 steradian ( 0.000127323% sphere)",
      "max_I = 7.72485e-24  at 0.000375 0.000375",
      "mean= 2.35282e-24 rms= 0 rmsd= 3.23409e-24",
      "0 photons on noise image (0 overloads)"]),
    (["-fluence", "1e48"],
     ["solid angle subtended by detector = 1.59999e-05 steradian ( 0.000127323% sphere)",
      "max_I = 7.72485e+20  at 0.000375 0.000375",
      "mean= 2.35282e+20 rms= inf rmsd= 3.23409e+20",
      "3764515281618226642944 photons on noise image (16 overloads)"]),
    (["-fluence", "1e300"],
     ["solid angle subtended by detector = 1.59999e-05 steradian ( 0.000127323% sphere)",
      "max_I = inf  at 7.5e-05 7.5e-05",
      "mean= inf rms= inf rmsd= -nan",
      "-nan photons on noise image (10 overloads)"]),
]


@pytest.mark.parametrize("flags, c_lines", C_STATISTICS, ids=lambda v: " ".join(v)[:20])
def test_statistics_lines_are_the_c_text(cli, flags, c_lines):
    """rms= squares each float pixel in single precision (0 when the squares underflow,
    inf when they overflow); a NaN with the sign bit set prints as -nan."""
    run = cli(CUBIC + ["-detpixels", "4", "-nopgm", "-seed", "1", "-noprogress"] + flags)
    assert run.code == 0, run.err
    printed = run.out.splitlines()
    for line in c_lines:
        assert line in printed, (line, run.out)


def test_rms_squares_in_single_precision():
    tiny = np.full(16, 1e-24, dtype=np.float32)       # 1e-48 underflows in float32
    huge = np.full(16, 1e20, dtype=np.float32)        # 1e40 overflows in float32
    roi = (0, 3, 0, 3)
    assert images.statistics(tiny, 4, 4, roi).rms == 0.0
    assert images.statistics(huge, 4, 4, roi).rms == math.inf
    ones = np.full(16, 3.0, dtype=np.float32)
    assert images.statistics(ones, 4, 4, roi).rms == math.sqrt(9.0 * 16 / 15)


def test_nan_sign_printed_as_the_c():
    assert c_g(float(np.copysign(np.nan, -1.0))) == "-nan"
    assert c_g(float(np.copysign(np.nan, 1.0))) == "nan"
    assert c_g(math.inf) == "inf" and c_g(-math.inf) == "-inf"
    assert c_g(2.5e-7) == "2.5e-07" and c_g(12.0, "%.0f") == "12"


# ------------------------------------------------- where the C's image means something

#: flags -> (the C's statistics lines, sha256 of the C's float image); 16x16 pixels
C_IMAGES = {
    "mosaic_beyond_180_degrees": (
        ["-mosaic", "200", "-mosaic_dom", "3"],
        ["max_I = 97.2379  at 0.000975 0.000875", "mean= 3.03609 rms= 12.8744 rmsd= 12.5098"],
        "c6f52383f6faa5d348b48a677060c3cff4dbe8880db8c49ff1135c7896f9c1a3"),
    "negative_attenuation_depth": (
        ["-detector_abs", "-10"],
        ["max_I = 97.2806  at 0.000975 0.000975", "mean= 3.11119 rms= 12.7422 rmsd= 12.3551"],
        "e8636254bcccbcc747b264b8c01c8a22ac54cd530b2ac8d8ccce24d80802afea"),
    "negative_attenuation_depth_with_thickness": (
        ["-detector_thick", "100", "-detector_abs", "-10"],
        ["max_I = 46.4428  at 0.000975 0.000975", "mean= 1.48436 rms= 6.08249 rmsd= 5.89785"],
        "d4ad05e9eaa6d5a450cb60bf15512d6243ad5f390c334f4336b8eabf9b475563"),
    "twotheta_90_with_explicit_oversample": (
        ["-twotheta", "90", "-oversample", "1"],
        ["max_I = 7.95216e-15  at 0.00085 0.00155",
         "mean= 1.32802e-15 rms= 2.80154e-15 rmsd= 2.46537e-15"],
        "56f89b7b15552c1b04ef69b1ec4a95f6f56c2c3ce08788418e43d7251ea69f88"),
    "dispersion_150_percent": (
        ["-dispersion", "150", "-dispsteps", "3"],
        ["max_I = 79.8445  at 0.000975 0.000975", "mean= 5.372 rms= 12.4041 rmsd= 11.1754"],
        "59b14dd0a6061083329f813d8d33a0bdff6d613ce3863ebff54a01a62431b25c"),
    "misset_beyond_a_turn": (
        ["-misset", "360", "-720", "1e-10"],
        ["max_I = 97.2806  at 0.000975 0.000975", "mean= 3.11119 rms= 12.7422 rmsd= 12.3551"],
        "e8636254bcccbcc747b264b8c01c8a22ac54cd530b2ac8d8ccce24d80802afea"),
}

#: a left-handed A matrix: A_cubic.mat's rows negated (determinant < 0)
LEFT_HANDED = ("-0.00531249 -0.00534302 -0.00657492\n-0.00018419 -0.00768595 0.00639471\n"
               "0.00847016 -0.00351828 -0.00398474\n")


def test_left_handed_matrix_renders_the_c_image(cli, tmp_path):
    """A negative determinant gives a negative cell volume; the C renders a finite image
    (printing the volume and angles negative), and so does nbnumba."""
    (tmp_path / "left.mat").write_text(LEFT_HANDED)
    run = cli(["-mat", "left.mat", "-default_F", "100", "-N", "5", "-detpixels", "16",
               "-nonoise", "-nopgm", "-noprogress", "-floatfile", "f.bin"])
    assert run.code == 0 and run.err == "", run.err
    printed = run.out.splitlines()
    for line in ("Unit Cell: 100 100 100 -90 -90 -90", "volume = -999999 A^3",
                 "max_I = 97.8456  at 0.000975 0.000975",
                 "mean= 2.2088 rms= 12.695 rmsd= 12.5006"):
        assert line in printed, (line, run.out)
    assert _sha256(tmp_path / "f.bin") == ("41db8e4f1b8a807459c74e8594492f0d"
                                           "d0aa1a9823b6284e13be490b062290b5")


@pytest.mark.parametrize("name", sorted(C_IMAGES))
def test_meaningful_degenerate_input_renders_the_c_image(cli, tmp_path, name):
    flags, c_lines, c_sha256 = C_IMAGES[name]
    run = cli(SMALL + flags + ["-floatfile", "f.bin"])
    assert run.code == 0 and run.err == "", run.err
    for line in c_lines:
        assert line in run.out.splitlines(), (line, run.out)
    assert _sha256(tmp_path / "f.bin") == c_sha256


# ------------------------------------------- where the C writes NaN or is undefined

#: flags -> words the one-line error must contain (the reason, then the fix)
REFUSED = {
    "zero_phi_steps": (["-phi", "1", "-osc", "0", "-phistep", "0.3"], ["no phi steps", "NaN", "-phisteps 1"]),
    "zero_phi_steps_printout": (["-phi", "1", "-osc", "0", "-phistep", "0.3",
                                 "-printout_pixel", "2", "2"], ["no phi steps", "NaN", "-phisteps 1"]),
    "one_divergence_step": (["-divsteps", "1"], ["no sources", "NaN", "-square_div"]),
    "flux_without_beam_size": (["-flux", "1e12", "-beamsize", "0"], ["beam size", "-beamsize"]),
    "auto_oversample_above_limit": (["-lambda", "1e-3"], ["1500 sub-pixels", "-oversample"]),
    "auto_oversample_overflows": (["-twotheta", "90"], ["overflows", "-oversample"]),
    "pixel_overflow": (["-pixel", "1e300"], ["-pixel"]),
    "pixel_overflow_explicit_oversample": (["-pixel", "1e160", "-oversample", "1"], ["-pixel"]),
    "zero_fast_axis": (["-fdet_vector", "0", "0", "0"], ["zero vector", "-fdet_vector"]),
    "parallel_axes": (["-fdet_vector", "0", "1", "0", "-sdet_vector", "0", "-1", "0"],
                      ["parallel", "-sdet_vector"]),
    "mosaic_beyond_a_turn": (["-mosaic", "1000", "-mosaic_dom", "2"], ["-mosaic"]),
    "attenuation_depth_underflows": (["-detector_abs", "1e-310"], ["too small"]),
    # wavelengths down to -0.25 lambda: the C renders a finite but meaningless image
    "dispersion_beyond_200_percent": (["-dispersion", "250", "-dispsteps", "3"],
                                      ["-dispersion 250 %", "negative"]),
    "subnormal_distance": (["-distance", "1e-317"], ["inf sub-pixels", "-oversample"]),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_nan_or_undefined_input_is_refused_with_reason_and_fix(cli, tmp_path, name):
    flags, words = REFUSED[name]
    line = _error_line(cli(SMALL + flags + ["-floatfile", "f.bin"]))
    for word in words:
        assert word in line, line
    assert not (tmp_path / "f.bin").exists()


def test_overflowing_detector_is_refused_by_the_geometry():
    """Below the plausibility check of the configuration: a detector whose pixels'
    squared distances overflow (NaN in every pixel of the C's image) is refused."""
    det = DetectorConfig(pixel_size=1e297, fpixels=16, spixels=16)
    geom = geometry.place_detector(geometry.detector_frame(det), det)
    with pytest.raises(geometry.GeometryError, match="overflows"):
        geometry.check_placement(geom)
    fine = DetectorConfig(pixel_size=1e-4, fpixels=16, spixels=16)
    geometry.check_placement(geometry.place_detector(geometry.detector_frame(fine), fine))


def _write_header_image(cli, tmp_path, extra):
    """An SMV file written by nbnumba itself (it carries CLOSE_DISTANCE, OSC_RANGE ...)."""
    run = cli(CUBIC + ["-detpixels", "8", "-nonoise", "-nopgm", "-noprogress",
                       "-intfile", "h.img", "-floatfile", "h.bin"] + extra)
    assert run.code == 0, run.err
    return str(tmp_path / "h.img")


def test_header_osc_range_zero_with_phistep_is_refused(cli, tmp_path):
    header = _write_header_image(cli, tmp_path, ["-osc", "0"])
    assert "OSC_RANGE=0;" in (tmp_path / "h.img").read_bytes()[:512].decode()
    line = _error_line(cli(CUBIC + ["-img", header, "-phistep", "0.1", "-noprogress"]))
    assert "OSC_RANGE" in line and "-phisteps 1" in line


def test_source_wavelength_with_overflowing_inverse_is_refused(cli, tmp_path):
    (tmp_path / "src.txt").write_text("1 1 0 0 1e-309\n")
    line = _error_line(cli(SMALL + ["-sourcefile", "src.txt"]))
    assert "source wavelength 1e-309 m" in line and "metres" in line


def test_cell_out_of_double_range_is_refused(cli, tmp_path):
    (tmp_path / "tiny_cell.mat").write_text("1e110 0 0\n0 1e110 0\n0 0 1e110\n")
    line = _error_line(cli(["-mat", "tiny_cell.mat", "-default_F", "1", "-detpixels", "8",
                            "-oversample", "1", "-noprogress"]))
    assert "out of range" in line and "-mat" in line


# ------------------------------------------------------------- notes and warnings

def test_header_close_distance_beating_distance_is_noted(cli, tmp_path):
    header = _write_header_image(cli, tmp_path, ["-distance", "80"])
    run = cli(CUBIC + ["-img", header, "-distance", "50", "-nonoise", "-nopgm",
                       "-noprogress"])
    assert run.code == 0
    assert "  distance=0.08 " in run.out          # the header's 80 mm, as in the C
    lines = run.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbnumba: note: "), run.err
    assert "CLOSE_DISTANCE (80 mm" in lines[0] and "-close_distance" in lines[0]
    for quiet in (["-img", header], ["-img", header, "-distance", "50",
                                     "-close_distance", "50"]):
        run = cli(CUBIC + quiet + ["-nonoise", "-nopgm", "-noprogress"])
        assert run.code == 0 and run.err == "", run.err


def test_saturating_water_background_warns(cli):
    run = cli(CUBIC + ["-detpixels", "8", "-water", "100", "-seed", "1", "-nopgm",
                       "-noprogress"])
    assert run.code == 0
    lines = run.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbnumba: warning: 64 of 64 pixels of "
                                                   "noiseimage.img are overloaded"), run.err
    assert "-water" in lines[0]
    quiet = cli(CUBIC + ["-detpixels", "8", "-seed", "1", "-nopgm", "-noprogress"])
    assert quiet.code == 0 and quiet.err == ""
