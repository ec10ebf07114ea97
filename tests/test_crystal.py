"""Unit cell, orientation, misset, crystal size (spec/crystal.md sections 1-5 and 7).

Printed reference values come from the golden binary's console text (``Unit Cell:``,
``Recp Cell:``, ``volume =``, ``crystal is``, ``random orientation misset angles``).
"""
import math

import numpy as np
import pytest

from nbnumba import config_from_args, prepare
from nbnumba.config import CrystalConfig
from nbnumba.constants import RTD
from nbnumba.crystal import build_lattice, cells_per_axis, mosaic_rotations, reciprocal_from_matrix
from nbnumba.io.matrix import read_matrix
from nbnumba.rng import RandomTable

ANGSTROM = 1e10  # lattice real-space vectors are in metres; reciprocal ones in 1/Angstrom


def dot(x, y):
    return sum(a * b for a, b in zip(x, y))


def cross(x, y):
    return (x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0])


def lattice_of(cell_deg=None, misset_deg=None, **kw):
    """Lattice of a cell given in Angstrom and degrees, with optional misset (degrees)."""
    cell = None
    if cell_deg is not None:
        a, b, c, al, be, ga = cell_deg
        cell = (a, b, c, al / RTD, be / RTD, ga / RTD)
    if misset_deg is not None:
        kw["misset"] = tuple(x / RTD for x in misset_deg)
    return build_lattice(CrystalConfig(cell=cell, **kw), 1e-10, RandomTable())


def cell_lines(lat):
    """The C's 'Unit Cell:' / 'Recp Cell:' / 'volume =' texts."""
    a, b, c, al, be, ga = lat.cell
    ra, rb, rc, ral, rbe, rga = lat.reciprocal_cell
    return ("%g %g %g %g %g %g" % (a, b, c, al * RTD, be * RTD, ga * RTD),
            "%g %g %g %g %g %g" % (ra, rb, rc, ral * RTD, rbe * RTD, rga * RTD),
            "%g" % lat.volume)


def triclinic_volume(a, b, c, al, be, ga):
    ca, cb, cg = (math.cos(x / RTD) for x in (al, be, ga))
    return a * b * c * math.sqrt(1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg)


def assert_dual(lat, cell=None):
    """a.a* = 1, a.b* = 0 (all pairs), a.(b x c) = V = 1/(a*.(b* x c*))."""
    real = [tuple(x * ANGSTROM for x in v) for v in (lat.a, lat.b, lat.c)]
    recip = [lat.a_star, lat.b_star, lat.c_star]
    for i in range(3):
        for j in range(3):
            want = 1.0 if i == j else 0.0
            assert dot(real[i], recip[j]) == pytest.approx(want, abs=1e-12), (i, j)
    volume = dot(real[0], cross(real[1], real[2]))
    assert lat.volume == pytest.approx(volume, rel=1e-12)
    assert dot(recip[0], cross(recip[1], recip[2])) == pytest.approx(1 / volume, rel=1e-12)
    if cell is not None:
        assert volume == pytest.approx(triclinic_volume(*cell), rel=1e-12)
        lengths = [math.sqrt(dot(v, v)) for v in real]
        assert lengths == pytest.approx(cell[:3], rel=1e-12)


# cells for which the C's default-orientation formula of c*_z (crystal.md section 1) is
# exact: sin(gamma*) = sin(gamma); a general triclinic -cell is not (see below)
CELLS = [(100, 100, 100, 90, 90, 90), (50, 60, 70, 90, 110, 90), (40, 40, 65, 90, 90, 120),
         (45, 55, 65, 90, 90, 90)]


@pytest.mark.parametrize("cell", CELLS, ids=["cubic", "monoclinic", "hexagonal", "orthorhombic"])
@pytest.mark.parametrize("misset", [None, (10, 20, 30)], ids=["nomisset", "misset"])
def test_real_and_reciprocal_cells_are_dual(cell, misset):
    lat = lattice_of(cell, misset)
    assert_dual(lat, cell)
    assert [x * RTD for x in lat.cell[3:]] == pytest.approx(cell[3:], rel=1e-12)


def test_triclinic_matrix_cell_is_dual(golden_dir):
    a_matrix = read_matrix(golden_dir / "inputs" / "A_triclinic.mat")
    lat = build_lattice(CrystalConfig(a_matrix=a_matrix), 1.2e-10, RandomTable())
    assert_dual(lat)
    # the file holds 8 digits, so the encoded cell is only approximately 70 80 90 75 85 95
    assert lat.volume == pytest.approx(triclinic_volume(70, 80, 90, 75, 85, 95), rel=1e-6)


