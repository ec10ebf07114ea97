"""``nb-compare``: exit codes with fake runners, argument staging, metrics, PNG output,
and (when a C binary is available) a real comparison against the C program."""
import json
import os
import struct
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, stage_case
from nbnumba_cli import compare, preview

C_BIN = os.environ.get("NB_C_BIN") or "/opt/cref/nanoBragg"
HAVE_C = os.path.isfile(C_BIN) and os.access(C_BIN, os.X_OK)
needs_c = pytest.mark.skipif(not HAVE_C, reason="no C nanoBragg binary (set NB_C_BIN)")

# A fake simulator: understands -detpixels[_f|_s], -floatfile, -intfile; MODE selects
# what it does. The image is a smooth blob so that correlations are meaningful.
_FAKE = """\
#!{python}
import os, sys, time
import numpy as np
MODE = {mode!r}
args = sys.argv[1:]
def value(names, default):
    v = default
    for i, t in enumerate(args[:-1]):
        if t in names:
            v = args[i + 1]
    return v
n = int(value(["-detpixels"], 8))
fast, slow = int(value(["-detpixels_f"], n)), int(value(["-detpixels_s"], n))
floatfile = value(["-floatfile"], "floatimage.bin")
intfile = value(["-intfile"], "intimage.img")
y, x = np.mgrid[:slow, :fast]
img = (100 * np.exp(-((x - fast / 3) ** 2 + (y - slow / 2) ** 2) / 6.0)).astype("<f4")
size1, size2 = fast, slow
if MODE == "fail":
    print("fake: failing on purpose")
    sys.exit(1)
if MODE == "silent":
    sys.exit(0)
if MODE == "sleep":
    time.sleep(30)
if MODE == "double":
    img = img * 2
if MODE == "tenfold":
    img = img * 10
if MODE == "spawn":
    import subprocess
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    with open(os.environ["FAKE_PIDFILE"], "w") as f:
        f.write("%d\\n" % child.pid)
    time.sleep(300)
if MODE == "noise":
    img = np.random.default_rng(5).random(img.shape).astype("<f4")
if MODE == "wrongsize":
    img = np.zeros(fast * slow + 1, "<f4")
if MODE == "swapped":
    size1, size2 = slow, fast
if MODE == "needs-input":
    hkl = value(["-hkl"], None)
    if hkl is None or not os.path.isfile(hkl) or os.path.isfile("Fdump.bin") != {fdump}:
        sys.exit(5)
img.tofile(floatfile)
header = "{{\\nHEADER_BYTES=512;\\nDIM=2;\\nSIZE1=%d;\\nSIZE2=%d;\\n}}\\f" % (size1, size2)
with open(intfile, "wb") as f:
    f.write(header.encode().ljust(512))
    f.write(np.zeros(fast * slow, "<u2").tobytes())
"""


def make_fake(directory, mode, fdump=False):
    path = Path(directory) / f"fake_{mode}.py"
    path.write_text(_FAKE.format(python=sys.executable, mode=mode, fdump=fdump))
    path.chmod(0o755)
    return str(path)


def nb_compare(args, cwd):
    run = run_cli(args, cwd, entry=compare.main)
    summary = None
    out = Path(cwd) / "out" / "summary.json"
    if out.exists():
        summary = json.loads(out.read_text())
    return run, summary


def png_text(data):
    """{keyword: text} of the tEXt chunks of a PNG."""
    pos, text = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        if data[pos + 4:pos + 8] == b"tEXt":
            key, _, value = data[pos + 8:pos + 8 + length].partition(b"\0")
            text[key.decode("latin-1")] = value.decode("latin-1")
        pos += 12 + length
    return text


def image_part(data, width, height):
    """The image pixels of a labelled preview: (height, width[, 3]) under the label."""
    w, h, ch, px = decode_png(data)
    top = preview.label_height(width)
    assert h == top + height and w >= width
    px = px.reshape(h, w, ch)[top:, :width]
    return px[..., 0] if ch == 1 else px


