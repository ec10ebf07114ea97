"""The C-compatible random numbers: every test vector of spec/rng.md section 6."""
import math

import numpy as np
import pytest

from nbnumba import rng
from nbnumba.constants import RTD
from nbnumba.crystal import mosaic_rotations


def fresh_stream(seed):
    """A stream on a fresh process state (iy = 0)."""
    return rng.Stream(seed, rng.RandomTable())


@pytest.mark.parametrize("seed,expected", [
    (-1, ["0.415999353", "0.091964893", "0.75641048", "0.52970022", "0.930436492"]),
    (-12345678, ["0.765989304", "0.023453664", "0.589726627", "0.535101593", "0.982231438"]),
])
def test_ran1_sequences(seed, expected):
    stream = fresh_stream(seed)
    got = ["%.9g" % stream.uniform() for _ in range(5)]
    assert got == expected


def test_ran1_seed_after_five_calls():
    stream = fresh_stream(-1)
    for _ in range(5):
        stream.uniform()
    assert int(stream.seed[0]) == 1399125485


def test_ran1_values_are_float32():
    stream = fresh_stream(-3)
    for _ in range(100):
        u = stream.uniform()
        assert 0.0 < u < 1.0
        assert float(np.float32(u)) == u


def test_seed_zero_and_one_give_the_same_stream():
    a, b = fresh_stream(0), fresh_stream(-1)
    assert [a.uniform() for _ in range(10)] == [b.uniform() for _ in range(10)]


def test_positive_seed_continues_the_shared_table():
    """A positive internal seed does not re-initialise the table another stream left."""
    table = rng.RandomTable()
    first = rng.Stream(-12345678, table)
    first.uniform()
    cont = rng.Stream(5, table)
    fresh = rng.Stream(5, rng.RandomTable())
    assert [cont.uniform() for _ in range(5)] != [fresh.uniform() for _ in range(5)]


def test_poisson_sequence_seed_7():
    seed = np.array([-7], dtype=np.int64)
    table = rng.RandomTable().table
    state = np.array([-1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    got = [rng.poisson_deviate(np.float64(np.float32(m)), seed, table, state)
           for m in (3.5, 50.0, 2e6, 0.0)]
    assert got == [3.0, 35.0, 2000251.125, 0.0]


def near_print(value, text, digits):
    """``value`` equals ``text`` (printed with ``digits`` significant digits) within half a
    unit of its last digit."""
    printed = float(text)
    half_unit = 0.5 * 10.0 ** (math.floor(math.log10(abs(printed))) - (digits - 1))
    return abs(value - printed) <= half_unit + math.ulp(printed)


DOMAIN_1 = ["0.999965920898", "-0.00797516809146", "0.00213394864943",
            "0.00797618721896", "0.999968079497", "-0.00046949469883",
            "-0.00213013623357", "0.000486499472815", "0.999997612916"]


def test_second_cap_rotation_seed_12345678():
    stream = fresh_stream(-12345678)
    rng.random_cap_rotation(0.5 / RTD, stream)
    second = rng.random_cap_rotation(0.5 / RTD, stream).ravel()
    assert all(near_print(v, t, 12) for v, t in zip(second, DOMAIN_1)), second


def test_mosaic_domain_1_uses_the_second_rotation():
    mats = mosaic_rotations(0.5 / RTD, 3, 12345678, rng.RandomTable())
    assert np.array_equal(mats[0], np.eye(3))
    assert all(near_print(v, t, 12) for v, t in zip(mats[1].ravel(), DOMAIN_1))


def test_random_misset_angles_seed_5():
    umat = rng.random_cap_rotation(90.0, fresh_stream(rng.internal_seed(5)))
    angles = rng.rotation_to_missets(umat)
    assert "%f %f %f" % tuple(x * RTD for x in angles) == "142.144470 55.074207 35.266329"


def test_internal_seed_is_negated():
    assert rng.internal_seed(7) == -7
    assert rng.internal_seed(-5) == 5


def test_noise_image_end_to_end(cli):
    """rng.md section 6: the photon count and max_I line of a small CLI run."""
    args = ("-cell 70 80 90 90 90 90 -misset 10 20 30 -default_F 100 -detpixels 48 -pixel 0.5 "
            "-distance 100 -lambda 1 -N 5 -oversample 1 -seed 7").split()
    res = cli(args)
    assert res.code == 0, res.err
    lines = [line.strip() for line in res.out.splitlines()]
    assert "70962 photons on noise image (0 overloads)" in lines
    assert "max_I = 3394.59  at 0.01975 0.00975" in lines


def test_noise_draws_one_deviate_per_roi_pixel():
    """Zero pixels draw exactly one uniform each; pixels outside the ROI draw none."""
    values = np.zeros(6 * 4, dtype=np.float32)
    table = rng.RandomTable()
    out, photons, overloads = rng.noise_image(values, 6, 4, (1, 3, 0, 2), 40.0, 9, table)
    assert photons == 0 and overloads == 0
    img = out.reshape(4, 6)
    assert np.all(img[0:3, 1:4] == 40)
    assert np.all(img[3, :] == 0) and np.all(img[:, 0] == 0) and np.all(img[:, 4:] == 0)


def _one_draw_at_a_time(values, user_seed, table):
    """Small-mean Poisson deviates drawn with ran1, the stream stored after every draw
    (what the noise loop, which holds the stream in registers, must reproduce)."""
    seed = np.array([rng.internal_seed(user_seed)], dtype=np.int64)
    counts = []
    for value in values:
        limit = float(np.float32(math.exp(-float(value))))
        em, t = -1.0, 1.0
        while True:
            em += 1.0
            t = float(np.float32(t * rng.ran1(seed, table)))
            if not t > limit:
                break
        counts.append(em)
    return np.array(counts)


@pytest.mark.parametrize("user_seed, table_in_use", [
    (5, False), (-3, True), (2 ** 40, True), (-(2 ** 63 - 1), True), (2 ** 63 - 1, True)])
def test_noise_loop_draws_as_ran1_one_draw_at_a_time(user_seed, table_in_use):
    """Including seeds beyond the generator's 31 bits, whose stream restarts (its seed
    turns negative) in the middle of the image."""
    values = np.random.default_rng(1).uniform(0.0, 11.9, 300).astype(np.float32)
    table = rng.RandomTable()
    if table_in_use:
        rng.Stream(-12345678, table).uniform()
    expected = _one_draw_at_a_time(values, user_seed, table.copy().table)
    out, photons, _ = rng.noise_image(values, 300, 1, (0, 299, 0, 0), 0.0, user_seed, table)
    assert np.array_equal(out, expected.astype(np.uint16))
    assert photons == expected.sum()
