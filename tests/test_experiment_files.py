"""The DIALS experiment list (-expt) and XDS.INP (-xds_inp) describe what was simulated.

dxtbx does not install from pip, so the files are read back here with small readers of
their own and checked against nbnumba's geometry: the lab position of every pixel, the
Miller index of the brightest spot, and the scan against the frames written.
"""
import json
import math
import re

import numpy as np
import pytest

from conftest import run_cli
from nbnumba import config_from_args, prepare, render
from nbnumba.diagnostics import pixel_report
from nbnumba.experiment import describe, image_number, lab_frame
from nbnumba.io.expt import experiment_list
from nbnumba.io.xds_inp import xds_inp_text
from nbnumba_cli.series import main as series_main

BASE = "-cell 40 50 60 80 95 100 -misset 10 20 30 -default_F 100 -N 3 -lambda 1.2".split()

# conventions x rotations x two-theta x pivots; every case is a rotation (-osc)
CASES = {
    "mosflm": "-mosflm -distance 80 -Xbeam 1.7 -Ybeam 1.1",
    "mosflm-rotated": "-mosflm -distance 80 -detector_rotx 5 -detector_roty -3 "
                      "-detector_rotz 7 -twotheta 12",
    "denzo-rotated": "-denzo -distance 70 -Xbeam 1 -Ybeam 2 -detector_roty 4 -twotheta -8",
    "adxv-rotated": "-adxv -distance 90 -Xbeam 1.3 -Ybeam 0.7 -detector_rotx -6 "
                    "-detector_rotz 3 -twotheta 15",
    "xds-rotated": "-xds -distance 75 -ORGX 7.5 -ORGY 11.25 -detector_rotx 2 -detector_roty 9 "
                   "-twotheta 20",
    "dials-rotated": "-dials -distance 85 -ORGX 12 -ORGY 4 -detector_rotz 11 -twotheta -14",
    "custom-pivot-beam": "-fdet_vector 0 0.2 1 -sdet_vector 0 -1 0.2 -odet_vector 1 0 0 "
                         "-beam_vector 1 0 0 -spindle_axis 0.1 0.3 1 -polar_vector 0 0 1 "
                         "-pivot beam -distance 60 -Xbeam 1.2 -Ybeam 0.9 "
                         "-detector_rotx 3 -twotheta 7 -twotheta_axis 0 1 0",
    "custom-pivot-sample": "-fdet_vector 1 0 0 -sdet_vector 0 0.94 0.342 -odet_vector "
                           "0 -0.342 0.94 -beam_vector 0 0 1 -spindle_axis -1 0 0 "
                           "-polar_vector 0 1 0 -pivot sample -close_distance 66 -Xclose 1.1 "
                           "-Yclose 2.3 -detector_roty 6 -twotheta 9 -twotheta_axis 0 -1 0",
}
SWEEP = "-detpixels_f 24 -detpixels_s 20 -pixel 0.2 -phi 10 -osc 0.5 -polar 0.6".split()


def _setup(tmp_path, extra):
    cfg, _ = config_from_args(BASE + SWEEP + extra.split(), cwd=str(tmp_path))
    return prepare(cfg)


def _image(tmp_path, extra, name="sim_00007.img"):
    setup = _setup(tmp_path, extra)
    return setup, describe(setup, image_number(str(tmp_path / name), "-expt"), 40.0)


# --------------------------------------------------------------------- small readers


class ExptPanel:
    """Pixel positions from the first panel of a DIALS experiment list (mm)."""

    def __init__(self, expt):
        panel = expt["detector"][0]["panels"][0]
        self.origin = np.array(panel["origin"])
        self.fast = np.array(panel["fast_axis"])
        self.slow = np.array(panel["slow_axis"])
        self.pixel = panel["pixel_size"][0]
        self.size = panel["image_size"]

    def lab(self, f, s):
        """Lab position of the centre of pixel (f, s) (0-based; arrays allowed), mm."""
        f, s = np.asarray(f, float)[..., None], np.asarray(s, float)[..., None]
        return self.origin + (f + 0.5) * self.pixel * self.fast + (s + 0.5) * self.pixel * self.slow


