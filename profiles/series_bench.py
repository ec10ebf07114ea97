"""Frames per second of a rotation series: in-process serial vs a 2-worker dask LocalCluster.

    python -m profiles.series_bench [--frames 64] [--pixels 512] [--workers 2]
                                    [--repeats 1] [--out FILE]

The series is ``nbnumba-series`` with the example inputs (``-mat examples/A_cubic.mat
-hkl examples/P1_grid.hkl -N 5 -distance 100 -detpixels 512 -seed 1 --frame-osc 0.1``,
so 2 phi steps per frame), every output file written (float, int, PGM, noise), through
the library (:func:`nbnumba.series.write_series`):

* **serial**: one frame after another in this process, numba on every core;
* **cluster**: a ``LocalCluster`` of ``--workers`` processes with cores/workers numba
  threads each. Its start-up (processes, imports, numba cache loads) is timed
  separately, and a small warm-up series runs on it first, so the rate is the steady
  one; the rate including start-up is reported too.

The images of both runs are compared byte for byte. Results: a JSON file
(default ``profiles/results/series-DATE.json``) and a summary on stdout.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "profiles" / "results"


def base_flags(pixels):
    ex = ROOT / "examples"
    return ["-mat", str(ex / "A_cubic.mat"), "-hkl", str(ex / "P1_grid.hkl"), "-N", "5",
            "-distance", "100", "-detpixels", str(pixels), "-seed", "1", "-pgmfile", "x.pgm",
            "-noprogress"]


def frameset(frames, pixels, osc):
    from nbnumba import config_from_args, series
    cfg, out = config_from_args(base_flags(pixels))
    return series.rotation_series(cfg, frames, osc, seed=out.seed,
                                  outputs=series.OutputSpec.from_cli(out))


def _cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _same(a, b):
    names = sorted(p.name for p in Path(a).iterdir() if not p.name.startswith("."))
    other = sorted(p.name for p in Path(b).iterdir() if not p.name.startswith("."))
    return names == other and all((Path(a) / n).read_bytes() == (Path(b) / n).read_bytes()
                                  for n in names)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m profiles.series_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--pixels", type=int, default=512)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--osc", type=float, default=0.1, help="degrees per frame")
    p.add_argument("--repeats", type=int, default=1, help="timed series per mode (best kept)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import numba

    from nbnumba import series

    work = Path(tempfile.mkdtemp(prefix="nbnumba-series-bench-"))
    fs = frameset(args.frames, args.pixels, args.osc)
    warm = frameset(2 * args.workers, 32, args.osc)
    load0 = os.getloadavg()
    result = {
        "benchmark": "series", "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": _cpu_model(), "cores": series.available_cores(),
                    "python": platform.python_version(), "numba": numba.__version__,
                    "threading_layer": None, "loadavg_before": load0},
        "series": {"frames": args.frames, "pixels": args.pixels, "osc_deg": args.osc,
                   "flags": base_flags(args.pixels), "outputs": fs.outputs.kinds()},
    }
    try:
        # serial: warm (load the kernels), then time
        series.write_series(warm, str(work / "warm" / "f_{:03d}"), progress=False)
        result["machine"]["threading_layer"] = numba.threading_layer()
        times = []
        for r in range(args.repeats):
            d = work / ("serial%d" % r)
            t = time.perf_counter()
            rep = series.write_series(fs, str(d / "f_{:03d}"), progress=False)
            times.append(time.perf_counter() - t)
            assert rep.ok, rep.failed
        serial = min(times)
        result["serial"] = {"seconds": serial, "fps": args.frames / serial, "all": times,
                            "threads": numba.get_num_threads()}
        print("serial:  %d frames in %.2f s: %.2f frames/s (%d numba threads)"
              % (args.frames, serial, args.frames / serial, numba.get_num_threads()))

        t = time.perf_counter()
        with series.dask_executor(workers=args.workers) as (executor, what):
            startup = time.perf_counter() - t
            t = time.perf_counter()
            series.write_series(warm, str(work / "cwarm" / "f_{:03d}"), executor=executor,
                                progress=False)
            warmup = time.perf_counter() - t
            times, threads = [], None
            for r in range(args.repeats):
                d = work / ("cluster%d" % r)
                t = time.perf_counter()
                rep = series.write_series(fs, str(d / "f_{:03d}"), executor=executor,
                                          progress=False)
                times.append(time.perf_counter() - t)
                assert rep.ok, rep.failed
                threads = rep.frames[0].threads
        cluster = min(times)
        same = _same(work / "serial0", work / "cluster0")
        result["cluster"] = {
            "workers": args.workers, "threads_per_worker": threads, "executor": what,
            "startup_seconds": startup, "warmup_seconds": warmup, "seconds": cluster,
            "fps": args.frames / cluster, "all": times,
            "fps_with_startup": args.frames / (cluster + startup + warmup),
            "identical_to_serial": same}
        print("cluster: %d frames in %.2f s: %.2f frames/s (%s); start-up %.1f s + warm-up "
              "%.1f s, %.2f frames/s including them; files identical to serial: %s"
              % (args.frames, cluster, args.frames / cluster, what, startup, warmup,
                 result["cluster"]["fps_with_startup"], same))
        result["speedup"] = serial / cluster
        result["machine"]["loadavg_after"] = os.getloadavg()
        print("cluster / serial: %.2fx   (load average before %.2f, after %.2f)"
              % (result["speedup"], load0[0], result["machine"]["loadavg_after"][0]))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    out = Path(args.out) if args.out else None
    if out is None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = "series-" + datetime.date.today().isoformat()
        out = RESULTS / (stem + ".json")
        n = 2
        while out.exists():
            out = RESULTS / ("%s-%d.json" % (stem, n))
            n += 1
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("results: %s" % out)
    return 0 if result["cluster"]["identical_to_serial"] else 1


if __name__ == "__main__":
    sys.exit(main())
