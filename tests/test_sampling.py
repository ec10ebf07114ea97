"""Auto-selection of counts, ranges and steps (spec/sources.md section 3) and the
generated source lists (section 2)."""
import pytest

from conftest import stage_case
from nbnumba import config_from_args, prepare
from nbnumba.config import BeamConfig, DetectorConfig
from nbnumba.constants import RTD
from nbnumba.crystal import phi_angles
from nbnumba.geometry import detector_frame
from nbnumba.sampling import (dispersion_rule, mosaic_rule, phi_rule, spread_rule,
                              thickness_rule, thickness_sanity)
from nbnumba.sources import generated_sources

MRAD = 1e-3
UM = 1e-6


# ------------------------------------------------------------- divergence and dispersion
def test_divsteps_alone_gives_one_radian():
    n, r, s = spread_rule(3, None, None)
    assert (n, r) == (3, 1.0)
    assert s == pytest.approx(1 / 3, rel=1e-15)


def test_divergence_with_divsteps():
    assert spread_rule(5, 2 / 1000.0, None) == (5, 0.002, 0.0005)


def test_range_and_step_use_ceil_of_the_ratio():
    """N = ceil(R/S) on the doubles the flags give (R = 0.28/1000, S = 0.02/1000).

    That quotient is 14 + 3.4e-16 exactly, which IEEE double division rounds to 14.0, so
    the count is 14 (the grid -0.14 .. +0.12 mrad), consistent with the 167 kept points
    spec/sources.md section 2 reports for this grid (a 15 x 15 grid keeps 177). The
    "15 steps" of spec README trap 11 would need x87 extended precision.
    """
    r, s = 0.28 / 1000.0, 0.02 / 1000.0
    assert spread_rule(None, r, s) == (14, r, s)
    assert spread_rule(None, 3.0 / 1000.0, 0.7 / 1000.0)[0] == 5   # ceil(4.2857...)


@pytest.mark.parametrize("args,expected", [
    ((None, None, None), (1, 0.0, 0.0)),          # nothing given: one point
    ((None, None, 0.5), (2, 0.5, 0.5)),           # step only: range = step, 2 points
    ((None, 2.0, None), (2, 2.0, 2.0)),           # range only: step = range, 2 points
    ((1, 2.0, None), (2, 2.0, 2.0)),              # one point asked with a range: 2
    ((4, None, 0.5), (2, 0.5, 0.5)),              # count and step: range = step, 2 points
    ((4, 2.0, 0.5), (4, 2.0, 0.5)),               # all given: unchanged
    ((None, 0.0, None), (1, 0.0, 0.0)),           # zero range: sanity reset
])
def test_spread_rule_branches(args, expected):
    assert spread_rule(*args) == expected


def test_dispersion_alone_gives_two_wavelengths():
    assert dispersion_rule(None, 0.02, None) == (2, 0.02, 0.02)


def test_dispsteps_alone_gives_one_wavelength():
    """The initial dispersion is 0 (not -1), so -dispsteps 4 alone keeps one wavelength."""
    assert dispersion_rule(4, None, None) == (1, 0.0, 0.0)


def _beam_frame():
    frame = detector_frame(DetectorConfig(fpixels=8, spixels=8))
    return frame.beam, frame.polar, frame.vertical


def _generate(**kw):
    return generated_sources(BeamConfig(**kw), *_beam_frame())


@pytest.mark.parametrize("dispersion,steps,factors", [
    (0.02, None, [0.99, 1.01]),
    (0.02, 3, [0.99, 1.00, 1.01]),
    (0.0, 4, [1.0]),
])
def test_generated_wavelengths(dispersion, steps, factors):
    lambdas = _generate(wavelength=1e-10, dispersion=dispersion, dispersion_steps=steps)[2]
    assert list(lambdas) == pytest.approx([1e-10 * f for f in factors], rel=1e-14)


def test_divsteps_3_grid_keeps_four_points():
    """3 x 3 grid at -0.5, -1/6, +1/6 rad on each axis; the ellipse keeps the 4 inner ones."""
    positions, _, _, hdiv, vdiv, _, kept, messages = _generate(hdiv_steps=3, vdiv_steps=3)
    assert hdiv[0] == vdiv[0] == 3 and hdiv[1] == 1.0
    assert kept == 4 and len(positions) == 4
    pairs = sorted(tuple(float(x) for x in m.split()[2:]) for m in messages)
    sixth = 1 / 6
    want = [-sixth, -sixth, -sixth, sixth, sixth, -sixth, sixth, sixth]
    assert [x for p in pairs for x in p] == pytest.approx(want, rel=1e-5)
    unkept = _generate(hdiv_steps=3, vdiv_steps=3, round_divergence=False)
    assert unkept[6] == 9


FINE = dict(hdiv_range=0.28 / 1000.0, hdiv_step=0.02 / 1000.0, vdiv_range=0.28 / 1000.0,
            vdiv_step=0.02 / 1000.0)


def test_fine_divergence_grid_keeps_167():
    out = _generate(**FINE)
    assert out[3][0] == out[4][0] == 14
    assert out[6] == 167 and len(out[2]) == 167


def test_square_divergence_keeps_the_whole_grid():
    assert _generate(round_divergence=False, **FINE)[6] == 14 * 14


def test_zero_range_on_one_axis_is_never_trimmed():
    out = _generate(hdiv_range=2 * MRAD, hdiv_steps=7)
    assert out[6] == 7


