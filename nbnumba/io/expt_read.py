"""Reading a DIALS experiment list (``.expt``): plain JSON and NumPy, no dxtbx.

:func:`read_experiment` returns the models of one experiment as an
:class:`ExperimentModels` record in the file's laboratory frame and nbnumba's units
(metres, radians): the beam (direction of travel, wavelength, polarization), every
panel of the detector with its hierarchy resolved (dxtbx stores each panel's frame
relative to its group), the goniometer (its rotation axis with the setting rotation
applied, the fixed rotation, a multi-axis goniometer's axes turned into those two) and
scan, and the crystal's real-space vectors at the goniometer's datum. What nbnumba
cannot render (a polychromatic beam, rectangular pixels, a detector panel without
pixels ...) is refused with one :class:`InputFileError` line naming the file.

Files that nbnumba wrote (``-expt``) also carry an ``"nbnumba"`` block: the
configuration the images were rendered from (:mod:`nbnumba.io.expt`); it is returned as
``exact`` for :mod:`nbnumba.experiment_input` to use when it agrees with the file.
"""
import json
import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from ..constants import RTD
from .errors import InputFileError, MiB, read_text

#: the largest experiment list read (bytes)
MAX_BYTES = 256 * MiB

Vector3 = Tuple[float, float, float]


@dataclass
class PanelModel:
    """One panel in the file's lab frame (m), with its own index into the file."""
    name: str
    origin: Vector3
    fast: Vector3
    slow: Vector3
    pixel_size: float       #: m
    fpixels: int
    spixels: int
    thickness: float        #: m (0: not given)
    mu: float               #: 1/m (0: not given)
    material: str
    trusted_range: Tuple[float, float]
    pedestal: float         #: counts


@dataclass
class ExperimentModels:
    """The models of one experiment of a ``.expt`` file (its lab frame, SI units)."""
    path: str
    index: int                          #: which experiment of the file
    count: int                          #: experiments in the file
    beam: Vector3                       #: unit direction the X-rays travel
    wavelength: float                   #: m
    polarization_normal: Vector3
    polarization_fraction: float
    panels: List[PanelModel]
    spindle: Optional[Vector3] = None   #: rotation axis, setting rotation applied
    fixed_rotation: np.ndarray = field(default_factory=lambda: np.identity(3))
    setting_rotation: np.ndarray = field(default_factory=lambda: np.identity(3))
    image_range: Optional[Tuple[int, int]] = None
    phi0: Optional[float] = None        #: rad, start of the first image
    osc: Optional[float] = None         #: rad per image
    exposure: Optional[float] = None    #: s
    real_space: Optional[np.ndarray] = None   #: (3, 3) rows a, b, c, Angstrom, datum frame
    imageset: Optional[dict] = None
    exact: Optional[dict] = None        #: nbnumba's block, when the file has one
    document: Optional[dict] = field(default=None, repr=False)   #: the whole file

    @property
    def frames(self):
        """Images of the scan (1 for a still)."""
        if self.image_range is None:
            return 1
        return self.image_range[1] - self.image_range[0] + 1


class _Reader:
    """Small typed accessors that fail with one line naming the file and the field."""

    def __init__(self, path):
        self.path = path

    def fail(self, text):
        return InputFileError(f"experiment list {self.path}: {text}")

    def get(self, obj, key, where, kind=None):
        if not isinstance(obj, dict) or key not in obj:
            raise self.fail(f"{where} has no {key!r}")
        value = obj[key]
        if kind is not None and not isinstance(value, kind):
            raise self.fail(f"{where} {key!r} is not {_kind_name(kind)}")
        return value

    def number(self, obj, key, where, default=None):
        if default is not None and (not isinstance(obj, dict) or key not in obj):
            return default
        value = self.get(obj, key, where)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise self.fail(f"{where} {key!r} is not a finite number")
        return float(value)

    def vector(self, obj, key, where, n=3):
        value = self.get(obj, key, where, list)
        if len(value) != n or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                      and math.isfinite(x) for x in value):
            raise self.fail(f"{where} {key!r} is not {n} finite numbers")
        return tuple(float(x) for x in value)

    def unit(self, obj, key, where):
        v = np.array(self.vector(obj, key, where))
        length = float(np.linalg.norm(v))
        if not length > 0.0:
            raise self.fail(f"{where} {key!r} is the zero vector")
        return tuple(float(x) for x in v / length)


