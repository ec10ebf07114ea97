"""Diffuse scattering of an amorphous sample (water, air, ...), as the C *nonBragg*.

The sample is a block of ``molecules`` identical scatterers whose structure factor
depends only on sin(theta)/lambda (a :class:`StolTable`). Each pixel receives
``F^2 x polarization x solid angle`` summed over sources and sub-pixels, times
``r_e^2 x fluence x molecules / steps`` photons. F is interpolated with the C's
four-point Lagrange polynomial between table points; beyond the table it is the first
(or last) value.

:class:`NonBraggConfig` holds the C's variables in SI units (m, rad, photons/m^2, g/m^3,
g/mol); :func:`nonbragg` renders and returns the float image and the numbers the C
prints. The set-up follows the C statement by statement so that every value is
bit-identical.
"""
import dataclasses
import math
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from .. import _jit, memory, running, vec
from ..errors import check_callback
from ..config import (RANGES, ConfigError, Fields, Plausible, check_number, check_plausible,
                      no_field_message, shown, unfit_dtype)
from ..constants import RTD
from ..kernels.rowqueue import control_array, row_done, take_row
from ..physics import lagrange4, polarization_factor, rotate_about_axis
from ..sampling import MAX_STEPS

AVOGADRO = 6.02214179e23
R_E_SQR = 7.94079248018965e-30
DEFAULT_FLUENCE = 125932015286227086360700780544.0
#: largest |F| of a table (F is squared in double precision)
MAX_F = 1e150
#: largest single-precision number: a pixel beyond it is infinite
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: sin(theta)/lambda multipliers of the table columns: -stol (1/A), -4stol, -Q (1/A)
STOL_UNITS = {"stol": 1e10, "4stol": 1e10 / 4, "Q": 1e10 / math.pi / 4}


@dataclass
class StolTable(Fields):
    """Structure factor versus sin(theta)/lambda.

    stol: (n,) sin(theta)/lambda in the table's unit; F: (n,) structure factors (NaN
    for a missing value, taken as 0); unit: "stol" (1/A), "4stol" (4 sin(theta)/lambda,
    1/A) or "Q" (4 pi sin(theta)/lambda, 1/A).
    """
    stol: np.ndarray
    F: np.ndarray
    unit: str = "stol"

    def __post_init__(self):
        self.stol = _numbers(self.stol, "stol table: sin(theta)/lambda", "table unit").ravel()
        self.F = _numbers(self.F, "stol table: F", "electrons").ravel()
        if not isinstance(self.unit, str) or self.unit not in STOL_UNITS:
            raise ConfigError(f"stol table unit {shown(self.unit)} is not stol, 4stol or Q")
        if self.stol.size == 0 or self.stol.size != self.F.size:
            raise ConfigError("stol table: needs one F per sin(theta)/lambda value, at least one")
        if not np.isfinite(self.stol).all():
            raise ConfigError("stol table: sin(theta)/lambda values must be finite")
        if np.isinf(self.F).any() or np.isnan(self.F).all():
            raise ConfigError("stol table: F values must be finite (and at least one given)")
        # the interpolation's guard points sit at +-1e98 1/m; F is squared
        with np.errstate(over="ignore"):
            beyond = self.stol[np.abs(self.stol * self.multiplier) >= 1e97]
        if beyond.size:
            raise ConfigError(f"stol table: sin(theta)/lambda {beyond[0]:g} is out of range "
                              f"(at most {1e97 / self.multiplier:g} in this unit)")
        huge = self.F[np.abs(self.F) > MAX_F]
        if huge.size:
            raise ConfigError(f"stol table: F {huge[0]:g} is out of range (F squared must be "
                              f"a double-precision number: |F| at most {MAX_F:g})")
        if self.stol.size > 1 and not (np.diff(self.stol) > 0).all():
            raise ConfigError("stol table: sin(theta)/lambda values must increase strictly "
                              "(the interpolation divides by their differences)")

    @property
    def multiplier(self):
        return STOL_UNITS[self.unit]

    def padded(self):
        """The C's interpolation arrays: (stol in 1/m, F) with two guard points at each
        end (+-1e98, +-1e99) holding the first and last given F."""
        n = self.stol.size + 4
        s = np.empty(n)
        f = np.empty(n)
        s[2:n - 2] = self.stol * self.multiplier
        given = self.F[~np.isnan(self.F)]
        f[2:n - 2] = np.where(np.isnan(self.F), 0.0, self.F)
        s[0], s[1], s[n - 2], s[n - 1] = -1e99, -1e98, 1e98, 1e99
        f[0] = f[1] = given[0]
        f[n - 2] = f[n - 1] = given[-1]
        return s, f


