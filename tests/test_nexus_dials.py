"""DIALS reads the NXmx files like the .expt: dxtbx's models and pixels, and indexing.

Runs only with ``DIALS_PY`` (a Python with dxtbx, and DIALS' commands beside it, e.g.
``/path/to/dials/venv/bin/python``); skipped otherwise. The checks run in that Python
as small scripts, and print JSON read here.
"""
import json
import os
import subprocess
import textwrap

import pytest

from conftest import run_cli
from test_experiment_files import BASE, CASES, SWEEP

from nbnumba_cli.series import main as series_main

DIALS_PY = os.environ.get("DIALS_PY")
pytestmark = pytest.mark.skipif(not DIALS_PY, reason="needs DIALS_PY (a Python with dxtbx)")

COMPARE = textwrap.dedent("""
    import json, sys
    import dxtbx.model  # before scipy
    import numpy as np
    from dxtbx.model.experiment_list import ExperimentListFactory
    nxs = ExperimentListFactory.from_filenames([sys.argv[1]])[0]
    expt = ExperimentListFactory.from_json_file(sys.argv[2], check_format=False)[0]
    def pixels(panel):
        fast, slow = panel.get_image_size()
        f, s = np.meshgrid(np.arange(fast) + 0.5, np.arange(slow) + 0.5)
        o, d1, d2 = (np.array(v) for v in (panel.get_origin(), panel.get_fast_axis(),
                                           panel.get_slow_axis()))
        px = panel.get_pixel_size()
        return o + f[..., None] * px[0] * d1 + s[..., None] * px[1] * d2
    a, b = nxs.detector[0], expt.detector[0]
    raw = nxs.imageset.get_raw_data(0)[0].as_numpy_array()
    with open(sys.argv[3], "rb") as handle:
        smv = np.frombuffer(handle.read()[512:], dtype="<u2").reshape(raw.shape)
    print(json.dumps({
        "format": nxs.imageset.get_format_class().__name__,
        "pixels_m": float(np.max(np.abs(pixels(a) - pixels(b)))) * 1e-3,
        "size": [a.get_image_size(), b.get_image_size()],
        "pixel_size": [a.get_pixel_size(), b.get_pixel_size()],
        "trusted": [a.get_trusted_range(), b.get_trusted_range()],
        "s0": [nxs.beam.get_s0(), expt.beam.get_s0()],
        "axis": [nxs.goniometer.get_rotation_axis(), expt.goniometer.get_rotation_axis()],
        "fixed": [nxs.goniometer.get_fixed_rotation(), expt.goniometer.get_fixed_rotation()],
        "setting": [nxs.goniometer.get_setting_rotation(),
                    expt.goniometer.get_setting_rotation()],
        "range": [nxs.scan.get_image_range(), expt.scan.get_image_range()],
        "oscillation": [nxs.scan.get_oscillation(), expt.scan.get_oscillation()],
        "exposure": [list(nxs.scan.get_exposure_times()),
                     list(expt.scan.get_exposure_times())],
        "data_equal": bool(np.array_equal(raw, smv)),
    }))
""")


