"""Atomic file output: write to a temporary name in the target directory, then rename.

An interrupted or failed run therefore never leaves a half-written file, and an
existing file keeps its old content until the new one is complete.
"""
import os
import tempfile


def _default_mode():
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _default_mode()


class OutputError(OSError):
    """An output file cannot be written. The message names the file."""


def temp_prefix(path):
    """Start of the temporary names used while writing ``path``:
    ``.nbnumba-<name>.`` (then random characters and ``.part``)."""
    return ".nbnumba-" + os.path.basename(path) + "."


def check_writable(path):
    """Fail early (before any rendering) if ``path`` cannot be created or replaced."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(directory):
        raise OutputError(f"cannot write {path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise OutputError(f"cannot write {path}: it is a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: no write permission in {directory}")


def write_atomic(path, data):
    """Write ``data`` (bytes, or a list of byte chunks) to ``path`` atomically."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    chunks = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".part", dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
