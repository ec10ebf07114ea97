"""Configuration -> resolved set-up -> kernel -> float image and statistics.

:func:`prepare` applies the C program's rules in its order (sampling auto-selection,
detector geometry, interpolation choice, cell, crystal size, oversampling, sources,
mosaic domains) and hoists everything that does not depend on the pixel into arrays.
:func:`render` runs a kernel over the region of interest (one call, rows handed to the
threads one at a time; progress and Ctrl-C handled by the calling thread, see
:mod:`nbnumba.running`) and returns a :class:`Result`. :func:`simulate` does both.
"""
import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from . import _jit, compilecache, crystal, geometry, images, panel_geometry, pixel, rng, sampling
from .config import (SHAPES, ConfigError, SimulationConfig, StructureFactors,
                     check_custom_vectors, check_types, check_units, shown)
from .constants import AVOGADRO, R_E_SQUARED, RTD, WATER_F, WATER_MW
from .errors import warn_caller
from .physics import FAST_TRIG_LIMIT
from .sources import SourceError, Sources, resolve_sources


def _cpu_kernels():
    """The rendering kernels' dispatchers (for the compile notice; imports them)."""
    from .kernels import cpu, cpu_panels
    return [cpu.render_rows, cpu.render_rows_lanes, cpu_panels.render_panel_rows,
            cpu_panels.render_panel_rows_lanes]


compilecache.register_kernels(_cpu_kernels)


