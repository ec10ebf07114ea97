"""Placing the panels of a multi-panel detector and the kernels' tables for them.

Two sources of panels (:mod:`nbnumba.panels`, :mod:`nbnumba.presets`):

* a **named detector** (``DetectorConfig.preset``): its grid of modules, gaps included,
  is one C detector placed by the C's rules (:func:`nbnumba.geometry.resolve_detector`);
  every module renders with that detector's corner ``pix0`` and its pixels' indices in
  the whole grid, so each pixel is computed exactly as the C computes the same pixel of
  the whole detector; the module origins written to the files are ``pix0`` plus the
  module's offset;
* **explicit panels** (``DetectorConfig.panels``, e.g. from a DIALS experiment): each
  panel renders from its own origin and axes, with its own normal and sample-to-plane
  distance (the solid angle and the sensor's parallax are the panel's).

Either way the result is a :class:`PanelSet`: the placed panels, the image (raster) that
holds their pixels and which pixels belong to no panel, and the tables a kernel reads
(:meth:`PanelSet.kernel_tables`): per panel the 14 numbers that differ from the
detector's (``pix0``, fast, slow, normal, pixel size, sample-to-plane distance) and the
offset from image indices to the panel's own indices; per image row the segments of
panels it crosses. The render's reference geometry (what the set-up lines, the SMV
header and the automatic oversampling use) is the whole grid of a named detector, or
the explicit panel that the direct beam hits (else the one nearest to it).
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Tuple

import numpy as np

from . import vec
from .constants import DBL_MIN
from .experiment import lab_frame, to_frame
from .geometry import (DetectorGeometry, GeometryError, check_placement, detector_frame,
                       place_detector)
from .presets import preset as find_preset

Vector3 = Tuple[float, float, float]

#: axes whose length differs from 1 by at most this are used as given (a C detector's
#: axes, which its rotations leave within a few ulps of unit length)
UNIT_TOLERANCE = 1e-12

#: columns of a row of the kernel's panel table
TABLE_COLUMNS = 14


@dataclass
class PlacedPanel:
    """One panel as rendered and as the files describe it (render frame, metres)."""
    name: str
    origin: Vector3          #: sample -> outer corner of the panel's pixel (0, 0)
    fast: Vector3
    slow: Vector3
    normal: Vector3          #: points away from the sample
    pixel_size: float
    fpixels: int
    spixels: int
    raster_origin: Tuple[int, int]   #: (row, column) of pixel (0, 0) in the image
    close_distance: float    #: sample to the panel's plane, along its normal
    distance: float          #: sample to the panel's plane along the beam (inf: never)
    #: what the kernel computes pixels from: the corner and the offset subtracted from
    #: image indices (a named detector: the whole grid's corner and (0, 0))
    kernel_origin: Vector3
    kernel_offset: Tuple[int, int]


class KernelTables(NamedTuple):
    """What a kernel needs to render the panels of an image region.

    table: (panels, 14) float64: kernel origin (3), fast (3), slow (3), normal (3),
    pixel size, sample-to-plane distance (m). offsets: (panels, 2) int64: subtracted
    from (image row, image column) to give the panel's (slow, fast) pixel index.
    row_start: (rows + 1,) int64: row ``first_row + k`` of the image is covered by
    segments ``row_start[k]`` .. ``row_start[k + 1] - 1``. segments: (n, 3) int64:
    first column, end column (exclusive), panel; in increasing columns within a row.
    """
    table: np.ndarray
    offsets: np.ndarray
    first_row: int
    row_start: np.ndarray
    segments: np.ndarray


@dataclass
class PanelSet:
    """The placed panels of a render and the image that holds them."""
    panels: List[PlacedPanel]
    raster: Tuple[int, int]        #: (rows, columns) of the image
    preset: Optional[str]          #: the named detector, or None for explicit panels
    reference: int                 #: index of the panel the direct beam hits (or nearest)
    trusted_range: Optional[Tuple[float, float]] = None
    material: str = ""

    def __len__(self):
        return len(self.panels)

    def coverage(self):
        """uint16, flat raster order: 1 for a panel's pixel, 0 in the gaps."""
        rows, cols = self.raster
        cover = np.zeros((rows, cols), dtype=np.uint16)
        for p in self.panels:
            r, c = p.raster_origin
            cover[r:r + p.spixels, c:c + p.fpixels] = 1
        return cover.ravel()

    def kernel_tables(self, rows, cols):
        """:class:`KernelTables` of image rows [rows[0], rows[1]) and columns
        [cols[0], cols[1])."""
        table = np.zeros((len(self.panels), TABLE_COLUMNS))
        offsets = np.zeros((len(self.panels), 2), dtype=np.int64)
        found = []
        for i, p in enumerate(self.panels):
            table[i] = (*p.kernel_origin, *p.fast, *p.slow, *p.normal, p.pixel_size,
                        p.close_distance)
            offsets[i] = p.kernel_offset
            r0, c0 = p.raster_origin
            lo, hi = max(r0, rows[0]), min(r0 + p.spixels, rows[1])
            left, right = max(c0, cols[0]), min(c0 + p.fpixels, cols[1])
            if lo < hi and left < right:
                n = hi - lo
                found.append(np.column_stack([np.arange(lo, hi), np.full(n, left),
                                              np.full(n, right), np.full(n, i)]))
        n_rows = max(rows[1] - rows[0], 0)
        if found:
            seg = np.concatenate(found).astype(np.int64)
            seg = seg[np.lexsort((seg[:, 1], seg[:, 0]))]
            row_start = np.searchsorted(seg[:, 0], np.arange(rows[0], rows[0] + n_rows + 1))
            segments = np.ascontiguousarray(seg[:, 1:])
        else:
            row_start = np.zeros(n_rows + 1)
            segments = np.zeros((0, 3), dtype=np.int64)
        return KernelTables(table, offsets, int(rows[0]), row_start.astype(np.int64),
                            segments)

    def locate(self, row, col):
        """(panel index, slow, fast) of image pixel (row, col) in the panel's own
        indices, or None in a gap."""
        for i, p in enumerate(self.panels):
            r, c = p.raster_origin
            if r <= row < r + p.spixels and c <= col < c + p.fpixels:
                return i, row - r, col - c
        return None

    def panel_geometry(self, geom, index):
        """The :class:`DetectorGeometry` of panel ``index`` alone (its corner, axes and
        pixel counts; beam and spindle from ``geom``, the render's geometry): what an
        SMV header of that panel's pixels states."""
        p = self.panels[index]
        frame = dataclasses.replace(geom.frame, fpixels=p.fpixels, spixels=p.spixels,
                                    pixel_size=p.pixel_size,
                                    size_f=p.fpixels * p.pixel_size,
                                    size_s=p.spixels * p.pixel_size)
        return _reference_geometry(frame, p, geom.point_pixel)

    def pixels_of(self, image, index):
        """Panel ``index``'s pixels (spixels, fpixels) of an image (rows, columns) of the
        whole detector."""
        p = self.panels[index]
        r, c = p.raster_origin
        return np.asarray(image)[r:r + p.spixels, c:c + p.fpixels]

    def kernel_detector(self, det, index):
        """The kernels' detector parameters (:class:`nbnumba.pixel.DetectorParams`
        ``det``) with panel ``index``'s geometry."""
        p = self.panels[index]
        o, f, s, n = p.kernel_origin, p.fast, p.slow, p.normal
        return det._replace(pix0_x=o[0], pix0_y=o[1], pix0_z=o[2], f_x=f[0], f_y=f[1],
                            f_z=f[2], s_x=s[0], s_y=s[1], s_z=s[2], o_x=n[0], o_y=n[1],
                            o_z=n[2], pixel_size=p.pixel_size,
                            close_distance=p.close_distance)


