"""Robustness: whatever the flag values or input files, ``nbnumba`` either writes a valid
image (exit 0) or stops with a one-line ``nbnumba: error: ...`` message (exit 9): never a
traceback, never an internal error, never a Python warning, never a hang, never a NaN
pixel (input that can only give NaN is refused), and a failed run writes no image.

Property-based (hypothesis, bounded examples, derandomised so CI sees the same examples
every run) over

* values of a handful of numeric flags: any double (tiny, huge, overflowing to inf),
  special numbers, integers, and arbitrary short strings;
* malformed HKL, source, SMV (``-img``/``-mask``) and matrix files;

* extreme magnitudes (1e-100, 1e100, 1e300, the int limits ...) in every numeric flag;
* every branch of the rules that choose counts, ranges and steps (values that turn a
  count into 0, such as ``-osc 0 -phistep 0.3``), enumerated;
* SMV headers whose values conflict with flags given on the command line;
* matrix, HKL and source files with numbers of extreme magnitude;

plus explicit huge-count cases. Every run is in-process (``run_cli``) on an 8x8 detector.
A successful run may print notes and warnings (one line each) on stderr, nothing else.

How "never a hang" is checked without running for ever:

* the kernel is not started when the work it would do (evaluations = pixels in the ROI
  x sub-pixels x sources x phi steps x mosaic domains x sensor layers) exceeds
  ``HANG_EVALUATIONS`` (a day of computing for 64 pixels): the example fails as a hang
  (such work comes from a rule the user did not see, e.g. the automatic oversampling, or
  from an absurd count). Work between ``RUN_EVALUATIONS`` and that is legitimate but too
  slow for this test: hypothesis discards the example;
* a SIGALRM after ``TIME_LIMIT`` seconds (2 s for the explicit huge counts) interrupts
  Python-level set-up loops;
* the address space is capped (soft ``RLIMIT_AS``) so that runaway allocations end in
  MemoryError instead of exhausting the machine.
"""
import itertools
import resource
import signal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from conftest import run_cli
from nbnumba import engine
from nbnumba.flags import FLAGS, absorption_depth, c_float, c_int
from nbnumba.io.smv import read_smv

BASE = ["-cell", "40", "40", "40", "90", "90", "90", "-default_F", "10", "-N", "2",
        "-detpixels", "8", "-nopgm", "-seed", "1", "-floatfile", "f.bin", "-intfile", "i.img",
        "-noisefile", "n.img", "-noprogress"]
OUTPUTS = ("f.bin", "i.img", "n.img")

RUN_EVALUATIONS = 3e7   # at ~1e7 evaluations/s: a few seconds
HANG_EVALUATIONS = 1e12  # about a day
TIME_LIMIT = 5           # seconds per run
MEMORY_HEADROOM = 1.5 * 2 ** 30

SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


class WouldHang(BaseException):
    """Raised instead of a run that would take (practically) for ever."""


class TooExpensive(BaseException):
    """Raised instead of a legitimate run that is too slow for this test."""


