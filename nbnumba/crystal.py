"""Crystal set-up: unit cell, orientation, size in cells, mosaic domains, rotation table.

Follows ``spec/crystal.md`` in the C's operation order. Reciprocal vectors are in
1/Angstrom, real-space vectors in Angstrom until converted to metres for rendering.
"""
import math
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from . import rng, vec
from .config import CrystalConfig
from .constants import DBL_MIN, RTD
from .errors import ConfigError

Vector3 = Tuple[float, float, float]


class CrystalError(ConfigError):
    """A crystal description that cannot be turned into a lattice."""


def reciprocal_from_cell(cell, messages):
    """Reciprocal vectors (1/Angstrom) of a cell in the C's default orientation.

    cell: (a, b, c, alpha, beta, gamma), Angstrom and radians; non-positive b, c default
    to a and non-positive angles to 90 degrees. Returns (a*, b*, c*, V) with V the cell
    volume in Angstrom^3.
    """
    a, b, c, alpha, beta, gamma = cell
    if b <= 0.0:
        b = a
    if c <= 0.0:
        c = a
    if alpha <= 0.0:
        alpha = math.pi / 2
    if beta <= 0.0:
        beta = math.pi / 2
    if gamma <= 0.0:
        gamma = math.pi / 2
    aavg = (alpha + beta + gamma) / 2
    skew = math.sin(aavg) * math.sin(aavg - alpha) * math.sin(aavg - beta) * math.sin(aavg - gamma)
    if skew < 0.0:
        skew = -skew
    volume = 2.0 * a * b * c * math.sqrt(skew)
    if not (volume > 0.0 and math.isfinite(volume)):
        # the C warns and carries on with a meaningless cell; nbnumba stops
        raise CrystalError(f"impossible unit cell: volume {volume:g} A^3")
    v_star = 1.0 / volume
    as_len = b * c * math.sin(alpha) * v_star
    bs_len = c * a * math.sin(beta) * v_star
    cs_len = a * b * math.sin(gamma) * v_star
    if as_len <= 0.0 or bs_len <= 0.0 or cs_len <= 0.0:
        messages.append(f"WARNING: impossible reciprocal cell lengths: {as_len:g} {bs_len:g} {cs_len:g}")
        as_len, bs_len, cs_len = (abs(x) if abs(x) > 0.0 else DBL_MIN
                                  for x in (as_len, bs_len, cs_len))
    sin_gs = c * v_star / as_len / bs_len
    cos_as = (math.cos(beta) * math.cos(gamma) - math.cos(alpha)) / (math.sin(beta) * math.sin(gamma))
    cos_bs = (math.cos(gamma) * math.cos(alpha) - math.cos(beta)) / (math.sin(gamma) * math.sin(alpha))
    cos_gs = (math.cos(alpha) * math.cos(beta) - math.cos(gamma)) / (math.sin(alpha) * math.sin(beta))
    sin_gs = min(max(sin_gs, -1.0), 1.0)
    cos_as, cos_bs, cos_gs = (1.0 if x * x > 1.0 else x for x in (cos_as, cos_bs, cos_gs))
    a_star = (as_len, 0.0, 0.0)
    b_star = (bs_len * cos_gs, bs_len * sin_gs, 0.0)
    c_star = (cs_len * cos_bs, cs_len * (cos_as - cos_bs * cos_gs) / sin_gs,
              cs_len * volume / (a * b * c * sin_gs))
    return a_star, b_star, c_star, (a, b, c, volume)


def reciprocal_from_matrix(a_matrix, wavelength):
    """Reciprocal vectors (1/Angstrom) from a MOSFLM A matrix (columns a*, b*, c* x lambda).

    wavelength: lambda0 in metres; the matrix is divided by lambda in Angstrom.
    """
    m = np.asarray(a_matrix, dtype=float).reshape(3, 3)
    factor = 1e-10 / wavelength
    return tuple(vec.scale((float(m[0, j]), float(m[1, j]), float(m[2, j])), factor) for j in range(3))


def _angles(x, y, z, vol_ratio_x, vol_ratio_y, vol_ratio_z, messages, label):
    """Cell angles from sines (volume ratios) and cosines (dot products), clamped like the C."""
    lx, ly, lz = vec.norm(x), vec.norm(y), vec.norm(z)
    sines = [vol_ratio_x, vol_ratio_y, vol_ratio_z]
    cosines = [vec.dot(y, z) / ly / lz, vec.dot(x, z) / lx / lz, vec.dot(x, y) / lx / ly]
    if any(abs(v) > 1.0000001 for v in sines + cosines):
        messages.append(f"WARNING: oddball {label} angles")
    sines = [min(max(v, -1.0), 1.0) for v in sines]
    cosines = [1.0 if v * v > 1.0 else v for v in cosines]
    return tuple(math.atan2(s, c) for s, c in zip(sines, cosines))


