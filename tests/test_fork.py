"""Renders in processes forked from one that has rendered (multiprocessing's "fork" start
method, the default on Linux before Python 3.14; concurrent.futures, joblib): a fork pool
gives the images of a serial run and returns, under every threading layer. GNU OpenMP
(numba's ``omp`` layer) cannot run a parallel region in such a child; the kernels'
one-thread twins run there instead (``nbnumba._jit.for_this_process``)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nbnumba
from nbnumba import _jit

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

SCRIPT = r'''
import multiprocessing
import sys

import numba
import numpy as np

import nbnumba

FLAT = "-cell 100 100 100 90 90 90 -default_F 100 -N 5 -detpixels 24 -pixel 0.4".split()


def render(i):
    """A flat (lanes kernel) or curved detector (one evaluation at a time), and the PSF."""
    config, _ = nbnumba.config_from_args(FLAT + (["-curved_det"] if i % 2 else []))
    config.crystal.phi0 = 0.1 * i                                   # rad
    image = nbnumba.simulate(config).image
    noisy = nbnumba.noisify(image, seed=1, psf="gauss", psf_method="direct").noise_pixels
    return image, noisy


if __name__ == "__main__":
    serial = [render(i) for i in range(4)]          # the parent renders first
    with multiprocessing.get_context("fork").Pool(2) as pool:
        forked = pool.map_async(render, range(4)).get(timeout=float(sys.argv[1]))
    same = all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(serial, forked))
    print(numba.threading_layer(), "same" if same else "DIFFERENT")
'''


@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_a_fork_pool_after_a_render_returns_the_serial_images(tmp_path, layer):
    script = tmp_path / "fork_pool.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    done = subprocess.run([sys.executable, str(script), "300"], capture_output=True,
                          text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    chosen, verdict = done.stdout.split()
    assert verdict == "same"
    if layer == "workqueue":
        assert chosen == "workqueue"


def test_the_one_thread_twins_render_the_parallel_kernels_images():
    """Both CPU kernels and the PSF: the twins' images equal the parallel ones, bit for bit."""
    flat = "-cell 70 80 90 90 90 90 -default_F 100 -N 4 -detpixels 20 -pixel 0.4".split()
    for extra in ([], ["-curved_det"]):
        config, _ = nbnumba.config_from_args(flat + extra)
        parallel = nbnumba.simulate(config)
        with _jit.one_thread_kernels():
            assert _jit.for_this_process(nbnumba.kernels.cpu.render_rows) is not \
                nbnumba.kernels.cpu.render_rows
            one = nbnumba.simulate(config)
        assert np.array_equal(parallel.image, one.image)
        assert parallel.omega_sum == one.omega_sum
    image = parallel.image * 1e3
    blurred = nbnumba.noisify(image, seed=3, psf="fiber", psf_method="direct")
    with _jit.one_thread_kernels():
        again = nbnumba.noisify(image, seed=3, psf="fiber", psf_method="direct")
    assert np.array_equal(blurred.noise_pixels, again.noise_pixels)


def test_a_process_that_was_not_forked_runs_the_parallel_kernels():
    from nbnumba.kernels import cpu
    assert not _jit.fork_stranded()
    assert _jit.for_this_process(cpu.render_rows_lanes) is cpu.render_rows_lanes