def read_xds_inp(text):
    """{KEYWORD: [values]} of an XDS.INP, and the commented truth axes."""
    values, truth = {}, {}
    for line in text.splitlines():
        body, _, comment = line.partition("!")
        for key, value in re.findall(r"([A-Z_'\-]+=)\s*([^=]*?)(?=\s+[A-Z_'\-]+=|$)", body):
            values[key[:-1]] = value.split()
        m = re.match(r"UNIT_CELL_([ABC])-AXIS=(.*)", comment)
        if m:
            truth[m.group(1)] = np.array([float(x) for x in m.group(2).split()])
    return values, truth


class XdsDetector:
    """Pixel positions from XDS.INP: D*N + QX*(X-ORGX)*ED1 + QY*(Y-ORGY)*ED2 (mm), with
    XDS pixel (X, Y) = nbnumba pixel (f + 1, s + 1)."""

    def __init__(self, values):
        num = lambda k: np.array([float(x) for x in values[k]])  # noqa: E731
        self.x_axis = num("DIRECTION_OF_DETECTOR_X-AXIS")
        self.y_axis = num("DIRECTION_OF_DETECTOR_Y-AXIS")
        self.normal = np.cross(self.x_axis, self.y_axis)
        self.orgx, self.orgy = num("ORGX")[0], num("ORGY")[0]
        self.distance = num("DETECTOR_DISTANCE")[0]
        self.qx, self.qy = num("QX")[0], num("QY")[0]

    def lab(self, f, s):
        x = np.asarray(f, float)[..., None] + 1.0
        y = np.asarray(s, float)[..., None] + 1.0
        return (self.distance * self.normal + self.qx * (x - self.orgx) * self.x_axis
                + self.qy * (y - self.orgy) * self.y_axis)


def _basis(beam, axis):
    """Rows: beam, the axis' part perpendicular to it, their cross product."""
    beam = np.asarray(beam, float) / np.linalg.norm(beam)
    axis = np.asarray(axis, float) - np.dot(axis, beam) * beam
    axis /= np.linalg.norm(axis)
    return np.array([beam, axis, np.cross(beam, axis)])


def _nbnumba_positions(setup, f, s):
    """Pixel centres from nbnumba's own geometry (m, nbnumba's frame)."""
    g = setup.geometry
    f, s = np.asarray(f, float)[..., None], np.asarray(s, float)[..., None]
    return (np.array(g.pix0) + (f + 0.5) * g.pixel_size * np.array(g.fdet)
            + (s + 0.5) * g.pixel_size * np.array(g.sdet))


def _all_pixels(setup):
    s, f = np.mgrid[0:setup.spixels, 0:setup.fpixels]
    return f.ravel(), s.ravel()


def _rotation_axis(setup):
    return np.array(setup.geometry.frame.spindle)


# --------------------------------------------------------------------- geometry


@pytest.mark.parametrize("case", sorted(CASES))
def test_expt_pixel_positions_match_nbnumba(tmp_path, case):
    setup, image = _image(tmp_path, CASES[case])
    expt = json.loads(json.dumps(experiment_list([image], str(tmp_path / "sim.expt"))))
    beam = -np.array(expt["beam"][0]["direction"])
    axis = np.array(expt["goniometer"][0]["rotation_axis"])
    # the DIALS frame: the beam along -z, the rotation axis in the x-z plane along +x
    assert np.allclose(beam, (0, 0, -1), atol=1e-15)
    assert axis[0] > 0 and abs(axis[1]) < 1e-15
    f, s = _all_pixels(setup)
    from_file = ExptPanel(expt).lab(f, s) * 1e-3 @ _basis(beam, axis).T
    own = _nbnumba_positions(setup, f, s) @ _basis(setup.geometry.beam, _rotation_axis(setup)).T
    assert np.max(np.abs(from_file - own)) < 1e-9