# ---------------------------------------------------------------------------------------
# named detectors


def _preset_detector(det):
    """``det`` with the preset's pixel size and counts; GeometryError when the
    configuration asks for other ones."""
    p = find_preset(det.preset)
    fpixels, spixels = p.raster
    size_f, size_s = p.pixel_size * fpixels, p.pixel_size * spixels
    defaults = {f.name: f.default for f in dataclasses.fields(det)}
    for name, value in (("pixel_size", p.pixel_size), ("fpixels", fpixels),
                        ("spixels", spixels), ("size_f", size_f), ("size_s", size_s)):
        given = getattr(det, name)
        if given != defaults[name] and given != value:
            raise GeometryError(f"DetectorConfig.{name} = {given!r} disagrees with the "
                                f"named detector {p.name!r} ({p.description}); leave it at "
                                "its default")
    return dataclasses.replace(det, pixel_size=p.pixel_size, fpixels=fpixels,
                               spixels=spixels, size_f=size_f, size_s=size_s, preset=None), p


def place_preset(det):
    """(the whole grid's :class:`DetectorGeometry`, its :class:`PanelSet`) of a named
    detector placed by the C's rules."""
    whole, p = _preset_detector(det)
    if whole.curved:
        raise GeometryError("a named detector is flat: -curved_det cannot be combined "
                            "with it")
    geom = place_detector(detector_frame(whole), whole)
    check_placement(geom)
    panels = []
    mf, ms = p.module
    for k, (row, col) in enumerate(p.module_origins()):
        df, ds = col * geom.pixel_size, row * geom.pixel_size
        origin = tuple(geom.pix0[i] + df * geom.fdet[i] + ds * geom.sdet[i] for i in range(3))
        panels.append(PlacedPanel(
            name="module%02d" % k if p.panel_count > 1 else "panel", origin=origin,
            fast=geom.fdet, slow=geom.sdet, normal=geom.odet, pixel_size=geom.pixel_size,
            fpixels=mf, spixels=ms, raster_origin=(row, col),
            close_distance=geom.close_distance, distance=geom.distance,
            kernel_origin=geom.pix0, kernel_offset=(0, 0)))
    return geom, PanelSet(panels, (geom.spixels, geom.fpixels), p.name, _nearest(panels, geom.beam))


