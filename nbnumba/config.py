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

from . import memory
from .constants import DEFAULT_FLUENCE
from .errors import ConfigError, InputFileError, warn_caller  # noqa: F401  (ConfigError re-exported)
from .fields import Fields, no_field_message  # noqa: F401  (re-exported)
from .panels import DetectorPanels

Vector3 = Tuple[float, float, float]

CONVENTIONS = ("MOSFLM", "XDS", "ADXV", "DENZO", "DIALS", "CUSTOM")
PIVOTS = ("BEAM", "SAMPLE")
SHAPES = ("square", "round", "gauss", "tophat")

FULL_TURN = 2.0 * math.pi


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
_FRACTION = Plausible(None, 2.0, "a fraction of lambda0, not a percentage (0.01 = 1 %); "
                      "above 2 the shortest wavelength, lambda0 (1 - dispersion/2), is negative")


@_documented
@dataclass
class BeamConfig(Fields):
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
class SourceList(Fields):
    """Explicit sources: one direction and wavelength each (as a ``-sourcefile`` gives).

    positions: (n, 3) vectors **from the sample towards each source**, m (only their
    direction is used: the C's convention, the opposite of the beam's direction of
    travel); NaN in a column means "not given": -10 m x the beam direction.
    weights: (n,) dimensionless; read and reported, never applied (as in the C program:
    every source counts equally and the image is divided by their number).
    wavelengths: (n,) m; NaN means lambda0 (``BeamConfig.wavelength``).
    upstream_only: refuse a source on the far side of the sample (more than 90 degrees
    from the incoming beam), the mark of directions of travel given as positions; the
    readers of C source files turn it off, as the C renders such files.

    Build from arrays with :meth:`from_directions` (directions of travel of the beam) or
    :meth:`from_positions` (sample -> source vectors).
    """
    positions: np.ndarray
    weights: np.ndarray
    wavelengths: np.ndarray
    upstream_only: bool = True

    @classmethod
    def from_directions(cls, beam_directions, wavelengths=None, weights=None):
        """Sources from the directions in which their beams **travel** (source -> sample).

        beam_directions: (n, 3) or (3,) array, any length (normalised later);
        wavelengths: (n,) or a scalar, m (None: lambda0 of the configuration);
        weights: (n,) or None, dimensionless (read, not applied; a warning says so
        when they are not all equal).
        Stored as positions = -direction (the C's sample -> source convention).
        """
        directions = _source_array(beam_directions, "beam_directions")
        return cls._build(-directions, wavelengths, weights)

    @classmethod
    def from_positions(cls, positions, wavelengths=None, weights=None):
        """Sources from vectors **from the sample towards each source** (m; the C's
        ``-sourcefile`` convention); arguments as :meth:`from_directions`."""
        return cls._build(_source_array(positions, "positions"), wavelengths, weights)

    @classmethod
    def _build(cls, positions, wavelengths, weights):
        n = len(positions)
        lambdas = _per_source(wavelengths, n, "wavelengths", "m", np.nan)
        weights = _per_source(weights, n, "weights", "dimensionless", 1.0)
        sources = cls(positions=positions, weights=weights, wavelengths=lambdas)
        sources.check()
        return sources

    def check(self):
        """Raise :class:`ConfigError` for arrays of the wrong shape or values that give
        no direction or no wavelength (with the fix in the message). Weights that are
        not all equal give a ``UserWarning`` (they are not applied), once per list, at
        the caller's line, except for lists read from a C source file
        (``upstream_only`` False), whose weights the set-up lines print."""
        positions = _array_of(self.positions, "SourceList.positions", "m")
        if positions.ndim != 2 or positions.shape[1] != 3 or positions.shape[0] < 1:
            raise ConfigError(f"SourceList.positions [m] must have shape (n, 3) with n >= 1, "
                              f"got shape {positions.shape}; for a single source use "
                              "positions[None, :]")
        n = positions.shape[0]
        for name, unit in (("weights", "dimensionless"), ("wavelengths", "m")):
            values = _array_of(getattr(self, name), f"SourceList.{name}", unit)
            if values.shape != (n,):
                raise ConfigError(f"SourceList.{name} [{unit}] must have shape ({n},), one "
                                  f"per position, got shape {values.shape}")
            if np.any(np.isinf(values)):
                raise ConfigError(f"SourceList.{name} [{unit}] must be finite (NaN: not given)")
        if np.any(np.isinf(positions)):
            raise ConfigError("SourceList.positions [m] must be finite (NaN: not given)")
        given = np.nan_to_num(positions)
        zero = np.all(given == 0.0, axis=1) & ~np.any(np.isnan(positions), axis=1)
        if np.any(zero):
            raise ConfigError(f"SourceList.positions [m]: source {int(np.argmax(zero))} is "
                              "the zero vector, which gives no direction")
        if self.upstream_only:  # built from arrays (a C source file keeps the C's freedom)
            with np.errstate(all="ignore"):
                squares = np.sum(given * given, axis=1)
            unfit = ~np.any(np.isnan(positions), axis=1) & ~((squares > 0.0)
                                                            & np.isfinite(squares))
            if np.any(unfit):
                i = int(np.argmax(unfit))
                length = float(np.max(np.abs(given[i])))
                raise ConfigError(f"SourceList.positions [m]: source {i} has a component of "
                                  f"{length:g} m, so {'small' if length < 1 else 'large'} "
                                  "that its squared length "
                                  f"{'underflows' if length < 1 else 'overflows'} and it gives "
                                  "no direction: scale it (only the direction counts)")
        lambdas = np.asarray(self.wavelengths, dtype=float)
        if np.any(lambdas[~np.isnan(lambdas)] <= 0.0):
            raise ConfigError("SourceList.wavelengths [m] must be positive")
        weights = np.asarray(self.weights, dtype=float)
        given = weights[~np.isnan(weights)]
        if (self.upstream_only and given.size and np.any(given != given[0])
                and not self.__dict__.get("_weights_told")):
            warn_caller("weights are read but not applied, as in the C program: every "
                        "source counts equally")
            object.__setattr__(self, "_weights_told", True)  # once per list