def _kind_name(kind):
    names = {list: "a list", dict: "an object", str: "a string", int: "an integer"}
    return names.get(kind, "of the right type")


def _rotation(axis, degrees):
    """Right-handed rotation matrix about ``axis`` by ``degrees`` (Rodrigues)."""
    a = np.asarray(axis, float)
    a = a / np.linalg.norm(a)
    t = math.radians(degrees)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.identity(3) + math.sin(t) * k + (1.0 - math.cos(t)) * (k @ k)


def _table(r, data, name, index, where):
    table = r.get(data, name, "the file", list)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(table):
        raise r.fail(f"{where} {name!r} index {index!r} is not one of the file's {name}s")
    item = table[index]
    if not isinstance(item, dict):
        raise r.fail(f"{name} {index} is not an object")
    return item


def _beam(r, beam):
    kind = beam.get("__id__", "monochromatic")
    if kind != "monochromatic":
        raise r.fail(f"the beam is {kind!r}; nbnumba reads a monochromatic beam (give "
                     "-dispersion for a spectrum)")
    direction = r.unit(beam, "direction", "the beam")
    wavelength = r.number(beam, "wavelength", "the beam")
    if not wavelength > 0.0:
        raise r.fail(f"the beam's wavelength {wavelength:g} A is not positive")
    normal = beam.get("polarization_normal", [0.0, 1.0, 0.0])
    normal = r.unit({"n": normal}, "n", "the beam's polarization_normal")
    fraction = r.number(beam, "polarization_fraction", "the beam", default=0.5)
    if not 0.0 <= fraction <= 1.0:
        raise r.fail(f"the beam's polarization_fraction {fraction:g} is not between 0 and 1")
    travel = tuple(-x for x in direction)   # dxtbx's direction points to the source
    return travel, wavelength * 1e-10, normal, fraction


def _frame(r, node, where):
    """(fast, slow, origin) of a panel or group dict, axes made unit as dxtbx does."""
    fast = np.array(r.unit(node, "fast_axis", where))
    slow = np.array(r.unit(node, "slow_axis", where))
    origin = np.array(r.vector(node, "origin", where))
    return fast, slow, origin


def _compose(parent, local):
    """Global (fast, slow, origin) of a local frame within ``parent``'s (as dxtbx's
    VirtualPanelFrame: the parent's fast, slow and normal as the columns)."""
    pf, ps, po = parent
    rotation = np.column_stack([pf, ps, np.cross(pf, ps)])
    lf, ls, lo = local
    return rotation @ lf, rotation @ ls, rotation @ lo + po


def _panel_frames(r, detector, n_panels):
    """Global (fast, slow, origin) (mm) of every panel, the hierarchy resolved."""
    panels = detector["panels"]
    if "hierarchy" not in detector:
        return [_frame(r, p, f"panel {i}") for i, p in enumerate(panels)]
    frames = [None] * n_panels

    def walk(node, parent, depth):
        if depth > 64:
            raise r.fail("the detector hierarchy is nested too deeply")
        if not isinstance(node, dict):
            raise r.fail("the detector hierarchy holds something that is not an object")
        if "panel" in node:
            index = node["panel"]
            if isinstance(index, bool) or not isinstance(index, int) \
                    or not 0 <= index < n_panels or frames[index] is not None:
                raise r.fail(f"the detector hierarchy names panel {index!r} wrongly")
            frames[index] = _compose(parent, _frame(r, panels[index], f"panel {index}"))
            return
        here = _compose(parent, _frame(r, node, "a detector group"))
        for child in r.get(node, "children", "a detector group", list):
            walk(child, here, depth + 1)

    identity = (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]), np.zeros(3))
    walk(r.get(detector, "hierarchy", "the detector", dict), identity, 0)
    missing = [i for i, f in enumerate(frames) if f is None]
    if missing:
        raise r.fail(f"panel {missing[0]} is not in the detector hierarchy")
    return frames


