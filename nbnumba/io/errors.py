"""Errors for unreadable or malformed input files, and safe file reading.

Inputs must be regular files (a symbolic link to one is fine): a FIFO, a device such as
``/dev/zero``, a socket or a directory is refused with one line before anything is read,
so an input can neither block a run nor feed it without end. Each reader states how
many bytes its format can sensibly hold (``limit``); a larger file is refused.
"""
import contextlib
import os
import stat

from ..errors import InputFileError  # noqa: F401  (re-exported)

MiB = 1 << 20


def _reason(exc):
    return exc.strerror or str(exc)


def _kind(mode):
    if stat.S_ISDIR(mode):
        return "it is a directory"
    if stat.S_ISFIFO(mode):
        return "it is a FIFO, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "it is a device, not a regular file"
    return "not a regular file"


@contextlib.contextmanager
def open_regular(path, what):
    """Open ``path`` for reading as a binary file object, refusing anything but a regular
    file (never blocks on a FIFO). Yields (file object, size in bytes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except IsADirectoryError:
        raise InputFileError(f"cannot read {what} {path}: it is a directory") from None
    except OSError as exc:
        raise InputFileError(f"cannot read {what} {path}: {_reason(exc)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(f"cannot read {what} {path}: {_kind(st.st_mode)}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        try:
            yield handle, st.st_size
        except OSError as exc:
            raise InputFileError(f"cannot read {what} {path}: {_reason(exc)}") from None


def too_large(path, what, size, limit):
    return InputFileError(f"{what} {path} is too large ({size} bytes; a {what} holds at most "
                          f"{limit} bytes)")


def read_bytes(path, what, limit=64 * MiB):
    """The whole regular file as bytes, at most ``limit`` bytes; InputFileError naming
    ``what`` and the path on failure."""
    with open_regular(path, what) as (handle, size):
        if size > limit:
            raise too_large(path, what, size, limit)
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise too_large(path, what, len(data), limit)
    return data


def read_text(path, what, limit=64 * MiB):
    """The whole file as text (ASCII/UTF-8, undecodable bytes rejected); at most
    ``limit`` bytes."""
    data = read_bytes(path, what, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError(f"{what} {path} is not a text file") from None
