"""nbnumba's SMV files are readable by the programs crystallographers use.

* fabio (silx/ESRF) opens the noiseless (-intfile) and noise (-noisefile) images with the
  header values nbnumba wrote and the same pixel data, in (slow, fast) order;
* the header carries what DIALS' dxtbx needs to pick its simulated-image reader
  (FormatSMVJHSim: a file starting ``{\\nHEADER_BYTES=``, ``BEAMLINE=fake``, and the keys
  that reader converts to numbers), and every record parses the way dxtbx splits it;
* every integer and noise image of the golden set (written by the C program, which
  nbnumba reproduces byte for byte) opens in fabio as well.
"""
import gzip

import fabio  # in the test extra: a missing fabio fails these tests, it never skips them
import numpy as np
import pytest

from conftest import GOLDEN, run_cli

#: keys dxtbx's FormatSMVJHSim reads as numbers (or compares) once BEAMLINE=fake selects it
DXTBX_JHSIM_KEYS = ("DISTANCE", "BEAM_CENTER_X", "BEAM_CENTER_Y", "PIXEL_SIZE", "SIZE1",
                    "SIZE2", "WAVELENGTH", "OSC_START", "OSC_RANGE")


def header_pairs(data):
    """key -> value text of an SMV header (up to the closing brace), ';' stripped."""
    text = data[:data.index(b"}")].decode("ascii")
    pairs = {}
    for line in text.split("\n")[1:]:
        if "=" in line:
            key, value = line.split("=", 1)
            pairs[key] = value.rstrip(";")
    return pairs


def render(tmp_path, extra):
    args = ["-cell", "60", "70", "80", "90", "95", "90", "-default_F", "100", "-N", "3",
            "-detpixels_f", "24", "-detpixels_s", "16", "-pixel", "0.2", "-distance", "80",
            "-lambda", "1.1", "-seed", "4", "-fluence", "1e26", "-intfile", "int.img",
            "-noisefile", "noise.img", "-floatfile", "float.bin", "-nopgm"] + extra
    run = run_cli(args, tmp_path)
    assert run.code == 0, run.err
    return tmp_path / "int.img", tmp_path / "noise.img"


