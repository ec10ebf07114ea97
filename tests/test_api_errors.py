"""Errors from the library: one family (``nbnumba.NbnumbaError``), the field, its unit and
the expected type in the message, and nothing else escapes for bad input; no hidden
state (``./Fdump.bin`` only when asked; ``simulate`` writes nothing)."""
import dataclasses
import math
import os
import signal
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import nbnumba
import nbnumba.flags
from nbnumba.io import fdump

SECTIONS = (("beam", nbnumba.BeamConfig), ("detector", nbnumba.DetectorConfig),
            ("crystal", nbnumba.CrystalConfig), ("render", nbnumba.RenderConfig))
FIELDS = [(section, f.name) for section, cls in SECTIONS for f in dataclasses.fields(cls)]


def small():
    return nbnumba.SimulationConfig(
        crystal=nbnumba.CrystalConfig(cell=(50.0, 50.0, 50.0) + (math.pi / 2,) * 3,
                                      default_F=10.0, na=2, nb=2, nc=2),
        detector=nbnumba.DetectorConfig(fpixels=6, spixels=6))


def test_the_family():
    for cls in (nbnumba.ConfigError, nbnumba.FlagError, nbnumba.InputFileError,
                nbnumba.OutputError, nbnumba.DeviceError):
        assert issubclass(cls, nbnumba.NbnumbaError)
    assert issubclass(nbnumba.FlagError, nbnumba.ConfigError)
    # the older built-in bases still catch them
    assert issubclass(nbnumba.ConfigError, ValueError)
    assert issubclass(nbnumba.OutputError, OSError)


def test_a_misspelt_flag_is_a_config_error():
    with pytest.raises(nbnumba.ConfigError, match=r"unknown flag '-distnce' \(did you mean "
                                                  r"-distance\?\)"):
        nbnumba.config_from_args(["-distnce", "100"])
    with pytest.raises(nbnumba.NbnumbaError):
        nbnumba.config_from_args(["-cell", "1", "-hkl", "/nonexistent.hkl"])
    with pytest.raises(nbnumba.ConfigError, match="list of strings"):
        nbnumba.config_from_args("-distance 100")


#: (section, field, value, words the message must contain)
HOSTILE = [
    ("detector", "distance", "0.1", "detector.distance [m] must be a real number (float)"),
    ("beam", "wavelength", None, "beam.wavelength [m] must be a real number"),
    ("crystal", "na", "3", "crystal.na [unit cells] must be a whole number (int)"),
    ("crystal", "cell", "abc", "crystal.cell [Angstrom, Angstrom, Angstrom, rad, rad, rad] "
                               "must be a sequence of 6"),
    ("detector", "fpixels", 32.5, "detector.fpixels [pixels] must be a whole number"),
    ("detector", "distance", float("nan"), "must be a finite number"),
    ("detector", "curved", "yes", "True or False"),
    ("detector", "convention", "mosflm", "one of MOSFLM"),
    ("crystal", "misset", "randm", "\"random\""),
    ("crystal", "mosaic_seed", 2 ** 70, "seed"),
    ("render", "roi", (1, 2, 3), "render.roi [pixels]"),
    ("beam", "sources", [[1, 0, 0]], "SourceList"),
    ("crystal", "structure_factors", np.zeros((3, 3, 3)), "StructureFactors"),
    ("detector", "distance", 1e-320, "sub-pixels"),
    ("detector", "fdet_vector", (1, 0), "sequence of 3"),
]


@pytest.mark.parametrize("section, name, value, words", HOSTILE,
                         ids=[f"{n}={v!r}"[:30] for _, n, v, _ in HOSTILE])
def test_hostile_values_are_config_errors_naming_field_unit_and_type(section, name, value,
                                                                      words):
    config = small()
    setattr(getattr(config, section), name, value)
    with pytest.raises(nbnumba.ConfigError) as caught:
        nbnumba.prepare(config)
    assert words in str(caught.value)


@pytest.mark.parametrize("call, words", [
    (lambda: nbnumba.simulate(None), "must be a SimulationConfig"),
    (lambda: nbnumba.prepare("cfg"), "must be a SimulationConfig"),
    (lambda: nbnumba.make_noise_image(None, seed=1), "must be a Result"),
])
def test_wrong_objects_are_config_errors(call, words):
    with pytest.raises(nbnumba.ConfigError, match=words):
        call()


def test_odd_values_the_c_renders_are_rendered():
    """By the degenerate-input policy: a negative cell count (as -N -5), cell angles of 0
    (the C's 'not given': 90 degrees) and fpixels=0 (from size_f) render."""
    config = small()
    config.crystal.na = -1
    config.crystal.cell = (50.0, 50.0, 50.0, 0.0, 0.0, 0.0)
    config.detector.fpixels = 0
    config.detector.size_f = 6e-4
    result = nbnumba.simulate(config)
    assert result.image.shape == (6, 6) and np.all(np.isfinite(result.image))