@dataclass
class NonBraggConfig(Fields):
    """The C nonBragg's parameters, SI units. Defaults are the C's.

    Detector: ``xpixels``/``ypixels`` (0: from ``detsize``/``pixel_size``), m for sizes
    and positions; ``xbeam``/``ybeam``/``xclose``/``yclose``/``orgx``/``orgy``/
    ``close_distance`` NaN means "not given". Angles in radians. ``sources``: None or an
    (n, 5) array X Y Z weight lambda (m, NaN for defaults) as from a source file.
    """
    xpixels: int = 0
    ypixels: int = 0
    pixel_size: float = 0.1e-3
    detsize_x: float = 102.4e-3
    detsize_y: float = 102.4e-3
    distance: float = 100.0e-3
    close_distance: float = float("nan")
    xbeam: float = float("nan")
    ybeam: float = float("nan")
    xclose: float = float("nan")
    yclose: float = float("nan")
    orgx: float = float("nan")
    orgy: float = float("nan")
    pivot: str = "beam"
    xdet_vector: tuple = (0.0, 0.0, 1.0)
    ydet_vector: tuple = (0.0, -1.0, 0.0)
    beam_vector: tuple = (1.0, 0.0, 0.0)
    polar_vector: tuple = (0.0, 0.0, 1.0)
    twotheta_axis: tuple = (0.0, 1.0, 0.0)
    detector_rot: tuple = (0.0, 0.0, 0.0)
    twotheta: float = 0.0
    curved_detector: bool = False
    point_pixel: bool = False
    polarization: float = 0.0
    nopolar: bool = False
    oversample: int = -1
    roi: tuple = (-1, -1, -1, -1)
    wavelength: float = 1.0e-10
    fluence: float = DEFAULT_FLUENCE
    flux: float = 0.0
    exposure: float = 1.0
    beamsize: float = 1e-4
    dispersion: float = 0.0
    dispsteps: int = -1
    hdivrange: float = -1.0
    vdivrange: float = -1.0
    hdivstep: float = -1.0
    vdivstep: float = -1.0
    hdivsteps: int = -1
    vdivsteps: int = -1
    round_div: bool = True
    source_distance: float = 10.0
    sources: Optional[np.ndarray] = None
    sample_x: float = 1e-4
    sample_y: float = 1e-4
    sample_z: float = 1e-4
    density: float = 1.0e6
    molecular_weight: float = 18.0
    molecules: float = 0.0
    phi0: float = 0.0
    osc: float = -1.0
    phistep: float = -1.0
    phisteps: int = -1


@dataclass
class NonBraggResult:
    """A rendered amorphous-scattering image and what the C reports about it.

    image: float32 (slow, fast), photons per pixel; roi: (xmin, xmax, ymin, ymax);
    max_I, max_xy (m, detector coordinates of the last sub-pixel of the brightest
    pixel), mean, rms, rmsd: the C's statistics; omega_sum: solid angle (sr);
    header: SMV header fields (key, text, semicolon); lines: the C's set-up lines.
    """
    image: np.ndarray
    roi: tuple
    max_I: float
    max_xy: tuple
    mean: float
    rms: float
    rmsd: float
    omega_sum: float
    header: list
    lines: List[str] = field(default_factory=list)
    #: sums of the rendered pixels and their float32 squares (for :func:`restate`)
    sums: tuple = (0.0, 0.0)
    #: with an observed image: (F per pixel, bin per pixel, pixels per bin, the padded
    #: table's sin(theta)/lambda in 1/m, its unit multiplier), for :func:`fit_table`
    observed_F: Optional[tuple] = None


def _steps(steps, rng_, step, one_range):
    """The C's rule for (steps, range, step) of divergence and dispersion.

    one_range: the range used when only a step count is given (1.0 for these)."""
    if steps <= 0:
        if rng_ < 0.0:
            if step <= 0.0:
                return 1, 0.0, 0.0
            return 2, step, step
        if step <= 0.0:
            return 2, rng_, rng_
        ratio = rng_ / step
        if not ratio <= MAX_STEPS:   # a step far too small (or 0 < step < 1e-300)
            return MAX_STEPS + 1, rng_, step
        return int(math.ceil(ratio)), rng_, step
    if rng_ < 0.0:
        if step <= 0.0:
            return steps, one_range, one_range / steps
        return 2, step, step
    if step <= 0.0:
        if steps <= 1:
            steps = 2
        return steps, rng_, rng_ / (steps - 1)
    return steps, rng_, step


def _osc(cfg):
    """The oscillation range (rad) the C writes in the header."""
    phisteps, osc, phistep = cfg.phisteps, cfg.osc, cfg.phistep
    if phisteps < 0:
        if osc < 0.0:
            return 0.0 if phistep <= 0.0 else phistep
        return osc
    if osc < 0.0:
        return 1.0 / RTD if phistep <= 0.0 else phistep
    return osc


def _resolve_steps(cfg):
    """(steps, range, step) of the horizontal and vertical divergence and the dispersion,
    after the C's rules and sanity checks."""
    out = []
    for steps, rng_, step in ((cfg.hdivsteps, cfg.hdivrange, cfg.hdivstep),
                              (cfg.vdivsteps, cfg.vdivrange, cfg.vdivstep),
                              (cfg.dispsteps, cfg.dispersion, -1.0)):
        n, r, st = _steps(steps, rng_, step, 1.0)
        if r <= 0.0 or st <= 0.0 or n <= 0:
            n, r, st = 1, 0.0, 0.0
        out.append((n, r, st))
    return out


