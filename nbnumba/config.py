"""Configuration objects: what to simulate, with the C program's defaults.

Units. Every length, angle and time is SI (metres, radians, seconds) with **one
exception: unit-cell edges are in Angstrom** (``CrystalConfig.cell``), the unit the C
program computes the cell in, so that results stay bit-identical with it (a value
converted from Angstrom to metres and back is not always the same double). Orientation
(A) matrices are dimensionless, in the MOSFLM form (reciprocal-cell vectors times the
wavelength). Each field's unit is in its class's docstring (``help(CrystalConfig)``) and
in ``dataclasses.fields(cls)[i].metadata["unit"]``.

Values that are implausible for their unit (a cell edge of 1e-8 Angstrom is a length
given in metres; a distance of 100 m is millimetres given as metres; an angle of 90
rad is degrees given as radians) are rejected by :func:`check_units`, which
:func:`nbnumba.prepare` runs, with a :class:`ConfigError` that names the field, the
unit and the accepted range.

Values that the C marks as "not given" (and then chooses by a rule) are ``None`` here;
the rules live next to the physics that needs them (``geometry``, ``crystal``,
``sources``, ``sampling``). Build these in code, or from C-style arguments with
:func:`nbnumba.config_from_args`.
"""
import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Tuple, Union

import numpy as np

from .constants import DEFAULT_FLUENCE

Vector3 = Tuple[float, float, float]

CONVENTIONS = ("MOSFLM", "XDS", "ADXV", "DENZO", "DIALS", "CUSTOM")
PIVOTS = ("BEAM", "SAMPLE")
SHAPES = ("square", "round", "gauss", "tophat")

FULL_TURN = 2.0 * math.pi


class ConfigError(ValueError):
    """A configuration value that cannot be simulated. The message names it."""


class Plausible(NamedTuple):
    """Accepted magnitudes of a field, in the field's unit (zero is always accepted).

    low, high: bounds on ``abs(value)`` (None: no bound); hint: the likely mistake.
    """
    low: Optional[float]
    high: Optional[float]
    hint: str


_METRES = "lengths are in metres (1 mm = 1e-3 m)"
_RADIANS = "angles are in radians (90 degrees = 1.5708 rad)"


def _field(default, unit, doc, plausible=None, flag=None, factory=None):
    """A dataclass field carrying its unit, its description, its plausible range and
    the command-line flag that sets it."""
    meta = {"unit": unit, "doc": doc, "plausible": plausible, "flag": flag}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _documented(cls):
    """Append a "Fields" section (name, unit, description, accepted range) to the class
    docstring, so that ``help(cls)`` lists every field with its unit."""
    lines = [inspect.cleandoc(cls.__doc__), "", "Fields (name [unit]: meaning):", ""]
    for f in dataclasses.fields(cls):
        meta = f.metadata
        text = f"    {f.name} [{meta['unit']}]: {meta['doc']}"
        limits = meta.get("plausible")
        if limits is not None:
            text += "; " + _range_text(limits, meta["unit"])
        if meta.get("flag"):
            text += f" (flag {meta['flag']})"
        lines.append(text)
    cls.__doc__ = "\n".join(lines) + "\n"
    return cls


def _range_text(limits, unit):
    if limits.low is not None and limits.high is not None:
        return f"accepted magnitude {limits.low:g} to {limits.high:g} {unit} (or 0)"
    if limits.high is not None:
        return f"accepted magnitude at most {limits.high:g} {unit}"
    return f"accepted magnitude at least {limits.low:g} {unit} (or 0)"