def test_noise_seed_beyond_64_bits_is_refused():
    result = nbnumba.simulate(small())
    with pytest.raises(nbnumba.ConfigError, match=r"seed \[seed\] must be an int"):
        nbnumba.make_noise_image(result, seed=2 ** 70)
    with pytest.raises(nbnumba.ConfigError, match="whole number"):
        nbnumba.make_noise_image(result, seed=1.5)
    nbnumba.make_noise_image(result, seed=-(2 ** 63 - 1))


# -------------------------------------------------- property: nothing else escapes

_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-320, 5e-324, 1e-100, 1e-10, 1.0, 1e10, 1e100, 1e308,
                     -1.0, -1e300, math.pi, 2 ** 31, -(2 ** 31) - 1, 2 ** 63, 2 ** 70]),
    st.integers(min_value=-(2 ** 80), max_value=2 ** 80),
    st.sampled_from([np.float32(3.5), np.int64(7), np.float64("nan"), np.int8(-3)]))
_ODD = st.one_of(
    st.none(), st.booleans(), st.text(max_size=4), st.just(b"1"), st.just({}),
    st.lists(_NUMBERS, max_size=7).map(tuple), st.lists(st.text(max_size=2), max_size=4),
    st.just(np.zeros((2, 2))), st.just(object()), st.just(np.array(["a", "b", "c"])),
    st.sampled_from(["random", "MOSFLM", "round", "BEAM"]))


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.sampled_from(FIELDS), st.one_of(_NUMBERS, _ODD), st.sampled_from(FIELDS),
       st.one_of(_NUMBERS, _ODD))
def test_any_type_and_magnitude_in_any_field_raises_only_nbnumba_errors(first, value,
                                                                          second, other):
    config = small()
    for (section, name), v in ((first, value), (second, other)):
        setattr(getattr(config, section), name, v)

    def too_slow(signum, frame):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(3)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbnumba.prepare(config)
    except nbnumba.NbnumbaError as exc:
        assert "\n" not in str(exc)
    except TimeoutError:   # a legitimate but long set-up (a million phi steps ...)
        reject()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


_TOKENS = st.one_of(st.sampled_from([n for f in nbnumba.flags.FLAGS for n in f.names]
                                    + ["-h", "--version", "--compile", "-", "--"]),
                    st.sampled_from(["1", "-1", "0", "1e400", "nan", "abc", "90", "1e-320",
                                     "random", "/nonexistent", ".", "/dev/null"]),
                    st.text(max_size=5))


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TOKENS, max_size=8))
def test_any_command_line_raises_only_nbnumba_errors(tokens):
    """config_from_args: a configuration or an NbnumbaError, never another exception,
    never an exit (-h and --version are the command's)."""
    args = ["-cell", "50", "50", "50", "90", "90", "90", "-default_F", "1"] + tokens
    try:
        nbnumba.config_from_args(args)
    except nbnumba.NbnumbaError as exc:
        assert "\n" not in str(exc)


# ------------------------------------------------------------------- no hidden state

def test_config_from_args_reads_fdump_only_when_asked(tmp_path, monkeypatch):
    sf = nbnumba.StructureFactors.from_miller([0], [0], [0], [5.0])
    fdump.write_fdump(sf, str(tmp_path / "Fdump.bin"))
    monkeypatch.chdir(tmp_path)
    args = ["-cell", "50", "50", "50", "90", "90", "90", "-default_F", "1"]
    cfg, _ = nbnumba.config_from_args(args)
    assert cfg.crystal.structure_factors is None
    cfg, _ = nbnumba.config_from_args(args, read_fdump=True)
    assert cfg.crystal.structure_factors.grid[0, 0, 0] == 5.0
    with pytest.raises(nbnumba.ConfigError, match="read_fdump=True"):
        nbnumba.config_from_args(args[:-2])


def test_simulate_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg, _ = nbnumba.config_from_args(["-cell", "50", "50", "50", "90", "90", "90", "-hkl",
                                       _hkl(tmp_path), "-detpixels", "4"])
    before = sorted(os.listdir(tmp_path))
    nbnumba.simulate(cfg)
    assert sorted(os.listdir(tmp_path)) == before


def _hkl(folder):
    path = folder / "one.hkl"
    path.write_text("0 0 0 10\n1 1 1 5\n")
    return str(path)


# ----------------------------------------------------------- input files, one line

@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_dump_holding_nan_or_inf_is_refused_like_an_hkl_file(tmp_path, bad):
    grid = np.zeros((3, 3, 3))
    grid[1, 0, 1] = bad
    path = tmp_path / "Fdump.bin"
    path.write_bytes(b"0 1 0 1 0 1\n\f" + grid.astype("<f8").tobytes())
    with pytest.raises(nbnumba.InputFileError, match=r"structure factor of 1 0 1 is"):
        fdump.read_fdump(path)


def test_an_empty_stol_file_says_what_it_is(tmp_path):
    (tmp_path / "empty.stol").write_text("\n")
    with pytest.raises(nbnumba.InputFileError, match=r"scattering table \(-stol\) holds no"):
        nbnumba.config_from_args(["-cell", "50", "50", "50", "90", "90", "90", "-default_F",
                                  "1", "-stol", str(tmp_path / "empty.stol")])
