"""3-vector arithmetic for the set-up stage, in the C's exact operation order.

Vectors are plain tuples of Python floats (IEEE doubles, no fused multiply-add), so each
result is bit-identical to the C expression it mirrors. Angles are in radians.
"""
import math


def dot(x, y):
    """x . y, summed left to right."""
    return x[0] * y[0] + x[1] * y[1] + x[2] * y[2]


def cross(x, y):
    """x cross y."""
    return (x[1] * y[2] - x[2] * y[1],
            x[2] * y[0] - x[0] * y[2],
            x[0] * y[1] - x[1] * y[0])


def norm(v):
    """Euclidean length |v|."""
    return math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


def unit(v):
    """(v/|v|, |v|); the zero vector (and length 0) when |v| = 0."""
    length = norm(v)
    if length != 0.0:
        return (v[0] / length, v[1] / length, v[2] / length), length
    return (0.0, 0.0, 0.0), length


def scale(v, factor):
    """factor * v, component-wise (factor on the left, as the C writes it)."""
    return (factor * v[0], factor * v[1], factor * v[2])


def rescale(v, new_length):
    """v stretched to length ``new_length``; a zero vector counts as length 1."""
    old = norm(v)
    if old <= 0.0:
        old = 1.0
    return (new_length / old * v[0], new_length / old * v[1], new_length / old * v[2])


def rot_xyz(v, rx, ry, rz):
    """Rotate about lab x by rx, then lab y by ry, then lab z by rz (radians).

    A zero angle is skipped, exactly as the C does.
    """
    x, y, z = v
    if rx != 0:
        cy, sy = math.cos(rx), math.sin(rx)
        x, y, z = x, y * cy + z * -sy, y * sy + z * cy
    if ry != 0:
        c, s = math.cos(ry), math.sin(ry)
        x, y, z = x * c + y * 0.0 + z * s, y, x * -s + y * 0.0 + z * c
    if rz != 0:
        c, s = math.cos(rz), math.sin(rz)
        x, y, z = x * c + y * -s, x * s + y * c, z
    return (x, y, z)


def rot_axis(v, axis, phi):
    """Right-handed rotation of v by phi (radians) about the unit vector ``axis``."""
    s = math.sin(phi)
    c = math.cos(phi)
    d = (axis[0] * v[0] + axis[1] * v[1] + axis[2] * v[2]) * (1.0 - c)
    return (axis[0] * d + v[0] * c + (-axis[2] * v[1] + axis[1] * v[2]) * s,
            axis[1] * d + v[1] * c + (+axis[2] * v[0] - axis[0] * v[2]) * s,
            axis[2] * d + v[2] * c + (-axis[1] * v[0] + axis[0] * v[1]) * s)


def mat_vec(u, v):
    """Row-major 3x3 matrix ``u`` times column vector v."""
    return (u[0][0] * v[0] + u[0][1] * v[1] + u[0][2] * v[2],
            u[1][0] * v[0] + u[1][1] * v[1] + u[1][2] * v[2],
            u[2][0] * v[0] + u[2][1] * v[1] + u[2][2] * v[2])
