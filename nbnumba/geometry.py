"""Detector geometry: conventions, beam centres, pivots, rotations, two-theta, pix0.

Follows ``spec/geometry.md`` step by step and in the C's operation order, so that pix0
and the detector vectors are bit-identical with the C program (they feed every pixel).
All lengths in metres, angles in radians.
"""
import math
from dataclasses import dataclass, field
from typing import List, Tuple

from . import vec
from .config import CONVENTIONS, DetectorConfig
from .constants import DBL_MIN
from .errors import ConfigError

Vector3 = Tuple[float, float, float]

# The C's vectors before any convention is applied (what CUSTOM starts from).
_INITIAL_VECTORS = dict(
    beam=(1.0, 0.0, 0.0), fdet=(0.0, 0.0, 1.0), sdet=(0.0, -1.0, 0.0),
    odet=(1.0, 0.0, 0.0), polar=(0.0, 0.0, 1.0), spindle=(0.0, 0.0, 1.0),
    twotheta=(0.0, 1.0, 0.0))

# beam, fast, slow, normal, two-theta axis, polarization (= spindle) of each named frame
_FRAMES = {
    "MOSFLM": ((1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0), (0, 0, -1), (0, 0, 1)),
    "DENZO": ((1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0), (0, 0, -1), (0, 0, 1)),
    "ADXV": ((0, 0, 1), (1, 0, 0), (0, -1, 0), (0, 0, 1), (-1, 0, 0), (1, 0, 0)),
    "XDS": ((0, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 0), (1, 0, 0)),
    "DIALS": ((0, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 0), (0, 1, 0)),
}


class GeometryError(ConfigError):
    """A detector description that cannot be turned into a geometry."""


def _floats(v):
    return tuple(float(x) for x in v)


@dataclass
class DetectorFrame:
    """Detector size, convention vectors and beam centres before placement (C order)."""
    convention: str
    pivot: str
    pixel_size: float
    fpixels: int
    spixels: int
    size_f: float
    size_s: float
    xbeam: float
    ybeam: float
    fbeam: float
    sbeam: float
    xclose: float
    yclose: float
    fclose: float
    sclose: float
    beam: Vector3
    fdet: Vector3
    sdet: Vector3
    odet: Vector3
    polar: Vector3
    spindle: Vector3
    twotheta_axis: Vector3
    vertical: Vector3
    messages: List[str] = field(default_factory=list)


#: largest detector side, pixels
MAX_PIXELS = 1 << 17


def _pixel_count(x):
    """ceil(x) as an int (a count above MAX_PIXELS for huge or infinite x)."""
    return int(math.ceil(x)) if x <= MAX_PIXELS else MAX_PIXELS + 1


def detector_pixels(det: DetectorConfig):
    """(fpixels, spixels, size_f, size_s) after the C's size rules.

    A non-zero pixel count sets that side's size to count x pixel; then every count is
    ``ceil(size/pixel - 0.5)`` (so a size that is not a multiple of the pixel keeps its
    value while the count is rounded).
    """
    pixel = det.pixel_size
    size_f, size_s = det.size_f, det.size_s
    if det.fpixels:
        size_f = pixel * det.fpixels
    if det.spixels:
        size_s = pixel * det.spixels
    fpixels = _pixel_count(size_f / pixel - 0.5)
    spixels = _pixel_count(size_s / pixel - 0.5)
    return fpixels, spixels, size_f, size_s