def _check_representable(volume, v_star, lengths, source):
    """Refuse a cell whose volume or edge lengths leave the range of doubles.

    volume: Angstrom^3 and v_star: 1/Angstrom^3 (either sign); lengths: real (Angstrom)
    and reciprocal (1/Angstrom) edge lengths. Such cells (edges beyond about 1e100
    Angstrom or below 1e-100) make the angle formulas divide by zero or infinity.
    """
    values = (abs(volume), abs(v_star)) + tuple(lengths)
    if all(0.0 < x < math.inf for x in values):
        return
    raise CrystalError(f"the unit cell from {source} is out of range (volume {abs(volume):g} "
                       "A^3; the C program renders a meaningless image); give a cell with "
                       "edges between about 1e-100 and 1e100 A")


@dataclass
class Lattice:
    """The oriented crystal at phi = 0, before mosaic rotation."""
    a: Vector3            #: real-space vectors, m
    b: Vector3
    c: Vector3
    a_star: Vector3       #: reciprocal vectors, 1/Angstrom (used by non-square shapes)
    b_star: Vector3
    c_star: Vector3
    volume: float         #: Angstrom^3
    cell: Tuple[float, ...]        #: a, b, c (Angstrom), alpha, beta, gamma (rad)
    reciprocal_cell: Tuple[float, ...]  #: a*, b*, c* (1/Angstrom), angles (rad)
    misset: Optional[Vector3]      #: applied missetting angles, rad
    random_misset: bool
    messages: List[str] = field(default_factory=list)
    misset_seed: Optional[int] = None   #: the seed of a random misset (given or the clock's)


def build_lattice(cr: CrystalConfig, wavelength, rng_table) -> Lattice:
    """Cell, orientation matrix and missetting to real and reciprocal vectors (crystal.md 1-4).

    rng_table: the run's shared :class:`nbnumba.rng.RandomTable` (random misset draws).
    """
    messages = []
    user = None
    a_star = b_star = c_star = (0.0, 0.0, 0.0)
    if cr.cell is not None:
        a_star, b_star, c_star, user = reciprocal_from_cell(cr.cell, messages)
    if cr.a_matrix is not None:
        a_star, b_star, c_star = reciprocal_from_matrix(cr.a_matrix, wavelength)
        if vec.dot(a_star, vec.cross(b_star, c_star)) == 0.0:
            raise CrystalError("the orientation matrix (-mat, CrystalConfig.a_matrix) is "
                               "singular: its columns a*, b*, c* do not span a cell "
                               "(determinant 0)")
    if cr.cell is None and cr.a_matrix is None:
        raise CrystalError("no unit cell: give a cell (-cell) or an orientation matrix (-mat)")

    misset = None
    random_misset = False
    seed = None
    if isinstance(cr.misset, str):
        if cr.misset != "random":
            raise CrystalError(f"misset must be three angles or 'random', got {cr.misset!r}")
        seed = cr.misset_seed if cr.misset_seed is not None else int(time.time())
        umat = rng.random_cap_rotation(90.0, rng.Stream(rng.internal_seed(seed), rng_table))
        misset = rng.rotation_to_missets(umat)
        random_misset = True
        messages.append("random orientation misset angles: %f %f %f deg"
                        % tuple(x * RTD for x in misset))
    elif cr.misset is not None:
        misset = tuple(float(x) for x in cr.misset)
    if misset is not None:
        a_star, b_star, c_star = (vec.rot_xyz(v, *misset) for v in (a_star, b_star, c_star))

    axb = vec.cross(a_star, b_star)
    bxc = vec.cross(b_star, c_star)
    cxa = vec.cross(c_star, a_star)
    v_star = vec.dot(a_star, bxc)
    if user is not None:
        ua, ub, uc, uvol = user
        bxc = vec.rescale(bxc, ua / uvol)
        cxa = vec.rescale(cxa, ub / uvol)
        axb = vec.rescale(axb, uc / uvol)
        v_star = 1.0 / uvol
    source = "-mat" if cr.a_matrix is not None else "-cell"
    if not 0.0 < abs(v_star) < math.inf:
        _check_representable(math.inf if v_star == 0.0 else 0.0, v_star, (), source)
    volume = 1.0 / v_star
    a = vec.scale(bxc, volume)
    b = vec.scale(cxa, volume)
    c = vec.scale(axb, volume)
    a_star = vec.scale(vec.cross(b, c), v_star)
    b_star = vec.scale(vec.cross(c, a), v_star)
    c_star = vec.scale(vec.cross(a, b), v_star)

    la, lb, lc = vec.norm(a), vec.norm(b), vec.norm(c)
    las, lbs, lcs = vec.norm(a_star), vec.norm(b_star), vec.norm(c_star)
    _check_representable(volume, v_star, (la, lb, lc, las, lbs, lcs), source)
    angles = _angles(a, b, c, las * volume / lb / lc, lbs * volume / la / lc,
                     lcs * volume / la / lb, messages, "cell")
    star_angles = _angles(a_star, b_star, c_star, la * v_star / lbs / lcs,
                          lb * v_star / las / lcs, lc * v_star / las / lbs, messages,
                          "reciprocal cell")
    return Lattice(
        a=vec.scale(a, 1e-10), b=vec.scale(b, 1e-10), c=vec.scale(c, 1e-10),
        a_star=a_star, b_star=b_star, c_star=c_star, volume=volume,
        cell=(la, lb, lc) + angles, reciprocal_cell=(las, lbs, lcs) + star_angles,
        misset=misset, random_misset=random_misset, messages=messages, misset_seed=seed)


