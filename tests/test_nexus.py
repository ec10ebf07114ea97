"""NXmx (NeXus/HDF5) output: -nexus, --nexus and nbnumba.write_nexus.

The files are read back with h5py alone: the NXmx fields, the position of every pixel
from the detector's depends_on chain (NeXus transformation algebra) against nbnumba's own
geometry, the sample's rotation chain, and the data against the SMV images.
"""
import json
import math
import os
import sys

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from conftest import run_cli  # noqa: E402
from test_experiment_files import (CASES, SMALL, _all_pixels, _basis,  # noqa: E402
                                   _image, _nbnumba_positions, _rotation_axis)

import nbnumba  # noqa: E402
from nbnumba import series  # noqa: E402
from nbnumba.io import nexus  # noqa: E402
from nbnumba.io.smv import read_smv  # noqa: E402
from nbnumba_cli.series import main as series_main  # noqa: E402

try:
    import hdf5plugin  # noqa: F401  (reading bitshuffle-LZ4 needs its filter)
except ImportError:  # pragma: no cover - without it the files are gzip
    hdf5plugin = None


# --------------------------------------------------------------------- NeXus algebra


def _text(ds):
    value = ds[()] if isinstance(ds, h5py.Dataset) else ds
    return value.decode() if isinstance(value, bytes) else str(value)


def _matrix(ds, value):
    """4x4 matrix of one transformation at ``value`` (NeXus: translation or rotation
    about ``vector``, after the ``offset``), lengths in metres, angles in degrees."""
    scale = {"mm": 1e-3, "m": 1.0, "deg": 1.0}
    units = _text(ds.attrs["units"])
    vector = np.asarray(ds.attrs["vector"], float)
    vector = vector / np.linalg.norm(vector)
    m = np.eye(4)
    if _text(ds.attrs["transformation_type"]) == "translation":
        m[:3, 3] = vector * value * scale[units]
    else:
        a = math.radians(value)
        k = np.array([[0, -vector[2], vector[1]], [vector[2], 0, -vector[0]],
                      [-vector[1], vector[0], 0]])
        m[:3, :3] = np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k
    if "offset" in ds.attrs:
        m[:3, 3] += np.asarray(ds.attrs["offset"], float) * scale[_text(ds.attrs["offset_units"])]
    return m


def _chain(h5, path):
    """The cumulative matrix of the chain starting at ``path`` (first applied last)."""
    total = np.eye(4)
    while path != ".":
        ds = h5[path]
        value = ds[()]
        total = total @ _matrix(ds, float(np.ravel(value)[0]))
        path = _text(ds.attrs["depends_on"])
    return total


def _pixel_positions(h5, f, s):
    """Centres of pixels (f, s) from the module's chains (m, the file's frame)."""
    module = h5["/entry/instrument/detector/module"]
    fast, slow = module["fast_pixel_direction"], module["slow_pixel_direction"]
    base = _chain(h5, _text(fast.attrs["depends_on"]))
    origin = base @ np.r_[np.asarray(fast.attrs["offset"]) * 1e-3, 1.0]
    step = {}
    for name, ds in (("f", fast), ("s", slow)):
        step[name] = base[:3, :3] @ (_matrix(ds, float(ds[()]))[:3, 3]
                                     - np.asarray(ds.attrs["offset"]) * 1e-3)
    f, s = np.asarray(f, float)[..., None], np.asarray(s, float)[..., None]
    return origin[:3] + (f + 0.5) * step["f"] + (s + 0.5) * step["s"]


def _master(tmp_path, case, frames=None):
    setup, image = _image(tmp_path, CASES[case])
    if frames is None:
        frames = np.arange(setup.spixels * setup.fpixels, dtype=np.uint16).reshape(
            1, setup.spixels, setup.fpixels)
    path = tmp_path / "sim.nxs"
    path.write_bytes(nexus.master_bytes([image], frames=frames, start_time=0, end_time=1))
    return setup, image, h5py.File(path, "r")


