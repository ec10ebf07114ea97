"""Detectors of several panels: named detectors, explicit panels, DIALS experiments in.

The kernels of several panels (nbnumba.kernels.cpu_panels) must compute every pixel as
the one-panel kernels compute the same pixel: a named detector equals the C's detector
of its size with the gaps masked, one panel made from a C detector equals that
detector, and each panel of a layout equals a render of that panel alone.
"""
import json
import math
import os

import numpy as np
import pytest

from conftest import run_cli
from panel_layouts import tilted_tiles
from test_experiment_files import BASE, CASES, SWEEP

import nbnumba
from nbnumba import config_from_args, config_from_experiment, engine
from nbnumba.errors import ConfigError, FlagError, InputFileError
from nbnumba.io.expt_read import read_experiment
from nbnumba.panels import DetectorPanels, Panel
from nbnumba.presets import PRESETS

CRYSTAL = "-cell 60 70 80 90 95 90 -misset 5 10 15 -default_F 100 -N 4 -lambda 1.1".split()
SMALL = "-detpixels_f 24 -detpixels_s 20 -pixel 0.2 -distance 70 -phi 3 -osc 0.4".split()


def _render(flags, tmp_path, threads=None, **changes):
    cfg, _ = config_from_args(flags, cwd=str(tmp_path))
    for key, value in changes.items():
        section, name = key.split("__")
        setattr(getattr(cfg, section), name, value)
    return engine.render(engine.prepare(cfg), threads=threads)


# ------------------------------------------------------------------- named detectors


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_named_detector_sizes_are_the_published_ones(name):
    p = PRESETS[name]
    origins = p.module_origins()
    assert len(origins) == p.panel_count
    fpixels, spixels = p.raster
    assert origins[-1][1] + p.module[0] == fpixels and origins[-1][0] + p.module[1] == spixels
    if name == "pilatus6m":
        assert (fpixels, spixels, p.panel_count) == (2463, 2527, 60)
        assert p.pixel_size == 0.172 / 1000.0          # what -pixel 0.172 gives


def test_named_detector_is_the_c_detector_of_its_size_with_the_gaps_masked(tmp_path):
    # a region of interest around a corner where four modules and two gaps meet
    flags = CRYSTAL + ["-distance", "90", "-roi", "470", "510", "180", "230",
                       "-detector_rotx", "2", "-twotheta", "5", "-oversample", "2"]
    whole = _render(flags + ["-pixel", "0.172", "-detpixels_f", "2463", "-detpixels_s", "2527"],
                    tmp_path)
    named = _render(flags + ["--detector", "pilatus6m"], tmp_path, threads=2)
    setup = named.setup
    assert len(setup.panels) == 60 and setup.fpixels == 2463 and setup.spixels == 2527
    covered = setup.mask.reshape(named.image.shape) != 0
    assert not covered[180:231, 487:494].any() and not covered[195:212, 470:511].any()
    inside = covered.copy()
    inside[:, :470] = inside[:, 511:] = False
    inside[:180] = inside[231:] = False
    assert inside.sum() > 1000
    assert np.array_equal(named.image[inside], whole.image[inside])
    assert not named.image[~covered].any()                       # gaps never rendered
    one_thread = _render(flags + ["--detector", "pilatus6m"], tmp_path, threads=1)
    assert one_thread.image.tobytes() == named.image.tobytes()
    assert one_thread.omega_sum == named.omega_sum


def test_named_detector_module_origins_give_the_c_pixel_positions(tmp_path):
    setup = engine.prepare(config_from_args(CRYSTAL + ["--detector", "eiger2-9m",
                                                       "-twotheta", "20"])[0])
    g = setup.geometry
    for panel in setup.panels.panels[::5]:
        row, col = panel.raster_origin
        f, s = panel.fpixels - 1, panel.spixels - 1
        own = (np.array(panel.origin) + (f + 0.5) * g.pixel_size * np.array(panel.fast)
               + (s + 0.5) * g.pixel_size * np.array(panel.slow))
        whole = (np.array(g.pix0) + (col + f + 0.5) * g.pixel_size * np.array(g.fdet)
                 + (row + s + 0.5) * g.pixel_size * np.array(g.sdet))
        assert np.max(np.abs(own - whole)) < 1e-15