def _sources(cfg, resolved, beam, polar, vert, say):
    """Source table (n, 5): X Y Z weight lambda, and the number of divergence points
    (-1 with a source file, as the C prints), with the C's report lines."""
    if cfg.sources is not None:
        table = np.array(cfg.sources, dtype=float).reshape(-1, 5)
        defaults = (-cfg.source_distance * beam[0], -cfg.source_distance * beam[1],
                    -cfg.source_distance * beam[2], 1.0, cfg.wavelength)
        for col, value in enumerate(defaults):
            table[np.isnan(table[:, col]), col] = value
        divsteps = -1
    else:
        (hsteps, hrange, hstep), (vsteps, vrange, vstep), (dsteps, disp, dstep) = resolved
        points = []
        for ht in range(hsteps):
            for vt in range(vsteps):
                hdiv = hstep * ht - hrange / 2.0
                vdiv = vstep * vt - vrange / 2.0
                if cfg.round_div:
                    with np.errstate(all="ignore"):
                        test = (np.float64(hdiv * hdiv - hstep * hstep / 4.0 * (1 - hsteps % 2))
                                / np.float64(hrange) / np.float64(hrange))
                        test += (np.float64(vdiv * vdiv - vstep * vstep / 4.0 * (1 - vsteps % 2))
                                 / np.float64(vrange) / np.float64(vrange))
                    if test * 4.0 > 1.1:
                        continue
                points.append((hdiv, vdiv))
                say("divergence deviation: %g %g" % (hdiv, vdiv))
        divsteps = len(points)
        waves = []
        for t in range(dsteps):
            lam = cfg.wavelength * (1.0 + dstep * t - disp / 2.0)
            waves.append(lam)
            say("lambda%d = %.15g" % (t, lam))
        rows = []
        start = (-cfg.source_distance * beam[0], -cfg.source_distance * beam[1],
                 -cfg.source_distance * beam[2])
        for hdiv, vdiv in points:
            turned = vec.rot_axis(vec.rot_axis(start, polar, vdiv), vert, hdiv)
            for lam in waves:
                rows.append((turned[0], turned[1], turned[2], 1.0, lam))
        table = np.array(rows, dtype=float).reshape(-1, 5)
    say("  created a total of %d sources:" % len(table))
    for x, y, z, w, lam in table:
        say("%g %g %g   %g %g" % (x, y, z, w, lam))
    return table, divsteps


@_jit.scalar
def _unitize(x, y, z):
    mag = math.sqrt(x * x + y * y + z * z)
    if mag != 0.0:
        return x / mag, y / mag, z / mag, mag
    return 0.0, 0.0, 0.0, mag


@_jit.serial_nogil
def _render(xpixels, ypixels, roi, oversample, pixel_size, pix0, xdet, ydet, beam,
            distance, close_distance, curved, point_pixel, src, stol_of, F_of, nopolar,
            kahn, polar, fluence, molecules, steps, image, stats, observed, ignore, adc,
            f_obs, bin_of, pixels_in, control):
    """The C's pixel loop, serial (the interpolation start and the re-normalised
    polarization axis carry over from pixel to pixel, as in the C). Rows are taken in
    order from the control array (:mod:`nbnumba.kernels.rowqueue`), which counts them
    and stops the loop before its next row when asked.

    With an observed image (``observed.size > 0``), each rendered pixel's observed
    counts are turned back into a structure factor ``f_obs`` with the last evaluation's
    polarization, solid angle and sin(theta)/lambda, and binned by the table point
    nearest that sin(theta)/lambda (``bin_of``, ``pixels_in``; ignored values: bin 0).
    """
    subpixel = pixel_size / oversample
    nearest = 0
    pol = 1.0
    omega = 0.0
    stol = 0.0
    nstol = stol_of.size
    px, py, pz = polar[0], polar[1], polar[2]
    omega_sum = 0.0
    max_I = 0.0
    max_x = 0.0
    max_y = 0.0
    total = 0.0
    total_sq = 0.0
    n = 0
    xdet_ = 0.0
    ydet_ = 0.0
    for _ in range(ypixels):
        yp = take_row(control, ypixels)
        if yp < 0:   # stopped
            break
        for xp in range(xpixels):
            j = yp * xpixels + xp
            if xp < roi[0] or xp > roi[1] or yp < roi[2] or yp > roi[3]:
                continue
            I = 0.0
            for suby in range(oversample):
                for subx in range(oversample):
                    xdet_ = subpixel * (xp * oversample + subx) + subpixel / 2.0
                    ydet_ = subpixel * (yp * oversample + suby) + subpixel / 2.0
                    p1 = xdet_ * xdet[0] + ydet_ * ydet[0] + pix0[0]
                    p2 = xdet_ * xdet[1] + ydet_ * ydet[1] + pix0[1]
                    p3 = xdet_ * xdet[2] + ydet_ * ydet[2] + pix0[2]
                    if curved:
                        v1 = distance * beam[0]
                        v2 = distance * beam[1]
                        v3 = distance * beam[2]
                        a2 = p2 / distance
                        a3 = p3 / distance
                        n1, n2, n3 = rotate_about_axis(v1, v2, v3, ydet[0], ydet[1], ydet[2], a2)
                        p1, p2, p3 = rotate_about_axis(n1, n2, n3, xdet[0], xdet[1], xdet[2], a3)
                    dx, dy, dz, airpath = _unitize(p1, p2, p3)
                    omega = pixel_size * pixel_size / airpath / airpath * close_distance / airpath
                    if point_pixel:
                        omega = 1.0 / airpath / airpath
                    omega_sum += omega
                    for s in range(src.shape[0]):
                        ix, iy, iz, _ = _unitize(-src[s, 0], -src[s, 1], -src[s, 2])
                        lam = src[s, 4]
                        sx = (dx - ix) / lam
                        sy = (dy - iy) / lam
                        sz = (dz - iz) / lam
                        stol = 0.5 * math.sqrt(sx * sx + sy * sy + sz * sz)
                        while stol > stol_of[nearest] and nearest <= nstol:
                            nearest += 1
                        while stol < stol_of[nearest] and nearest >= 2:
                            nearest -= 1
                        k = nearest - 1
                        F = lagrange4(stol_of[k], stol_of[k + 1], stol_of[k + 2], stol_of[k + 3],
                                      F_of[k], F_of[k + 1], F_of[k + 2], F_of[k + 3], stol)
                        sign = 1.0
                        if F < 0.0:
                            sign = -1.0
                        if not nopolar:
                            pol, dx, dy, dz = polarization_factor(
                                kahn, ix, iy, iz, dx, dy, dz, px, py, pz)
                            # the C re-normalises the axis in place, call after call
                            px, py, pz, _ = _unitize(px, py, pz)
                        else:
                            pol = 1.0
                        I += sign * F * F * pol * omega * src[s, 3]
            v = np.float32(I * R_E_SQR * fluence * molecules / steps)
            image[j] = v
            if observed.size > 0:
                invalid = 0
                for k in range(ignore.size):
                    if np.float64(observed[j]) == ignore[k]:
                        invalid += 1
                dev = np.float32(np.float64(observed[j]) - adc)
                sgn = 1.0
                if dev < 0.0:
                    sgn = -1.0
                dev = abs(dev)
                f_obs[j] = np.float32(sgn * math.sqrt(
                    np.float64(dev) / pol / omega / fluence / R_E_SQR / molecules * steps))
                b = 0
                if invalid == 0:
                    b = nearest
                    if stol > (stol_of[b] + stol_of[b + 1]) / 2.0:
                        b += 1
                pixels_in[b] += 1
                bin_of[j] = b
            vd = np.float64(v)
            if vd > max_I:
                max_I = vd
                max_x = xdet_
                max_y = ydet_
            total += vd
            total_sq += np.float64(np.float32(v * v))
            n += 1
        row_done(control)
    stats[0] = max_I
    stats[1] = max_x
    stats[2] = max_y
    stats[3] = total
    stats[4] = total_sq
    stats[5] = n
    stats[6] = omega_sum


