"""Errors for unreadable or malformed input files, and safe file reading."""


class InputFileError(ValueError):
    """An input file is missing, unreadable or malformed. The message names the file."""


def _reason(exc):
    return exc.strerror or str(exc)


def read_bytes(path, what):
    """The whole file as bytes; InputFileError naming ``what`` and the path on failure."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except IsADirectoryError:
        raise InputFileError(f"cannot read {what} {path}: it is a directory") from None
    except OSError as exc:
        raise InputFileError(f"cannot read {what} {path}: {_reason(exc)}") from None


def read_text(path, what):
    """The whole file as text (ASCII/UTF-8, undecodable bytes rejected)."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError(f"{what} {path} is not a text file") from None
