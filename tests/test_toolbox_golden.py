"""The golden sets of the C nonBragg and noisify (tests/data/toolbox/, made by
profiles/toolbox_golden.py) through nb-nonbragg and nb-noisify: every output file
byte-identical and every stdout line the same (except the program's banner).

noisify cases with a PSF run with ``-psf_method direct`` (the C's sum, bit-identical);
the automatic method, which may take the FFT path, is held to one count per pixel.
"""
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nbnumba_cli import noisify as noisify_cli
from nbnumba_cli import nonbragg as nonbragg_cli

DATA = Path(__file__).parent / "data" / "toolbox"
PROGRAMS = {"nonbragg": nonbragg_cli, "noisify": noisify_cli}


def _cases(program):
    return json.loads((DATA / program / "cases.json").read_text())


def _params():
    return [pytest.param(p, c, id=f"{p}-{c['id']}") for p in PROGRAMS for c in _cases(p)]


def _run(program, args, work):
    """Run a command in-process in ``work``; returns (status, stdout lines)."""
    for f in (DATA / "inputs").iterdir():
        shutil.copy(f, work)
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(work)
    try:
        rc = PROGRAMS[program].run(args, stdout=out)
    finally:
        os.chdir(cwd)
    return rc, out.getvalue().splitlines()


def _expected(program, case):
    d = DATA / program / case["id"]
    lines = (d / "stdout.txt").read_text().splitlines()
    files = {name: gzip.decompress((d / (name + ".gz")).read_bytes()) for name in case["files"]}
    return lines, files


def _direct(args):
    return args + ["-psf_method", "direct"] if "-psf" in args else args


@pytest.mark.parametrize("program,case", _params())
def test_golden_case(program, case, tmp_path):
    args = _direct(case["args"]) if program == "noisify" else case["args"]
    rc, lines = _run(program, args, tmp_path)
    expected_lines, files = _expected(program, case)
    assert rc == case["rc"] == 0
    # the C prints the address it read an -img file to: not reproduced
    expected_lines = [x for x in expected_lines if not x.startswith("mmap(")]
    if "-seed" not in args:  # the clock's seed
        lines, expected_lines = ([x for x in v if not x.startswith("  seed: ")]
                                 for v in (lines, expected_lines))
    banner = next(i for i, x in enumerate(expected_lines) if "simulator" in x or "noisify" in x)
    assert lines[:banner] + lines[banner + 1:] == \
        expected_lines[:banner] + expected_lines[banner + 1:]
    for name, data in files.items():
        got = (tmp_path / name).read_bytes()
        assert got == data, f"{name} differs from the C's"


def test_case_counts():
    assert len(_cases("nonbragg")) >= 15
    assert len(_cases("noisify")) >= 15


PSF_CASES = [c for c in _cases("noisify") if "-psf" in c["args"]]


@pytest.mark.parametrize("case", PSF_CASES, ids=[c["id"] for c in PSF_CASES])
def test_psf_automatic_method_within_a_count(case, tmp_path):
    """The automatic method (FFT above the switch radius) against the C's images."""
    rc, _ = _run("noisify", case["args"], tmp_path)
    assert rc == 0
    _, files = _expected("noisify", case)
    for name, data in files.items():
        if name.endswith(".img"):
            a = np.frombuffer(data[512:], "<u2").astype(int)
            b = np.frombuffer((tmp_path / name).read_bytes()[512:], "<u2").astype(int)
            assert np.abs(a - b).max() <= 1


@pytest.mark.parametrize("program", ["nonbragg", "noisify"])
def test_installed_command(program, tmp_path):
    """The console script runs a golden case end to end (exit status and files)."""
    case = _cases(program)[1]
    exe = Path(sys.executable).parent / f"nb-{program}"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", f"nbnumba_cli.{program}"]
    for f in (DATA / "inputs").iterdir():
        shutil.copy(f, tmp_path)
    proc = subprocess.run(command + case["args"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    _, files = _expected(program, case)
    for name, data in files.items():
        assert (tmp_path / name).read_bytes() == data
