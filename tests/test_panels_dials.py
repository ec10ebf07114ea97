"""Detectors of several panels through DIALS: dxtbx reads nbnumba's NXmx modules where
the input put the panels, and DIALS indexes a sweep of a named detector.

Runs only with ``DIALS_PY`` (a Python with dxtbx, and DIALS' commands beside it);
skipped otherwise. The checks run in that Python as small scripts and print JSON.
"""
import json
import os
import subprocess
import textwrap

import numpy as np
import pytest

from conftest import run_cli
from panel_layouts import experiment_document, tilted_tiles

from nbnumba import config_from_args, engine
from nbnumba.experiment import lab_frame
from nbnumba_cli.series import main as series_main

DIALS_PY = os.environ.get("DIALS_PY")
pytestmark = pytest.mark.skipif(not DIALS_PY, reason="needs DIALS_PY (a Python with dxtbx)")

#: every pixel centre of every panel (mm, DIALS' frame) of an NXmx file read by dxtbx,
#: against the positions in a .npy file, panel by panel
POSITIONS = textwrap.dedent("""
    import json, sys
    import dxtbx.model  # before scipy
    import numpy as np
    from dxtbx.model.experiment_list import ExperimentListFactory
    experiment = ExperimentListFactory.from_filenames([sys.argv[1]])[0]
    expected = np.load(sys.argv[2])
    worst, sizes, data = 0.0, [], experiment.imageset.get_raw_data(0)
    for k, panel in enumerate(experiment.detector):
        fast, slow = panel.get_image_size()
        f, s = np.meshgrid(np.arange(fast) + 0.5, np.arange(slow) + 0.5)
        o, d1, d2 = (np.array(v) for v in (panel.get_origin(), panel.get_fast_axis(),
                                           panel.get_slow_axis()))
        px = panel.get_pixel_size()
        found = o + f[..., None] * px[0] * d1 + s[..., None] * px[1] * d2
        start = int(sum(a * b for a, b in sizes))
        want = expected[start:start + fast * slow].reshape(slow, fast, 3)
        worst = max(worst, float(np.max(np.abs(found - want))))
        sizes.append((fast, slow))
    print(json.dumps({"panels": len(experiment.detector), "worst_mm": worst,
                      "sizes": sizes, "data_shapes": [list(d.all()) for d in data],
                      "format": experiment.imageset.get_format_class().__name__}))
""")