@pytest.mark.parametrize("case", sorted(CASES))
def test_xds_inp_pixel_positions_match_nbnumba(tmp_path, case):
    setup, image = _image(tmp_path, CASES[case])
    values, _ = read_xds_inp(xds_inp_text([image], str(tmp_path / "XDS.INP")))
    beam = np.array([float(x) for x in values["INCIDENT_BEAM_DIRECTION"]])
    axis = np.array([float(x) for x in values["ROTATION_AXIS"]])
    assert np.allclose(beam, (0, 0, 1), atol=1e-12) and axis[0] > 0
    f, s = _all_pixels(setup)
    from_file = XdsDetector(values).lab(f, s) * 1e-3 @ _basis(beam, axis).T
    own = _nbnumba_positions(setup, f, s) @ _basis(setup.geometry.beam, _rotation_axis(setup)).T
    assert np.max(np.abs(from_file - own)) < 1e-9


def test_mosflm_frame_is_dxtbx_fixed_map_and_header_origin(tmp_path):
    """For MOSFLM the DIALS frame is dxtbx's mosflm->imgCIF map (x,y,z) -> (-z,y,x)... and
    the panel origin is the SMV header's DIALS_ORIGIN."""
    setup, image = _image(tmp_path, CASES["mosflm-rotated"])
    rows = lab_frame(setup.geometry.beam, setup.geometry.frame.spindle, -1)
    assert np.allclose(rows, [(0, 0, 1), (0, 1, 0), (-1, 0, 0)], atol=0)
    expt = experiment_list([image], str(tmp_path / "sim.expt"))
    origin = expt["detector"][0]["panels"][0]["origin"]
    assert np.allclose(origin, setup.geometry.dials_origin, rtol=0, atol=1e-12)


def test_panel_sensor_scan_and_beam_fields(tmp_path):
    setup, image = _image(tmp_path, CASES["mosflm"] + " -detector_thick 300 -detector_abs 500")
    expt = experiment_list([image], str(tmp_path / "sim.expt"))
    panel = expt["detector"][0]["panels"][0]
    assert panel["image_size"] == [24, 20] and panel["pixel_size"] == [0.2, 0.2]
    assert panel["thickness"] == pytest.approx(0.3) and panel["mu"] == pytest.approx(2.0)
    assert panel["px_mm_strategy"] == {"type": "ParallaxCorrectedPxMmStrategy"}
    assert panel["trusted_range"] == [0.0, 65534.0] and panel["pedestal"] == 40.0
    beam = expt["beam"][0]
    assert beam["wavelength"] == pytest.approx(1.2)
    assert beam["polarization_fraction"] == pytest.approx(0.8)        # (1 + K) / 2
    assert np.allclose(beam["polarization_normal"], (0, 1, 0))        # E-vector along x
    scan = expt["scan"][0]
    assert scan["image_range"] == [7, 7]
    assert scan["properties"]["oscillation"] == [pytest.approx(10.0)]
    assert scan["properties"]["oscillation_width"] == [pytest.approx(0.5)]
    assert expt["imageset"][0]["template"] == "sim_#####.img"
    crystal = expt["crystal"][0]
    assert crystal["space_group_hall_symbol"] == " P 1"
    lengths = [np.linalg.norm(crystal["real_space_" + k]) for k in "abc"]
    assert lengths == pytest.approx([40, 50, 60])
    values, truth = read_xds_inp(xds_inp_text([image], str(tmp_path / "XDS.INP")))
    # the cell as simulated: for a triclinic -cell the C's construction (which nbnumba
    # keeps) gives angles slightly off the ones asked for (docs/parity.md)
    assert [float(x) for x in values["UNIT_CELL_CONSTANTS"]] == pytest.approx(
        [40, 50, 60, 79.979577, 95.010370, 100.002879], abs=1e-6)
    assert values["SPACE_GROUP_NUMBER"] == ["1"] and values["DETECTOR"] == ["ADSC"]
    assert [np.linalg.norm(truth[k]) for k in "ABC"] == pytest.approx([40, 50, 60])
    assert values["SENSOR_THICKNESS"] == ["0.3"] and values["OVERLOAD"] == ["65534"]


