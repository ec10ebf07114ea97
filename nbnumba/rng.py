"""Random numbers exactly as the C nanoBragg draws them.

The C uses the *Numerical Recipes* ``ran1`` generator (Park-Miller minimal standard
with a 32-entry Bays-Durham shuffle) and Poisson / Gaussian deviates computed partly in
single precision. Bit-identical noise images need the same generator, the same float32
roundings and the same order of draws, so this module re-implements them (no library
generator reproduces them).

State model (as in the C):

* each stream (noise, mosaic, misset) owns a signed 64-bit seed;
* the shuffle table (``iy`` and ``iv[32]``) is shared by all streams: a stream whose
  seed is positive continues whatever table the previous stream left;
* the Poisson and Gaussian deviates keep a little cached state between calls.

:class:`RandomTable` holds the shared table; :class:`Stream` one seed. float32
arithmetic is emulated by computing in float64 and rounding with ``np.float32``, which
is exact for + - * / sqrt (double has more than 2*24+2 bits).
"""
import math

import numpy as np

from . import _jit
from .images import c_unsigned

_IA = 16807
_IM = 2147483647
_AM = 1.0 / _IM
_IQ = 127773
_IR = 2836
_NTAB = 32
_NDIV = 1 + (_IM - 1) // _NTAB
_RNMX = 1.0 - 1.2e-7

# slots of the deviate state array (values are float32 numbers stored in float64)
_OLDM, _G, _SQ, _ALXM, _ISET, _GSET = range(6)


@_jit.inline
def _lcg_step(seed):
    """One Park-Miller step by Schrage's method (seed > 0)."""
    k = seed // _IQ
    seed = _IA * (seed - k * _IQ) - _IR * k
    if seed < 0:
        seed += _IM
    return seed


@_jit.serial
def _started(seed, table):
    """A stream's (re)start, as the C's ``ran1`` does it before a draw whose seed is not
    positive (or whose table is empty): the seed is made positive, warms up and fills
    the shuffle slots ``table[1:]``; returns (seed, iy)."""
    seed = 1 if -seed < 1 else -seed
    for j in range(_NTAB + 7, -1, -1):
        seed = _lcg_step(seed)
        if j < _NTAB:
            table[1 + j] = seed
    return seed, table[1]


@_jit.inline
def _next_uniform(seed, iy, table):
    """One draw of a stream whose seed and ``iy`` are held as numbers (so that a loop of
    draws keeps them in registers): (uniform as a float32 value, seed, iy); the shuffle
    slots ``table[1:]`` are updated in place."""
    if seed <= 0 or iy == 0:
        seed, iy = _started(seed, table)
    seed = _lcg_step(seed)
    j = iy // _NDIV
    iy = table[1 + j]
    table[1 + j] = seed
    temp = np.float64(np.float32(_AM * iy))
    if temp > _RNMX:
        temp = np.float64(np.float32(_RNMX))
    return temp, seed, iy


@_jit.serial
def ran1(seed, table):
    """Uniform deviate in (0, 1) as a float32 value; advances ``seed[0]`` and ``table``.

    ``seed`` is an int64 array of length 1 (the stream's seed); ``table`` is the shared
    int64 array ``[iy, iv[0..31]]``.
    """
    temp, next_seed, iy = _next_uniform(seed[0], table[0], table)
    seed[0] = next_seed
    table[0] = iy
    return temp


@_jit.inline
def _count_uniforms(g, seed, iy, table):
    """Poisson deviate of a small mean by the product of uniforms, from a started stream
    held as numbers (as :func:`_next_uniform`): how many draws it takes for their float32
    product to fall to ``g`` = exp(-mean), less one; returns (deviate, seed, iy)."""
    em = -1.0
    t = 1.0
    while True:
        em += 1.0
        u, seed, iy = _next_uniform(seed, iy, table)
        t = np.float64(np.float32(t * u))
        if not (t > g):
            break
    return em, seed, iy


@_jit.inline
def _product_limit(xm, state):
    """exp(-xm) as a float32 value, kept in ``state`` while the mean does not change."""
    if xm != state[_OLDM]:
        state[_OLDM] = xm
        state[_G] = np.float64(np.float32(math.exp(-xm)))
    return state[_G]


