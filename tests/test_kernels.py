"""CPU kernels: lanes vs one-at-a-time, thread-count independence, the fast sine."""
import math

import numba
import numpy as np
import pytest

from conftest import GOLDEN
from nbnumba import config_from_args, engine
from nbnumba.kernels import cpu_backend
from nbnumba.physics import FAST_TRIG_LIMIT, cos_fast, sin_fast

GRID = str(GOLDEN / "inputs" / "P1_grid.hkl")
SMALL = str(GOLDEN / "inputs" / "P1_small.hkl")
DET = ["-detpixels", "24", "-pixel", "0.2", "-distance", "60", "-lambda", "1.0"]

CONFIGS = {
    "mosaic_phi": ["-cell", "60", "60", "60", "90", "90", "90", "-hkl", GRID, "-nointerpolate",
                   "-N", "4", "-mosaic", "0.5", "-mosaic_dom", "4", "-phi", "0", "-osc", "1",
                   "-phisteps", "3", "-oversample", "2"],
    "sources_dispersion": ["-cell", "60", "70", "80", "90", "95", "90", "-hkl", GRID,
                           "-nointerpolate", "-N", "5", "-divergence", "1", "-divsteps", "3",
                           "-dispersion", "2", "-dispsteps", "3", "-oversample", "1",
                           "-misset", "5", "10", "15"],
    "oversample_switches": ["-cell", "40", "40", "40", "90", "90", "90", "-default_F", "50",
                            "-N", "3", "-oversample", "2", "-oversample_thick", "-oversample_polar",
                            "-oversample_omega", "-detector_thick", "100", "-thicksteps", "3",
                            "-polar", "0.7", "-mosaic", "0.3", "-mosaic_dom", "3",
                            "-twotheta", "10"],
    "dmin": ["-cell", "50", "50", "50", "90", "90", "90", "-hkl", GRID, "-nointerpolate", "-N", "4",
             "-dmin", "8", "-mosaic", "0.2", "-mosaic_dom", "8", "-oversample", "1"],
    "round": ["-round_xtal", "-fudge", "0.8", "-Na", "3", "-Nb", "4", "-Nc", "5", "-cell", "60",
              "60", "60", "90", "90", "90", "-default_F", "10", "-mosaic", "0.2", "-mosaic_dom",
              "8", "-oversample", "1"],
    "gauss": ["-gauss_xtal", "-N", "4", "-cell", "60", "60", "60", "90", "90", "90", "-hkl", GRID,
              "-nointerpolate", "-dispersion", "1", "-dispsteps", "9", "-oversample", "1",
              "-curved_det", "-water", "50"],
    "tophat": ["-tophat_spots", "-fudge", "1.5", "-N", "4", "-cell", "60", "60", "60", "90", "90",
               "90", "-default_F", "10", "-phi", "0", "-osc", "2", "-phistep", "0.25",
               "-oversample", "1", "-point_pixel", "-nopolar", "-roi", "3", "20", "2", "17"],
}


def setup_for(args, tmp_path):
    cfg, _ = config_from_args(args + DET, cwd=str(tmp_path))
    return engine.prepare(cfg)


@pytest.fixture
def lanes_spy(monkeypatch):
    """Counts calls of the lanes kernel."""
    calls = []
    real = cpu_backend.render_rows_lanes

    def spy(*args):
        calls.append(1)
        return real(*args)
    monkeypatch.setattr(cpu_backend, "render_rows_lanes", spy)
    return calls


def render_one_at_a_time(setup, monkeypatch):
    """The image rendered by the one-evaluation-at-a-time kernel."""
    with monkeypatch.context() as m:
        m.setattr(cpu_backend, "kernel_for", lambda interpolate, curved: "one_at_a_time")
        return engine.render(setup)


LANES_CONFIGS = dict(CONFIGS, **{
    # the shapes without a loop of their own, on a flat detector
    "gauss_flat": [a for a in CONFIGS["gauss"] if a != "-curved_det"],
    # a few sources (2 x 2 divergence grid) with a Kahn factor
    "two_sources_polar": ["-cell", "60", "60", "60", "90", "90", "90", "-default_F", "10",
                          "-N", "4", "-divergence", "0.5", "-divsteps", "2", "-polar", "0.9",
                          "-oversample", "1"],
})