@pytest.fixture(scope="module", autouse=True)
def guards():
    """Warm up (compile or load the kernels), then install the work guard, the memory
    cap and the alarm handler for this module; everything is restored afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        assert run_cli(BASE, tmp).code == 0
        assert run_cli(BASE + ["-printout_pixel", "0", "0"], tmp).code == 0  # its kernel
    real_render = engine.render

    def guarded_render(setup, *args, **kwargs):
        r0, r1, c0, c1 = engine.region_rows(setup)
        work = (r1 - r0) * (c1 - c0) * setup.steps * max(setup.layers, 1)
        what = (f"the kernel would run {float(work):.3g} evaluations (oversample "
                f"{setup.oversample}, {setup.sources.count} sources, {setup.phi_steps} phi "
                f"steps, {setup.mosaic_domains} domains, {setup.layers} layers)")
        if work > HANG_EVALUATIONS:
            raise WouldHang(what)
        if work > RUN_EVALUATIONS:
            raise TooExpensive(what)
        return real_render(setup, *args, **kwargs)

    def alarm(signum, frame):
        raise WouldHang("still running after the time limit")

    engine.render = guarded_render
    old_handler = signal.signal(signal.SIGALRM, alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        used = int(statm.read().split()[0]) * resource.getpagesize()
    cap = int(used + MEMORY_HEADROOM)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, old_handler)
        engine.render = real_render


def run_checked(args, files=None, time_limit=TIME_LIMIT):
    """Run nbnumba in a fresh directory holding ``files`` and check the property."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in (files or {}).items():
            Path(tmp, name).write_bytes(data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            signal.setitimer(signal.ITIMER_REAL, time_limit)
            try:
                run = run_cli(args, tmp)
            except WouldHang as exc:
                pytest.fail(f"hang: {exc}\nargs: {args}")
            except TooExpensive:
                reject()  # valid but slow: not this test's business
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        context = f"\nargs: {args}\nstderr: {run.err!r}"
        assert "Traceback" not in run.err, context
        assert not caught, f"Python warnings: {[str(w.message) for w in caught]}" + context
        if run.code == 0:
            for line in run.err.splitlines():  # only notes and warnings, one line each
                assert line.startswith(("nbnumba: note: ", "nbnumba: warning: ")), context
            check_images(Path(tmp), context)
        else:
            assert run.code == 9, context
            lines = run.err.splitlines()
            assert len(lines) == 1 and lines[0].startswith("nbnumba: error: "), context
            assert len(lines[0]) < 400, context
            for name in OUTPUTS:
                assert not Path(tmp, name).exists(), f"{name} written by a failed run" + context
        return run


def check_images(directory, context):
    """A valid result: int and noise SMV images of the same size and the float image."""
    images = [read_smv(str(directory / name)) for name in ("i.img", "n.img")]
    width, height = images[0].width, images[0].height
    assert width * height > 0, context
    for image in images:
        assert (image.width, image.height) == (width, height), context
        assert image.data.size == width * height, context
    assert (directory / "f.bin").stat().st_size == 4 * width * height, context
    pixels = np.fromfile(directory / "f.bin", dtype=np.float32)
    assert not np.isnan(pixels).any(), "NaN pixels: input that can only give NaN" + context


# --------------------------------------------------------------------------- values

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                       blacklist_characters="\x00"), max_size=6)
_SPECIAL = ["0", "-0", "1e-300", "5e-324", "1e-9", "1e9", "1e308", "1e400", "-1e400", "-1",
            "0.5", ".5", "1.", "+3", "1e-5"]
REALS = st.one_of(st.sampled_from(_SPECIAL),
                  st.floats(allow_nan=False, allow_infinity=False).map(repr),
                  st.integers(-1000, 1000).map(str), _TEXT)
COUNTS = st.one_of(st.integers(-3, 12).map(str),
                   st.sampled_from(["0", "-0", "2.0", "2.5", "1e3", "+4", "0x10"]), _TEXT)
SIZES = st.one_of(st.integers(-2, 16).map(str), st.sampled_from(["0", "8.0", "1e1"]), _TEXT)
SEEDS = st.one_of(st.integers(-2 ** 70, 2 ** 70).map(str), _TEXT)


def _values(strategy, n):
    return st.lists(strategy, min_size=n, max_size=n)


FLAG_BY_NAME = {f.names[0]: f for f in FLAGS}