@_jit.serial
def gammln(xx):
    """ln Gamma(xx) by the Lanczos series, float32 argument and result (as in the C)."""
    x = xx
    y = xx
    tmp = x + 5.5
    tmp -= (x + 0.5) * math.log(tmp)
    ser = 1.000000000190015
    y += 1.0
    ser += 76.18009172947146 / y
    y += 1.0
    ser += -86.50532032941677 / y
    y += 1.0
    ser += 24.01409824083091 / y
    y += 1.0
    ser += -1.231739572450155 / y
    y += 1.0
    ser += 0.1208650973866179e-2 / y
    y += 1.0
    ser += -0.5395239384953e-5 / y
    return np.float64(np.float32(-tmp + math.log(2.5066282746310005 * ser / x)))


@_jit.serial
def gauss_deviate(seed, table, state):
    """Unit normal deviate (polar Box-Muller with a cached spare), float32 value."""
    if state[_ISET] == 0.0:
        while True:
            v1 = np.float64(np.float32(2.0 * ran1(seed, table) - 1.0))
            v2 = np.float64(np.float32(2.0 * ran1(seed, table) - 1.0))
            rsq = np.float64(np.float32(np.float64(np.float32(v1 * v1)) + np.float64(np.float32(v2 * v2))))
            if not (rsq >= 1.0 or rsq == 0.0):
                break
        fac = np.float64(np.float32(math.sqrt(-2.0 * math.log(rsq) / rsq)))
        state[_GSET] = np.float64(np.float32(v1 * fac))
        state[_ISET] = 1.0
        return np.float64(np.float32(v2 * fac))
    state[_ISET] = 0.0
    return state[_GSET]


@_jit.serial
def poisson_deviate(xm, seed, table, state):
    """Poisson deviate of mean ``xm`` (a float32 value), returned as a float32 value.

    Means below 12 multiply uniforms, means up to 1e6 use rejection from a Lorentzian,
    larger means use a Gaussian approximation (not an integer), exactly as the C.
    """
    if xm > 1.0e6:
        return np.float64(np.float32(xm + math.sqrt(xm) * gauss_deviate(seed, table, state)))
    if xm < 12.0:
        em, next_seed, iy = _count_uniforms(_product_limit(xm, state), seed[0], table[0], table)
        seed[0] = next_seed
        table[0] = iy
        return em
    if xm != state[_OLDM]:
        state[_OLDM] = xm
        state[_SQ] = np.float64(np.float32(math.sqrt(2.0 * xm)))
        state[_ALXM] = np.float64(np.float32(math.log(xm)))
        state[_G] = np.float64(np.float32(
            np.float64(np.float32(xm * state[_ALXM])) - gammln(np.float64(np.float32(xm + 1.0)))))
    sq = state[_SQ]
    alxm = state[_ALXM]
    g = state[_G]
    while True:
        while True:
            y = np.float64(np.float32(math.tan(math.pi * ran1(seed, table))))
            em = np.float64(np.float32(np.float64(np.float32(sq * y)) + xm))
            if not (em < 0.0):
                break
        em = np.float64(np.float32(np.floor(em)))  # NaN stays NaN (math.floor gives -2**63)
        e = np.float64(np.float32(np.float64(np.float32(
            np.float64(np.float32(em * alxm)) - gammln(np.float64(np.float32(em + 1.0))))) - g))
        t = np.float64(np.float32(0.9 * (1.0 + np.float64(np.float32(y * y))) * math.exp(e)))
        if not (ran1(seed, table) > t):
            break
    return em


