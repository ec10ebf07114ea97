"""Configuration objects: what to simulate, with the C program's defaults.

Units are SI (metres, radians, seconds) with two crystallographic exceptions that keep
results bit-identical with the C program, which stores them this way internally:
unit-cell edges are in Angstrom and orientation (A) matrices are in the MOSFLM form
(reciprocal-cell vectors times the wavelength in Angstrom). Values that the C marks as
"not given" (and then chooses by a rule) are ``None`` here; the rules live next to the
physics that needs them (``geometry``, ``crystal``, ``sources``, ``sampling``).

Build these in code, or from C-style arguments with :func:`nbnumba.config_from_args`.
"""
from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

import numpy as np

from .constants import DEFAULT_FLUENCE

Vector3 = Tuple[float, float, float]

CONVENTIONS = ("MOSFLM", "XDS", "ADXV", "DENZO", "DIALS", "CUSTOM")
PIVOTS = ("BEAM", "SAMPLE")
SHAPES = ("square", "round", "gauss", "tophat")


@dataclass
class BeamConfig:
    """Incident beam: wavelength, spectrum, divergence, polarization, intensity."""
    wavelength: float = 1.0e-10           #: central wavelength lambda0, m
    dispersion: float = 0.0               #: full spectral width, fraction of lambda0
    dispersion_steps: Optional[int] = None  #: number of wavelengths
    hdiv_range: Optional[float] = None    #: horizontal divergence full range, rad
    vdiv_range: Optional[float] = None    #: vertical divergence full range, rad
    hdiv_step: Optional[float] = None     #: horizontal divergence step, rad
    vdiv_step: Optional[float] = None     #: vertical divergence step, rad
    hdiv_steps: Optional[int] = None      #: number of horizontal divergence points
    vdiv_steps: Optional[int] = None      #: number of vertical divergence points
    round_divergence: bool = True         #: trim the divergence grid to an ellipse
    kahn_factor: float = 0.0              #: Kahn polarization factor K (0 = unpolarized)
    no_polarization: bool = False         #: fix the polarization factor at 1
    fluence: float = DEFAULT_FLUENCE      #: photons/m^2
    flux: float = 0.0                     #: photons/s (with exposure and beam_size sets fluence)
    exposure: float = 1.0                 #: s
    beam_size: float = 1.0e-4             #: m (also clips the sample's y and z sizes)
    #: explicit sources, or None to generate them from divergence and dispersion
    sources: Optional["SourceList"] = None


@dataclass
class SourceList:
    """Sources as read from a source file; NaN marks a column the file did not give.

    positions: (n, 3) vectors from the sample towards each source, m.
    weights: (n,) as given (read and reported, never applied).
    wavelengths: (n,) m.
    """
    positions: np.ndarray
    weights: np.ndarray
    wavelengths: np.ndarray


@dataclass
class DetectorConfig:
    """Detector size, placement convention and sensor."""
    convention: str = "MOSFLM"            #: one of CONVENTIONS
    pivot: str = "BEAM"                   #: as requested; named conventions force their own
    pixel_size: float = 1.0e-4            #: m
    fpixels: int = 0                      #: pixels along fast axis (0: from size_f)
    spixels: int = 0                      #: pixels along slow axis (0: from size_s)
    size_f: float = 0.1024                #: m
    size_s: float = 0.1024                #: m
    distance: float = 0.1                 #: sample to detector along the beam, m
    close_distance: Optional[float] = None  #: sample to detector plane, m (wins over distance)
    xbeam: Optional[float] = None         #: beam centre, convention's X, m
    ybeam: Optional[float] = None         #: beam centre, convention's Y, m
    xclose: Optional[float] = None        #: near point, m
    yclose: Optional[float] = None        #: near point, m
    orgx: Optional[float] = None          #: XDS origin, pixels
    orgy: Optional[float] = None          #: XDS origin, pixels
    #: CUSTOM convention vectors (None: the C's initial value)
    fdet_vector: Optional[Vector3] = None
    sdet_vector: Optional[Vector3] = None
    odet_vector: Optional[Vector3] = None
    beam_vector: Optional[Vector3] = None
    polar_vector: Optional[Vector3] = None
    spindle_axis: Optional[Vector3] = None
    twotheta_axis: Optional[Vector3] = None
    rotx: float = 0.0                     #: detector rotation about lab x, rad
    roty: float = 0.0                     #: about lab y, rad
    rotz: float = 0.0                     #: about lab z, rad
    twotheta: float = 0.0                 #: detector swing about the two-theta axis, rad
    curved: bool = False                  #: spherical detector at constant distance
    point_pixel: bool = False             #: solid angle 1/R^2 (no obliquity, no pixel area)
    thickness: float = 0.0                #: sensor thickness, m
    thickness_steps: Optional[int] = None  #: number of sensor layers
    attenuation_mu: Optional[float] = None  #: sensor attenuation coefficient, 1/m