def test_named_detector_refuses_flags_that_size_it(tmp_path):
    run = run_cli(CRYSTAL + ["--detector", "pilatus6m", "-pixel", "0.1"], tmp_path)
    assert run.code == 9 and "-pixel cannot be combined with --detector pilatus6m" in run.err
    run = run_cli(CRYSTAL + ["--detector", "pilatus7m"], tmp_path)
    assert run.code == 9 and "is not a named detector" in run.err
    cfg, _ = config_from_args(CRYSTAL)
    cfg.detector.preset = "pilatus6m"
    cfg.detector.fpixels = 100
    with pytest.raises(ConfigError, match="fpixels = 100 disagrees with the named detector"):
        engine.prepare(cfg)


# ------------------------------------------------------------------- explicit panels


def _one_panel(setup):
    """The C detector of ``setup`` as one explicit panel (its normal kept)."""
    g = setup.geometry
    return DetectorPanels([Panel(origin=g.pix0, fast=g.fdet, slow=g.sdet,
                                 pixel_size=g.pixel_size, fpixels=g.fpixels,
                                 spixels=g.spixels, normal=g.odet)])


def _as_panels(cfg, setup):
    """``cfg`` with its detector replaced by the one panel (beam and spindle kept)."""
    frame = setup.geometry.frame
    det = cfg.detector
    det.convention = "CUSTOM"
    det.beam_vector, det.polar_vector, det.spindle_axis = frame.beam, frame.polar, frame.spindle
    det.panels = _one_panel(setup)
    return cfg


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_panel_made_from_a_c_detector_renders_the_c_image(tmp_path, case):
    flags = BASE + SWEEP + CASES[case].split() + ["-oversample", "2"]
    cfg, _ = config_from_args(flags)
    reference = engine.render(engine.prepare(cfg))
    cfg, _ = config_from_args(flags)
    panel = engine.render(engine.prepare(_as_panels(cfg, reference.setup)))
    assert panel.setup.panels is not None
    assert panel.image.tobytes() == reference.image.tobytes()
    assert panel.omega_sum == reference.omega_sum


@pytest.mark.parametrize("extra", [["-interpolate", "-N", "2"], ["-oversample_omega"],
                                   ["-detector_thick", "300", "-detector_abs", "400",
                                    "-oversample_thick"], ["-roi", "3", "17", "2", "11"]])
def test_one_panel_matches_the_c_detector_in_every_kernel_path(tmp_path, extra):
    flags = BASE + SWEEP + CASES["mosflm-rotated"].split() + ["-oversample", "2"] + extra
    cfg, _ = config_from_args(flags)
    reference = engine.render(engine.prepare(cfg))
    cfg, _ = config_from_args(flags)
    panel = engine.render(engine.prepare(_as_panels(cfg, reference.setup)))
    assert panel.image.tobytes() == reference.image.tobytes()
    assert panel.omega_sum == reference.omega_sum
    assert (panel.interpolation_switch is None) == (reference.interpolation_switch is None)


def _tile_config(layout, extra=()):
    cfg, _ = config_from_args(CRYSTAL + ["-N", "3", "-oversample", "1", "-phi", "2",
                                         "-osc", "0.5"] + list(extra))
    det = cfg.detector
    det.convention = "CUSTOM"
    det.beam_vector, det.polar_vector, det.spindle_axis = (0, 0, -1), (0, 1, 0), (1, 0, 0)
    det.panels = layout
    return cfg


def test_every_panel_of_a_tilted_layout_renders_as_that_panel_alone():
    layout = tilted_tiles()
    whole = engine.render(engine.prepare(_tile_config(layout)))
    rows, cols = whole.image.shape
    assert (rows, cols) == (8 * 32, 48)
    assert whole.image.max() > 0
    for k, panel in enumerate(layout.panels):
        alone = engine.render(engine.prepare(_tile_config(DetectorPanels([panel]))))
        block = whole.image[32 * k:32 * (k + 1)]
        assert block.tobytes() == alone.image.tobytes(), k