def detector_frame(det: DetectorConfig) -> DetectorFrame:
    """Apply the C's near-point defaults and convention block (geometry.md section 3)."""
    if det.convention not in CONVENTIONS:
        raise GeometryError(f"unknown detector convention {det.convention!r}")
    if not det.pixel_size > 0:
        raise GeometryError(f"pixel size must be positive, got {det.pixel_size * 1000:g} mm")
    fpixels, spixels, size_f, size_s = detector_pixels(det)
    if fpixels <= 0 or spixels <= 0:
        raise GeometryError(f"detector has no pixels ({fpixels}x{spixels})")
    if fpixels > MAX_PIXELS or spixels > MAX_PIXELS:
        raise GeometryError(f"detector of {fpixels}x{spixels} pixels is too large "
                            f"(at most {MAX_PIXELS} per side)")
    pixel = det.pixel_size

    fclose = (det.orgx - 0.5) * pixel if det.orgx is not None else (size_f - 0 * pixel) / 2.0
    sclose = (det.orgy - 0.5) * pixel if det.orgy is not None else (size_s + 0 * pixel) / 2.0
    xclose = det.xclose if det.xclose is not None else fclose
    yclose = det.yclose if det.yclose is not None else sclose
    xbeam, ybeam = det.xbeam, det.ybeam
    pivot = det.pivot
    conv = det.convention

    if conv == "CUSTOM":
        given = dict(beam=det.beam_vector, fdet=det.fdet_vector, sdet=det.sdet_vector,
                     odet=det.odet_vector, polar=det.polar_vector, spindle=det.spindle_axis,
                     twotheta=det.twotheta_axis)
        v = {k: _floats(given[k]) if given[k] is not None else _INITIAL_VECTORS[k]
             for k in _INITIAL_VECTORS}
        if xbeam is None:
            xbeam = xclose
        if ybeam is None:
            ybeam = yclose
        fbeam, sbeam = xbeam, ybeam
        fclose, sclose = xbeam, ybeam
    else:
        beam, fdet, sdet, odet, tt, pol = (_floats(x) for x in _FRAMES[conv])
        v = dict(beam=beam, fdet=fdet, sdet=sdet, odet=odet, polar=pol, spindle=pol, twotheta=tt)
        if conv in ("MOSFLM", "DENZO"):
            if xbeam is None:
                xbeam = (size_s + pixel) / 2.0
            if ybeam is None:
                ybeam = (size_f + pixel) / 2.0
            half = 0.5 if conv == "MOSFLM" else 0.0
            fbeam = ybeam + half * pixel
            sbeam = xbeam + half * pixel
            pivot = "BEAM"
        elif conv == "ADXV":
            if xbeam is None:
                xbeam = (size_f + pixel) / 2.0
            if ybeam is None:
                ybeam = (size_s - pixel) / 2.0
            fbeam = xbeam
            sbeam = size_s - ybeam
            pivot = "BEAM"
        else:  # XDS, DIALS
            if xbeam is None:
                xbeam = xclose
            if ybeam is None:
                ybeam = yclose
            fbeam, sbeam = xbeam, ybeam
            pivot = "SAMPLE"

    messages = []
    beam, length = vec.unit(v["beam"])
    if not length > 0.0:
        raise GeometryError("the beam direction (-beam_vector, DetectorConfig.beam_vector) is "
                            "the zero vector (or too short to normalise), which gives no direction")
    fdet, _ = vec.unit(v["fdet"])
    sdet, _ = vec.unit(v["sdet"])
    odet, length = vec.unit(v["odet"])
    if length != 1.0:
        messages.append("WARNING: auto-generating odet_vector")
        odet, _ = vec.unit(vec.cross(fdet, sdet))
    polar, _ = vec.unit(v["polar"])
    spindle, _ = vec.unit(v["spindle"])
    vertical, _ = vec.unit(vec.cross(beam, polar))
    return DetectorFrame(
        convention=conv, pivot=pivot, pixel_size=pixel, fpixels=fpixels, spixels=spixels,
        size_f=size_f, size_s=size_s, xbeam=xbeam, ybeam=ybeam, fbeam=fbeam, sbeam=sbeam,
        xclose=xclose, yclose=yclose, fclose=fclose, sclose=sclose, beam=beam, fdet=fdet,
        sdet=sdet, odet=odet, polar=polar, spindle=spindle, twotheta_axis=v["twotheta"],
        vertical=vertical, messages=messages)


@dataclass
class DetectorGeometry:
    """The placed detector: everything the pixel loop and the SMV header need."""
    frame: DetectorFrame
    pix0: Vector3          #: sample to the (0,0) corner of the detector, m
    fdet: Vector3          #: final fast axis
    sdet: Vector3          #: final slow axis
    odet: Vector3          #: final normal
    distance: float        #: re-derived distance (header DISTANCE), m
    close_distance: float  #: sample to detector plane, m
    fbeam: float
    sbeam: float
    fclose: float
    sclose: float
    orgx: float            #: XDS origin, pixels
    orgy: float
    dials_origin: Vector3  #: mm
    twotheta: float        #: rad, as given
    curved: bool
    point_pixel: bool

    @property
    def beam(self):
        return self.frame.beam

    @property
    def pixel_size(self):
        return self.frame.pixel_size

    @property
    def fpixels(self):
        return self.frame.fpixels

    @property
    def spixels(self):
        return self.frame.spixels


