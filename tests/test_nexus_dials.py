"""DIALS reads the NXmx files like the .expt: dxtbx's models (the polarization included)
and pixels, indexing, a blank frame's background, a still indexed to the truth.

Runs only with ``DIALS_PY`` (a Python with dxtbx, and DIALS' commands beside it, e.g.
``/path/to/dials/venv/bin/python``); skipped otherwise. nbnumba's dxtbx format class
(``nbnumba_dxtbx``, which gives DIALS the polarization) is installed the way the user
guide says, ``pip install --no-deps``, but into a directory of its own on PYTHONPATH, so
that DIALS' environment stays as it is. The checks run in that Python as small scripts,
and print JSON read here.
"""
import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

import dials_plugin
from conftest import run_cli
from test_experiment_files import BASE, CASES, SWEEP

from nbnumba_cli.series import main as series_main

DIALS_PY = os.environ.get("DIALS_PY")
pytestmark = pytest.mark.skipif(not DIALS_PY, reason="needs DIALS_PY (a Python with dxtbx)")
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    """nbnumba installed by DIALS' pip into a directory of its own: on PYTHONPATH, dxtbx
    finds the format class through the package's entry point."""
    return dials_plugin.install(DIALS_PY, tmp_path_factory.mktemp("dxtbx"))