def _entry_point(function):
    """Decorator of the library's entry points that may compile: no BLAS probe
    (:func:`nbnumba._jit.no_blas_probe`) and a :class:`nbnumba.CompileWarning` before
    numba compiles (:func:`nbnumba.compilecache.library_notice`)."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with _jit.no_blas_probe(), compilecache.library_notice():
            return function(*args, **kwargs)
    return wrapper


#: largest number of sub-pixels per pixel axis (given or automatic)
MAX_OVERSAMPLE = 1000


@dataclass
class Setup:
    """Everything resolved from a configuration; the kernel needs nothing else."""
    config: SimulationConfig
    geometry: geometry.DetectorGeometry
    lattice: crystal.Lattice
    cells_per_axis: Tuple[float, float, float]
    sample_size: Tuple[float, float, float]   #: after clipping by the beam, m
    oversample: int
    recommended_oversample: int
    interpolate: bool
    interpolate_auto: bool
    structure_factors: Optional[StructureFactors]
    sources: Sources
    phi_steps: int
    osc: float
    phi_step: float
    mosaic_domains: int
    mosaic_spread: float
    mosaic_matrices: np.ndarray
    layers: int
    thickness: float
    layer_step: float
    mu: float
    fluence: float
    flux: float
    roi: Tuple[int, int, int, int]
    mask: Optional[np.ndarray]
    steps: int
    background: float                       #: I_bg (water), photons/steradian-ish units of the C
    cells: np.ndarray                       #: (phi x mosaic, 9) real-space vectors, m
    rng_table: rng.RandomTable              #: shared random table after the set-up draws
    messages: List[str] = field(default_factory=list)
    #: the panels of a named detector or of explicit panels (None: the C's one panel);
    #: the image (fpixels x spixels) holds them all, and ``mask`` is 0 in its gaps
    panels: Optional[panel_geometry.PanelSet] = None

    @property
    def fpixels(self):
        return self.geometry.fpixels

    @property
    def spixels(self):
        return self.geometry.spixels

    @property
    def hkls(self):
        """Number of reflections in the grid (the C's ``hkls``), 0 without a grid."""
        return self.structure_factors.count if self.structure_factors is not None else 0


@dataclass
class InterpolationSwitch:
    """Where tricubic interpolation was switched off (the C's one-time warning)."""
    pixel: int
    hkl: Tuple[float, float, float]
    hkl0: Tuple[int, int, int]

    def warning(self):
        h, k, l = self.hkl
        return ("WARNING: out of range for three point interpolation: h,k,l,h0,k0,l0: "
                "%g,%g,%g,%d,%d,%d \nWARNING: further warnings will not be printed! "
                % (h, k, l, *self.hkl0))


@dataclass
class Result:
    """A rendered image with its statistics."""
    setup: Setup
    image: np.ndarray          #: float32 (spixels, fpixels), photons per pixel
    omega_sum: float           #: sum of the solid angles used (C's statistics), sr
    stats: images.ImageStatistics
    interpolation_switch: Optional[InterpolationSwitch] = None

    @property
    def max_position(self):
        """(Fdet, Sdet), m: last sub-pixel of the brightest pixel, as the C prints it."""
        if self.stats.max_index < 0:
            return 0.0, 0.0
        s, f = divmod(self.stats.max_index, self.setup.fpixels)
        n = self.setup.oversample
        sub = self.setup.geometry.pixel_size / n
        return (sub * (f * n + (n - 1)) + sub / 2.0, sub * (s * n + (n - 1)) + sub / 2.0)


def _positive(value, what):
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{what} must be a positive number, got {value:g}")


def _check_finite(section, name):
    """Every number of a configuration section must be finite (no inf or NaN)."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if isinstance(value, (bool, str)) or value is None:
            continue
        if isinstance(value, (int, float, np.floating, np.integer, tuple, list, np.ndarray)):
            arr = np.asarray(value)
            if arr.dtype.kind in "fi" and not np.all(np.isfinite(arr)):
                raise ConfigError(f"{name}.{f.name} must be finite, got {value}")


def _validate(config: SimulationConfig):
    check_types(config)
    check_custom_vectors(config.detector)
    beam, det, cr, rd = config.beam, config.detector, config.crystal, config.render
    for section, name in ((beam, "beam"), (det, "detector"), (cr, "crystal"), (rd, "render")):
        _check_finite(section, name)
    check_units(config)
    _positive(beam.wavelength, "wavelength")
    _positive(det.pixel_size, "pixel size")
    if det.fpixels < 0 or det.spixels < 0:
        raise ConfigError("detector pixel counts must not be negative")
    if cr.shape not in SHAPES:
        raise ConfigError(f"crystal shape must be one of {', '.join(SHAPES)}, got {cr.shape!r}")
    if rd.oversample is not None and rd.oversample > MAX_OVERSAMPLE:
        raise ConfigError(f"oversample {rd.oversample} is too large (at most {MAX_OVERSAMPLE})")
    if cr.cell is not None:
        if len(cr.cell) != 6:
            raise ConfigError("cell needs a, b, c, alpha, beta, gamma")
        if not cr.cell[0] > 0:
            raise ConfigError("unit cell edge a must be positive")
        if any(angle >= math.pi for angle in cr.cell[3:]):
            raise ConfigError("unit cell angles must be below 180 degrees")
    for name, n in (("na", cr.na), ("nb", cr.nb), ("nc", cr.nc)):
        if abs(n) > 10 ** 6:
            raise ConfigError(f"{name} = {n} is out of range")
    if beam.flux != 0.0 and beam.exposure > 0.0 and beam.beam_size == 0.0:
        raise ConfigError("a flux needs a beam size: the fluence is flux x exposure / beamsize^2, "
                          "infinite for a beam size of 0 (the C writes an all-NaN image); give "
                          "-beamsize in mm (BeamConfig.beam_size in m), or -fluence "
                          "(BeamConfig.fluence) instead of -flux")


def _check_count(value, what, limit=sampling.MAX_STEPS):
    if value > limit:
        raise ConfigError(f"{what} would be {value}, more than nbnumba handles ({limit}); "
                          "check the step sizes and counts")


#: memory per detector pixel (bytes): float image, integer, noise and PGM images, the
#: temporaries of scaling them and of the statistics, and the solid angle of each pixel
#: (float64) that the kernels keep for the C's raster-order sum
BYTES_PER_PIXEL = 48

#: memory per crystal orientation (phi step x mosaic domain; bytes): the mosaic
#: rotations, the orientation table and its transposed copy for the kernels (9 float64
#: each)
BYTES_PER_ORIENTATION = 3 * 72

#: memory per source (bytes): direction, wavelength, weight and their kernel copies
BYTES_PER_SOURCE = 2 * 64


def memory_estimate(pixels, sources, orientations):
    """Bytes a render allocates that grow with the input: the images of ``pixels``
    pixels, the tables of ``sources`` sources and ``orientations`` crystal orientations
    (the kernels' per-thread scratch does not grow with them)."""
    return (BYTES_PER_PIXEL * pixels + BYTES_PER_ORIENTATION * orientations
            + BYTES_PER_SOURCE * sources)


def _check_memory(pixels, sources, orientations):
    from . import memory
    memory.require(memory_estimate(pixels, sources, orientations),
                   f"a render of {pixels} pixels, {sources} sources and {orientations} crystal "
                   "orientations (phi steps x mosaic domains)",
                   "use fewer pixels (-detpixels, or DetectorConfig.fpixels and spixels; a "
                   "region of interest still allocates the whole detector), sources or "
                   "orientations", ConfigError)


def _fluence_and_sample(beam, sample_size, messages):
    """Fluence from flux/exposure/beam size and the beam clipping of the sample (C order)."""
    fluence, flux = beam.fluence, beam.flux
    size = beam.beam_size
    sx, sy, sz = sample_size
    if flux != 0.0 and beam.exposure > 0.0 and size >= 0:
        fluence = flux * beam.exposure / size / size
    if size >= 0:
        if size < sy:
            messages.append(f"WARNING: clipping sample ({sy:g} m high) with beam ({size:g} m)")
            sy = size
        if size < sz:
            messages.append(f"WARNING: clipping sample ({sz:g} m wide) with beam ({size:g} m)")
            sz = size
    if beam.exposure > 0.0:
        flux = fluence / beam.exposure * size * size
    return fluence, flux, (sx, sy, sz)


def _roi(roi, fpixels, spixels):
    defaults = (0, fpixels, 0, spixels)
    if roi is None:
        return defaults
    return tuple(int(v) if v >= 0 else d for v, d in zip(roi, defaults))


def empty_region_note(setup):
    """One line when the region of interest holds no pixel of the detector (the image
    is then all zeros), else None."""
    row0, row1, col0, col1 = region_rows(setup)
    if row1 > row0 and col1 > col0:
        return None
    xmin, xmax, ymin, ymax = setup.roi
    return (f"the region of interest (-roi, RenderConfig.roi; inclusive pixel bounds) x "
            f"{xmin}..{xmax}, y {ymin}..{ymax} holds no pixel of the {setup.fpixels}x"
            f"{setup.spixels} detector: the image is all zeros")


#: largest value of the C's int (the automatic oversampling count is converted to one)
C_INT_MAX = 2 ** 31 - 1


def _oversample_refusal(count, extent, geom):
    """Why an automatic oversampling count is refused, and what to do instead."""
    if count > C_INT_MAX:
        c_does = "the C's integer count overflows, and what it renders is undefined"
    else:
        c_does = f"the C would render {float(count) ** 2:g} sub-pixels in every pixel"
    return (f"automatic oversampling would use {float(count):g} sub-pixels per pixel side "
            f"(crystal {extent * 1e6:g} um, pixel {geom.pixel_size * 1e3:g} mm, distance "
            f"{geom.distance * 1e3:g} mm; {c_does}); give -oversample N "
            f"(RenderConfig.oversample) with N at most {MAX_OVERSAMPLE}")


@_entry_point
def _with_file_cell(cr):
    """The crystal configuration, with the cell of its structure-factor file (MTZ,
    model ...) when it gives neither a cell nor an orientation matrix."""
    sf = cr.structure_factors
    if cr.cell is None and cr.a_matrix is None and sf is not None and sf.cell is not None:
        return dataclasses.replace(cr, cell=tuple(sf.cell))
    return cr


def prepare(config: SimulationConfig) -> Setup:
    """Resolve a configuration into hoisted tables and scalars (no rendering)."""
    _validate(config)
    beam, det, cr, rd = config.beam, config.detector, config.crystal, config.render
    messages: List[str] = []
    table = rng.RandomTable()

    phi_steps, osc, phi_step = sampling.phi_rule(cr.phi_steps, cr.osc, cr.phi_step)
    if phi_steps <= 0:
        raise ConfigError(
            f"no phi steps: an oscillation of {osc * RTD:g} degrees (-osc, or OSC_RANGE of an "
            f"-img/-mask header) in steps of {phi_step * RTD:g} degrees gives none, and the C "
            "writes an all-NaN image; give -phisteps 1 (CrystalConfig.phi_steps) for a still "
            "image, or a positive -osc (CrystalConfig.osc)")
    _check_count(phi_steps, "the number of phi steps")
    layers, thickness, layer_step = sampling.thickness_rule(det.thickness_steps, det.thickness, None)
    _check_count(layers, "the number of sensor layers")
    mu = -1.0 if det.attenuation_mu is None else det.attenuation_mu
    if thickness > 0.0 and mu < 0.0:
        mu = 1.0 / thickness
        messages.append(f"WARNING: setting detector attenuation depth to {mu:g} m")
    layers, thickness, layer_step = sampling.thickness_sanity(layers, thickness, layer_step)
    mosaic = sampling.mosaic_rule(cr.mosaic_domains, cr.mosaic_spread)
    _check_count(mosaic.domains, "the number of mosaic domains")
    _check_count(phi_steps * mosaic.domains, "the number of crystal orientations (phi x mosaic)")
    messages += mosaic.messages

    geom, panels = _place_detector(det)
    frame = geom.frame
    messages += frame.messages
    if not (geom.distance != 0.0 and geom.close_distance != 0.0 and math.isfinite(geom.distance)):
        raise ConfigError("the detector distance must not be zero")

    interpolate_auto = cr.interpolate is None
    interpolate = (cr.na <= 2 or cr.nb <= 2 or cr.nc <= 2) if interpolate_auto else cr.interpolate

    fluence, flux, sample_size = _fluence_and_sample(beam, cr.sample_size, messages)
    try:
        lattice = crystal.build_lattice(_with_file_cell(cr), beam.wavelength, table)
    except crystal.CrystalError as exc:
        raise ConfigError(str(exc)) from None
    if cr.structure_factors is not None:   # F read from a file with a cell: the same cell
        cr.structure_factors.check_cell(lattice.cell, "the cell of the orientation matrix "
                                        "(-mat)" if cr.a_matrix is not None else
                                        "the cell given (-cell)")
    vectors = lattice.a + lattice.b + lattice.c + lattice.a_star + lattice.b_star + lattice.c_star
    # a left-handed A matrix (negative determinant, negative volume) renders as in the C
    if not all(math.isfinite(x) for x in vectors) or not 0.0 < abs(lattice.volume) < math.inf:
        raise ConfigError("the unit cell is degenerate (zero or infinite volume)")
    messages += lattice.messages
    counts = crystal.cells_per_axis(cr, lattice, sample_size)
    extent = max(math.sqrt(sum(x * x for x in v)) * n
                 for v, n in zip((lattice.a, lattice.b, lattice.c), counts))
    recommended, reciprocal_pixel = _recommended_oversample(extent, beam.wavelength, geom,
                                                            panels)
    oversample = rd.oversample if rd.oversample is not None and rd.oversample > 0 else recommended
    if oversample > MAX_OVERSAMPLE:
        raise ConfigError(_oversample_refusal(oversample, extent, geom))
    if oversample < recommended:
        messages += [f"WARNING: maximum dimension of sample is {extent * 1e10:g} A",
                     f"         but reciprocal pixel size is {reciprocal_pixel * 1e10:g} A",
                     "         intensity may vary significantly across a pixel!",
                     f"         recommend -oversample {recommended} to work around this"]

    sf = cr.structure_factors
    if sf is not None and sf.count == 0:
        sf = None
    if sf is None:
        interpolate = False

    try:
        sources = resolve_sources(beam, frame.beam, frame.polar, frame.vertical)
    except SourceError as exc:
        raise ConfigError(str(exc)) from None
    _check_memory(geom.fpixels * geom.spixels, sources.count, phi_steps * mosaic.domains)
    mosaic_matrices = crystal.mosaic_rotations(mosaic.spread, mosaic.domains, cr.mosaic_seed, table)
    phis = crystal.phi_angles(cr.phi0, phi_step, phi_steps, bool(cr.phi_midpoints))
    cells = crystal.rotation_table(lattice, frame.spindle, phis, mosaic_matrices, mosaic.spread)
    steps = sources.count * mosaic.domains * phi_steps * oversample * oversample
    w = rd.water_size
    background = WATER_F * WATER_F * R_E_SQUARED * fluence * w * w * w * 1e6 * AVOGADRO / WATER_MW

    mask = None
    if rd.mask is not None:
        mask = np.ascontiguousarray(rd.mask, dtype=np.uint16).ravel()
        if mask.size != geom.fpixels * geom.spixels:
            raise ConfigError(f"mask has {mask.size} pixels, detector has "
                              f"{geom.fpixels}x{geom.spixels}")
    if panels is not None:   # the gaps between panels are never rendered
        cover = panels.coverage()
        mask = cover if mask is None else np.where(mask != 0, cover, 0).astype(np.uint16)
    setup = Setup(
        config=config, geometry=geom, lattice=lattice, cells_per_axis=counts,
        sample_size=sample_size, oversample=int(oversample),
        recommended_oversample=recommended, interpolate=bool(interpolate),
        interpolate_auto=interpolate_auto, structure_factors=sf, sources=sources,
        phi_steps=phi_steps, osc=osc, phi_step=phi_step, mosaic_domains=mosaic.domains,
        mosaic_spread=mosaic.spread, mosaic_matrices=mosaic_matrices, layers=layers,
        thickness=thickness, layer_step=layer_step, mu=mu, fluence=fluence, flux=flux,
        roi=_roi(rd.roi, geom.fpixels, geom.spixels), mask=mask, steps=steps,
        background=background, cells=cells.reshape(-1, 9), rng_table=table,
        messages=messages, panels=panels)
    note = empty_region_note(setup)
    if note is not None:
        warn_caller(note)
    return setup


def _recommended_oversample(extent, wavelength, geom, panels):
    """The C's automatic oversampling (and the reciprocal pixel size, m) for the
    detector's distance and pixel; for explicit panels, the largest over the panels
    (each at its distance along the beam, or of its centre where the beam misses its
    plane)."""
    if panels is None or panels.preset is not None:
        return sampling.recommended_oversample(extent, wavelength, geom.distance,
                                               geom.pixel_size)
    best = None
    for p in panels.panels:
        distance = p.distance
        if not (0.0 < distance < math.inf):
            half_f, half_s = p.fpixels * p.pixel_size / 2, p.spixels * p.pixel_size / 2
            distance = math.sqrt(sum((p.origin[k] + half_f * p.fast[k] + half_s * p.slow[k])
                                     ** 2 for k in range(3)))
        found = sampling.recommended_oversample(extent, wavelength, distance, p.pixel_size)
        if best is None or found[0] > best[0]:
            best = found
    return best


def _place_detector(det):
    """(the placed :class:`nbnumba.geometry.DetectorGeometry`, the
    :class:`nbnumba.panel_geometry.PanelSet` or None): the C's detector, a named
    detector or explicit panels; ConfigError when it cannot be placed."""
    try:
        placed = panel_geometry.resolve_panels(det)
        if placed is not None:
            return placed
        frame = geometry.detector_frame(det)
        geom = geometry.place_detector(frame, det)
        geometry.check_placement(geom)
    except geometry.GeometryError as exc:
        raise ConfigError(str(exc)) from None
    return geom, None


def fast_trig_allowed(setup: Setup):
    """True when every sine argument of the lattice factor stays inside the range where
    the vectorisable sine is accurate (|pi h N| < FAST_TRIG_LIMIT)."""
    lat = setup.lattice
    edge = max(math.sqrt(sum(x * x for x in v)) for v in (lat.a, lat.b, lat.c))
    q_max = 2.0 / float(np.min(setup.sources.wavelengths))
    h_max = edge * q_max
    bound = math.pi * max(setup.cells_per_axis) * h_max
    return bool(bound < FAST_TRIG_LIMIT)


@dataclass
class KernelInputs:
    """What the kernels read besides the pixel range: parameter tuples and arrays."""
    det: pixel.DetectorParams
    beam: pixel.BeamParams
    latt: pixel.LatticeParams
    grid: pixel.GridParams
    sums: pixel.SumParams
    incident: np.ndarray       #: (n_sources, 3) unit incident directions
    wavelengths: np.ndarray    #: (n_sources,) m
    cells_t: np.ndarray        #: (9, phi steps x mosaic domains) crystal vectors, m
    fgrid: np.ndarray          #: F grid (3-D, C order)

    @property
    def incident_t(self):
        return np.ascontiguousarray(self.incident.T)

    @property
    def fgrid_flat(self):
        return self.fgrid.reshape(-1)


def kernel_inputs(setup: Setup, libm_sine=False) -> KernelInputs:
    """Gather everything the kernels need from a set-up (no pixel-dependent data).

    libm_sine: use the C library's sine in the lattice factor even where the vectorisable
    sine is accurate (slower; for checking that the two give the same images).
    """
    g = setup.geometry
    cfg = setup.config
    lat = setup.lattice
    sf = setup.structure_factors
    if sf is not None:
        fgrid = np.ascontiguousarray(sf.grid, dtype=np.float64)
        (h_hi, k_hi, l_hi), (h_range, k_range, l_range) = sf.maxima, sf.ranges
        grid = pixel.GridParams(
            h_lo=float(sf.h_min), k_lo=float(sf.k_min), l_lo=float(sf.l_min), h_hi=float(h_hi),
            k_hi=float(k_hi), l_hi=float(l_hi), h_min=int(sf.h_min), k_min=int(sf.k_min),
            l_min=int(sf.l_min), h_range=int(h_range), k_range=int(k_range),
            l_range=int(l_range), k_stride=int(fgrid.shape[1] * fgrid.shape[2]),
            l_stride=int(fgrid.shape[2]), default_F=float(cfg.crystal.default_F))
    else:  # no grid: every look-up gives default_F
        fgrid = np.zeros((1, 1, 1))
        grid = pixel.GridParams(h_lo=1.0, k_lo=1.0, l_lo=1.0, h_hi=0.0, k_hi=0.0, l_hi=0.0,
                                h_min=0, k_min=0, l_min=0, h_range=0, k_range=0, l_range=0,
                                k_stride=1, l_stride=1, default_F=float(cfg.crystal.default_F))
    f = lambda v: [float(x) for x in v]  # noqa: E731
    det = pixel.DetectorParams(
        *f(g.pix0), *f(g.fdet), *f(g.sdet), *f(g.odet), *f(g.beam),
        pixel_size=float(g.pixel_size), oversample=int(setup.oversample),
        close_distance=float(g.close_distance), distance=float(g.distance),
        curved=bool(g.curved), point_pixel=bool(g.point_pixel), n_layers=int(setup.layers),
        layer_step=float(setup.layer_step), mu=float(setup.mu),
        thick_zero=bool(setup.thickness == 0.0))
    beam = pixel.BeamParams(float(cfg.beam.kahn_factor), *f(_settled_unit(g.frame.polar)),
                            no_polar=bool(cfg.beam.no_polarization), dmin=float(cfg.render.dmin))
    na, nb, nc = setup.cells_per_axis
    latt = pixel.LatticeParams(SHAPES.index(cfg.crystal.shape), float(na), float(nb), float(nc),
                               float(cfg.crystal.fudge), *f(lat.a_star + lat.b_star + lat.c_star),
                               fast_trig=fast_trig_allowed(setup) and not libm_sine)
    sums = pixel.SumParams(i_bg=float(setup.background), water_size=float(cfg.render.water_size),
                           scale=float(R_E_SQUARED * setup.fluence), steps=float(setup.steps),
                           over_thick=bool(cfg.render.oversample_thick),
                           over_polar=bool(cfg.render.oversample_polar),
                           over_omega=bool(cfg.render.oversample_omega))
    return KernelInputs(det=det, beam=beam, latt=latt, grid=grid, sums=sums,
                        incident=np.ascontiguousarray(setup.sources.incident, dtype=np.float64),
                        wavelengths=np.ascontiguousarray(setup.sources.wavelengths,
                                                         dtype=np.float64),
                        cells_t=np.ascontiguousarray(setup.cells.T), fgrid=fgrid)


def _settled_unit(v):
    """The polarization axis after the C's repeated in-place normalisation settles."""
    for _ in range(8):
        n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
        if n == 0.0:
            return v
        w = (v[0] / n, v[1] / n, v[2] / n)
        if w == v:
            break
        v = w
    return v


def evaluations_per_pixel(setup: Setup):
    """Inner-loop evaluations of one pixel: sub-pixels x sensor layers x sources x phi
    steps x mosaic domains."""
    return (setup.oversample ** 2 * max(setup.layers, 1) * len(setup.sources.wavelengths)
            * max(setup.phi_steps, 1) * max(setup.mosaic_domains, 1))


def planned_seconds(setup: Setup, threads):
    """Upper estimate (s) of rendering ``setup`` on ``threads`` threads (the progress
    meter's first line; :func:`nbnumba.progress.expected_seconds`)."""
    from .progress import expected_seconds
    row0, row1, col0, col1 = region_rows(setup)
    return expected_seconds((row1 - row0) * (col1 - col0), evaluations_per_pixel(setup),
                            threads)


def region_rows(setup: Setup):
    """(row_start, row_stop, col_start, col_stop) of the ROI clipped to the detector."""
    xmin, xmax, ymin, ymax = setup.roi
    col0, col1 = max(xmin, 0), min(xmax, setup.fpixels - 1) + 1
    row0, row1 = max(ymin, 0), min(ymax, setup.spixels - 1) + 1
    return row0, max(row1, row0), col0, max(col1, col0)


def _thread_count(threads):
    """The CPU threads a render uses: ``threads`` capped by numba's pool, or numba's
    setting of the calling thread; ConfigError for anything but a positive integer."""
    import numba
    if threads is None:
        return numba.get_num_threads()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ConfigError(f"threads must be None or a positive integer, got {shown(threads)}")
    return min(int(threads), numba.config.NUMBA_NUM_THREADS)


def _omega_sum(setup, pixel_omega, region, det, panels=None):
    """The solid angles of the rendered pixels summed as the C sums them: one running
    total over the pixels in raster order, then sub-pixels and layers (sr)."""
    from .kernels import cpu
    _, fpixels, mask, use_mask, col0, col1 = region
    row0, row1 = region_rows(setup)[:2]
    if setup.config.render.oversample_omega and panels is not None:
        from .kernels import cpu_panels
        return float(cpu_panels.raster_omega_sum_recomputed(
            fpixels, (row0, row1), mask, use_mask, panels.table, panels.offsets,
            panels.first_row, panels.row_start, panels.segments, det))
    if setup.config.render.oversample_omega:  # a solid angle of its own per sub-pixel
        return float(cpu.raster_omega_sum_recomputed(fpixels, (row0, row1), (col0, col1), mask,
                                                     use_mask, det))
    return float(cpu.raster_omega_sum(pixel_omega, setup.oversample ** 2 * max(setup.layers, 1)))


@_entry_point
def render(setup: Setup, device="cpu", threads=None, progress=None, libm_sine=False,
           block_rows=None) -> Result:
    """Render a prepared set-up; returns a :class:`Result` (``.image``: float32 photons
    per pixel, ``.omega_sum``, ``.stats``).

    device: "cpu" (default), "cuda" (GPU, images equal to the CPU's) or "cuda-fast".
    threads: CPU threads (None: numba's setting of the calling thread, by default
    NUMBA_NUM_THREADS or all cores); the image does not depend on it.
    progress: None or False (silent), True (a meter on stderr), a callable
    ``(rows_done, rows_total)`` called during the render (at least once a second) and
    at its end, or a tqdm-like object (``update(n)``, ``total``; ``total`` is set when
    None). Anything else raises :class:`ConfigError` before rendering.
    libm_sine: see :func:`kernel_inputs`. block_rows: ignored (renders are no longer
    split into blocks; kept so that older callers keep working).

    The image is rendered in one kernel call, in a worker thread; the calling thread
    reports progress and, on ``KeyboardInterrupt`` (Ctrl-C), stops the kernel before its
    next row and raises ``KeyboardInterrupt`` within about a second
    (:mod:`nbnumba.running`).
    """
    from . import running
    from .kernels import get_backend, rowqueue
    from .progress import reporter
    if not isinstance(setup, Setup):
        hint = (": use nbnumba.simulate(config), or render(nbnumba.prepare(config))"
                if isinstance(setup, SimulationConfig) else "")
        raise ConfigError(f"render takes a prepared Setup (from nbnumba.prepare), got "
                          f"{type(setup).__name__}{hint}")
    n_threads = _thread_count(threads)
    report = reporter(progress, expected=(planned_seconds(setup, n_threads)
                                          if progress is True else None))
    backend = get_backend(device)
    if setup.panels is not None and device != "cpu":
        from .errors import DeviceError
        raise DeviceError(f"-device {device} renders a detector of one panel; this one has "
                          f"{len(setup.panels)} panels: render it with -device cpu")
    fp = setup.fpixels
    image = np.zeros(fp * setup.spixels, dtype=np.float32)
    row0, row1, col0, col1 = region_rows(setup)
    mask = setup.mask if setup.mask is not None else np.zeros(1, dtype=np.uint16)
    region = (image, fp, mask, setup.mask is not None, col0, col1)
    inputs = kernel_inputs(setup, libm_sine)
    panel_tables = None
    extra = {}
    if setup.panels is not None:
        panel_tables = setup.panels.kernel_tables((row0, row1), (col0, col1))
        extra = {"panels": panel_tables}

    def run(row_start, first_pixel, interpolate, report):
        control = rowqueue.control_array()
        call = functools.partial(backend.render, region, row_start, row_stop=row1,
                                 first_pixel=first_pixel, inputs=inputs,
                                 interpolate=interpolate, threads=n_threads, control=control,
                                 **extra)
        return running.run_kernel(call, control, row1 - row_start, report,
                                  compilecache.active_watch())

    pixel_omega, switch_cols, switch_hkl = run(row0, 0, setup.interpolate, report)
    switch = None
    if setup.interpolate:
        hits = np.nonzero(switch_cols >= 0)[0]
        if hits.size:
            r = int(hits[0])
            pixel = (row0 + r) * fp + int(switch_cols[r])
            hkl = switch_hkl[r]
            switch = InterpolationSwitch(pixel, tuple(float(x) for x in hkl[:3]),
                                         tuple(int(x) for x in hkl[3:]))
            # every pixel after the switch-off uses nearest-neighbour F, as in a serial run
            run(pixel // fp, pixel + 1, False, None)
    omega_sum = _omega_sum(setup, pixel_omega, region, inputs.det, panel_tables)
    stats = images.statistics(image, fp, setup.spixels, setup.roi, setup.mask)
    return Result(setup=setup, image=image.reshape(setup.spixels, fp), omega_sum=omega_sum,
                  stats=stats, interpolation_switch=switch)


@_entry_point
def simulate(config: SimulationConfig, device="cpu", threads=None, progress=None) -> Result:
    """Prepare and render one image; returns a :class:`Result` (``.image`` is float32).

    Arguments as :func:`render`; ``threads`` and ``progress`` are checked before the
    set-up. Ctrl-C stops it within about a second (``KeyboardInterrupt``).
    """
    from .progress import reporter
    _thread_count(threads)
    if progress is not True:
        reporter(progress)   # refuse a wrong progress argument before any work
    return render(prepare(config), device=device, threads=threads, progress=progress)