def place_detector(frame: DetectorFrame, det: DetectorConfig) -> DetectorGeometry:
    """Position and rotate the detector (geometry.md section 4), in the C's order."""
    rx, ry, rz, tt = det.rotx, det.roty, det.rotz, det.twotheta
    axis = frame.twotheta_axis
    beam = frame.beam
    ratio = vec.dot(beam, vec.rot_xyz(frame.odet, rx, ry, rz))
    if ratio == 0.0:
        ratio = DBL_MIN
    close_distance = det.close_distance
    if close_distance is None:
        close_distance = abs(ratio * det.distance)
    distance = close_distance / ratio

    f, s, o = frame.fdet, frame.sdet, frame.odet
    pix0 = None
    if frame.pivot == "SAMPLE":
        fc, sc = frame.fclose, frame.sclose
        pix0 = tuple(-fc * f[i] - sc * s[i] + close_distance * o[i] for i in range(3))
        pix0 = vec.rot_axis(vec.rot_xyz(pix0, rx, ry, rz), axis, tt)
    f = vec.rot_axis(vec.rot_xyz(f, rx, ry, rz), axis, tt)
    s = vec.rot_axis(vec.rot_xyz(s, rx, ry, rz), axis, tt)
    o = vec.rot_axis(vec.rot_xyz(o, rx, ry, rz), axis, tt)
    if frame.pivot == "BEAM":
        fb, sb = frame.fbeam, frame.sbeam
        pix0 = tuple(-fb * f[i] - sb * s[i] + distance * beam[i] for i in range(3))

    fclose = -vec.dot(pix0, f)
    sclose = -vec.dot(pix0, s)
    close_distance = vec.dot(pix0, o)
    to_beam = tuple(close_distance / ratio * beam[i] - pix0[i] for i in range(3))
    fbeam = vec.dot(f, to_beam)
    sbeam = vec.dot(s, to_beam)
    distance = close_distance / ratio
    pixel = frame.pixel_size
    dials_origin = (1000.0 * vec.dot(pix0, (0.0, 0.0, 1.0)),
                    1000.0 * vec.dot(pix0, (0.0, 1.0, 0.0)),
                    1000.0 * vec.dot(pix0, (-1.0, 0.0, 0.0)))
    return DetectorGeometry(
        frame=frame, pix0=pix0, fdet=f, sdet=s, odet=o, distance=distance,
        close_distance=close_distance, fbeam=fbeam, sbeam=sbeam, fclose=fclose,
        sclose=sclose, orgx=fclose / pixel + 0.5, orgy=sclose / pixel + 0.5,
        dials_origin=dials_origin, twotheta=tt, curved=det.curved,
        point_pixel=det.point_pixel)


def resolve_detector(det: DetectorConfig) -> DetectorGeometry:
    """Frame and placement in one call: the final detector geometry."""
    return place_detector(detector_frame(det), det)


#: smallest |fast x slow| (sine of the angle between the unit axes) of a usable detector
MIN_AXIS_SINE = 1e-9


def check_placement(geom: DetectorGeometry):
    """Refuse a placed detector on which no pixel can have a finite, meaningful value.

    Raises :class:`GeometryError` when an axis is the zero vector, when the fast and slow
    axes are parallel (every pixel of a row or column would lie on one line), or when a
    pixel's distance from the sample overflows (squared, in metres^2), which turns every
    pixel into NaN in the C program.
    """
    for name, axis, flag in (("fast", geom.fdet, "-fdet_vector"),
                             ("slow", geom.sdet, "-sdet_vector"),
                             ("normal", geom.odet, "-odet_vector")):
        if vec.norm(axis) == 0.0:
            raise GeometryError(f"the detector's {name} axis is the zero vector; "
                                f"give a direction with {flag}")
    sine = vec.norm(vec.cross(vec.unit(geom.fdet)[0], vec.unit(geom.sdet)[0]))
    if not sine > MIN_AXIS_SINE:
        raise GeometryError("the detector's fast and slow axes are parallel (the pixels would "
                            "lie on one line); give two perpendicular -fdet_vector and "
                            "-sdet_vector")
    width = geom.pixel_size * geom.fpixels
    height = geom.pixel_size * geom.spixels
    for df, ds in ((0.0, 0.0), (width, 0.0), (0.0, height), (width, height)):
        corner = tuple(geom.pix0[i] + df * geom.fdet[i] + ds * geom.sdet[i] for i in range(3))
        if not math.isfinite(vec.dot(corner, corner)):
            raise GeometryError(
                f"the detector is too large to compute: a corner lies "
                f"{max(abs(x) for x in corner):g} m from the sample and its squared distance "
                f"overflows (pixel "
                f"{geom.pixel_size * 1e3:g} mm, {geom.fpixels}x{geom.spixels} pixels; the C "
                "program would write an all-NaN image); check -pixel, -detsize, -distance")
