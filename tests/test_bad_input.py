"""Bad input through the in-process CLI: one error line, non-zero exit, nothing written.

Every run uses the default output names; ``floatimage.bin`` and ``intimage.img`` exist
beforehand with known bytes and must be left untouched, and no other output (nor
Fdump.bin, nor a temporary ``.part`` file) may appear.
"""
import pytest

CELL = ["-cell", "50", "50", "50", "90", "90", "90"]
REST = ["-N", "2", "-detpixels", "16", "-oversample", "1", "-seed", "1", "-noprogress"]
BASE = CELL + ["-default_F", "1"] + REST
KNOWN = {"floatimage.bin": b"KNOWN FLOAT BYTES\x00\x01", "intimage.img": b"KNOWN SMV"}
NEW_OUTPUTS = ("image.pgm", "noiseimage.img", "Fdump.bin")

SMV_HEADER = (b"{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
              b"SIZE1=16;\nSIZE2=16;\nPIXEL_SIZE=0.1;\n}\f")


def _files(tmp):
    """Input files the cases refer to."""
    (tmp / "inputs").mkdir()
    (tmp / "inputs" / "adir").mkdir()
    (tmp / "inputs" / "frac.hkl").write_text("0 0 0 10\n1.5 2 3 5\n")
    (tmp / "inputs" / "short.hkl").write_text("0 0 0 10\n1 2 3\n")
    (tmp / "inputs" / "binary.hkl").write_bytes(b"\xff\xfe\x00\x81 1 2 3\n")
    (tmp / "inputs" / "empty.hkl").write_text("\n\n")
    (tmp / "inputs" / "comment.txt").write_text("# my sources\n-10 0 0 1 1e-10\n")
    (tmp / "inputs" / "word.txt").write_text("-10 0 0 1 1e-10\n-10 zero 0 1 1e-10\n")
    (tmp / "inputs" / "short.mat").write_text("0.01 0 0\n0 0.01 0\n")
    (tmp / "inputs" / "notsmv.img").write_bytes(b"P5\n16 16\n255\n" + bytes(256))
    (tmp / "inputs" / "truncated.img").write_bytes(SMV_HEADER + b" " * (512 - len(SMV_HEADER))
                                                   + bytes(100))


