"""``nbnumba -h`` and the parser cover every flag of spec/cli.md section 2."""
import argparse
import contextlib
import io
import re

import pytest

from conftest import GOLDEN
from nbnumba_cli.main import main
from nbnumba_cli.parse import build_parser, parse_arguments

# every flag string in backticks in the tables of spec/cli.md section 2 (151 strings;
# `-h`, `-xdsfoo` and `-` excluded), plus -source_dist, which nbnumba also accepts
SPEC_FLAGS = [
    "-4stol", "-MW", "-N", "-Na", "-Nb", "-Nc", "-ORGX", "-ORGY", "-Q", "-Xbeam", "-Xclose",
    "-Ybeam", "-Yclose", "-adc", "-adxv", "-beam_vector", "-beamsize", "-binary_spots",
    "-cell", "-close_distance", "-coherent", "-curved_det", "-default_F", "-density",
    "-denzo", "-detector_abs", "-detector_absorb", "-detector_rotx", "-detector_roty",
    "-detector_rotz", "-detector_thick", "-detector_thicksteps", "-detpixels",
    "-detpixels_f", "-detpixels_s", "-detpixels_x", "-detpixels_y", "-detsize",
    "-detsize_f", "-detsize_s", "-dials", "-dispersion", "-dispsteps", "-distance",
    "-divergence", "-divsteps", "-dmin", "-dump_pixel", "-energy", "-exposure",
    "-fdet_vector", "-floatfile", "-floatimage", "-fluence", "-flux", "-fudge",
    "-gauss_xtal", "-hdivrange", "-hdivstep", "-hdivsteps", "-heigh", "-height", "-hkl",
    "-img", "-interpolate", "-intfile", "-intimage", "-lambda", "-mask", "-mat", "-misset",
    "-misset_seed", "-molec", "-mosaic", "-mosaic_dom", "-mosaic_seed", "-mosaic_spr",
    "-mosaic_spread", "-mosaici", "-mosaicity", "-mosflm", "-nointerpolate", "-noisefile",
    "-noiseimage", "-nonoise", "-nopgm", "-nopolar", "-noprogress", "-odet_vector", "-osc",
    "-oversample", "-oversample_omega", "-oversample_polar", "-oversample_thick",
    "-pgmfile", "-pgmimage", "-pgmscale", "-phi", "-phistep", "-phisteps", "-pivot",
    "-pix0_vector", "-pixel", "-point_pixel", "-polar", "-polar_vector", "-printout",
    "-printout_pixel", "-progress", "-roi", "-round_div", "-round_xtal", "-sample_den",
    "-sample_heigh", "-sample_height", "-sample_size", "-sample_thick", "-sample_width",
    "-sample_x", "-sample_y", "-sample_z", "-samplesize", "-scale", "-sdet_vector", "-seed",
    "-sourcefile", "-spindle_axis", "-square_div", "-square_xtal", "-stol", "-stolout",
    "-thicksteps", "-tophat_spots", "-trace_pixel", "-twotheta", "-twotheta_axis",
    "-vdivrange", "-vdivstep", "-vdivsteps", "-water", "-wave", "-width", "-xds",
    "-xtal_heigh", "-xtal_size", "-xtal_thick", "-xtal_width", "-xtal_x", "-xtal_y",
    "-xtal_z", "-xtalsize",
]

EXTRA_FLAGS = ["-source_dist"]
ALL_FLAGS = SPEC_FLAGS + EXTRA_FLAGS

SWITCHES = {"-square_xtal", "-round_xtal", "-gauss_xtal", "-binary_spots", "-tophat_spots",
            "-interpolate", "-nointerpolate", "-round_div", "-square_div", "-nopolar",
            "-coherent", "-mosflm", "-xds", "-adxv", "-denzo", "-dials", "-curved_det",
            "-point_pixel", "-oversample_thick", "-oversample_polar", "-oversample_omega",
            "-nonoise", "-nopgm", "-printout", "-noprogress", "-progress"}
VALUES = {"-cell": ["60", "70", "80", "90", "95", "100"], "-misset": ["10", "20", "30"],
          "-pivot": ["sample"], "-roi": ["1", "10", "2", "12"], "-printout_pixel": ["3", "4"],
          "-trace_pixel": ["3", "4"], "-dump_pixel": ["3", "4"],
          "-img": [str(GOLDEN / "inputs" / "header_64.img")],
          "-mask": [str(GOLDEN / "inputs" / "mask_64.img")]}
for _v in ("-fdet_vector", "-sdet_vector", "-odet_vector", "-beam_vector", "-polar_vector",
           "-spindle_axis", "-twotheta_axis", "-pix0_vector"):
    VALUES[_v] = ["0", "0", "1"]


def values_for(flag):
    if flag in SWITCHES:
        return []
    return VALUES.get(flag, ["2"])


@pytest.fixture(scope="module")
def help_text():
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        main(["-h"])
    assert exc.value.code == 0
    return out.getvalue()


def test_spec_flag_list_is_complete():
    assert len(SPEC_FLAGS) == len(set(SPEC_FLAGS)) == 151


def test_help_exits_zero_and_describes_the_program(help_text):
    assert help_text.startswith("usage: nbnumba")
    assert "--version" in help_text


@pytest.mark.parametrize("flag", ALL_FLAGS)
def test_help_lists_flag(flag, help_text):
    assert re.search(r"(?<![\w-])" + re.escape(flag) + r"(?![\w-])", help_text), flag


@pytest.mark.parametrize("flag", ALL_FLAGS)
def test_parser_accepts_flag_exactly(flag):
    """The flag is registered under its own name (not reached by prefix matching) and a
    command line using it parses."""
    args = ["-default_F", "1", flag] + values_for(flag)
    namespace, extras = build_parser().parse_known_args(args, argparse.Namespace(ordered=[]))
    assert extras == []
    assert [opt for _, _, opt in namespace.ordered] == ["-default_F", flag]
    parse_arguments(args)


def test_help_via_long_option():
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "-twotheta_axis" in out.getvalue()
