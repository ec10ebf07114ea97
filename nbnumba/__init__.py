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

Neither importing nbnumba nor simulating imports ``scipy.linalg`` (see
``nbnumba._jit.no_blas_probe``), so ``dxtbx`` from a pip-installed cctbx can be imported
afterwards.
"""
from .config import (BeamConfig, ConfigError, CrystalConfig, DetectorConfig, RenderConfig,
                     SimulationConfig, SourceList, StructureFactors, check_units)
from .engine import Result, Setup, prepare, render, simulate
from .output import (IntegerImage, NoiseImage, PGMImage, make_int_image, make_noise_image,
                     make_pgm, smv_header, write_float_image, write_pgm, write_smv_image)
from .toolbox import NonBraggConfig, StolTable, nonbragg, noisify

__version__ = "0.1.0"


def config_from_args(argv, cwd="."):
    """(SimulationConfig, OutputOptions) from the C program's command-line flags.

    Reads the files the flags name (-hkl, -mat, -sourcefile, -img, -mask), exactly as the
    ``nbnumba`` command does; the flags' units (mm, degrees, Angstrom ...) are converted
    to the configuration's as the C converts them.
    """
    from nbnumba_cli.parse import config_from_args as _from_args
    return _from_args(argv, cwd)


__all__ = ["BeamConfig", "CrystalConfig", "DetectorConfig", "RenderConfig", "SimulationConfig",
           "SourceList", "StructureFactors", "ConfigError", "check_units", "Result", "Setup",
           "prepare", "render", "simulate", "config_from_args",
           "IntegerImage", "NoiseImage", "PGMImage", "make_int_image", "make_noise_image",
           "make_pgm", "smv_header", "write_float_image", "write_pgm", "write_smv_image",
           "nonbragg", "noisify", "NonBraggConfig", "StolTable",
           "__version__"]
