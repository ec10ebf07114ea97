"""The list of sources (incident directions x wavelengths) the kernel sums over.

A source file gives explicit positions and wavelengths; otherwise a divergence grid
(trimmed to an ellipse unless ``round_divergence`` is off) times a set of wavelengths is
generated (``spec/sources.md``). Weights are read and reported but never applied: every
source counts equally and the image is divided by the number of sources.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import List

import numpy as np

from . import sampling, vec
from .config import BeamConfig
from .errors import ConfigError
from .constants import SOURCE_DISTANCE


class SourceError(ConfigError):
    """A source specification that gives no usable source."""


@dataclass
class Sources:
    """Resolved sources, in the order the kernel visits them.

    positions: (n, 3) as given or generated (before normalisation), m.
    weights: (n,) reported only.
    wavelengths: (n,) m.
    directions: (n, 3) unit vectors from the sample towards each source.
    """
    positions: np.ndarray
    weights: np.ndarray
    wavelengths: np.ndarray
    directions: np.ndarray
    hdiv: tuple = (1, 0.0, 0.0)       #: resolved (steps, range, step), rad
    vdiv: tuple = (1, 0.0, 0.0)
    dispersion: tuple = (1, 0.0, 0.0)  #: (steps, full width fraction, step)
    divergence_points: int = 1
    messages: List[str] = field(default_factory=list)

    @property
    def count(self):
        return len(self.wavelengths)

    @property
    def incident(self):
        """Unit incident-beam directions (from source through sample), (n, 3)."""
        return -self.directions


#: the plausible range of a wavelength (m), as the configuration checks lambda0
_WAVELENGTH_RANGE = next(f.metadata["plausible"] for f in dataclasses.fields(BeamConfig)
                         if f.name == "wavelength")


def _normalise(positions):
    return np.array([vec.unit(tuple(float(x) for x in p))[0] for p in positions]).reshape(-1, 3)


def file_sources(source_list, beam_vector, wavelength):
    """Apply the C's defaults to missing source-file columns.

    Missing X, Y, Z default to ``-10 m x beam`` component by component, a missing
    weight to 1 and a missing wavelength to ``wavelength`` (lambda0, m).
    """
    pos = np.array(source_list.positions, dtype=float).reshape(-1, 3).copy()
    for j in range(3):
        missing = np.isnan(pos[:, j])
        pos[missing, j] = -SOURCE_DISTANCE * beam_vector[j]
    weights = np.where(np.isnan(source_list.weights), 1.0, source_list.weights)
    lambdas = np.where(np.isnan(source_list.wavelengths), wavelength, source_list.wavelengths)
    if np.any(lambdas <= 0):
        raise SourceError("every source wavelength must be positive")
    low, high = _WAVELENGTH_RANGE.low, _WAVELENGTH_RANGE.high
    outside = lambdas[(lambdas < low) | (lambdas > high)]
    if outside.size:
        # a wavelength whose inverse overflows makes every pixel NaN in the C
        raise SourceError(f"source wavelength {outside[0]:g} m is implausible (between "
                          f"{low:g} and {high:g} m): {_WAVELENGTH_RANGE.hint}")
    if np.any(np.all(pos == 0.0, axis=1)):
        raise SourceError("a source position is the zero vector (no direction)")
    if getattr(source_list, "upstream_only", False):
        along = pos @ np.asarray(beam_vector, dtype=float)
        if np.any(along > 0.0):
            i = int(np.argmax(along > 0.0))
            raise SourceError(
                f"source {i} at {tuple(float(x) for x in pos[i])} m lies downstream of the "
                f"sample (the beam travels along {tuple(float(x) for x in beam_vector)}): "
                "SourceList positions point from the sample towards the source; for "
                "directions of travel use SourceList.from_directions(beam_directions=...)")
    return pos, weights.astype(float), lambdas.astype(float)


def generated_sources(beam: BeamConfig, beam_vector, polar_vector, vertical_vector):
    """Divergence grid x dispersion wavelengths, in the C's order and arithmetic.

    Horizontal index outermost, vertical next, wavelength innermost.
    Returns (positions, weights, wavelengths, hdiv, vdiv, dispersion, kept, messages).
    """
    hsteps, hrange, hstep = sampling.spread_rule(beam.hdiv_steps, beam.hdiv_range, beam.hdiv_step)
    vsteps, vrange, vstep = sampling.spread_rule(beam.vdiv_steps, beam.vdiv_range, beam.vdiv_step)
    dsteps, dispersion, dstep = sampling.dispersion_rule(
        beam.dispersion_steps, beam.dispersion, None)
    for count, what in ((hsteps, "horizontal divergence steps"),
                        (vsteps, "vertical divergence steps"), (dsteps, "wavelength steps"),
                        (hsteps * vsteps * dsteps, "sources")):
        if count > sampling.MAX_STEPS:
            raise SourceError(f"{count} {what} is more than nbnumba handles "
                              f"({sampling.MAX_STEPS}); check the step sizes and counts")
    kept = []
    messages = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for ih in range(hsteps):
            for iv in range(vsteps):
                hdiv = hstep * ih - hrange / 2.0
                vdiv = vstep * iv - vrange / 2.0
                test = (np.float64(hdiv * hdiv - hstep * hstep / 4.0 * (1 - hsteps % 2))
                        / np.float64(hrange) / np.float64(hrange))
                test += (np.float64(vdiv * vdiv - vstep * vstep / 4.0 * (1 - vsteps % 2))
                         / np.float64(vrange) / np.float64(vrange))
                if beam.round_divergence and test * 4.0 > 1.1:
                    continue
                kept.append((hdiv, vdiv))
                messages.append(f"divergence deviation: {hdiv:g} {vdiv:g}")
    lambda0 = beam.wavelength
    wavelengths = [lambda0 * (1.0 + dstep * k - dispersion / 2.0) for k in range(dsteps)]
    count = len(kept) * dsteps
    weight = 1.0 / count if count else float("inf")
    positions, lambdas = [], []
    start = vec.scale(beam_vector, -SOURCE_DISTANCE)
    for hdiv, vdiv in kept:
        p = vec.rot_axis(vec.rot_axis(start, polar_vector, vdiv), vertical_vector, hdiv)
        for lam in wavelengths:
            positions.append(p)
            lambdas.append(lam)
    return (np.array(positions, dtype=float).reshape(-1, 3), np.full(count, weight),
            np.array(lambdas, dtype=float), (hsteps, hrange, hstep), (vsteps, vrange, vstep),
            (dsteps, dispersion, dstep), len(kept), messages)


def resolve_sources(beam: BeamConfig, beam_vector, polar_vector, vertical_vector) -> Sources:
    """The sources of a run: from ``beam.sources`` if given, else generated."""
    gen = generated_sources(beam, beam_vector, polar_vector, vertical_vector)
    positions, weights, lambdas, hdiv, vdiv, disp, kept, messages = gen
    if beam.sources is not None:
        positions, weights, lambdas = file_sources(beam.sources, beam_vector, beam.wavelength)
        messages = []
    if len(lambdas) == 0:
        (hn, hr, _), (vn, vr, _) = hdiv, vdiv
        raise SourceError(
            f"no sources: no point of the {hn}x{vn} divergence grid ({hr * 1e3:g} x "
            f"{vr * 1e3:g} mrad) lies inside the round divergence cut (the C writes an "
            "all-NaN image); give the divergence ranges (-hdivrange/-vdivrange, mrad) with "
            "the steps, use -square_div, or leave the divergence flags out")
    if np.any(~(lambdas > 0)):
        raise SourceError("every source wavelength must be positive")
    return Sources(positions=positions, weights=weights, wavelengths=lambdas,
                   directions=_normalise(positions), hdiv=hdiv, vdiv=vdiv,
                   dispersion=disp, divergence_points=kept, messages=messages)
