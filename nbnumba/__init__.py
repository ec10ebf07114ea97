"""nbnumba: nanoBragg diffraction images with NumPy and Numba.

Build a :class:`SimulationConfig` in code (SI units except unit-cell edges, which are in
Angstrom; ``help(CrystalConfig)`` lists every field's unit), or from the C program's
command-line flags with :func:`config_from_args`, then :func:`simulate` it and write
the files the ``nbnumba`` command writes::

    import nbnumba
    cfg, out = nbnumba.config_from_args(["-cell", "100", "100", "100", "90", "90", "90",
                                         "-default_F", "100", "-N", "5", "-detpixels", "64"])
    result = nbnumba.simulate(cfg)
    result.image        # float32 (slow, fast), photons per pixel
    noise = nbnumba.make_noise_image(result, seed=1)   # uint16 (slow, fast), counts
    nbnumba.write_smv_image(result, "noise.img", noise.pixels)

Structure factors and sources can be given as arrays
(:meth:`StructureFactors.from_miller`, :meth:`SourceList.from_directions`). Every error
raised on purpose is an :class:`NbnumbaError` (:class:`ConfigError`, :class:`FlagError`,
:class:`InputFileError`, :class:`OutputError`, :class:`DeviceError`) with a one-line
message; :func:`config_from_args` reads ``./Fdump.bin`` only with ``read_fdump=True``,
and :func:`simulate` writes no file. The reference is ``docs/api.md``.

Neither importing nbnumba nor simulating imports ``scipy.linalg`` (see
``nbnumba._jit.no_blas_probe``), so ``dxtbx`` from a pip-installed cctbx can be imported
afterwards.
"""
from ._version import __version__
from .cmdline import config_from_args, config_from_experiment
from .config import (BeamConfig, CrystalConfig, DetectorConfig, RenderConfig, SimulationConfig,
                     SourceList, StructureFactors, check_units)
from .panels import DetectorPanels, Panel
from .presets import PRESETS
from .compilecache import CompileWarning
from .engine import Result, Setup, prepare, render, simulate
from .errors import (ConfigError, DeviceError, FlagError, InputFileError, NbnumbaError,
                     OutputError)
from .io.nexus import write_nexus
from .output import (IntegerImage, NoiseImage, PGMImage, make_int_image, make_noise_image,
                     make_pgm, smv_header, write_float_image, write_pgm, write_smv_image)
from .toolbox import NonBraggConfig, StolTable, nonbragg, noisify

from .precompile import compile  # noqa: A004 (the library's ahead-of-time compile)

__all__ = ["BeamConfig", "CrystalConfig", "DetectorConfig", "RenderConfig", "SimulationConfig",
           "DetectorPanels", "Panel", "PRESETS",
           "SourceList", "StructureFactors", "check_units", "Result", "Setup",
           "prepare", "render", "simulate", "config_from_args", "config_from_experiment",
           "compile", "CompileWarning",
           "NbnumbaError", "ConfigError", "FlagError", "InputFileError", "OutputError",
           "DeviceError",
           "IntegerImage", "NoiseImage", "PGMImage", "make_int_image", "make_noise_image",
           "make_pgm", "smv_header", "write_float_image", "write_pgm", "write_smv_image",
           "write_nexus", "nonbragg", "noisify", "NonBraggConfig", "StolTable",
           "__version__"]
