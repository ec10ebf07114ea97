"""Frame sets: a base configuration plus per-frame overrides, and their noise seeds.

:class:`FrameSet`, :class:`OutputSpec` (which files a frame writes), :func:`apply_overrides`,
the seed and angle rules (:func:`frame_seed`, :func:`degrees`) and the constructors
:func:`stills`, :func:`rotation_series`, :func:`misset_series`, :func:`matrix_series` and
:func:`random_orientations`.
"""
import copy
import dataclasses
import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from ..config import SimulationConfig
from ..constants import RTD
from ..errors import NbnumbaError

#: derived seeds lie in [1, SEED_LIMIT]: positive ``-seed`` values the C's generator
#: (Park-Miller, modulus 2^31 - 1) accepts as they are
SEED_LIMIT = 2147483646

#: output kinds, in writing order, with the extension appended to the frame's name
EXTENSIONS = OrderedDict([("float", ".bin"), ("int", ".img"), ("pgm", ".pgm"),
                          ("noise", "_noise.img"), ("nexus", ".h5")])

_SECTIONS = ("beam", "detector", "crystal", "render")

_SEED_KEY = "seed"


class SeriesError(NbnumbaError):
    """A frame set that cannot be run (bad template, bad override, no frames ...)."""


# ---------------------------------------------------------------------------------------
# seeds and angles


def frame_seed(seed, index):
    """The noise ``-seed`` of frame ``index`` of a series with user seed ``seed``.

    A hash (SHA-256 of ``"nbnumba-series:<seed>:<index>"``) folded into
    [1, 2147483646], so neighbouring frames get unrelated Park-Miller streams. Stable
    across versions and platforms: it is part of the file format of a series.
    """
    digest = hashlib.sha256(b"nbnumba-series:%d:%d" % (int(seed), int(index))).digest()
    return int.from_bytes(digest[:8], "little") % SEED_LIMIT + 1


def degrees(radians):
    """A degree value ``d`` with ``d / RTD == radians`` exactly (as ``-phi d`` sets it).

    ``radians * RTD`` is usually that value; otherwise a neighbouring float is.
    """
    d = radians * RTD
    if d / RTD == radians:
        return d
    for direction in (math.inf, -math.inf):
        x = d
        for _ in range(8):
            x = math.nextafter(x, direction)
            if x / RTD == radians:
                return x
    return d