#: the fuzzed flags and what each gets
FLAG_VALUES = {
    "-distance": _values(REALS, 1), "-close_distance": _values(REALS, 1),
    "-pixel": _values(REALS, 1), "-lambda": _values(REALS, 1), "-energy": _values(REALS, 1),
    "-Xbeam": _values(REALS, 1), "-ORGX": _values(REALS, 1), "-twotheta": _values(REALS, 1),
    "-detector_rotx": _values(REALS, 1), "-phi": _values(REALS, 1), "-osc": _values(REALS, 1),
    "-mosaic": _values(REALS, 1), "-dispersion": _values(REALS, 1),
    "-divergence": _values(REALS, 1), "-fluence": _values(REALS, 1),
    "-beamsize": _values(REALS, 1), "-samplesize": _values(REALS, 1),
    "-detector_thick": _values(REALS, 1), "-detector_abs": _values(REALS, 1),
    "-default_F": _values(REALS, 1), "-scale": _values(REALS, 1), "-adc": _values(REALS, 1),
    "-N": _values(COUNTS, 1), "-oversample": _values(COUNTS, 1),
    "-phisteps": _values(COUNTS, 1), "-mosaic_dom": _values(COUNTS, 1),
    "-dispsteps": _values(COUNTS, 1), "-divsteps": _values(COUNTS, 1),
    "-detpixels": _values(SIZES, 1), "-roi": _values(SIZES, 4),
    "-cell": st.integers(1, 6).flatmap(lambda n: _values(REALS, n)),
    "-misset": st.one_of(_values(REALS, 3), st.just(["random"])),
    "-seed": _values(SEEDS, 1), "-mosaic_seed": _values(SEEDS, 1),
}


@st.composite
def flag_settings(draw):
    names = draw(st.lists(st.sampled_from(sorted(FLAG_VALUES)), min_size=1, max_size=3,
                          unique=True))
    args = []
    for name in names:
        args += [name] + draw(FLAG_VALUES[name])
    return args


@settings(max_examples=300, **SETTINGS)
@given(flag_settings())
def test_flag_values(extra):
    run_checked(BASE + extra)


# ------------------------------------------------------------ extremes and corners

FLOAT_EXTREMES = ["1e-100", "-1e-100", "1e100", "-1e100", "1e300", "-1e300", "5e-324",
                  "0", "-0"]
INT_EXTREMES = ["0", "-1", "2147483647", "-2147483648"]
#: every flag taking numbers (the int ones get int extremes), with its value count
NUMERIC_FLAGS = {f.names[0]: (f.nargs if isinstance(f.nargs, int) else 6, f.kind is c_int)
                 for f in FLAGS
                 if f.kind in (c_float, c_int, absorption_depth) and f.nargs != 0
                 and f.names[0] != "-nthreads"}


@st.composite
def extreme_settings(draw):
    names = draw(st.lists(st.sampled_from(sorted(NUMERIC_FLAGS)), min_size=1, max_size=3,
                          unique=True))
    args = []
    for name in names:
        count, integer = NUMERIC_FLAGS[name]
        pool = INT_EXTREMES if integer else FLOAT_EXTREMES
        args += [name] + draw(_values(st.sampled_from(pool), count))
    return args


@settings(max_examples=120, **SETTINGS)
@given(extreme_settings())
def test_extreme_magnitudes_in_every_numeric_flag(extra):
    run_checked(BASE + extra)


#: flags whose values the C's rules combine into counts, ranges and steps, each with the
#: values that reach every branch of its rule (None: the flag is not given)
RULE_CORNERS = {
    "phi": {"-osc": [None, "0", "1"], "-phistep": [None, "0", "0.3"],
            "-phisteps": [None, "0", "2"]},
    "divergence": {"-divergence": [None, "0", "1"], "-hdivstep": [None, "0", "0.3"],
                   "-divsteps": [None, "0", "1", "2"]},
    "sensor": {"-detector_thick": [None, "0", "1"], "-detector_thicksteps": [None, "0", "2"],
               "-detector_abs": [None, "-10"]},
    "dispersion": {"-dispersion": [None, "0", "1"], "-dispsteps": [None, "0", "-1", "2"]},
    "mosaic": {"-mosaic": [None, "0", "-1", "1"], "-mosaic_dom": [None, "0", "-1", "2"]},
}


def _corner_cases():
    for group, flags in RULE_CORNERS.items():
        for values in itertools.product(*flags.values()):
            args = []
            for name, value in zip(flags, values):
                if value is not None:
                    args += [name, value]
            yield pytest.param(args, id=f"{group}:{' '.join(args) or 'defaults'}")