@pytest.mark.parametrize("name", [n for n in LANES_CONFIGS if n != "gauss"])
def test_lanes_kernel_equals_one_at_a_time(name, tmp_path, monkeypatch, lanes_spy):
    setup = setup_for(LANES_CONFIGS[name], tmp_path)
    assert not setup.interpolate
    lanes = engine.render(setup)
    assert lanes_spy, "lanes kernel not used"
    lanes_spy.clear()
    serial = render_one_at_a_time(setup, monkeypatch)
    assert not lanes_spy
    assert lanes.image.max() > 0
    assert lanes.image.tobytes() == serial.image.tobytes()
    assert lanes.omega_sum == serial.omega_sum


def test_lanes_kernel_rows_wider_than_a_chunk_and_masked(tmp_path, monkeypatch):
    args = CONFIGS["mosaic_phi"] + DET + ["-detpixels_f", "150", "-detpixels_s", "3"]
    cfg, _ = config_from_args(args, cwd=str(tmp_path))
    setup = engine.prepare(cfg)
    setup.mask = np.ones(150 * 3, dtype=np.uint16)
    setup.mask[[0, 63, 64, 130, 449]] = 0
    lanes = engine.render(setup)
    serial = render_one_at_a_time(setup, monkeypatch)
    assert lanes.image.tobytes() == serial.image.tobytes()
    assert lanes.omega_sum == serial.omega_sum
    assert lanes.image.reshape(-1)[[0, 63, 64, 130, 449]].max() == 0.0


def test_curved_detector_uses_the_one_at_a_time_kernel(tmp_path, lanes_spy):
    setup = setup_for(CONFIGS["gauss"], tmp_path)
    assert engine.render(setup).image.max() > 0
    assert not lanes_spy


def test_every_kernel_variant_is_reachable_by_its_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grid.hkl").write_text("".join("%d %d %d 10\n" % (h, k, l) for h in range(-2, 3)
                                               for k in range(-2, 3) for l in range(-2, 3)))
    for name, (_when, flags) in cpu_backend.VARIANTS.items():
        cfg, _ = config_from_args(flags, cwd=str(tmp_path))
        setup = engine.prepare(cfg)
        assert cpu_backend.kernel_for(setup.interpolate, setup.geometry.curved,
                                      setup.panels is not None) == name


def test_a_stopped_kernel_call_stops_between_rows_and_counts_its_rows(tmp_path):
    from nbnumba.kernels import rowqueue
    setup = setup_for(CONFIGS["sources_dispersion"], tmp_path)
    inputs = engine.kernel_inputs(setup)
    fp = setup.fpixels
    for interpolate in (False, True):     # the lanes and the one-at-a-time kernel
        image = np.zeros(fp * setup.spixels, dtype=np.float32)
        region = (image, fp, np.zeros(1, dtype=np.uint16), False, 0, fp)
        control = rowqueue.control_array()
        control[rowqueue.STOP] = 1            # stopped before the first row: nothing done
        cpu_backend.render(region, 0, setup.spixels, 0, inputs, interpolate, control=control)
        assert control[rowqueue.DONE] == 0 and not image.any()
        control = rowqueue.control_array()
        cpu_backend.render(region, 0, setup.spixels, 0, inputs, interpolate, control=control)
        assert control[rowqueue.DONE] == setup.spixels and image.any()


# ---------------------------------------------------------------- thread-count independence
THREAD_CONFIGS = {
    "mosaic_phi": CONFIGS["mosaic_phi"],
    # hkl_interp_fallback: tricubic interpolation switched off part-way through the image
    "interp_fallback": ["-interpolate", "-cell", "50", "50", "50", "90", "90", "90", "-hkl", SMALL,
                        "-N", "3", "-lambda", "1.0", "-distance", "100", "-detpixels_f", "32",
                        "-detpixels_s", "48", "-pixel", "0.1", "-Xbeam", "0.5", "-Ybeam", "1.6"],
    # phi = 0 as the first of several steps (the C's stale-orientation case)
    "phi0": ["-round_xtal", "-fudge", "0.8", "-Na", "4", "-Nb", "6", "-Nc", "8", "-osc", "1.5",
             "-phistep", "0.5", "-phi", "0", "-cell", "100", "100", "100", "90", "90", "90",
             "-hkl", GRID, "-lambda", "1.0", "-distance", "100", "-detpixels", "48", "-pixel",
             "0.1"],
    "interp_auto_N2": ["-cell", "100", "100", "100", "90", "90", "90", "-hkl", GRID, "-N", "2",
                       "-misset", "3", "5", "7", "-distance", "100", "-detpixels", "40",
                       "-pixel", "0.1"],
}