_WAVELENGTH = Plausible(1e-15, 1e-6, "wavelengths are in metres (1 Angstrom = 1e-10 m)")
_DIVERGENCE = Plausible(None, math.pi, _RADIANS + " (1 mrad = 1e-3 rad)")
_TURN = Plausible(None, FULL_TURN, _RADIANS + "; more than a full turn usually means degrees")
_PIXEL = Plausible(None, 0.01, _METRES)
_DETECTOR_LENGTH = Plausible(None, 10.0, _METRES)
_DISTANCE = Plausible(None, 50.0, _METRES)
_SMALL_LENGTH = Plausible(None, 0.01, _METRES + " (1 um = 1e-6 m)")
_BEAM_SIZE = Plausible(None, 0.05, _METRES)
_CELL_EDGE = Plausible(0.1, 1e6, "unit-cell edges are in Angstrom, unlike every other "
                       "length (1 nm = 10 Angstrom; 1e-8 m = 100 Angstrom)")
_CELL_ANGLE = Plausible(None, math.pi, _RADIANS + "; a cell angle is below pi")
_RESOLUTION = Plausible(None, 1e-6, "resolutions are in metres (2 Angstrom = 2e-10 m)")
_FRACTION = Plausible(None, 1.0, "a fraction of lambda0, not a percentage (0.01 = 1 %)")


@_documented
@dataclass
class BeamConfig:
    """Incident beam: wavelength, spectrum, divergence, polarization, intensity."""
    wavelength: float = _field(1.0e-10, "m", "central wavelength lambda0", _WAVELENGTH, "-lambda")
    dispersion: float = _field(0.0, "fraction of lambda0", "full spectral width", _FRACTION,
                               "-dispersion")
    dispersion_steps: Optional[int] = _field(None, "count", "number of wavelengths "
                                             "(None: by rule)", flag="-dispsteps")
    hdiv_range: Optional[float] = _field(None, "rad", "horizontal divergence, full range",
                                         _DIVERGENCE, "-hdivrange")
    vdiv_range: Optional[float] = _field(None, "rad", "vertical divergence, full range",
                                         _DIVERGENCE, "-vdivrange")
    hdiv_step: Optional[float] = _field(None, "rad", "horizontal divergence step", _DIVERGENCE,
                                        "-hdivstep")
    vdiv_step: Optional[float] = _field(None, "rad", "vertical divergence step", _DIVERGENCE,
                                        "-vdivstep")
    hdiv_steps: Optional[int] = _field(None, "count", "number of horizontal divergence points",
                                       flag="-hdivsteps")
    vdiv_steps: Optional[int] = _field(None, "count", "number of vertical divergence points",
                                       flag="-vdivsteps")
    round_divergence: bool = _field(True, "bool", "trim the divergence grid to an ellipse",
                                    flag="-round_div")
    kahn_factor: float = _field(0.0, "dimensionless", "Kahn polarization factor K "
                                "(0: unpolarized)", flag="-polar")
    no_polarization: bool = _field(False, "bool", "fix the polarization factor at 1",
                                   flag="-nopolar")
    fluence: float = _field(DEFAULT_FLUENCE, "photons/m^2", "incident fluence", flag="-fluence")
    flux: float = _field(0.0, "photons/s", "incident flux (with exposure and beam_size, sets "
                         "the fluence)", flag="-flux")
    exposure: float = _field(1.0, "s", "exposure time", flag="-exposure")
    beam_size: float = _field(1.0e-4, "m", "beam size (also clips the sample's y and z sizes)",
                              _BEAM_SIZE, "-beamsize")
    sources: Optional["SourceList"] = _field(
        None, "SourceList (m)", "explicit sources, or None to generate them from divergence "
        "and dispersion", flag="-sourcefile")


@dataclass
class SourceList:
    """Sources as read from a source file; NaN marks a column the file did not give.

    positions: (n, 3) vectors from the sample towards each source, m.
    weights: (n,) as given, dimensionless (read and reported, never applied).
    wavelengths: (n,) m.
    """
    positions: np.ndarray
    weights: np.ndarray
    wavelengths: np.ndarray


