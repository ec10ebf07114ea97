"""Arrays in: structure factors and sources from NumPy arrays, with the C's layout and
direction convention, and checks that refuse what cannot be right (issue: library as
good as the command line)."""
import math
import pathlib
import warnings

import numpy as np
import pytest

import nbnumba
from nbnumba import SourceList, StructureFactors
from nbnumba.io import hkl, sourcefile

INPUTS = pathlib.Path(__file__).parent / "data" / "golden" / "inputs"
HKL_FILES = sorted(p.name for p in INPUTS.glob("*.hkl"))


def _config(**crystal):
    return nbnumba.SimulationConfig(
        crystal=nbnumba.CrystalConfig(cell=(70.0, 80.0, 90.0) + (math.pi / 2,) * 3,
                                      na=2, nb=2, nc=2, **crystal),
        detector=nbnumba.DetectorConfig(fpixels=12, spixels=12, pixel_size=4e-4),
        render=nbnumba.RenderConfig(oversample=1))


def _columns(name):
    indices, F = hkl.parse_hkl((INPUTS / name).read_text())
    return indices[:, 0], indices[:, 1], indices[:, 2], F


# ------------------------------------------------------------------ structure factors

@pytest.mark.parametrize("default_F", [0.0, 3.5])
@pytest.mark.parametrize("name", HKL_FILES)
def test_from_miller_is_the_hkl_files_grid_bit_for_bit(name, default_F):
    from_file = hkl.read_hkl(INPUTS / name, default_F)
    from_arrays = StructureFactors.from_miller(*_columns(name), default_F=default_F)
    assert from_arrays.grid.tobytes() == from_file.grid.tobytes()
    assert ((from_arrays.h_min, from_arrays.k_min, from_arrays.l_min, from_arrays.count)
            == (from_file.h_min, from_file.k_min, from_file.l_min, from_file.count))


@pytest.mark.parametrize("interpolate", [False, True])
def test_from_miller_renders_the_hkl_files_image_bit_for_bit(tmp_path, interpolate):
    name = "P1_small.hkl"
    config, _ = nbnumba.config_from_args(
        ["-hkl", str(INPUTS / name), "-cell", "70", "80", "90", "90", "90", "90", "-N", "2",
         "-detpixels", "12", "-pixel", "0.4", "-oversample", "1", "-misset", "10", "20", "30",
         "-interpolate" if interpolate else "-nointerpolate"])
    from_file = nbnumba.simulate(config).image
    h, k, l, F = _columns(name)
    config.crystal.structure_factors = StructureFactors.from_miller(
        list(h), k.astype(float), l, F)            # lists and integral floats are fine
    from_arrays = nbnumba.simulate(config).image
    assert from_arrays.tobytes() == from_file.tobytes()
    assert from_file.max() > 0


def test_from_miller_takes_later_duplicates_as_an_hkl_file_does():
    sf = StructureFactors.from_miller([0, 1, 0], [0, 0, 0], [0, 0, 0], [5.0, 6.0, 7.0])
    assert sf.grid[0, 0, 0] == 7.0 and sf.grid[1, 0, 0] == 6.0 and sf.count == 3


@pytest.mark.parametrize("args, words", [
    (([0.5], [0], [0], [1.0]), "integers"),
    (([0, 1], [0], [0], [1.0]), "one length"),
    (([[0]], [0], [0], [1.0]), "1-D"),
    (([0], [0], [0], [np.nan]), "finite"),
    (([], [], [], []), "no reflections"),
    ((["a"], [0], [0], [1.0]), "array of real numbers.*strings are not numbers"),
    (([2 * 10 ** 6], [0], [0], [1.0]), "within"),
])
def test_from_miller_refuses_what_is_not_a_reflection_list(args, words):
    with pytest.raises(nbnumba.ConfigError, match=words):
        StructureFactors.from_miller(*args)


def test_a_grid_without_the_padding_slice_is_refused_with_the_fix():
    padded = StructureFactors.from_miller([0, 1], [0, 1], [0, 1], [10.0, 20.0]).grid
    unpadded = padded[:-1, :-1, :-1] + 1.0          # every point holds a value
    config = _config(structure_factors=StructureFactors(unpadded, 0, 0, 0, count=2))
    with pytest.raises(nbnumba.ConfigError, match=r"padding.*np\.pad"):
        nbnumba.prepare(config)
    config.crystal.structure_factors.grid = np.pad(unpadded, ((0, 1), (0, 1), (0, 1)))
    nbnumba.prepare(config)


@pytest.mark.parametrize("change, words", [
    (dict(count=0), "count.*no grid"),
    (dict(count=2.0), "whole number"),
    (dict(grid=np.zeros((3, 3))), "3-D"),
    (dict(grid=[[[1.0]]]), "NumPy array"),
    (dict(h_min=0.5), "whole number"),
])
def test_structure_factor_fields_are_checked(change, words):
    fields = dict(grid=np.zeros((3, 3, 3)), h_min=0, k_min=0, l_min=0, count=4)
    fields.update(change)
    with pytest.raises(nbnumba.ConfigError, match=words):
        nbnumba.prepare(_config(structure_factors=StructureFactors(**fields)))