def test_panels_laid_out_side_by_side_and_cut_by_a_region_of_interest():
    tiles = tilted_tiles(n=3)
    for k, p in enumerate(tiles.panels):      # three panels side by side, gaps of 5
        p.raster_origin = (2 * k, k * 53)
    whole = engine.render(engine.prepare(_tile_config(tiles, ["-roi", "20", "120", "5", "30"])))
    assert whole.image.shape == (36, 154)
    for k, panel in enumerate(tiles.panels):
        alone = engine.render(engine.prepare(_tile_config(
            DetectorPanels([Panel(**{**panel.__dict__, "raster_origin": None})]))))
        r, c = 2 * k, 53 * k
        block = whole.image[r:r + 32, c:c + 48]
        local = np.zeros_like(alone.image)
        ys, xs = np.mgrid[r:r + 32, c:c + 48]
        inside = (xs >= 20) & (xs <= 120) & (ys >= 5) & (ys <= 30)
        local[inside] = alone.image[inside]
        assert block.tobytes() == local.tobytes(), k
    gaps = whole.setup.mask.reshape(whole.image.shape) == 0
    assert gaps[:, 48:53].all() and not whole.image[gaps].any()


def test_bad_panels_are_refused_in_one_line():
    tiles = tilted_tiles(n=2)
    tiles.panels[0].raster_origin = (0, 0)
    tiles.panels[1].raster_origin = (10, 0)
    with pytest.raises(ConfigError, match="panel 1 .* overlaps another panel"):
        engine.prepare(_tile_config(tiles))
    tiles = tilted_tiles(n=2)
    tiles.panels[0].slow = tiles.panels[0].fast
    with pytest.raises(ConfigError, match="not perpendicular"):
        engine.prepare(_tile_config(tiles))
    tiles = tilted_tiles(n=2)
    tiles.panels[0].fpixels = 2.5
    with pytest.raises(ConfigError, match="fpixels must be a whole number"):
        engine.prepare(_tile_config(tiles))
    with pytest.raises(ConfigError, match="must be a DetectorPanels"):
        engine.prepare(_tile_config([1, 2]))


def test_memory_check_covers_the_whole_detector():
    huge = DetectorPanels([Panel((0.0, 0.0, -0.1), (1, 0, 0), (0, -1, 0), 1e-4, 100000,
                                 100000, "huge")])
    with pytest.raises(ConfigError, match="needs .* of memory"):
        engine.prepare(_tile_config(huge))


