"""The C's rules that fill in counts, ranges and steps the user did not give.

Each rule takes (count, range, step) with ``None`` for "not given" and returns the
resolved triple, exactly as ``spec/sources.md`` section 3 describes (including the
``ceil`` of floating-point ratios: 0.28/0.02 mrad gives 15 steps, not 14). Counts are
ints, ranges and steps floats (radians, fractions or metres as the caller uses them).
"""
import math
from dataclasses import dataclass, field
from typing import List

from .constants import RTD

#: largest count any rule may produce (phi steps, layers, divergence points per axis,
#: wavelengths, mosaic domains); more means a step far too small for its range
MAX_STEPS = 10 ** 6


def _given(x, unset):
    return unset if x is None else x


def _ceil_count(ratio):
    """ceil(range/step) as an int; beyond MAX_STEPS (or infinite) it is MAX_STEPS + 1."""
    if not ratio <= MAX_STEPS:
        return MAX_STEPS + 1
    return int(math.ceil(ratio))


def spread_rule(count, full_range, step):
    """Divergence (per axis) and dispersion: (N, R, S) -> resolved (N, R, S).

    Unset values behave as the C's -1. A final sanity check turns any non-positive
    result into a single point (N=1, R=0, S=0).
    """
    n, r, s = _given(count, -1), _given(full_range, -1.0), _given(step, -1.0)
    if n <= 0:
        if r < 0.0:
            if s <= 0.0:
                n, r, s = 1, 0.0, 0.0
            else:
                r, n = s, 2
        else:
            if s <= 0.0:
                s, n = r, 2
            else:
                n = _ceil_count(r / s)
    else:
        if r < 0.0:
            if s <= 0.0:
                r = 1.0
                s = r / n
            else:
                r, n = s, 2
        else:
            if s <= 0.0:
                if n <= 1:
                    n = 2
                s = r / (n - 1)
    if r <= 0.0 or s <= 0.0 or n <= 0:
        n, r, s = 1, 0.0, 0.0
    return int(n), float(r), float(s)


def dispersion_rule(count, dispersion, step):
    """Dispersion uses the spread rule, but an unset dispersion starts at 0, not -1."""
    return spread_rule(count, 0.0 if dispersion is None else dispersion, step)


def thickness_rule(count, thickness, step):
    """Sensor layers: (N, T, S) -> resolved (N, T, S); T in metres.

    With only a thickness there are 2 layers of T/2; with T and n layers the step is
    T/(n-1) (so the layers span n*T/(n-1), as in the C).
    """
    n, t, s = _given(count, -1), _given(thickness, -1.0), _given(step, -1.0)
    if n <= 0:
        if t < 0.0:
            if s <= 0.0:
                n, t, s = 1, 0.0, 0.0
            else:
                t, n = s, 2
        else:
            if s <= 0.0:
                n = 2
                s = t / n
            else:
                n = _ceil_count(t / s)
    else:
        if t < 0.0:
            if s <= 0.0:
                t = 0.5e-6
                s = t / n
            else:
                t, n = s, 2
        else:
            if s <= 0.0:
                if n <= 1:
                    n = 2
                s = t / (n - 1)
    return int(n), float(t), float(s)


def thickness_sanity(n, t, s):
    """The C's final check on the sensor layers (run after the attenuation default)."""
    if t <= 0.0 or s <= 0.0 or n <= 0:
        return 1, 0.0, 0.0
    return n, t, s


def phi_rule(count, osc, step):
    """Spindle sweep: (N, O, S) -> resolved (N, O, S); O and S in radians.

    Unlike divergence the step is O/N (not O/(N-1)) and there is no sanity reset.
    """
    n, o, s = _given(count, -1), _given(osc, -1.0), _given(step, -1.0)
    if n < 0:
        if o < 0.0:
            if s <= 0.0:
                n, o, s = 1, 0.0, 0.0
            else:
                o, n = s, 2
        else:
            if s <= 0.0:
                n = 2
                s = o / 2.0
            else:
                n = _ceil_count(o / s)
    else:
        if n == 0:
            n = 1
        if o < 0.0:
            if s <= 0.0:
                o = 1.0 / RTD
                s = o / n
            else:
                o, n = s, 2
        else:
            if s < 0.0:
                s = o / n
    return int(n), float(o), float(s)


@dataclass
class MosaicChoice:
    domains: int
    spread: float
    messages: List[str] = field(default_factory=list)


def mosaic_rule(domains, spread):
    """Mosaic domains and spread (rad) with the C's warnings."""
    d, m = _given(domains, -1), _given(spread, -1.0)
    messages = []
    if d <= 0:
        if m < 0.0:
            d, m = 1, 0.0
        elif m == 0.0:
            d = 1
        else:
            messages.append("WARNING: finite mosaicity with only one domain! upping to 10 mosaic domains")
            d = 10
    else:
        if m < 0.0:
            messages.append("WARNING: no mosaic spread specified.  setting mosaic_domains = 1")
            d, m = 1, 0.0
        elif m == 0.0:
            messages.append("WARNING: zero mosaic spread specified.  setting mosaic_domains = 1")
            d = 1
    return MosaicChoice(int(d), float(m), messages)


def recommended_oversample(crystal_extent, wavelength, distance, pixel_size):
    """Sub-pixels per axis that resolve the spot shape: ceil(3 x size / (lambda d / pixel)).

    The count is ``inf`` (a float) where the ratio overflows or divides by zero (a
    subnormal distance): the C's integer conversion is then undefined."""
    reciprocal_pixel = wavelength * distance / pixel_size
    ratio = 3.0 * crystal_extent / reciprocal_pixel if reciprocal_pixel != 0.0 else math.inf
    if not math.isfinite(ratio):
        return math.inf, reciprocal_pixel
    return max(int(math.ceil(ratio)), 1), reciprocal_pixel