@dataclass
class StructureFactors:
    """A P1 structure-factor grid (nearest lookup or tricubic interpolation).

    grid: float64 array of shape (h_range+1, k_range+1, l_range+1) indexed
    [h-h_min, k-k_min, l-l_min]; the extra high slice on each axis is padding that
    lookups never address (it is part of the Fdump.bin layout).
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


@dataclass
class CrystalConfig:
    """Unit cell, orientation, size, shape, mosaicity, spindle sweep, structure factors."""
    #: (a, b, c, alpha, beta, gamma): Angstrom and radians; None with ``a_matrix``
    cell: Optional[Tuple[float, ...]] = None
    #: MOSFLM A matrix, 3x3, rows as in the file (columns are a*, b*, c* times lambda)
    a_matrix: Optional[np.ndarray] = None
    #: (rx, ry, rz) radians, or "random", or None
    misset: Union[None, str, Vector3] = None
    misset_seed: Optional[int] = None     #: -misset_seed value (None: clock)
    na: int = 1                           #: unit cells along a as given (-N/-Na)
    nb: int = 1
    nc: int = 1
    sample_size: Vector3 = (0.0, 0.0, 0.0)  #: crystal size x, y, z, m (0: use na..nc)
    shape: str = "square"                 #: one of SHAPES
    fudge: float = 1.0                    #: spot-shape fudge factor
    mosaic_spread: Optional[float] = None  #: rad
    mosaic_domains: Optional[int] = None
    mosaic_seed: int = 12345678           #: -mosaic_seed value
    phi0: float = 0.0                     #: first spindle angle, rad
    osc: Optional[float] = None           #: oscillation range, rad
    phi_step: Optional[float] = None      #: rad
    phi_steps: Optional[int] = None
    structure_factors: Optional[StructureFactors] = None
    default_F: float = 0.0                #: F for reflections outside the grid
    interpolate: Optional[bool] = None    #: tricubic F interpolation (None: auto)


@dataclass
class RenderConfig:
    """Sampling and region options of the pixel loop."""
    oversample: Optional[int] = None      #: sub-pixels per axis (None: auto)
    oversample_thick: bool = False        #: recompute capture fraction per sub-pixel
    oversample_polar: bool = False        #: recompute polarization per sub-pixel and source
    oversample_omega: bool = False        #: recompute solid angle per sub-pixel
    dmin: float = 0.0                     #: resolution cut, m (0: off)
    water_size: float = 0.0               #: water background thickness, m
    #: (xmin, xmax, ymin, ymax) inclusive pixel bounds; None or negative: whole detector
    roi: Optional[Tuple[int, int, int, int]] = None
    #: uint16 mask (spixels, fpixels) or flat; 0 = skip the pixel
    mask: Optional[np.ndarray] = None


@dataclass
class SimulationConfig:
    """Everything the engine needs for one image."""
    beam: BeamConfig = field(default_factory=BeamConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    crystal: CrystalConfig = field(default_factory=CrystalConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
