"""Named detectors (``--detector NAME``, ``DetectorConfig.preset``): module sizes and gaps.

A preset is a grid of identical modules with gaps between them, from the
manufacturers' published sizes. It is placed like the C's detector: the whole grid,
gaps included, is a detector of ``raster`` pixels of ``pixel_size`` that ``-distance``,
the beam centre, the convention, rotations and two-theta place exactly as they place
the C's; each module is the rectangle of that detector at its ``module_origins`` entry,
and the gaps are never rendered (they are masked in the files). So a preset's image is,
pixel for pixel, the C's image of the same detector size with the gaps masked.

The modules are ideal: the larger pixels at the chip boundaries of Eiger and Jungfrau
modules, and the slightly uneven module spacing of real detectors, are not modelled.
"""
from dataclasses import dataclass
from typing import List, Tuple

from .errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """A detector of ``modules[0]`` x ``modules[1]`` identical modules.

    module: (fast, slow) pixels of a module; modules: (along fast, along slow) count;
    gap: (fast, slow) pixels between neighbouring modules; pixel_size: m, written as
    the C converts ``-pixel`` (mm / 1000.0), so that ``-pixel`` with the same value gives
    the same double.
    """
    name: str
    description: str
    pixel_size: float
    module: Tuple[int, int]
    modules: Tuple[int, int]
    gap: Tuple[int, int]

    @property
    def raster(self):
        """(fast, slow) pixels of the whole grid, gaps included."""
        return tuple(n * m + (n - 1) * g for n, m, g in zip(self.modules, self.module, self.gap))

    @property
    def panel_count(self):
        return self.modules[0] * self.modules[1]

    def module_origins(self) -> List[Tuple[int, int]]:
        """(row, column) of each module's pixel (0, 0) in the grid, row by row of modules
        (the order of the panels in the files)."""
        (mf, ms), (nf, ns), (gf, gs) = self.module, self.modules, self.gap
        return [(j * (ms + gs), i * (mf + gf)) for j in range(ns) for i in range(nf)]


PRESETS = {p.name: p for p in (
    Preset("pilatus6m", "DECTRIS Pilatus 6M: 5 x 12 modules of 487 x 195 pixels of 172 um, "
           "gaps of 7 (fast) and 17 (slow) pixels: 2463 x 2527 pixels",
           0.172 / 1000.0, (487, 195), (5, 12), (7, 17)),
    Preset("eiger2-16m", "DECTRIS Eiger2 16M: 4 x 8 modules of 1028 x 512 pixels of 75 um, "
           "gaps of 12 (fast) and 38 (slow) pixels: 4148 x 4362 pixels",
           0.075 / 1000.0, (1028, 512), (4, 8), (12, 38)),
    Preset("eiger2-9m", "DECTRIS Eiger2 9M: 3 x 6 modules of 1028 x 512 pixels of 75 um, "
           "gaps of 12 (fast) and 38 (slow) pixels: 3108 x 3262 pixels",
           0.075 / 1000.0, (1028, 512), (3, 6), (12, 38)),
    Preset("jungfrau4m", "PSI Jungfrau 4M: 2 x 4 modules of 1024 x 512 pixels of 75 um, "
           "gaps of 8 (fast) and 36 (slow) pixels: 2056 x 2156 pixels",
           0.075 / 1000.0, (1024, 512), (2, 4), (8, 36)),
    Preset("rayonix-mx300hs", "Rayonix MX300-HS binned 2 x 2: one panel of 3840 x 3840 "
           "pixels of 78.125 um (300 mm square)", 0.078125 / 1000.0, (3840, 3840), (1, 1), (0, 0)),
)}


def preset(name):
    """The :class:`Preset` called ``name``; :class:`ConfigError` naming the choices."""
    found = PRESETS.get(name) if isinstance(name, str) else None
    if found is None:
        raise ConfigError(f"unknown detector {name!r}; the named detectors are "
                          f"{', '.join(sorted(PRESETS))}")
    return found