def test_progress_and_stop_cover_every_row_of_the_detector():
    setup = engine.prepare(_tile_config(tilted_tiles()))
    calls = []
    engine.render(setup, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (setup.spixels, setup.spixels)
    from nbnumba.kernels import cpu_backend, rowqueue
    inputs = engine.kernel_inputs(setup)
    image = np.zeros(setup.fpixels * setup.spixels, dtype=np.float32)
    control = rowqueue.control_array()
    control[rowqueue.STOP] = 1
    region = (image, setup.fpixels, setup.mask, True, 0, setup.fpixels)
    tables = setup.panels.kernel_tables((0, setup.spixels), (0, setup.fpixels))
    cpu_backend.render(region, 0, setup.spixels, 0, inputs, False, control=control,
                       panels=tables)
    assert control[rowqueue.DONE] == 0 and not image.any()


# ------------------------------------------------------------------- experiments in


def _write_expt(tmp_path, flags, name="sim"):
    run = run_cli(flags + ["-floatfile", name + ".bin", "-intfile", name + "_00001.img",
                           "-expt", name + ".expt", "-noisefile", name + "_noise.img",
                           "-seed", "5", "-nopgm"], tmp_path)
    assert run.code == 0, run.err
    return tmp_path / (name + ".expt")


@pytest.mark.parametrize("case", sorted(CASES))
def test_expt_read_back_renders_the_original_images_byte_for_byte(tmp_path, case):
    _write_expt(tmp_path, BASE + SWEEP + CASES[case].split())
    run = run_cli(["--experiment", "sim.expt", "-default_F", "100", "-N", "3",
                   "-floatfile", "back.bin", "-intfile", "back_00001.img",
                   "-noisefile", "back_noise.img", "-seed", "5", "-nopgm"], tmp_path)
    assert run.code == 0, run.err
    for a, b in (("sim.bin", "back.bin"), ("sim_00001.img", "back_00001.img"),
                 ("sim_noise.img", "back_noise.img")):
        assert (tmp_path / a).read_bytes() == (tmp_path / b).read_bytes(), a


@pytest.mark.parametrize("case", ["mosflm-rotated", "xds-rotated", "custom-pivot-beam"])
def test_an_experiment_without_nbnumbas_block_renders_the_same_physics(tmp_path, case):
    path = _write_expt(tmp_path, BASE + SWEEP + CASES[case].split() + ["-oversample", "2"])
    doc = json.loads(path.read_text())
    del doc["nbnumba"]                            # what dials.* would write back
    (tmp_path / "plain.expt").write_text(json.dumps(doc))
    flags = ["-default_F", "100", "-N", "3", "-oversample", "2"]
    exact, _ = config_from_experiment(str(path), flags)
    plain, _ = config_from_experiment(str(tmp_path / "plain.expt"), flags)
    assert exact.detector.panels is None and plain.detector.panels is not None
    a, b = engine.simulate(exact), engine.simulate(plain)
    np.testing.assert_allclose(b.image, a.image, rtol=1e-5, atol=1e-6 * a.image.max())
    # every pixel centre in the same place, in each render's own frame
    pa, pb = a.setup.geometry, b.setup.panels.panels[0]
    s, f = np.mgrid[0:20, 0:24]
    own = lambda o, fa, sa, px: (np.array(o) + (f[..., None] + 0.5) * px * np.array(fa)  # noqa
                                 + (s[..., None] + 0.5) * px * np.array(sa))
    xa = own(pa.pix0, pa.fdet, pa.sdet, pa.pixel_size)
    xb = own(pb.origin, pb.fast, pb.slow, pb.pixel_size)
    # the DIALS frame is a rotation of nbnumba's: compare distances and angles to the beam
    np.testing.assert_allclose(np.linalg.norm(xa, axis=-1), np.linalg.norm(xb, axis=-1),
                               rtol=1e-12)
    np.testing.assert_allclose(xa @ np.array(a.setup.geometry.beam),
                               xb @ np.array(b.setup.geometry.beam), rtol=1e-12, atol=1e-15)


def test_flags_beside_an_experiment_override_what_they_name(tmp_path):
    _write_expt(tmp_path, BASE + SWEEP + CASES["mosflm"].split())
    cfg, out = config_from_experiment(str(tmp_path / "sim.expt"),
                                      ["-default_F", "100", "-N", "3", "-lambda", "1.5",
                                       "-phi", "12", "-mosaic", "0.2", "-adc", "7"])
    assert cfg.beam.wavelength == 1.5e-10 and cfg.crystal.phi0 == 12 / nbnumba.constants.RTD
    assert cfg.crystal.mosaic_spread == 0.2 / nbnumba.constants.RTD and out.adc == 7
    # the crystal stays the experiment's at another wavelength: the same cell, turned the
    # same way against the beam and the spindle (the renders' frames differ: the original
    # command's, and the file's DIALS frame once a flag changes what the file describes)
    base, _ = config_from_experiment(str(tmp_path / "sim.expt"), ["-default_F", "1"])
    found = []
    for config in (base, cfg):
        setup = engine.prepare(config)
        frame, lat = setup.geometry.frame, setup.lattice
        axes = np.array([frame.beam, frame.spindle])
        found.append((np.array(lat.cell), np.array([lat.a, lat.b, lat.c]) @ axes.T))
    np.testing.assert_allclose(found[1][0], found[0][0], rtol=1e-12)
    np.testing.assert_allclose(found[1][1], found[0][1], rtol=1e-11, atol=1e-22)
    for flag in (["-distance", "100"], ["-twotheta", "3"], ["-beam_vector", "1", "0", "0"],
                 ["-pixel", "0.1"], ["--detector", "pilatus6m"]):
        run = run_cli(["--experiment", "sim.expt", "-default_F", "1"] + flag, tmp_path)
        assert run.code == 9 and f"{flag[0]} cannot be combined with --experiment" in run.err
        assert len(run.err.strip().splitlines()) == 1


def _expt_document(panels_json, beam=None, goniometer=None, crystal=None, scan=None,
                   hierarchy=None):
    detector = {"panels": panels_json}
    if hierarchy is not None:
        detector["hierarchy"] = hierarchy
    doc = {"__id__": "ExperimentList",
           "experiment": [{"__id__": "Experiment", "beam": 0, "detector": 0}],
           "beam": [beam or {"direction": [0.0, 0.0, 1.0], "wavelength": 1.0,
                             "polarization_normal": [0.0, 1.0, 0.0],
                             "polarization_fraction": 0.999}],
           "detector": [detector]}
    for name, model in (("goniometer", goniometer), ("crystal", crystal), ("scan", scan)):
        if model is not None:
            doc[name] = [model]
            doc["experiment"][0][name] = 0
    return doc


def _panel_json(origin, fast=(1, 0, 0), slow=(0, -1, 0), size=(10, 8), pixel=0.1):
    return {"name": "p", "origin": list(origin), "fast_axis": list(fast),
            "slow_axis": list(slow), "pixel_size": [pixel, pixel], "image_size": list(size),
            "trusted_range": [-1, 1000], "thickness": 0.45, "mu": 3.9, "material": "Si"}


def test_hierarchy_frames_are_composed_as_dxtbx_composes_them(tmp_path):
    # a group turned by 30 degrees about z and moved; its panel given in the group's frame
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    group = {"name": "g", "origin": [5.0, -3.0, -100.0], "fast_axis": [c, s, 0.0],
             "slow_axis": [-s, c, 0.0], "children": [{"panel": 0}]}
    root = {"name": "", "origin": [0.0, 0.0, 0.0], "fast_axis": [1.0, 0.0, 0.0],
            "slow_axis": [0.0, 1.0, 0.0], "children": [group]}
    doc = _expt_document([_panel_json((2.0, 1.0, 0.5), (0, 1, 0), (-1, 0, 0))],
                         hierarchy=root)
    path = tmp_path / "h.expt"
    path.write_text(json.dumps(doc))
    models = read_experiment(str(path))
    p = models.panels[0]
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(p.origin, (np.array([5.0, -3.0, -100.0])
                                          + rot @ np.array([2.0, 1.0, 0.5])) * 1e-3,
                               atol=1e-15)
    np.testing.assert_allclose(p.fast, rot @ [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(p.slow, rot @ [-1, 0, 0], atol=1e-15)
    assert p.thickness == pytest.approx(0.45e-3) and p.mu == pytest.approx(3900.0)
    assert models.beam == (0.0, 0.0, -1.0) and models.wavelength == 1e-10


def test_multi_axis_goniometer_gives_the_axis_and_the_crystal_datum(tmp_path):
    gonio = {"axes": [[1, 0, 0], [0, 0, -1], [1, 0, 0]], "angles": [0.0, 30.0, 20.0],
             "names": ["phi", "chi", "omega"], "scan_axis": 0}
    crystal = {"real_space_a": [50.0, 0, 0], "real_space_b": [0, 60.0, 0],
               "real_space_c": [0, 0, 70.0], "space_group_hall_symbol": " P 1"}
    scan = {"image_range": [1, 5], "properties": {"oscillation": [10.0, 10.5, 11.0, 11.5,
                                                                  12.0]}}
    doc = _expt_document([_panel_json((-1.0, 0.4, -90.0))], goniometer=gonio,
                         crystal=crystal, scan=scan)
    path = tmp_path / "m.expt"
    path.write_text(json.dumps(doc))
    models = read_experiment(str(path))
    from nbnumba.io.expt_read import _rotation
    setting = _rotation([1, 0, 0], 20.0) @ _rotation([0, 0, -1], 30.0)
    np.testing.assert_allclose(models.spindle, setting @ [1, 0, 0], atol=1e-15)
    assert models.frames == 5 and models.osc == pytest.approx(math.radians(0.5))
    cfg, _ = config_from_experiment(str(path), ["-default_F", "1", "-oversample", "1"])
    lat = engine.prepare(cfg).lattice
    np.testing.assert_allclose(np.array(lat.a) * 1e10, setting @ [50.0, 0, 0], atol=1e-9)
    assert cfg.detector.thickness == pytest.approx(0.45e-3)
    assert cfg.beam.kahn_factor == pytest.approx(0.998)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update({"__id__": "nope"}), "not a DIALS experiment list"),
    (lambda d: d["experiment"].append(dict(d["experiment"][0])), "holds 2 experiments"),
    (lambda d: d["detector"][0]["panels"][0].update({"pixel_size": [0.1, 0.2]}),
     "rectangular pixels"),
    (lambda d: d["beam"][0].update({"__id__": "polychromatic"}), "monochromatic beam"),
    (lambda d: d["detector"][0]["panels"][0].update({"image_size": [0, 5]}),
     "'image_size' is not two positive pixel counts"),
    (lambda d: d["beam"][0].update({"direction": [0, 0, 0]}), "zero vector"),
    (lambda d: d["experiment"][0].update({"detector": 3}), "not one of the file's detectors"),
])
def test_what_nbnumba_cannot_render_is_refused_in_one_line(tmp_path, change, message):
    doc = _expt_document([_panel_json((-1.0, 0.4, -90.0))])
    change(doc)
    (tmp_path / "bad.expt").write_text(json.dumps(doc))
    run = run_cli(["--experiment", "bad.expt", "-cell", "50", "-default_F", "1"], tmp_path)
    assert run.code == 9 and message in run.err, run.err
    assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err
    with pytest.raises(InputFileError, match=message):
        config_from_experiment(str(tmp_path / "bad.expt"), ["-cell", "50", "-default_F", "1"])