@_jit.serial
def _rmsd(image, xpixels, ypixels, roi, mean):
    """The C's rmsd: its loop reads each pixel's right-hand neighbour (the index is
    advanced before use; the pixel after the last one is 0), kept for identical numbers."""
    total = 0.0
    n = 0
    j = 0
    for yp in range(ypixels):
        for xp in range(xpixels):
            j += 1
            if xp < roi[0] or xp > roi[1] or yp < roi[2] or yp > roi[3]:
                continue
            v = np.float64(image[j]) if j < image.size else 0.0
            t = v - mean
            total += t * t
            n += 1
    if n <= 1:
        n = 2
    return math.sqrt(total / (n - 1))


def restate(result, count):
    """(mean, rms, rmsd) of ``result`` computed with ``count`` pixels, as the C prints them
    after ``-stolout``, whose last bin's pixel count replaces the rendered-pixel count
    (kept: the printed statistics and the default PGM scale depend on it)."""
    total, total_sq = result.sums
    n0 = count if count > 0 else 1
    mean = total / n0
    n1 = n0 if n0 > 1 else 2
    rms = math.sqrt(total_sq / (n1 - 1))
    ys, xs = result.image.shape
    rmsd = _rmsd(result.image.ravel(), xs, ys, np.array(result.roi, dtype=np.int64), mean)
    return float(mean), float(rms), float(rmsd)


def _rot_axis_in_place(v, axis, phi):
    """The C nonBragg's two-theta rotation: a rotation about ``axis`` written into its own
    input, so that the later components use the already rotated earlier ones (the
    detector axes are then not quite orthonormal). Kept for identical images; a zero
    angle is an exact identity."""
    s = math.sin(phi)
    c = math.cos(phi)
    x, y, z = v
    d = (axis[0] * x + axis[1] * y + axis[2] * z) * (1.0 - c)
    x = axis[0] * d + x * c + (-axis[2] * y + axis[1] * z) * s
    y = axis[1] * d + y * c + (+axis[2] * x - axis[0] * z) * s
    z = axis[2] * d + z * c + (-axis[1] * x + axis[0] * y) * s
    return (x, y, z)


def _unit(v):
    return vec.unit(tuple(float(x) for x in v))[0]


#: memory per detector pixel (bytes): the float image, the observed structure factors
#: and their bins, and the command's integer, noise and PGM images and their temporaries
BYTES_PER_PIXEL = 48

#: memory per source (bytes): its row of the table and the lists it is built from
BYTES_PER_SOURCE = 256


def _check_work(cfg, resolved, pixels):
    """Before anything is allocated: the divergence and dispersion counts and the sources
    within what nbnumba handles (:data:`~nbnumba.sampling.MAX_STEPS` each, as for
    nanoBragg's sources), and the memory of the images and the source table available
    (:class:`ConfigError`, one line)."""
    (hsteps, _, _), (vsteps, _, _), (dsteps, _, _) = resolved
    sources = hsteps * vsteps * dsteps
    if cfg.sources is not None:
        sources = len(np.asarray(cfg.sources).reshape(-1, 5))
    for count, what in ((hsteps, "horizontal divergence steps"),
                        (vsteps, "vertical divergence steps"), (dsteps, "wavelength steps"),
                        (sources, "sources")):
        if count > MAX_STEPS:
            raise ConfigError(f"nonbragg: {count} {what} is more than nbnumba handles "
                              f"({MAX_STEPS}); check the step sizes and counts")
    memory.require(BYTES_PER_PIXEL * pixels + BYTES_PER_SOURCE * sources,
                   f"nonbragg: a render of {pixels} pixels and {sources} sources",
                   "use fewer pixels (-detpixels) or sources", ConfigError)