# --------------------------------------------------------------------- Miller indices


def _nbnumba_hkl(result, f, s):
    """h of pixel (f, s) from nbnumba's geometry and its first crystal orientation."""
    setup = result.setup
    position = _nbnumba_positions(setup, f, s)
    diffracted = position / np.linalg.norm(position, axis=-1, keepdims=True)
    q = (diffracted - np.array(setup.geometry.beam)) / setup.config.beam.wavelength
    cell = setup.cells[0].reshape(3, 3)            # a, b, c (m) at phi0
    return q @ cell.T


def _expt_hkl(expt, f, s):
    """h of pixel (f, s) from the file's detector, beam, goniometer, scan and crystal."""
    beam = expt["beam"][0]
    wavelength = beam["wavelength"]
    position = ExptPanel(expt).lab(f, s)
    q = position / np.linalg.norm(position) / wavelength + np.array(beam["direction"]) / wavelength
    if expt.get("goniometer"):
        axis = np.array(expt["goniometer"][0]["rotation_axis"])
        phi = math.radians(expt["scan"][0]["properties"]["oscillation"][0])
        q = _rotate(q, axis, -phi)                 # back to the crystal at phi = 0
    crystal = expt["crystal"][0]
    return np.array([crystal["real_space_" + k] for k in "abc"]) @ q


def _xds_hkl(text, f, s):
    values, truth = read_xds_inp(text)
    wavelength = float(values["X-RAY_WAVELENGTH"][0])
    beam = np.array([float(x) for x in values["INCIDENT_BEAM_DIRECTION"]])
    position = XdsDetector(values).lab(f, s)
    q = (position / np.linalg.norm(position) - beam / np.linalg.norm(beam)) / wavelength
    axis = np.array([float(x) for x in values["ROTATION_AXIS"]])
    frame, start = int(values["STARTING_FRAME"][0]), float(values["STARTING_ANGLE"][0])
    assert frame == 7
    q = _rotate(q, axis, -math.radians(start))
    return np.array([truth[k] for k in "ABC"]) @ q


def _rotate(v, axis, angle):
    axis = axis / np.linalg.norm(axis)
    return (v * math.cos(angle) + np.cross(axis, v) * math.sin(angle)
            + axis * np.dot(axis, v) * (1 - math.cos(angle)))


MILLER_CASES = {
    "mosflm-still": "-mosflm -distance 50 -detector_rotz 5",
    "mosflm-rotation": "-mosflm -distance 50 -twotheta 10 -phi 20 -osc 0.1 -phisteps 1",
    "xds-rotation": "-xds -distance 50 -ORGX 25 -ORGY 20 -detector_rotx 4 -phi 33 -osc 0.2 "
                    "-phisteps 1",
    "custom-rotation": CASES["custom-pivot-sample"].replace("-close_distance 66",
                                                            "-close_distance 50")
    + " -phi -40 -osc 0.3 -phisteps 1",
}


