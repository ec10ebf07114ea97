"""Errors from the library: one family (``nbnumba.NbnumbaError``), the field, its unit and
the expected type in the message, and nothing else escapes for bad input; no hidden
state (``./Fdump.bin`` only when asked; ``simulate`` writes nothing)."""
import dataclasses
import datetime
import math
import os
import signal
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import nbnumba
from nbnumba.compilecache import CompileWatch
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


# ------------------------------------- every public function: only NbnumbaError escapes

class _BadPath:
    """An os.PathLike whose __fspath__ gives no file name."""

    def __fspath__(self):
        return 3


_PATHS = st.sampled_from([None, 3, 2.5, "", "bad\0name", b"", b"bytes.out", "no/such/dir/x",
                          ".", "..", "ok.out", _BadPath(), [], object(),
                          __import__("pathlib").Path("path.out")])
_ARRAYS = st.sampled_from([
    np.zeros((6, 6), np.float16), np.array([1 + 2j, 3j]), np.array(["a", "b"]),
    np.array([None, 1], dtype=object), np.full((6, 6), 70000), np.full((6, 6), -5),
    np.zeros((6, 6), np.float32), np.zeros((6, 6), np.uint16), np.zeros(36, np.uint8),
    np.zeros((6, 6), bool), np.zeros((3, 3)), np.empty((0,)), np.zeros((2, 6, 6)),
    np.full((4, 4), np.nan), np.full((4, 4), np.inf), np.zeros((4, 4), np.int8),
    [[1, 2], [3]], [[0.0, 1.0], [0.5, 2.0]]])
_CALLABLES = st.sampled_from([lambda: None, lambda a: None, lambda a, b: None, print, len,
                              int])
_HOSTILE = st.one_of(_NUMBERS, _ODD, _ARRAYS, _CALLABLES,
                     st.sampled_from([datetime.datetime(2020, 1, 1), datetime.datetime.min,
                                      "yesterday", 1e300, -1e300, "cpu", "cuda", "gauss",
                                      "fiber", "fft", "stol", "Q", "sample"]))


@pytest.fixture(scope="module")
def public_calls(tmp_path_factory):
    """name -> (function, valid keyword arguments) for every public function that takes
    user values, and the scratch folder the writers write in."""
    folder = tmp_path_factory.mktemp("hostile")
    result = nbnumba.simulate(small())
    noise = nbnumba.make_noise_image(result, seed=1)
    table = nbnumba.StolTable([0.0, 0.2, 0.5], [2.0, 3.0, 1.0])
    flags = ["-cell", "50", "50", "50", "90", "90", "90", "-default_F", "1", "-detpixels", "4"]
    calls = {
        "write_float_image": (nbnumba.write_float_image, dict(result=result, path="f.bin")),
        "write_smv_image": (nbnumba.write_smv_image,
                            dict(result=result, path="s.img", pixels=noise.pixels,
                                 adc_offset=None)),
        "write_pgm": (nbnumba.write_pgm, dict(result=result, path="p.pgm",
                                              pgm=nbnumba.make_pgm(result))),
        "smv_header": (nbnumba.smv_header, dict(setup=result.setup, adc_offset=40)),
        "make_int_image": (nbnumba.make_int_image, dict(result=result, scale=0.0, adc=40.0)),
        "make_noise_image": (nbnumba.make_noise_image, dict(result=result, seed=1, adc=40.0)),
        "make_pgm": (nbnumba.make_pgm, dict(result=result, scale=0.0, int_scale=1.0)),
        "nonbragg": (nbnumba.nonbragg,
                     dict(table=table, config=nbnumba.NonBraggConfig(xpixels=4, ypixels=4),
                          say=None, observed=None, ignore=(), adc=40.0)),
        "noisify": (nbnumba.noisify,
                    dict(image=np.ones((4, 4)), scale=1.0, gain=1.0, adc=40.0, readout=0.0,
                         flicker=0.0, calibration=0.03, seed=1, calib_seed=None, noise=True,
                         psf=None, psf_fwhm=46e-6, pixel_size=1e-4, psf_radius=0,
                         psf_method="auto", say=None, name="image")),
        "config_from_args": (nbnumba.config_from_args,
                             dict(argv=flags, cwd=".", read_fdump=False)),
        "render": (nbnumba.render, dict(setup=result.setup, device="cpu", threads=None,
                                        progress=None)),
        "simulate": (nbnumba.simulate, dict(config=small(), device="cpu", threads=1,
                                            progress=None)),
        "check_units": (nbnumba.check_units, dict(config=small())),
        "prepare": (nbnumba.prepare, dict(config=small())),
        "from_miller": (nbnumba.StructureFactors.from_miller,
                        dict(h=[0, 1], k=[0, 1], l=[0, 1], F=[1.0, 2.0], default_F=0.0)),
        "from_directions": (nbnumba.SourceList.from_directions,
                            dict(beam_directions=[[1.0, 0.0, 0.0]], wavelengths=None,
                                 weights=None)),
        "from_positions": (nbnumba.SourceList.from_positions,
                           dict(positions=[[-1.0, 0.0, 0.0]], wavelengths=1e-10,
                                weights=[1.0])),
        "StolTable": (nbnumba.StolTable, dict(stol=[0.0, 0.5], F=[1.0, 2.0], unit="stol")),
    }
    try:
        import h5py  # noqa: F401
        calls["write_nexus"] = (nbnumba.write_nexus,
                                dict(path="n.nxs", results=result, images=noise.pixels,
                                     adc=40.0, start_time=0.0, end_time=None))
    except ImportError:  # without the hdf5 extra, write_nexus says so (a ConfigError)
        pass
    return _Calls(calls, folder)


