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
    # the C switches interpolation off for good at the first pixel out of its range: a
    # later pixel was rendered with nearest-neighbour structure factors
    switch = result.interpolation_switch
    interpolate = setup.interpolate and (switch is None
                                         or si * setup.fpixels + fi <= switch.pixel)
    det, f_local, s_local = k.det, fi, si
    if setup.panels is not None:   # the pixel's panel, in its own indices
        index, s_local, f_local = setup.panels.locate(si, fi)
        det = setup.panels.kernel_detector(k.det, index)
        offset = setup.panels.panels[index].kernel_offset
        s_local, f_local = si - offset[0], fi - offset[1]
    (stol, airpath, dx, dy, dz, h, kk, l, h0, k0, l0, f_cell, f_latt, intensity, polar, omega,
     capture, cell) = _last_evaluation(f_local, s_local, det, k.beam, k.incident,
                                       k.wavelengths, k.latt, k.cells_t, k.fgrid,
                                       k.fgrid_flat, k.grid, k.sums, interpolate)
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


def _rendered(setup, f, s):
    xmin, xmax, ymin, ymax = setup.roi
    return (0 <= f < setup.fpixels and 0 <= s < setup.spixels
            and xmin <= f <= xmax and ymin <= s <= ymax
            and (setup.mask is None or setup.mask[s * setup.fpixels + f] != 0))


def printout_pixels(setup, pixel=None):
    """The pixels ``-printout`` reports, in raster order, as the C selects them: only
    rendered pixels (inside the ROI, not masked); of those the one given as (fast,
    slow), or every one when no pixel is given or its fast index is negative."""
    if pixel is not None and pixel[0] >= 0:
        f, s = int(pixel[0]), int(pixel[1])
        return [(f, s)] if _rendered(setup, f, s) else []
    xmin, xmax, ymin, ymax = setup.roi
    out = []
    for s in range(max(ymin, 0), min(ymax, setup.spixels - 1) + 1):
        for f in range(max(xmin, 0), min(xmax, setup.fpixels - 1) + 1):
            if _rendered(setup, f, s):
                out.append((f, s))
    return out