def decode_png(data):
    """(width, height, channels, pixels) of an 8-bit, filter-0 PNG; checks every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, depth, colour = ihdr[:4]
    assert depth == 8 and colour in (0, 2)
    ch = 1 if colour == 0 else 3
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    assert not raw[:, 0].any()
    return w, h, ch, raw[:, 1:]


@pytest.fixture
def fakes(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return lambda mode, **kw: make_fake(bin_dir, mode, **kw)


BASE = ["--out", "out", "--"]
SIM = ["-detpixels_f", "12", "-detpixels_s", "8", "-floatfile", "f.bin", "-intfile", "i.img"]


# ------------------------------------------------------------------------ exit codes


def test_agreeing_runners_exit_0_and_write_everything(tmp_path, fakes):
    run, s = nb_compare(["--c-bin", fakes("good"), "--nb-cmd", fakes("good")] + BASE + SIM,
                        tmp_path)
    assert run.code == 0, run.out + run.err
    assert s["status"] == "ok" and s["exit_code"] == 0
    assert s["identical"] is True and s["correlation"] == 1.0
    assert s["rmse"] == 0.0 and s["max_abs_diff"] == 0.0 and s["sum_ratio"] == 1.0
    assert s["shape"]["used"] == [8, 12]
    assert s["c"]["exit_code"] == 0 and s["nbnumba"]["exit_code"] == 0
    assert s["c"]["seconds"] > 0 and s["nbnumba"]["seconds"] > 0
    out = tmp_path / "out"
    for name in ("c_float.bin", "nb_float.bin", "c.png", "nb.png", "diff.png",
                 "c_stdout.txt", "nb_stdout.txt"):
        assert (out / name).is_file(), name
    c = np.fromfile(out / "c_float.bin", "<f4")
    assert c.size == 96 and np.array_equal(c, np.fromfile(out / "nb_float.bin", "<f4"))
    assert image_part((out / "c.png").read_bytes(), 12, 8).max() == 255
    assert decode_png((out / "c.png").read_bytes())[2] == 1            # greyscale
    rgb = image_part((out / "diff.png").read_bytes(), 12, 8)
    assert rgb.shape == (8, 12, 3) and (rgb == 255).all()  # no difference: all white
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "i.img").exists()
    assert "ok: correlation 1" in run.out


def test_scaled_image_correlates_but_fails_sum_and_difference(tmp_path, fakes):
    run, s = nb_compare(["--c-bin", fakes("good"), "--nb-cmd", fakes("double")] + BASE + SIM,
                        tmp_path)
    assert run.code == 3
    assert s["identical"] is False and s["status"] == "differ"
    assert s["correlation"] == pytest.approx(1.0)
    assert s["sum_ratio"] == pytest.approx(2.0)
    assert s["failed_checks"] == ["sum_ratio", "max_abs_diff"]
    assert s["max_abs_diff"] == pytest.approx(s["max_c"])
    assert s["max_nbnumba"] == pytest.approx(2 * s["max_c"])
    rgb = image_part((tmp_path / "out" / "diff.png").read_bytes(), 12, 8)
    assert (rgb[..., 0] == 255).all()  # nbnumba higher: red or white only
    # wide enough tolerances accept it
    run, s = nb_compare(["--c-bin", fakes("good"), "--nb-cmd", fakes("double"),
                         "--sum-tolerance", "1.5", "--diff-tolerance", "1.5"] + BASE + SIM,
                        tmp_path)
    assert run.code == 0 and s["status"] == "ok" and s["failed_checks"] == []


def test_ten_times_too_bright_is_not_ok(tmp_path, fakes):
    run, s = nb_compare(["--c-bin", fakes("tenfold"), "--nb-cmd", fakes("good")] + BASE + SIM,
                        tmp_path)
    assert run.code == 3
    assert "ok:" not in run.out
    verdict = run.out.strip().splitlines()[-1]
    assert verdict.startswith("nb-compare: differ: sum ratio 0.1 outside 1 +- 0.001; "
                              "max |diff| ")
    assert "correlation" not in verdict                # the correlation is fine
    assert s["failed_checks"] == ["sum_ratio", "max_abs_diff"]
    assert "note" not in s                             # no phi sweep in the command


def test_phi_zero_sweep_is_named_when_images_differ(tmp_path, fakes):
    args = ["--c-bin", fakes("good"), "--nb-cmd", fakes("double")] + BASE + SIM
    run, s = nb_compare(args + ["-osc", "0.2", "-phisteps", "2"], tmp_path)
    assert run.code == 3
    assert "documented phi = 0 difference" in run.out and "-phi 1e-30" in run.out
    assert s["note"] == compare.PHI_ZERO_NOTE
    run, s = nb_compare(args + ["-osc", "0.2", "-phisteps", "2", "-phi", "1"], tmp_path)
    assert run.code == 3 and "note" not in s and "phi = 0" not in run.out


def test_phi_zero_sweep_rule():
    assert compare.phi_zero_sweep(["-osc", "0.2"])              # the C's rule: 2 steps
    assert compare.phi_zero_sweep(["-osc", "1", "-phisteps", "3", "-phi", "0"])
    assert not compare.phi_zero_sweep(["-osc", "1", "-phisteps", "3", "-phi", "1e-30"])
    assert not compare.phi_zero_sweep(["-osc", "1", "-phisteps", "1"])
    assert not compare.phi_zero_sweep(["-N", "5"])
    assert not compare.phi_zero_sweep(["-no-such-flag"])


def test_previews_are_labelled(tmp_path, fakes):
    run, s = nb_compare(["--c-bin", fakes("good"), "--nb-cmd", fakes("double")] + BASE + SIM,
                        tmp_path)
    out = tmp_path / "out"
    lo, hi = s["preview_range"]
    titles = {name: png_text((out / name).read_bytes()) for name in ("c.png", "nb.png",
                                                                     "diff.png")}
    assert titles["c.png"]["Title"] == "C: black %.6g, white %.6g" % (lo, hi)
    assert titles["nb.png"]["Title"] == "nbnumba: black %.6g, white %.6g" % (lo, hi)
    assert titles["diff.png"]["Title"].startswith("nbnumba - C: red +, blue -, full at ")
    assert "percentiles of the C image" in titles["nb.png"]["Description"]
    # the label is drawn: white text on the black strip above the image
    _, h, _, px = decode_png((out / "c.png").read_bytes())
    strip = px[:preview.label_height(12)]
    assert strip.max() == 255 and (strip == 0).any()


def test_label_text_is_drawn_in_the_font():
    mask = preview.text_mask("I1", 1)
    assert mask.shape == (11, 4 + 12)
    assert mask[2:9, 2:7].tolist() == preview._glyph("I").tolist()
    assert preview.text_mask("a").tolist() == preview.text_mask("A").tolist()
    assert preview.labelled(np.zeros((3, 2000), np.uint8), "x").shape == (3 + 4 * 11, 2000)


@pytest.mark.parametrize("side", ["c", "nbnumba"])
def test_failing_runner_exits_2(tmp_path, fakes, side):
    c, nb = (fakes("fail"), fakes("good")) if side == "c" else (fakes("good"), fakes("fail"))
    run, s = nb_compare(["--c-bin", c, "--nb-cmd", nb] + BASE + SIM, tmp_path)
    assert run.code == 2
    assert s["status"] == "runner-failed" and s["exit_code"] == 2
    assert s[side]["exit_code"] == 1
    log = "c_stdout.txt" if side == "c" else "nb_stdout.txt"
    assert "failing on purpose" in (tmp_path / "out" / log).read_text()


def test_runner_without_float_image_exits_2(tmp_path, fakes):
    run, s = nb_compare(["--c-bin", fakes("silent"), "--nb-cmd", fakes("good")] + BASE + SIM,
                        tmp_path)
    assert run.code == 2
    assert "no float image f.bin" in s["c"]["error"]


def test_missing_c_program_exits_2(tmp_path, fakes):
    run, s = nb_compare(["--c-bin", str(tmp_path / "no-such-program"), "--nb-cmd",
                         fakes("good")] + BASE + SIM, tmp_path)
    assert run.code == 2
    assert "could not start" in s["c"]["error"]


def test_timeout_exits_2(tmp_path, fakes):
    run, s = nb_compare(["--c-bin", fakes("sleep"), "--nb-cmd", fakes("good"),
                         "--timeout", "1"] + BASE + SIM, tmp_path)
    assert run.code == 2
    assert "longer than 1 s" in s["c"]["error"]


def test_low_correlation_exits_3(tmp_path, fakes):
    args = ["--c-bin", fakes("good"), "--nb-cmd", fakes("noise")] + BASE + SIM
    run, s = nb_compare(args, tmp_path)
    assert run.code == 3
    assert s["status"] == "differ" and s["correlation"] < 0.999
    assert s["failed_checks"][0] == "correlation"
    run, s = nb_compare(["--threshold", "-1", "--sum-tolerance", "1e9", "--diff-tolerance",
                         "1e9"] + args, tmp_path)
    assert run.code == 0


def test_wrong_size_exits_4(tmp_path, fakes):
    run, s = nb_compare(["--c-bin", fakes("good"), "--nb-cmd", fakes("wrongsize")] + BASE
                        + SIM, tmp_path)
    assert run.code == 4
    assert s["status"] == "size-mismatch"
    assert s["float_bytes"] == {"c": 384, "nbnumba": 388}


def test_same_pixel_count_other_shape_exits_4(tmp_path, fakes):
    run, s = nb_compare(["--c-bin", fakes("swapped"), "--nb-cmd", fakes("good")] + BASE
                        + SIM, tmp_path)
    assert run.code == 4
    assert s["shape"] == {"c": [12, 8], "nbnumba": [8, 12]}


def test_c_program_from_environment(tmp_path, fakes, monkeypatch):
    monkeypatch.setenv("NB_C_BIN", fakes("good"))
    run, s = nb_compare(["--nb-cmd", fakes("good")] + BASE + SIM, tmp_path)
    assert run.code == 0
    assert s["c"]["command"][0].endswith("fake_good.py")


def test_unclosed_quote_in_nb_cmd_is_one_line(tmp_path, fakes):
    run, _ = nb_compare(["--c-bin", fakes("good"), "--nb-cmd", "python3 'abc"] + BASE + SIM,
                        tmp_path)
    assert run.code == 1
    assert run.err.count("\n") == 1 and "no closing quotation" in run.err, run.err


def test_usage_errors_exit_1(tmp_path, fakes, monkeypatch):
    monkeypatch.delenv("NB_C_BIN", raising=False)
    run, _ = nb_compare(BASE + SIM, tmp_path)
    assert run.code == 1 and "NB_C_BIN" in run.err
    run, _ = nb_compare(["--c-bin", fakes("good"), "--out", "out"], tmp_path)
    assert run.code == 1 and "no simulator arguments" in run.err
    run, _ = nb_compare(["--bogus", "1"] + SIM, tmp_path)
    assert run.code == 1
    (tmp_path / "afile").write_text("")
    run, _ = nb_compare(["--c-bin", fakes("good"), "--out", "afile/sub", "--"] + SIM, tmp_path)
    assert run.code == 1 and "output directory" in run.err
    assert run_cli(["--help"], tmp_path, entry=compare.main).code == 0


# ------------------------------------------------------------------------- staging


def test_split_argv():
    p = compare.build_parser()
    assert compare.split_argv(p, ["--out", "x", "-N", "5"]) == (["--out", "x"], ["-N", "5"])
    assert compare.split_argv(p, ["--out=x", "--keep", "-N", "5"]) == (["--out=x", "--keep"],
                                                                       ["-N", "5"])
    assert compare.split_argv(p, ["--keep", "--", "--odd"]) == (["--keep"], ["--odd"])


def test_file_flags_come_from_the_flag_table():
    assert {"-hkl", "-hklfile", "-mat", "-matrix", "-sourcefile", "-img", "-mask", "-stol",
            "-4stol", "-Q"} <= compare.INPUT_FLAGS
    assert compare.OUTPUT_FLAGS["-floatimage"] == "float"
    assert compare.OUTPUT_FLAGS["-noisefile"] == "noise"
    assert "-stolout" not in compare.INPUT_FLAGS | set(compare.OUTPUT_FLAGS)


def test_stage_arguments(tmp_path):
    cwd = tmp_path / "work"
    (cwd / "inputs").mkdir(parents=True)
    (cwd / "inputs" / "a.hkl").write_text("1 2 3 4\n")
    (tmp_path / "up.mat").write_text("1 0 0 0 1 0 0 0 1\n")
    (cwd / "Fdump.bin").write_bytes(b"x")
    runs = [tmp_path / "r1", tmp_path / "r2"]
    for r in runs:
        r.mkdir()
    args = ["-hkl", "inputs/a.hkl", "-mat", "../up.mat", "-floatfile", "/elsewhere/f.bin",
            "-noiseimage", "sub/n.img", "-N", "5"]
    new, names = compare.stage_arguments(args, cwd, runs)
    assert new[:3] == ["-hkl", "inputs/a.hkl", "-mat"]
    assert new[3] == str((tmp_path / "up.mat").resolve())
    assert new[4:] == ["-floatfile", "f.bin", "-noiseimage", "n.img", "-N", "5"]
    assert names["float"] == "f.bin" and names["noise"] == "n.img"
    assert names["int"] == "intimage.img"
    for r in runs:
        assert (r / "inputs" / "a.hkl").is_symlink()
        assert (r / "inputs" / "a.hkl").read_text() == "1 2 3 4\n"
        assert not (r / "Fdump.bin").exists()  # -hkl given: the programs write their own
    _, _ = compare.stage_arguments(["-N", "5"], cwd, runs)
    assert all((r / "Fdump.bin").is_symlink() for r in runs)  # no -hkl: Fdump.bin is read


def test_input_files_reach_both_runners(tmp_path, fakes):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.hkl").write_text("0 0 1 10\n")
    (tmp_path / "Fdump.bin").write_bytes(b"not used: -hkl is given")
    fake = fakes("needs-input", fdump=False)
    run, s = nb_compare(["--c-bin", fake, "--nb-cmd", fake] + BASE + SIM
                        + ["-hkl", "in/x.hkl"], tmp_path)
    assert run.code == 0, (s or {}).get("message")


# ------------------------------------------------------------------------- metrics


def test_compare_images_metrics():
    c = np.array([[0, 1], [2, 3]], np.float32)
    m = compare.compare_images(c, c + 1)
    assert m["correlation"] == pytest.approx(1.0)
    assert m["rmse"] == 1.0 and m["max_abs_diff"] == 1.0
    assert m["sum_c"] == 6.0 and m["sum_nbnumba"] == 10.0
    assert m["sum_ratio"] == pytest.approx(10 / 6)
    m = compare.compare_images(c, c[::-1].copy())
    assert m["correlation"] == pytest.approx(-0.6)
    assert m["max_abs_diff_at"] == 0
    z = np.zeros((2, 2), np.float32)
    assert compare.compare_images(z, z)["correlation"] == 1.0
    assert compare.compare_images(z, c)["correlation"] is None  # undefined: fails
    assert compare.compare_images(z, c)["sum_ratio"] is None
    n = c.copy()
    n[0, 0] = np.nan
    m = compare.compare_images(c, n)
    assert m["nonfinite_nbnumba"] == 1 and m["nonfinite_positions_differ"]
    assert m["correlation"] is None
    m = compare.compare_images(n, n)
    assert m["identical"] and m["correlation"] == 1.0 and m["sum_c"] == 6.0


def test_png_writer_round_trip():
    grey = np.arange(6 * 5, dtype=np.uint8).reshape(5, 6)
    w, h, ch, px = decode_png(compare.png_bytes(grey))
    assert (w, h, ch) == (6, 5, 1) and np.array_equal(px, grey)
    rgb = np.random.default_rng(1).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    w, h, ch, px = decode_png(compare.png_bytes(rgb))
    assert (w, h, ch) == (4, 3, 3) and np.array_equal(px.reshape(3, 4, 3), rgb)


def test_previews():
    img = np.linspace(0, 1, 1000, dtype=np.float32).reshape(20, 50)
    lo, hi = compare.percentile_range(img)
    g = compare.grey_preview(img, lo, hi)
    assert g[0, 0] == 0 and g[-1, -1] == 255
    flat = np.ones((2, 2), np.float32)
    assert compare.grey_preview(flat, *compare.percentile_range(flat)).shape == (2, 2)
    d = compare.diff_preview(np.zeros((1, 3), np.float32), np.array([[-1, 0, np.nan]],
                                                                    np.float32))
    assert d[0, 0].tolist() == [0, 0, 255] and d[0, 1].tolist() == [255, 255, 255]
    assert d[0, 2].tolist() == [0, 0, 0]


# ------------------------------------------------------------------ real nbnumba / C


def test_real_nbnumba_against_itself(tmp_path):
    """The whole pipeline with the real nbnumba on both sides (no C binary needed)."""
    fake_c = tmp_path / "nbnumba_as_c.py"
    fake_c.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import os, sys
        os.execv(sys.executable, [sys.executable, "-m", "nbnumba_cli.main"] + sys.argv[1:])
        """))
    fake_c.chmod(0o755)
    args = ["--c-bin", str(fake_c), "--out", "out", "--", "-cell", "50", "50", "50", "90",
            "90", "90", "-default_F", "100", "-N", "3", "-detpixels", "16", "-seed", "3",
            "-noisefile", "n.img", "-nopgm"]
    run, s = nb_compare(args, tmp_path)
    assert run.code == 0, run.out
    assert s["identical"] and s["files_identical"] == {"int": True, "noise": True}