@pytest.mark.parametrize("extra", list(_corner_cases()))
def test_rule_corners(extra):
    """Every branch of the rules that fill in counts, ranges and steps, including the
    values they turn into a count of 0 (0/0 in the C): a one-line error or a valid
    image, also with -printout_pixel."""
    run_checked(BASE + extra + ["-printout_pixel", "2", "2"])


HEADER_KEYS = {"DISTANCE": "-distance", "CLOSE_DISTANCE": "-close_distance",
               "PIXEL_SIZE": "-pixel", "WAVELENGTH": "-lambda", "BEAM_CENTER_X": "-Xbeam",
               "BEAM_CENTER_Y": "-Ybeam", "ORGX": "-ORGX", "ORGY": "-ORGY", "PHI": "-phi",
               "OSC_RANGE": "-osc"}
FLOAT_CORNERS = ["0", "-1", "1", "0.3", "100", "1e-100", "1e100"]
INT_CORNERS = ["0", "-1", "1", "2"]
HEADER_VALUES = st.sampled_from(FLOAT_CORNERS + ["-0", "1e300", "nan"])


@st.composite
def header_conflicts(draw):
    """An SMV header (valid layout) and flags that set the same quantities."""
    width, height = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    fields = {"SIZE1": str(width), "SIZE2": str(height), "PIXEL_SIZE": "0.1",
              "DISTANCE": "100", "WAVELENGTH": "1"}
    keys = draw(st.lists(st.sampled_from(sorted(HEADER_KEYS)), min_size=1, max_size=4,
                         unique=True))
    for key in keys:
        fields[key] = draw(HEADER_VALUES)
    header = "\n".join(["{", "HEADER_BYTES=512;"] + [f"{k}={v};" for k, v in fields.items()]
                       + ["}\f"]).encode().ljust(512, b" ")
    data = header + bytes(2 * width * height)
    flags = draw(st.lists(st.sampled_from(sorted(HEADER_KEYS.values())
                                          + ["-phistep", "-phisteps", "-detpixels"]),
                          min_size=1, max_size=3, unique=True))
    args = []
    for name in flags:
        pool = INT_CORNERS if FLAG_BY_NAME[name].kind is c_int else FLOAT_CORNERS
        args += [name, draw(st.sampled_from(pool))]
    return data, args


def _smv_header_file(fields, width=8, height=8):
    """A well-formed 512-byte-header SMV file with the given header values."""
    fields = dict({"SIZE1": str(width), "SIZE2": str(height), "PIXEL_SIZE": "0.1",
                   "DISTANCE": "100", "WAVELENGTH": "1"}, **fields)
    lines = ["{", "HEADER_BYTES=512;"] + [f"{k}={v};" for k, v in fields.items()] + ["}\f"]
    return "\n".join(lines).encode().ljust(512, b" ") + bytes(2 * width * height)


@settings(max_examples=40, **SETTINGS)
@given(header_conflicts(), st.sampled_from(["-img", "-mask"]))
def test_header_values_conflicting_with_flags(case, how):
    data, flags = case
    base = list(BASE)
    i = base.index("-detpixels")
    del base[i:i + 2]
    run_checked(base + [how, "h.img"] + flags, {"h.img": data})


#: per quantity: (header keys, flags) -> the values tried (None: absent), all combined
HEADER_CORNERS = {
    "phi": ({"OSC_RANGE": ["0", "1"]},
            {"-phistep": [None, "0.3"], "-phisteps": [None, "0"], "-osc": [None, "0"]}),
    "distance": ({"CLOSE_DISTANCE": [None, "0", "50"]},
                 {"-distance": [None, "0", "80"], "-close_distance": [None, "0"]}),
    "centre": ({"ORGX": [None, "1e100"], "BEAM_CENTER_X": [None, "1e100"]},
               {"-Xbeam": [None, "0"], "-ORGX": [None, "-1e100"]}),
    "pixel": ({"PIXEL_SIZE": ["1e-100", "1e100"]},
              {"-pixel": [None, "0", "1e-100"], "-detpixels": [None, "0", "4"]}),
    "wavelength": ({"WAVELENGTH": ["0", "1e-100", "1e100"]}, {"-lambda": [None, "0", "1"]}),
}