@_jit.serial_nogil  # releases the GIL: the command writes its other images meanwhile
def _noise_pixels(values, fpixels, spixels, roi, adc, seed, table, state, out):
    """Fill ``out`` (uint16, raster order) with Poisson deviates + ``adc`` inside the ROI.

    Returns (photons, overloads). One deviate is drawn for every pixel inside the ROI,
    masked or not, zero or not, in raster order.
    """
    photons = 0.0
    overloads = 0
    # the stream is held as numbers between draws (kept in registers: twice as fast)
    stream_seed = seed[0]
    iy = table[0]
    for s in range(spixels):
        for f in range(fpixels):
            if f < roi[0] or f > roi[1] or s < roi[2] or s > roi[3]:
                continue
            i = s * fpixels + f
            xm = np.float64(values[i])
            if xm < 12.0:  # poisson_deviate's first case, without storing the stream
                n, stream_seed, iy = _count_uniforms(_product_limit(xm, state), stream_seed,
                                                     iy, table)
            else:
                seed[0] = stream_seed
                table[0] = iy
                n = poisson_deviate(xm, seed, table, state)
                stream_seed = seed[0]
                iy = table[0]
            photons += n
            v = n + adc
            if v > 65535.0:
                v = 65535.0
                overloads += 1
            out[i] = np.uint16(c_unsigned(v) & 0xFFFF)  # the C's (unsigned short) cast
    return photons, overloads


class RandomTable:
    """The shuffle table shared by every random stream of one run (C statics ``iy``, ``iv``)."""

    def __init__(self):
        self.table = np.zeros(1 + _NTAB, dtype=np.int64)

    def copy(self):
        """An independent copy, so that a later stream can continue from this state."""
        other = RandomTable()
        other.table[:] = self.table
        return other


class Stream:
    """One random stream: a C-style seed (internal, usually negative) on a shared table."""

    def __init__(self, internal_seed, table):
        self.seed = np.array([internal_seed], dtype=np.int64)
        self.table = table

    def uniform(self):
        """Next uniform deviate in (0, 1), a float32 value as a Python float."""
        return float(ran1(self.seed, self.table.table))

    def uniforms(self, n):
        """The next ``n`` deviates, as ``n`` calls of :meth:`uniform` give them (float64
        array of float32 values)."""
        out = np.empty(int(n))
        if out.size:
            _fill_uniforms(self.seed, self.table.table, out)
        return out


@_jit.serial
def _fill_uniforms(seed, table, out):
    for i in range(out.size):
        out[i] = ran1(seed, table)


def internal_seed(user_seed):
    """The C's internal seed for a ``-seed N``-style value: ``-N`` (C ``atoi`` of N)."""
    return -int(user_seed)


