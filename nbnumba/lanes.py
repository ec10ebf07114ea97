"""Several pixels of a row at once: the loop nest of :mod:`nbnumba.pixel` with the pixel
innermost, so that the compiler computes neighbouring pixels in SIMD lanes.

:func:`render_chunk` renders up to :data:`LANES` consecutive pixels of one row. It walks
the same nest as :func:`nbnumba.pixel.render_pixel` (sensor layer, sub-pixel row and
column, source, phi step, mosaic domain) but each step is a loop over the pixels of the
chunk, and every quantity a pixel carries from step to step (its running sum, the cached
solid angle, polarization and capture fraction, the diffracted direction) lives in one
flat scratch array, field ``F`` of pixel ``j`` at ``F * LANES + j``. The fields are a
compile-time constant apart, so the compiler can prove that the loops' loads and stores
do not overlap and vectorises them without run-time checks.

Each pixel's arithmetic is the scalar driver's, expression for expression and in the
same order (the conditions become selects), so the images are bit-identical with it and
with the C program. Steps that need the C library's ``exp``, ``atan2`` or ``cos`` (capture
fraction, polarization with a Kahn factor) are loops of their own that stay scalar; the
steps that run once per evaluation (scattering vector, Miller indices, lattice factor
with the vectorisable sine, structure-factor look-up and the running sum) vectorise.

Not covered (the scalar driver renders these): tricubic interpolation, whose switch-off
rule depends on the visiting order, and the curved detector, whose sub-pixel positions
need libm sines.
"""
import math

import numpy as np

from . import _jit
from .physics import ROUND, SQUARE, capture_fraction, polarization_factor
from .pixel import (finish_pixel, grid_high, grid_low, lattice_and_index, miller,
                    reciprocal_vectors, solid_angle)

#: pixels per chunk: the length of every vectorised loop
LANES = 64

# fields of the per-thread scratch array: field F of pixel j is at F * LANES + j
_DX, _DY, _DZ = 0, 1, 2          # diffracted direction (unit; re-normalised by polarization)
_OMEGA, _OMEGA_SUM = 3, 4        # cached solid angle (sr), sum of the solid angles used
_CAPTURE, _POLAR = 5, 6          # cached capture fraction, polarization factor
_INTENSITY = 7                   # running sum
_QX, _QY, _QZ = 8, 9, 10         # scattering vector of the current source (1/m)
_LIVE = 11                       # 1.0: the current source survives the dmin cut
_PARALLAX = 12                   # d . o of the current sub-pixel
_F_LATT, _F_INDEX = 13, 14       # lattice factor, flat F-grid index (-1: outside)
#: number of fields
FIELDS = 15


@_jit.inline
def scratch():
    """A thread's scratch array for :func:`render_chunk`."""
    return np.empty(FIELDS * LANES)


@_jit.inline
def _start_pixels(st, n, sums, beam):
    """Initial state of n pixels: background sum, no cached factors."""
    polar0 = 1.0 if beam.no_polar else 0.0
    for j in range(n):
        st[_INTENSITY * LANES + j] = sums.i_bg
        st[_POLAR * LANES + j] = polar0
        st[_OMEGA * LANES + j] = 0.0
        st[_OMEGA_SUM * LANES + j] = 0.0
        st[_CAPTURE * LANES + j] = 0.0


@_jit.inline
def _subpixel_step(st, n, f0, si, sub_f, sub_s, odist, subpixel, det, over_omega):
    """Direction, distance, solid angle (cached unless -oversample_omega) and parallax of
    one sub-pixel of pixels f0 .. f0+n-1 of row si (flat detector)."""
    for j in range(n):
        ns = det.oversample
        fdist = subpixel * ((f0 + j) * ns + sub_f) + subpixel / 2.0
        sdist = subpixel * (si * ns + sub_s) + subpixel / 2.0
        px = fdist * det.f_x + sdist * det.s_x + odist * det.o_x + det.pix0_x
        py = fdist * det.f_y + sdist * det.s_y + odist * det.o_y + det.pix0_y
        pz = fdist * det.f_z + sdist * det.s_z + odist * det.o_z + det.pix0_z
        airpath = math.sqrt(px * px + py * py + pz * pz)
        dx = px / airpath
        dy = py / airpath
        dz = pz / airpath
        st[_DX * LANES + j] = dx
        st[_DY * LANES + j] = dy
        st[_DZ * LANES + j] = dz
        omega = st[_OMEGA * LANES + j]
        omega = solid_angle(airpath, det) if (omega == 0.0 or over_omega) else omega
        st[_OMEGA * LANES + j] = omega
        st[_OMEGA_SUM * LANES + j] += omega
        st[_PARALLAX * LANES + j] = dx * det.o_x + dy * det.o_y + dz * det.o_z


@_jit.inline
def _capture_step(st, n, layer, det, over_thick):
    """Capture fraction of this layer where not cached yet (libm exp: scalar)."""
    for j in range(n):
        if st[_CAPTURE * LANES + j] == 0.0 or over_thick:
            st[_CAPTURE * LANES + j] = capture_fraction(layer, det.layer_step, det.mu,
                                                        st[_PARALLAX * LANES + j])


