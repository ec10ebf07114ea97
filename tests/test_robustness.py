"""Robustness: whatever the flag values or input files, ``nbnumba`` either writes a valid
image (exit 0) or stops with a one-line ``nbnumba: error: ...`` message (exit 9): never a
traceback, never an internal error, never a Python warning, never a hang, and a failed
run writes no image.

Property-based (hypothesis, bounded examples, derandomised so CI sees the same examples
every run) over

* values of a handful of numeric flags: any double (tiny, huge, overflowing to inf),
  special numbers, integers, and arbitrary short strings;
* malformed HKL, source, SMV (``-img``/``-mask``) and matrix files;

plus explicit huge-count cases. Every run is in-process (``run_cli``) on an 8x8 detector.

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
import resource
import signal
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from conftest import run_cli
from nbnumba import engine
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
            assert run.err == "", context
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