def noise_image(values, fpixels, spixels, roi, adc, user_seed, table):
    """Poisson noise image from a float32 image, as the C writes ``-noisefile``.

    values: float32 array, raster order (photons per pixel).
    roi: (xmin, xmax, ymin, ymax), inclusive pixel bounds.
    adc: offset added to every deviate (counts).
    user_seed: the ``-seed`` value (the C uses ``-seed``).
    table: the :class:`RandomTable` left by the earlier streams of the run.
    Returns (uint16 array, photons, overloads).
    """
    out = np.zeros(fpixels * spixels, dtype=np.uint16)
    state = np.array([-1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    seed = np.array([internal_seed(user_seed)], dtype=np.int64)
    photons, overloads = _noise_pixels(
        np.ascontiguousarray(values, dtype=np.float32).ravel(), fpixels, spixels,
        np.asarray(roi, dtype=np.int64), float(adc), seed, table.table.copy(), state, out)
    return out, float(photons), int(overloads)


def _libm_powf():
    """The C library's single-precision pow (what the C program calls)."""
    import ctypes
    import ctypes.util
    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    powf = libm.powf
    powf.restype = ctypes.c_float
    powf.argtypes = (ctypes.c_float, ctypes.c_float)
    return powf


_powf = _libm_powf()


def random_cap_rotation(cap, stream):
    """Random rotation matrix (row-major 3x3) within a spherical cap of angle ``cap``.

    Draws three uniforms from ``stream``. ``cap`` is in radians and is rounded to float32,
    the rotation angle ``cap * (1 - r3^2)^(1/3)`` is computed in single precision, the rest
    in double, all as the C's mosaic generator.
    """
    r1 = 2.0 * stream.uniform() - 1.0
    r2 = 2.0 * stream.uniform() - 1.0
    r3 = 2.0 * stream.uniform() - 1.0
    xyrad = math.sqrt(1.0 - r2 * r2)
    rot = float(np.float32(float(np.float32(cap)) * float(_powf(1.0 - r3 * r3, 1.0 / 3.0))))
    v1 = xyrad * math.sin(math.pi * r1)
    v2 = xyrad * math.cos(math.pi * r1)
    v3 = r2
    t1 = math.cos(rot)
    t2 = 1.0 - t1
    t3 = v1 * v1
    t6 = t2 * v1
    t7 = t6 * v2
    t8 = math.sin(rot)
    t9 = t8 * v3
    t11 = t6 * v3
    t12 = t8 * v2
    t15 = v2 * v2
    t19 = t2 * v2 * v3
    t20 = t8 * v1
    t24 = v3 * v3
    return np.array([[t1 + t2 * t3, t7 - t9, t11 + t12],
                     [t7 + t9, t1 + t2 * t15, t19 - t20],
                     [t11 - t12, t19 + t20, t1 + t2 * t24]])


def random_cap_rotations(cap, stream, n):
    """``n`` rotation matrices, shape (n, 3, 3): what ``n`` calls of
    :func:`random_cap_rotation` return, bit for bit (the same draws, the C library's
    ``powf``, ``sin`` and ``cos`` element by element, and NumPy's + - * in the same
    order), without a Python loop over the matrices."""
    n = int(n)
    draws = stream.uniforms(3 * n).reshape(n, 3)
    r1 = 2.0 * draws[:, 0] - 1.0
    r2 = 2.0 * draws[:, 1] - 1.0
    r3 = 2.0 * draws[:, 2] - 1.0
    xyrad = np.sqrt(1.0 - r2 * r2)
    powers = np.fromiter(map(_powf, (1.0 - r3 * r3).tolist(), [1.0 / 3.0] * n), np.float64, n)
    rot = (float(np.float32(cap)) * powers).astype(np.float32).astype(np.float64)
    angle = (math.pi * r1).tolist()
    v1 = xyrad * np.fromiter(map(math.sin, angle), np.float64, n)
    v2 = xyrad * np.fromiter(map(math.cos, angle), np.float64, n)
    v3 = r2
    rot = rot.tolist()
    t1 = np.fromiter(map(math.cos, rot), np.float64, n)
    t8 = np.fromiter(map(math.sin, rot), np.float64, n)
    t2 = 1.0 - t1
    t3 = v1 * v1
    t6 = t2 * v1
    t7 = t6 * v2
    t9 = t8 * v3
    t11 = t6 * v3
    t12 = t8 * v2
    t15 = v2 * v2
    t19 = t2 * v2 * v3
    t20 = t8 * v1
    t24 = v3 * v3
    out = np.empty((n, 3, 3))
    out[:, 0, 0], out[:, 0, 1], out[:, 0, 2] = t1 + t2 * t3, t7 - t9, t11 + t12
    out[:, 1, 0], out[:, 1, 1], out[:, 1, 2] = t7 + t9, t1 + t2 * t15, t19 - t20
    out[:, 2, 0], out[:, 2, 1], out[:, 2, 2] = t11 - t12, t19 + t20, t1 + t2 * t24
    return out


def _unit_rows(u):
    for row in u:
        norm = math.sqrt(row[0] * row[0] + row[1] * row[1] + row[2] * row[2])
        if norm > 0:
            row[0] /= norm
            row[1] /= norm
            row[2] /= norm


def rotation_to_missets(umat):
    """XYZ missetting angles (radians) of a rotation matrix, as the C extracts them.

    The rows are normalised twice (the C's repair of zero rows is a no-op for a proper
    rotation), then the angles come from atan2 of the matrix elements.
    """
    u = [list(map(float, row)) for row in np.asarray(umat)]
    _unit_rows(u)
    _unit_rows(u)
    (uxx, uxy, _), (uyx, uyy, _), (uzx, uzy, uzz) = u
    if uzx * uzx < 1.0:
        return (math.atan2(uzy, uzz), math.atan2(-uzx, math.sqrt(uzy * uzy + uzz * uzz)),
                math.atan2(uyx, uxx))
    return math.atan2(1, 1) * 4, math.atan2(1, 1) * 2, math.atan2(uxy, -uyy)