@_jit.inline
def _source_step(st, n, ix, iy, iz, lam, dmin):
    """Scattering vector of one source for every pixel, and the dmin cut (field _LIVE)."""
    for j in range(n):
        st[_QX * LANES + j] = (st[_DX * LANES + j] - ix) / lam
        st[_QY * LANES + j] = (st[_DY * LANES + j] - iy) / lam
        st[_QZ * LANES + j] = (st[_DZ * LANES + j] - iz) / lam
    if dmin > 0.0:
        for j in range(n):
            qx = st[_QX * LANES + j]
            qy = st[_QY * LANES + j]
            qz = st[_QZ * LANES + j]
            stol = 0.5 * math.sqrt(qx * qx + qy * qy + qz * qz)
            st[_LIVE * LANES + j] = 0.0 if (stol > 0.0 and dmin > 0.5 / stol) else 1.0
    else:
        for j in range(n):
            st[_LIVE * LANES + j] = 1.0


@_jit.inline
def _polarization_due(st, n, over_polar):
    """Whether any pixel needs its polarization factor for the current source (it is
    cached from the first live source of the pixel unless -oversample_polar)."""
    due = 0.0
    for j in range(n):
        first = st[_POLAR * LANES + j] == 0.0 or over_polar
        due += st[_LIVE * LANES + j] if first else 0.0
    return due > 0.0


@_jit.inline
def _unit(x, y, z):
    """(x, y, z) divided by its length, unchanged when the length is 0."""
    mag = math.sqrt(x * x + y * y + z * z)
    nonzero = mag != 0.0
    return (x / mag if nonzero else x, y / mag if nonzero else y, z / mag if nonzero else z)


@_jit.inline
def _polar_step_unpolarized(st, n, ix, iy, iz, kahn, over_polar):
    """Polarization factor where due, for a Kahn factor of 0 (psi = 0, cos(2 psi) = 1):
    the same expressions as :func:`nbnumba.physics.polarization_factor`, vectorisable.
    ix, iy, iz: the incident direction, already normalised as that function does."""
    for j in range(n):
        polar = st[_POLAR * LANES + j]
        due = st[_LIVE * LANES + j] != 0.0 and (polar == 0.0 or over_polar)
        dx, dy, dz = _unit(st[_DX * LANES + j], st[_DY * LANES + j], st[_DZ * LANES + j])
        cos2theta = ix * dx + iy * dy + iz * dz
        cos2theta_sqr = cos2theta * cos2theta
        sin2theta_sqr = 1 - cos2theta_sqr
        factor = 0.5 * (1.0 + cos2theta_sqr - kahn * 1.0 * sin2theta_sqr)
        if due:
            st[_POLAR * LANES + j] = factor
            st[_DX * LANES + j] = dx
            st[_DY * LANES + j] = dy
            st[_DZ * LANES + j] = dz


@_jit.inline
def _polar_step(st, n, ix, iy, iz, beam, over_polar):
    """Polarization factor where due, with the Kahn factor (libm atan2, cos: scalar)."""
    for j in range(n):
        polar = st[_POLAR * LANES + j]
        if st[_LIVE * LANES + j] != 0.0 and (polar == 0.0 or over_polar):
            polar, dx, dy, dz = polarization_factor(
                beam.kahn, ix, iy, iz, st[_DX * LANES + j], st[_DY * LANES + j],
                st[_DZ * LANES + j], beam.pol_x, beam.pol_y, beam.pol_z)
            st[_POLAR * LANES + j] = polar
            st[_DX * LANES + j] = dx
            st[_DY * LANES + j] = dy
            st[_DZ * LANES + j] = dz


@_jit.scalar
def _lattice_any_shape(h, k, l, latt, recip, lo, hi, grid):
    """(F_latt, flat F-grid index or -1) of one evaluation, any shape and sine."""
    return lattice_and_index(h, k, l, latt, latt.shape, latt.fast_trig, recip, lo, hi, grid)


@_jit.inline
def _lattice_step(st, n, cells_t, c, latt, grid):
    """Lattice factor and nearest-reflection index (field ``_F_INDEX``, -1: outside the
    grid) of one (phi, mosaic) crystal setting for every pixel. The common shapes with
    the vectorisable sine get loops of their own (a loop over a libm call does not
    vectorise)."""
    lo = grid_low(grid)
    hi = grid_high(grid)
    recip = reciprocal_vectors(latt)
    if latt.shape == SQUARE and latt.fast_trig:
        for j in range(n):
            h, k, l = miller(cells_t, c, st[_QX * LANES + j], st[_QY * LANES + j],
                             st[_QZ * LANES + j])
            f_latt, idx = lattice_and_index(h, k, l, latt, SQUARE, True, recip, lo, hi, grid)
            st[_F_LATT * LANES + j] = f_latt
            st[_F_INDEX * LANES + j] = idx
    elif latt.shape == ROUND and latt.fast_trig:
        for j in range(n):
            h, k, l = miller(cells_t, c, st[_QX * LANES + j], st[_QY * LANES + j],
                             st[_QZ * LANES + j])
            f_latt, idx = lattice_and_index(h, k, l, latt, ROUND, True, recip, lo, hi, grid)
            st[_F_LATT * LANES + j] = f_latt
            st[_F_INDEX * LANES + j] = idx
    else:  # rare shapes, or the libm sine: scalar anyway, so compiled once, not inlined
        for j in range(n):
            h, k, l = miller(cells_t, c, st[_QX * LANES + j], st[_QY * LANES + j],
                             st[_QZ * LANES + j])
            f_latt, idx = _lattice_any_shape(h, k, l, latt, recip, lo, hi, grid)
            st[_F_LATT * LANES + j] = f_latt
            st[_F_INDEX * LANES + j] = idx