def _dials(script, *args, cwd):
    run = subprocess.run([DIALS_PY, "-c", script, *map(str, args)], cwd=cwd,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", sorted(CASES))
def test_dxtbx_models_and_pixels_equal_the_expt(tmp_path, case):
    args = (BASE + SWEEP + CASES[case].split()
            + "-seed 7 -noprogress -nopgm -intfile sim_00001.img -noisefile noise.img "
              "-expt sim.expt -nexus sim.nxs".split())
    run = run_cli(args, tmp_path)
    assert run.code == 0, run.err
    got = _dials(COMPARE, "sim.nxs", "sim.expt", "noise.img", cwd=tmp_path)
    assert got["format"] == "FormatNXmx"
    assert got["pixels_m"] < 1e-9
    for key in ("size", "pixel_size", "trusted", "s0", "axis", "fixed", "setting", "range",
                "oscillation", "exposure"):
        first, second = got[key]
        assert first == pytest.approx(second, abs=1e-12), key
    assert got["data_equal"]


INDEX = ("-cell 60 70 80 90 90 90 -misset 10 20 30 -default_F 300 -N 15 -lambda 1 "
         "-distance 120 -detpixels 256 -pixel 0.4 -oversample 1 -phi 0 -seed 3 -noprogress "
         "-nopgm -nonoise").split()


def _index(cwd, source):
    """dials.find_spots and dials.index (after dials.import for an image file)."""
    if source.endswith(".expt"):
        commands = [["dials.find_spots", source], ["dials.index", source, "strong.refl"]]
    else:
        commands = [["dials.import", source], ["dials.find_spots", "imported.expt"],
                    ["dials.index", "imported.expt", "strong.refl"]]
    bindir = os.path.dirname(DIALS_PY)
    for command in commands:
        run = subprocess.run([os.path.join(bindir, command[0])] + command[1:], cwd=cwd,
                             capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, (command, run.stdout[-2000:], run.stderr[-2000:])
    return _dials(textwrap.dedent("""
        import dxtbx.model, json
        from dxtbx.model.experiment_list import ExperimentListFactory
        from dials.array_family import flex
        crystal = ExperimentListFactory.from_json_file("indexed.expt",
                                                       check_format=False)[0].crystal
        refl = flex.reflection_table.from_file("indexed.refl")
        print(json.dumps({"cell": list(crystal.get_unit_cell().parameters()),
                          "indexed": int(refl.get_flags(refl.flags.indexed).count(True)),
                          "strong": len(refl)}))
    """), cwd=cwd)


def test_dials_indexes_the_nxmx_sweep_as_the_smv_sweep(tmp_path):
    if not os.path.exists(os.path.join(os.path.dirname(DIALS_PY), "dials.index")):
        pytest.skip("DIALS_PY has dxtbx but not the dials commands")
    (tmp_path / "smv").mkdir()
    (tmp_path / "nxs").mkdir()
    args = INDEX + ["--frames", "30", "--frame-osc", "0.5", "--template", "frames/sim_{:05d}",
                    "--expt", "sweep.expt", "--nexus", "sweep.nxs"]
    run = run_cli(args, tmp_path, entry=series_main)
    assert run.code == 0, run.err
    # without noise both hold the int images: the .expt's SMV frames and the NXmx file.
    # Like dials.import of the NXmx file, the SMV route starts without a crystal; and the
    # .expt gives the -adc offset as the panel's pedestal, which DIALS subtracts, while
    # NXmx has no pedestal for dxtbx: the SMV route reads the counts as stored too
    expt = json.loads((tmp_path / "sweep.expt").read_text())
    expt["detector"][0]["panels"][0]["pedestal"] = 0.0
    expt["crystal"] = []
    for experiment in expt["experiment"]:
        del experiment["crystal"]
    expt["imageset"][0]["template"] = "../" + expt["imageset"][0]["template"]
    (tmp_path / "smv" / "sweep.expt").write_text(json.dumps(expt))
    smv = _index(tmp_path / "smv", "sweep.expt")
    nxs = _index(tmp_path / "nxs", "../sweep.nxs")
    def folded(cell):   # a basis of the other hand turns an angle x into 180 - x
        return cell[:3] + [min(x, 180 - x) for x in cell[3:]]
    assert folded(nxs["cell"]) == pytest.approx([60, 70, 80, 90, 90, 90], rel=0.005)
    assert folded(nxs["cell"]) == pytest.approx(folded(smv["cell"]), rel=1e-3)
    assert nxs["strong"] == pytest.approx(smv["strong"], rel=0.01)
    assert nxs["indexed"] == pytest.approx(smv["indexed"], rel=0.01)
    assert nxs["indexed"] > 0.8 * nxs["strong"]