# ---------------------------------------------------------------------------------------
# explicit panels


def _axis(v):
    length = math.sqrt(vec.dot(v, v))
    return tuple(v) if abs(length - 1.0) <= UNIT_TOLERANCE else vec.unit(v)[0]


def _placed(panel, raster_origin, beam):
    fast = _axis(tuple(float(x) for x in panel.fast))
    slow = _axis(tuple(float(x) for x in panel.slow))
    origin = tuple(float(x) for x in panel.origin)
    if panel.normal is not None:
        normal = _axis(tuple(float(x) for x in panel.normal))
    else:
        normal = vec.unit(vec.cross(fast, slow))[0]
        if vec.dot(origin, normal) < 0.0:
            normal = vec.scale(normal, -1.0)
    close = vec.dot(origin, normal)
    ratio = vec.dot(beam, normal)
    distance = close / ratio if ratio > 0.0 else math.inf
    return PlacedPanel(
        name=panel.name, origin=origin, fast=fast, slow=slow, normal=normal,
        pixel_size=float(panel.pixel_size), fpixels=int(panel.fpixels),
        spixels=int(panel.spixels), raster_origin=raster_origin, close_distance=close,
        distance=distance, kernel_origin=origin, kernel_offset=raster_origin)


def _hit(panel, beam):
    """Where the direct beam meets the panel's plane, in its pixels (f, s), or None."""
    ratio = vec.dot(beam, panel.normal)
    if not ratio > 0.0 or not panel.close_distance > 0.0:
        return None
    t = panel.close_distance / ratio
    rel = tuple(t * beam[i] - panel.origin[i] for i in range(3))
    return vec.dot(rel, panel.fast) / panel.pixel_size, vec.dot(rel, panel.slow) / panel.pixel_size