@needs_c
@pytest.mark.parametrize("case_id", ["mosflm_basic", "fdump_read"])
def test_against_c_binary(tmp_path, golden_cases, case_id):
    """The C program and nbnumba agree bit for bit on golden cases (inputs staged in the
    current directory: a relative -hkl file, or ./Fdump.bin)."""
    case = next(c for c in golden_cases if c["id"] == case_id)
    stage_case(case, tmp_path)
    run, s = nb_compare(["--c-bin", C_BIN, "--out", "out", "--"] + case["args"], tmp_path)
    assert run.code == 0, run.out + run.err
    assert s["identical"] and s["correlation"] == 1.0
    assert all(s["files_identical"].values()), s["files_identical"]
    expected = {"int", "pgm"} | ({"noise"} if "noise.img" in case["outputs"] else set())
    assert set(s["files_identical"]) == expected
    assert not (tmp_path / "float.bin").exists()  # nothing written to the current directory
    assert (tmp_path / "Fdump.bin").exists() == (case_id == "fdump_read")


# ------------------------------------------------------------ issue 14 and 10 details


def test_outputs_of_different_kinds_stay_apart(tmp_path, fakes):
    sim = ["-detpixels_f", "12", "-detpixels_s", "8", "-floatfile", "a/img.bin",
           "-intfile", "b/img.bin"]
    run, s = nb_compare(["--c-bin", fakes("good"), "--nb-cmd", fakes("good")] + BASE + sim,
                        tmp_path)
    assert run.code == 0, run.out
    assert s["run_args"][-4:] == ["-floatfile", "img.bin", "-intfile", "int-img.bin"]
    assert (tmp_path / "out" / "c_float.bin").stat().st_size == 4 * 96   # the float image
    assert s["files_identical"] == {"int": True}


