"""What the ``nbnumba`` command adds to the library's work, for one case.

    python -m profiles.command_overhead [--case F4096] [--repeats 3] [--threads 2]

Interleaved, ``--repeats`` times each (medians reported):

* **whole**: the command, ``nbnumba CASE -noprogress``, as a process (wall time);
* **start-up**: the command with the same flags on an 8 x 8 pixel detector (interpreter,
  imports, numba set-up, kernel load from the cache, a tiny render and tiny files);
* **work**: in a child process of its own, after a tiny warm-up render of the same flags
  (kernel loaded, thread pool started, as in the start-up run), the library's
  ``engine.prepare`` + ``engine.render`` + integer image + writing the float and SMV
  files the command writes for this case (each part timed), once per process as the
  command does it.

Prints ``(whole - start-up) / work``: 1.0 means the command costs nothing beyond its
start-up and the work itself. The processor and the load average are printed too.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from . import cases

_WORK = r"""
import json, sys, time
import nbnumba
from nbnumba import engine, output
argv = json.loads(sys.argv[1])
cfg, out = nbnumba.config_from_args(argv)
tiny, _ = nbnumba.config_from_args(argv + ["-detpixels", "8"])
engine.render(engine.prepare(tiny))         # warm-up: kernel loaded, thread pool started
times = {"prepare": [], "render": [], "images": [], "write": []}
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    setup = engine.prepare(cfg)
    t1 = time.perf_counter()
    result = engine.render(setup)
    t2 = time.perf_counter()
    ints = output.make_int_image(result, out.int_scale, out.adc)
    t3 = time.perf_counter()
    output.write_float_image(result, out.floatfile)
    output.write_smv_image(result, out.intfile, ints.pixels)
    t4 = time.perf_counter()
    for key, a, b in (("prepare", t0, t1), ("render", t1, t2), ("images", t2, t3),
                      ("write", t3, t4)):
        times[key].append(b - a)
print(json.dumps(times))
"""


def _command(nbnumba, flags, folder, env):
    t0 = time.perf_counter()
    subprocess.run([nbnumba] + flags + ["-noprogress"], cwd=folder, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _processor():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m profiles.command_overhead")
    p.add_argument("--case", default="F4096", choices=sorted(cases.CASES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    nbnumba = shutil.which("nbnumba") or os.path.join(os.path.dirname(sys.executable), "nbnumba")
    env = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads))
    flags = cases.COMMON + cases.CASES[args.case].split()
    tiny = flags + ["-detpixels", "8"]
    whole, start, runs = [], [], {}
    with tempfile.TemporaryDirectory() as folder:
        _command(nbnumba, tiny, folder, env)            # warm the cache
        for _ in range(args.repeats):
            whole.append(_command(nbnumba, flags, folder, env))
            start.append(_command(nbnumba, tiny, folder, env))
            run = subprocess.run([sys.executable, "-c", _WORK, json.dumps(flags), "1"],
                                 cwd=folder, env=env, check=True, capture_output=True,
                                 text=True)
            for key, values in json.loads(run.stdout.splitlines()[-1]).items():
                runs.setdefault(key, []).extend(values)
    parts = {k: statistics.median(v) for k, v in runs.items()}
    work = sum(parts.values())
    w, s = statistics.median(whole), statistics.median(start)
    print(f"processor: {_processor()}, {os.cpu_count()} CPUs, {args.threads} threads; "
          f"load average {_load()}")
    print(f"case {args.case}: medians of {args.repeats}")
    print(f"  whole process      {w:7.3f} s")
    print(f"  start-up (8 x 8)   {s:7.3f} s")
    print("  work in-process    %7.3f s (%s)" % (work, ", ".join(
        f"{k} {v:.3f}" for k, v in parts.items())))
    print(f"  (whole - start-up) / work = {(w - s) / work:.3f}")


if __name__ == "__main__":
    main()
