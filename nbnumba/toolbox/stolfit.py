"""Structure factor versus sin(theta)/lambda measured from an image (nonBragg ``-stolout``).

Each pixel of an observed image, turned back into a structure factor by
:func:`nbnumba.toolbox.nonbragg` (``observed=``), falls in the bin of the table point
nearest its sin(theta)/lambda. Per bin, outliers beyond 6 median absolute deviations
are rejected, then the mean is taken with iterative 6-sigma rejection; bins keeping
more than 100 pixels give one line ``stol  mean  rmsd  n``.

The C keeps all bins in one single-precision buffer and its rejection steps swap
values across bin boundaries (a pixel outside ``-roi`` is filed in bin 0, whose part of
the buffer then runs into the next bins; the mean's rejection swaps with the slot just
past the bin). These functions work on the same buffer in the same order, so the
numbers are the C's.
"""
import math

import numpy as np

from .. import _jit

SIGMA = 6.0
MIN_PIXELS = 100


@_jit.serial
def _select(buf, base, n):
    """The C's quick-select median of buf[base + 1 .. base + n] (partially sorts it)."""
    l = 1
    ir = n
    k = (n + 1) // 2
    while True:
        if ir <= l + 1:
            if ir == l + 1 and buf[base + ir] < buf[base + l]:
                t = buf[base + l]
                buf[base + l] = buf[base + ir]
                buf[base + ir] = t
            return buf[base + k]
        mid = (l + ir) >> 1
        t = buf[base + mid]
        buf[base + mid] = buf[base + l + 1]
        buf[base + l + 1] = t
        if buf[base + l + 1] > buf[base + ir]:
            t = buf[base + l + 1]
            buf[base + l + 1] = buf[base + ir]
            buf[base + ir] = t
        if buf[base + l] > buf[base + ir]:
            t = buf[base + l]
            buf[base + l] = buf[base + ir]
            buf[base + ir] = t
        if buf[base + l + 1] > buf[base + l]:
            t = buf[base + l + 1]
            buf[base + l + 1] = buf[base + l]
            buf[base + l] = t
        i = l + 1
        j = ir
        a = buf[base + l]
        while True:
            i += 1
            while buf[base + i] < a:
                i += 1
            j -= 1
            while buf[base + j] > a:
                j -= 1
            if j < i:
                break
            t = buf[base + i]
            buf[base + i] = buf[base + j]
            buf[base + j] = t
        buf[base + l] = buf[base + j]
        buf[base + j] = a
        if j >= k:
            ir = j - 1
        if j <= k:
            l = i


@_jit.serial
def _median_with_rejection(buf, base, n, sigma):
    """(median, mad, n) of buf[base + 1 .. base + n] after rejecting outliers."""
    median = np.float32(0.0)
    mad = np.float32(0.0)
    done = False
    while not done:
        median = _select(buf, base, n)
        for i in range(1, n + 1):
            buf[base + i + n] = abs(buf[base + i] - median)
        mad = _select(buf, base + n, n)
        done = True
        limit = np.float32(sigma) * mad
        i = 1
        while i <= n:
            if abs(buf[base + i] - median) > limit:
                if i != n:
                    buf[base + i] = buf[base + n]
                n -= 1
                done = False
            i += 1
    return median, mad, n


@_jit.serial
def _mean_with_rejection(buf, base, start, sigma):
    """(mean, rmsd, n) of buf[base .. base + start - 1] with iterative rejection."""
    points = start
    rejection = True
    avg = np.float32(np.nan)
    rmsd = np.float32(np.nan)
    while rejection and points > start / 2.0:
        total = np.float32(0.0)
        sumd = np.float32(0.0)
        for i in range(points):
            total = np.float32(total + buf[base + i])
        avg = np.float32(total / np.float32(points))
        worst = -1
        worst_dev = np.float32(0.0)
        for i in range(points):
            dev = abs(np.float32(buf[base + i] - avg))
            if dev > worst_dev:
                worst = i
                worst_dev = dev
            sumd = np.float32(sumd + np.float32(dev * dev))
        rmsd = np.float32(math.sqrt(np.float32(sumd / np.float32(points))))
        rejection = False
        if worst_dev > np.float32(sigma) * rmsd:
            rejection = True
            t = buf[base + worst]
            buf[base + worst] = buf[base + points]
            buf[base + points] = t
            points -= 1
    return avg, rmsd, points


@_jit.serial
def _fit(f_obs, bin_of, pixels_in, sigma, out_median, out_avg, out_rmsd, out_n):
    nbins = pixels_in.size
    pixels = f_obs.size
    buf = np.zeros(2 * pixels + 10 * nbins + 2, dtype=np.float32)
    start = np.zeros(nbins, dtype=np.int64)
    start[0] = 1
    for b in range(1, nbins - 1):
        start[b] = start[b - 1] + 2 * pixels_in[b - 1] + 2
    for j in range(pixels):
        b = bin_of[j]
        buf[start[b]] = f_obs[j]
        start[b] += 1
    for b in range(2, nbins - 2):
        start[b] -= pixels_in[b]
        median, mad, n = _median_with_rejection(buf, start[b] - 1, pixels_in[b], sigma)
        avg, rmsd, n = _mean_with_rejection(buf, start[b], n, sigma)
        out_median[b] = median
        out_avg[b] = avg
        out_rmsd[b] = rmsd
        out_n[b] = n


def fit_table(observed_F):
    """Per-bin structure factors of an observed image, as the C's ``-stolout``.

    observed_F: ``result.observed_F`` of :func:`nbnumba.toolbox.nonbragg` with
    ``observed=``. Returns a list of (stol in the table's unit, median, mean, rmsd, n)
    for the table's points (mean and rmsd are NaN for an empty bin).
    """
    f_obs, bin_of, pixels_in, stol_of, multiplier = observed_F
    nb = pixels_in.size
    med = np.zeros(nb, np.float32)
    avg = np.zeros(nb, np.float32)
    rmsd = np.zeros(nb, np.float32)
    n = np.zeros(nb, np.int64)
    _fit(f_obs, bin_of, pixels_in, SIGMA, med, avg, rmsd, n)
    return [(stol_of[b] / multiplier, float(med[b]), float(avg[b]), float(rmsd[b]), int(n[b]))
            for b in range(2, nb - 2)]
