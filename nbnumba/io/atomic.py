"""Atomic file output: write to a temporary name in the target directory, then rename.

An interrupted or failed run therefore never leaves a half-written file, and an
existing file keeps its old content until the new one is complete.
"""
import contextlib
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


def _write_temp(path, data):
    """Write ``data`` (bytes or a list of byte chunks) to a new temporary file next to
    ``path``; returns its name."""
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
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    return tmp


class FileSet:
    """Output files replaced together, as a ``with`` block.

    Each file is written to a temporary name in its directory as soon as it is staged;
    leaving the block normally renames them all into place, an exception removes them,
    so a run that fails part-way replaces none of its outputs.
    """

    def __init__(self):
        self._staged = []

    def stage(self, path, data):
        """Write ``data`` (bytes or byte chunks) for ``path`` under a temporary name."""
        self._staged.append((_write_temp(path, data), path))

    def commit(self):
        """Rename every staged file into place."""
        try:
            while self._staged:
                tmp, path = self._staged[0]
                os.replace(tmp, path)
                self._staged.pop(0)
        except OSError as exc:
            self.discard()
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None

    def discard(self):
        """Remove every staged file."""
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._staged = []

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.commit()
        else:
            self.discard()
        return False


def write_atomic(path, data):
    """Write ``data`` (bytes, or a list of byte chunks) to ``path`` atomically."""
    with FileSet() as files:
        files.stage(path, data)
