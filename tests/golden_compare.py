"""Comparison of one nbnumba run with a golden case, mirroring shared/tools/golden_check.py.

Every function returns a list of failure descriptions (empty: the check passes), so that a
test can report all differences of a case at once.

Rules (spec README "parity", golden README "Deviations"):

* float.bin: per pixel ``|a-b| <= 1e-6 * max(|b|, 1e-6*max|b|)``, same size, all finite;
* int.img: header text identical and pixel data identical;
* noise.img: pixel data identical;
* any other file (image.pgm, Fdump.bin): bytes identical;
* stdout: the ``max_I`` / ``mean=`` lines identical text;
* exit status: zero exactly when the C's is zero; a failing run prints no traceback
  and writes no image;
* deviation cases compare with ``cases/<id>/corrected/`` where a corrected file exists;
  for ``phi0-fresh-rotation`` only float.bin is compared (the derived images follow it);
* ``missing-input-file-is-an-error``: non-zero exit, no traceback, no float.bin.
"""
import gzip
import re
from pathlib import Path

import numpy as np

IMAGE_NAMES = ("float.bin", "int.img", "image.pgm", "noise.img")
FLOAT_RTOL = 1e-6


def gunzip(path):
    """The decompressed bytes of a ``.gz`` reference file."""
    with gzip.open(path, "rb") as handle:
        return handle.read()


def smv_split(raw):
    """(header bytes up to and including '}', pixel data bytes) of an SMV file.

    The data start at HEADER_BYTES, or right after the header text when the C wrote a
    header longer than that (spec trap 16).
    """
    m = re.search(rb"HEADER_BYTES=\s*(\d+)", raw[:1024])
    header_bytes = int(m.group(1)) if m else 512
    end = raw.find(b"}")
    header = raw[:end + 1] if end >= 0 else raw[:header_bytes]
    start = end + 2 if end + 2 > header_bytes else header_bytes
    return header, raw[start:]


def stat_lines(text):
    """The statistics lines users rely on: ``max_I = ...`` and ``mean= ...``, stripped."""
    return [line.strip() for line in text.splitlines()
            if line.strip().startswith(("max_I", "mean="))]


def float_errors(got, ref):
    """The float.bin rule: relative error <= 1e-6 with an absolute floor of 1e-6*max|ref|."""
    if len(got) != len(ref):
        return [f"float.bin size {len(got)} != {len(ref)}"]
    r = np.frombuffer(ref, "<f4").astype(np.float64)
    g = np.frombuffer(got, "<f4").astype(np.float64)
    if not np.all(np.isfinite(g)):
        return ["float.bin has NaN/Inf"]
    if r.size == 0:
        return []
    scale = max(float(np.abs(r).max()), 1e-300)
    err = np.abs(g - r) / np.maximum(np.abs(r), 1e-6 * scale)
    worst = float(err.max())
    if worst > FLOAT_RTOL:
        n = int((err > FLOAT_RTOL).sum())
        return [f"float.bin rel err {worst:.2e} in {n} pixels "
                f"(first at index {int(np.argmax(err > FLOAT_RTOL))})"]
    return []


def float_bit_identical(got, ref):
    """True when the two raw float images have identical bytes."""
    return got == ref


def smv_errors(name, got, ref, compare_header):
    """SMV rule: (optionally) identical header text, identical uint16 pixel data."""
    fails = []
    ref_header, ref_data = smv_split(ref)
    got_header, got_data = smv_split(got)
    if compare_header and ref_header != got_header:
        fails.append(f"{name} header differs")
    if len(ref_data) != len(got_data):
        fails.append(f"{name} data size {len(got_data)} != {len(ref_data)}")
        return fails
    a = np.frombuffer(ref_data[:len(ref_data) // 2 * 2], "<u2")
    b = np.frombuffer(got_data[:len(got_data) // 2 * 2], "<u2")
    n = int((a != b).sum())
    if n:
        fails.append(f"{name} {n} pixels differ")
    return fails


def bytes_errors(name, got, ref):
    return [] if got == ref else [f"{name} bytes differ"]


def file_errors(name, got, ref):
    """Dispatch one output file to its comparison rule."""
    if name == "float.bin":
        return float_errors(got, ref)
    if name == "int.img":
        return smv_errors(name, got, ref, compare_header=True)
    if name == "noise.img":
        return smv_errors(name, got, ref, compare_header=False)
    return bytes_errors(name, got, ref)


def missing_input_errors(code, text, workdir):
    """The missing-input deviation rule: non-zero exit, no traceback, no float.bin."""
    fails = []
    if code == 0:
        fails.append("exit 0 on missing input (expected non-zero)")
    if "Traceback" in text:
        fails.append("traceback printed")
    if (Path(workdir) / "float.bin").exists():
        fails.append("float.bin written despite error")
    return fails


def error_run_errors(code, text, workdir):
    """A case where the C fails: no traceback and no image written."""
    fails = []
    if "Traceback" in text:
        fails.append("traceback printed")
    written = [n for n in IMAGE_NAMES if (Path(workdir) / n).exists()]
    if written:
        fails.append("output written despite error: " + " ".join(written))
    return fails


def reference_path(golden_dir, case, name):
    """The reference file for output ``name`` of ``case``, or None when it is not compared."""
    refdir = Path(golden_dir) / "cases" / case["id"]
    corrected = refdir / "corrected" / (name + ".gz")
    dev = case.get("deviation")
    if dev and corrected.exists():
        return corrected
    if dev and dev["rule"] == "phi0-fresh-rotation" and name != "float.bin":
        return None  # derived images: float.bin decides
    return refdir / (name + ".gz")


def reference_stdout(golden_dir, case):
    """The C console text the statistics lines are compared with (corrected if any)."""
    refdir = Path(golden_dir) / "cases" / case["id"]
    corrected = refdir / "corrected" / "stdout.txt"
    if case.get("deviation") and corrected.exists():
        return corrected
    return refdir / case.get("stdout", "stdout.txt")


def case_errors(golden_dir, case, code, text, workdir):
    """Everything golden_check.py checks for one case run in ``workdir``.

    code: exit status; text: stdout and stderr together.
    """
    dev = case.get("deviation")
    if dev and dev["rule"] == "missing-input-file-is-an-error":
        return missing_input_errors(code, text, workdir)
    want = case["exit_code"]
    if (want == 0) != (code == 0):
        last = text.strip().splitlines()[-1:] or [""]
        return [f"exit {code} (C: {want}); says: {last[0][:160]}"]
    if want != 0:
        return error_run_errors(code, text, workdir)
    fails = []
    for name in case["outputs"]:
        ref_path = reference_path(golden_dir, case, name)
        if ref_path is None:
            continue
        mine = Path(workdir) / name
        if not mine.exists():
            fails.append(f"{name} missing")
            continue
        fails += file_errors(name, mine.read_bytes(), gunzip(ref_path))
    stdout_path = reference_stdout(golden_dir, case)
    if stdout_path.exists():
        want_lines = stat_lines(stdout_path.read_text(errors="replace"))
        got_lines = stat_lines(text)
        if want_lines and want_lines != got_lines:
            fails.append(f"stats lines differ: {got_lines[:2]} vs {want_lines[:2]}")
    return fails