def _dials(script, *args, cwd):
    run = subprocess.run([DIALS_PY, "-c", script, *map(str, args)], cwd=cwd,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _pixel_centres(setup):
    """Every pixel centre of every panel (mm, DIALS' frame), panel after panel, computed
    as nbnumba renders them (a named detector: from the whole grid's corner)."""
    rows = lab_frame(setup.geometry.beam, setup.geometry.frame.spindle, -1)
    out = []
    for p in setup.panels.panels:
        s, f = np.mgrid[0:p.spixels, 0:p.fpixels]
        r0, c0 = p.kernel_offset
        row, col = s + p.raster_origin[0] - r0, f + p.raster_origin[1] - c0
        own = (np.array(p.kernel_origin) + (col[..., None] + 0.5) * p.pixel_size
               * np.array(p.fast) + (row[..., None] + 0.5) * p.pixel_size * np.array(p.slow))
        out.append(own.reshape(-1, 3) @ np.array(rows).T * 1e3)
    return np.concatenate(out)


def test_pilatus6m_modules_in_the_nxmx_file_are_where_nbnumba_renders_them(tmp_path):
    flags = ("--detector pilatus6m -cell 60 70 80 90 90 90 -default_F 10 -N 2 -distance 180 "
             "-Xbeam 200 -Ybeam 215 -detector_rotz 0.7 -twotheta 4 -osc 0.2 -roi 0 9 0 9 "
             "-oversample 1 -noprogress -nopgm -seed 1 -nexus p.nxs").split()
    run = run_cli(flags, tmp_path)
    assert run.code == 0, run.err
    setup = engine.prepare(config_from_args(flags[:-2])[0])
    np.save(tmp_path / "expected.npy", _pixel_centres(setup))
    got = _dials(POSITIONS, "p.nxs", "expected.npy", cwd=tmp_path)
    assert got["format"] == "FormatNXmx" and got["panels"] == 60
    assert got["sizes"] == [[487, 195]] * 60 and got["data_shapes"] == [[195, 487]] * 60
    assert got["worst_mm"] < 1e-6


def test_tilted_tiles_in_the_nxmx_file_are_the_input_experiments(tmp_path):
    layout = tilted_tiles(n=9, fpixels=64, spixels=40, pixel=1e-4, distance=0.08)
    doc = experiment_document(layout, crystal=((50.0, 0, 0), (0, 60.0, 0), (0, 0, 70.0)),
                              scan=(1, 1, 0.0, 0.2))
    (tmp_path / "tiles.expt").write_text(json.dumps(doc))
    run = run_cli(["--experiment", "tiles.expt", "-default_F", "10", "-N", "2",
                   "-oversample", "1", "-noprogress", "-nopgm", "-seed", "1",
                   "-nexus", "tiles.nxs"], tmp_path)
    assert run.code == 0, run.err
    # the input: the experiment's panels as dxtbx reads them from the .expt
    expected = _dials(textwrap.dedent("""
        import json, sys
        import dxtbx.model
        import numpy as np
        from dxtbx.model.experiment_list import ExperimentListFactory
        detector = ExperimentListFactory.from_json_file(sys.argv[1],
                                                        check_format=False)[0].detector
        out = []
        for panel in detector:
            fast, slow = panel.get_image_size()
            f, s = np.meshgrid(np.arange(fast) + 0.5, np.arange(slow) + 0.5)
            o, d1, d2 = (np.array(v) for v in (panel.get_origin(), panel.get_fast_axis(),
                                               panel.get_slow_axis()))
            px = panel.get_pixel_size()
            out.append((o + f[..., None] * px[0] * d1 + s[..., None] * px[1] * d2)
                       .reshape(-1, 3))
        np.save("expected.npy", np.concatenate(out))
        print(json.dumps({"panels": len(detector)}))
    """), "tiles.expt", cwd=tmp_path)
    assert expected["panels"] == 9
    got = _dials(POSITIONS, "tiles.nxs", "expected.npy", cwd=tmp_path)
    assert got["panels"] == 9 and got["sizes"] == [[64, 40]] * 9
    assert got["worst_mm"] < 1e-6
    normals = [np.cross(p.fast, p.slow) for p in layout.panels]
    assert min(np.degrees(np.arccos(np.clip(abs(a @ b), 0, 1)))
               for i, a in enumerate(normals) for b in normals[i + 1:]) > 0.5


def test_dials_indexes_a_pilatus6m_sweep_at_the_true_orientation(tmp_path):
    bindir = os.path.dirname(DIALS_PY)
    if not os.path.exists(os.path.join(bindir, "dials.index")):
        pytest.skip("DIALS_PY has dxtbx but not the dials commands")
    # Gaussian spots: noiseless NXmx counts have no offset, and the default shape's side
    # lobes would be found as spots of their own (see the user guide)
    flags = ("--detector pilatus6m -cell 60 70 80 90 90 90 -misset 10 20 30 -default_F 100 "
             "-N 10 -gauss_xtal -lambda 1 -distance 200 -oversample 1 -phi 0 -osc 1 -phisteps 4 "
             "-phi_midpoints -seed 3 -noprogress -nopgm -nonoise --frames 10 "
             "--template frames/sim_{:05d} --expt sweep.expt --nexus sweep.nxs").split()
    run = run_cli(flags, tmp_path, entry=series_main)
    assert run.code == 0, run.err
    commands = [["dials.import", "sweep.nxs"], ["dials.find_spots", "imported.expt"],
                ["dials.index", "imported.expt", "strong.refl", "unit_cell=60,70,80,90,90,90",
                 "space_group=P1"]]
    for command in commands:
        done = subprocess.run([os.path.join(bindir, command[0])] + command[1:], cwd=tmp_path,
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    truth = subprocess.run([DIALS_PY, os.path.join(os.path.dirname(__file__), "dials_truth.py"),
                            "sweep.expt", "indexed.expt"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=600)
    assert truth.returncode == 0, truth.stderr[-2000:]
    found = json.loads(truth.stdout)
    assert found["angle_deg"] < 0.05, found
    assert found["found_cell"] == pytest.approx(found["true_cell"], rel=2e-3, abs=0.02)
    assert found["scan_matches_images"]
    doc = json.loads((tmp_path / "sweep.expt").read_text())
    assert len(doc["detector"][0]["panels"]) == 60
    assert doc["imageset"][0]["template"] == "sweep.nxs"


def test_dials_indexes_what_an_experiment_of_tilted_tiles_recorded(tmp_path):
    """The user guide's recipe: an experiment in (eight tilted tiles, a crystal, a scan of
    ten 1-degree images), images and truth out, DIALS' defaults indexing them."""
    bindir = os.path.dirname(DIALS_PY)
    if not os.path.exists(os.path.join(bindir, "dials.index")):
        pytest.skip("DIALS_PY has dxtbx but not the dials commands")
    expt = os.path.join(os.path.dirname(__file__), "..", "examples", "eight_tiles.expt")
    flags = ["--experiment", expt, "-default_F", "100", "-N", "8", "-gauss_xtal",
             "-oversample", "2", "-phisteps", "4", "-phi_midpoints", "-nonoise", "-nopgm",
             "-seed", "3", "-noprogress", "--template", "tiles/sim_{:05d}",
             "--expt", "truth.expt", "--nexus", "sweep.nxs"]
    run = run_cli(flags, tmp_path, entry=series_main)
    assert run.code == 0, run.err
    assert "10 frames written" in run.out
    for command in (["dials.import", "sweep.nxs"], ["dials.find_spots", "imported.expt"],
                    ["dials.index", "imported.expt", "strong.refl",
                     "unit_cell=60,70,80,90,90,90", "space_group=P1"]):
        done = subprocess.run([os.path.join(bindir, command[0])] + command[1:], cwd=tmp_path,
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    truth = subprocess.run([DIALS_PY, os.path.join(os.path.dirname(__file__), "dials_truth.py"),
                            "truth.expt", "indexed.expt"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=600)
    assert truth.returncode == 0, truth.stderr[-2000:]
    found = json.loads(truth.stdout)
    assert found["angle_deg"] < 0.05, found
    # the truth is the input experiment's crystal and detector
    doc, given = (json.loads((tmp_path / "truth.expt").read_text()),
                  json.loads(open(expt).read()))
    for k in "abc":
        assert doc["crystal"][0]["real_space_" + k] == pytest.approx(
            given["crystal"][0]["real_space_" + k], abs=1e-9)
    for ours, theirs in zip(doc["detector"][0]["panels"], given["detector"][0]["panels"]):
        for key in ("origin", "fast_axis", "slow_axis"):
            assert ours[key] == pytest.approx(theirs[key], abs=1e-9)
