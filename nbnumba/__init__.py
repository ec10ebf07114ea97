"""nbnumba: nanoBragg diffraction images with NumPy and Numba.

Build a :class:`SimulationConfig` in code (or from the C program's command-line flags
with :func:`config_from_args`), then :func:`simulate` it::

    import nbnumba
    cfg, out = nbnumba.config_from_args(["-cell", "100", "100", "100", "90", "90", "90",
                                         "-default_F", "100", "-N", "5", "-detpixels", "256"])
    result = nbnumba.simulate(cfg)
    result.image        # float32 (slow, fast), photons per pixel
"""
from .config import (BeamConfig, CrystalConfig, DetectorConfig, RenderConfig, SimulationConfig,
                     SourceList, StructureFactors)
from .engine import ConfigError, Result, Setup, prepare, render, simulate

__version__ = "0.1.0"


def config_from_args(argv, cwd="."):
    """(SimulationConfig, OutputOptions) from the C program's command-line flags.

    Reads the files the flags name (-hkl, -mat, -sourcefile, -img, -mask), exactly as the
    ``nbnumba`` command does.
    """
    from nbnumba_cli.parse import config_from_args as _from_args
    return _from_args(argv, cwd)


__all__ = ["BeamConfig", "CrystalConfig", "DetectorConfig", "RenderConfig", "SimulationConfig",
           "SourceList", "StructureFactors", "ConfigError", "Result", "Setup", "prepare", "render",
           "simulate", "config_from_args", "__version__"]