def _header_cases():
    for topic, (keys, flags) in HEADER_CORNERS.items():
        dims = list(keys.items()) + list(flags.items())
        for values in itertools.product(*(v for _, v in dims)):
            chosen = [(name, v) for (name, _), v in zip(dims, values) if v is not None]
            fields = {k: v for k, v in chosen if k in keys}
            args = [x for name, v in chosen if name in flags for x in (name, v)]
            hows = ["-img", "-mask"] if topic == "phi" else ["-img"]
            for how in hows:
                label = " ".join([how] + [f"{k}={v}" for k, v in fields.items()] + args)
                yield pytest.param(fields, how, args, id=f"{topic}:{label}")


@pytest.mark.parametrize("fields, how, flags", list(_header_cases()))
def test_header_corners(fields, how, flags):
    """Header values against the flags that set the same quantity (a header's
    OSC_RANGE=0 with -phistep gives 0 phi steps, CLOSE_DISTANCE beats -distance ...)."""
    base = list(BASE)
    i = base.index("-detpixels")
    del base[i:i + 2]
    run_checked(base + [how, "h.img"] + flags, {"h.img": _smv_header_file(fields)})


def _extreme_number():
    return st.builds(lambda mantissa, exponent: f"{mantissa}e{exponent}",
                     st.sampled_from(["1", "-1", "3.5", "-0.25"]), st.integers(-330, 330))


@settings(max_examples=40, **SETTINGS)
@given(st.lists(st.one_of(_extreme_number(), st.sampled_from(["0", "1e-100", "1e100"])),
                min_size=9, max_size=9), st.booleans())
def test_extreme_matrix_files(numbers, with_cell):
    base = list(BASE)
    if not with_cell:
        i = base.index("-cell")
        del base[i:i + 7]
    text = "\n".join(" ".join(numbers[r * 3:r * 3 + 3]) for r in range(3)) + "\n"
    run_checked(base + ["-mat", "A.mat", "-oversample", "1"], {"A.mat": text.encode()})


@settings(max_examples=30, **SETTINGS)
@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.integers(-3, 3),
                          _extreme_number()), min_size=1, max_size=6))
def test_extreme_structure_factors(rows):
    text = "".join(f"{h} {k} {l} {f}\n" for h, k, l, f in rows)
    run_checked(BASE + ["-hkl", "in.hkl"], {"in.hkl": text.encode()})


@settings(max_examples=30, **SETTINGS)
@given(st.lists(st.lists(st.one_of(_extreme_number(), st.sampled_from(["0", "-10", "1e-10"])),
                         min_size=5, max_size=5), min_size=1, max_size=3))
def test_extreme_source_files(rows):
    text = "".join(" ".join(row) + "\n" for row in rows)
    run_checked(BASE + ["-sourcefile", "src.txt"], {"src.txt": text.encode()})


@pytest.mark.parametrize("extra", [
    ["-phisteps", "99999999999999999999"],
    ["-mosaic", "1", "-mosaic_dom", "99999999999999999999"],
    ["-dispersion", "1", "-dispsteps", "99999999999999999999"],
    ["-divsteps", "99999999999999999999"],
    ["-osc", "1", "-phistep", "1e-300"],
    ["-hdivrange", "1", "-hdivstep", "1e-300"],
    ["-detector_thick", "1", "-detector_thicksteps", "99999999999999999999"],
], ids=lambda extra: " ".join(extra))
def test_huge_counts_fail_fast(extra):
    """Absurd counts (typos) end at once with a one-line error, not after building lists
    until memory runs out (which takes seconds here, and the whole machine without the
    address-space cap)."""
    run_checked(BASE + extra, time_limit=2)


# ---------------------------------------------------------------------------- files

_NUMBER_TOKENS = st.one_of(st.integers(-6, 6).map(str), REALS,
                           st.sampled_from(["nan", "inf", "-inf", "1.5", "2.0", "1000000",
                                            "-1000000", "1e6", "99999999999"]))
