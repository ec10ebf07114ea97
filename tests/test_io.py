"""Input and output file formats (spec/formats.md, spec/sources.md section 1)."""
import struct

import numpy as np
import pytest

from nbnumba.config import StructureFactors
from nbnumba.io import fdump, hkl, matrix, smv, sourcefile
from nbnumba.io.errors import InputFileError
from nbnumba.sources import SourceError, file_sources


# ------------------------------------------------------------------------------ HKL
def test_hkl_four_columns():
    idx, F = hkl.parse_hkl("1 2 3 10.5\n-1 0 -4 4\n")
    assert idx.tolist() == [[1, 2, 3], [-1, 0, -4]]
    assert F.tolist() == [10.5, 4.0]


def test_hkl_extra_columns_are_ignored():
    idx, F = hkl.parse_hkl("  0   1   2   19.2   0.5\n -4  -4  -4   16.9   1.4  90.0\n")
    assert idx.tolist() == [[0, 1, 2], [-4, -4, -4]]
    assert F.tolist() == [19.2, 16.9]


def test_hkl_blank_lines_are_skipped():
    idx, _ = hkl.parse_hkl("\n1 1 1 5\n   \n\n2 2 2 6\n")
    assert idx.tolist() == [[1, 1, 1], [2, 2, 2]]


def test_hkl_integer_valued_decimal_index_is_accepted():
    idx, F = hkl.parse_hkl("1.0 -2.0 3 7\n")
    assert idx.tolist() == [[1, -2, 3]] and idx.dtype.kind == "i"
    assert F.tolist() == [7.0]


def test_hkl_fractional_index_is_rejected_naming_the_line():
    with pytest.raises(InputFileError, match=r"line 2\b"):
        hkl.parse_hkl("0 0 0 1\n1.5 2 3 5\n", name="x.hkl")


def test_hkl_short_line_is_rejected_naming_the_line():
    with pytest.raises(InputFileError, match=r"x.hkl line 3\b"):
        hkl.parse_hkl("0 0 0 1\n1 1 1 2\n1 2 3\n", name="x.hkl")


def test_hkl_word_is_rejected():
    with pytest.raises(InputFileError, match=r"line 1\b"):
        hkl.parse_hkl("h k l F\n0 0 0 1\n")


def test_hkl_empty_file_is_rejected():
    with pytest.raises(InputFileError):
        hkl.parse_hkl("\n\n")


def test_hkl_grid_extent_and_duplicates_last_wins():
    idx, F = hkl.parse_hkl("0 0 0 1\n2 -1 3 5\n0 0 0 9\n-1 1 0 4\n")
    sf = hkl.grid_from_reflections(idx, F, 0.0)
    assert (sf.h_min, sf.k_min, sf.l_min) == (-1, -1, 0)
    assert sf.maxima == (2, 1, 3)
    assert sf.grid.shape == (5, 4, 5)   # one padding slice per axis
    assert sf.count == 4
    assert sf.grid[0 + 1, 0 + 1, 0] == 9.0
    assert sf.grid[2 + 1, -1 + 1, 3] == 5.0
    assert sf.grid[-1 + 1, 1 + 1, 0] == 4.0
    assert np.count_nonzero(sf.grid) == 3


def test_hkl_default_F_prefills_only_the_real_part():
    idx, F = hkl.parse_hkl("0 0 0 1\n1 1 1 2\n")
    sf = hkl.grid_from_reflections(idx, F, 7.0)
    assert sf.grid.shape == (3, 3, 3)
    real = sf.grid[:2, :2, :2]
    assert real[0, 0, 0] == 1.0 and real[1, 1, 1] == 2.0
    assert np.count_nonzero(real == 7.0) == 6
    assert not sf.grid[2, :, :].any() and not sf.grid[:, 2, :].any() and not sf.grid[:, :, 2].any()


def test_read_hkl_file(tmp_path):
    path = tmp_path / "a.hkl"
    path.write_text("0 0 0 100.00\n0 2 0 80.00\n0 0 -2 55.00\n")
    sf = hkl.read_hkl(str(path), default_F=0.0)
    assert (sf.h_min, sf.k_min, sf.l_min) == (0, 0, -2)
    assert sf.grid[0, 2, 2] == 80.0


def test_read_missing_hkl_file_names_it(tmp_path):
    with pytest.raises(InputFileError, match="nothere.hkl"):
        hkl.read_hkl(str(tmp_path / "nothere.hkl"))


# --------------------------------------------------------------------------- Fdump.bin
def _grid(first=10.02):
    rng = np.random.default_rng(3)
    grid = np.zeros((4, 3, 5))
    grid[:3, :2, :4] = rng.uniform(0, 100, (3, 2, 4))
    grid[0, 0, 0] = first
    return StructureFactors(grid=grid, h_min=-1, k_min=2, l_min=-3, count=9)


def test_fdump_layout():
    data = fdump.fdump_bytes(_grid())
    assert data.startswith(b"-1 1 2 3 -3 0\n\f")
    assert len(data) == len(b"-1 1 2 3 -3 0\n\f") + 8 * 4 * 3 * 5