# --------------------------------------------------------------------- geometry


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_pixel_from_the_chain_matches_nbnumba(tmp_path, case):
    setup, image, h5 = _master(tmp_path, case)
    with h5:
        omega = h5["/entry/sample/transformations/omega"]
        axis = np.asarray(omega.attrs["vector"])
        # the NeXus (McStas) frame: the beam travels along +z
        beam = np.array([0.0, 0.0, 1.0])
        f, s = _all_pixels(setup)
        from_file = _pixel_positions(h5, f, s) @ _basis(beam, axis).T
        own = (_nbnumba_positions(setup, f, s)
               @ _basis(setup.geometry.beam, _rotation_axis(setup)).T)
        assert np.max(np.abs(from_file - own)) < 1e-9
        # the axis keeps its angle to the beam
        assert axis @ beam == pytest.approx(np.dot(setup.geometry.beam, _rotation_axis(setup)),
                                            abs=1e-12)
        assert _text(h5["/entry/sample/depends_on"]) == omega.name
        assert _text(omega.attrs["transformation_type"]) == "rotation"
        assert omega[()] == pytest.approx([10.0])
        assert h5["/entry/sample/transformations/omega_end"][()] == pytest.approx([10.5])
        det = h5["/entry/instrument/detector"]
        depends = _text(det["depends_on"])
        assert depends == "/entry/instrument/detector/transformations/det_z"
        # det_z is along the detector normal: the closest distance of the plane
        normal = np.cross(setup.geometry.fdet, setup.geometry.sdet)
        close = abs(np.dot(setup.geometry.pix0, normal))
        assert float(h5[depends][()]) * 1e-3 == pytest.approx(close, abs=1e-12)


def test_nxmx_fields(tmp_path):
    setup, image, h5 = _master(tmp_path, "mosflm-rotated")
    with h5:
        assert _text(h5["/entry/definition"]) == "NXmx"
        assert h5["/entry"].attrs["NX_class"] == "NXentry"
        assert _text(h5["/entry"].attrs["version"]) == "1.0"   # on the entry, as NXmx says
        assert "version" not in h5["/entry/definition"].attrs
        assert _text(h5["/entry/start_time"]) == "1970-01-01T00:00:00Z"
        assert _text(h5["/entry/end_time"]) == "1970-01-01T00:00:01Z"
        classes = {"instrument": "NXinstrument", "instrument/beam": "NXbeam",
                   "instrument/detector": "NXdetector", "sample": "NXsample",
                   "instrument/detector/module": "NXdetector_module",
                   "instrument/detector/transformations": "NXtransformations",
                   "instrument/detector_group": "NXdetector_group",
                   "sample/transformations": "NXtransformations", "data": "NXdata",
                   "source": "NXsource"}
        for path, nx_class in classes.items():
            assert h5["/entry/" + path].attrs["NX_class"] == nx_class
        assert _text(h5["/entry/source/probe"]) == "x-ray"
        assert _text(h5["/entry/instrument/time_zone"]) == nexus.UTC_OFFSET
        group = h5["/entry/instrument/detector_group"]
        assert [_text(n) for n in group["group_names"][()]] == ["detector"]
        assert list(group["group_index"][()]) == [1] and list(group["group_parent"][()]) == [-1]
        beam = h5["/entry/instrument/beam"]
        assert beam["incident_wavelength"][()] == pytest.approx(1.2)
        assert _text(beam["incident_wavelength"].attrs["units"]) == "angstrom"
        assert beam["total_flux"][()] == image.flux
        assert list(beam["incident_beam_size"][()]) == [1e-4, 1e-4]   # -beamsize 0.1 mm
        assert _text(beam["profile"]) == "rectangular"
        assert beam["incident_polarization_stokes"].shape == (1, 4)
        det = h5["/entry/instrument/detector"]
        assert det["x_pixel_size"][()] == det["y_pixel_size"][()] == pytest.approx(2e-4)
        assert _text(det["sensor_material"]) == "Si"
        assert det["sensor_thickness"][()] == nexus.THINNEST_SENSOR   # none simulated
        assert det["saturation_value"][()] == 65534 and det["underload_value"][()] == 0
        assert det["bit_depth_readout"][()] == 16
        assert "pedestal" not in det          # NXmx counts carry no offset
        assert bool(det["distance_derived"][()]) is True
        assert det["pixel_mask"].dtype == np.int32 and not det["pixel_mask"][()].any()
        assert list(det["module/data_size"][()]) == [20, 24]
        data = h5["/entry/data/data"]
        assert det["data"] == data            # one dataset, linked from the detector
        assert data.shape == (1, 20, 24) and data.dtype == np.uint16
        assert data.chunks == (1, 20, 24)
        expected = "32008" if hdf5plugin is not None else "gzip"   # bitshuffle's filter id
        assert expected in data._filters
        assert np.array_equal(data[0], np.arange(480).reshape(20, 24))
        # the beam centre: where the beam meets the plane, in pixels from the corner
        bx, by = det["beam_center_x"][()], det["beam_center_y"][()]
        hit = _pixel_positions(h5, bx - 0.5, by - 0.5)
        assert np.linalg.norm(np.cross(hit, (0, 0, 1))) < 1e-12
        assert det["distance"][()] == pytest.approx(np.linalg.norm(hit), abs=1e-12)


