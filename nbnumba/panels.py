"""A detector of several flat panels (modules): what a DIALS experiment or a named
detector describes, as configuration data.

:class:`Panel` is one rectangle of square pixels placed in the laboratory frame of the
render (the frame of ``DetectorConfig.beam_vector`` and ``spindle_axis``): the vector
from the sample to the outer corner of its pixel (0, 0), its fast and slow axes, its
pixel size and counts. :class:`DetectorPanels` is the list, with where each panel's
pixels lie in the one image (``raster_origin``): stacked one below the other unless
given. Lengths in metres. The placement rules (which panel the beam hits, the kernel's
table) are in :mod:`nbnumba.panel_geometry`.
"""
import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from .errors import ConfigError
from .fields import Fields

Vector3 = Tuple[float, float, float]

#: the most panels a detector may have
MAX_PANELS = 4096

#: largest side of the image the panels are laid out in, pixels
MAX_RASTER = 1 << 17

#: largest |fast . slow| of the unit axes of a panel (perpendicular within 1e-6 rad)
MAX_SKEW = 1e-6


def _vector(value, what):
    try:
        v = tuple(float(x) for x in np.asarray(value, dtype=float).ravel())
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be three numbers, got {value!r}") from None
    if len(v) != 3 or not all(math.isfinite(x) for x in v):
        raise ConfigError(f"{what} must be three finite numbers, got {value!r}")
    return v


def _unit(v, what):
    length = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if not length > 0.0:
        raise ConfigError(f"{what} is the zero vector")
    return (v[0] / length, v[1] / length, v[2] / length)


@dataclass
class Panel(Fields):
    """One flat panel of square pixels.

    origin: sample -> outer corner of pixel (0, 0), m, in the render's lab frame;
    fast, slow: directions of increasing fast and slow pixel index, perpendicular (used
    as given when of unit length within 1e-12, else divided by their length); normal:
    None (the unit vector along fast x slow, turned to point away from the sample) or a
    given unit normal (a C detector's ``odet``, so that one panel renders exactly as
    the C's detector); pixel_size: m; fpixels, spixels: pixel counts; name: shown in
    the experiment and NXmx files; raster_origin: (row, column) of pixel (0, 0) in the
    image (None: below the panels placed before, :meth:`DetectorPanels.raster_origins`).
    """
    origin: Vector3
    fast: Vector3
    slow: Vector3
    pixel_size: float
    fpixels: int
    spixels: int
    name: str = ""
    normal: Optional[Vector3] = None
    raster_origin: Optional[Tuple[int, int]] = None


