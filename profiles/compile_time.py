"""Cold compile time of every CPU kernel, for one or more installations of nbnumba.

    python -m profiles.compile_time [--python PY ...] [--threads 2]

For each Python (default: this one, with this repository importable), a child process
with an empty ``NUMBA_CACHE_DIR`` imports nbnumba and renders 8 x 8 pixels of each
configuration in :data:`CONFIGS` (together they reach every CPU kernel of this version
and of earlier ones: one evaluation per pixel, many evaluations per pixel, the curved
detector), then the same again with the cache filled. Prints wall and CPU seconds
(user + system, all threads) of both; cold - warm is the compile time.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

from . import cases

#: tiny renders that together compile every CPU kernel
CONFIGS = {
    "one evaluation (P1)": cases.tiny_args("P1"),
    "many evaluations (P6)": cases.tiny_args("P6"),
    "curved detector": cases.tiny_args("P1") + ["-curved_det"],
}

_CHILD = """
import sys, json
import nbnumba
from nbnumba_cli.parse import config_from_args
for args in json.loads(sys.argv[1]):
    cfg, _ = config_from_args(args, ".")
    nbnumba.render(nbnumba.prepare(cfg))
"""


def run_child(python, env, cwd):
    """(wall s, CPU s) of one child process rendering every configuration."""
    import json
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([python, "-c", _CHILD, json.dumps(list(CONFIGS.values()))], env=env,
                   cwd=cwd, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv=None):
    """Print cold and warm wall/CPU times for each Python."""
    p = argparse.ArgumentParser(prog="python -m profiles.compile_time")
    p.add_argument("--python", action="append", default=None,
                   help="a Python with nbnumba installed (repeatable; default: this one, "
                        "importing this repository)")
    p.add_argument("--threads", type=int, default=2)
    opts = p.parse_args(argv)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for python in opts.python or [sys.executable]:
        env = dict(os.environ, NUMBA_NUM_THREADS=str(opts.threads))
        if not opts.python:
            env["PYTHONPATH"] = os.pathsep.join(x for x in (repo, env.get("PYTHONPATH")) if x)
        with tempfile.TemporaryDirectory(prefix="nbcompile-") as cache:
            env["NUMBA_CACHE_DIR"] = cache
            cold = run_child(python, env, cache)
            warm = run_child(python, env, cache)
        print("%s: cold %.1f s wall, %.1f s CPU; warm %.1f s wall, %.1f s CPU; "
              "compile %.1f s wall, %.1f s CPU"
              % (python, cold[0], cold[1], warm[0], warm[1], cold[0] - warm[0],
                 cold[1] - warm[1]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