#: what a dtype that cannot hold nbnumba's numbers is
_UNFIT_DTYPES = {"e": "float16 holds about 3 significant digits and at most 65504",
                 "c": "complex numbers are not real numbers",
                 "U": "strings are not numbers", "S": "bytes are not numbers",
                 "O": "Python objects (None, mixed types) are not numbers",
                 "V": "structured records are not numbers",
                 "M": "dates are not numbers", "m": "time spans are not numbers"}


def unfit_dtype(dtype):
    """Why an array of ``dtype`` cannot hold a field's numbers (one phrase), or None for
    the bool, integer and float32/float64 dtypes that can."""
    dtype = np.dtype(dtype)
    return _UNFIT_DTYPES.get(dtype.char if dtype.kind == "f" else dtype.kind)


def _array_of(value, name, unit):
    """``value`` as a float64 array; ConfigError, naming the dtype, for values of a dtype
    that cannot hold real numbers (float16, complex, strings, objects), before any
    arithmetic."""
    try:
        raw = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} [{unit}] must be an array of numbers, got "
                          f"{type(value).__name__}") from None
    why = unfit_dtype(raw.dtype)
    if raw.dtype.kind == "O" and all(_is_real(x) for x in raw.ravel()):
        why = None  # plain numbers NumPy could not fit one dtype (integers beyond 64 bits)
    if why is not None:
        raise ConfigError(f"{name} [{unit}] must be an array of real numbers (int or float64), "
                          f"got dtype {raw.dtype}: {why}")
    return raw.astype(float)