def test_triclinic_cell_keeps_lengths_and_volume():
    """The C's c*_z formula distorts a triclinic -cell (printed angles 75.0391 ... instead
    of 75 ...); the user-cell rescale still forces the real-space lengths and the volume."""
    lat = lattice_of((70, 80, 90, 75, 85, 95))
    assert lat.cell[:3] == pytest.approx((70, 80, 90), rel=1e-12)
    assert lat.volume == pytest.approx(triclinic_volume(70, 80, 90, 75, 85, 95), rel=1e-12)


def test_default_orientation_puts_a_star_along_x():
    lat = lattice_of((70, 80, 90, 75, 85, 95))
    assert lat.a_star[1] == pytest.approx(0, abs=1e-18)
    assert lat.a_star[2] == pytest.approx(0, abs=1e-18)
    assert lat.b_star[2] == pytest.approx(0, abs=1e-18)


def test_missing_cell_values_default_to_a_and_90_degrees():
    full = lattice_of((60, 60, 60, 90, 90, 90))
    short = build_lattice(CrystalConfig(cell=(60.0, 0.0, 0.0, 0.0, 0.0, 0.0)), 1e-10, RandomTable())
    assert short.cell == pytest.approx(full.cell, rel=1e-15)


def test_cell_with_misset_prints_like_the_c():
    """triclinic_cell_misset: -cell 70 80 90 75 85 95 -misset 10 20 30."""
    lat = lattice_of((70, 80, 90, 75, 85, 95), (10, 20, 30))
    assert cell_lines(lat) == ("70 80 90 75.0391 85.0136 95.0081",
                               "0.014437 0.0130262 0.0115784 105.535 96.5318 83.4517", "481811")


def test_cell_from_matrix_file(golden_dir):
    """mat_triclinic_lambda: -mat A_triclinic.mat -lambda 1.2 prints the cell it encodes."""
    a_matrix = read_matrix(golden_dir / "inputs" / "A_triclinic.mat")
    lat = build_lattice(CrystalConfig(a_matrix=a_matrix), 1.2e-10, RandomTable())
    assert cell_lines(lat) == ("70 80 90 75 85 95",
                               "0.0144344 0.0130259 0.0115786 105.572 96.547 83.453", "481812")


def test_matrix_columns_are_reciprocal_vectors_over_lambda(golden_dir):
    m = read_matrix(golden_dir / "inputs" / "A_triclinic.mat")
    a_star, b_star, c_star = reciprocal_from_matrix(m, 1.2e-10)
    for j, v in enumerate((a_star, b_star, c_star)):
        assert v == pytest.approx(tuple(m[:, j] / 1.2), rel=1e-14)


@pytest.mark.parametrize("wavelength", [1.0e-10, 1.5e-10])
def test_matrix_of_a_cell_gives_the_cell_back(wavelength):
    ref = lattice_of((50, 60, 70, 90, 110, 90), (3, -7, 11))
    lam = wavelength * ANGSTROM
    a_matrix = np.array([ref.a_star, ref.b_star, ref.c_star]).T * lam
    lat = build_lattice(CrystalConfig(a_matrix=a_matrix), wavelength, RandomTable())
    for got, want in ((lat.a, ref.a), (lat.b, ref.b), (lat.c, ref.c)):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-24)


def test_user_cell_lengths_win_over_matrix(golden_dir):
    """-cell with -mat: the matrix's directions with the -cell lengths and volume."""
    a_matrix = read_matrix(golden_dir / "inputs" / "A_triclinic.mat")
    cell = (75.0, 85.0, 95.0, 75 / RTD, 85 / RTD, 95 / RTD)
    lat = build_lattice(CrystalConfig(cell=cell, a_matrix=a_matrix), 1.2e-10, RandomTable())
    assert lat.cell[:3] == pytest.approx((75, 85, 95), rel=1e-12)
    plain = build_lattice(CrystalConfig(a_matrix=a_matrix), 1.2e-10, RandomTable())
    for got, ref in ((lat.a, plain.a), (lat.b, plain.b), (lat.c, plain.c)):
        g, r = np.array(got), np.array(ref)
        assert g / np.linalg.norm(g) == pytest.approx(r / np.linalg.norm(r), abs=1e-12)


