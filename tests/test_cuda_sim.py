"""The numba.cuda kernel, run under numba's CUDA simulator, against the CPU engine.

One subprocess renders every case with ``-device cuda`` (the simulator must be enabled
before numba is imported); this process renders the same cases with the compiled CPU
kernel. The simulator does not fuse multiply-adds, so the images must be bit-identical.
Each case is cut to a few hundred pixels with -roi. The cases of ``FAST_CASES`` run the
``-device cuda-fast`` back end, whose lattice factor uses the library sine: they are
compared with the CPU engine using the library sine too (``libm_sine``).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nbnumba import engine
from nbnumba_cli.parse import config_from_args

from conftest import GOLDEN

pytest.importorskip("numba.cuda", reason="numba-cuda is not installed (pip install nbnumba[cuda])")

HKL = ["-hkl", "inputs/P1_grid.hkl"]
CELL = ["-cell", "100", "100", "100", "90", "90", "90"]

CASES = {
    "mosflm": CELL + HKL + ["-N", "5", "-detpixels", "64", "-roi", "20", "35", "28", "37"],
    "xds_rotations": ["-xds"] + CELL + HKL + ["-N", "5", "-detpixels", "64", "-ORGX", "20",
                                             "-ORGY", "40", "-detector_roty", "3",
                                             "-twotheta", "3", "-roi", "10", "25", "30", "41"],
    "custom_curved": ["-fdet_vector", "0", "0", "1", "-sdet_vector", "0", "-1", "0",
                      "-odet_vector", "1", "0", "0", "-beam_vector", "1", "0", "0",
                      "-curved_det", "-point_pixel"] + CELL + HKL +
                     ["-N", "4", "-detpixels", "48", "-pixel", "0.2", "-roi", "5", "20", "5", "16"],
    "mosaic_phi": ["-cell", "70", "80", "90", "75", "85", "95", "-default_F", "100", "-N", "5",
                   "-mosaic", "0.5", "-mosaic_dom", "4", "-phi", "0", "-osc", "20", "-phisteps",
                   "3", "-detpixels", "32", "-pixel", "0.4", "-roi", "8", "23", "8", "19"],
    "sources_dispersion": ["-mat", "inputs/A_cubic.mat", "-sourcefile", "inputs/two_sources.txt",
                           "-dispersion", "2", "-dispsteps", "2"] + HKL +
                          ["-N", "5", "-detpixels", "64", "-roi", "24", "39", "24", "35"],
    "divergence_dmin_polar": CELL + HKL + ["-N", "5", "-divergence", "2", "-divsteps", "3",
                                          "-dmin", "25", "-polar", "0.9", "-distance", "80",
                                          "-detpixels", "64", "-roi", "0", "15", "0", "11"],
    "absorption_oversample": ["-detector_abs", "300", "-detector_thick", "200",
                              "-detector_thicksteps", "3", "-oversample", "2",
                              "-oversample_thick", "-oversample_polar", "-oversample_omega",
                              "-polar", "0.5", "-cell", "30", "30", "30", "90", "90", "90"] + HKL +
                             ["-N", "4", "-distance", "50", "-detpixels", "32", "-pixel", "0.2",
                              "-roi", "8", "19", "8", "17"],
    "shapes_water": ["-round_xtal", "-fudge", "0.8", "-water", "0.8", "-Na", "4", "-Nb", "6",
                     "-Nc", "8"] + CELL + HKL + ["-detpixels", "48", "-roi", "12", "27", "12", "23"],
    "interpolation_switch_off": ["-interpolate", "-cell", "50", "50", "50", "90", "90", "90",
                                 "-hkl", "inputs/P1_small.hkl", "-N", "3", "-detpixels_f", "32",
                                 "-detpixels_s", "48", "-Xbeam", "0.5", "-Ybeam", "1.6",
                                 "-roi", "0", "31", "24", "29"],
    "mask": ["-mask", "inputs/mask_64.img"] + CELL + HKL +
            ["-N", "5", "-roi", "8", "23", "4", "15"],
    "fast_build_round": ["-round_xtal"] + CELL + HKL + ["-N", "5", "-detpixels", "64",
                                                        "-roi", "20", "31", "28", "35"],
}

#: cases rendered with -device cuda-fast
FAST_CASES = {"fast_build_round"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("cudasim")
    shutil.copytree(GOLDEN / "inputs", work / "inputs")
    return work


@pytest.fixture(scope="module")
def simulated(workdir):
    cases = {name: {"args": args + ["-nopgm", "-nonoise"], "cwd": str(workdir),
                    "device": "cuda-fast" if name in FAST_CASES else "cuda"}
             for name, args in CASES.items()}
    spec = workdir / "cases.json"
    spec.write_text(json.dumps(cases))
    out = workdir / "cuda.npz"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_DISABLE_JIT="1")
    runner = Path(__file__).with_name("cudasim_runner.py")
    proc = subprocess.run([sys.executable, str(runner), str(spec), str(out)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dict(np.load(out))


@pytest.mark.parametrize("name", sorted(CASES))
def test_cuda_kernel_matches_cpu(name, simulated, workdir):
    old = os.getcwd()
    os.chdir(workdir)
    try:
        cfg, _ = config_from_args(CASES[name] + ["-nopgm", "-nonoise"])
        cpu = engine.render(engine.prepare(cfg), device="cpu", libm_sine=name in FAST_CASES)
    finally:
        os.chdir(old)
    gpu_image = simulated[name + ".image"]
    assert gpu_image.shape == cpu.image.shape
    assert np.count_nonzero(cpu.image) > 0
    assert np.array_equal(gpu_image.view(np.uint32), cpu.image.view(np.uint32))
    assert simulated[name + ".omega"][0] == pytest.approx(cpu.omega_sum, rel=1e-12)
    switch = -1 if cpu.interpolation_switch is None else cpu.interpolation_switch.pixel
    assert simulated[name + ".switch"][0] == switch
    if name == "interpolation_switch_off":
        assert switch >= 0, "the case must exercise the switch-off rule"