def cells_per_axis(cr: CrystalConfig, lattice: Lattice, sample_size):
    """(Na, Nb, Nc) as floats: a crystal size wins over a cell count; at least 1 each.

    sample_size: (x, y, z) in metres after clipping by the beam size.
    """
    counts = []
    for given, size, edge in zip((cr.na, cr.nb, cr.nc), sample_size,
                                 (lattice.a, lattice.b, lattice.c)):
        n = float(given)
        if size > 0:
            n = float(math.ceil(size / vec.norm(edge)))
        counts.append(max(n, 1.0))
    return tuple(counts)


def mosaic_rotations(spread, domains, mosaic_seed, rng_table):
    """Rotation matrices of the mosaic domains, shape (domains, 3, 3), row-major.

    Domain 0 is the identity (after its three random numbers were drawn). spread: rad.
    """
    stream = rng.Stream(rng.internal_seed(mosaic_seed), rng_table)
    mats = rng.random_cap_rotations(spread, stream, domains)
    if domains:
        mats[0] = np.eye(3)
    return mats


def phi_angles(phi0, phi_step, phi_steps, midpoints=False):
    """Spindle angle of every phi step, rad: phi0 + step * k (the C's), or with
    ``midpoints`` phi0 + step * (k + 1/2), k = 0 .. phi_steps - 1 (float64 array, the
    same doubles as the scalar expression for each k)."""
    k = np.arange(int(phi_steps), dtype=np.float64)
    return phi0 + phi_step * (k + 0.5 if midpoints else k)


def _sines(angles):
    """(sin, cos) of every angle (rad) from the C library's functions, as the scalar code
    computes them (NumPy's own vectorised sine may differ in the last bit)."""
    angles = [float(x) for x in angles]
    n = len(angles)
    return (np.fromiter(map(math.sin, angles), np.float64, n),
            np.fromiter(map(math.cos, angles), np.float64, n))


def _rotated_cells(lattice, spindle, phis):
    """a, b, c rotated by every phi about the spindle: (n_phi, 3 vectors, 3), metres.

    Evaluates :func:`nbnumba.vec.rot_axis` element-wise over phi in its operation order
    (NumPy's float64 + - * round as Python's do, so each element is bit-identical).
    """
    s, c = _sines(phis)
    one_minus_c = 1.0 - c
    x, y, z = (float(t) for t in spindle)
    out = np.empty((len(s), 3, 3))
    for j, v in enumerate((lattice.a, lattice.b, lattice.c)):
        v0, v1, v2 = (float(t) for t in v)
        d = (x * v0 + y * v1 + z * v2) * one_minus_c
        out[:, j, 0] = x * d + v0 * c + (-z * v1 + y * v2) * s
        out[:, j, 1] = y * d + v1 * c + (+z * v0 - x * v2) * s
        out[:, j, 2] = z * d + v2 * c + (-y * v0 + x * v1) * s
    return out


def rotation_table(lattice: Lattice, spindle, phis, mosaic, spread):
    """Real-space cell vectors for every (phi step, mosaic domain), phi outermost.

    Returns float64 array (n_phi * n_domains, 3, 3) whose [i, 0], [i, 1], [i, 2] rows
    are a, b, c (metres). Every step rotates the phi = 0 crystal by its own angle
    (nbnumba's correction of the C's stale phi = 0 orientation); the mosaic matrix is
    applied after the spindle rotation only when the spread is positive.

    Vectorised with NumPy in the scalar operation order of :func:`nbnumba.vec.rot_axis`
    and :func:`nbnumba.vec.mat_vec` (left to right, no fused multiply-add), so every
    element is bit-identical to rotating one vector at a time.
    """
    mosaic = np.asarray(mosaic, dtype=np.float64).reshape(-1, 3, 3)
    rotated = _rotated_cells(lattice, spindle, phis)        # (P, 3 vectors, 3)
    n_phi, n_mos = rotated.shape[0], mosaic.shape[0]
    table = np.empty((n_phi, n_mos, 3, 3))
    if not spread > 0.0:
        table[...] = rotated[:, None, :, :]
        return table.reshape(n_phi * n_mos, 3, 3)
    # table[p, m, j, r] = u[m, r, 0] v[p, j, 0] + u[m, r, 1] v[p, j, 1] + u[m, r, 2] v[p, j, 2]
    # (summed left to right), per (j, r) over contiguous (P, M) planes, then laid out
    out = np.empty((3, 3, n_phi, n_mos))
    term = np.empty((n_phi, n_mos))
    for j in range(3):
        for r in range(3):
            plane = out[j, r]
            for k in range(3):
                target = plane if k == 0 else term
                np.multiply(rotated[:, j, k, None], mosaic[None, :, r, k], out=target)
                if k:
                    plane += term
    table[...] = out.transpose(2, 3, 0, 1)
    return table.reshape(n_phi * n_mos, 3, 3)