@pytest.fixture(autouse=True)
def _dials_sees_the_plugin(plugin_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", plugin_path)

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
    with open(sys.argv[3], "rb") as handle:   # the noise image: counts + 40 (-adc)
        smv = np.frombuffer(handle.read()[512:], dtype="<u2").reshape(raw.shape)
    assert smv.max() < 65535
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
        "data_equal": bool(np.array_equal(raw, smv.astype(int) - 40)),
        "polarization_fraction": [nxs.beam.get_polarization_fraction(),
                                  expt.beam.get_polarization_fraction()],
        # the normals up to their sign
        "polarization_normal_dot": abs(np.dot(nxs.beam.get_polarization_normal(),
                                              expt.beam.get_polarization_normal())),
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
    assert got["format"] == "FormatNXmxNbnumba"
    assert got["pixels_m"] < 1e-9
    assert got["polarization_normal_dot"] == pytest.approx(1.0, abs=1e-12)
    for key in ("size", "pixel_size", "trusted", "s0", "axis", "fixed", "setting", "range",
                "oscillation", "exposure", "polarization_fraction"):
        first, second = got[key]
        assert first == pytest.approx(second, abs=1e-12), key
    assert got["data_equal"]


#: the user guide's sweep (Gaussian spots a few pixels wide: a noiseless frame without an
#: offset has no background, and the sinc side lobes of the default shape would be spots)
INDEX = ("-cell 40 50 60 90 90 90 -misset 10 20 30 -default_F 100 -N 8 -gauss_xtal -lambda 2 "
         "-distance 85 -detpixels 512 -pixel 0.1 -oversample 2 -phi 0 -phi_midpoints -seed 3 "
         "-noprogress -nopgm -nonoise").split()


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
    args = INDEX + ["--frames", "10", "--frame-osc", "1", "--template", "frames/sim_{:05d}",
                    "--expt", "sweep.expt", "--nexus", "sweep.nxs"]
    run = run_cli(args, tmp_path, entry=series_main)
    assert run.code == 0, run.err
    # without noise both hold the int images: the .expt's SMV frames (counts + 40, the
    # .expt's pedestal, which DIALS subtracts) and the NXmx file (the counts). Like
    # dials.import of the NXmx file, the SMV route starts without a crystal
    expt = json.loads((tmp_path / "sweep.expt").read_text())
    expt["crystal"] = []
    for experiment in expt["experiment"]:
        del experiment["crystal"]
    expt["imageset"][0]["template"] = "../" + expt["imageset"][0]["template"]
    (tmp_path / "smv" / "sweep.expt").write_text(json.dumps(expt))
    smv = _index(tmp_path / "smv", "sweep.expt")
    nxs = _index(tmp_path / "nxs", "../sweep.nxs")
    def folded(cell):   # a basis of the other hand turns an angle x into 180 - x
        return cell[:3] + [min(x, 180 - x) for x in cell[3:]]
    assert folded(nxs["cell"]) == pytest.approx([40, 50, 60, 90, 90, 90], rel=0.005)
    assert folded(nxs["cell"]) == pytest.approx(folded(smv["cell"]), rel=1e-3)
    assert nxs["strong"] == pytest.approx(smv["strong"], rel=0.01)
    assert nxs["indexed"] == pytest.approx(smv["indexed"], rel=0.01)
    assert nxs["indexed"] > 0.8 * nxs["strong"]


def _run(command, cwd):
    program = os.path.join(os.path.dirname(DIALS_PY), command[0])
    run = subprocess.run([program] + command[1:], cwd=cwd, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, (command, run.stdout[-2000:], run.stderr[-2000:])
    return run.stdout


@pytest.mark.parametrize("polar, fraction", [("-polar 0", 0.5), ("-polar 0.8", 0.9),
                                             ("-polar 0.3 -polar_vector 0.3 1 0.2", 0.65)])
def test_dials_import_without_options_has_the_simulated_polarization(tmp_path, polar,
                                                                     fraction):
    args = (BASE + SWEEP + CASES["mosflm-rotated"].split() + polar.split()
            + "-noprogress -nopgm -intfile sim_00001.img -expt sim.expt -nexus sim.nxs".split())
    run = run_cli(args, tmp_path)
    assert run.code == 0, run.err
    _run(["dials.import", "sim.nxs"], tmp_path)
    got = _dials(textwrap.dedent("""
        import json
        import dxtbx.model
        import numpy as np
        from dxtbx.model.experiment_list import ExperimentListFactory
        imported, truth = (ExperimentListFactory.from_json_file(name, check_format=False)[0]
                           for name in ("imported.expt", "sim.expt"))
        print(json.dumps({
            "fraction": [e.beam.get_polarization_fraction() for e in (imported, truth)],
            "dot": abs(np.dot(imported.beam.get_polarization_normal(),
                              truth.beam.get_polarization_normal()))}))
    """), cwd=tmp_path)
    assert got["fraction"] == pytest.approx([fraction, fraction], abs=1e-12)
    assert got["dot"] == pytest.approx(1.0, abs=1e-12)


def test_blank_frame_background_is_zero_not_the_adc_offset(tmp_path):
    """A frame without photons: DIALS' background of the NXmx file is 0 (its counts carry
    no offset); that of the SMV noise image, read with dials.import, is the -adc 40."""
    run = run_cli("-cell 60 70 80 90 90 90 -default_F 1e-6 -N 10 -lambda 1 -distance 100 "
                  "-detpixels 128 -pixel 0.2 -oversample 1 -osc 0.5 -seed 3 -noprogress "
                  "-nopgm -noisefile blank_00001.img -nexus blank.nxs".split(), tmp_path)
    assert run.code == 0, run.err
    means = {}
    for name in ("blank.nxs", "blank_00001.img"):
        _run(["dials.import", name, "output.experiments=%s.expt" % name], tmp_path)
        out = _run(["dials.background", "%s.expt" % name], tmp_path)
        means[name] = float(out.split("Mean background:")[1].split()[0])
    assert means == {"blank.nxs": 0.0, "blank_00001.img": 40.0}


#: the user guide's still: spots a few pixels wide, many of them (a close detector)
STILL = ("-cell 60 70 80 90 90 90 -misset 10 20 30 -default_F 300 -N 10 -gauss_xtal "
         "-lambda 1 -distance 80 -detpixels 1024 -pixel 0.1 -oversample 2 -fluence 1e30 "
         "-seed 3 -noprogress -nopgm -nexus still.nxs -expt truth.expt "
         "-expt_images nexus").split()


def test_still_with_noise_indexes_to_the_truth(tmp_path):
    """The user guide's recipe: the noise counts of one still (NXmx), spots found
    without the F(000) spot at the beam centre (d_max), indexed with the known cell and
    its lattice symmetry, the geometry (known from the file) fixed."""
    run = run_cli(STILL, tmp_path)
    assert run.code == 0, run.err
    _run(["dials.import", "still.nxs"], tmp_path)
    _run(["dials.find_spots", "imported.expt", "spotfinder.filter.d_max=40"], tmp_path)
    _run(["dials.index", "imported.expt", "strong.refl", "unit_cell=60,70,80,90,90,90",
          "space_group=P222", "detector.fix=all", "beam.fix=all"], tmp_path)
    run = subprocess.run([DIALS_PY, str(HERE / "dials_truth.py"), "truth.expt",
                          "indexed.expt"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    print("\nstill: " + json.dumps(result))
    assert result["angle_deg"] <= 0.05, result
    for true, found in zip(result["true_cell"], result["found_cell"]):
        assert found == pytest.approx(true, abs=0.05), result