class _Calls(tuple):
    """(calls, folder), shown briefly in hypothesis' reports."""

    def __new__(cls, calls, folder):
        return super().__new__(cls, (calls, folder))

    def __repr__(self):
        return "public_calls"


class _TooSlow(BaseException):
    """Raised by the 3 s alarm of :func:`_guarded`: a BaseException, so that no handler
    of the library (``except OSError``, ``except Exception``) turns it into another
    error (TimeoutError is an OSError; an alarm during a first compile under load
    raised it inside a file writer)."""


def _guarded(call):
    """call() with a 3 s limit; an NbnumbaError must be one line; a legitimate but long
    call (a huge source grid) is rejected as an example. The limit never cuts a numba
    compile short (an exception raised inside numba's compiler can leave a half-built
    function behind, which later calls report as a RuntimeError): while one runs, the
    alarm waits."""
    watch = CompileWatch()

    def too_slow(signum, frame):
        if watch.compiling_since is not None:
            signal.alarm(1)
            return
        raise _TooSlow

    old = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(3)
    try:
        with watch, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call()
    except nbnumba.NbnumbaError as exc:
        assert "\n" not in str(exc), str(exc)
    except _TooSlow:
        reject()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@settings(max_examples=500, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_any_value_in_any_argument_of_any_public_function_raises_only_nbnumba_errors(
        public_calls, data):
    calls, folder = public_calls
    name = data.draw(st.sampled_from(sorted(calls)), label="function")
    function, arguments = calls[name]
    arguments = dict(arguments)
    count = data.draw(st.integers(1, 2), label="how many arguments")
    for key in data.draw(st.permutations(sorted(arguments)), label="arguments")[:count]:
        arguments[key] = data.draw(_PATHS if key in ("path", "cwd") else _HOSTILE, label=key)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        _guarded(lambda: function(**arguments))
    finally:
        os.chdir(cwd)


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.sampled_from([f.name for f in dataclasses.fields(nbnumba.NonBraggConfig)]),
       st.one_of(_HOSTILE, _ARRAYS))
def test_any_value_in_any_nonbragg_field_raises_only_nbnumba_errors(name, value):
    table = np.array([[0.0, 2.0], [0.2, 3.0], [0.5, 1.0]])
    fields = dict(xpixels=4, ypixels=4)
    fields[name] = value
    _guarded(lambda: nbnumba.nonbragg(table, **fields))