@pytest.mark.parametrize("seed,angles", [(5, "142.144470 55.074207 35.266329"),
                                         (12345, "105.720755 -34.951318 -97.823571")])
def test_random_misset_angles(seed, angles):
    lat = lattice_of((80, 80, 80, 90, 90, 90), misset="random", misset_seed=seed)
    assert lat.random_misset
    assert "%f %f %f" % tuple(x * RTD for x in lat.misset) == angles
    assert f"random orientation misset angles: {angles} deg" in lat.messages


def test_random_misset_ignores_noise_seed(tmp_path):
    base = ["-cell", "80", "80", "80", "90", "90", "90", "-misset", "random", "-misset_seed", "5",
            "-default_F", "1"]
    cfg1, _ = config_from_args(base + ["-seed", "1"], cwd=str(tmp_path))
    cfg2, _ = config_from_args(base + ["-seed", "99"], cwd=str(tmp_path))
    m1 = build_lattice(cfg1.crystal, 1e-10, RandomTable()).misset
    m2 = build_lattice(cfg2.crystal, 1e-10, RandomTable()).misset
    assert m1 == m2


# ------------------------------------------------------------------ crystal size in cells
def test_cells_from_sample_size_use_ceil():
    lat = lattice_of((100, 100, 100, 90, 90, 90))
    cr = CrystalConfig(na=3, nb=4, nc=5)
    # 620, 450 and 810 Angstrom -> 6.2, 4.5, 8.1 cells -> 7, 5, 9
    assert cells_per_axis(cr, lat, (0.062e-6, 0.045e-6, 0.081e-6)) == (7.0, 5.0, 9.0)
    # no size: the counts as given
    assert cells_per_axis(cr, lat, (0.0, 0.0, 0.0)) == (3.0, 4.0, 5.0)


def test_cell_counts_below_one_become_one():
    lat = lattice_of((100, 100, 100, 90, 90, 90))
    assert cells_per_axis(CrystalConfig(na=0, nb=-4, nc=1), lat, (0, 0, 0)) == (1.0, 1.0, 1.0)


def _setup(args, tmp_path):
    cfg, _ = config_from_args(args + ["-detpixels", "16", "-oversample", "1"], cwd=str(tmp_path))
    return prepare(cfg)


def test_per_axis_crystal_sizes_and_auto_interpolation(tmp_path, golden_dir):
    """shape_gauss_xtal_sizes prints 'crystal is 0.07 x 0.05 x 0.09 microns'; N stays 1 so
    interpolation is auto-selected although the crystal is 7x5x9 cells (trap 8)."""
    setup = _setup(["-gauss_xtal", "-xtal_x", "0.000062", "-xtal_y", "0.000045", "-xtal_z",
                    "0.000081", "-cell", "100", "100", "100", "90", "90", "90", "-hkl",
                    str(golden_dir / "inputs" / "P1_grid.hkl")], tmp_path)
    assert setup.cells_per_axis == (7.0, 5.0, 9.0)
    assert setup.interpolate


def test_sample_size_clipped_by_beam(tmp_path):
    """flux_exposure_beamsize_clip: y and z clipped to the 0.12 um beam; 0.12e-6/1e-8 is
    12.000000000000002, so ceil gives 13 cells (the C prints 0.25 x 0.13 x 0.13 microns)."""
    setup = _setup(["-flux", "1e13", "-exposure", "0.5", "-beamsize", "0.00012", "-samplesize",
                    "0.00025", "-cell", "100", "100", "100", "90", "90", "90", "-default_F", "30"],
                   tmp_path)
    assert setup.cells_per_axis == (25.0, 13.0, 13.0)
    assert setup.sample_size == (0.00025 / 1000, 0.00012 / 1000, 0.00012 / 1000)
    assert any("clipping sample" in m for m in setup.messages)


# ------------------------------------------------------------------------ mosaic domains
def test_mosaic_domains_are_rotations_within_the_cap():
    spread = 2.0 / RTD
    mats = mosaic_rotations(spread, 8, 777, RandomTable())
    assert mats.shape == (8, 3, 3)
    assert np.array_equal(mats[0], np.eye(3))
    for m in mats:
        assert m @ m.T == pytest.approx(np.eye(3), abs=1e-12)
        assert np.linalg.det(m) == pytest.approx(1.0, abs=1e-12)
        angle = math.acos(min(1.0, (np.trace(m) - 1) / 2))
        assert angle <= spread * (1 + 1e-6)
    assert len({m.tobytes() for m in mats}) == 8