def test_fdump_round_trip_with_whitespace_first_byte(tmp_path):
    """10.02 is stored as 0a d7 a3 70 ...: its first byte is a newline (trap 19)."""
    assert struct.pack("<d", 10.02)[0] == 0x0A
    sf = _grid(10.02)
    path = tmp_path / "Fdump.bin"
    fdump.write_fdump(sf, str(path))
    back = fdump.read_fdump(str(path))
    assert (back.h_min, back.k_min, back.l_min) == (-1, 2, -3)
    assert back.maxima == sf.maxima
    assert np.array_equal(back.grid, sf.grid)
    assert back.grid[0, 0, 0] == 10.02
    assert back.count == 3 * 2 * 4


@pytest.mark.parametrize("first", [32.0 + 1 / 8, 0.0, -5.5])
def test_fdump_round_trip_other_values(first):
    sf = _grid(first)
    back = fdump.parse_fdump(fdump.fdump_bytes(sf))
    assert np.array_equal(back.grid, sf.grid)


def test_fdump_of_hkl_file_round_trips(golden_dir):
    sf = hkl.read_hkl(str(golden_dir / "inputs" / "sparse.hkl"), default_F=3.0)
    back = fdump.parse_fdump(fdump.fdump_bytes(sf))
    assert np.array_equal(back.grid, sf.grid)
    assert (back.h_min, back.k_min, back.l_min) == (sf.h_min, sf.k_min, sf.l_min)


def test_fdump_golden_input_reads(golden_dir):
    data = (golden_dir / "inputs" / "Fdump.bin").read_bytes()
    sf = fdump.parse_fdump(data)
    header = data[:data.index(b"\n")].split()
    assert [sf.h_min, sf.maxima[0], sf.k_min, sf.maxima[1], sf.l_min, sf.maxima[2]] == \
        [int(x) for x in header]


@pytest.mark.parametrize("data", [b"garbage", b"0 1 0 1 0 1\nX" + b"\0" * 64,
                                  b"0 1 0 1 0 1\n\f" + b"\0" * 8, b"0 1 0 1\n\f" + b"\0" * 64])
def test_fdump_malformed_is_rejected(data):
    with pytest.raises(InputFileError):
        fdump.parse_fdump(data)


# ----------------------------------------------------------------------------------- SMV
FIELDS = [("SIZE1", "6", True), ("SIZE2", "4", True), ("PIXEL_SIZE", "0.12", True),
          ("DISTANCE", "90", True), ("WAVELENGTH", "1.3", True),
          ("DIALS_ORIGIN", "-3.36,4.16,-90", False), ("XDS_ORGX", "28.5", True),
          ("CLOSE_DISTANCE", "85.5", True), ("PHI", "2", True), ("TWOTHETA", "0", True)]


def test_smv_header_text():
    text = smv.header_text(FIELDS)
    assert text.startswith(b"{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\n"
                           b"TYPE=unsigned_short;\nSIZE1=6;\n")
    assert b"\nDIALS_ORIGIN=-3.36,4.16,-90\n" in text
    assert text.endswith(b"\n}\f")


def test_smv_round_trip(tmp_path):
    pixels = np.arange(24, dtype=np.uint16) * 1000
    path = tmp_path / "a.img"
    smv.write_smv(str(path), smv.header_text(FIELDS), pixels)
    raw = path.read_bytes()
    assert len(raw) == 512 + 2 * 24
    assert raw[512:] == pixels.astype("<u2").tobytes()
    img = smv.read_smv(str(path))
    assert (img.width, img.height, img.header_size) == (6, 4, 512)
    assert np.array_equal(img.data, pixels)
    assert img.value("PIXEL_SIZE") == 0.12
    assert img.value("WAVELENGTH") == 1.3
    assert img.value("PHI") == 2.0
    assert img.value("ORGX") == 28.5          # substring of XDS_ORGX
    assert img.value("DISTANCE") == 85.5      # last occurrence: CLOSE_DISTANCE
    assert img.value("BEAM_CENTER_X") is None


def test_smv_long_header_is_not_padded():
    fields = [("K%03d" % i, "1.23456", True) for i in range(60)]
    header = smv.header_text(fields)
    assert len(header) > 512
    data = b"".join(smv.smv_bytes(header, np.zeros(4, np.uint16)))
    assert data == header + b"\0" * 8


def test_smv_reader_on_golden_header(golden_dir):
    img = smv.read_smv(str(golden_dir / "inputs" / "header_64.img"))
    assert (img.width, img.height) == (64, 64)
    assert img.value("DISTANCE") == 90.0
    assert img.value("BEAM_CENTER_Y") == 3.3
    assert img.value("ORGY") == 35.1667


def test_c_atof():
    assert smv.c_atof(b" 12.5;") == 12.5
    assert smv.c_atof(b"-3e2x") == -300.0
    assert smv.c_atof(b"abc") == 0.0
    assert smv.header_value(b"{\nKEY;\n}", "KEY") == 0.0   # no '=' after the key