def _nearest(panels, beam):
    """Index of the panel the direct beam hits, else of the one whose centre lies at the
    smallest angle from it."""
    for i, p in enumerate(panels):
        hit = _hit(p, beam)
        if hit is not None and 0.0 <= hit[0] <= p.fpixels and 0.0 <= hit[1] <= p.spixels:
            return i
    best, best_cos = 0, -2.0
    for i, p in enumerate(panels):
        half_f, half_s = p.fpixels * p.pixel_size / 2.0, p.spixels * p.pixel_size / 2.0
        centre = tuple(p.origin[k] + half_f * p.fast[k] + half_s * p.slow[k] for k in range(3))
        cos = vec.dot(vec.unit(centre)[0], beam)
        if cos > best_cos:
            best, best_cos = i, cos
    return best


def place_panels(det):
    """(reference :class:`DetectorGeometry`, :class:`PanelSet`) of explicit panels.

    The reference geometry is the panel the direct beam hits (else the nearest), over the
    whole image: what the set-up lines, the SMV header and the automatic oversampling use.
    """
    panels_in = det.panels
    panels_in.check()
    if det.curved:
        raise GeometryError("explicit panels are flat: -curved_det cannot be combined with "
                            "them")
    rows, cols = panels_in.shape()
    custom = dataclasses.replace(det, convention="CUSTOM", panels=None, preset=None)
    beam = detector_frame(custom).beam
    placed = [_placed(p, ro, beam) for p, ro in zip(panels_in.panels,
                                                    panels_in.raster_origins())]
    ref = _nearest(placed, beam)
    p = placed[ref]
    reference = dataclasses.replace(
        custom, pixel_size=p.pixel_size, fpixels=cols, spixels=rows,
        fdet_vector=p.fast, sdet_vector=p.slow, odet_vector=p.normal)
    frame = detector_frame(reference)
    geom = _reference_geometry(frame, p, det.point_pixel)
    check_placement(geom)
    return geom, PanelSet(placed, (rows, cols), None, ref,
                          trusted_range=panels_in.trusted_range, material=panels_in.material)


def _reference_geometry(frame, panel, point_pixel):
    """A :class:`DetectorGeometry` whose corner and axes are the panel's (its beam
    centre, near point and XDS origin computed as the C computes a placed detector's)."""
    pix0, f, s, o = panel.origin, panel.fast, panel.slow, panel.normal
    beam = frame.beam
    ratio = vec.dot(beam, o)
    if ratio == 0.0:
        ratio = DBL_MIN
    close = vec.dot(pix0, o)
    to_beam = tuple(close / ratio * beam[i] - pix0[i] for i in range(3))
    fbeam, sbeam = vec.dot(f, to_beam), vec.dot(s, to_beam)
    fclose, sclose = -vec.dot(pix0, f), -vec.dot(pix0, s)
    pixel = panel.pixel_size
    frame = dataclasses.replace(frame, xbeam=fbeam, ybeam=sbeam, fbeam=fbeam, sbeam=sbeam,
                                xclose=fclose, yclose=sclose, fclose=fclose, sclose=sclose,
                                fdet=f, sdet=s, odet=o)
    # the corner in DIALS' frame (mm), the SMV header's DIALS_ORIGIN, whatever the frame
    rows = lab_frame(beam, frame.spindle, -1)
    dials_origin = tuple(1000.0 * x + 0.0 for x in to_frame(rows, pix0))
    return DetectorGeometry(
        frame=frame, pix0=pix0, fdet=f, sdet=s, odet=o, distance=close / ratio,
        close_distance=close, fbeam=fbeam, sbeam=sbeam, fclose=fclose, sclose=sclose,
        orgx=fclose / pixel + 0.5, orgy=sclose / pixel + 0.5, dials_origin=dials_origin,
        twotheta=0.0, curved=False, point_pixel=point_pixel)


def resolve_panels(det):
    """(the render's :class:`DetectorGeometry`, :class:`PanelSet` or None) of a detector
    configuration: a named detector, explicit panels, or (None) the C's one panel."""
    if det.preset is not None and det.panels is not None:
        raise GeometryError("give a named detector (DetectorConfig.preset, --detector) or "
                            "explicit panels (DetectorConfig.panels, --experiment), not both")
    if det.preset is not None:
        return place_preset(det)
    if det.panels is not None:
        return place_panels(det)
    return None
