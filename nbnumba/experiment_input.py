"""A DIALS experiment list as a configuration: ``--experiment FILE`` and
:func:`nbnumba.config_from_experiment`.

The experiment's models (:func:`nbnumba.io.expt_read.read_experiment`) fill the
configuration before the other flags are applied, so that a flag overrides what it
names:

* beam: wavelength, direction (``beam_vector``), polarization (the E-vector axis
  ``polar_vector`` in the plane dxtbx's ``polarization_normal`` is normal to, Kahn factor
  K = 2 ``polarization_fraction`` - 1);
* detector: every panel (``DetectorConfig.panels``: origin, axes, pixel size and
  counts, trusted range, material), the sensor's thickness and attenuation when the
  panels give them (they must agree), the pedestal as the ``-adc`` offset;
* goniometer: the rotation axis (``spindle_axis``), the setting rotation applied to it
  and the crystal, the fixed rotation applied to the crystal (a multi-axis goniometer
  through the two); scan: the first image's start (``-phi``) and width (``-osc``);
* crystal: the real-space vectors at the goniometer's datum, as an A matrix
  (``a_matrix``) for the final wavelength.

Everything is rendered in the experiment's laboratory frame (DIALS': the beam along -z
as a rule). Flags that place or turn the detector (``-distance``, ``-Xbeam``,
``-twotheta``, conventions, axis vectors, ``-pixel``, ``-detpixels`` ...) are refused
beside ``--experiment``.

A file nbnumba wrote (``-expt``) also holds the configuration that rendered its images
(:func:`nbnumba.experiment.configuration_record`). Millimetres, Angstrom, degrees and
DIALS' frame do not always convert back to the same doubles, so that configuration is
used instead of the models whenever it describes exactly what the file says (with the
other flags applied): the images are then bit for bit the original command's.
"""
import copy
import dataclasses

import numpy as np

from . import vec
from .config import SimulationConfig
from .errors import FlagError, NbnumbaError
from .panels import DetectorPanels, Panel

#: the sensor thickness nbnumba's NXmx files give a detector without one (m): read as none
THINNEST_SENSOR = 1e-9

#: flags that place, size or turn the detector or give the beam and spindle directions:
#: the experiment gives these
REFUSED_FLAGS = ("-pixel", "-detpixels", "-detpixels_f", "-detpixels_s", "-detsize",
                 "-detsize_f", "-detsize_s", "-distance", "-close_distance", "-Xbeam",
                 "-Ybeam", "-Xclose", "-Yclose", "-ORGX", "-ORGY", "-pivot", "-mosflm",
                 "-xds", "-adxv", "-denzo", "-dials", "-fdet_vector", "-sdet_vector",
                 "-odet_vector", "-beam_vector", "-polar_vector", "-spindle_axis",
                 "-twotheta_axis", "-pix0_vector", "-twotheta", "-detector_rotx",
                 "-detector_roty", "-detector_rotz", "-curved_det", "-img", "--detector")

_SECTIONS = ("beam", "detector", "crystal", "render")


def refuse_flags(given, path):
    """Raise :class:`FlagError` for the first flag of ``given`` (main names) that
    ``--experiment`` does not allow beside it."""
    for name in given:
        if name in REFUSED_FLAGS:
            raise FlagError(f"{name} cannot be combined with --experiment {path}: the "
                            "experiment gives the detector, the beam and the spindle (edit "
                            "the experiment to move them)")


def _sensor(models):
    """(thickness in m, attenuation coefficient in 1/m or None) the panels agree on."""
    thick = {p.thickness for p in models.panels}
    mus = {p.mu for p in models.panels}
    if len(thick) > 1 or len(mus) > 1:
        raise FlagError(f"--experiment {models.path}: its panels have different sensor "
                        "thicknesses or attenuation coefficients; nbnumba renders one sensor "
                        "for the whole detector (give -detector_thick and -detector_abs)")
    thickness, mu = thick.pop(), mus.pop()
    if thickness <= THINNEST_SENSOR * (1.0 + 1e-6):   # NXmx's stand-in for no sensor
        return 0.0, None
    return thickness, (mu if thickness > 0.0 and mu > 0.0 else None)


def _panels(models):
    panels = [Panel(origin=p.origin, fast=p.fast, slow=p.slow, pixel_size=p.pixel_size,
                    fpixels=p.fpixels, spixels=p.spixels, name=p.name)
              for p in models.panels]
    trusted = (min(p.trusted_range[0] for p in models.panels),
               max(p.trusted_range[1] for p in models.panels))
    result = DetectorPanels(panels, trusted_range=trusted,
                            material=models.panels[0].material, source=models.path)
    result.check(f"--experiment {models.path}")
    return result


def _polar_vector(models):
    """The E-vector axis: in the polarization plane, perpendicular to the beam."""
    axis, length = vec.unit(vec.cross(models.beam, models.polarization_normal))
    if length < 1e-9:   # a normal along the beam: no plane; K = 0 makes it irrelevant
        return (1.0, 0.0, 0.0) if abs(models.beam[0]) < 0.9 else (0.0, 1.0, 0.0)
    return axis


def _spindle(models):
    if models.spindle is not None:
        return models.spindle
    # a still: any axis perpendicular to the beam (no rotation happens)
    return vec.unit(vec.cross(models.beam, (0.0, 1.0, 0.0) if abs(models.beam[1]) < 0.9
                              else (1.0, 0.0, 0.0)))[0]


def a_matrix(models, wavelength):
    """The MOSFLM A matrix (columns a*, b*, c* times the wavelength in Angstrom) of the
    experiment's crystal at the datum: its real-space vectors turned by the fixed and the
    setting rotations. wavelength: m."""
    turned = models.real_space @ (models.setting_rotation @ models.fixed_rotation).T
    return np.linalg.inv(turned) * (wavelength * 1e10)


