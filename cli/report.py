"""The C program's console text: set-up summary before rendering, statistics after.

Tools parse some of these lines (cli.md "Lines users rely on"); their text is kept
exactly. The statistics lines (``max_I``, ``mean=``) are part of the parity contract.
"""
import math

import numpy as np

from nbnumba.constants import RTD

_SHAPE_WORD = {"square": "parallelpiped", "round": "ellipsoidal", "gauss": "gaussian",
               "tophat": "tophat-spot"}


def _vec(v, fmt="%g"):
    return " ".join(fmt % x for x in v)


def panel_line(panels):
    """The set-up line of a detector of several panels (nbnumba's own)."""
    if panels.preset is not None:
        return "  named detector %s: %d panels, gaps masked" % (panels.preset, len(panels))
    ref = panels.panels[panels.reference]
    return ("  %d panels from the experiment, gaps masked; the lines above describe panel "
            "%d (%s)" % (len(panels), panels.reference, ref.name))


#: the structure-factor sources that are crystallographic files read through gemmi
FILE_SOURCES = ("mtz", "sf-cif", "model")


def setup_lines(setup, out, sf_source, hkl_file, cell_from=None):
    """Lines printed before rendering, in the C's order (less its debugging chatter).

    cell_from: the --mtz/--sf-cif/--model file whose cell is simulated (no -cell/-mat)."""
    cfg = setup.config
    g = setup.geometry
    frame = g.frame
    lat = setup.lattice
    lines = []
    lines.append(f"{frame.convention.lower()} convention selected.")
    lines.append("pivoting detector around sample" if frame.pivot == "SAMPLE"
                 else "pivoting detector around direct beam spot")
    lines.append("DETECTOR_FAST_AXIS " + _vec(g.fdet, "%.15g"))
    lines.append("DETECTOR_SLOW_AXIS " + _vec(g.sdet, "%.15g"))
    lines.append("DETECTOR_NORMAL_AXIS " + _vec(g.odet, "%.15g"))
    lines.append("DETECTOR_PIX0_VECTOR " + _vec(g.pix0, "%.15g"))
    beam = g.beam
    lines.append("XDS incident beam: %g %g %g" % (
        beam[0] * g.fdet[0] + beam[1] * g.fdet[1] + beam[2] * g.fdet[2],
        beam[0] * g.sdet[0] + beam[1] * g.sdet[1] + beam[2] * g.sdet[2],
        beam[0] * g.odet[0] + beam[1] * g.odet[1] + beam[2] * g.odet[2]))
    if setup.interpolate_auto:
        x = cfg.crystal
        auto_on = x.na <= 2 or x.nb <= 2 or x.nc <= 2
        lines.append("auto-selected tricubic interpolation of structure factors" if auto_on
                     else "auto-selected no interpolation")
    lines += [m for m in lat.messages if m.startswith("random orientation")]
    a, b, c, al, be, ga = lat.cell
    lines.append("Unit Cell: %g %g %g %g %g %g" % (a, b, c, al * RTD, be * RTD, ga * RTD)
                 + (" (the cell of %s)" % cell_from if cell_from else ""))
    a, b, c, al, be, ga = lat.reciprocal_cell
    lines.append("Recp Cell: %g %g %g %g %g %g" % (a, b, c, al * RTD, be * RTD, ga * RTD))
    lines.append("volume = %g A^3" % lat.volume)
    na, nb, nc = setup.cells_per_axis
    size = [math.sqrt(sum(x * x for x in v)) * n * 1e6
            for v, n in zip((lat.a, lat.b, lat.c), (na, nb, nc))]
    lines.append("crystal is %g x %g x %g microns" % tuple(size))
    if cfg.render.oversample is None:
        lines.append("auto-selected %d-fold oversampling" % setup.oversample)
    if sf_source == "hkl":
        lines.append(f"read {setup.hkls} reflections from {hkl_file}")
    elif sf_source == "fdump":
        lines.append("reading Fs from Fdump.bin")
    elif sf_source in FILE_SOURCES:
        lines.append(structure_factor_line(setup.structure_factors))
    for m in setup.messages:
        if not m.startswith("random orientation"):
            lines.append(m)
    src = setup.sources
    lines.append("  created a total of %d sources:" % src.count)
    for p, w, lam in zip(src.positions, src.weights, src.wavelengths):
        lines.append("%g %g %g   %g %g" % (p[0], p[1], p[2], w, lam))
    lines.append("  created a total of %d mosaic domains" % setup.mosaic_domains)
    lines.append("  %d initialized hkls (all others =%g)" % (setup.hkls, cfg.crystal.default_F))
    lines.append("  %s xtal: %.0fx%.0fx%.0f cells" % (_SHAPE_WORD[cfg.crystal.shape], na, nb, nc))
    disp = src.dispersion
    lines.append("  wave=%g meters +/- %g%% in %d steps" % (cfg.beam.wavelength, disp[1] * 100,
                                                          disp[0]))
    if cfg.beam.no_polarization:
        lines.append("  polarization effect disabled")
    else:
        lines.append("  Kahn polarization factor: %f" % cfg.beam.kahn_factor)
    if g.curved:
        lines.append("  curved detector: all pixels same distance from origin")
    if g.point_pixel:
        lines.append("  pixel obliquity effect disabled")
    lines.append("  incident fluence: %g photons/m^2" % setup.fluence)
    lines.append("  distance=%g detsize=%gx%g  pixel=%g meters (%dx%d pixels)" % (
        g.distance, frame.size_f, frame.size_s, g.pixel_size, g.fpixels, g.spixels))
    if setup.panels is not None:
        lines.append(panel_line(setup.panels))
    lines.append("  sensor is %g m thick in %d layers with mu= %g" % (
        setup.thickness, setup.layers, setup.mu))
    lines.append("  Xbeam=%g Ybeam=%g" % (frame.xbeam, frame.ybeam))
    lines.append("  Fbeam=%g Sbeam=%g" % (g.fbeam, g.sbeam))
    lines.append("  Xclose=%g Yclose=%g" % (frame.xclose, frame.yclose))
    lines.append("  Fclose=%g Sclose=%g" % (g.fclose, g.sclose))
    lines.append("  DIRECTION_OF_DETECTOR_X-AXIS= " + _vec(g.fdet))
    lines.append("  DIRECTION_OF_DETECTOR_Y-AXIS= " + _vec(g.sdet))
    lines.append("  DIRECTION_OF_DETECTOR_Z-AXIS= " + _vec(g.odet))
    lines.append("  INCIDENT_BEAM_DIRECTION= " + _vec(beam))
    lines.append("  spindle ROTATION_AXIS= " + _vec(frame.spindle))
    p = frame.polar
    lines.append("  POLARIZATION_PLANE_NORMAL= %g %g %g" % (
        beam[1] * p[2] - beam[2] * p[1], beam[2] * p[0] - beam[0] * p[2],
        beam[0] * p[1] - beam[1] * p[0]))
    lines.append("  dials origin= %g %g %g" % g.dials_origin)
    lines.append("  roi: %d < x < %d && %d < y < %d" % setup.roi)
    lines.append("  hdivrange=%g hdivstep=%g  radians" % (src.hdiv[1], src.hdiv[2]))
    lines.append("  vdivrange=%g vdivstep=%g  radians" % (src.vdiv[1], src.vdiv[2]))
    # the C counts divergence steps only when it generates the sources (else: -1)
    lines.append("  %d divergence steps" % (-1 if cfg.beam.sources is not None
                                             else src.divergence_points))
    lines.append("  %d sources" % src.count)
    lines.append("  %d mosaic domains over mosaic spread of %g degrees" % (
        setup.mosaic_domains, setup.mosaic_spread * RTD))
    phi0 = cfg.crystal.phi0
    lines.append("  %d phi steps from %g to %g degrees%s" % (
        setup.phi_steps, phi0 * RTD, (phi0 + setup.osc) * RTD,
        " (at the midpoints of the steps)" if cfg.crystal.phi_midpoints else ""))
    flags = "".join(s for s, on in ((" +thick", cfg.render.oversample_thick),
                                    (" +polar", cfg.render.oversample_polar),
                                    (" +omega", cfg.render.oversample_omega)) if on)
    lines.append("  %dx%d pixel oversample steps%s" % (setup.oversample, setup.oversample, flags))
    if setup.mask is not None:
        lines.append("  skipping zero-flagged pixels in the mask")
    if out.write_noise:
        lines.append("")
        lines.append("  noise image paramters:")
        lines.append("  seed: %d" % -int(out.seed))
        lines.append("  water droplet size: %g m" % cfg.render.water_size)
    return lines