def test_experiment_that_is_not_json_or_not_a_file(tmp_path):
    (tmp_path / "x.expt").write_text("{ nope")
    run = run_cli(["--experiment", "x.expt", "-cell", "50", "-default_F", "1"], tmp_path)
    assert run.code == 9 and "not JSON" in run.err
    (tmp_path / "deep.expt").write_text("[" * 100000 + "]" * 100000)
    run = run_cli(["--experiment", "deep.expt", "-cell", "50", "-default_F", "1"], tmp_path)
    assert run.code == 9 and "nested too deeply" in run.err
    os.mkfifo(tmp_path / "fifo.expt")
    run = run_cli(["--experiment", "fifo.expt", "-cell", "50", "-default_F", "1"], tmp_path)
    assert run.code == 9 and "FIFO" in run.err
    with pytest.raises(FlagError, match="must be a list of strings"):
        config_from_experiment(str(tmp_path / "x.expt"), "-N 5")


def test_series_renders_the_experiments_scan_frame_for_frame(tmp_path):
    from nbnumba_cli.series import main as series_main
    _write_expt(tmp_path, BASE + SWEEP + CASES["dials-rotated"].split())
    run = run_cli(["--experiment", "sim.expt", "-default_F", "100", "-N", "3", "-seed", "9",
                   "--frames", "2", "--template", "s_{:03d}", "-noprogress"], tmp_path,
                  entry=series_main)
    assert run.code == 0, run.err
    for i in range(2):
        phi = 10.0 + 0.5 * i
        one = run_cli(["--experiment", "sim.expt", "-default_F", "100", "-N", "3",
                       "-phi", repr(phi), "-osc", "0.5", "-floatfile", "one.bin",
                       "-nonoise", "-nopgm"], tmp_path)
        assert one.code == 0, one.err
        assert (tmp_path / "one.bin").read_bytes() == (tmp_path / f"s_{i:03d}.bin").read_bytes()