_WORDS = st.sampled_from(["#", "# comment", "h", "k", "l", "F", "END", ";", "!", "\t", ","])


@st.composite
def text_file(draw, line, max_lines=12):
    lines = draw(st.lists(st.one_of(line, st.lists(st.one_of(_NUMBER_TOKENS, _WORDS),
                                                   max_size=6).map(" ".join)),
                          max_size=max_lines))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    data = text.encode("utf-8")
    if draw(st.integers(0, 9)) == 0:  # occasionally binary garbage, anywhere
        junk = draw(st.binary(max_size=16))
        at = draw(st.integers(0, len(data)))
        data = data[:at] + junk + data[at:]
    return data


HKL_LINE = st.tuples(st.integers(-4, 4), st.integers(-4, 4), st.integers(-4, 4),
                     st.floats(0, 1000)).map(lambda t: "%d %d %d %g" % t)


@settings(max_examples=100, **SETTINGS)
@given(text_file(HKL_LINE), st.booleans())
def test_malformed_hkl_files(data, with_default_f):
    base = list(BASE)
    if not with_default_f:
        i = base.index("-default_F")
        del base[i:i + 2]
    run_checked(base + ["-hkl", "in.hkl"], {"in.hkl": data})


SOURCE_LINE = st.tuples(st.floats(-10, 10), st.floats(-10, 10), st.floats(-10, 10),
                        st.floats(0, 2), st.floats(0.5e-10, 2e-10),
                        st.sampled_from([" ", "\t", ",", ";", ":", "!"])).map(
    lambda t: t[5].join("%g" % x for x in t[:5]))


@settings(max_examples=100, **SETTINGS)
@given(text_file(SOURCE_LINE, max_lines=8))
def test_malformed_source_files(data):
    run_checked(BASE + ["-sourcefile", "src.txt"], {"src.txt": data})


MATRIX_LINE = st.lists(st.floats(-0.05, 0.05), min_size=3, max_size=3).map(
    lambda v: " ".join("%.8f" % x for x in v))


@settings(max_examples=100, **SETTINGS)
@given(text_file(MATRIX_LINE, max_lines=5), st.booleans())
def test_malformed_matrix_files(data, with_cell):
    base = list(BASE)
    if not with_cell:
        i = base.index("-cell")
        del base[i:i + 7]
    run_checked(base + ["-mat", "A.mat"], {"A.mat": data})


_SMV_KEYS = ["SIZE1", "SIZE2", "PIXEL_SIZE", "DISTANCE", "CLOSE_DISTANCE", "WAVELENGTH",
             "BEAM_CENTER_X", "BEAM_CENTER_Y", "ORGX", "ORGY", "PHI", "OSC_RANGE", "TWOTHETA",
             "DETECTOR_DIMENSIONS", "HEADER_BYTES", "BYTE_ORDER"]


@st.composite
def smv_file(draw):
    """A nanoBragg-like SMV file with random keys, values, sizes and corruptions."""
    width, height = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    fields = {"SIZE1": str(width), "SIZE2": str(height), "PIXEL_SIZE": "0.1",
              "DISTANCE": "100", "WAVELENGTH": "1"}
    for key in draw(st.lists(st.sampled_from(_SMV_KEYS), max_size=4)):
        fields[key] = draw(st.one_of(SIZES, REALS))
    for key in draw(st.lists(st.sampled_from(sorted(fields)), max_size=2, unique=True)):
        del fields[key]
    header_bytes = draw(st.sampled_from(["512", "512", "512", "0", "-1", "100", "1024",
                                         "99999999", "abc", ""]))
    lines = ["{", f"HEADER_BYTES={header_bytes};"] + [f"{k}={v};" for k, v in fields.items()]
    header = ("\n".join(lines) + "\n}\f").encode("utf-8", "replace")
    size = 512 if not header_bytes.isdigit() else max(int(header_bytes), 0)
    header = header.ljust(min(size, 4096), b" ")
    pixels = draw(st.one_of(st.just(width * height * 2), st.integers(0, 2 * 16 * 16 + 8)))
    data = header + draw(st.binary(min_size=pixels, max_size=pixels))
    if draw(st.integers(0, 9)) == 0:  # a damaged start
        data = draw(st.binary(max_size=4)) + data[draw(st.integers(0, 20)):]
    return data


