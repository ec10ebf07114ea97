"""What was simulated, in the lab frames of the processing programs (DIALS, XDS).

The experiment files (:mod:`nbnumba.io.expt`, :mod:`nbnumba.io.xds_inp`) describe the
images exactly as nbnumba rendered them: the detector (``pix0``, fast and slow axes),
the beam, the spindle and the crystal at phi = 0. nbnumba's lab frame depends on the
detector convention (the beam travels along +x for MOSFLM, along +z for XDS ...); the
files use a frame that depends only on the physics:

* **DIALS** (``lab_frame(beam, spindle, -1)``): the beam travels along -z (DIALS' ``s0`` points along -z)
  and the rotation axis lies along +x (the imgCIF/DIALS laboratory frame). For the
  MOSFLM convention this is the fixed map (x, y, z) -> (-z, y, x) that dxtbx uses for
  MOSFLM matrices and that the SMV header's ``DIALS_ORIGIN`` assumes.
* **XDS** (``lab_frame(beam, spindle, +1)``): the beam travels along +z and the rotation axis lies along
  +x (XDS' usual frame; XDS accepts any right-handed frame).

Both are proper rotations of nbnumba's frame, so every pixel position, angle and Miller
index is unchanged. A rotation axis that is not perpendicular to the beam keeps its
beam component. (nbnumba's oscillation is never negative: like the C program it reads a
negative -osc as "not given".)

The files state each image's oscillation [phi0, phi0 + osc] as given. With the C's phi
sampling (phi0 + k osc/N, k = 0 .. N-1) an image is exactly that of the stated crystal
rotated by -osc/(2N) about the spindle (:func:`orientation_offset`; the commands print
it); with ``CrystalConfig.phi_midpoints`` (``-phi_midpoints``) the offset is 0.

Also here: the image-name rules of the readers (:func:`image_number`,
:func:`series_template`), and :func:`describe`, which turns a prepared set-up and the
file written for it into a :class:`SimulatedImage`.
"""
import dataclasses
import math
import re
import string
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from . import vec
from .constants import RTD
from .errors import ConfigError

Vector3 = Tuple[float, float, float]
Matrix3 = Tuple[Vector3, Vector3, Vector3]

#: the largest raw pixel value DIALS and XDS should trust: 65535 is where nbnumba (like
#: the C program) clips an overloaded pixel
MAX_TRUSTED_COUNT = 65534


class ExperimentError(ConfigError):
    """Images that the experiment files cannot describe (the message says why)."""


# ---------------------------------------------------------------------------------------
# image names the readers accept

# a name ending in a number (1-12 digits) right before an extension without digits:
# dxtbx reads the image number from these digits (FormatSMVJHSim refuses other names)
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<digits>[0-9]{1,12})(?P<ext>\.[^0-9]*)$")


@dataclass(frozen=True)
class NumberedName:
    """An image file name split around its image number."""
    prefix: str     #: directory and name up to the number
    digits: str     #: the number as written (its width is the template's)
    ext: str        #: the extension, with its dot

    @property
    def number(self):
        return int(self.digits)

    def template(self, mark="#"):
        """The name with the number replaced by ``mark`` characters (``#`` for DIALS,
        ``?`` for XDS)."""
        return self.prefix + mark * len(self.digits) + self.ext


def image_number(path, option):
    """Split ``path`` into a :class:`NumberedName`, or raise :class:`ExperimentError`.

    DIALS (dxtbx) takes an image's number from the digits just before its extension and
    refuses names without them (the C program's defaults ``intimage.img`` and
    ``noiseimage.img`` included); XDS needs them for its name template. option: the flag
    that asked for the file (for the message).
    """
    directory, name = _split(path)
    match = _NUMBERED.match(name)
    if not match or (match["prefix"] and match["prefix"][-1].isdigit()):
        raise ExperimentError(
            f"{option}: DIALS and XDS cannot read an image named {name!r}: its name must "
            "end in an image number before the extension (e.g. -intfile sim_00001.img)")
    return NumberedName(directory + match["prefix"], match["digits"], match["ext"])


def _split(path):
    cut = path.rfind("/") + 1
    return path[:cut], path[cut:]