def _stokes_of_expt(expt):
    """The Stokes vector (NeXus frame) of an .expt beam's polarization normal and
    fraction: the E-vector lies in the plane of the beam, perpendicular to the normal;
    the NeXus frame is DIALS' turned by 180 degrees about y."""
    beam = expt["beam"][0]
    normal = np.array(beam["polarization_normal"])
    e_vector = np.cross(normal, beam["direction"]) * (-1, 1, -1)
    psi = math.atan2(e_vector[1], e_vector[0])
    degree = 2 * beam["polarization_fraction"] - 1
    return [1.0, degree * math.cos(2 * psi), degree * math.sin(2 * psi), 0.0]


@pytest.mark.parametrize("polar", ["", "-polar 0.8 -polar_vector 0.3 1 0.2",
                                   "-polar -0.4 -polar_vector 0 0 1", "-nopolar"])
def test_polarization_is_the_simulated_one(tmp_path, polar):
    args = (SMALL + "-osc 0.5 -intfile sim_00001.img -expt sim.expt -nexus sim.nxs".split()
            + polar.split())
    run = run_cli(args, tmp_path)
    assert run.code == 0, run.err
    expt = json.loads((tmp_path / "sim.expt").read_text())
    with h5py.File(tmp_path / "sim.nxs", "r") as h5:
        stokes = h5["/entry/instrument/beam/incident_polarization_stokes"][()]
    assert stokes.shape == (1, 4)
    # Stokes vectors are equal up to the sign of the normal (psi and psi + 180 degrees)
    assert stokes[0] == pytest.approx(_stokes_of_expt(expt), abs=1e-12)
    if not polar:   # the C's default: unpolarized
        assert stokes[0] == pytest.approx([1, 0, 0, 0], abs=1e-15)


def test_pixel_mask_flags_the_pixels_not_rendered(tmp_path):
    mask = np.ones((16, 16), np.uint16)
    mask[3, 4] = mask[10, 12] = 0
    nbnumba.write_smv_image(nbnumba.simulate(nbnumba.config_from_args(
        SMALL, cwd=str(tmp_path))[0]), str(tmp_path / "mask.img"), mask)
    run = run_cli(SMALL + "-roi 2 13 1 14 -mask mask.img -nexus sim.nxs".split(), tmp_path)
    assert run.code == 0, run.err
    expected = np.full((16, 16), nexus.USER_MASK_BIT, np.int32)
    expected[1:15, 2:14] = 0
    expected[3, 4] = expected[10, 12] = nexus.USER_MASK_BIT
    with h5py.File(tmp_path / "sim.nxs", "r") as h5:
        assert np.array_equal(h5["/entry/instrument/detector/pixel_mask"][()], expected)