def apply_models(state, models):
    """Fill ``state.config`` and ``state.out`` from the experiment's models (before the
    other flags are applied)."""
    cfg = state.config
    cfg.beam.wavelength = models.wavelength
    cfg.beam.kahn_factor = 2.0 * models.polarization_fraction - 1.0
    det = cfg.detector
    det.convention = "CUSTOM"
    det.beam_vector = models.beam
    det.polar_vector = _polar_vector(models)
    det.spindle_axis = _spindle(models)
    det.panels = _panels(models)
    det.thickness, det.attenuation_mu = _sensor(models)
    state.out.adc = models.panels[0].pedestal
    if models.phi0 is not None:
        cfg.crystal.phi0 = models.phi0
        cfg.crystal.osc = models.osc if models.osc != 0.0 else None
    if models.real_space is not None:
        cfg.crystal.a_matrix = a_matrix(models, models.wavelength)


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            return np.array_equal(np.asarray(a), np.asarray(b))
        except (TypeError, ValueError):
            return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def user_fields(before, after):
    """{(section, field)} of the configuration fields the flags changed."""
    changed = set()
    for section in _SECTIONS:
        a, b = getattr(before, section), getattr(after, section)
        for f in dataclasses.fields(a):
            if not _same(getattr(a, f.name), getattr(b, f.name)):
                changed.add((section, f.name))
    return changed


def finish(state, snapshot, models):
    """After every flag and the ``-mat`` file: the experiment's crystal for the final
    wavelength (unless ``-mat`` gave one), then the exact configuration of a file
    nbnumba wrote when it describes the file exactly (``state.experiment_exact``).
    snapshot: the configuration right after :func:`apply_models`."""
    cfg = state.config
    user = user_fields(snapshot, cfg)
    if models.real_space is not None and state.mat_file is None:
        cfg.crystal.a_matrix = a_matrix(models, cfg.beam.wavelength)
    if models.exact is None:
        return
    candidate = _exact_candidate(cfg, models.exact, user)
    if candidate is not None and _describes(candidate, state, models):
        state.config = candidate
        state.experiment_exact = True


def _from_json(name, value):
    """A configuration value from the JSON of :func:`configuration_record`."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if name == "a_matrix":
        return np.array(value, dtype=float)
    if name == "panels":
        panels = [Panel(**{**p, "origin": tuple(p["origin"]), "fast": tuple(p["fast"]),
                           "slow": tuple(p["slow"]),
                           "normal": None if p.get("normal") is None else tuple(p["normal"]),
                           "raster_origin": None if p.get("raster_origin") is None
                           else tuple(p["raster_origin"])})
                  for p in value["panels"]]
        return DetectorPanels(panels, raster_shape=None if value.get("raster_shape") is None
                              else tuple(value["raster_shape"]),
                              trusted_range=None if value.get("trusted_range") is None
                              else tuple(value["trusted_range"]),
                              material=value.get("material", ""))
    if isinstance(value, list):
        return tuple(value)
    raise TypeError(name)


def _exact_candidate(cfg, block, user):
    """The configuration with the block's fields where no flag set them (its sections
    copied, their arrays shared); None when the block cannot be read."""
    candidate = SimulationConfig(beam=copy.copy(cfg.beam), detector=copy.copy(cfg.detector),
                                 crystal=copy.copy(cfg.crystal), render=cfg.render)
    try:
        for section in ("detector", "beam", "crystal"):
            target = getattr(candidate, section)
            names = {f.name for f in dataclasses.fields(target)}
            for name, value in block[section].items():
                if name not in names:
                    return None
                if (section, name) not in user:
                    setattr(target, name, _from_json(name, value))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return candidate


#: fields of the file's models that the comparison leaves out: the ones the flags decide
#: (flux, the pedestal) and the bookkeeping
_IGNORED = {"flux", "pedestal", "identifier"}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _IGNORED}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _describes(candidate, state, models):
    """True when the experiment list nbnumba would write for ``candidate`` holds exactly
    the models of the file (beam, detector, goniometer, crystal, the scan's angles)."""
    from . import engine
    from .experiment import NumberedName, describe
    from .io import expt
    try:
        setup = engine.prepare(candidate)
        image = describe(setup, NumberedName("x_", "1", ".img"), state.out.adc)
        ours = expt.experiment_list([image], models.path)
    except NbnumbaError:
        return False
    theirs = models.document
    entry, mine = theirs["experiment"][models.index], ours["experiment"][0]
    for name in ("beam", "detector", "goniometer", "crystal", "scan"):
        if (entry.get(name) is None) != (mine.get(name) is None):
            return False
        if entry.get(name) is None or name == "scan":
            continue
        if _strip(theirs[name][entry[name]]) != _strip(ours[name][mine[name]]):
            return False
    if mine.get("scan") is None:
        return True
    return _same_angles(theirs["scan"][entry["scan"]], ours["scan"][0])


def _same_angles(theirs, ours):
    """Whether a scan's image start angles (and width) are what ``ours`` (one image)
    gives, computed as the writer computes them (start + i x width, degrees)."""
    start = ours["properties"]["oscillation"][0]
    width = ours["properties"]["oscillation_width"][0]
    props = theirs.get("properties")
    if not isinstance(props, dict) or not isinstance(props.get("oscillation"), list):
        return False
    if "oscillation_width" in props:
        return props["oscillation"] == [start] and props["oscillation_width"] == [width]
    return props["oscillation"] == [start + i * width for i in range(len(props["oscillation"]))]


__all__ = ["REFUSED_FLAGS", "refuse_flags", "apply_models", "finish", "a_matrix"]