def series_template(template, frames, option):
    """Check that a series template gives names DIALS and XDS read.

    template: the ``nbnumba-series`` template (a Python format string of the frame
    index, to which ``.img`` is appended). It must end in its one index field, written
    ``{}``, ``{:d}``, ``{:0Nd}`` or ``{:0N}``, right after a character that is not a
    digit, so that every frame's name ends in its number (``sim_{:05d}``).
    Returns (frame 0's :class:`NumberedName`, the zero-padded width or 0).
    """
    fields = [f for f in string.Formatter().parse(template) if f[1] is not None]
    problem = None
    if len(fields) != 1 or fields[0][1] not in ("", "0") or fields[0][3]:
        problem = "needs exactly one frame-number field"
    elif not template.endswith("}"):
        problem = "must end with the frame number"
    else:
        spec = re.fullmatch(r"(?:0(\d+))?d?", fields[0][2] or "")
        literal = fields[0][0]
        if spec is None:
            problem = "frame numbers must be written {}, {:d} or {:0Nd}"
        elif literal and literal[-1].isdigit():
            problem = "needs a non-digit right before the frame number"
    if problem:
        raise ExperimentError(f"{option}: template {template!r} {problem} (e.g. sim_{{:05d}}), "
                              "because DIALS and XDS read the image number from the end "
                              "of the name")
    width = int(spec.group(1)) if spec.group(1) else 0
    first = template.format(0) + ".img"
    if width and len(str(frames - 1)) > width:
        raise ExperimentError(f"{option}: template {template!r} is too narrow for "
                              f"{frames} frames")
    name = image_number(first, option)
    return name, width


# ---------------------------------------------------------------------------------------
# lab frames


def _perpendicular_unit(v, to):
    """Unit vector along the part of v perpendicular to the unit vector ``to``; any unit
    vector perpendicular to ``to`` when v is parallel to it."""
    along = vec.dot(v, to)
    rest = tuple(v[i] - along * to[i] for i in range(3))
    direction, length = vec.unit(rest)
    if length > 1e-12:
        return direction
    axis = min(range(3), key=lambda i: abs(to[i]))
    e = tuple(1.0 if i == axis else 0.0 for i in range(3))
    return vec.unit(vec.cross(to, e))[0]


def lab_frame(beam, axis, beam_along_z):
    """Rows (x, y, z) of the rotation from nbnumba's frame to a frame where the beam
    travels along ``beam_along_z`` * z (+1 or -1) and ``axis`` lies in the x-z plane with
    a positive x component.

    beam, axis: unit vectors in nbnumba's frame (the beam direction of travel, the
    rotation axis). Applying it: ``to_frame(rows, v)``.
    """
    ez = vec.scale(beam, float(beam_along_z))
    ex = _perpendicular_unit(axis, ez)
    ey = vec.cross(ez, ex)
    return (ex, ey, ez)


def to_frame(rows, v):
    """The components of nbnumba vector v in the frame of ``rows``."""
    return (vec.dot(rows[0], v), vec.dot(rows[1], v), vec.dot(rows[2], v))


# ---------------------------------------------------------------------------------------
# one simulated image


