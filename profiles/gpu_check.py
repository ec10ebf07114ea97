"""GPU check: the golden suite on the GPU and the G1-G3 timings, for both GPU builds.

    python -m profiles.gpu_check [--out DIR] [--repeats 5] [--skip-golden]
                                 [--devices cuda,cuda-fast]

Run it on a machine with an NVIDIA GPU and ``pip install 'nbnumba[cuda]'``. For each
device (``cuda``: the parity build, FMA contraction off; ``cuda-fast``: contraction on
and libdevice's sine) it prints and writes to ``DIR/gpu_check.json``:

* the golden cases of ``tests/data/golden`` run in-process with ``-device DEVICE``
  appended, compared exactly as the test suite compares the CPU runs
  (``tests/golden_compare.py``): "N/55 cases pass" (the CPU passes 55/55, so this is
  the difference from the C program);
* for G1 (cubic, N=5, 6.2 A, 1024^2), G2 (cubic, N=5, 0.5 A, 4096^2, 0.05 mm pixels,
  500 mm) and G3 (the P6 flags at 1024^2): the kernel's own time (CUDA events, median
  of ``--repeats`` renders after a warm-up), the render time including transfers, the
  whole-process time of ``nbnumba ... -device DEVICE`` with a warm cache, the number of
  float pixels whose bits differ from the CPU engine's image and their largest
  relative difference.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(REPO, "tests", "data", "golden")

_P1 = "-cell 100 100 100 90 90 90 -lambda 6.2 -N 5 -default_F 100 -distance 100 -detpixels 1024"
TIMED = {
    "G1": _P1,
    "G2": ("-cell 100 100 100 90 90 90 -lambda 0.5 -N 5 -default_F 100 -distance 500 "
           "-pixel 0.05 -detpixels 4096"),
    "G3": ("-cell 70 80 90 75 85 95 -N 5 -default_F 100 -lambda 1.0 -mosaic 0.5 "
           "-mosaic_dom 5 -phi 0 -osc 90 -phisteps 9 -detector_rotx 5 -detector_roty 3 "
           "-detector_rotz 2 -twotheta 10 -detector_abs 500 -detector_thick 450 "
           "-thicksteps 5 -polar 0.95 -distance 100 -detpixels 1024"),
}
COMMON = ["-nopgm", "-nonoise", "-seed", "1", "-floatfile", "out.bin", "-oversample", "1"]


def golden_suite(device, only=None):
    """(passed, total, failures) of the golden cases rendered with -device ``device``."""
    sys.path.insert(0, os.path.join(REPO, "tests"))
    import golden_compare
    from conftest import run_cli, stage_case

    cases = json.load(open(os.path.join(GOLDEN, "cases.json")))
    if only:
        cases = [c for c in cases if c["id"] in only]
    failures = {}
    for case in cases:
        work = tempfile.mkdtemp(prefix="gpu_" + case["id"] + "_")
        try:
            from pathlib import Path
            stage_case(case, Path(work))
            run = run_cli(case["args"] + ["-device", device], work)
            errors = golden_compare.case_errors(Path(GOLDEN), case, run.code, run.out + run.err,
                                                Path(work))
            if errors:
                failures[case["id"]] = errors
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return len(cases) - len(failures), len(cases), failures


def timed_case(name, repeats, device):
    """Kernel, render and whole-process times (s) of one case on the GPU, and how its
    image differs from the CPU's."""
    from nbnumba import engine
    from nbnumba.kernels import cuda_backend
    from nbnumba_cli.parse import config_from_args

    args = COMMON + TIMED[name].split()
    cfg, _ = config_from_args(args)
    setup = engine.prepare(cfg)
    gpu = engine.render(setup, device=device)
    kernel, render = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gpu = engine.render(setup, device=device)
        render.append(time.perf_counter() - t0)
        kernel.append(cuda_backend.last_kernel_seconds)
    cpu = engine.render(setup, device="cpu")
    ref = cpu.image.astype(np.float64)
    got = gpu.image.astype(np.float64)
    floor = 1e-6 * max(np.abs(ref).max(), 1e-300)
    rel = float((np.abs(got - ref) / np.maximum(np.abs(ref), floor)).max())
    differing = int(np.count_nonzero(gpu.image.view(np.uint32) != cpu.image.view(np.uint32)))
    with tempfile.TemporaryDirectory() as work:
        exe = shutil.which("nbnumba") or "nbnumba"
        cmd = [exe] + args + ["-device", device, "-noprogress"]
        subprocess.run(cmd, cwd=work, capture_output=True, check=True)  # warm the cache
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=work, capture_output=True, check=True)
        whole = time.perf_counter() - t0
    return {"kernel_s": statistics.median(kernel), "render_s": statistics.median(render),
            "whole_process_s": whole, "pixels_differing_from_cpu": differing,
            "max_rel_diff_vs_cpu": rel}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m profiles.gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.environ.get("OUT", "."), help="output folder")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--skip-golden", action="store_true")
    p.add_argument("--only", nargs="*", help="golden case ids (default: all)")
    p.add_argument("--cases", default=",".join(TIMED), help="timed cases (default G1,G2,G3)")
    p.add_argument("--devices", default="cuda,cuda-fast", help="GPU builds to check")
    opts = p.parse_args(argv)
    from numba import cuda
    device = getattr(cuda.get_current_device(), "name", "CUDA simulator")
    if isinstance(device, bytes):
        device = device.decode()
    report = {"device": device}
    print("device:", device, flush=True)
    for dev in [d for d in opts.devices.split(",") if d]:
        report[dev] = {}
        if not opts.skip_golden:
            passed, total, failures = golden_suite(dev, opts.only)
            report[dev]["golden"] = {"passed": passed, "total": total, "failures": failures}
            for cid, errors in failures.items():
                print(f"FAIL {dev} {cid}", "; ".join(errors), flush=True)
            print(f"golden/-device {dev}: {passed}/{total} cases pass", flush=True)
        for name in [c for c in opts.cases.split(",") if c]:
            r = report[dev][name] = timed_case(name, opts.repeats, dev)
            print(f"{dev} {name}: kernel {r['kernel_s'] * 1e3:.2f} ms, render "
                  f"{r['render_s'] * 1e3:.1f} ms, whole process {r['whole_process_s']:.2f} s, "
                  f"{r['pixels_differing_from_cpu']} pixels differ from the CPU (max rel "
                  f"{r['max_rel_diff_vs_cpu']:.1e})", flush=True)
    os.makedirs(opts.out, exist_ok=True)
    with open(os.path.join(opts.out, "gpu_check.json"), "w") as handle:
        json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
