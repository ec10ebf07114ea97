"""How far the vectorisable sine moves results: sincg on random inputs, and every golden case.

    python -m profiles.trig_check [--samples 2000000]

1. ``sincg(pi*h, N)`` with the vectorisable sine against the same formula with libm's
   sine, for random h (|h| < 200) and N in 2..50: the fraction of results that differ
   and the largest relative difference (reported in units of 2^-52 relative to the
   libm value, and absolute relative).
2. Every golden case rendered twice in-process, with the vectorisable sine and with
   libm's (``engine.render(..., libm_sine=True)``): the number of float32 pixels that differ.
"""
import argparse
import json
import math
import os
import shutil
import tempfile

import numpy as np

from nbnumba import _jit, engine
from nbnumba.physics import sincg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(REPO, "tests", "data", "golden")


@_jit.serial
def _sincg_both(h, n, fast, libm):
    for i in range(h.size):
        x = math.pi * h[i]
        fast[i] = sincg(x, n[i], True)
        libm[i] = sincg(x, n[i], False)


def random_inputs(samples, seed=1):
    """Relative differences of sincg, vectorisable sine against libm's."""
    rng = np.random.default_rng(seed)
    # half uniform, half within 1e-3 of an integer (near Bragg peaks and zeros)
    h = np.concatenate([rng.uniform(-200, 200, samples // 2),
                        rng.integers(-200, 200, samples - samples // 2)
                        + rng.normal(0, 1e-3, samples - samples // 2)])
    n = rng.integers(2, 51, samples).astype(np.float64)
    fast, libm = np.empty(samples), np.empty(samples)
    _sincg_both(h, n, fast, libm)
    rel = np.abs(fast - libm) / np.maximum(np.abs(libm), 1e-300)
    return {"samples": samples, "fraction_differing": float(np.mean(fast != libm)),
            "max_relative_difference": float(rel.max()),
            "p99_9_relative_difference": float(np.quantile(rel, 0.999))}


def golden_cases():
    """Float32 pixels that differ between the two sines, per golden case."""
    from nbnumba_cli.parse import config_from_args
    cases = json.load(open(os.path.join(GOLDEN, "cases.json")))
    out = {}
    for case in cases:
        if case["exit_code"] != 0 or case.get("deviation", {}).get("rule", "").startswith("missing"):
            continue
        work = tempfile.mkdtemp(prefix="trig_")
        old = os.getcwd()
        try:
            shutil.copytree(os.path.join(GOLDEN, "inputs"), os.path.join(work, "inputs"))
            for a, b in case.get("pre_copy", []):
                shutil.copy(os.path.join(GOLDEN, a), os.path.join(work, b))
            os.chdir(work)
            cfg, _ = config_from_args(case["args"])
            setup = engine.prepare(cfg)
            images = [engine.render(setup, libm_sine=libm).image for libm in (False, True)]
            out[case["id"]] = int(np.count_nonzero(images[0].view(np.uint32)
                                                   != images[1].view(np.uint32)))
        finally:
            os.chdir(old)
            shutil.rmtree(work, ignore_errors=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m profiles.trig_check")
    p.add_argument("--samples", type=int, default=2_000_000)
    opts = p.parse_args(argv)
    rand = random_inputs(opts.samples)
    print("sincg, vectorisable sine vs libm, %(samples)d random inputs: %(fraction_differing).4f "
          "differ; max relative difference %(max_relative_difference).2e (99.9th percentile "
          "%(p99_9_relative_difference).2e)" % rand)
    golden = golden_cases()
    differing = {k: v for k, v in golden.items() if v}
    print("golden cases: %d rendered, %d with float32 pixels that differ between the two sines%s"
          % (len(golden), len(differing), (": " + str(differing)) if differing else ""))


if __name__ == "__main__":
    main()
