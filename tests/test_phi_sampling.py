"""Where an image samples the spindle: the C's phi0 + k*step (the default) or the step
midpoints (-phi_midpoints), and the orientation offset the experiment files' note states.
"""
import json
import math

import numpy as np
import pytest

from conftest import run_cli
from nbnumba import config_from_args, prepare
from nbnumba.constants import RTD
from nbnumba.crystal import phi_angles
from nbnumba.experiment import orientation_offset
from nbnumba_cli.series import main as series_main

SMALL = ("-cell 50 50 50 90 90 90 -misset 10 20 30 -default_F 100 -N 2 -detpixels 16 "
         "-distance 40 -seed 1 -oversample 1 -noprogress -nopgm -nonoise").split()


def test_phi_angles_start_or_midpoints():
    assert list(phi_angles(1.0, 0.5, 3)) == [1.0, 1.5, 2.0]
    assert list(phi_angles(1.0, 0.5, 3, midpoints=True)) == [1.25, 1.75, 2.25]


def _float_image(tmp_path, name, args):
    directory = tmp_path / name
    directory.mkdir()
    run = run_cli(SMALL + args, directory)
    assert run.code == 0, run.err
    return np.fromfile(directory / "floatimage.bin", dtype=np.float32)


def test_one_midpoint_step_is_the_still_at_the_centre(tmp_path):
    mid = _float_image(tmp_path, "mid", ["-phi", "0", "-osc", "1", "-phisteps", "1",
                                         "-phi_midpoints"])
    centre = _float_image(tmp_path, "centre", ["-phi", "0.5", "-osc", "1", "-phisteps", "1"])
    start = _float_image(tmp_path, "start", ["-phi", "0", "-osc", "1", "-phisteps", "1"])
    assert mid.tobytes() == centre.tobytes()
    assert not np.array_equal(mid, start)


def test_midpoints_are_the_c_sampling_shifted_by_half_a_step(tmp_path):
    mid = _float_image(tmp_path, "mid", ["-phi", "3", "-osc", "1", "-phisteps", "2",
                                         "-phi_midpoints"])
    shifted = _float_image(tmp_path, "shifted", ["-phi", "3.25", "-osc", "1", "-phisteps",
                                                 "2"])
    c_sampling = _float_image(tmp_path, "c", ["-phi", "3", "-osc", "1", "-phisteps", "2"])
    # phi0 + (k + 1/2) step and (phi0 + step/2) + k step differ only in rounding
    np.testing.assert_allclose(mid, shifted, rtol=1e-6, atol=1e-6 * float(mid.max()))
    assert np.abs(mid - c_sampling).max() > 1e-3 * float(mid.max())


@pytest.mark.parametrize("args, offset_deg", [
    ("-osc 1 -phisteps 2", -0.25),
    ("-osc 1 -phisteps 10", -0.05),
    ("-osc 0.5", -0.125),                      # the C's default: 2 steps
    ("-osc 1 -phisteps 1", -0.5),
    ("-osc 1 -phisteps 2 -phi_midpoints", 0.0),
    ("-osc 1 -phisteps 7 -phi_midpoints", 0.0),
    ("-osc 1 -phistep 0.3", 0.3 * 1.5 - 0.5),  # 4 steps of 0.3 over 1 degree
    ("-phi 20", 0.0),                          # a still
])
def test_orientation_offset(tmp_path, args, offset_deg):
    cfg, _ = config_from_args(SMALL + args.split(), cwd=str(tmp_path))
    assert orientation_offset(prepare(cfg)) * RTD == pytest.approx(offset_deg, abs=1e-12)


def test_expt_note_states_the_offset_and_the_files_stay_the_same(tmp_path):
    args = ["-phi", "2", "-osc", "1", "-phisteps", "2", "-intfile", "sim_00001.img",
            "-expt", "sim.expt", "-xds_inp", "XDS.INP"]
    (tmp_path / "c").mkdir()
    (tmp_path / "mid").mkdir()
    c_run = run_cli(SMALL + args, tmp_path / "c")
    mid_run = run_cli(SMALL + args + ["-phi_midpoints"], tmp_path / "mid")
    assert c_run.code == 0 and mid_run.code == 0, c_run.err + mid_run.err
    notes = [line for line in c_run.out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "rotated -0.25 deg about the spindle" in notes[0]
    assert "-phi_midpoints" in notes[0]
    assert "note:" not in mid_run.out
    assert "2 phi steps from 2 to 3 degrees (at the midpoints of the steps)" in mid_run.out
    assert "2 phi steps from 2 to 3 degrees\n" in c_run.out
    assert (tmp_path / "c" / "XDS.INP").read_bytes() == (tmp_path / "mid" / "XDS.INP").read_bytes()
    expts = [json.loads((tmp_path / d / "sim.expt").read_text()) for d in ("c", "mid")]
    for expt in expts:   # the identifier is derived from the image's absolute path
        expt["experiment"][0].pop("identifier")
    assert expts[0] == expts[1]
    # no note without experiment files
    plain = run_cli(SMALL + args[:6], tmp_path / "c")
    assert plain.code == 0 and "note:" not in plain.out


def test_series_note_and_midpoint_frames(tmp_path):
    args = SMALL + ["-phi", "5", "-phisteps", "2", "--frames", "2", "--frame-osc", "1",
                    "--template", "sim_{:05d}", "--expt", "sweep.expt"]
    run = run_cli(args, tmp_path, entry=series_main)
    assert run.code == 0, run.err
    assert "rotated -0.25 deg about the spindle" in run.out
    (tmp_path / "mid").mkdir()
    run = run_cli(args + ["-phi_midpoints"], tmp_path / "mid", entry=series_main)
    assert run.code == 0, run.err
    assert "note:" not in run.out
    expt = json.loads((tmp_path / "mid" / "sweep.expt").read_text())
    assert expt["scan"][0]["properties"]["oscillation"] == [5.0, 6.0]
    # frame 1 of the midpoint series is the single image with the same flags
    (tmp_path / "one").mkdir()
    one = run_cli(SMALL + ["-phi", "6", "-osc", "1", "-phisteps", "2", "-phi_midpoints",
                           "-intfile", "one.img"], tmp_path / "one")
    assert one.code == 0, one.err
    assert (tmp_path / "one" / "one.img").read_bytes()[512:] == \
        (tmp_path / "mid" / "sim_00001.img").read_bytes()[512:]
    assert math.isfinite(float(np.fromfile(tmp_path / "mid" / "sim_00001.bin",
                                            dtype=np.float32).sum()))