@_documented
@dataclass
class DetectorConfig:
    """Detector size, placement convention and sensor."""
    convention: str = _field("MOSFLM", "name", "one of " + ", ".join(CONVENTIONS),
                             flag="-mosflm, -xds, ...")
    pivot: str = _field("BEAM", "name", "BEAM or SAMPLE as requested; named conventions "
                        "force their own", flag="-pivot")
    pixel_size: float = _field(1.0e-4, "m", "pixel edge", _PIXEL, "-pixel")
    fpixels: int = _field(0, "pixels", "pixels along the fast axis (0: from size_f)",
                          flag="-detpixels_f")
    spixels: int = _field(0, "pixels", "pixels along the slow axis (0: from size_s)",
                          flag="-detpixels_s")
    size_f: float = _field(0.1024, "m", "detector size along the fast axis", _DETECTOR_LENGTH,
                           "-detsize_f")
    size_s: float = _field(0.1024, "m", "detector size along the slow axis", _DETECTOR_LENGTH,
                           "-detsize_s")
    distance: float = _field(0.1, "m", "sample to detector along the beam", _DISTANCE,
                             "-distance")
    close_distance: Optional[float] = _field(None, "m", "sample to detector plane (wins over "
                                             "distance)", _DISTANCE, "-close_distance")
    xbeam: Optional[float] = _field(None, "m", "beam centre, the convention's X",
                                    _DETECTOR_LENGTH, "-Xbeam")
    ybeam: Optional[float] = _field(None, "m", "beam centre, the convention's Y",
                                    _DETECTOR_LENGTH, "-Ybeam")
    xclose: Optional[float] = _field(None, "m", "near point X", _DETECTOR_LENGTH, "-Xclose")
    yclose: Optional[float] = _field(None, "m", "near point Y", _DETECTOR_LENGTH, "-Yclose")
    orgx: Optional[float] = _field(None, "pixels", "XDS origin X", flag="-ORGX")
    orgy: Optional[float] = _field(None, "pixels", "XDS origin Y", flag="-ORGY")
    fdet_vector: Optional[Vector3] = _field(None, "unit vector", "CUSTOM fast axis (None: the "
                                            "C's initial value)", flag="-fdet_vector")
    sdet_vector: Optional[Vector3] = _field(None, "unit vector", "CUSTOM slow axis",
                                            flag="-sdet_vector")
    odet_vector: Optional[Vector3] = _field(None, "unit vector", "CUSTOM detector normal",
                                            flag="-odet_vector")
    beam_vector: Optional[Vector3] = _field(None, "unit vector", "CUSTOM beam direction",
                                            flag="-beam_vector")
    polar_vector: Optional[Vector3] = _field(None, "unit vector", "CUSTOM polarization axis",
                                             flag="-polar_vector")
    spindle_axis: Optional[Vector3] = _field(None, "unit vector", "CUSTOM spindle axis",
                                             flag="-spindle_axis")
    twotheta_axis: Optional[Vector3] = _field(None, "unit vector", "CUSTOM two-theta axis",
                                              flag="-twotheta_axis")
    rotx: float = _field(0.0, "rad", "detector rotation about lab x", _TURN, "-detector_rotx")
    roty: float = _field(0.0, "rad", "detector rotation about lab y", _TURN, "-detector_roty")
    rotz: float = _field(0.0, "rad", "detector rotation about lab z", _TURN, "-detector_rotz")
    twotheta: float = _field(0.0, "rad", "detector swing about the two-theta axis", _TURN,
                             "-twotheta")
    curved: bool = _field(False, "bool", "spherical detector at constant distance",
                          flag="-curved_det")
    point_pixel: bool = _field(False, "bool", "solid angle 1/R^2 (no obliquity, no pixel area)",
                               flag="-point_pixel")
    thickness: float = _field(0.0, "m", "sensor thickness", _SMALL_LENGTH, "-detector_thick")
    thickness_steps: Optional[int] = _field(None, "count", "number of sensor layers",
                                            flag="-detector_thicksteps")
    attenuation_mu: Optional[float] = _field(None, "1/m", "sensor attenuation coefficient",
                                             flag="-detector_abs")