# ------------------------------------------------------------------- orientation table
def _table_one_at_a_time(lattice, spindle, phis, mosaic, spread):
    """The orientation table as the scalar definition gives it: each cell vector rotated
    about the spindle, then by each mosaic matrix, one at a time (nbnumba.vec)."""
    from nbnumba import vec
    rows = []
    for phi in phis:
        rotated = [vec.rot_axis(v, spindle, float(phi)) for v in (lattice.a, lattice.b,
                                                                   lattice.c)]
        for umat in mosaic:
            u = [[float(x) for x in row] for row in umat]
            rows.append([vec.mat_vec(u, v) if spread > 0.0 else v for v in rotated])
    return np.array(rows, dtype=np.float64).reshape(-1, 3, 3)


@pytest.mark.parametrize("spread_deg", [0.0, 0.7])
def test_rotation_table_is_bit_identical_to_one_vector_at_a_time(spread_deg):
    from nbnumba.crystal import phi_angles, rotation_table
    lat = lattice_of((78.0, 85.0, 93.0, 81.0, 97.0, 103.0), (11.0, -23.0, 37.0))
    spindle = tuple(np.array([0.3, -0.8, 0.52]) / np.linalg.norm([0.3, -0.8, 0.52]))
    phis = phi_angles(-3.1 / RTD, 0.013 / RTD, 17)
    assert [float(p) for p in phis] == [-3.1 / RTD + 0.013 / RTD * k for k in range(17)]
    mosaic = mosaic_rotations(max(spread_deg, 0.7) / RTD, 6, 4242, RandomTable())
    got = rotation_table(lat, spindle, phis, mosaic, spread_deg / RTD)
    want = _table_one_at_a_time(lat, spindle, phis, mosaic, spread_deg / RTD)
    assert got.shape == (17 * 6, 3, 3)
    assert got.tobytes() == want.tobytes()


def test_rotation_table_does_not_loop_over_orientations_in_python():
    # counts Python-level calls, not seconds: 40,000 orientations in a few dozen calls
    import sys

    from nbnumba.crystal import phi_angles, rotation_table
    lat = lattice_of((78.0, 85.0, 93.0, 81.0, 97.0, 103.0), (11.0, -23.0, 37.0))
    phis = phi_angles(0.0, 0.001, 200)
    mosaic = mosaic_rotations(0.5 / RTD, 200, 99, RandomTable())
    calls = [0]

    def count(frame, event, arg):
        if event in ("call", "c_call"):
            calls[0] += 1

    sys.setprofile(count)
    try:
        table = rotation_table(lat, (0.0, 0.0, 1.0), phis, mosaic, 0.5 / RTD)
    finally:
        sys.setprofile(None)
    assert table.shape == (40_000, 3, 3)
    assert calls[0] < 2_000, calls[0]


def _mosaic_one_at_a_time(spread, domains, seed, table):
    from nbnumba import rng
    stream = rng.Stream(rng.internal_seed(seed), table)
    mats = [rng.random_cap_rotation(spread, stream) for _ in range(domains)]
    if domains:
        mats[0] = np.eye(3)
    return np.array(mats, dtype=np.float64).reshape(domains, 3, 3)


@pytest.mark.parametrize("spread_deg, domains, seed", [(0.3, 1, 5), (2.0, 9, 12345678),
                                                       (75.0, 400, 42), (1e-4, 30, 1)])
def test_mosaic_domains_are_bit_identical_to_one_at_a_time(spread_deg, domains, seed):
    table, reference_table = RandomTable(), RandomTable()
    got = mosaic_rotations(spread_deg / RTD, domains, seed, table)
    want = _mosaic_one_at_a_time(spread_deg / RTD, domains, seed, reference_table)
    assert got.tobytes() == want.tobytes()
    assert np.array_equal(table.table, reference_table.table)   # the noise continues it


def test_mosaic_domains_do_not_loop_in_python():
    import sys
    calls = [0]

    def count(frame, event, arg):
        if event in ("call", "c_call"):
            calls[0] += 1

    mosaic_rotations(0.5 / RTD, 10, 3, RandomTable())     # compiled before counting
    sys.setprofile(count)
    try:
        mats = mosaic_rotations(0.5 / RTD, 20_000, 3, RandomTable())
    finally:
        sys.setprofile(None)
    assert mats.shape == (20_000, 3, 3)
    assert calls[0] < 2_000, calls[0]