def test_cli_flags_hdivrange_hdivstep(tmp_path):
    cfg, _ = config_from_args(["-cell", "50", "50", "50", "90", "90", "90", "-default_F", "1",
                               "-detpixels", "8", "-hdivrange", "0.28", "-hdivstep", "0.02",
                               "-oversample", "1"], cwd=str(tmp_path))
    setup = prepare(cfg)
    assert setup.sources.hdiv == (14, 0.28 / 1000.0, 0.02 / 1000.0)
    assert setup.sources.count == 14   # the vertical range is zero: a line, not trimmed


# -------------------------------------------------------------------------- thickness
def thickness(count=None, t=0.0):
    return thickness_sanity(*thickness_rule(count, t, None))


def test_no_thickness_is_one_layer():
    assert thickness() == (1, 0.0, 0.0)


def test_thickness_alone_is_two_half_layers():
    assert thickness(None, 200 * UM) == (2, 200 * UM, 200 * UM / 2)


def test_thickness_with_steps_uses_n_minus_one():
    n, t, s = thickness(4, 200 * UM)
    assert (n, t) == (4, 200 * UM)
    assert s == 200 * UM / 3


def test_thicksteps_alone_is_one_layer():
    assert thickness(4, 0.0) == (1, 0.0, 0.0)


def _prepare(flags, tmp_path):
    cfg, _ = config_from_args(["-cell", "50", "50", "50", "90", "90", "90", "-default_F", "1",
                               "-detpixels", "8", "-oversample", "1"] + flags, cwd=str(tmp_path))
    return prepare(cfg)


def test_attenuation_defaults_to_one_over_thickness(tmp_path):
    setup = _prepare(["-detector_thick", "200"], tmp_path)
    t = 200 * 1e-6
    assert (setup.layers, setup.thickness, setup.layer_step) == (2, t, t / 2)
    assert setup.mu == 1.0 / t
    assert any("setting detector attenuation depth" in m for m in setup.messages)


def test_detector_abs_zero_before_thick_gives_zero_mu(tmp_path):
    setup = _prepare(["-detector_abs", "0", "-detector_thick", "200"], tmp_path)
    assert setup.mu == 0.0 and setup.layers == 2


# -------------------------------------------------------------------------------- phi
def phis_deg(count=None, osc_deg=None, step_deg=None, phi0_deg=0.0):
    n, o, s = phi_rule(count, None if osc_deg is None else osc_deg / RTD,
                       None if step_deg is None else step_deg / RTD)
    return [p * RTD for p in phi_angles(phi0_deg / RTD, s, n)], o * RTD


@pytest.mark.parametrize("kw,angles,osc", [
    (dict(osc_deg=1), [0, 0.5], 1),
    (dict(step_deg=0.1), [0, 0.1], 0.1),
    (dict(count=4), [0, 0.25, 0.5, 0.75], 1),
    (dict(osc_deg=1, step_deg=0.3), [0, 0.3, 0.6, 0.9], 1),
    (dict(phi0_deg=0.25), [0.25], 0),
    (dict(phi0_deg=0.25, count=1), [0.25], 1),
], ids=["osc", "phistep", "phisteps", "osc_phistep", "phi_alone", "phi_phisteps1"])
def test_phi_rule_examples(kw, angles, osc):
    got, got_osc = phis_deg(**kw)
    assert got == pytest.approx(angles, abs=1e-12)
    assert got_osc == pytest.approx(osc, abs=1e-12)


def test_phisteps_zero_means_one():
    assert phi_rule(0, None, None)[0] == 1


# ----------------------------------------------------------------------------- mosaic
@pytest.mark.parametrize("domains,spread,expected,warning", [
    (None, None, (1, 0.0), None),
    (None, 0.0, (1, 0.0), None),
    (None, 0.01, (10, 0.01), "upping to 10 mosaic domains"),
    (5, None, (1, 0.0), "no mosaic spread specified"),
    (5, 0.0, (1, 0.0), "zero mosaic spread specified"),
    (5, 0.01, (5, 0.01), None),
])
def test_mosaic_rule(domains, spread, expected, warning):
    choice = mosaic_rule(domains, spread)
    assert (choice.domains, choice.spread) == expected
    if warning is None:
        assert choice.messages == []
    else:
        assert any(warning in m for m in choice.messages)


# ------------------------------------------------- sources of golden cases vs the C's list
SOURCE_CASES = ["divergence_round_divsteps", "divergence_square_steps_source_dist",
                "energy_dispersion_divsteps", "sourcefile_missing_columns", "source_weights_mat"]


def c_source_lines(stdout):
    lines = stdout.splitlines()
    start = next(i for i, l in enumerate(lines) if "created a total of" in l and "sources" in l)
    count = int(lines[start].split()[4])
    return count, lines[start + 1:start + 1 + count]


@pytest.mark.parametrize("case_id", SOURCE_CASES)
def test_sources_match_the_c_list(case_id, golden_dir, golden_cases, tmp_path, monkeypatch):
    case = next(c for c in golden_cases if c["id"] == case_id)
    stage_case(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg, _ = config_from_args(case["args"], cwd=str(tmp_path))
    src = prepare(cfg).sources
    count, lines = c_source_lines((golden_dir / "cases" / case_id / "stdout.txt").read_text())
    assert src.count == count
    got = ["%g %g %g   %g %g" % (p[0], p[1], p[2], w, lam)
           for p, w, lam in zip(src.positions, src.weights, src.wavelengths)]
    assert got == lines