@pytest.mark.parametrize("case", sorted(MILLER_CASES))
def test_brightest_spot_miller_index_from_the_files(tmp_path, case):
    """The brightest spot apart from the direct beam (h = 0 says nothing of orientation)."""
    argv = (BASE + "-detpixels 48 -pixel 0.25 -oversample 1".split()
            + MILLER_CASES[case].split())
    cfg, _ = config_from_args(argv, cwd=str(tmp_path))
    result = render(prepare(cfg))
    s_all, f_all = np.mgrid[0:48, 0:48]
    h_all = _nbnumba_hkl(result, f_all, s_all)
    direct_beam = np.all(np.round(h_all) == 0, axis=-1)
    s, f = np.unravel_index(int(np.argmax(np.where(direct_beam, 0, result.image))), (48, 48))
    own = h_all[s, f]
    assert np.max(np.abs(own - np.round(own))) < 0.1 and np.any(np.round(own) != 0)
    printed = re.search(r"hkl= (\S+) (\S+) (\S+)", "\n".join(pixel_report(result, f, s)))
    assert np.allclose([float(x) for x in printed.groups()], own, atol=2e-6)  # the kernel's
    image = describe(result.setup, image_number(str(tmp_path / "sim_00007.img"), "-expt"), 40)
    expt = json.loads(json.dumps(experiment_list([image], str(tmp_path / "sim.expt"))))
    assert np.max(np.abs(_expt_hkl(expt, f, s) - own)) < 1e-9
    if image.is_rotation:
        text = xds_inp_text([image], str(tmp_path / "XDS.INP"))
        assert np.max(np.abs(_xds_hkl(text, f, s) - own)) < 1e-7  # 12 significant digits


# --------------------------------------------------------------------- commands


SMALL = ("-cell 50 50 50 90 90 90 -default_F 100 -N 2 -detpixels 16 -distance 40 -seed 1 "
         "-oversample 1 -noprogress -nopgm -nonoise").split()