CONFIGS = {
    "mosflm": [],
    "xds_rotated": ["-xds", "-ORGX", "10.5", "-ORGY", "7", "-twotheta", "5",
                    "-detector_rotz", "2", "-phi", "10", "-osc", "0.5", "-adc", "10"],
    "dials_scaled": ["-dials", "-scale", "3000", "-adc", "0", "-Xbeam", "2.4", "-Ybeam", "1.6"],
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def images(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    return render(tmp, CONFIGS[request.param])


@pytest.mark.parametrize("which", [0, 1], ids=["int", "noise"])
def test_fabio_reads_header_and_pixels(images, which):
    path = images[which]
    raw = path.read_bytes()
    img = fabio.open(str(path))
    assert type(img).__name__ in ("DtrekImage", "AdscImage")
    ours = header_pairs(raw)
    assert dict(img.header) == ours  # every key, every value text, nothing else
    assert ours["SIZE1"] == "24" and ours["SIZE2"] == "16"
    assert ours["PIXEL_SIZE"] == "0.2" and ours["WAVELENGTH"] == "1.1"
    assert img.data.dtype == np.uint16
    assert img.data.shape == (16, 24)  # (slow, fast)
    expected = np.frombuffer(raw[512:], "<u2").reshape(16, 24)
    assert np.array_equal(img.data, expected)
    assert img.data.any()


def test_fabio_data_follow_the_float_image(images):
    """The int image fabio returns is the float image scaled, plus the ADC offset."""
    int_path, _ = images
    floats = np.fromfile(int_path.parent / "float.bin", "<f4").reshape(16, 24)
    data = fabio.open(str(int_path)).data.astype(float)
    # the brightest pixel has the highest count (same orientation, no transposition)
    assert data.flat[np.argmax(floats)] == data.max() > data.min()
    assert np.corrcoef(data.ravel(), floats.ravel())[0, 1] > 0.99


@pytest.mark.parametrize("which", [0, 1], ids=["int", "noise"])
def test_dxtbx_recognises_a_simulated_image(images, which):
    """What dxtbx's FormatSMV/FormatSMVJHSim check, re-stated (not dxtbx's code):
    the magic start, HEADER_BYTES on the second line, one '=' per record, BEAMLINE=fake,
    and the numeric keys its models are built from."""
    raw = images[which].read_bytes()
    assert raw[:15] == b"{\nHEADER_BYTES="
    size = int(raw[:45].decode("ascii").split("\n")[1].split("=")[1].replace(";", ""))
    assert size == 512
    records = {}
    for record in raw[:size].decode("ascii", "ignore").split("\n"):
        if record == "}":
            break
        if "=" in record:
            parts = record.replace(";", "").split("=")
            assert len(parts) == 2, record  # dxtbx unpacks exactly key, value
            records[parts[0].strip()] = parts[1].strip()
    assert records["BEAMLINE"] == "fake"  # selects FormatSMVJHSim (and not FormatSMVADSC)
    assert records["BYTE_ORDER"] == "little_endian"
    for key in DXTBX_JHSIM_KEYS:
        float(records[key])
    # nanoBragg writes no ADC_OFFSET, so dxtbx assumes a pedestal of 1 count (see the
    # report / docs: an nbnumba extension key could carry -adc; the default bytes stay C's)
    assert "ADC_OFFSET" not in records


def test_golden_c_images_open_in_fabio(tmp_path, golden_cases):
    """Every int/noise image of the golden set (C output = nbnumba output) opens in fabio."""
    opened = 0
    for case in golden_cases:
        for name in ("int.img", "noise.img"):
            if name not in case["outputs"]:
                continue
            raw = gzip.decompress((GOLDEN / "cases" / case["id"] / (name + ".gz")).read_bytes())
            path = tmp_path / f"{case['id']}_{name}"
            path.write_bytes(raw)
            img = fabio.open(str(path))
            pairs = header_pairs(raw)
            assert dict(img.header) == pairs, case["id"]
            shape = (int(pairs["SIZE2"]), int(pairs["SIZE1"]))
            assert np.array_equal(img.data, np.frombuffer(raw[512:], "<u2").reshape(shape))
            opened += 1
    assert opened >= 50


LONG_HEADER = ["-pixel", "0.0123457", "-distance", "123.4567", "-Xbeam", "-12.34567",
               "-Ybeam", "-23.45678", "-lambda", "1.234567", "-phi", "12.34567", "-osc",
               "0.1234567", "-twotheta", "12.34567", "-detector_rotx", "1.234567"]


def test_long_header_written_as_the_c_does(tmp_path):
    # a limitation shared with the C program: a header longer than 512 bytes is written
    # unpadded while it still says HEADER_BYTES=512 (the pixels follow the form feed)
    int_path, _ = render(tmp_path, LONG_HEADER)
    raw = int_path.read_bytes()
    end = raw.index(b"}\f") + 2
    assert end > 512
    assert b"HEADER_BYTES=512;" in raw[:end]
    assert len(raw) == end + 2 * 16 * 24


def test_extended_header_readable_by_fabio(tmp_path):
    # -smv_extended: the header is padded to a multiple of 512 and says so, and carries
    # ADC_OFFSET for dxtbx; fabio then reads the right pixels
    int_path, _ = render(tmp_path, LONG_HEADER + ["-smv_extended", "-adc", "25"])
    raw = int_path.read_bytes()
    assert b"HEADER_BYTES=1024;" in raw[:1024]
    assert b"ADC_OFFSET=25;" in raw[:1024]
    img = fabio.open(str(int_path))
    assert img.data.shape == (16, 24)
    assert np.array_equal(img.data, np.frombuffer(raw[1024:], "<u2").reshape(16, 24))
