"""nb-noisify against the C noisify on a fiber PSF with a bright spot.

The C spreads every pixel over a disc whose radius grows with its value (up to the
image width), so a bright spot costs it O(spot pixels x width^2). nb-noisify's automatic
method convolves those pixels by FFT. Both programs get the same threads (``--threads``,
default 2: ``NUMBA_NUM_THREADS`` and ``OMP_NUM_THREADS``; the C noisify is serial)::

    NB_NOISIFY_BIN=/path/to/noisify python -m profiles.noisify_bench
    NB_NOISIFY_BIN=/path/to/noisify python -m profiles.noisify_bench --size 512 --spot 20 --direct

Prints the wall time of each command (nb-noisify after one warm-up run, so that numba's
cache is filled), the speed-up, the largest difference of the noise images (counts) and
the load average, which matters on a shared machine.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def spot_image(size, spot_radius, peak=1e5, background=2.0):
    """A flat background with a bright disc in the middle (photons per pixel)."""
    y, x = np.mgrid[0:size, 0:size]
    image = np.full((size, size), background, dtype=np.float32)
    image[(x - size / 2) ** 2 + (y - size / 3) ** 2 <= spot_radius ** 2] = peak
    return image


def _timed(command, cwd, env):
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{command[0]} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return elapsed


def _pixels(path):
    return np.frombuffer(Path(path).read_bytes()[512:], "<u2").astype(np.int64)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=768, help="image edge, pixels (default 768)")
    ap.add_argument("--spot", type=float, default=40, help="spot radius, pixels (default 40)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--c-bin", default=os.environ.get("NB_NOISIFY_BIN"))
    ap.add_argument("--nb", default=str(Path(sys.executable).parent / "nb-noisify"))
    ap.add_argument("--direct", action="store_true",
                    help="also time nb-noisify -psf_method direct (the C's sum)")
    args = ap.parse_args(argv)
    env = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))
    flags = ["-floatfile", "spot.bin", "-psf", "fiber", "-seed", "1", "-readout", "3",
             "-nopgm"]
    with tempfile.TemporaryDirectory() as tmp:
        spot_image(args.size, args.spot).tofile(Path(tmp) / "spot.bin")
        print(f"image {args.size}x{args.size}, bright disc of radius {args.spot:g} pixels, "
              f"{args.threads} threads, load average before: {os.getloadavg()}")
        nb = [args.nb] + flags + ["-noisefile", "nb.img", "-intfile", "nb_int.img"]
        _timed(nb, tmp, env)  # warm-up: numba's cache
        t_nb = min(_timed(nb, tmp, env) for _ in range(2))
        print(f"nb-noisify (auto: FFT above radius): {t_nb:.2f} s")
        if args.direct:
            direct = [args.nb] + flags + ["-psf_method", "direct", "-noisefile", "direct.img",
                                          "-intfile", "d_int.img"]
            t_direct = _timed(direct, tmp, env)
            print(f"nb-noisify -psf_method direct: {t_direct:.2f} s")
        if args.c_bin:
            t_c = _timed([args.c_bin] + flags + ["-noisefile", "c.img", "-intfile", "c_int.img"],
                         tmp, env)
            diff = np.abs(_pixels(Path(tmp) / "c.img") - _pixels(Path(tmp) / "nb.img"))
            print(f"C noisify: {t_c:.2f} s")
            print(f"speed-up: {t_c / t_nb:.1f}x; noise images differ by at most {diff.max()} "
                  f"count(s) in {(diff > 0).sum()} of {diff.size} pixels")
            if args.direct:
                same = np.array_equal(_pixels(Path(tmp) / "c.img"),
                                      _pixels(Path(tmp) / "direct.img"))
                print(f"direct method identical to the C: {same}")
        print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