def _panels(r, detector):
    panels = r.get(detector, "panels", "the detector", list)
    if not panels:
        raise r.fail("the detector has no panels")
    frames = _panel_frames(r, detector, len(panels))
    result = []
    for i, (p, (fast, slow, origin)) in enumerate(zip(panels, frames)):
        where = f"panel {i}"
        size = r.vector(p, "pixel_size", where, 2)
        if not (size[0] > 0.0 and size[1] > 0.0):
            raise r.fail(f"{where} has a pixel size of {size[0]:g} x {size[1]:g} mm")
        if abs(size[0] - size[1]) > 1e-9 * max(size):
            raise r.fail(f"{where} has rectangular pixels ({size[0]:g} x {size[1]:g} mm); "
                         "nbnumba renders square pixels")
        image_size = r.get(p, "image_size", where, list)
        if len(image_size) != 2 or not all(isinstance(x, int) and not isinstance(x, bool)
                                           and x > 0 for x in image_size):
            raise r.fail(f"{where} 'image_size' is not two positive pixel counts")
        trusted = p.get("trusted_range", [0.0, 65534.0])
        trusted = r.vector({"t": trusted}, "t", f"{where} trusted_range", 2)
        thickness = r.number(p, "thickness", where, default=0.0)
        mu = r.number(p, "mu", where, default=0.0)
        material = p.get("material", "")
        result.append(PanelModel(
            name=str(p.get("name", "") or f"panel{i}"),
            origin=tuple(float(x) * 1e-3 for x in origin),
            fast=tuple(float(x) for x in fast), slow=tuple(float(x) for x in slow),
            pixel_size=size[0] * 1e-3, fpixels=image_size[0], spixels=image_size[1],
            thickness=max(thickness, 0.0) * 1e-3, mu=max(mu, 0.0) * 1e3,
            material=material if isinstance(material, str) else "",
            trusted_range=trusted,
            pedestal=r.number(p, "pedestal", where, default=0.0)))
    return result


def _goniometer(r, gonio):
    """(rotation axis with the setting rotation applied, F, S)."""
    if "axes" in gonio:     # a MultiAxisGoniometer: F and S from the axes' angles
        axes = r.get(gonio, "axes", "the goniometer", list)
        angles = r.get(gonio, "angles", "the goniometer", list)
        scan_axis = r.get(gonio, "scan_axis", "the goniometer", int)
        if not axes or len(angles) != len(axes) or not 0 <= scan_axis < len(axes):
            raise r.fail("the goniometer's axes, angles and scan_axis do not agree")
        vectors = [r.unit({"a": a}, "a", f"goniometer axis {i}") for i, a in enumerate(axes)]
        degrees = [r.number({"a": a}, "a", f"goniometer angle {i}")
                   for i, a in enumerate(angles)]
        fixed, setting = np.identity(3), np.identity(3)
        for i in range(scan_axis):
            fixed = _rotation(vectors[i], degrees[i]) @ fixed
        for i in range(scan_axis + 1, len(axes)):
            setting = _rotation(vectors[i], degrees[i]) @ setting
        axis = np.array(vectors[scan_axis])
    else:
        axis = np.array(r.unit(gonio, "rotation_axis", "the goniometer"))
        fixed = np.array(gonio.get("fixed_rotation", list(np.identity(3).ravel())), float)
        setting = np.array(gonio.get("setting_rotation", list(np.identity(3).ravel())),
                           float)
        if fixed.shape != (9,) or setting.shape != (9,):
            raise r.fail("the goniometer's fixed or setting rotation is not 9 numbers")
        fixed, setting = fixed.reshape(3, 3), setting.reshape(3, 3)
    for name, m in (("fixed", fixed), ("setting", setting)):
        if not np.all(np.isfinite(m)) or not np.allclose(m @ m.T, np.identity(3), atol=1e-6):
            raise r.fail(f"the goniometer's {name} rotation is not a rotation matrix")
    spindle = setting @ axis
    return tuple(float(x) for x in spindle / np.linalg.norm(spindle)), fixed, setting