@dataclass
class StructureFactors:
    """A P1 structure-factor grid (nearest lookup or tricubic interpolation).

    grid: float64 array of shape (h_range+1, k_range+1, l_range+1) indexed
    [h-h_min, k-k_min, l-l_min], structure-factor amplitudes in electrons; the extra
    high slice on each axis is padding that lookups never address (it is part of the
    Fdump.bin layout).
    count: number of reflections read (the C's ``hkls``; 0 means "no grid").
    """
    grid: np.ndarray
    h_min: int
    k_min: int
    l_min: int
    count: int

    @property
    def ranges(self):
        """(h_range, k_range, l_range): number of indices along each axis."""
        return tuple(int(n) - 1 for n in self.grid.shape)

    @property
    def maxima(self):
        """(h_max, k_max, l_max)."""
        hr, kr, lr = self.ranges
        return self.h_min + hr - 1, self.k_min + kr - 1, self.l_min + lr - 1


@_documented
@dataclass
class CrystalConfig:
    """Unit cell, orientation, size, shape, mosaicity, spindle sweep, structure factors.

    Note the one non-SI unit of the configuration: cell edges are in Angstrom.
    """
    cell: Optional[Tuple[float, ...]] = _field(
        None, "Angstrom, Angstrom, Angstrom, rad, rad, rad",
        "(a, b, c, alpha, beta, gamma); None when a_matrix is given; b, c <= 0 mean a, angles "
        "<= 0 mean 90 degrees; cell edges accepted from 0.1 to 1e+06 Angstrom, angles below "
        "pi rad", flag="-cell")
    a_matrix: Optional[np.ndarray] = _field(
        None, "dimensionless", "MOSFLM A matrix, 3x3, rows as in the file (columns are a*, "
        "b*, c* in 1/Angstrom times the wavelength in Angstrom)", flag="-mat")
    misset: Union[None, str, Vector3] = _field(
        None, "rad", "(rx, ry, rz) rotations about lab x, y, z, or \"random\", or None",
        _TURN, "-misset")
    misset_seed: Optional[int] = _field(None, "seed", "seed of a random misset (None: clock)",
                                        flag="-misset_seed")
    na: int = _field(1, "unit cells", "unit cells along a as given", flag="-Na, -N")
    nb: int = _field(1, "unit cells", "unit cells along b as given", flag="-Nb, -N")
    nc: int = _field(1, "unit cells", "unit cells along c as given", flag="-Nc, -N")
    sample_size: Vector3 = _field((0.0, 0.0, 0.0), "m", "crystal size x, y, z (0: use na, nb, "
                                  "nc)", _SMALL_LENGTH, "-xtalsize")
    shape: str = _field("square", "name", "one of " + ", ".join(SHAPES), flag="-square_xtal, ...")
    fudge: float = _field(1.0, "dimensionless", "spot-shape fudge factor", flag="-fudge")
    mosaic_spread: Optional[float] = _field(None, "rad", "isotropic mosaic spread", _TURN,
                                            "-mosaic")
    mosaic_domains: Optional[int] = _field(None, "count", "number of mosaic domains",
                                           flag="-mosaic_domains")
    mosaic_seed: int = _field(12345678, "seed", "seed of the mosaic domain orientations",
                              flag="-mosaic_seed")
    phi0: float = _field(0.0, "rad", "first spindle angle (any value)", flag="-phi")
    osc: Optional[float] = _field(None, "rad", "oscillation range", _TURN, "-osc")
    phi_step: Optional[float] = _field(None, "rad", "spindle step", _TURN, "-phistep")
    phi_steps: Optional[int] = _field(None, "count", "number of spindle steps",
                                      flag="-phisteps")
    phi_midpoints: bool = _field(False, "bool", "sample the spindle at the midpoints of the "
                                 "steps, phi0 + (k + 1/2) phi_step, so that an image is the "
                                 "integral over [phi0, phi0 + osc] (nbnumba only; False: the "
                                 "C's phi0 + k phi_step)", flag="-phi_midpoints")
    structure_factors: Optional[StructureFactors] = _field(
        None, "electrons", "P1 structure-factor grid", flag="-hkl")
    default_F: float = _field(0.0, "electrons", "F for reflections outside the grid",
                              flag="-default_F")
    interpolate: Optional[bool] = _field(None, "bool", "tricubic F interpolation (None: auto)",
                                         flag="-interpolate")