def test_sensor_thickness_and_attenuation(tmp_path):
    setup, image = _image(tmp_path, CASES["mosflm"] + " -detector_thick 300 -detector_abs 500")
    path = tmp_path / "s.nxs"
    path.write_bytes(nexus.master_bytes([image], frames=np.zeros((1, 20, 24), np.uint16)))
    with h5py.File(path, "r") as h5:
        det = h5["/entry/instrument/detector"]
        assert det["sensor_thickness"][()] == pytest.approx(3e-4)
        assert det["sensor_attenuation_length"][()] == pytest.approx(500e-6)   # -detector_abs (um)


def test_gzip_without_hdf5plugin(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "hdf5plugin", None)
    assert nexus.compression()[0] == "gzip"
    _, _, h5 = _master(tmp_path, "mosflm")
    with h5:
        assert "gzip" in h5["/entry/data/data"]._filters


# ---------------------------------------------------------- bitshuffle-LZ4 chunks


def _filter_chunk(pixels):
    """The chunk HDF5's bitshuffle-LZ4 filter stores for ``pixels`` (one chunk)."""
    import io
    with h5py.File(io.BytesIO(), "w") as h5:
        ds = h5.create_dataset("d", data=pixels, chunks=pixels.shape,
                               **nexus.compression()[1])
        mask, chunk = ds.id.read_direct_chunk((0,) * pixels.ndim)
    assert mask == 0
    return bytes(chunk)


def _frame_file(pixels):
    import io
    h5 = h5py.File(io.BytesIO(nexus.frame_file_bytes(pixels)), "r")
    return h5, h5["/entry/data/data"]


@pytest.mark.skipif(hdf5plugin is None, reason="bitshuffle-LZ4 needs hdf5plugin")
@pytest.mark.parametrize("shape, dtype", [((1024, 1024), np.uint16), ((37, 129), np.uint16),
                                          ((3, 5), np.uint16), ((301, 257), np.float32),
                                          ((64, 100), np.int32)])
def test_direct_chunks_are_the_filters_bytes(shape, dtype):
    from nbnumba.io import bitshuffle
    assert bitshuffle.available()       # the functions of hdf5plugin's wheel are found
    rng = np.random.default_rng(7)
    pixels = (rng.poisson(3.0, size=shape) + 40).astype(dtype)
    pixels.flat[::997] = rng.integers(0, 60000, size=pixels.flat[::997].shape)
    expected = _filter_chunk(pixels)
    for threads in (1, 2, 3, 4):
        assert bitshuffle.compress_lz4(pixels, threads=threads) == expected


@pytest.mark.skipif(hdf5plugin is None, reason="bitshuffle-LZ4 needs hdf5plugin")
@pytest.mark.parametrize("direct", [True, False], ids=["direct", "missing-functions"])
def test_frame_file_reads_back_through_the_filter(direct, monkeypatch):
    from nbnumba.io import bitshuffle
    if not direct:     # hdf5plugin without the functions: HDF5's filter compresses
        monkeypatch.setitem(bitshuffle._state, "loaded", True)
        monkeypatch.setitem(bitshuffle._state, "lib", None)
        assert not bitshuffle.available()
    calls = []
    submit = bitshuffle.submit_lz4
    monkeypatch.setattr(bitshuffle, "submit_lz4", lambda *a: calls.append(1) or submit(*a))
    rng = np.random.default_rng(3)
    for mean in (5.0, 500.0):     # the second file holds its own frame, not the first's
        pixels = (rng.poisson(mean, size=(200, 300)) + 40).astype(np.uint16)
        h5, ds = _frame_file(pixels)
        with h5:
            assert "32008" in ds._filters
            assert ds.shape == (1, 200, 300) and ds.dtype == np.uint16
            assert np.array_equal(ds[0], pixels)        # decoded by hdf5plugin's filter
            assert bytes(ds.id.read_direct_chunk((0, 0, 0))[1]) == _filter_chunk(
                pixels[None])
    assert len(calls) == (2 if direct else 0)