def test_a_large_grid_is_announced_before_it_is_allocated(monkeypatch):
    from nbnumba import config as config_module
    monkeypatch.setattr(config_module, "LARGE_GRID_BYTES", 1000)
    told = []
    with pytest.warns(UserWarning, match="span h -10..10, k -10..10, l 0..0: a grid of 968"):
        StructureFactors.from_miller([-10, 10], [-10, 10], [0, 0], [1.0, 2.0])
    hkl.grid_from_reflections(np.array([[-10, -10, 0], [10, 10, 0]]), np.ones(2), 0.0,
                              "x.hkl", told.append)
    assert told and "h -10..10, k -10..10, l 0..0" in told[0] and "x.hkl" in told[0]


def test_the_command_says_so_before_a_large_hkl_grid(cli, tmp_path, monkeypatch):
    from nbnumba import config as config_module
    monkeypatch.setattr(config_module, "LARGE_GRID_BYTES", 1000)
    (tmp_path / "wide.hkl").write_text("-20 0 0 1\n20 20 0 2\n")
    run = cli(["-hkl", "wide.hkl", "-cell", "100", "100", "100", "90", "90", "90",
               "-detpixels", "4", "-nopgm", "-nonoise", "-noprogress"])
    assert run.code == 0, run.err
    assert run.err.startswith("nbnumba: note: the reflections of wide.hkl span h -20..20, "
                              "k 0..20, l 0..0"), run.err
    assert "written to Fdump.bin" in run.err


def test_the_hkl_range_error_shows_plain_numbers(tmp_path):
    (tmp_path / "huge.hkl").write_text("-4000 -4000 -4000 1\n4000 4000 4000 1\n")
    with pytest.raises(nbnumba.InputFileError) as caught:
        hkl.read_hkl(tmp_path / "huge.hkl")
    assert "np." not in str(caught.value) and "h -4000..4000" in str(caught.value)


# ---------------------------------------------------------------------------- sources

def test_directions_of_travel_and_positions_give_one_image():
    travel = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.002]])      # MOSFLM beam along +x
    by_travel = SourceList.from_directions(beam_directions=travel, wavelengths=[1e-10, 1.1e-10])
    by_position = SourceList.from_positions(-10.0 * travel, wavelengths=[1e-10, 1.1e-10])
    images = []
    for sources in (by_travel, by_position):
        config = _config(default_F=100.0)
        config.beam.sources = sources
        images.append(nbnumba.simulate(config).image)
    assert np.array_equal(images[0], images[1])


def test_from_positions_renders_the_source_files_image(tmp_path):
    config, _ = nbnumba.config_from_args(
        ["-sourcefile", str(INPUTS / "two_sources.txt"), "-cell", "70", "80", "90", "90",
         "90", "90", "-default_F", "100", "-N", "2", "-detpixels", "12", "-pixel", "0.4",
         "-oversample", "1"])
    from_file = nbnumba.simulate(config).image
    table = np.loadtxt(INPUTS / "two_sources.txt")
    with pytest.warns(UserWarning, match="weights are read but not applied, as in the C"):
        config.beam.sources = SourceList.from_positions(table[:, :3], table[:, 4],
                                                        weights=table[:, 3])
        assert nbnumba.simulate(config).image.tobytes() == from_file.tobytes()


def test_a_hand_made_list_with_unequal_weights_is_noted_too():
    config = _config(default_F=100.0)
    config.beam.sources = SourceList(positions=np.array([[-1.0, 0, 0], [-1.0, 0, 1e-3]]),
                                     weights=np.array([1.0, 0.5]),
                                     wavelengths=np.array([1e-10, 1e-10]))
    with pytest.warns(UserWarning, match="not applied"):
        nbnumba.prepare(config)


def test_equal_weights_say_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SourceList.from_directions([1.0, 0.0, 0.0], 1e-10, weights=[2.0])
        SourceList.from_directions([[1.0, 0.0, 0.0]] * 2, wavelengths=None)


def test_a_direction_of_travel_given_as_a_position_is_refused_with_the_fix():
    config = _config(default_F=100.0)
    config.beam.sources = SourceList.from_positions([[1.0, 0.0, 0.0]], 1e-10)
    with pytest.raises(nbnumba.ConfigError, match=r"downstream.*from_directions"):
        nbnumba.prepare(config)


def test_source_files_keep_the_cs_freedom_of_direction():
    """The C renders a source file's source on the far side too; so does nbnumba."""
    sources = sourcefile.parse_sources("10 0 0 1 1e-10\n")
    config = _config(default_F=100.0)
    config.beam.sources = sources
    nbnumba.prepare(config)


@pytest.mark.parametrize("make, words", [
    (lambda: SourceList.from_directions([[1.0, 0.0]], 1e-10), r"shape \(n, 3\)"),
    (lambda: SourceList.from_directions([[0.0, 0.0, 0.0]], 1e-10), "zero vector"),
    (lambda: SourceList.from_directions([[1.0, 0.0, 0.0]], [1e-10, 2e-10]), "one per source"),
    (lambda: SourceList.from_directions([[1.0, 0.0, 0.0]], -1e-10), "positive"),
    (lambda: SourceList.from_directions([[np.inf, 0.0, 0.0]], 1e-10), "finite"),
    (lambda: SourceList.from_positions("x", 1e-10), "array of real numbers.*strings"),
])
def test_source_arrays_that_cannot_be_right_are_refused(make, words):
    with pytest.raises(nbnumba.ConfigError, match=words):
        make()


def test_a_hand_made_source_list_is_checked_before_rendering():
    config = _config(default_F=100.0)
    config.beam.sources = SourceList(positions=np.zeros((2, 2)), weights=np.ones(2),
                                     wavelengths=np.ones(2))
    with pytest.raises(nbnumba.ConfigError, match=r"shape \(n, 3\)"):
        nbnumba.prepare(config)