@_documented
@dataclass
class RenderConfig:
    """Sampling and region options of the pixel loop."""
    oversample: Optional[int] = _field(None, "sub-pixels per axis", "oversampling (None: "
                                       "auto)", flag="-oversample")
    oversample_thick: bool = _field(False, "bool", "recompute the capture fraction per "
                                    "sub-pixel", flag="-oversample_thick")
    oversample_polar: bool = _field(False, "bool", "recompute polarization per sub-pixel and "
                                    "source", flag="-oversample_polar")
    oversample_omega: bool = _field(False, "bool", "recompute the solid angle per sub-pixel",
                                    flag="-oversample_omega")
    dmin: float = _field(0.0, "m", "resolution cut (0: off)", _RESOLUTION, "-dmin")
    water_size: float = _field(0.0, "m", "water background thickness", _SMALL_LENGTH, "-water")
    roi: Optional[Tuple[int, int, int, int]] = _field(
        None, "pixels", "(xmin, xmax, ymin, ymax) inclusive bounds; None or negative: whole "
        "detector", flag="-roi")
    mask: Optional[np.ndarray] = _field(
        None, "uint16 per pixel", "(spixels, fpixels) or flat; 0 skips the pixel", flag="-mask")


@_documented
@dataclass
class SimulationConfig:
    """Everything the engine needs for one image (each part lists its units)."""
    beam: BeamConfig = _field(None, "BeamConfig", "incident beam", factory=BeamConfig)
    detector: DetectorConfig = _field(None, "DetectorConfig", "detector",
                                      factory=DetectorConfig)
    crystal: CrystalConfig = _field(None, "CrystalConfig", "crystal", factory=CrystalConfig)
    render: RenderConfig = _field(None, "RenderConfig", "sampling and region",
                                  factory=RenderConfig)


def check_units(config: SimulationConfig):
    """Raise :class:`ConfigError` for a value implausible for its field's unit.

    Every field with a plausible range is checked (magnitudes; zero always passes); a
    cell's edges and angles are checked against their own ranges. The message names the
    field, the value with its unit, the range and the likely mistake.
    """
    sections = (("beam", config.beam), ("detector", config.detector),
                ("crystal", config.crystal), ("render", config.render))
    for section_name, section in sections:
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if f.name == "cell":
                _check_cell(value)
                continue
            limits = f.metadata.get("plausible")
            if limits is None or value is None or isinstance(value, str):
                continue
            name = f"{section_name}.{f.name} (flag {f.metadata['flag']})"
            for number in np.ravel(np.asarray(value, dtype=float)):
                _check_value(name, float(number), f.metadata["unit"], limits)


def _check_cell(cell):
    if cell is None:
        return
    names = ("a", "b", "c", "alpha", "beta", "gamma")
    for index, (name, value) in enumerate(zip(names, cell)):
        limits, unit = (_CELL_EDGE, "Angstrom") if index < 3 else (_CELL_ANGLE, "rad")
        _check_value(f"crystal.cell {name} (flag -cell)", float(value), unit, limits)


def _check_value(name, value, unit, limits):
    magnitude = abs(value)
    if magnitude == 0.0 or not math.isfinite(value):
        return  # zero means "default/off"; non-finite values are reported elsewhere
    too_small = limits.low is not None and magnitude < limits.low
    too_large = limits.high is not None and magnitude > limits.high
    if too_small or too_large:
        raise ConfigError(f"{name} = {value:g} {unit} is implausible ("
                          f"{_range_text(limits, unit)}): {limits.hint}")