def test_separate_output_names(tmp_path):
    runs = [tmp_path / "r"]
    runs[0].mkdir()
    (tmp_path / "img.bin").write_text("")
    _, names = compare.stage_arguments(["-intfile", "x/floatimage.bin"], tmp_path, runs)
    assert names["int"] == "int-floatimage.bin" and names["float"] == "floatimage.bin"
    args, names = compare.stage_arguments(["-hkl", "img.bin", "-floatfile", "o/img.bin",
                                           "-floatimage", "p/img.bin"], tmp_path, runs)
    assert args == ["-hkl", "img.bin", "-floatfile", "float-img.bin", "-floatimage",
                    "float-img.bin"]
    assert len(set(names.values())) == 4


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_timeout_kills_the_whole_process_group(tmp_path, fakes, monkeypatch):
    pidfile = tmp_path / "grandchild.pid"
    monkeypatch.setenv("FAKE_PIDFILE", str(pidfile))
    run, s = nb_compare(["--c-bin", fakes("spawn"), "--nb-cmd", fakes("good"),
                         "--timeout", "3"] + BASE + SIM, tmp_path)
    assert run.code == 2 and "longer than 3 s" in s["c"]["error"]
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)


@pytest.mark.parametrize("args", [["-h"], ["--help"], ["-N", "5", "-h"],
                                  ["--out", "o", "--help", "-N", "5"]])
def test_help_is_nb_compares_own(tmp_path, args, monkeypatch):
    monkeypatch.setenv("NB_C_BIN", str(tmp_path / "must-not-run"))
    run = run_cli(args, tmp_path, entry=compare.main)
    assert run.code == 0
    assert run.out.startswith("usage: nb-compare")
    assert "--sum-tolerance" in run.out and "--diff-tolerance" in run.out
    assert list(tmp_path.iterdir()) == []               # nothing ran


def test_version_is_nb_compares_own(tmp_path):
    from nbnumba import __version__
    run = run_cli(["--version"], tmp_path, entry=compare.main)
    assert run.code == 0 and run.out == f"nb-compare {__version__}\n"
    # after "--" the flags are the programs'
    assert compare.split_argv(compare.build_parser(), ["--keep", "--", "-h"]) == \
        (["--keep"], ["-h"])


def test_bad_tolerances_are_usage_errors(tmp_path, fakes):
    for option in ("--sum-tolerance", "--diff-tolerance"):
        run, _ = nb_compare(["--c-bin", fakes("good"), option, "-1"] + BASE + SIM, tmp_path)
        assert run.code == 1 and option in run.err