@settings(max_examples=100, **SETTINGS)
@given(smv_file(), st.sampled_from(["-img", "-mask", "both"]))
def test_malformed_smv_files(data, how):
    base = [a for a in BASE]
    i = base.index("-detpixels")
    del base[i:i + 2]  # the header gives the detector size
    extra = ["-img", "h.img"] if how == "-img" else ["-mask", "h.img"]
    if how == "both":
        extra = ["-mask", "h.img", "-img", "h.img"]
    run_checked(base + extra, {"h.img": data})


# ------------------------------------------- the companion commands: nb-nonbragg, nb-noisify

TOOLBOX_INPUTS = Path(__file__).parent / "data" / "toolbox" / "inputs"
#: each command's base arguments on the golden inputs (an 8x8 detector for nb-nonbragg)
TOOL_BASE = {"nonbragg": ["-stol", "water.stol", "-detpixels", "8", "-seed", "1"],
             "noisify": ["-floatfile", "spot.bin", "-seed", "1"]}
#: flags left out: -oversample multiplies the (uninterruptible) kernel's work
TOOL_SKIPPED = {"-oversample"}
_TOOL_TEXT = st.sampled_from(["a.out", "", "nonexistent", ".", "gauss", "fiber", "airy",
                              "sample", "beam", "direct", "fft", "auto", "water.stol"])


def _tool_flags(program):
    from nbnumba_cli import noisify as noisify_cli
    from nbnumba_cli import nonbragg as nonbragg_cli
    module = {"nonbragg": nonbragg_cli, "noisify": noisify_cli}[program]
    return module, [f for f in module.FLAGS if f.names[0] not in TOOL_SKIPPED]


@st.composite
def tool_settings(draw, program):
    _, flags = _tool_flags(program)
    args = []
    for flag in draw(st.lists(st.sampled_from(flags), min_size=1, max_size=3)):
        name = draw(st.sampled_from(flag.names))
        if flag.kind is c_int:
            values = SIZES if "pixels" in name else COUNTS
        elif flag.kind is c_float:
            values = REALS
        else:
            values = _TOOL_TEXT
        args += [name] + draw(_values(values, flag.nargs))
    return args


def run_tool_checked(program, args):
    """Run nb-nonbragg or nb-noisify in-process on the golden inputs: exit 0 with notes
    only, or 9 with one error line; never an internal error or a Python warning. A run
    still going after the time limit (a huge divergence grid) is discarded."""
    module, _ = _tool_flags(program)
    prog = f"nb-{program}"
    with tempfile.TemporaryDirectory() as tmp:
        for f in TOOLBOX_INPUTS.iterdir():
            Path(tmp, f.name).write_bytes(f.read_bytes())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
            try:
                run = run_cli(TOOL_BASE[program] + args, tmp, entry=module.main)
            except (WouldHang, MemoryError):
                reject()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    context = f"\nargs: {args}\nstderr: {run.err!r}"
    assert "Traceback" not in run.err and "internal error" not in run.err, context
    assert not caught, f"Python warnings: {[str(w.message) for w in caught]}" + context
    lines = run.err.splitlines()
    if run.code == 0:
        for line in lines:
            assert line.startswith((f"{prog}: note: ", f"{prog}: warning: ",
                                    f"{prog}: compiling ")), context
    else:
        assert run.code == 9, context
        errors = [x for x in lines if not x.startswith(f"{prog}: compiling ")]
        assert len(errors) == 1 and errors[0].startswith(f"{prog}: error: "), context


@settings(max_examples=150, **SETTINGS)
@given(tool_settings("nonbragg"))
def test_nonbragg_flag_values(extra):
    run_tool_checked("nonbragg", extra)


@settings(max_examples=150, **SETTINGS)
@given(tool_settings("noisify"))
def test_noisify_flag_values(extra):
    run_tool_checked("noisify", extra)
