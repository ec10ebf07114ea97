"""Render cases with ``-device cuda`` under numba's CUDA simulator (run as a script).

Usage: NUMBA_ENABLE_CUDASIM=1 NUMBA_DISABLE_JIT=1 python tests/cudasim_runner.py CASES.json OUT.npz

CASES.json: {"name": {"args": [...], "cwd": "dir", "device": "cuda"}, ...} ("device"
optional: "cuda" or "cuda-fast"). The simulator runs kernels as
Python threads, and with NUMBA_DISABLE_JIT the physics functions they call are plain
Python too (the simulator cannot pass its arrays to compiled functions). Writes the
float images and the solid-angle sums to OUT.npz for the parent test to compare with the
compiled CPU engine.
"""
import json
import os
import sys


def main(cases_path, out_path):
    import numpy as np
    from nbnumba import engine
    from nbnumba_cli.parse import config_from_args

    cases = json.loads(open(cases_path).read())
    results = {}
    for name, case in cases.items():
        old = os.getcwd()
        os.chdir(case["cwd"])
        try:
            cfg, _ = config_from_args(case["args"])
            result = engine.render(engine.prepare(cfg), device=case.get("device", "cuda"))
        finally:
            os.chdir(old)
        results[name + ".image"] = result.image
        results[name + ".omega"] = np.array([result.omega_sum])
        switch = result.interpolation_switch
        results[name + ".switch"] = np.array([-1 if switch is None else switch.pixel])
    np.savez(out_path, **results)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