def test_truth_of_several_panels_needs_their_nxmx_file(tmp_path):
    run = run_cli(CRYSTAL + ["--detector", "pilatus6m", "-roi", "0", "3", "0", "3",
                             "-intfile", "p_00001.img", "-expt", "p.expt"], tmp_path)
    assert run.code == 9 and "add -nexus FILE.nxs" in run.err
    run = run_cli(CRYSTAL + ["--detector", "pilatus6m", "-roi", "0", "3", "0", "3",
                             "-intfile", "p_00001.img", "-xds_inp", "XDS.INP"], tmp_path)
    assert run.code == 9 and "XDS.INP describes a detector of one panel" in run.err


def test_printout_of_a_panel_pixel_is_that_panels(tmp_path):
    from nbnumba.diagnostics import pixel_report
    whole = engine.render(engine.prepare(_tile_config(tilted_tiles(n=3))))
    alone = engine.render(engine.prepare(_tile_config(DetectorPanels(
        [Panel(**{**tilted_tiles(n=3).panels[2].__dict__})]))))
    assert pixel_report(whole, 7, 64 + 5)[1:] == pixel_report(alone, 7, 5)[1:]


def test_panel_files_hold_each_panels_pixels_with_its_own_header(tmp_path):
    expt = os.path.join(os.path.dirname(__file__), "..", "examples", "eight_tiles.expt")
    flags = ["--experiment", expt, "-default_F", "100", "-N", "3", "-oversample", "1",
             "-noprogress", "-seed", "2", "-roi", "0", "255", "300", "1000"]
    whole = run_cli(flags + ["-floatfile", "whole.bin", "-intfile", "whole_00001.img"],
                    tmp_path)
    assert whole.code == 0, whole.err
    split = run_cli(flags + ["--panel-files", "-floatfile", "f.bin", "-intfile",
                             "sim_00001.img"], tmp_path)
    assert split.code == 0, split.err
    assert "sim_p00_00001.img ... sim_p07_00001.img (one file per panel)" in split.out
    image = np.fromfile(tmp_path / "whole.bin", dtype="<f4").reshape(8 * 256, 256)
    doc = json.loads(open(expt).read())
    for k in range(8):
        part = np.fromfile(tmp_path / f"f_p{k:02d}.bin", dtype="<f4").reshape(256, 256)
        assert part.tobytes() == image[256 * k:256 * (k + 1)].tobytes()
        header = (tmp_path / f"sim_p{k:02d}_00001.img").read_bytes()[:512].decode("ascii",
                                                                                 "replace")
        line = header.split("DIALS_ORIGIN=")[1].split("\n")[0].rstrip(";")
        origin = [float(x) for x in line.split(",")]
        assert origin == pytest.approx(doc["detector"][0]["panels"][k]["origin"], rel=5e-6, abs=1e-4)  # %g: six digits
        assert "SIZE1=256;" in header and "SIZE2=256;" in header
    assert image[:300].max() == 0 and image[300:1001].max() > 0      # the region of interest
    one = run_cli(CRYSTAL + ["--panel-files"], tmp_path)
    assert one.code == 9 and "--panel-files writes one file per panel" in one.err


def test_write_nexus_of_several_panels_has_one_module_each(tmp_path):
    h5py = pytest.importorskip("h5py")
    result = engine.render(engine.prepare(_tile_config(tilted_tiles(n=3))))
    nbnumba.write_nexus(str(tmp_path / "t.nxs"), result, result.image)
    with h5py.File(tmp_path / "t.nxs", "r") as h5:
        det = h5["/entry/instrument/detector"]
        modules = [k for k in det if det[k].attrs.get("NX_class") == "NXdetector_module"]
        assert len(modules) == 3
        assert [list(det[m]["data_origin"][()]) for m in modules] == [[0, 0], [32, 0], [64, 0]]
        assert list(det[modules[1]]["data_size"][()]) == [32, 48]
        assert h5["/entry/data/data"].shape == (1, 96, 48)
        assert not det["pixel_mask"][()].any()          # no gaps, everything rendered