def test_nbnumba_writes_the_files_and_identical_images(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = run_cli(SMALL + ["-osc", "0.5", "-intfile", "sim_00001.img"], tmp_path / "a")
    both = run_cli(SMALL + ["-osc", "0.5", "-intfile", "sim_00001.img", "-expt", "sim.expt",
                            "-xds_inp", "XDS.INP"], tmp_path / "b")
    assert plain.code == 0 and both.code == 0, both.err
    for name in ("sim_00001.img", "floatimage.bin"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    expt = json.loads((tmp_path / "b" / "sim.expt").read_text())
    assert expt["imageset"][0]["template"] == "sim_#####.img"
    values, _ = read_xds_inp((tmp_path / "b" / "XDS.INP").read_text())
    assert values["NAME_TEMPLATE_OF_DATA_FRAMES"] == ["sim_?????.img"]
    assert values["DATA_RANGE"] == ["1", "1"]


@pytest.mark.parametrize("args, message", [
    (["-expt", "x.expt"], "cannot read an image named 'intimage.img'"),
    (["-intfile", "s_001.img", "-xds_inp", "XDS.INP"], "XDS processes one rotation sweep"),
    (["-intfile", "s_001.img", "-osc", "1", "-curved_det", "-expt", "x.expt"], "curved"),
    (["-intfile", "s_001.img", "-expt", "nodir/x.expt"], "does not exist"),
])
def test_nbnumba_refuses_before_writing(tmp_path, args, message):
    run = run_cli(SMALL + args, tmp_path)
    assert run.code == 9 and message in run.err and len(run.err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_series_scan_matches_the_frames_written(tmp_path):
    args = SMALL + ["-phi", "5", "--frames", "3", "--frame-osc", "0.5", "--template",
                    "out/sim_{:05d}", "--expt", "sweep.expt", "--xds-inp", "XDS.INP"]
    (tmp_path / "out").mkdir()
    run = run_cli(args, tmp_path, entry=series_main)
    assert run.code == 0, run.err
    expt = json.loads((tmp_path / "sweep.expt").read_text())
    assert len(expt["experiment"]) == 1
    template = expt["imageset"][0]["template"]
    assert template == "out/sim_#####.img"
    scan = expt["scan"][0]
    first, last = scan["image_range"]
    assert (first, last) == (0, 2)
    assert scan["batch_offset"] == -1    # dxtbx's import of the template: first - 1
    for number, start in zip(range(first, last + 1), scan["properties"]["oscillation"]):
        path = tmp_path / template.replace("#####", "%05d" % number)
        header = path.read_bytes()[:512].decode("ascii", "replace")
        osc_start = float(re.search(r"OSC_START=([^;]+);", header).group(1))
        osc_range = float(re.search(r"OSC_RANGE=([^;]+);", header).group(1))
        assert start == pytest.approx(osc_start, abs=1e-9)
        assert scan["properties"]["oscillation"][1] - scan["properties"]["oscillation"][0] \
            == pytest.approx(osc_range, abs=1e-9)
    values, _ = read_xds_inp((tmp_path / "XDS.INP").read_text())
    assert values["NAME_TEMPLATE_OF_DATA_FRAMES"] == ["out/sim_?????.img"]
    assert values["DATA_RANGE"] == ["1", "2"]        # XDS numbers frames from 1
    assert float(values["STARTING_ANGLE"][0]) == pytest.approx(5.5)
    assert float(values["OSCILLATION_RANGE"][0]) == pytest.approx(0.5)


def test_series_template_must_end_in_the_number(tmp_path):
    run = run_cli(SMALL + ["--frames", "2", "--frame-osc", "1", "--template", "f_{:03d}_x",
                           "--expt", "s.expt"], tmp_path, entry=series_main)
    assert run.code == 9 and "must end with the frame number" in run.err
    assert list(tmp_path.iterdir()) == []


def test_still_series_has_one_experiment_per_frame(tmp_path):
    args = SMALL + ["--frames", "2", "--orientation-seed", "4", "--template", "st_{:03d}",
                    "--expt", "stills.expt"]
    run = run_cli(args, tmp_path, entry=series_main)
    assert run.code == 0, run.err
    expt = json.loads((tmp_path / "stills.expt").read_text())
    assert [e.get("scan") for e in expt["experiment"]] == [None, None]
    assert [i["images"] for i in expt["imageset"]] == [["st_000.img"], ["st_001.img"]]
    assert [e["crystal"] for e in expt["experiment"]] == [0, 1]   # two orientations
    assert len(expt["beam"]) == 1 and len(expt["detector"]) == 1
    run = run_cli(args[:-2] + ["--xds-inp", "XDS.INP"], tmp_path, entry=series_main)
    assert run.code == 9 and "XDS processes one rotation sweep" in run.err


def test_skewed_detector_axes_are_refused(tmp_path):
    run = run_cli(SMALL + ["-fdet_vector", "0", "0", "1", "-sdet_vector", "0", "-1", "0.5",
                           "-intfile", "s_001.img", "-osc", "1", "-expt", "x.expt"], tmp_path)
    assert run.code == 9 and "not perpendicular" in run.err


def test_polarization_plane_and_fraction(tmp_path):
    # K < 0: more intensity with the E-vector perpendicular to -polar's axis (0,0,1)
    _, image = _image(tmp_path, CASES["mosflm"] + " -polar -0.4")
    normal, fraction = image.polarization()
    assert fraction == pytest.approx(0.7) and np.allclose(normal, (0, 0, 1))
    beam = experiment_list([image], str(tmp_path / "s.expt"))["beam"][0]
    assert np.allclose(beam["polarization_normal"], (1, 0, 0))   # the spindle's direction


def test_lab_frame_is_a_rotation_even_for_an_axis_along_the_beam():
    for beam, axis in [((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)), ((1.0, 0.0, 0.0), (1.0, 0.0, 0.0)),
                       ((0.0, 0.6, 0.8), (0.3, 0.1, 0.2))]:
        for sign in (-1, 1):
            rows = np.array(lab_frame(beam, axis, sign))
            assert np.allclose(rows @ rows.T, np.eye(3)) and np.linalg.det(rows) == \
                pytest.approx(1.0)
            assert np.allclose(rows @ np.array(beam), (0, 0, sign))