def _flag_number(x):
    """A float as a command-line value that parses back to exactly ``x``."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


# ---------------------------------------------------------------------------------------
# the frame set


@dataclass(frozen=True)
class OutputSpec:
    """Which files a frame writes and the image options (the C's output flags)."""
    float_image: bool = True      #: ``.bin``: raw float32 (the C's -floatfile)
    int_image: bool = True        #: ``.img``: noiseless SMV (-intfile)
    pgm: bool = False             #: ``.pgm``: 8-bit preview (-pgmfile)
    noise: bool = True            #: ``_noise.img``: SMV with Poisson noise (-noisefile)
    int_scale: float = 0.0        #: -scale (<= 0: 55000/max per frame)
    pgm_scale: float = 0.0        #: -pgmscale (<= 0: auto per frame)
    adc: float = 40.0             #: -adc
    #: ``.h5``: the frame as NXmx data (:mod:`nbnumba.io.nexus`): None (no file),
    #: "counts" (the noise image's, or the int image's without noise) or "float"
    nexus: Optional[str] = None

    @classmethod
    def from_cli(cls, out):
        """From the CLI's OutputOptions: the C always writes the float and int images."""
        return cls(float_image=True, int_image=True, pgm=bool(out.write_pgm),
                   noise=bool(out.write_noise), int_scale=float(out.int_scale),
                   pgm_scale=float(out.pgm_scale), adc=float(out.adc))

    def kinds(self):
        chosen = {"float": self.float_image, "int": self.int_image, "pgm": self.pgm,
                  "noise": self.noise, "nexus": bool(self.nexus)}
        return [k for k in EXTENSIONS if chosen[k]]


def _check_key(key):
    if key == _SEED_KEY:
        return
    section, _, name = key.partition(".")
    if section not in _SECTIONS or not name:
        raise SeriesError(f"override {key!r}: use 'seed' or SECTION.FIELD with SECTION one of "
                          f"{', '.join(_SECTIONS)} (e.g. 'crystal.phi0')")
    target = SimulationConfig.__dataclass_fields__[section].default_factory
    if name not in {f.name for f in dataclasses.fields(target)}:
        raise SeriesError(f"override {key!r}: {section} has no field {name!r}")


def apply_overrides(base, overrides):
    """A copy of ``base`` with ``overrides`` ((key, value) pairs or a dict) applied.

    Only the touched sections are copied (shallowly); ``base`` is never changed and
    large arrays (the structure-factor grid) are shared, not copied.
    """
    items = overrides.items() if isinstance(overrides, Mapping) else overrides
    cfg = copy.copy(base)
    copied = {}
    for key, value in items:
        if key == _SEED_KEY:
            continue
        section, _, name = key.partition(".")
        if section not in copied:
            copied[section] = copy.copy(getattr(base, section))
            setattr(cfg, section, copied[section])
        setattr(copied[section], name, value)
    return cfg


@dataclass
class FrameSet:
    """A base configuration plus one dictionary of overrides per frame.

    base: the :class:`~nbnumba.config.SimulationConfig` every frame starts from.
    overrides: per frame, ``{"section.field": value}`` in the configuration's units
        (radians, metres), and optionally ``"seed"``: that frame's noise ``-seed``.
    seed: the user noise seed; frame ``i`` uses :func:`frame_seed` ``(seed, i)``.
        None: chosen from the clock when the series starts (and reported).
    outputs: which files each frame writes (:class:`OutputSpec`).
    flags: optional, per frame, the ``nbnumba`` flags that set the same overrides
        (filled in by the constructors; see :meth:`cli_flags`).
    """
    base: SimulationConfig
    overrides: List[Dict[str, Any]]
    seed: Optional[int] = None
    outputs: OutputSpec = field(default_factory=OutputSpec)
    flags: Optional[List[Optional[List[str]]]] = None

    def __post_init__(self):
        self.overrides = [dict(o) for o in self.overrides]
        if not self.overrides:
            raise SeriesError("a frame set needs at least one frame")
        for o in self.overrides:
            for key in o:
                _check_key(key)
        if self.flags is not None and len(self.flags) != len(self.overrides):
            raise SeriesError("flags must have one entry per frame")

    def __len__(self):
        return len(self.overrides)

    def config(self, index):
        """The :class:`SimulationConfig` of frame ``index``."""
        return apply_overrides(self.base, self.overrides[index])

    def noise_seed(self, index, seed=None):
        """The ``-seed`` value of frame ``index`` (an explicit ``"seed"`` override wins)."""
        explicit = self.overrides[index].get(_SEED_KEY)
        if explicit is not None:
            return int(explicit)
        seed = self.seed if seed is None else seed
        if seed is None:
            raise SeriesError("no noise seed: give FrameSet.seed (or -seed)")
        return frame_seed(seed, index)

    def cli_flags(self, index, seed=None):
        """``nbnumba`` flags that, appended to the base command line, render frame ``index``.

        Raises :class:`SeriesError` for overrides with no flag (e.g. a matrix series).
        """
        own = self.flags[index] if self.flags is not None else None
        flags = list(own) if own is not None else None
        keys = [k for k in self.overrides[index] if k != _SEED_KEY]
        if flags is None and keys:
            raise SeriesError(f"frame {index}: no command-line equivalent for {keys}")
        flags = flags or []
        if self.outputs.noise:
            flags += ["-seed", str(self.noise_seed(index, seed))]
        return flags

    def vary(self, overrides, flags=None):
        """A new frame set whose frame ``i`` also gets ``overrides[i]`` (later ones win)."""
        if len(overrides) != len(self):
            raise SeriesError(f"{len(overrides)} overrides for {len(self)} frames")
        merged = [{**a, **dict(b)} for a, b in zip(self.overrides, overrides)]
        new_flags = None
        if self.flags is not None and flags is not None:
            new_flags = [None if a is None or b is None else list(a) + list(b)
                         for a, b in zip(self.flags, flags)]
        return dataclasses.replace(self, overrides=merged, flags=new_flags)


def stills(base, frames, seed=None, outputs=None):
    """``frames`` frames of the base configuration: only the noise seed differs."""
    return FrameSet(base, [{} for _ in range(int(frames))], seed=seed,
                    outputs=outputs or OutputSpec(), flags=[[] for _ in range(int(frames))])


def rotation_series(base, frames, osc, start=None, seed=None, outputs=None):
    """A rotation series: frame ``i`` covers ``start + i*osc`` .. ``+ osc`` degrees.

    osc: oscillation per frame, degrees (as ``-osc``); start: first phi, degrees (as
    ``-phi``; None: the base's ``phi0``). The base ``phi_steps``/``phi_step`` (and
    ``phi_midpoints``) apply within each frame (with neither, the C's rule gives 2 steps
    of osc/2).
    """
    start = degrees(base.crystal.phi0) if start is None else float(start)
    osc = float(osc)
    overrides, flags = [], []
    for i in range(int(frames)):
        phi = start + i * osc
        overrides.append({"crystal.phi0": phi / RTD, "crystal.osc": osc / RTD})
        flags.append(["-phi", _flag_number(phi), "-osc", _flag_number(osc)])
    return FrameSet(base, overrides, seed=seed, outputs=outputs or OutputSpec(), flags=flags)


def misset_series(base, missets, seed=None, outputs=None):
    """One frame per (rx, ry, rz) missetting triple, degrees (as ``-misset``)."""
    overrides, flags = [], []
    for m in missets:
        m = tuple(float(x) for x in m)
        if len(m) != 3:
            raise SeriesError("each misset needs three angles (degrees)")
        overrides.append({"crystal.misset": tuple(x / RTD for x in m)})
        flags.append(["-misset"] + [_flag_number(x) for x in m])
    return FrameSet(base, overrides, seed=seed, outputs=outputs or OutputSpec(), flags=flags)


def matrix_series(base, matrices, seed=None, outputs=None):
    """One frame per MOSFLM A matrix (3x3, rows as in a ``-mat`` file)."""
    overrides = []
    for m in matrices:
        m = np.array(m, dtype=np.float64).reshape(3, 3)
        overrides.append({"crystal.a_matrix": m})
    return FrameSet(base, overrides, seed=seed, outputs=outputs or OutputSpec())


def random_orientations(base, frames, orientation_seed, seed=None, outputs=None):
    """``frames`` random orientations: frame ``i`` is ``-misset random -misset_seed S_i``
    with ``S_i = frame_seed(orientation_seed, i)``."""
    overrides, flags = [], []
    for i in range(int(frames)):
        s = frame_seed(orientation_seed, i)
        overrides.append({"crystal.misset": "random", "crystal.misset_seed": s})
        flags.append(["-misset", "random", "-misset_seed", str(s)])
    return FrameSet(base, overrides, seed=seed, outputs=outputs or OutputSpec(), flags=flags)