@pytest.mark.skipif(hdf5plugin is None, reason="bitshuffle-LZ4 needs hdf5plugin")
def test_functions_that_disagree_with_the_filter_are_not_used(monkeypatch):
    from nbnumba.io import bitshuffle
    monkeypatch.setitem(bitshuffle._state, "loaded", False)
    monkeypatch.setitem(bitshuffle._state, "lib", None)
    monkeypatch.setattr(bitshuffle, "_filter_chunk", lambda array: b"another format")
    assert not bitshuffle.available()
    pixels = np.arange(5000, dtype=np.uint16).reshape(50, 100)
    h5, ds = _frame_file(pixels)
    with h5:
        assert np.array_equal(ds[0], pixels)


@pytest.mark.skipif(hdf5plugin is None, reason="bitshuffle-LZ4 needs hdf5plugin")
def test_write_nexus_frames_are_direct_chunks_the_filter_reads(tmp_path):
    cfg, _ = nbnumba.config_from_args(SMALL + ["-osc", "0.5"], cwd=str(tmp_path))
    result = nbnumba.simulate(cfg)
    frames = [nbnumba.make_noise_image(result, seed=s).pixels for s in (1, 2)]
    nbnumba.write_nexus(str(tmp_path / "two.nxs"), [result, result], frames)
    with h5py.File(tmp_path / "two.nxs", "r") as h5:
        ds = h5["/entry/data/data"]
        assert ds.chunks == (1,) + frames[0].shape and "32008" in ds._filters
        for i, frame in enumerate(frames):
            assert np.array_equal(ds[i], frame)
            assert bytes(ds.id.read_direct_chunk((i, 0, 0))[1]) == _filter_chunk(
                frame[None])


# --------------------------------------------------------------------- the library


def test_write_nexus_counts_and_float(tmp_path):
    cfg, _ = nbnumba.config_from_args(SMALL + ["-osc", "0.5"], cwd=str(tmp_path))
    results = [nbnumba.simulate(cfg)]
    counts = nbnumba.make_noise_image(results[0], seed=3, adc=0)
    with_offset = nbnumba.make_noise_image(results[0], seed=3)          # -adc 40
    assert np.array_equal(with_offset.pixels.astype(int) - 40, counts.pixels)
    nbnumba.write_nexus(str(tmp_path / "c.nxs"), results, [counts.pixels])
    nbnumba.write_nexus(str(tmp_path / "o.nxs"), results, [with_offset.pixels], adc=40)
    nbnumba.write_nexus(str(tmp_path / "f.nxs"), results[0], results[0].image)
    with h5py.File(tmp_path / "c.nxs", "r") as c, h5py.File(tmp_path / "f.nxs", "r") as f, \
            h5py.File(tmp_path / "o.nxs", "r") as o:
        assert np.array_equal(c["/entry/data/data"][0], counts.pixels)
        assert np.array_equal(o["/entry/data/data"][0], counts.pixels)   # offset removed
        assert f["/entry/data/data"].dtype == np.float32
        assert np.array_equal(f["/entry/data/data"][0], results[0].image)
        assert "saturation_value" not in f["/entry/instrument/detector"]
        assert f["/entry/instrument/detector/bit_depth_readout"][()] == 32
    with pytest.raises(nbnumba.ConfigError, match="one image per result"):
        nbnumba.write_nexus(str(tmp_path / "x.nxs"), results, [])
    with pytest.raises(nbnumba.ConfigError, match="float images"):
        nbnumba.write_nexus(str(tmp_path / "x.nxs"), results, [results[0].image], adc=40)
    with pytest.raises(nbnumba.io.atomic.OutputError, match="it is a directory"):
        nbnumba.write_nexus(str(tmp_path), results, [counts.pixels])


