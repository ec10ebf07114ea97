"""Per-pixel diagnostics (``-printout``): the last evaluation of a pixel, in the C's words.

Runs the same per-pixel function as the kernels for one pixel and reports the values of
its last (layer, sub-pixel, source, phi, mosaic) evaluation, as the C program's
``-printout`` does. Diagnostics only: nothing here changes an image.
"""
import math

from . import _jit
from .engine import kernel_inputs
from .pixel import render_pixel


@_jit.serial
def _last_evaluation(fi, si, det, beam, incident, wavelengths, latt, cells_t, fgrid, fgrid_flat,
                     grid, sums, interpolate):
    out = render_pixel(fi, si, det, beam, incident, wavelengths, latt, cells_t, fgrid,
                       fgrid_flat, grid, sums, interpolate)
    return out[9:]


def pixel_report(result, fi, si, inputs=None):
    """The C's ``-printout`` block for pixel (fi, si) of a rendered :class:`Result`.

    inputs: :func:`nbnumba.engine.kernel_inputs` of the set-up (computed if omitted).
    """
    setup = result.setup
    k = inputs or kernel_inputs(setup)
    (stol, airpath, dx, dy, dz, h, kk, l, h0, k0, l0, f_cell, f_latt, intensity, polar, omega,
     capture, cell) = _last_evaluation(fi, si, k.det, k.beam, k.incident, k.wavelengths, k.latt,
                                       k.cells_t, k.fgrid, k.fgrid_flat, k.grid, k.sums,
                                       setup.interpolate)
    px, py, pz = dx * airpath, dy * airpath, dz * airpath
    twotheta = math.atan2(math.sqrt(py * py + pz * pz), px)
    alt_stol = math.sin(twotheta / 2.0) / (setup.config.beam.wavelength * 1e10)
    a = [x * 1e10 for x in k.cells_t[:, cell]]
    return ["%4d %4d : stol = %g or %g" % (fi, si, stol, alt_stol),
            "at %g %g %g" % (px, py, pz),
            "hkl= %f %f %f  hkl0= %d %d %d" % (h, kk, l, h0, k0, l0),
            " F_cell=%g  F_latt=%g   I = %g" % (f_cell, f_latt, intensity),
            "I/steps %15.10g" % (intensity / setup.steps),
            "polar   %15.10g" % polar,
            "omega   %15.10g" % omega,
            "capfrac %15.10g" % capture,
            "pixel   %15.10g" % float(result.image[si, fi]),
            "real-space cell vectors (Angstrom):",
            "     %-10s  %-10s  %-10s" % ("a", "b", "c"),
            "X: %11.8f %11.8f %11.8f" % (a[0], a[3], a[6]),
            "Y: %11.8f %11.8f %11.8f" % (a[1], a[4], a[7]),
            "Z: %11.8f %11.8f %11.8f" % (a[2], a[5], a[8])]


def printout_pixels(setup, pixel=None):
    """The pixels ``-printout`` reports: the one given as (fast, slow), else every
    rendered pixel (inside the ROI, not masked), in raster order."""
    xmin, xmax, ymin, ymax = setup.roi
    if pixel is not None:
        return [tuple(pixel)]
    out = []
    for s in range(max(ymin, 0), min(ymax, setup.spixels - 1) + 1):
        for f in range(max(xmin, 0), min(xmax, setup.fpixels - 1) + 1):
            if setup.mask is None or setup.mask[s * setup.fpixels + f] != 0:
                out.append((f, s))
    return out