@pytest.mark.parametrize("call, words", [
    (lambda r: nbnumba.render(nbnumba.SimulationConfig()), "nbnumba.simulate"),
    (lambda r: nbnumba.render(None), "prepared Setup"),
    (lambda r: nbnumba.config_from_args(None), "list of strings"),
    (lambda r: nbnumba.write_pgm(r, "x.pgm", None), "PGMImage"),
    (lambda r: nbnumba.write_float_image(r, None), "file name"),
    (lambda r: nbnumba.write_smv_image(r, "x.img", np.zeros((3, 3), np.uint16)),
     r"shape \(3, 3\).*6x6"),
    (lambda r: nbnumba.write_smv_image(r, "x.img", r.image), "truncated"),
    (lambda r: nbnumba.write_smv_image(r, "x.img", np.full((6, 6), 70000)), "wrap"),
    (lambda r: nbnumba.write_smv_image(r, "x.img", np.full((6, 6), -5)), "wrap"),
    (lambda r: nbnumba.noisify(r.image, seed="x"), "seed"),
    (lambda r: nbnumba.nonbragg(np.array([[0.0, 1.0], [0.5, 2.0]]), config="x"),
     "NonBraggConfig"),
    (lambda r: nbnumba.nonbragg([["a", "b"]]), "strings"),
    (lambda r: nbnumba.nonbragg(np.array([[0.0, 1.0], [0.5, 2.0]]), distance=100.0),
     "distance.*implausible"),
    (lambda r: nbnumba.noisify(r.image, pixel_size=0.1), "pixel_size.*implausible"),
    (lambda r: nbnumba.simulate(small(), progress=lambda: None), "two arguments"),
    (lambda r: nbnumba.StructureFactors.from_miller(np.array([1j]), [0], [0], [1.0]),
     "complex"),
    (lambda r: nbnumba.SourceList.from_directions([[1e-300, 0.0, 0.0]]), "underflows"),
])
def test_the_calls_that_escaped_are_one_line_nbnumba_errors(call, words, tmp_path,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = nbnumba.simulate(small())
    with pytest.raises(nbnumba.NbnumbaError, match=words) as caught:
        call(result)
    assert "\n" not in str(caught.value)
    assert os.listdir(tmp_path) == []          # nothing written


def test_write_nexus_refuses_what_it_cannot_write(tmp_path):
    pytest.importorskip("h5py")
    result = nbnumba.simulate(small())
    other = small()
    other.detector.fpixels = other.detector.spixels = 4
    result2 = nbnumba.simulate(other)
    path = str(tmp_path / "a.nxs")
    for call, words in [
            (lambda: nbnumba.write_nexus(None, result, result.image), "file name"),
            (lambda: nbnumba.write_nexus(path, result, None), "one 2-D array per result"),
            (lambda: nbnumba.write_nexus(path, [result, result2], [result.image, result2.image]),
             "share one detector"),
            (lambda: nbnumba.write_nexus(path, result, result.image, start_time="yesterday"),
             "start_time"),
            (lambda: nbnumba.write_nexus(path, result, np.zeros((3, 3), np.uint16)), "shape")]:
        with pytest.raises(nbnumba.ConfigError, match=words):
            call()
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------- typos in configurations

CONFIG_CLASSES = [nbnumba.SimulationConfig, nbnumba.BeamConfig, nbnumba.DetectorConfig,
                  nbnumba.CrystalConfig, nbnumba.RenderConfig, nbnumba.NonBraggConfig]


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_a_misspelt_field_is_refused_with_the_nearest_name(cls):
    config = cls()
    for f in dataclasses.fields(cls):
        typo = f.name[:-1] + "Q"        # no field ends in Q
        with pytest.raises(nbnumba.ConfigError) as caught:
            setattr(config, typo, 1)
        message = str(caught.value)
        assert message.startswith(f"no field {typo!r} in {cls.__name__}")
        assert "did you mean" in message or "its fields" in message
        assert not hasattr(config, typo)
    with pytest.raises(nbnumba.ConfigError, match=r"no field 'distanse' in DetectorConfig; "
                                                  r"did you mean 'distance'\?"):
        nbnumba.DetectorConfig().distanse = 0.2
    with pytest.raises(nbnumba.ConfigError, match=r"did you mean 'detector.distance'"):
        nbnumba.SimulationConfig().distance = 0.2


def test_the_typo_guard_leaves_construction_copies_pickles_and_replace_alone():
    import copy
    import pickle
    config, out = nbnumba.config_from_args(["-cell", "50", "50", "50", "90", "90", "90",
                                            "-default_F", "1", "-detpixels", "6",
                                            "-distance", "80"])
    config.beam.sources = nbnumba.SourceList.from_directions([[1.0, 0.0, 0.0]])
    for twin in (copy.deepcopy(config), pickle.loads(pickle.dumps(config)), copy.copy(config)):
        assert twin.detector.distance == config.detector.distance == 0.08
        assert twin.crystal.cell == config.crystal.cell
        twin.detector.distance = 0.09              # a field: still settable
        with pytest.raises(nbnumba.ConfigError):
            twin.detector.distanse = 0.09
    moved = dataclasses.replace(config.detector, distance=0.07)
    assert moved.distance == 0.07 and moved.pixel_size == config.detector.pixel_size
    assert pickle.loads(pickle.dumps(out)) == out
    assert nbnumba.NonBraggConfig(distance=0.2).distance == 0.2
    assert dataclasses.replace(nbnumba.NonBraggConfig(), xpixels=8).xpixels == 8


def test_a_detector_vector_without_the_custom_convention_is_refused():
    config = small()
    config.detector.fdet_vector = (0.0, 0.0, -1.0)
    with pytest.raises(nbnumba.ConfigError, match="convention='CUSTOM'"):
        nbnumba.prepare(config)
    config.detector.convention = "CUSTOM"
    nbnumba.prepare(config)
    # the C's order on the command line: a convention flag after a vector flag wins
    base = ["-cell", "50", "50", "50", "90", "90", "90", "-default_F", "1", "-detpixels", "6"]
    cfg, _ = nbnumba.config_from_args(base + ["-fdet_vector", "0", "1", "0", "-mosflm"])
    assert cfg.detector.convention == "MOSFLM" and cfg.detector.fdet_vector is None
    cfg, _ = nbnumba.config_from_args(base + ["-mosflm", "-fdet_vector", "0", "1", "0"])
    assert cfg.detector.convention == "CUSTOM" and cfg.detector.fdet_vector == (0.0, 1.0, 0.0)


# ---------------------------------------------------------- warnings: once, at your line

def test_warnings_are_issued_once_at_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        beams, weights = [[1.0, 0.0, 0.0], [1.0, 0.0, 1e-3]], [1.0, 2.0]
        sources = nbnumba.SourceList.from_directions(beams, weights=weights); line = _line()  # noqa: E702,E501
        config = small()
        config.beam.sources = sources
        nbnumba.simulate(config)
        config.render.roi = (10, 5, 0, 0)
        empty = nbnumba.simulate(config); roi_line = _line()  # noqa: E702
    weights = [w for w in caught if "weights" in str(w.message)]
    assert [(w.filename, w.lineno) for w in weights] == [(__file__, line)]
    regions = [w for w in caught if "region of interest" in str(w.message)]
    assert [(w.filename, w.lineno) for w in regions] == [(__file__, roi_line)]
    assert empty.stats.rendered == 0


def _line():
    """The caller's line number."""
    import sys
    return sys._getframe(1).f_lineno


def test_float16_complex_and_strings_are_refused_by_name():
    config = small()
    config.crystal.cell = tuple(np.float16(x) for x in (50, 50, 50, 1.5, 1.5, 1.5))
    with pytest.raises(nbnumba.ConfigError, match="float16"):
        nbnumba.prepare(config)
    config = small()
    config.detector.distance = np.float16(0.1)
    with pytest.raises(nbnumba.ConfigError, match="float16"):
        nbnumba.prepare(config)
    config = small()
    config.crystal.cell = None
    config.crystal.a_matrix = np.eye(3, dtype=np.float16) * 0.02
    with pytest.raises(nbnumba.ConfigError, match="float16"):
        nbnumba.prepare(config)
    for bad in (np.array(["1", "2"]), np.array([1j, 2j]), np.array([None, 1], dtype=object)):
        with pytest.raises(nbnumba.ConfigError, match=str(bad.dtype)):
            nbnumba.StructureFactors.from_miller(bad, [0, 1], [0, 1], [1.0, 2.0])


def test_messages_that_said_something_else():
    config, _ = nbnumba.config_from_args(["-cell", "50", "50", "50", "90", "90", "90",
                                          "-default_F", "1", "-beam_vector", "0", "0", "0"])
    with pytest.raises(nbnumba.ConfigError, match="beam direction.*zero vector"):
        nbnumba.prepare(config)
    config = small()
    config.crystal.a_matrix = np.zeros((3, 3))
    with pytest.raises(nbnumba.ConfigError, match="singular"):
        nbnumba.prepare(config)


def test_the_command_says_an_empty_region_in_a_note(tmp_path):
    from conftest import run_cli
    run = run_cli(["-cell", "50", "50", "50", "90", "90", "90", "-default_F", "1",
                   "-detpixels", "6", "-roi", "10", "5", "0", "0", "-seed", "1"], tmp_path)
    assert run.code == 0
    notes = [line for line in run.err.splitlines() if "region of interest" in line]
    assert len(notes) == 1 and notes[0].startswith("nbnumba: note: "), run.err
    assert "max_I = 0" in run.out