@dataclass
class DetectorPanels(Fields):
    """The panels of a detector and the image (raster) that holds their pixels.

    panels: the :class:`Panel` list (at least one). raster_shape: (rows, columns) of the
    image; None: just large enough for the panels (:meth:`shape`). trusted_range: (lowest, highest) trusted counts of the detector,
    written to the experiment and NXmx files (None: nbnumba's). material: the sensor
    material named in those files ("" : not given). Pixels of the image that belong to
    no panel (gaps) are never rendered and are masked in the files.
    """
    panels: List[Panel]
    raster_shape: Optional[Tuple[int, int]] = None
    trusted_range: Optional[Tuple[float, float]] = None
    material: str = ""
    source: str = field(default="", repr=False)   #: where the panels came from (messages)

    @classmethod
    def from_arrays(cls, origins, fast, slow, pixel_size, fpixels, spixels, names=None):
        """Panels from arrays: origins, fast, slow (n, 3) (m; directions of any length),
        pixel_size (n,) or a scalar (m), fpixels and spixels (n,) or scalars; laid out
        one below the other in the image."""
        origins = np.asarray(origins, dtype=float).reshape(-1, 3)
        n = len(origins)
        fast = np.broadcast_to(np.asarray(fast, dtype=float), (n, 3))
        slow = np.broadcast_to(np.asarray(slow, dtype=float), (n, 3))
        size = np.broadcast_to(np.asarray(pixel_size, dtype=float), (n,))
        fp = np.broadcast_to(np.asarray(fpixels), (n,))
        sp = np.broadcast_to(np.asarray(spixels), (n,))
        names = list(names) if names is not None else ["panel%d" % i for i in range(n)]
        panels = [Panel(tuple(origins[i]), tuple(fast[i]), tuple(slow[i]), float(size[i]),
                        int(fp[i]), int(sp[i]), str(names[i])) for i in range(n)]
        result = cls(panels)
        result.check()
        return result

    def __len__(self):
        return len(self.panels)

    def raster_origins(self):
        """(row, column) of pixel (0, 0) of every panel in the image: its own
        ``raster_origin``, or (for panels without one) below the lowest panel placed so
        far, at column 0."""
        bottom = max((int(p.raster_origin[0]) + int(p.spixels) for p in self.panels
                      if p.raster_origin is not None), default=0)
        origins = []
        for p in self.panels:
            if p.raster_origin is None:
                origins.append((bottom, 0))
                bottom += int(p.spixels)
            else:
                origins.append((int(p.raster_origin[0]), int(p.raster_origin[1])))
        return origins

    def shape(self):
        """(rows, columns) of the image: ``raster_shape``, or just large enough."""
        if self.raster_shape is not None:
            return tuple(int(x) for x in self.raster_shape)
        origins = self.raster_origins()
        return (max(r + int(p.spixels) for (r, _), p in zip(origins, self.panels)),
                max(c + int(p.fpixels) for (_, c), p in zip(origins, self.panels)))

    def check(self, where="DetectorConfig.panels"):
        """Raise :class:`ConfigError` (one line naming the panel) for panels nbnumba
        cannot render: no pixels, a non-positive pixel size, axes that are zero or not
        perpendicular, panels outside the image or overlapping in it. Changes nothing."""
        if not isinstance(self.panels, (list, tuple)) or not self.panels:
            raise ConfigError(f"{where} must hold at least one Panel")
        if len(self.panels) > MAX_PANELS:
            raise ConfigError(f"{where}: {len(self.panels)} panels, at most {MAX_PANELS}")
        for i, p in enumerate(self.panels):
            _check_panel(i, p, where)
        if self.raster_shape is not None and len(tuple(self.raster_shape)) != 2:
            raise ConfigError(f"{where}: raster_shape must be (rows, columns)")
        rows, cols = self.shape()
        if not (0 < rows <= MAX_RASTER and 0 < cols <= MAX_RASTER):
            raise ConfigError(f"{where}: an image of {cols} x {rows} pixels cannot hold the "
                              f"panels (at most {MAX_RASTER} per side)")
        cover = np.zeros((rows, cols), dtype=np.uint8)
        for i, (p, (r, c)) in enumerate(zip(self.panels, self.raster_origins())):
            if r < 0 or c < 0 or r + p.spixels > rows or c + p.fpixels > cols:
                raise ConfigError(f"{where}: panel {i} ({p.name}) at row {r}, column {c} "
                                  f"does not fit the {cols} x {rows} image")
            block = cover[r:r + p.spixels, c:c + p.fpixels]
            if block.any():
                raise ConfigError(f"{where}: panel {i} ({p.name}) overlaps another panel "
                                  "in the image")
            block[...] = 1
        if self.trusted_range is not None:
            try:
                low, high = (float(x) for x in self.trusted_range)
            except (TypeError, ValueError):
                low = high = math.nan
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ConfigError(f"{where}: trusted range {self.trusted_range!r} must be two "
                                  "finite numbers, the lower first")

    def coverage(self):
        """uint16 (rows, columns): 1 where a panel's pixel lies, 0 in the gaps."""
        rows, cols = self.shape()
        cover = np.zeros((rows, cols), dtype=np.uint16)
        for p, (r, c) in zip(self.panels, self.raster_origins()):
            cover[r:r + p.spixels, c:c + p.fpixels] = 1
        return cover


def _check_panel(i, p, where):
    if not isinstance(p, Panel):
        raise ConfigError(f"{where}: item {i} must be a Panel, got {type(p).__name__}")
    label = f"{where}: panel {i} ({p.name})"
    fast = _unit(_vector(p.fast, f"{label} fast axis"), f"{label} fast axis")
    slow = _unit(_vector(p.slow, f"{label} slow axis"), f"{label} slow axis")
    _vector(p.origin, f"{label} origin [m]")
    skew = abs(sum(a * b for a, b in zip(fast, slow)))
    if skew > MAX_SKEW:
        raise ConfigError(f"{label}: the fast and slow axes are not perpendicular "
                          f"(cosine {skew:.3g}); nbnumba renders rectangular pixel grids")
    if p.normal is not None:
        _unit(_vector(p.normal, f"{label} normal"), f"{label} normal")
    for name in ("fpixels", "spixels"):
        value = getattr(p, name)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ConfigError(f"{label}: {name} must be a whole number (int), got {value!r}")
        if not 0 < value <= MAX_RASTER:
            raise ConfigError(f"{label}: {name} = {value}; each side needs 1 to {MAX_RASTER} "
                              "pixels")
    size = p.pixel_size
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, float, np.integer,
                                                                      np.floating)) \
            or not 0.0 < size <= 0.01:
        raise ConfigError(f"{label}: pixel size {size!r} m must be positive and at most "
                          "0.01 m (lengths are in metres)")
    if p.raster_origin is not None:
        try:
            row, col = (int(x) for x in p.raster_origin)
        except (TypeError, ValueError):
            raise ConfigError(f"{label}: raster_origin must be (row, column) in pixels, got "
                              f"{p.raster_origin!r}") from None