def _scan(r, scan):
    """(image range, start of the first image in degrees, width in degrees, exposure)."""
    first, last = r.vector(scan, "image_range", "the scan", 2)
    if first != int(first) or last != int(last) or last < first:
        raise r.fail("the scan's image_range is not two image numbers, the first lower")
    n = int(last) - int(first) + 1
    props = scan.get("properties")
    if isinstance(props, dict) and "oscillation" in props:
        starts = props["oscillation"]
        widths = props.get("oscillation_width")
    elif "oscillation" in scan:   # older files: [start, width]
        start, width = r.vector(scan, "oscillation", "the scan", 2)
        starts, widths = [start], [width]
    else:
        raise r.fail("the scan has no oscillation")
    if not isinstance(starts, list) or not starts:
        raise r.fail("the scan's oscillation is not a list of angles")
    start = r.number({"o": starts[0]}, "o", "the scan's oscillation")
    if isinstance(widths, list) and widths:
        width = r.number({"w": widths[0]}, "w", "the scan's oscillation_width")
    elif len(starts) > 1:
        width = r.number({"o": starts[1]}, "o", "the scan's oscillation") - start
    else:
        raise r.fail("the scan gives no oscillation width")
    exposure = None
    times = props.get("exposure_time") if isinstance(props, dict) else scan.get("exposure_time")
    if isinstance(times, list) and times and isinstance(times[0], (int, float)):
        exposure = float(times[0])
    return (int(first), int(last)), start, width, exposure, n


def _crystal(r, crystal):
    kind = crystal.get("__id__", "crystal")
    vectors = np.array([r.vector(crystal, "real_space_" + k, "the crystal") for k in "abc"])
    volume = float(np.dot(vectors[0], np.cross(vectors[1], vectors[2])))
    if not abs(volume) > 0.0:
        raise r.fail(f"the crystal ({kind}) has a cell of zero volume")
    return vectors


def read_experiment(path, index=None):
    """The :class:`ExperimentModels` of experiment ``index`` of a ``.expt`` file (None:
    the file must hold exactly one experiment).

    Raises :class:`InputFileError` (one line) for an unreadable file, a file that is not
    an experiment list, or models nbnumba cannot render.
    """
    r = _Reader(path)
    text = read_text(path, "experiment list", MAX_BYTES)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise r.fail(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise r.fail("its JSON is nested too deeply") from None
    if not isinstance(data, dict) or data.get("__id__") != "ExperimentList":
        raise r.fail("not a DIALS experiment list (no \"__id__\": \"ExperimentList\")")
    experiments = r.get(data, "experiment", "the file", list)
    if not experiments:
        raise r.fail("it holds no experiment")
    if index is None:
        if len(experiments) > 1:
            raise r.fail(f"it holds {len(experiments)} experiments; nbnumba renders one "
                         "(dials.split_experiments splits the file)")
        index = 0
    if not 0 <= index < len(experiments):
        raise r.fail(f"it has no experiment {index}")
    entry = experiments[index]
    where = f"experiment {index}"
    if not isinstance(entry, dict):
        raise r.fail(f"{where} is not an object")
    for name in ("beam", "detector"):
        if name not in entry:
            raise r.fail(f"{where} has no {name}")
    beam, wavelength, normal, fraction = _beam(r, _table(r, data, "beam", entry["beam"], where))
    panels = _panels(r, _table(r, data, "detector", entry["detector"], where))
    models = ExperimentModels(path=path, index=index, count=len(experiments), beam=beam,
                              wavelength=wavelength, polarization_normal=normal,
                              polarization_fraction=fraction, panels=panels, document=data)
    if entry.get("goniometer") is not None:
        models.spindle, models.fixed_rotation, models.setting_rotation = _goniometer(
            r, _table(r, data, "goniometer", entry["goniometer"], where))
    if entry.get("scan") is not None:
        (models.image_range, start, width, models.exposure,
         _) = _scan(r, _table(r, data, "scan", entry["scan"], where))
        models.phi0, models.osc = start / RTD, width / RTD   # as -phi and -osc convert
    if entry.get("crystal") is not None:
        models.real_space = _crystal(r, _table(r, data, "crystal", entry["crystal"], where))
    if entry.get("imageset") is not None and isinstance(data.get("imageset"), list):
        item = data["imageset"][entry["imageset"]] if isinstance(entry["imageset"], int) \
            and 0 <= entry["imageset"] < len(data["imageset"]) else None
        models.imageset = item if isinstance(item, dict) else None
    exact = data.get("nbnumba")
    if isinstance(exact, dict):
        blocks = exact.get("experiments")
        if isinstance(blocks, list) and index < len(blocks) and isinstance(blocks[index], dict):
            models.exact = blocks[index]
    return models