CASES = {
    # missing / unreadable input files
    "hkl_missing": (BASE + ["-hkl", "inputs/nothere.hkl"], "nothere.hkl"),
    "hkl_directory": (BASE + ["-hkl", "inputs/adir"], "adir"),
    "hkl_binary": (BASE + ["-hkl", "inputs/binary.hkl"], "binary.hkl"),
    "mat_missing": (BASE + ["-mat", "inputs/nothere.mat"], "nothere.mat"),
    "mat_directory": (BASE + ["-mat", "inputs/adir"], "adir"),
    "mat_short": (BASE + ["-mat", "inputs/short.mat"], "short.mat"),
    "sourcefile_missing": (BASE + ["-sourcefile", "inputs/nothere.txt"], "nothere.txt"),
    "sourcefile_directory": (BASE + ["-sourcefile", "inputs/adir"], "adir"),
    "img_missing": (BASE + ["-img", "inputs/nothere.img"], "nothere.img"),
    "img_not_smv": (BASE + ["-img", "inputs/notsmv.img"], "notsmv.img"),
    "img_truncated": (BASE + ["-img", "inputs/truncated.img"], "truncated.img"),
    "mask_missing": (BASE + ["-mask", "inputs/nothere.img"], "nothere.img"),
    "mask_directory": (BASE + ["-mask", "inputs/adir"], "adir"),
    # malformed lines
    "hkl_fractional_index": (BASE + ["-hkl", "inputs/frac.hkl"], "line 2"),
    "hkl_short_line": (BASE + ["-hkl", "inputs/short.hkl"], "line 2"),
    "hkl_empty": (BASE + ["-hkl", "inputs/empty.hkl"], "empty.hkl"),
    "source_comment_line": (BASE + ["-sourcefile", "inputs/comment.txt"], "line 1"),
    "source_word": (BASE + ["-sourcefile", "inputs/word.txt"], "line 2"),
    # bad numbers
    "N_abc": (BASE + ["-N", "abc"], "abc"),
    "distance_x": (BASE + ["-distance", "x"], "-distance"),
    "seed_fraction": (BASE + ["-seed", "1.5"], "-seed"),
    "lambda_inf": (BASE + ["-lambda", "inf"], "-lambda"),
    "lambda_zero": (BASE + ["-lambda", "0"], "wavelength"),
    "pixel_zero": (BASE + ["-pixel", "0"], "pixel"),
    "roi_words": (BASE + ["-roi", "0", "a", "0", "5"], "-roi"),
    "misset_two_angles": (BASE + ["-misset", "10", "20"], "-misset"),
    "cell_seven_values": (["-cell"] + ["50"] * 7 + ["-default_F", "1"] + REST, "-cell"),
    # unknown flags (matched exactly, never by prefix)
    "unknown_foo": (BASE + ["-foo"], "-foo"),
    "unknown_suggests": (BASE + ["-distanse", "100"], "did you mean -distance?"),
    "unknown_prefix": (BASE + ["-distanc", "100"], "-distanc"),
    "unknown_prefix_cel": (["-cel", "50", "-default_F", "1"] + REST, "-cel"),
    "unknown_glued_value": (BASE + ["-N5"], "-N5"),
    "unexpected_value": (BASE + ["100"], "100"),
    # a flag without its value
    "distance_last": (BASE + ["-distance"], "-distance"),
    "hkl_last": (BASE + ["-hkl"], "-hkl"),
    "detector_thick_last": (BASE + ["-detector_thick"], "-detector_thick"),
    "detector_abs_last": (BASE + ["-detector_abs"], "-detector_abs"),
    "thicksteps_last": (BASE + ["-thicksteps"], "-thicksteps"),
    "distance_then_flag": (BASE + ["-distance", "-N", "3"], "-distance"),
    "roi_three_values": (BASE + ["-roi", "1", "2", "3"], "-roi"),
    "cell_without_values": (["-cell", "-default_F", "1"] + REST, "-cell"),
    "cell_last": (["-default_F", "1"] + REST + ["-cell"], "-cell"),
    # nothing to simulate
    "no_cell": (["-default_F", "1"] + REST, "cell"),
    "no_structure_factors": (CELL + REST, "structure factors"),
    # an output that cannot be written
    "floatfile_bad_dir": (BASE + ["-floatfile", "nodir/x.bin"], "nodir"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_fails_cleanly(name, cli, tmp_path):
    args, fragment = CASES[name]
    _files(tmp_path)
    for fname, data in KNOWN.items():
        (tmp_path / fname).write_bytes(data)
    res = cli(args)
    assert res.code != 0, f"exit 0; stdout tail: {res.out[-300:]}"
    assert "Traceback" not in res.out + res.err
    lines = res.err.splitlines()
    assert len(lines) == 1, f"stderr: {res.err!r}"
    assert lines[0].startswith("nbnumba: error: "), lines[0]
    assert "internal error" not in lines[0]
    assert fragment in lines[0], lines[0]
    for fname, data in KNOWN.items():
        assert (tmp_path / fname).read_bytes() == data, f"{fname} was modified"
    for fname in NEW_OUTPUTS:
        assert not (tmp_path / fname).exists(), f"{fname} was written"
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".nbnumba-*"))


def test_exit_status_is_9(cli, tmp_path):
    assert cli(BASE + ["-foo"]).code == 9
    assert cli(BASE + ["-hkl", "nothere.hkl"]).code == 9


def test_good_run_after_bad_one_writes_outputs(cli, tmp_path):
    """Sanity check of the fixture: the same base arguments do render."""
    res = cli(BASE)
    assert res.code == 0, res.err
    for fname in ("floatimage.bin", "intimage.img", "image.pgm", "noiseimage.img"):
        assert (tmp_path / fname).exists()
    assert (tmp_path / "floatimage.bin").stat().st_size == 16 * 16 * 4