def _source_array(value, name):
    array = _array_of(value, name, "m")
    if array.ndim == 1 and array.shape == (3,):
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] < 1:
        raise ConfigError(f"{name} [m] must have shape (n, 3) (or (3,) for one source), got "
                          f"shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ConfigError(f"{name} [m] must be finite")
    return array.copy()


def _per_source(value, n, name, unit, default):
    if value is None:
        return np.full(n, default)
    array = _array_of(value, name, unit)
    if array.ndim == 0:
        array = np.full(n, float(array))
    if array.shape != (n,):
        raise ConfigError(f"{name} [{unit}] must be a scalar or have shape ({n},), one per "
                          f"source, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ConfigError(f"{name} [{unit}] must be finite")
    return array.copy()


@_documented
@dataclass
class DetectorConfig(Fields):
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
    preset: Optional[str] = _field(None, "name", "a named detector of several modules "
                                   "(nbnumba.presets.PRESETS: pilatus6m, eiger2-16m ...), "
                                   "placed like the C's detector; it sets the pixel size and "
                                   "counts (leave pixel_size, fpixels, spixels, size_f and "
                                   "size_s at their defaults or at its values)",
                                   flag="--detector")
    panels: Optional[DetectorPanels] = _field(
        None, "DetectorPanels (m)", "explicit panels in the lab frame (a DIALS experiment's, "
        "nbnumba.panels); they replace the C's placement (distance, beam centre, rotations, "
        "pixel size and counts are not used); beam_vector, polar_vector and spindle_axis "
        "give the beam and spindle (convention CUSTOM)", flag="--experiment")


#: largest F grid (points, float64): 2 GB
MAX_GRID_POINTS = 1 << 28

#: largest Miller index magnitude
MAX_INDEX = 10 ** 6

#: a grid larger than this (bytes) is announced before it is allocated
LARGE_GRID_BYTES = 256 << 20


@dataclass
class StructureFactors(Fields):
    """A P1 structure-factor grid (nearest lookup or tricubic interpolation).

    Build it from Miller indices and amplitudes with :meth:`from_miller` (the image is
    bit-identical to the one from the same reflections in an HKL file).

    grid: float64 array of shape (h_range+1, k_range+1, l_range+1) indexed
    [h-h_min, k-k_min, l-l_min], structure-factor amplitudes in electrons; the extra
    high slice on each axis is padding that lookups never address and that holds zeros
    (the C's layout, also that of Fdump.bin): a grid without it is refused.
    h_min, k_min, l_min: Miller indices of grid[0, 0, 0].
    count: number of reflections read (the C's ``hkls``), at least 1.
    """
    grid: np.ndarray
    h_min: int
    k_min: int
    l_min: int
    count: int
    #: the cell of the file the amplitudes came from, (a, b, c, alpha, beta, gamma) in
    #: Angstrom and radians, or None (HKL files, arrays): the cell simulated must agree
    #: (:meth:`check_cell`), and a configuration without a cell uses it
    cell: Optional[Tuple[float, ...]] = None
    #: the file's space group (Hermann-Mauguin symbol), or None
    space_group: Optional[str] = None
    #: one line saying where the amplitudes came from, or None
    source: Optional[str] = None

    @classmethod
    def from_miller(cls, h, k, l, F, default_F=0.0):
        """Structure factors from arrays of Miller indices and amplitudes.

        h, k, l: (n,) integers (or integral floats); F: (n,) amplitudes, electrons;
        default_F: the amplitude of grid points no reflection gives (electrons; use the
        configuration's ``CrystalConfig.default_F`` to match an HKL file read with it).
        Later duplicates replace earlier ones, as in an HKL file.
        """
        indices = []
        for name, values in (("h", h), ("k", k), ("l", l)):
            array = _array_of(values, name, "Miller index")
            if array.ndim != 1:
                raise ConfigError(f"{name} [Miller index] must be a 1-D array, got shape "
                                  f"{array.shape}")
            if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
                raise ConfigError(f"{name} [Miller index] must hold integers")
            if np.any(np.abs(array) > MAX_INDEX):
                raise ConfigError(f"{name} [Miller index] must lie within +-{MAX_INDEX}")
            indices.append(array.astype(np.int64))
        amplitudes = _array_of(F, "F", "electrons")
        n = len(indices[0])
        if any(a.shape != (n,) for a in indices[1:]) or amplitudes.shape != (n,):
            raise ConfigError("h, k, l and F must be 1-D arrays of one length, got shapes "
                              + ", ".join(str(np.shape(a)) for a in (h, k, l, F)))
        if n == 0:
            raise ConfigError("no reflections: h, k, l and F are empty (for no grid, pass "
                              "structure_factors=None and set default_F)")
        if not np.all(np.isfinite(amplitudes)):
            raise ConfigError("F [electrons] must be finite")
        check_number("default_F", "electrons", default_F)
        return build_grid(np.stack(indices, axis=1), amplitudes, float(default_F))

    @classmethod
    def from_mtz(cls, path, column=None, default_F=0.0, say=None):
        """Structure factors from a merged MTZ file, expanded to P1 (needs gemmi:
        ``pip install 'nbnumba[models]'``).

        path: the file; column: the label of an amplitude (type F) or intensity (type J)
        column (None: the file's one amplitude column, else its one intensity column;
        intensities become F = sqrt(max(I, 0))); default_F: electrons, for the grid
        points no reflection gives. The grid is the one an HKL file listing the P1
        reflections would give (:func:`nbnumba.io.reflections.expand_to_p1` says how
        they are expanded); ``cell``, ``space_group`` and ``source`` say what the file
        holds. Raises :class:`InputFileError` (one line) for a file that is not a
        merged MTZ file or a column missing, ambiguous or of another kind.
        say: callable(text) told before a large grid is allocated (default: a warning).
        """
        from .io import reflection_files
        check_number("default_F", "electrons", default_F)
        found = reflection_files.read_mtz(path, column)
        return cls._from_reflections(found, default_F, say)

    @classmethod
    def from_sf_cif(cls, path, column=None, default_F=0.0, say=None):
        """Structure factors from a structure-factor mmCIF file (the PDB's
        ``1abc-sf.cif``, gzip-compressed or not), expanded to P1 (needs gemmi).

        column: a ``_refln`` tag (``F_meas_au``, ``intensity_meas`` ...; None: chosen
        as for :meth:`from_mtz`); the first data block with a ``_refln`` loop is read.
        Otherwise as :meth:`from_mtz`.
        """
        from .io import reflection_files
        check_number("default_F", "electrons", default_F)
        found = reflection_files.read_sf_cif(path, column)
        return cls._from_reflections(found, default_F, say)

    @classmethod
    def from_model(cls, model, d_min, default_F=0.0, b_add=0.0, k_sol=0.0, b_sol=46.0,
                   say=None):
        """Structure factors computed from a coordinate model (mmCIF or PDB file, or a
        ``gemmi.Structure``), expanded to P1 (needs gemmi).

        d_min: resolution limit, Angstrom (every reflection with d >= d_min; the others
        get default_F, electrons); b_add: Angstrom^2 added to every atom's B (default
        0: the model's B as they are); k_sol, b_sol: flat bulk solvent, e/Angstrom^3
        and Angstrom^2 (default k_sol 0: the atoms alone). The amplitudes are those of
        ``gemmi sfcalc --dmin=d_min`` (X-ray form factors, first model, every atom
        with its occupancy; systematic absences 0, F(000) left out); see
        :mod:`nbnumba.io.model_sf`.
        """
        from .io import model_sf
        check_number("default_F", "electrons", default_F)
        found = model_sf.calculate(model, d_min, b_add=b_add, k_sol=k_sol, b_sol=b_sol)
        return cls._from_reflections(found, default_F, say)

    @classmethod
    def _from_reflections(cls, found, default_F, say):
        """The grid of P1 reflections read by :mod:`nbnumba.io.reflections`' readers,
        through the HKL reader's :func:`build_grid`."""
        sf = build_grid(found.hkl, found.F, float(default_F), InputFileError,
                        f"the P1 reflections of {found.source}", say,
                        "use a larger d_min, or reflections to a lower resolution")
        sf.cell = tuple(found.cell)
        sf.space_group = found.space_group
        sf.source = found.source
        return sf

    def check_cell(self, cell, what="the cell simulated"):
        """Raise :class:`InputFileError` when ``cell`` (a, b, c in Angstrom, angles in
        rad) differs from the file's (:attr:`cell`) by more than
        :data:`CELL_EDGE_TOLERANCE` (relative) in an edge or
        :data:`CELL_ANGLE_TOLERANCE` in an angle; nothing when the grid has no cell."""
        if self.cell is None:
            return
        edges = all(abs(x - y) <= CELL_EDGE_TOLERANCE * y for x, y in zip(cell[:3], self.cell[:3]))
        angles = all(abs(x - y) <= CELL_ANGLE_TOLERANCE for x, y in zip(cell[3:], self.cell[3:]))
        if not (edges and angles):
            source = (self.source or "the structure factors").split(" (")[0]
            raise InputFileError(
                f"{what} ({_cell_text(cell)}) differs from the cell of {source} "
                f"({_cell_text(self.cell)}) by more than {CELL_EDGE_TOLERANCE:.0%} in an "
                f"edge or {CELL_ANGLE_TOLERANCE * 180 / math.pi:g} degree in an angle: its "
                "reflections belong to another cell (leave out -cell to use the file's)")

    def check(self):
        """Raise :class:`ConfigError` for a grid that cannot be this layout."""
        grid = self.grid
        if (not isinstance(grid, np.ndarray) or grid.dtype.kind not in "iuf"
                or unfit_dtype(grid.dtype) is not None):
            raise ConfigError("StructureFactors.grid [electrons] must be a NumPy array of "
                              "numbers, int or float64 (use StructureFactors.from_miller(h, k, "
                              "l, F))")
        if grid.ndim != 3 or min(grid.shape) < 2:
            raise ConfigError("StructureFactors.grid [electrons] must be 3-D with at least 2 "
                              f"points per axis (the indices plus one padding slice), got "
                              f"shape {grid.shape}")
        for name in ("h_min", "k_min", "l_min"):
            check_number(f"StructureFactors.{name}", "Miller index", getattr(self, name),
                          integer=True, limit=MAX_INDEX)
        check_number("StructureFactors.count", "reflections", self.count, integer=True)
        if self.count < 1:
            raise ConfigError(f"StructureFactors.count [reflections] = {self.count}: the C "
                              "takes 0 reflections to mean 'no grid' and ignores the grid; "
                              "give the number of reflections, or structure_factors=None")
        padding = (grid[-1, :, :], grid[:, -1, :], grid[:, :, -1])
        if any(np.any(p != 0) for p in padding):
            raise ConfigError("StructureFactors.grid [electrons] has nonzero values in its "
                              "last slice along an axis, which is padding the lookups never "
                              "read (the C's layout): pad the grid with "
                              "np.pad(grid, ((0, 1), (0, 1), (0, 1))) or build it with "
                              "StructureFactors.from_miller(h, k, l, F)")
        if not np.all(np.isfinite(grid)):
            raise ConfigError("StructureFactors.grid [electrons] must be finite")
        if self.cell is not None:
            _check_vector("StructureFactors.cell", "Angstrom, Angstrom, Angstrom, rad, rad, rad",
                          self.cell, 6)

    @property
    def ranges(self):
        """(h_range, k_range, l_range): number of indices along each axis."""
        return tuple(int(n) - 1 for n in self.grid.shape)

    @property
    def maxima(self):
        """(h_max, k_max, l_max)."""
        hr, kr, lr = self.ranges
        return self.h_min + hr - 1, self.k_min + kr - 1, self.l_min + lr - 1


#: how far the cell simulated may differ from the cell of a structure-factor file:
#: relative, in each edge, and radians (1 degree), in each angle
CELL_EDGE_TOLERANCE = 0.01
CELL_ANGLE_TOLERANCE = math.pi / 180


def _cell_text(cell):
    angles = tuple(x * 180 / math.pi for x in cell[3:])
    return "%g %g %g A, %g %g %g deg" % (tuple(cell[:3]) + angles)


def build_grid(hkl, F, default_F, error=ConfigError, name="the reflections", say=None,
               advice="use reflections with a smaller range of Miller indices"):
    """:class:`StructureFactors` on a dense grid spanning integer indices ``hkl`` (n, 3).

    The real part of the grid is pre-filled with ``default_F`` (the padding slices stay
    0, as in the C), then every reflection is stored, later duplicates winning.
    error: the exception raised for a grid too large (advice: what to do instead);
    say: callable(text) told first when the grid is large (default: a warning at the
    caller's line).
    """
    lo = hkl.min(axis=0)
    hi = hkl.max(axis=0)
    ranges = hi - lo + 1
    points = int(np.prod(ranges + 1))
    spans = "h %d..%d, k %d..%d, l %d..%d" % (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
    if points > MAX_GRID_POINTS:
        raise error(f"{name} span {spans}: a grid of {points} structure factors (at most "
                    f"{MAX_GRID_POINTS})")
    memory.require(8 * points, f"the structure-factor grid of {spans}", advice, error)
    if 8 * points > LARGE_GRID_BYTES:
        text = (f"{name} span {spans}: a grid of {points} structure factors "
                f"({memory.size_text(8 * points)}) is being allocated")
        if say is None:
            warn_caller(text)
        else:
            say(text)
    grid = np.zeros(tuple(int(r) + 1 for r in ranges))
    if default_F != 0.0:
        grid[:ranges[0], :ranges[1], :ranges[2]] = default_F
    rel = hkl - lo
    linear = np.ravel_multi_index((rel[:, 0], rel[:, 1], rel[:, 2]), grid.shape)
    # keep the last occurrence of each reflection (later lines replace earlier ones)
    _, first_from_end = np.unique(linear[::-1], return_index=True)
    last = len(linear) - 1 - first_from_end
    grid.flat[linear[last]] = F[last]
    return StructureFactors(grid=grid, h_min=int(lo[0]), k_min=int(lo[1]), l_min=int(lo[2]),
                            count=len(F))


@_documented
@dataclass
class CrystalConfig(Fields):
    """Unit cell, orientation, size, shape, mosaicity, spindle sweep, structure factors.

    Note the one non-SI unit of the configuration: cell edges are in Angstrom.
    """
    cell: Optional[Tuple[float, ...]] = _field(
        None, "Angstrom, Angstrom, Angstrom, rad, rad, rad",
        "(a, b, c, alpha, beta, gamma); None when a_matrix is given; b, c <= 0 mean a, angles "
        "<= 0 mean 90 degrees; cell edges accepted from 0.1 to 1e+06 Angstrom, angles below "
        "pi rad", flag="-cell")
    a_matrix: Optional[np.ndarray] = _field(
        None, "dimensionless", "MOSFLM A matrix, 3x3, rows as in the file: its columns are "
        "a*, b*, c* (1/Angstrom) multiplied by the wavelength (Angstrom), the one unit-free "
        "form of the reciprocal cell; divided by BeamConfig.wavelength (converted to "
        "Angstrom) as in the C", flag="-mat")
    misset: Union[None, str, Vector3] = _field(
        None, "rad", "(rx, ry, rz): the reciprocal vectors are rotated about lab x by rx, "
        "then about lab y by ry, then about lab z by rz (any angle: a rotation is periodic); "
        "or \"random\", or None", flag="-misset")
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
class RenderConfig(Fields):
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
class SimulationConfig(Fields):
    """Everything the engine needs for one image (each part lists its units)."""
    beam: BeamConfig = _field(None, "BeamConfig", "incident beam", factory=BeamConfig)
    detector: DetectorConfig = _field(None, "DetectorConfig", "detector",
                                      factory=DetectorConfig)
    crystal: CrystalConfig = _field(None, "CrystalConfig", "crystal", factory=CrystalConfig)
    render: RenderConfig = _field(None, "RenderConfig", "sampling and region",
                                  factory=RenderConfig)


def check_units(config: SimulationConfig, flag_units=None):
    """Raise :class:`ConfigError` for a value implausible for its field's unit.

    Every field with a plausible range is checked (magnitudes; zero always passes); a
    cell's edges and angles are checked against their own ranges. The message names the
    field, the value with its unit, the range and the likely mistake.

    flag_units: for a configuration built from command-line flags, a mapping of field
    name ("cell_edge", "cell_angle" for the cell) to (flag, unit, factor from the field's
    unit[, reason]) so that the message speaks the flag's unit
    (:data:`nbnumba.flags.FLAG_UNITS`).
    """
    for section_name, section in _sections(config):
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            try:
                _check_field_units(section_name, f, value, flag_units)
            except ConfigError:
                raise
            except (TypeError, ValueError, OverflowError):  # not numbers: say which type
                _check_field(section_name, f, value)
                _refuse(f"{section_name}.{f.name}", f.metadata["unit"], "numbers", value)


def _sections(config):
    """((name, section), ...) of a :class:`SimulationConfig`; ConfigError for anything
    else, or a section of the wrong class."""
    if not isinstance(config, SimulationConfig):
        _refuse("config", "SimulationConfig", "a SimulationConfig (nbnumba.SimulationConfig() "
                "or nbnumba.config_from_args([...])[0])", config)
    sections = []
    for section_name, cls in (("beam", BeamConfig), ("detector", DetectorConfig),
                              ("crystal", CrystalConfig), ("render", RenderConfig)):
        section = getattr(config, section_name)
        if not isinstance(section, cls):
            _refuse(section_name, cls.__name__, f"a {cls.__name__}", section)
        sections.append((section_name, section))
    return sections


def _check_field_units(section_name, f, value, flag_units):
    if f.name == "cell":
        _check_cell(value, flag_units)
        return
    limits = f.metadata.get("plausible")
    if limits is None or value is None or isinstance(value, str):
        return
    name = f"{section_name}.{f.name} (flag {f.metadata['flag']})"
    as_flag = (flag_units or {}).get(f.name)
    for number in np.ravel(np.asarray(value, dtype=float)):
        _check_value(name, float(number), f.metadata["unit"], limits, as_flag)


def _check_cell(cell, flag_units=None):
    if cell is None:
        return
    names = ("a", "b", "c", "alpha", "beta", "gamma")
    for index, (name, value) in enumerate(zip(names, cell)):
        limits, unit = (_CELL_EDGE, "Angstrom") if index < 3 else (_CELL_ANGLE, "rad")
        as_flag = (flag_units or {}).get("cell_edge" if index < 3 else "cell_angle")
        if as_flag is not None:
            as_flag = (f"{as_flag[0]} {name}",) + tuple(as_flag[1:])
        _check_value(f"crystal.cell {name} (flag -cell)", float(value), unit, limits, as_flag)


#: the accepted magnitudes of the configurations' fields, by kind (for other modules'
#: configurations: :func:`check_plausible`)
RANGES = {"wavelength": _WAVELENGTH, "divergence": _DIVERGENCE, "turn": _TURN,
          "pixel": _PIXEL, "detector length": _DETECTOR_LENGTH, "distance": _DISTANCE,
          "small length": _SMALL_LENGTH, "beam size": _BEAM_SIZE, "fraction": _FRACTION}


def check_plausible(name, value, unit, limits):
    """Raise :class:`ConfigError` when the finite, nonzero ``value`` (in ``unit``) lies
    outside ``limits`` (a :class:`Plausible`, e.g. one of :data:`RANGES`); the message
    names ``name``, the unit, the accepted range and the likely mistake."""
    _check_value(name, float(value), unit, limits)


def _check_value(name, value, unit, limits, as_flag=None):
    magnitude = abs(value)
    if magnitude == 0.0 or not math.isfinite(value):
        return  # zero means "default/off"; non-finite values are reported elsewhere
    too_small = limits.low is not None and magnitude < limits.low
    too_large = limits.high is not None and magnitude > limits.high
    if not (too_small or too_large):
        return
    if as_flag is None:
        raise ConfigError(f"{name} = {value:g} {unit} is implausible ("
                          f"{_range_text(limits, unit)}): {limits.hint}")
    flag, flag_unit, factor = as_flag[:3]
    why = as_flag[3] if len(as_flag) > 3 else f"{flag} is in {flag_unit}"
    scaled = Plausible(None if limits.low is None else limits.low * factor,
                       None if limits.high is None else limits.high * factor, "")
    raise ConfigError(f"{flag} {value * factor:g} {flag_unit} is implausible "
                      f"({_range_text(scaled, flag_unit)}): {why}")


# ---------------------------------------------------------------------------------------
# types: every field holds what its annotation says, before any value is used

#: largest magnitude of a seed (a signed 64-bit integer, negated once by the C's rule)
SEED_LIMIT = 2 ** 63 - 1

#: largest count or pixel number accepted from Python (the C's int)
INT_LIMIT = 2 ** 31 - 1

_CHOICES = {"convention": CONVENTIONS, "pivot": PIVOTS, "shape": SHAPES}


def _is_real(value):
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_, np.float16)))


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _type_name(value):
    return type(value).__name__