def test_non_smv_file_is_rejected(tmp_path):
    path = tmp_path / "x.img"
    path.write_bytes(b"P5\n4 4\n255\n" + b"\0" * 16)
    with pytest.raises(InputFileError, match="does not look like an SMV"):
        smv.read_smv(str(path))


def test_truncated_smv_is_rejected(tmp_path):
    path = tmp_path / "t.img"
    smv.write_smv(str(path), smv.header_text(FIELDS), np.zeros(24, np.uint16))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputFileError, match="truncated"):
        smv.read_smv(str(path))


# --------------------------------------------------------------------------- source files
def test_source_delimiters_and_missing_columns():
    src = sourcefile.parse_sources("-10, 0.01, 0.0 ; 3.0\n-10\t0\t0:1!1e-10\n")
    assert src.positions.tolist() == [[-10.0, 0.01, 0.0], [-10.0, 0.0, 0.0]]
    assert src.weights.tolist() == [3.0, 1.0]
    assert np.isnan(src.wavelengths[0]) and src.wavelengths[1] == 1e-10


def test_source_short_lines_get_nan_then_defaults():
    src = sourcefile.parse_sources("-10 0.01\n5\n")
    assert np.isnan(src.positions[0, 2]) and np.isnan(src.positions[1, 1:]).all()
    assert np.isnan(src.weights).all() and np.isnan(src.wavelengths).all()
    pos, weights, lambdas = file_sources(src, (1.0, 0.0, 0.0), 1.5e-10)
    assert pos.tolist() == [[-10.0, 0.01, -0.0], [5.0, -0.0, -0.0]]
    assert weights.tolist() == [1.0, 1.0]
    assert lambdas.tolist() == [1.5e-10, 1.5e-10]


def test_source_extra_columns_ignored_and_blank_lines_skipped():
    src = sourcefile.parse_sources("\n1 2 3 4 5e-10 6 7\n  , ;\n")
    assert len(src.weights) == 1
    assert src.wavelengths.tolist() == [5e-10]


def test_source_crlf_and_missing_final_newline():
    crlf = sourcefile.parse_sources("-10 0 0 1 1e-10\r\n-10 0 0.02 0.2 1.2e-10\r\n")
    plain = sourcefile.parse_sources("-10 0 0 1 1e-10\n-10 0 0.02 0.2 1.2e-10")
    for a, b in ((crlf.positions, plain.positions), (crlf.weights, plain.weights),
                 (crlf.wavelengths, plain.wavelengths)):
        assert np.array_equal(a, b)
    assert plain.wavelengths.tolist() == [1e-10, 1.2e-10]


@pytest.mark.parametrize("text,line", [("# a comment\n-10 0 0\n", 1),
                                       ("-10 0 0\n-10 zero 0\n", 2),
                                       ("-10 0 0\n-10 0 0 1 nan\n", 2)])
def test_source_bad_lines_are_rejected_naming_the_line(text, line):
    with pytest.raises(InputFileError, match=rf"s.txt line {line}\b"):
        sourcefile.parse_sources(text, name="s.txt")


def test_source_file_without_sources_is_rejected():
    with pytest.raises(InputFileError):
        sourcefile.parse_sources("\n \n")


def test_source_zero_wavelength_is_rejected():
    src = sourcefile.parse_sources("-10 0 0 1 0\n")
    with pytest.raises(SourceError):
        file_sources(src, (1.0, 0.0, 0.0), 1e-10)


def test_golden_source_files(golden_dir):
    src = sourcefile.read_sources(str(golden_dir / "inputs" / "two_sources.txt"))
    assert src.positions.tolist() == [[-10.0, 0.0, 0.0], [-10.0, 0.0, 0.02]]
    assert src.weights.tolist() == [1.0, 0.2]
    assert src.wavelengths.tolist() == [1.0e-10, 1.2e-10]
    xyz = sourcefile.read_sources(str(golden_dir / "inputs" / "sources_xyz.txt"))
    assert xyz.positions.shape == (3, 3) and np.isnan(xyz.wavelengths).all()


# --------------------------------------------------------------------------- matrix files
def test_matrix_first_nine_numbers(golden_dir):
    m = matrix.read_matrix(str(golden_dir / "inputs" / "A_triclinic.mat"))
    assert m.shape == (3, 3)
    assert m[0].tolist() == [-0.00593861, 0.01382426, -0.00097078]
    assert m[2].tolist() == [0.00223868, 0.00317437, -0.01385968]


def test_matrix_free_format_and_trailing_text():
    m = matrix.parse_matrix("1 0 0 0 2\n0 0 0 3 MOSFLM trailer 1 2 3\n")
    assert m.tolist() == [[1, 0, 0], [0, 2, 0], [0, 0, 3]]


@pytest.mark.parametrize("text", ["1 0 0 0 1 0 0 0", "1 0 0 0 x 0 0 0 1", "1 0 0 0 0 0 0 0 0",
                                  "1 0 0 0 1 0 0 0 nan"])
def test_matrix_bad_files_are_rejected(text):
    with pytest.raises(InputFileError):
        matrix.parse_matrix(text, name="m.mat")
