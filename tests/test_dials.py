"""DIALS processes nbnumba's images and finds the truth that -expt states.

Needs DIALS: the environment variable DIALS_PY names the Python of a DIALS installation
(its directory holds the dials.* commands); without it every test here is skipped. A
30 x 1 degree sweep (2 phi steps per frame) goes through dials.find_spots, dials.index
and dials.refine, once with the midpoint sampling (-phi_midpoints: the files are exact)
and once with the C's sampling (the orientation is offset by -osc/(2 phisteps) about the
spindle, as docs/parity.md states). tests/dials_truth.py, run with DIALS' Python,
compares the results with the truth files.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli
from nbnumba_cli.series import main as series_main

DIALS_PY = os.environ.get("DIALS_PY")
pytestmark = pytest.mark.skipif(not DIALS_PY, reason="needs DIALS (set DIALS_PY)")

HERE = Path(__file__).resolve().parent
OSC, PHISTEPS, FRAMES = 1.0, 2, 30
#: the user guide's sweep: spots about 3.5 pixels wide (FWHM), -gauss_xtal because the
#: sinc side lobes of the default shape become spots of their own on noiseless frames
CRYSTAL = ("-cell 40 50 60 90 90 90 -misset 10 20 30 -default_F 100 -N 8 -gauss_xtal "
           "-lambda 2").split()
DETECTOR = "-distance 85 -detpixels 512 -pixel 0.1 -oversample 2".split()
SWEEP = CRYSTAL + DETECTOR + ["-phisteps", str(PHISTEPS), "-nonoise", "-nopgm",
                              "-noprogress", "--frames", str(FRAMES), "--frame-osc", str(OSC),
                              "--template", "sweep/sim_{:05d}", "--expt", "sweep.expt"]
REFINE = ["scan_varying=False"]
TIMEOUT = 900


def dials(command, *args, cwd):
    """Run a dials.* command in cwd; its output on failure."""
    program = str(Path(DIALS_PY).parent / command)
    run = subprocess.run([program, *args], cwd=cwd, capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert run.returncode == 0, (f"{command} {' '.join(args)}:\n{run.stdout[-3000:]}\n"
                                 f"{run.stderr[-3000:]}")
    return run.stdout


def truth_comparison(directory, found, truth="sweep.expt"):
    run = subprocess.run([DIALS_PY, str(HERE / "dials_truth.py"), truth, found],
                         cwd=directory, capture_output=True, text=True, timeout=TIMEOUT)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def process(directory, extra):
    """Render the sweep, process it with DIALS; the comparison of refined.expt."""
    directory.mkdir()
    run = run_cli(SWEEP + extra, directory, entry=series_main)
    assert run.code == 0, run.err
    dials("dials.find_spots", "sweep.expt", cwd=directory)
    dials("dials.index", "sweep.expt", "strong.refl", cwd=directory)
    dials("dials.refine", "indexed.expt", "indexed.refl", *REFINE, cwd=directory)
    result = {"indexed": truth_comparison(directory, "indexed.expt"),
              "refined": truth_comparison(directory, "refined.expt"), "stdout": run.out}
    print(f"\n{directory.name}: " + json.dumps({k: v for k, v in result.items() if k != "stdout"}))
    return result


@pytest.fixture(scope="module")
def midpoint_sweep(tmp_path_factory):
    return process(tmp_path_factory.mktemp("dials") / "midpoints", ["-phi_midpoints"])


@pytest.fixture(scope="module")
def c_sweep(tmp_path_factory):
    return process(tmp_path_factory.mktemp("dials") / "c_sampling", [])


def _axes(result):
    return [result["about_spindle_deg"], result["about_beam_deg"], result["about_third_deg"]]


@pytest.mark.parametrize("stage", ["indexed", "refined"])
def test_midpoint_sweep_orientation_and_cell(midpoint_sweep, stage):
    result = midpoint_sweep[stage]
    assert max(abs(x) for x in _axes(result)) <= 0.01, result
    for true, found in zip(result["true_cell"][:3], result["found_cell"][:3]):
        assert found == pytest.approx(true, abs=0.02), result
    for true, found in zip(result["true_cell"][3:], result["found_cell"][3:]):
        assert found == pytest.approx(true, abs=0.01), result


def test_midpoint_sweep_refined_beam_centre_and_distance(midpoint_sweep):
    result = midpoint_sweep["refined"]
    for true, found in zip(result["true_beam_centre_px"], result["found_beam_centre_px"]):
        assert found == pytest.approx(true, abs=0.01), result
    # the distance and the cell's scale are nearly interchangeable at these angles: the
    # distance is held to the cell's bound, 0.02 A in 60 A (0.028 mm in 85 mm)
    distance = result["true_distance_mm"]
    assert result["found_distance_mm"] == pytest.approx(distance, rel=0.02 / 60), result


def test_c_sampling_offset_is_the_documented_one(c_sweep):
    expected = -OSC / (2 * PHISTEPS)
    assert f"rotated {expected:g} deg about the spindle" in c_sweep["stdout"]
    for stage in ("indexed", "refined"):
        spindle, beam, third = _axes(c_sweep[stage])
        assert spindle == pytest.approx(expected, abs=0.01), c_sweep[stage]
        assert abs(beam) <= 0.01 and abs(third) <= 0.01, c_sweep[stage]


def test_scan_is_the_one_dxtbx_reads_from_the_images(midpoint_sweep):
    result = midpoint_sweep["refined"]
    assert result["batch_offsets"] == [-1, -1]     # frames numbered from 0
    assert result["scan_matches_images"]


def test_still_orientation(tmp_path):
    """One still at phi = 5 degrees, indexed with the known cell (geometry fixed): the
    crystal is the one the .expt states, as it sat in the beam. A still pins the rotation
    about the beam to the spot positions; the two other axes only to a fraction of the
    rocking width (about 1.3 degrees here), as the Ewald offset of a still is unknown."""
    run = run_cli(CRYSTAL + DETECTOR + ["-phi", "5", "-nonoise", "-nopgm", "-noprogress",
                                        "-intfile", "still_00001.img", "-expt", "still.expt"],
                  tmp_path)
    assert run.code == 0, run.err
    # d_max leaves out the spot nanoBragg draws at the beam centre for F(000)
    dials("dials.find_spots", "still.expt", "spotfinder.filter.d_max=40", cwd=tmp_path)
    dials("dials.index", "still.expt", "strong.refl", "unit_cell=40,50,60,90,90,90",
          "space_group=P1", "detector.fix=all", "beam.fix=all", "crystal.fix=cell",
          cwd=tmp_path)
    result = truth_comparison(tmp_path, "indexed.expt", truth="still.expt")
    print("\nstill: " + json.dumps(result))
    assert abs(result["about_beam_deg"]) <= 0.05, result
    assert result["angle_deg"] <= 1.0, result       # 5 degrees if the still were at phi 0
