"""Orientation matrix files (``-mat``): a MOSFLM A matrix in the first nine numbers.

The three rows hold the x, y and z components of a*, b*, c* multiplied by the
wavelength (so the columns are the reciprocal vectors). Anything after the ninth number
(the rest of a MOSFLM .mat file) is ignored.
"""
import numpy as np

from .errors import MiB, InputFileError, read_text

#: largest matrix file read (bytes): a MOSFLM .mat file is a few hundred bytes
MAX_FILE_BYTES = 1 * MiB


def parse_matrix(text, name="matrix file"):
    """The 3x3 A matrix (rows as in the file) from the first nine numbers of ``text``."""
    numbers = []
    for token in text.split():
        if len(numbers) == 9:
            break
        try:
            numbers.append(float(token))
        except ValueError:
            raise InputFileError(f"{name}: {token!r} is not a number "
                                 f"(expected 9 numbers, found {len(numbers)})") from None
    if len(numbers) < 9:
        raise InputFileError(f"{name}: expected 9 numbers (a 3x3 A matrix), found {len(numbers)}")
    matrix = np.array(numbers).reshape(3, 3)
    if not np.all(np.isfinite(matrix)):
        raise InputFileError(f"{name}: matrix elements must be finite numbers")
    with np.errstate(over="ignore", under="ignore"):
        determinant = np.linalg.det(matrix)
    if abs(determinant) == 0.0:
        raise InputFileError(f"{name}: the A matrix is singular")
    return matrix


def read_matrix(path):
    """Read a ``-mat`` file into a 3x3 array."""
    return parse_matrix(read_text(path, "matrix file", MAX_FILE_BYTES), name=str(path))
