"""The NXmx files pass the NeXus validator (``nxvalidate -a NXmx``): a still, the master
of a 10-frame series and a ``-nexus_float`` file.

``nxvalidate`` (the ``nxvalidate`` package, in the ``test`` extra) is run as a command;
without it the tests are skipped. It must report no error, and no warning but the one
the NXmx definition draws on every file with a detector group (its symbol ``i`` is both
the data's slowest pixel dimension and the length of ``detector_group/group_index``):
each recommended field is present.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("h5py")

from conftest import run_cli  # noqa: E402
from nbnumba_cli.series import main as series_main  # noqa: E402

NXVALIDATE = (shutil.which("nxvalidate", path=os.path.dirname(sys.executable))
              or shutil.which("nxvalidate"))
pytestmark = pytest.mark.skipif(NXVALIDATE is None, reason="needs nxvalidate "
                                "(pip install nxvalidate, or nbnumba's test extra)")

BASE = ("-cell 60 70 80 90 90 90 -misset 10 20 30 -default_F 300 -N 5 -lambda 1 "
        "-distance 100 -detpixels 48 -pixel 0.4 -oversample 1 -seed 3 -noprogress "
        "-nopgm").split()

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WARNING = "\x1b[38;2;255;165;0m"    # nxvalidate's colours: orange warnings, red errors
_ERROR = "\x1b[38;5;1m"
#: the warning lines of the definition's clash of "i" (a detector group of one detector)
_SYMBOL_CLASH = re.compile(r'Values for "i" are not unique|doc: Number of detector pixels '
                           r'in the slowest direction|(data|pixel_mask): 48|group_index: 1')


def validate(path):
    """(errors, warnings): the message lines nxvalidate -a NXmx prints as such, and
    checks its totals against them."""
    run = subprocess.run([NXVALIDATE, "-a", "NXmx", str(path)], capture_output=True,
                         text=True, timeout=300)
    text = run.stdout + run.stderr
    assert "Total number of errors" in text, text
    lines = text.splitlines()
    errors = [_ANSI.sub("", line).strip() for line in lines if _ERROR in line]
    warnings = [_ANSI.sub("", line).strip() for line in lines if _WARNING in line]
    plain = _ANSI.sub("", text)
    assert f"Total number of errors: {len(errors)}" in plain, plain
    assert f"Total number of warnings: {len(warnings)}" in plain, plain
    return errors, warnings


def _check(path):
    errors, warnings = validate(path)
    assert errors == []
    assert [w for w in warnings if not _SYMBOL_CLASH.fullmatch(w)] == []
    assert 'Values for "i" are not unique' in warnings   # the parser sees warnings


def test_still(tmp_path):
    run = run_cli(BASE + ["-nexus", "still.nxs"], tmp_path)
    assert run.code == 0, run.err
    _check(tmp_path / "still.nxs")


def test_series_master(tmp_path):
    run = run_cli(BASE + ["--frames", "10", "--frame-osc", "1", "--template", "s/sim_{:05d}",
                          "--nexus", "sweep.nxs"], tmp_path, entry=series_main)
    assert run.code == 0, run.err
    _check(tmp_path / "sweep.nxs")


def test_float_file_with_a_mask(tmp_path):
    run = run_cli(BASE + ["-osc", "1", "-roi", "2", "40", "0", "45", "-nexus", "f.nxs",
                          "-nexus_float"], tmp_path)
    assert run.code == 0, run.err
    _check(tmp_path / "f.nxs")


def test_a_missing_recommended_field_is_a_warning(tmp_path):
    """The check itself: a file without time_zone draws a warning of its own."""
    import h5py
    run = run_cli(BASE + ["-nexus", "still.nxs"], tmp_path)
    assert run.code == 0, run.err
    with h5py.File(tmp_path / "still.nxs", "a") as h5:
        del h5["/entry/instrument/time_zone"]
    errors, warnings = validate(tmp_path / "still.nxs")
    assert "This recommended field is not in the NeXus file" in warnings


def test_without_the_detector_group_the_definition_misses_it(tmp_path):
    """Why the symbol clash stays: the one alternative, a file without the recommended
    NXdetector_group, draws a warning of its own (and none of the clash)."""
    import h5py
    run = run_cli(BASE + ["-nexus", "still.nxs"], tmp_path)
    assert run.code == 0, run.err
    with h5py.File(tmp_path / "still.nxs", "a") as h5:
        del h5["/entry/instrument/detector_group"]
    errors, warnings = validate(tmp_path / "still.nxs")
    assert errors == []
    assert warnings == ["This recommended group is not in the NeXus file"]