@dataclass
class SimulatedImage:
    """One SMV image as rendered: everything the experiment files say about it.

    Vectors are in nbnumba's lab frame; lengths in metres, angles in radians.
    """
    name: NumberedName
    beam: Vector3            #: direction the X-rays travel
    wavelength: float        #: m
    polar: Vector3           #: E-vector axis
    kahn_factor: float       #: -polar K
    no_polarization: bool    #: -nopolar
    flux: float              #: photons/s
    exposure: float          #: s
    pix0: Vector3            #: sample to the outer corner of pixel (0, 0), m
    fast: Vector3
    slow: Vector3
    pixel_size: float        #: m
    fpixels: int
    spixels: int
    thickness: float         #: sensor, m
    mu: float                #: sensor attenuation, 1/m (0: none)
    adc: float               #: counts added to every pixel
    spindle: Vector3         #: rotation axis (right-handed)
    phi0: float              #: first spindle angle of the image, rad
    osc: float               #: oscillation range, rad (0: a still)
    a: Vector3               #: real-space cell vectors at phi = 0, m
    b: Vector3
    c: Vector3
    cell: Tuple[float, ...]  #: a, b, c (Angstrom), alpha, beta, gamma (rad)
    beam_size: float = 0.0   #: side of the square beam (-beamsize), m; 0 or less: not given
    #: the panels of a detector of several (None: one panel, pix0 .. spixels above)
    panels: Optional[Tuple["PanelRecord", ...]] = None
    trusted_range: Tuple[float, float] = (0.0, float(MAX_TRUSTED_COUNT))
    material: str = ""
    #: the configuration that rendered the image, as JSON values (see
    #: :func:`configuration_record`); None: not recorded
    exact: Optional[dict] = None

    @property
    def is_rotation(self):
        return self.osc != 0.0

    def crystal_at(self, phi):
        """Real-space vectors (m) rotated by phi (rad) about the spindle."""
        return tuple(vec.rot_axis(v, self.spindle, phi) for v in (self.a, self.b, self.c))

    def polarization(self):
        """(normal of the polarization plane, fraction in that plane >= 0.5).

        The plane holds the beam and the E-vector axis ``polar``; a fraction
        (1 + K)/2 of the intensity is polarized in it (the Kahn factor K of the
        polarization formula). K < 0 is written as the perpendicular plane.
        """
        fraction = (1.0 + self.kahn_factor) / 2.0
        normal, length = vec.unit(vec.cross(self.polar, self.beam))
        if length < 1e-12:   # E-vector along the beam: no preferred plane
            return _perpendicular_unit((0.0, 1.0, 0.0), self.beam), 0.5
        if fraction < 0.5:
            normal, fraction = _perpendicular_unit(self.polar, self.beam), 1.0 - fraction
        return normal, fraction

    def geometry_key(self):
        """Everything but the image name and the spindle angles (frames of one sweep
        share it)."""
        return (self.beam, self.wavelength, self.polar, self.kahn_factor, self.pix0,
                self.fast, self.slow, self.pixel_size, self.fpixels, self.spixels,
                self.thickness, self.mu, self.panels, self.spindle, self.a, self.b, self.c)

    def panel_list(self):
        """The image's panels as :class:`PanelRecord` s (one for a single-panel image)."""
        if self.panels is not None:
            return list(self.panels)
        return [PanelRecord("Panel", self.pix0, self.fast, self.slow, self.pixel_size,
                            self.fpixels, self.spixels, (0, 0))]


@dataclass(frozen=True)
class PanelRecord:
    """One panel of a simulated image (nbnumba's lab frame, metres)."""
    name: str
    origin: Vector3          #: sample -> outer corner of the panel's pixel (0, 0)
    fast: Vector3
    slow: Vector3
    pixel_size: float
    fpixels: int
    spixels: int
    raster_origin: Tuple[int, int]   #: (row, column) of its pixel (0, 0) in the image


def check_describable(setup, option):
    """Raise :class:`ExperimentError` for a set-up the files cannot describe."""
    g = setup.geometry
    if g.curved:
        raise ExperimentError(f"{option}: a curved detector (-curved_det) is not a flat "
                              "panel; DIALS and XDS cannot describe it")
    if abs(vec.dot(g.fdet, g.sdet)) > 1e-9:
        raise ExperimentError(f"{option}: the detector's fast and slow axes are not "
                              "perpendicular (-fdet_vector, -sdet_vector); DIALS and XDS "
                              "need a rectangular pixel grid")


def describe(setup, name, adc):
    """The :class:`SimulatedImage` of a prepared set-up written as ``name``.

    setup: :func:`nbnumba.prepare` of the image's configuration; name: its
    :class:`NumberedName`; adc: the ``-adc`` offset in its pixels.
    """
    g = setup.geometry
    cfg = setup.config
    lat = setup.lattice
    thick = setup.thickness
    mu = setup.mu if thick > 0.0 and setup.mu > 0.0 and math.isfinite(setup.mu) else 0.0
    extra = {}
    if setup.panels is not None:
        ps = setup.panels
        extra["panels"] = tuple(PanelRecord(p.name, p.origin, p.fast, p.slow, p.pixel_size,
                                            p.fpixels, p.spixels, p.raster_origin)
                                for p in ps.panels)
        if ps.trusted_range is not None:
            extra["trusted_range"] = tuple(float(x) for x in ps.trusted_range)
        extra["material"] = ps.material
    return SimulatedImage(
        name=name, beam=g.beam, wavelength=cfg.beam.wavelength, polar=g.frame.polar,
        kahn_factor=cfg.beam.kahn_factor, no_polarization=cfg.beam.no_polarization,
        flux=setup.flux, exposure=cfg.beam.exposure, pix0=g.pix0, fast=g.fdet,
        slow=g.sdet, pixel_size=g.pixel_size, fpixels=g.fpixels, spixels=g.spixels,
        thickness=thick, mu=mu, adc=float(adc), spindle=g.frame.spindle,
        phi0=cfg.crystal.phi0, osc=setup.osc,
        a=lat.a, b=lat.b, c=lat.c, cell=lat.cell, beam_size=cfg.beam.beam_size,
        exact=configuration_record(setup), **extra)