def _check_finite(fluence, volume, molecules):
    """ConfigError naming the flags when the fluence, the sample's volume or its number of
    molecules is not a finite number (every pixel would be infinite or NaN, as in the C)."""
    for value, what, flags in (
            (fluence, "the fluence", "-fluence, or -flux x -exposure / -beamsize^2"),
            (volume, "the sample volume", "-samplesize, -thickness, -width, -height"),
            (molecules, "the number of molecules", "-density, -molecules, -MW and the "
             "sample size")):
        if not math.isfinite(value):
            raise ConfigError(f"nonbragg: {what} overflows ({value:g}): check {flags}")


def _check_image(image, F_of, cfg):
    """ConfigError when rendered pixels are infinite or NaN (single-precision overflow),
    naming what multiplies into them: the C writes such an image, which no program can
    use."""
    bad = int(image.size - np.count_nonzero(np.isfinite(image)))
    if bad:
        raise ConfigError(
            "nonbragg: %d of %d pixels overflow single precision (more than %g photons, or "
            "NaN): the table's largest F (%g), -polar (%g), -fluence/-flux and the sample's "
            "molecules (-density, -samplesize) multiply to too much"
            % (bad, image.size, FLOAT32_MAX, np.max(np.abs(F_of)), cfg.polarization))


#: fields whose NaN means "not given"
_NOT_GIVEN = {"close_distance", "xbeam", "ybeam", "xclose", "yclose", "orgx", "orgy"}

#: sample sizes: an air path may be long, a sample is not kilometres
_SAMPLE = Plausible(None, 10.0, "lengths are in metres (1 mm = 1e-3 m)")

#: field -> (unit, accepted magnitudes, the nb-nonbragg flag and its unit)
_UNITS = {
    "pixel_size": ("m", RANGES["pixel"], "-pixel, mm"),
    "detsize_x": ("m", RANGES["detector length"], "-detsize_x, mm"),
    "detsize_y": ("m", RANGES["detector length"], "-detsize_y, mm"),
    "distance": ("m", RANGES["distance"], "-distance, mm"),
    "close_distance": ("m", RANGES["distance"], "-close_distance, mm"),
    "xbeam": ("m", RANGES["detector length"], "-Xbeam, mm"),
    "ybeam": ("m", RANGES["detector length"], "-Ybeam, mm"),
    "xclose": ("m", RANGES["detector length"], "-Xclose, mm"),
    "yclose": ("m", RANGES["detector length"], "-Yclose, mm"),
    "wavelength": ("m", RANGES["wavelength"], "-lambda, Angstrom"),
    "beamsize": ("m", RANGES["beam size"], "-beamsize, mm"),
    "sample_x": ("m", _SAMPLE, "-thickness, mm"),
    "sample_y": ("m", _SAMPLE, "-width, mm"),
    "sample_z": ("m", _SAMPLE, "-height, mm"),
    "twotheta": ("rad", RANGES["turn"], "-twotheta, degrees"),
    "detector_rot": ("rad", RANGES["turn"], "-detector_rotx/y/z, degrees"),
    "osc": ("rad", RANGES["turn"], "-osc, degrees"),
    "phistep": ("rad", RANGES["turn"], "-phistep, degrees"),
    "hdivrange": ("rad", RANGES["divergence"], "-hdivrange, mrad"),
    "vdivrange": ("rad", RANGES["divergence"], "-vdivrange, mrad"),
    "hdivstep": ("rad", RANGES["divergence"], "-hdivstep, mrad"),
    "vdivstep": ("rad", RANGES["divergence"], "-vdivstep, mrad"),
    "dispersion": ("fraction of lambda", RANGES["fraction"], "-dispersion, %"),
}


def _check_types(cfg):
    """ConfigError unless every field of ``cfg`` holds a value of its type (NaN only
    where it means "not given")."""
    if not isinstance(cfg, NonBraggConfig):
        raise ConfigError(f"nonbragg: config must be a NonBraggConfig, got "
                          f"{type(cfg).__name__}")
    for f in dataclasses.fields(cfg):
        name, value = f"NonBraggConfig.{f.name}", getattr(cfg, f.name)
        unit = _UNITS.get(f.name, ("as documented",))[0]
        if f.type is int:
            check_number(name, "count", value, integer=True)
        elif f.type is float:
            if f.name in _NOT_GIVEN and isinstance(value, float) and math.isnan(value):
                continue
            check_number(name, unit, value)
        elif f.type is bool:
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"{name} must be True or False, got {shown(value)}")
        elif f.type is str:
            if not isinstance(value, str) or value not in ("beam", "sample"):
                raise ConfigError(f"{name} must be 'beam' or 'sample', got {shown(value)}")
        elif f.type is tuple:
            length = 4 if f.name == "roi" else 3
            if not isinstance(value, (tuple, list, np.ndarray)) or len(value) != length:
                raise ConfigError(f"{name} [{unit}] must be a sequence of {length} numbers, "
                                  f"got {shown(value)}")
            for item in value:
                check_number(name, unit, item, integer=f.name == "roi")
        elif f.name == "sources" and value is not None:
            array = _numbers(value, name, "m, m, m, 1, m")
            if array.ndim != 2 or array.shape[1] != 5:
                raise ConfigError(f"{name} must be an (n, 5) array (X Y Z weight lambda per "
                                  f"source, m; NaN for the defaults), got shape {array.shape}")


