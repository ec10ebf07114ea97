"""Where the start-up time of one ``nbnumba`` process goes, with a warm kernel cache.

    python -m profiles.startup                 # a 64 x 64 image, one evaluation per pixel
    python -m profiles.startup --repeats 7 -- -cell 100 100 100 90 90 90 -default_F 100 \\
        -N 5 -detpixels 64 -mosaic 0.5 -mosaic_dom 10

Each repeat is a fresh interpreter that runs the ``nbnumba`` command's steps in order
and times each one: interpreter start, importing NumPy, numba, the rest of nbnumba and
the command, parsing the flags, the set-up, loading each compiled function from numba's
cache (numba's cache loads timed by function), the rest of rendering, writing the
files. It also times the whole ``nbnumba`` process. The medians of wall and CPU time
(user + system) are printed as a Markdown table; on a busy machine the CPU time is the
better measure. The first repeat fills the cache when it is cold (not counted).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

DEFAULT_FLAGS = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
                 "-detpixels", "64", "-nopgm", "-nonoise", "-seed", "1", "-noprogress"]

# The child: the steps of nbnumba_cli.main.run, each timed (seconds since the
# interpreter started, from the process start time that Linux records).
_CHILD = r"""
import io, json, os, sys, time
marks = [("interpreter start", None)]
def mark(name):
    marks.append((name, time.perf_counter(), time.process_time()))
import numpy
mark("import numpy")
from nbnumba_cli.entry import _lean_numba_import
with _lean_numba_import():   # as the nbnumba command does
    import numba
mark("import numba")
import nbnumba
mark("import nbnumba (modules, decorators)")
from nbnumba_cli import main as cli_main
from nbnumba_cli.parse import parse_arguments, load_inputs
from nbnumba import _jit, engine
from nbnumba.io.atomic import FileSet
mark("import the command")
from numba.core import caching
loads = []    # (step it happened in, function, seconds)
real_load = caching.Cache.load_overload
def timed_load(self, sig, target_context):
    t, c = time.perf_counter(), time.process_time()
    try:
        return real_load(self, sig, target_context)
    finally:
        loads.append((len(marks), self._py_func.__qualname__, time.perf_counter() - t,
                      time.process_time() - c))
caching.Cache.load_overload = timed_load
state = parse_arguments(json.loads(sys.argv[1]))
load_inputs(state)
mark("parse the flags, read inputs")
with _jit.no_blas_probe():
    from numba.core.registry import cpu_target
    cpu_target.target_context.refresh()
    cpu_target.target_context.codegen()
    mark("initialise numba's CPU target (else part of the first cache load)")
    setup = engine.prepare(state.config)
    mark("set-up (engine.prepare)")
    result = engine.render(setup)
    mark("render")
    with FileSet() as files:
        cli_main._write_outputs(result, state.out, files, lambda text="": None)
    mark("write the files")
print(json.dumps({"marks": marks, "loads": loads}))
"""


def _process_age():
    """(wall, CPU) seconds since this process started (Linux /proc, clock ticks)."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - int(fields[19]) / tick, (int(fields[11]) + int(fields[12])) / tick


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_repeat(flags, work):
    """One fresh interpreter running the steps; returns {step: (wall s, CPU s)}."""
    child = ("import time\n_t0, _c0 = time.perf_counter(), time.process_time()\n"
             "from profiles.startup import _process_age\n_age = _process_age()\n" + _CHILD
             + "\nprint(json.dumps({'age': _age, 't0': _t0, 'c0': _c0}))\n")
    t, c = time.perf_counter(), _children_cpu()
    proc = subprocess.run([sys.executable, "-c", child, json.dumps(flags)], cwd=work,
                          capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=os.getcwd()))
    wall, cpu = time.perf_counter() - t, _children_cpu() - c
    lines = proc.stdout.strip().splitlines()
    data, start = json.loads(lines[-2]), json.loads(lines[-1])
    steps = {"interpreter start": tuple(start["age"])}
    previous = (start["t0"], start["c0"])
    for step, (name, when, cpu_when) in enumerate(data["marks"][1:], start=1):
        loaded = [(w, c) for at, _, w, c in data["loads"] if at == step]
        key = name + (" (less cache loads)" if loaded else "")
        steps[key] = (when - previous[0] - sum(w for w, _ in loaded),
                      cpu_when - previous[1] - sum(c for _, c in loaded))
        previous = (when, cpu_when)
    for _, name, w, c in data["loads"]:
        key = "load %s from the cache" % name
        old = steps.get(key, (0.0, 0.0))
        steps[key] = (old[0] + w, old[1] + c)
    counted = [sum(v[i] for v in steps.values()) for i in (0, 1)]
    steps["exit (and process start-up outside Python)"] = (wall - counted[0], cpu - counted[1])
    steps["total of this process"] = (wall, cpu)
    t, c = time.perf_counter(), _children_cpu()
    subprocess.run(["nbnumba", *flags], cwd=work, capture_output=True, check=True)
    steps["a whole nbnumba process, same flags"] = (time.perf_counter() - t, _children_cpu() - c)
    return steps


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m profiles.startup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("flags", nargs="*", help="nbnumba flags (after --)")
    opts = parser.parse_args(argv)
    flags = opts.flags or DEFAULT_FLAGS
    with tempfile.TemporaryDirectory() as work:
        one_repeat(flags, work)  # fills the cache if needed
        runs = [one_repeat(flags, work) for _ in range(opts.repeats)]
    print("| step | wall s | CPU s |\n|---|---|---|")
    for name in runs[0]:
        wall = statistics.median(r.get(name, (0.0, 0.0))[0] for r in runs)
        cpu = statistics.median(r.get(name, (0.0, 0.0))[1] for r in runs)
        print("| %s | %.3f | %.3f |" % (name, wall, cpu))
    print("\n%d repeats; load average %.2f" % (opts.repeats, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
