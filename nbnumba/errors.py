"""The exceptions nbnumba raises for bad input, bad outputs and missing devices, and how
it issues warnings.

Every exception derives from :class:`NbnumbaError`, so ``except nbnumba.NbnumbaError``
catches every expected failure of the library (and of :func:`nbnumba.config_from_args`);
any other exception is a bug. Each keeps its older built-in base (``ValueError``,
``OSError``, ``RuntimeError``) so that existing ``except`` clauses still work.

Warnings (:func:`warn_caller`) point at the caller's line, outside nbnumba, however deep
in the library they arise.
"""
import sys
import warnings


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


def check_callback(function, what, arguments):
    """ConfigError unless ``function`` can be called with the names in ``arguments``
    (a tuple of parameter names, e.g. ``("line",)``), found before any work rather than
    in the middle of it. ``what`` names the parameter in the message (``"noisify: say"``).
    A class is refused (``say=int`` would turn the text into an error); a built-in
    function whose signature cannot be read is accepted and called as documented."""
    import inspect
    wanted = "(%s)" % ", ".join(arguments)
    if not callable(function) or isinstance(function, type):
        kind = "a class" if isinstance(function, type) else type(function).__name__
        raise ConfigError(f"{what} must be None or a function {wanted}, got {kind}")
    try:
        inspect.signature(function).bind(*range(len(arguments)))
    except TypeError:
        count = {1: "one argument", 2: "two arguments"}.get(len(arguments),
                                                             f"{len(arguments)} arguments")
        raise ConfigError(f"{what}: a function taking {count} {wanted} is needed; "
                          f"{getattr(function, '__qualname__', function)!r} does not take "
                          "them") from None
    except ValueError:  # no signature to read (some built-ins): called as documented
        pass


def _caller_frame():
    """The innermost frame outside nbnumba (and outside the ``contextlib`` and
    ``functools`` wrappers of its entry points), or None."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "") or ""
        if not (name in ("nbnumba", "contextlib", "functools") or name.startswith("nbnumba.")):
            return frame
        frame = frame.f_back
    return None


def warn_caller(message, category=UserWarning):
    """Issue a warning attributed to the caller's line (the first frame outside nbnumba),
    under Python's usual filters (by default once per line)."""
    frame = _caller_frame()
    if frame is None:
        warnings.warn(message, category, stacklevel=2)
        return
    registry = frame.f_globals.setdefault("__warningregistry__", {})
    warnings.warn_explicit(message, category, frame.f_code.co_filename, frame.f_lineno,
                           module=frame.f_globals.get("__name__"), registry=registry,
                           module_globals=frame.f_globals)


__all__ = ["NbnumbaError", "ConfigError", "FlagError", "InputFileError", "OutputError",
           "DeviceError"]