@pytest.mark.parametrize("name", list(THREAD_CONFIGS))
def test_one_and_two_threads_give_the_same_image(name, tmp_path):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has only one thread here (NUMBA_NUM_THREADS=1)")
    cfg, _ = config_from_args(THREAD_CONFIGS[name], cwd=str(tmp_path))
    setup = engine.prepare(cfg)
    one = engine.render(setup, threads=1)
    two = engine.render(setup, threads=2)
    assert one.image.max() > 0
    assert one.image.tobytes() == two.image.tobytes()
    assert one.omega_sum == two.omega_sum
    assert one.stats == two.stats
    assert one.interpolation_switch == two.interpolation_switch
    if name == "interp_fallback":
        assert one.interpolation_switch is not None
        assert one.interpolation_switch.pixel > 0


# ------------------------------------------------------------------------------- fast sine
def ulp_distance(a, b):
    """Number of representable doubles between a and b (elementwise)."""
    def ordered(x):
        i = np.asarray(x, dtype=np.float64).view(np.int64)
        return np.where(i < 0, -(i & np.int64(0x7FFFFFFFFFFFFFFF)), i)
    return np.abs(ordered(a) - ordered(b))


def _random_arguments():
    """Uniform and log-uniform random arguments below FAST_TRIG_LIMIT."""
    rng = np.random.default_rng(20240601)
    uniform = rng.uniform(-FAST_TRIG_LIMIT, FAST_TRIG_LIMIT, 60000) * (1 - 1e-12)
    magnitude = np.exp(rng.uniform(math.log(1e-9), math.log(FAST_TRIG_LIMIT), 60000))
    log_spread = magnitude * rng.choice([-1.0, 1.0], 60000) * (1 - 1e-12)
    return np.concatenate([uniform, log_spread, [0.0, -0.0, 1e-300, 0.5, 1.0, 2.0]])


def _near_zero_arguments(zero_at):
    """Arguments near the zeros of sin (k pi) or cos ((k + 1/2) pi): where the lattice
    factor sin(N pi h)/sin(pi h) is evaluated at (near-)integer N h and h."""
    rng = np.random.default_rng(7)
    k = rng.integers(1, 400_000, 6000)
    delta = rng.choice([-1.0, 1.0], 6000) * np.exp(rng.uniform(math.log(1e-12),
                                                               math.log(1e-4), 6000))
    x = (k + zero_at) * math.pi + delta
    exact = (np.arange(1, 51) + zero_at) * math.pi
    return np.concatenate([x[np.abs(x) < FAST_TRIG_LIMIT], exact, -exact])


def _assert_one_ulp(fast, libm, x):
    got = np.array([fast(v) for v in x.tolist()])
    want = np.array([libm(v) for v in x.tolist()])
    dist = ulp_distance(got, want)
    worst = int(np.argmax(dist))
    assert dist.max() <= 1, (f"{int(np.count_nonzero(dist > 1))} of {x.size} arguments off by "
                             f"more than 1 ulp; worst x={x[worst]!r}: {got[worst]!r} vs "
                             f"{want[worst]!r} ({int(dist[worst])} ulp)")
    return np.count_nonzero(dist) / x.size


TRIG = [(sin_fast, math.sin, 0.0), (cos_fast, math.cos, 0.5)]


@pytest.mark.parametrize("fast,libm,zero_at", TRIG, ids=["sin", "cos"])
def test_fast_trig_within_one_ulp_of_libm(fast, libm, zero_at):
    assert _assert_one_ulp(fast, libm, _random_arguments()) < 0.05


@pytest.mark.parametrize("fast,libm,zero_at", TRIG, ids=["sin", "cos"])
def test_fast_trig_within_one_ulp_near_its_zeros(fast, libm, zero_at):
    """The documented 1-ulp bound must also hold where the result is small."""
    _assert_one_ulp(fast, libm, _near_zero_arguments(zero_at))


def test_fast_sine_exact_points():
    assert sin_fast(0.0) == 0.0
    assert sin_fast(1.0) == math.sin(1.0)
    assert cos_fast(0.0) == 1.0