#: detector fields that are flags of the render, not of the detector the files describe
_RENDER_ONLY = ("point_pixel", "thickness_steps", "curved")


def _json_value(value):
    """A configuration value as JSON data that reads back as the same value (floats are
    written with all their digits)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_json_value(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if dataclasses.is_dataclass(value):
        return {f.name: _json_value(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name != "source"}
    return value


def configuration_record(setup):
    """The configuration fields that decide what the experiment files describe, as JSON
    data: every detector field but the render's own switches, the beam's wavelength and
    Kahn factor, the crystal's cell, A matrix, misset (a random one with the seed that
    drew it) and spindle angles. :mod:`nbnumba.experiment_input` reads them back, so
    that an image described by a file nbnumba wrote renders again bit for bit."""
    cfg = setup.config
    det = {f.name: _json_value(getattr(cfg.detector, f.name))
           for f in dataclasses.fields(cfg.detector) if f.name not in _RENDER_ONLY}
    cr = cfg.crystal
    seed = setup.lattice.misset_seed if isinstance(cr.misset, str) else cr.misset_seed
    crystal = {"cell": _json_value(cr.cell), "a_matrix": _json_value(cr.a_matrix),
               "misset": _json_value(cr.misset), "misset_seed": seed,
               "phi0": cr.phi0, "osc": cr.osc}
    beam = {"wavelength": cfg.beam.wavelength, "kahn_factor": cfg.beam.kahn_factor}
    return {"detector": det, "beam": beam, "crystal": crystal}


def orientation_offset(setup):
    """How far (rad, right-handed about the spindle) the orientation an image shows is
    rotated from the centre of the oscillation [phi0, phi0 + osc] that the experiment
    files state: the mean of the sampled spindle angles minus phi0 + osc/2.

    The C's sampling (phi0 + k osc/N, k = 0 .. N-1) gives -osc/(2N); the midpoint
    sampling (``CrystalConfig.phi_midpoints``) gives 0. A still gives 0. setup: a
    prepared set-up (:func:`nbnumba.prepare`).
    """
    if setup.osc == 0.0:
        return 0.0
    n = setup.phi_steps
    first = 0.5 if setup.config.crystal.phi_midpoints else 0.0
    return setup.phi_step * (first + (n - 1) / 2.0) - setup.osc / 2.0


@dataclass
class Sweep:
    """Images that form one rotation sweep (consecutive numbers, contiguous angles,
    one geometry and crystal), or a single image."""
    images: List[SimulatedImage]

    @property
    def first(self):
        return self.images[0]

    @property
    def image_range(self):
        return self.images[0].name.number, self.images[-1].name.number


def sweeps(images, angle_tolerance=1e-9):
    """Group images into :class:`Sweep` s: all of them in one when they form a sweep,
    otherwise one per image (stills, or frames with different crystals)."""
    first = images[0]
    one_sweep = first.is_rotation and all(
        im.geometry_key() == first.geometry_key() and im.osc == first.osc
        and im.name.prefix == first.name.prefix and im.name.ext == first.name.ext
        and im.name.number == first.name.number + i
        and abs(im.phi0 - (first.phi0 + i * first.osc)) <= angle_tolerance
        for i, im in enumerate(images))
    if one_sweep:
        return [Sweep(list(images))]
    return [Sweep([im]) for im in images]


def degrees(radians):
    """Radians to degrees the way the C converts (x * RTD)."""
    return radians * RTD