def shown(value, limit=60):
    """``value`` for a one-line message: its repr on one line, cut to ``limit``
    characters; an array as its shape and dtype."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    try:
        text = " ".join(repr(value).split())
    except Exception:  # a repr that fails: the type is enough
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _refuse(name, unit, expected, value):
    shown_value = shown(value)
    items = value if isinstance(value, (tuple, list)) else [value]
    hint = ""
    if any(isinstance(x, np.float16) for x in items):
        hint = ": " + _UNFIT_DTYPES["e"] + " (use float or float64)"
    raise ConfigError(f"{name} [{unit}] must be {expected}, got {shown_value} "
                      f"({_type_name(value)}){hint}")


def check_number(name, unit, value, integer=False, limit=None):
    """Raise :class:`ConfigError` unless ``value`` is a finite real number (an int when
    ``integer``, of magnitude at most ``limit``, default the C's int); the message names
    ``name``, its ``unit`` and the expected type."""
    if integer:
        if not _is_int(value):
            _refuse(name, unit, "a whole number (int)", value)
        if abs(int(value)) > (INT_LIMIT if limit is None else limit):
            _refuse(name, unit, f"an int of magnitude at most "
                    f"{INT_LIMIT if limit is None else limit}", value)
        return
    if not _is_real(value):
        _refuse(name, unit, "a real number (float)", value)
    if not math.isfinite(float(value)):
        _refuse(name, unit, "a finite number", value)


def _check_vector(name, unit, value, length):
    try:
        items = list(np.asarray(value, dtype=object).ravel()) \
            if isinstance(value, np.ndarray) else list(value)
    except TypeError:
        items = None
    if isinstance(value, (str, bytes)) or items is None or len(items) != length:
        _refuse(name, unit, f"a sequence of {length} real numbers", value)
    for item in items:
        if not _is_real(item) or not math.isfinite(float(item)):
            _refuse(name, unit, f"a sequence of {length} finite real numbers", value)


def _check_field(section_name, f, value):
    meta = f.metadata
    name = f"{section_name}.{f.name}"
    unit = meta["unit"]
    kind = f.type
    optional = False
    args = getattr(kind, "__args__", None)
    if args is not None and type(None) in args:
        optional = True
        rest = [a for a in args if a is not type(None)]
        kind = rest[0] if len(rest) == 1 else kind
    if value is None and optional:
        return
    if f.name == "misset":
        if isinstance(value, str):
            if value != "random":
                _refuse(name, unit, "three angles (rx, ry, rz), \"random\" or None", value)
            return
        _check_vector(name, unit, value, 3)
    elif f.name == "cell":
        _check_vector(name, unit, value, 6)
    elif f.name in ("a_matrix", "mask"):
        if not isinstance(value, (np.ndarray, list, tuple)):
            _refuse(name, unit, "a NumPy array", value)
        try:
            array = np.asarray(value)
        except (TypeError, ValueError, OverflowError):  # ragged nested lists
            _refuse(name, unit, "a numeric NumPy array", value)
        why = unfit_dtype(array.dtype) if array.dtype.kind != "O" else "not a numeric array"
        if array.dtype.kind not in "biuf" or why is not None:
            _refuse(name, unit, "a numeric NumPy array (int or float64)"
                    + (f"; {why}" if why else ""), value)
        if f.name == "a_matrix":
            if array.size != 9:
                _refuse(name, unit, "a 3x3 array", value)
            if not np.all(np.isfinite(array)):
                _refuse(name, unit, "a 3x3 array of finite numbers", value)
    elif f.name == "roi":
        _check_vector(name, unit, value, 4)
        for item in value:
            check_number(name, unit, item, integer=True)
    elif f.name == "sources":
        if not isinstance(value, SourceList):
            _refuse(name, unit, "a SourceList (SourceList.from_directions or "
                    "SourceList.from_positions) or None", value)
        value.check()
    elif f.name == "panels":
        if not isinstance(value, DetectorPanels):
            _refuse(name, unit, "a DetectorPanels (nbnumba.panels) or None", value)
        value.check(name)
    elif f.name == "preset":
        from .presets import PRESETS
        if not isinstance(value, str) or value not in PRESETS:
            _refuse(name, unit, "one of " + ", ".join(sorted(PRESETS)), value)
    elif f.name == "structure_factors":
        if not isinstance(value, StructureFactors):
            _refuse(name, unit, "a StructureFactors (StructureFactors.from_miller) or None",
                    value)
        value.check()
    elif kind is bool:
        if not isinstance(value, (bool, np.bool_)):
            _refuse(name, unit, "True or False", value)
    elif kind is str:
        choices = _CHOICES.get(f.name)
        if not isinstance(value, str) or (choices and value not in choices):
            _refuse(name, unit, "one of " + ", ".join(choices or ()), value)
    elif kind is int:
        seed = unit == "seed"
        check_number(name, unit, value, integer=True, limit=SEED_LIMIT if seed else None)
    elif kind is float:
        check_number(name, unit, value)
    elif getattr(kind, "__origin__", None) is tuple:
        _check_vector(name, unit, value, len(kind.__args__))


#: the DetectorConfig fields of the CUSTOM convention (the C's vector flags)
VECTOR_FIELDS = ("fdet_vector", "sdet_vector", "odet_vector", "beam_vector", "polar_vector",
                 "spindle_axis", "twotheta_axis")


def check_custom_vectors(detector):
    """Raise :class:`ConfigError` for a detector vector given with a named convention,
    whose own axes would replace it without a word (the C's vector flags select the
    CUSTOM convention; a configuration says so with ``convention="CUSTOM"``)."""
    if detector.convention == "CUSTOM":
        return
    for name in VECTOR_FIELDS:
        if getattr(detector, name) is not None:
            raise ConfigError(
                f"detector.{name} is given but detector.convention is "
                f"{detector.convention!r}, whose own axes replace it: set "
                f"convention='CUSTOM' to use it (as the C's -{name} flag does; every vector "
                f"not given then takes the C's initial value, not {detector.convention}'s), "
                f"or {name}=None")


def check_types(config):
    """Raise :class:`ConfigError` unless every field holds a value of its type.

    Numbers must be finite reals (ints where a count, a pixel number or a seed belongs:
    ``fpixels=32.5`` is refused, not truncated), vectors sequences of finite reals of the
    right length, names one of their choices; ``None`` only where a field allows it. The
    message names the field, its unit and the expected type.
    """
    for section_name, section in _sections(config):
        for f in dataclasses.fields(section):
            _check_field(section_name, f, getattr(section, f.name))