def c_g(value, spec="%g"):
    """``value`` as the C's ``printf(spec)`` writes it: like Python's ``%``, except that a
    NaN with its sign bit set (what x86 arithmetic makes of 0/0 or inf - inf) is ``-nan``."""
    if math.isnan(value):
        return "-nan" if math.copysign(1.0, value) < 0.0 else "nan"
    return spec % value


def structure_factor_line(sf):
    """Where the F of an --mtz, --sf-cif or --model file came from (one line)."""
    verb = "computed" if sf.source.startswith("model") else "read"
    return "%s %d P1 structure factors from %s" % (verb, sf.count, sf.source)


def solid_angle_line(result):
    """The C's solid-angle line: the sum of the solid angles used over the steps, in sr."""
    with np.errstate(divide="ignore", invalid="ignore"):   # the C's IEEE division
        per_step = np.float64(result.omega_sum) / np.float64(result.setup.steps)
        percent = 100 * per_step / 4 / np.pi
    return ("solid angle subtended by detector = %s steradian ( %s%% sphere)"
            % (c_g(float(per_step)), c_g(float(percent))))


def statistics_lines(result):
    """The C's ``max_I`` and ``mean= rms= rmsd=`` lines (part of the parity contract)."""
    fx, sy = result.max_position
    st = result.stats
    return ["max_I = %s  at %s %s" % (c_g(st.max_I), c_g(fx), c_g(sy)),
            "mean= %s rms= %s rmsd= %s" % (c_g(st.mean), c_g(st.rms), c_g(st.rmsd))]


def overload_warning(path, overloaded, rendered, mean):
    """One warning line when most rendered pixels of an SMV image are overloaded, or None.

    overloaded: pixels clipped at 65535 counts; rendered: pixels rendered (ROI, mask);
    mean: the float image's mean, photons per pixel.
    """
    if rendered <= 0 or 2 * overloaded <= rendered:
        return None
    return (f"warning: {overloaded} of {rendered} pixels of {path} are overloaded (clipped at "
            f"65535; mean {c_g(mean)} photons per pixel); lower the intensity (-water, -fluence, "
            "-flux, -exposure), -scale or -adc")
