"""-expt_images / --expt-images: the experiment files describe the images the user
processes (the noise images, the NXmx file, or files of their own), not only the
noiseless -intfile ones.

The files are read back as JSON/text here; tests/test_nexus_dials.py processes them with
DIALS when DIALS_PY is set.
"""
import json

import pytest

from conftest import run_cli
from nbnumba_cli.series import main as series_main

SMALL = ("-cell 50 50 50 90 90 90 -default_F 100 -N 2 -detpixels 16 -distance 40 -seed 1 "
         "-oversample 1 -noprogress -nopgm").split()
SERIES = SMALL + ["--frames", "3", "--frame-osc", "0.5", "--template", "out/sim_{:05d}"]


def _imageset(tmp_path, name="sim.expt"):
    expt = json.loads((tmp_path / name).read_text())
    return expt["imageset"], expt["detector"][0]["panels"][0]["pedestal"], expt


def test_the_int_image_by_default_and_the_noise_image_on_request(tmp_path):
    run = run_cli(SMALL + "-osc 0.5 -intfile sim_00001.img -noisefile noisy_00007.img "
                          "-expt sim.expt".split(), tmp_path)
    assert run.code == 0, run.err
    assert _imageset(tmp_path)[0][0]["template"] == "sim_#####.img"
    run = run_cli(SMALL + "-osc 0.5 -noisefile noisy_00007.img -expt sim.expt "
                          "-xds_inp XDS.INP -expt_images noise".split(), tmp_path)
    assert run.code == 0, run.err
    imagesets, pedestal, expt = _imageset(tmp_path)
    assert imagesets[0]["template"] == "noisy_#####.img" and pedestal == 40.0
    assert expt["scan"][0]["image_range"] == [7, 7]
    assert "NAME_TEMPLATE_OF_DATA_FRAMES= noisy_?????.img" in (tmp_path / "XDS.INP").read_text()


def test_a_file_the_user_names(tmp_path):
    run = run_cli(SMALL + "-expt sim.expt -expt_images later/still_0042.cbf".split(), tmp_path)
    assert run.code == 0, run.err
    assert _imageset(tmp_path)[0][0]["images"] == ["later/still_0042.cbf"]


def test_the_nxmx_file(tmp_path):
    run = run_cli(SMALL + "-osc 0.5 -nexus sim.nxs -expt sim.expt -expt_images nexus".split(),
                  tmp_path)
    assert run.code == 0, run.err
    imagesets, pedestal, expt = _imageset(tmp_path)
    assert imagesets == [{"__id__": "ImageSequence", "template": "sim.nxs",
                          "single_file_indices": [0], "mask": None, "gain": None,
                          "pedestal": None, "dx": None, "dy": None, "params": {}}]
    assert pedestal == 0.0     # NXmx counts carry no offset
    assert expt["scan"][0]["image_range"] == [1, 1] and expt["scan"][0]["batch_offset"] == 0


@pytest.mark.parametrize("args, message", [
    ("-nonoise -expt sim.expt -expt_images noise", "no noise image is written (-nonoise)"),
    ("-expt sim.expt -expt_images noise", "cannot read an image named 'noiseimage.img'"),
    ("-expt sim.expt -expt_images nexus", "no NXmx file is written"),
    ("-nexus s.nxs -expt sim.expt -xds_inp XDS.INP -osc 1 -expt_images nexus",
     "-xds_inp describes SMV images"),
    ("-expt sim.expt -expt_images no_number.img", "-expt_images: DIALS and XDS cannot read"),
])
def test_refused_before_rendering(tmp_path, args, message):
    run = run_cli(SMALL + args.split(), tmp_path)
    assert run.code == 9 and message in run.err and len(run.err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_series_nexus_frames(tmp_path):
    run = run_cli(SERIES + "--nexus out/sweep.nxs --expt sweep.expt --expt-images nexus".split(),
                  tmp_path, entry=series_main)
    assert run.code == 0, run.err
    imagesets, pedestal, expt = _imageset(tmp_path, "sweep.expt")
    assert [(s["template"], s["single_file_indices"]) for s in imagesets] == [
        ("out/sweep.nxs", [0, 1, 2])]
    assert pedestal == 0.0 and expt["scan"][0]["image_range"] == [1, 3]


def test_series_stills_in_one_nxmx_file(tmp_path):
    run = run_cli(SMALL + "--frames 2 --template st_{:03d} --nexus st.nxs --expt st.expt "
                          "--expt-images nexus".split(), tmp_path, entry=series_main)
    assert run.code == 0, run.err
    imagesets, _, expt = _imageset(tmp_path, "st.expt")
    assert [(s["images"], s["single_file_indices"]) for s in imagesets] == [
        (["st.nxs"], [0]), (["st.nxs"], [1])]
    assert [e["imageset"] for e in expt["experiment"]] == [0, 1]


def test_series_noise_frames_for_xds_and_a_template_of_the_users(tmp_path):
    run = run_cli(SERIES + "--xds-inp XDS.INP --expt-images noise".split(), tmp_path,
                  entry=series_main)
    assert run.code == 0, run.err
    assert ("NAME_TEMPLATE_OF_DATA_FRAMES= out/sim_?????_noise.img"
            in (tmp_path / "XDS.INP").read_text())
    run = run_cli(SERIES + ["--resume", "--expt", "s.expt", "--expt-images",
                            "later/x_{:04d}.img"], tmp_path, entry=series_main)
    assert run.code == 0, run.err
    assert _imageset(tmp_path, "s.expt")[0][0]["template"] == "later/x_####.img"


@pytest.mark.parametrize("which, message", [
    ("noise", "the series' noise frames end in _noise.img"),
    ("nexus", "no NXmx file is written"),
    ("x_{:04d}_y.img", "cannot read an image named 'x_0000_y.img'"),
    ("x_{:04d}.img_{:d}", "one frame-number field"),
    ("x_{}_{}.img", "one frame-number field"),
])
def test_series_refusals(tmp_path, which, message):
    run = run_cli(SERIES + ["--expt", "s.expt", "--expt-images", which], tmp_path,
                  entry=series_main)
    assert run.code == 9 and message in run.err and len(run.err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