@_jit.inline
def _add_term(st, j, f_cell, sums):
    """Add one evaluation's F^2 F_latt^2 to pixel j's running sum (C order, with the
    -oversample_* multiplications), unless its source was cut or F_latt is 0."""
    f_latt = st[_F_LATT * LANES + j]
    intensity = st[_INTENSITY * LANES + j]
    total = intensity + f_cell * f_cell * f_latt * f_latt
    if sums.over_thick:
        total *= st[_CAPTURE * LANES + j]
    if sums.over_polar:
        total *= st[_POLAR * LANES + j]
    if sums.over_omega:
        total *= st[_OMEGA * LANES + j]
    skip = st[_LIVE * LANES + j] == 0.0 or (f_latt == 0.0 and sums.water_size == 0.0)
    st[_INTENSITY * LANES + j] = intensity if skip else total


@_jit.inline
def _sum_step(st, n, fgrid_flat, grid, sums):
    """Running sums after one crystal setting. Without an F grid every F is default_F
    and the loop vectorises; the look-up (a gather) is left scalar."""
    if grid.h_hi < grid.h_lo:
        for j in range(n):
            _add_term(st, j, grid.default_F, sums)
    else:
        for j in range(n):
            idx = int(st[_F_INDEX * LANES + j])
            f_cell = fgrid_flat[idx] if idx >= 0 else grid.default_F
            _add_term(st, j, f_cell, sums)


@_jit.scalar
def render_chunk(st, n, f0, si, det, beam, incident_t, wavelengths, latt, cells_t,
                 fgrid_flat, grid, sums):
    """Render pixels f0 .. f0+n-1 (n <= LANES) of row si into the scratch array ``st``
    (no interpolation, flat detector). Afterwards field ``_INTENSITY`` holds each pixel's
    value (photons, float64; see :func:`chunk_value`) and ``_OMEGA_SUM`` the sum of the
    solid angles it used (sr)."""
    subpixel = det.pixel_size / det.oversample
    n_sources = wavelengths.shape[0]
    n_cells = cells_t.shape[1]
    _start_pixels(st, n, sums, beam)
    for layer in range(det.n_layers):
        odist = layer * det.layer_step
        capture0 = 1.0 if det.thick_zero else 0.0
        for j in range(n):
            st[_CAPTURE * LANES + j] = capture0
        for sub_s in range(det.oversample):
            for sub_f in range(det.oversample):
                _subpixel_step(st, n, f0, si, sub_f, sub_s, odist, subpixel, det,
                               sums.over_omega)
                if not det.thick_zero or sums.over_thick:
                    _capture_step(st, n, layer, det, sums.over_thick)
                for src in range(n_sources):
                    ix = incident_t[0, src]
                    iy = incident_t[1, src]
                    iz = incident_t[2, src]
                    _source_step(st, n, ix, iy, iz, wavelengths[src], beam.dmin)
                    if not _polarization_due(st, n, sums.over_polar):
                        pass
                    elif beam.kahn == 0.0:
                        ux, uy, uz = _unit(ix, iy, iz)
                        _polar_step_unpolarized(st, n, ux, uy, uz, beam.kahn, sums.over_polar)
                    else:
                        _polar_step(st, n, ix, iy, iz, beam, sums.over_polar)
                    for c in range(n_cells):
                        _lattice_step(st, n, cells_t, c, latt, grid)
                        _sum_step(st, n, fgrid_flat, grid, sums)
    for j in range(n):
        st[_INTENSITY * LANES + j] = finish_pixel(
            st[_INTENSITY * LANES + j], st[_CAPTURE * LANES + j], st[_POLAR * LANES + j],
            st[_OMEGA * LANES + j], sums)


@_jit.inline
def chunk_value(st, j):
    """Photons in pixel j of the chunk last rendered into ``st``."""
    return st[_INTENSITY * LANES + j]


@_jit.inline
def chunk_omega(st, j):
    """Sum of the solid angles pixel j of the chunk used (sr)."""
    return st[_OMEGA_SUM * LANES + j]


@_jit.inline
def chunk_last_omega(st, j):
    """The solid angle pixel j of the chunk used last (sr; the cached one)."""
    return st[_OMEGA * LANES + j]