def _numbers(value, name, unit):
    """``value`` as a float64 array; ConfigError for what cannot hold real numbers."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} [{unit}] must be an array of numbers, got "
                          f"{type(value).__name__}") from None
    why = unfit_dtype(raw.dtype)
    if why is not None or raw.dtype.kind not in "biuf":
        raise ConfigError(f"{name} [{unit}] must be an array of real numbers, got dtype "
                          f"{raw.dtype}" + (f": {why}" if why else ""))
    return raw.astype(float)


def _check(cfg):
    """Types, then units (a length in mm given as m ...), then the values the C needs."""
    _check_types(cfg)
    for name, (unit, limits, flag) in _UNITS.items():
        for value in np.ravel(getattr(cfg, name)):
            check_plausible(f"NonBraggConfig.{name} (flag {flag})", value, unit, limits)
    for name in ("pixel_size", "wavelength", "sample_x", "sample_y", "sample_z",
                 "molecular_weight", "source_distance"):
        value = getattr(cfg, name)
        if not (math.isfinite(value) and value > 0.0):
            raise ConfigError(f"nonbragg: {name} must be positive (got {shown(value)})")


def _ignored_values(ignore):
    """The ``ignore`` counts as the float64 array the kernel compares with: each a pixel
    value of an SMV image, truncated to an integer from 0 to 65535 as the C stores it."""
    try:
        values = list(ignore)
    except TypeError:
        raise ConfigError(f"nonbragg: ignore must be a sequence of counts, got "
                          f"{type(ignore).__name__}") from None
    for v in values:
        check_number("nonbragg: ignore", "counts", v)
        if not -1.0 < float(v) < 65536.0:
            raise ConfigError(f"nonbragg: ignore value {float(v):g} is not an SMV pixel "
                              "value (0 to 65535)")
    return np.array([float(int(float(v))) for v in values], dtype=np.float64)


@_jit.without_blas_probe
def nonbragg(table, config=None, say=None, observed=None, ignore=(), adc=40.0, **fields):
    """Render the diffuse scattering of an amorphous sample, exactly as the C nonBragg.

    table: a :class:`StolTable` (or an (n, 2) array of sin(theta)/lambda in 1/A and F).
    config: a :class:`NonBraggConfig` (default: the C's defaults); ``fields`` override
    its fields by name (SI units). say: callable receiving the C's set-up lines.
    observed: optional image (counts, (slow, fast) or raster order) to compare with: its
    per-bin structure factors are then in ``result.table_fit`` (see :func:`fit_table`);
    ignore: observed values that mark invalid pixels; adc: its offset, counts.
    Returns a :class:`NonBraggResult`; ConfigError for unusable values.
    """
    if not isinstance(table, StolTable):
        arr = _numbers(table, "nonbragg: table", "1/Angstrom, electrons")
        if arr.ndim != 2 or arr.shape[1] < 2:
            raise ConfigError("nonbragg: table must be a StolTable or an (n, 2) array")
        table = StolTable(arr[:, 0], arr[:, 1])
    cfg = NonBraggConfig() if config is None else config
    if not isinstance(cfg, NonBraggConfig):
        raise ConfigError(f"nonbragg: config must be a NonBraggConfig (or None), got "
                          f"{type(cfg).__name__}")
    if fields:
        for name in fields:
            if name not in NonBraggConfig.__dataclass_fields__:
                raise ConfigError("nonbragg: " + no_field_message(NonBraggConfig, name))
        cfg = dataclasses.replace(cfg, **fields)
    _check(cfg)
    if say is not None:
        check_callback(say, "nonbragg: say", ("line",))
    check_number("adc", "counts", adc)
    ignore = _ignored_values(ignore)
    lines = []

    def tell(line):
        lines.append(line)
        if say is not None:
            say(line)

    pixel = cfg.pixel_size
    detsize_x, detsize_y = cfg.detsize_x, cfg.detsize_y
    if cfg.xpixels:
        detsize_x = pixel * cfg.xpixels
    if cfg.ypixels:
        detsize_y = pixel * cfg.ypixels
    xpixels = int(math.ceil(detsize_x / pixel - 0.5))
    ypixels = int(math.ceil(detsize_y / pixel - 0.5))
    if xpixels <= 0 or ypixels <= 0 or xpixels * ypixels > 1 << 28:
        raise ConfigError(f"nonbragg: detector of {xpixels}x{ypixels} pixels "
                          "(give -detpixels, or -detsize and -pixel)")
    xclose, yclose = cfg.xclose, cfg.yclose
    if not math.isnan(cfg.orgx):
        xclose = cfg.orgx * pixel
    if not math.isnan(cfg.orgy):
        yclose = cfg.orgy * pixel
    if math.isnan(xclose):
        xclose = (detsize_x - pixel) / 2.0
    if math.isnan(yclose):
        yclose = (detsize_y + pixel) / 2.0
    xbeam = xclose if math.isnan(cfg.xbeam) else cfg.xbeam
    ybeam = yclose if math.isnan(cfg.ybeam) else cfg.ybeam
    roi = list(cfg.roi)
    roi[0] = 0 if roi[0] < 0 else roi[0]
    roi[1] = xpixels if roi[1] < 0 else roi[1]
    roi[2] = 0 if roi[2] < 0 else roi[2]
    roi[3] = ypixels if roi[3] < 0 else roi[3]

    fluence = cfg.fluence
    if cfg.flux != 0.0 and cfg.exposure > 0.0 and cfg.beamsize >= 0:
        if cfg.beamsize == 0.0:
            raise ConfigError("nonbragg: -flux with a zero -beamsize gives an infinite "
                              "fluence (give -beamsize or -fluence)")
        fluence = cfg.flux * cfg.exposure / cfg.beamsize / cfg.beamsize
    sample_y, sample_z = cfg.sample_y, cfg.sample_z
    if cfg.beamsize >= 0:
        if cfg.beamsize < sample_y:
            tell("WARNING: clipping sample (%g m high) with beam (%g m)" % (sample_y, cfg.beamsize))
            sample_y = cfg.beamsize
        if cfg.beamsize < sample_z:
            tell("WARNING: clipping sample (%g m wide) with beam (%g m)" % (sample_z, cfg.beamsize))
            sample_z = cfg.beamsize
    volume = cfg.sample_x * sample_y * sample_z
    density = cfg.density
    if cfg.molecules != 0:
        density = cfg.molecules / volume / AVOGADRO * cfg.molecular_weight
    molecules = volume * density * AVOGADRO / cfg.molecular_weight
    _check_finite(fluence, volume, molecules)

    beam = _unit(cfg.beam_vector)
    xdet = _unit(cfg.xdet_vector)
    ydet = _unit(cfg.ydet_vector)
    zdet = _unit(vec.cross(xdet, ydet))
    polar = _unit(cfg.polar_vector)
    vert = _unit(vec.cross(beam, polar))
    osc = _osc(cfg)

    rx, ry, rz = cfg.detector_rot
    axis = tuple(float(x) for x in cfg.twotheta_axis)
    ratio = vec.dot(beam, vec.rot_xyz(zdet, rx, ry, rz))
    if ratio == 0.0:
        ratio = 2.2250738585072014e-308
    close_distance = cfg.close_distance
    if math.isnan(close_distance):
        close_distance = ratio * cfg.distance
    distance = close_distance / ratio
    pix0 = (0.0, 0.0, 0.0)
    if cfg.pivot == "sample":
        tell("pivoting detector around sample")
        pix0 = tuple(-xclose * xdet[k] - yclose * ydet[k] + close_distance * zdet[k]
                     for k in range(3))
        pix0 = _rot_axis_in_place(vec.rot_xyz(pix0, rx, ry, rz), axis, cfg.twotheta)
    xdet, ydet, zdet = (_rot_axis_in_place(vec.rot_xyz(v, rx, ry, rz), axis, cfg.twotheta)
                        for v in (xdet, ydet, zdet))
    if cfg.pivot == "beam":
        tell("pivoting detector around direct beam spot")
        pix0 = tuple(-xbeam * xdet[k] - ybeam * ydet[k] + distance * beam[k] for k in range(3))
    xclose = -vec.dot(pix0, xdet)
    yclose = -vec.dot(pix0, ydet)
    close_distance = vec.dot(pix0, zdet)
    hit = tuple(close_distance / ratio * beam[k] - pix0[k] for k in range(3))
    xbeam = vec.dot(xdet, hit)
    ybeam = vec.dot(ydet, hit)
    distance = close_distance / ratio

    stol_of, F_of = table.padded()
    resolved = _resolve_steps(cfg)
    _check_work(cfg, resolved, xpixels * ypixels)
    src, divsteps = _sources(cfg, resolved, beam, polar, vert, tell)
    if len(src) == 0:
        raise ConfigError("nonbragg: no sources (the divergence grid lies outside the round "
                          "divergence cut: give the ranges, -square_div, or no divergence flags)")
    if not (np.isfinite(src).all() and (src[:, 4] > 0).all()):
        raise ConfigError("nonbragg: source positions must be finite, wavelengths positive")
    with np.errstate(over="ignore", divide="ignore"):
        too_short = not np.isfinite(12.0 / np.min(src[:, 4]) ** 2)
    if too_short:   # the scattering vector's length overflows
        raise ConfigError("nonbragg: a wavelength of %g m (-lambda, -energy, -sourcefile) is "
                          "too short to compute sin(theta)/lambda" % np.min(src[:, 4]))
    oversample = cfg.oversample if cfg.oversample > 0 else 1
    if oversample > 1000:
        raise ConfigError("nonbragg: oversample of at most 1000")
    steps = len(src) * oversample * oversample
    if not math.isfinite(R_E_SQR * fluence * molecules / steps):
        raise ConfigError("nonbragg: the fluence (%g photons/m^2) times the molecules (%g) "
                          "overflows: lower -fluence/-flux, the sample size or -density"
                          % (fluence, molecules))
    (hsteps, hrange, hstep), (vsteps, vrange, vstep), (dsteps, disp, _) = resolved
    tell("  %d initialized F points (will cubic-spline interpolate between them)" % stol_of.size)
    tell("  wave=%g meters +/- %g%% in %d steps" % (cfg.wavelength, disp * 100, dsteps))
    if cfg.nopolar:
        tell("  polarization effect disabled")
    else:
        tell("  Kahn polarization factor: %f" % cfg.polarization)
    if cfg.curved_detector:
        tell("  curved detector: all pixels same distance from origin")
    if cfg.point_pixel:
        tell("  pixel obliquity effect disabled")
    tell("  incident fluence: %g photons/m^2" % fluence)
    tell("  sample is %g m thick x %g m high x %g m wide, %g g/cm^3 and %g g/mol (%g molecules)"
         % (cfg.sample_x, sample_y, sample_z, density / 1e6, cfg.molecular_weight, molecules))
    tell("  distance=%g detsize=%gx%g  pixel=%g meters (%dx%d pixels)"
         % (distance, detsize_x, detsize_y, pixel, xpixels, ypixels))
    tell("  Xbeam=%g Ybeam=%g" % (xbeam, ybeam))
    tell("  detector origin: %g %g %g" % pix0)
    tell("  DIRECTION_OF_DETECTOR_X-AXIS= %g %g %g" % xdet)
    tell("  DIRECTION_OF_DETECTOR_Y-AXIS= %g %g %g" % ydet)
    tell("  INCIDENT_BEAM_DIRECTION= %g %g %g" % beam)
    tell("  POLARIZATION_PLANE_NORMAL= %g %g %g" % polar)
    tell("  roi: %d < x < %d && %d < y < %d" % tuple(roi))
    tell("  hdivrange=%g hdivstep=%g  radians" % (hrange, hstep))
    tell("  vdivrange=%g vdivstep=%g  radians" % (vrange, vstep))
    tell("  %d divergence steps" % divsteps)
    tell("  %d sources" % len(src))
    tell("  %d pixel oversample steps" % oversample)

    image = np.zeros(xpixels * ypixels, dtype=np.float32)
    stats = np.zeros(7)
    if observed is None:
        observed = np.zeros(0, dtype=np.float32)
    else:
        observed = _numbers(observed, "nonbragg: observed", "counts")
        observed = np.ascontiguousarray(observed, dtype=np.float32).ravel()
        if observed.size != xpixels * ypixels:
            raise ConfigError(f"nonbragg: the observed image has {observed.size} pixels, "
                              f"the detector {xpixels}x{ypixels}")
    f_obs = np.zeros(xpixels * ypixels, dtype=np.float32)
    bin_of = np.zeros(xpixels * ypixels, dtype=np.int64)
    pixels_in = np.zeros(stol_of.size, dtype=np.int64)
    control = control_array()

    def render():
        _render(xpixels, ypixels, np.array(roi, dtype=np.int64), oversample, pixel,
                np.array(pix0), np.array(xdet), np.array(ydet), np.array(beam), distance,
                close_distance, cfg.curved_detector, cfg.point_pixel, src, stol_of, F_of,
                cfg.nopolar, cfg.polarization, np.array(polar), fluence, molecules, steps,
                image, stats, observed, ignore, float(adc), f_obs, bin_of, pixels_in,
                control)

    # in a worker thread: Ctrl-C and SIGTERM stop it before its next row
    running.run_kernel(render, control, ypixels)
    _check_image(image, F_of, cfg)
    max_I, max_x, max_y, total, total_sq, n, omega_sum = stats
    n = int(n)
    n0 = n if n > 0 else 1
    mean = total / n0
    n1 = n0 if n0 > 1 else 2
    rms = math.sqrt(total_sq / (n1 - 1))
    rmsd = _rmsd(image, xpixels, ypixels, np.array(roi, dtype=np.int64), mean)
    header = [
        ("SIZE1", "%d" % xpixels, True), ("SIZE2", "%d" % ypixels, True),
        ("PIXEL_SIZE", "%g" % (pixel * 1000.0), True),
        ("DISTANCE", "%g" % (distance * 1000.0), True),
        ("WAVELENGTH", "%g" % (cfg.wavelength * 1e10), True),
        ("BEAM_CENTER_X", "%g" % (xbeam * 1000.0), True),
        ("BEAM_CENTER_Y", "%g" % ((detsize_y - ybeam) * 1000), True),
        ("ORGX", "%g" % (xclose / pixel), True), ("ORGY", "%g" % (yclose / pixel), True),
        ("CLOSE_DISTANCE", "%g" % (close_distance * 1000.0), True),
        ("PHI", "%g" % (cfg.phi0 * RTD), True), ("OSC_START", "%g" % (cfg.phi0 * RTD), True),
        ("OSC_RANGE", "%g" % (osc * RTD), True), ("TWOTHETA", "%g" % (cfg.twotheta * RTD), True),
        ("DETECTOR_SN", "000", True), ("BEAMLINE", "fake", True)]
    return NonBraggResult(image=image.reshape(ypixels, xpixels), roi=tuple(roi),
                          max_I=float(max_I), max_xy=(float(max_x), float(max_y)),
                          mean=float(mean), rms=float(rms), rmsd=float(rmsd),
                          sums=(float(total), float(total_sq)),
                          observed_F=(f_obs, bin_of, pixels_in, stol_of, table.multiplier)
                          if observed.size else None, omega_sum=float(omega_sum),
                          header=header, lines=lines)