def test_without_offset_keeps_overloads_and_stops_at_zero():
    pixels = np.array([0, 39, 40, 41, 65534, 65535], np.uint16)
    assert list(nexus.without_offset(pixels, 40)) == [0, 0, 0, 1, 65494, 65535]
    assert nexus.without_offset(pixels, 40).dtype == np.uint16


# --------------------------------------------------------------------- the commands


def _counts_of(smv_path, adc=40):
    """An SMV image's counts without the -adc offset (none of these images overloads)."""
    smv = read_smv(str(smv_path))
    assert smv.data.max() < 65535 and smv.data.min() >= adc
    return smv.data.astype(np.int64) - adc


def test_nbnumba_nexus_holds_the_noise_counts_and_changes_no_smv(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    args = SMALL[:-1] + ["-osc", "0.5", "-seed", "5"]   # with noise
    plain = run_cli(args, tmp_path / "a")
    both = run_cli(args + ["-nexus", "sim.nxs"], tmp_path / "b")
    assert plain.code == 0 and both.code == 0, both.err
    for name in ("intimage.img", "noiseimage.img", "floatimage.bin"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # the same Poisson deviates, without the SMV image's +40
    with h5py.File(tmp_path / "b" / "sim.nxs", "r") as h5:
        assert np.array_equal(h5["/entry/data/data"][0].ravel(),
                              _counts_of(tmp_path / "b" / "noiseimage.img"))


def test_nbnumba_nexus_without_noise_holds_the_int_counts(tmp_path):
    run = run_cli(SMALL + ["-nexus", "sim.nxs", "-adc", "12"], tmp_path)
    assert run.code == 0, run.err
    with h5py.File(tmp_path / "sim.nxs", "r") as h5:
        assert np.array_equal(h5["/entry/data/data"][0].ravel(),
                              _counts_of(tmp_path / "intimage.img", adc=12))


@pytest.mark.parametrize("target, message", [
    ("{dir}", "it is a directory"),
    ("nodir/x.nxs", "does not exist"),
    ("/dev/full", "No space left on device"),
])
def test_nbnumba_nexus_bad_targets(tmp_path, target, message):
    old = tmp_path / "noiseimage.img"
    old.write_bytes(b"old")
    run = run_cli(SMALL[:-1] + ["-nexus", target.format(dir=tmp_path)], tmp_path)
    assert run.code == 9 and message in run.err and len(run.err.splitlines()) == 1
    assert old.read_bytes() == b"old"                   # nothing replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noiseimage.img"]


def test_nexus_refused_before_rendering_without_h5py(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    run = run_cli(SMALL + ["-nexus", "sim.nxs"], tmp_path)
    assert run.code == 9 and "pip install 'nbnumba[hdf5]'" in run.err
    assert "nbnumba -" not in run.out        # the banner comes after the checks
    assert list(tmp_path.iterdir()) == []
    run = run_cli(SMALL + ["--frames", "2", "--nexus", "s.nxs"], tmp_path, entry=series_main)
    assert run.code == 9 and "pip install 'nbnumba[hdf5]'" in run.err
    assert list(tmp_path.iterdir()) == []


def test_nbnumba_nexus_refuses_a_curved_detector(tmp_path):
    run = run_cli(SMALL + ["-curved_det", "-nexus", "x.nxs"], tmp_path)
    assert run.code == 9 and "NXmx cannot describe it" in run.err
    assert list(tmp_path.iterdir()) == []


SERIES = SMALL[:-1] + ["-phi", "5", "--frames", "3", "--frame-osc", "0.5", "--template",
                       "out/sim_{:05d}", "--nexus", "sweep.nxs"]


def test_series_master_links_every_frame(tmp_path):
    run = run_cli(SERIES, tmp_path, entry=series_main)
    assert run.code == 0, run.err
    with h5py.File(tmp_path / "sweep.nxs", "r") as h5:
        data = h5["/entry/data/data"]
        assert data.is_virtual and data.shape == (3, 16, 16)
        assert [s.file_name for s in data.virtual_sources()] == [
            "out/sim_%05d.h5" % i for i in range(3)]
        for i in range(3):   # the noise frames' counts, without their -adc offset
            assert np.array_equal(data[i].ravel(),
                                  _counts_of(tmp_path / "out" / ("sim_%05d_noise.img" % i)))
        omega = h5["/entry/sample/transformations/omega"]
        assert omega[()] == pytest.approx([5.0, 5.5, 6.0])
        assert h5["/entry/sample/transformations/omega_increment_set"][()] == \
            pytest.approx([0.5] * 3)
    # readable from any working directory: the links are relative to the master
    os.chdir("/")
    with h5py.File(tmp_path / "sweep.nxs", "r") as h5:
        assert h5["/entry/data/data"][2].sum() > 0


def test_series_resume_keeps_frames_and_refuses_another_frame_count(tmp_path):
    assert run_cli(SERIES, tmp_path, entry=series_main).code == 0
    frame = (tmp_path / "out" / "sim_00001.h5").read_bytes()
    again = run_cli(SERIES + ["--resume"], tmp_path, entry=series_main)
    assert again.code == 0 and "3 skipped" in again.out, again.err
    master = (tmp_path / "sweep.nxs").read_bytes()
    assert (tmp_path / "out" / "sim_00001.h5").read_bytes() == frame
    more = [("4" if a == "3" else a) for a in SERIES] + ["--resume"]
    run = run_cli(more, tmp_path, entry=series_main)
    assert run.code == 9 and len(run.err.splitlines()) == 1
    assert "a sweep of 3 frames, this run asks for 4" in run.err
    assert not (tmp_path / "out" / "sim_00003.h5").exists()
    assert (tmp_path / "sweep.nxs").read_bytes() == master


def test_series_frames_are_written_by_the_dask_workers(tmp_path):
    pytest.importorskip("distributed")
    run = run_cli(SERIES + ["--workers", "2", "--manifest", "m.json"], tmp_path,
                  entry=series_main)
    assert run.code == 0, run.err
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert all(not f["worker"].endswith(":%d" % os.getpid()) for f in manifest["frames"])
    assert all(any(p.endswith(".h5") for p in f["files"]) for f in manifest["frames"])
    with h5py.File(tmp_path / "sweep.nxs", "r") as h5:
        for i in range(3):
            assert np.array_equal(h5["/entry/data/data"][i].ravel(),
                                  _counts_of(tmp_path / "out" / ("sim_%05d_noise.img" % i)))


def test_series_failed_frame_leaves_no_master_and_resume_completes(tmp_path, monkeypatch):
    marker = tmp_path / "markers"
    marker.mkdir()
    monkeypatch.setenv(series.FAULT_ENV, json.dumps(
        {"frames": [1], "stage": "write", "marker": str(marker)}))
    run = run_cli(SERIES, tmp_path, entry=series_main)
    assert run.code == 9 and "frames failed; the first, frame 1," in run.err
    assert not (tmp_path / "sweep.nxs").exists()
    assert sorted(p.name for p in (tmp_path / "out").glob("sim_00001*")) == []
    monkeypatch.delenv(series.FAULT_ENV)
    run = run_cli(SERIES + ["--resume"], tmp_path, entry=series_main)
    assert run.code == 0 and "2 skipped" in run.out, run.err
    with h5py.File(tmp_path / "sweep.nxs", "r") as h5:
        assert h5["/entry/data/data"][1].sum() > 0


def test_nexus_float_holds_the_float_image(tmp_path):
    run = run_cli(SMALL + ["-nexus", "sim.nxs", "-nexus_float"], tmp_path)
    assert run.code == 0, run.err
    floats = np.fromfile(tmp_path / "floatimage.bin", dtype="<f4")
    with h5py.File(tmp_path / "sim.nxs", "r") as h5:
        data = h5["/entry/data/data"]
        assert data.dtype == np.float32 and np.array_equal(data[0].ravel(), floats)
    run = run_cli(SERIES + ["-nexus_float"], tmp_path, entry=series_main)
    assert run.code == 0, run.err
    with h5py.File(tmp_path / "sweep.nxs", "r") as h5:
        data = h5["/entry/data/data"]
        assert data.dtype == np.float32
        assert np.array_equal(data[2].ravel(),
                              np.fromfile(tmp_path / "out" / "sim_00002.bin", dtype="<f4"))


def test_several_wavelengths_are_a_spectrum(tmp_path):
    run = run_cli(SMALL + ["-dispersion", "10", "-dispsteps", "5", "-lambda", "1.5",
                           "-nexus", "sim.nxs"], tmp_path)
    assert run.code == 0, run.err
    with h5py.File(tmp_path / "sim.nxs", "r") as h5:
        beam = h5["/entry/instrument/beam"]
        assert beam["incident_wavelength"][()] == pytest.approx(1.5)
        assert _text(beam["incident_wavelength"].attrs["variant"]) == \
            "incident_wavelength_spectrum"
        spectrum = beam["incident_wavelength_spectrum"][()]
        assert len(spectrum) == 5 and spectrum.min() < 1.5 < spectrum.max()
        assert spectrum.max() - spectrum.min() <= 0.10 * 1.5 + 1e-12   # -dispersion 10 (%)
        assert beam["incident_wavelength_spectrum_weights"][()] == pytest.approx([0.2] * 5)
    run = run_cli(SMALL + ["-nexus", "one.nxs"], tmp_path)
    with h5py.File(tmp_path / "one.nxs", "r") as h5:
        assert "incident_wavelength_spectrum" not in h5["/entry/instrument/beam"]


def test_stills_with_their_own_orientations_share_one_file(tmp_path):
    run = run_cli(SMALL + ["--frames", "2", "--orientation-seed", "4", "--template",
                           "st_{:03d}", "--nexus", "stills.nxs"], tmp_path, entry=series_main)
    assert run.code == 0, run.err
    with h5py.File(tmp_path / "stills.nxs", "r") as h5:
        assert h5["/entry/data/data"].shape == (2, 16, 16)
        assert list(h5["/entry/sample/transformations/omega_increment_set"][()]) == [0, 0]


@pytest.mark.parametrize("target, message, rendered", [
    ("{dir}", "is a directory", False),
    ("/dev/full", "No space left on device", False),
])
def test_series_nexus_bad_targets(tmp_path, target, message, rendered):
    args = [a if a != "sweep.nxs" else target.format(dir=tmp_path) for a in SERIES]
    run = run_cli(args, tmp_path, entry=series_main)
    assert run.code == 9 and message in run.err and len(run.err.splitlines()) == 1
    # refused before rendering, or (the disk full at the end) the frames kept for --resume
    assert (tmp_path / "out").exists() == rendered
    if rendered:
        assert len(list((tmp_path / "out").glob("sim_*.h5"))) == 3


def test_existing_nexus_file_is_replaced_whole_or_kept(tmp_path):
    old = tmp_path / "sim.nxs"
    old.write_bytes(b"old")
    run = run_cli(SMALL + ["-nexus", "sim.nxs"], tmp_path)
    assert run.code == 0, run.err
    assert h5py.is_hdf5(old)                       # replaced, like the other outputs
    for p in tmp_path.iterdir():
        p.unlink()
    old.write_bytes(b"old")
    old.chmod(0o444)                               # read-only: refused, also for root
    run = run_cli(SMALL + ["-nexus", "sim.nxs"], tmp_path)
    assert run.code == 9 and "read-only" in run.err and len(run.err.splitlines()) == 1
    assert old.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "sim.nxs"]
