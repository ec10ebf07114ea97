"""The exceptions nbnumba raises for bad input, bad outputs and missing devices.

Every one derives from :class:`NbnumbaError`, so ``except nbnumba.NbnumbaError`` catches
every expected failure of the library (and of :func:`nbnumba.config_from_args`); any
other exception is a bug. Each keeps its older built-in base (``ValueError``,
``OSError``, ``RuntimeError``) so that existing ``except`` clauses still work.
"""


class NbnumbaError(Exception):
    """Base of every error nbnumba raises on purpose. The message is one line."""


class ConfigError(NbnumbaError, ValueError):
    """A configuration value (or a command-line flag) that cannot be simulated. The
    message names it, with its unit and what is expected."""


class FlagError(ConfigError):
    """A command-line flag that is unknown, misspelt or has a bad value (the message
    speaks the flags' units: mm, degrees, Angstrom)."""


class InputFileError(NbnumbaError, ValueError):
    """An input file is missing, unreadable or malformed. The message names the file."""


class OutputError(NbnumbaError, OSError):
    """An output file cannot be written. The message names the file."""


class DeviceError(NbnumbaError, RuntimeError):
    """The requested compute device is not available."""


__all__ = ["NbnumbaError", "ConfigError", "FlagError", "InputFileError", "OutputError",
           "DeviceError"]
