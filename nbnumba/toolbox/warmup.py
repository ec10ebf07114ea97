"""Compile every toolbox kernel on tiny inputs (``nbnumba --compile`` calls this)."""
import numpy as np


def compile_kernels():
    """Run nonbragg (with an observed image) and noisify (each PSF, each method) on
    tiny arrays, so that numba's cache holds every toolbox kernel. Returns the number
    of runs."""
    from .amorphous import nonbragg
    from .detector import noisify
    from .stolfit import fit_table
    table = np.array([[0.0, 2.0], [0.2, 3.0], [0.5, 1.0], [1.0, 0.5]])
    obs = np.full(64, 100.0)
    result = nonbragg(table, xpixels=8, ypixels=8, pixel_size=1e-3, observed=obs,
                      ignore=(0,))
    fit_table(result.observed_F)
    image = np.ones((8, 8), dtype=np.float32)
    image[3, 3] = 1e4
    runs = 2
    for kind in ("gauss", "fiber"):
        for method in ("direct", "fft"):
            noisify(image, seed=1, psf=kind, psf_method=method, readout=1.0, flicker=0.01)
            runs += 1
    noisify(image, seed=1, noise=False)
    return runs + 1
