"""Per-frame cost of a series against the library's, and what dask workers add.

    python -m profiles.series_bench [--pixels 512 1024] [--frames 16] [--repeats 3]
                                    [--quick] [--out FILE]

The frames are a rotation series of the example inputs (``-mat examples/A_cubic.mat
-hkl examples/P1_grid.hkl -N 5 -distance 100 -seed 1 --frame-osc 0.1``, so 2 phi steps
per frame), every output file written (float, int, PGM, noise). For each frame size, on
an idle machine and then with two busy-loop processes running (oversubscribed), each
number the median of ``--repeats`` runs:

* **library**: per frame, ``prepare`` + ``render`` + integer, PGM and noise images +
  writing the four files, straight through the library (the floor of a frame's cost);
* **serial series**: per frame, :func:`nbnumba.series.write_series` in this process with
  every core (its frame time: the kernels are loaded before the first frame);
* **1 thread vs --workers 2**: frames per second of ``write_series`` with one numba
  thread in this process against a 2-process dask ``LocalCluster`` with one thread each
  (cluster start and kernel loading excluded; the images of both are compared byte for
  byte).

``--quick`` is a smoke test (64 and 128 pixels, 4 frames, one repeat). Results: a JSON
file (default ``profiles/results/series-DATE.json``) and a table on stdout.
"""
import argparse
import datetime
import json
import multiprocessing
import os
import platform
import shutil
import statistics
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


def frameset(frames, pixels, osc=0.1):
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


def _busy():
    while True:
        pass


def _same(a, b):
    names = sorted(p.name for p in Path(a).iterdir() if not p.name.startswith("."))
    other = sorted(p.name for p in Path(b).iterdir() if not p.name.startswith("."))
    return names == other and all((Path(a) / n).read_bytes() == (Path(b) / n).read_bytes()
                                  for n in names)


def library_per_frame(fs, work):
    """Seconds per frame of the library path: prepare, render, images, four files."""
    from nbnumba import engine, output
    o = fs.outputs
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    for i in range(len(fs)):
        result = engine.render(engine.prepare(fs.config(i)))
        ints = output.make_int_image(result, o.int_scale, o.adc)
        pgm = output.make_pgm(result, o.pgm_scale, ints.scale)
        noise = output.make_noise_image(result, fs.noise_seed(i), o.adc)
        output.write_float_image(result, str(work / "f.bin"))
        output.write_smv_image(result, str(work / "f.img"), ints.pixels)
        output.write_pgm(result, str(work / "f.pgm"), pgm)
        output.write_smv_image(result, str(work / "f_noise.img"), noise.pixels)
    return (time.perf_counter() - t) / len(fs)


def series_run(fs, work, threads=None, executor=None):
    """The report of one written series (its frame_seconds exclude start and loading)."""
    from nbnumba import series
    report = series.write_series(fs, str(work / "f_{:03d}"), executor=executor,
                                 threads=threads, progress=False)
    assert report.ok, report.failed
    return report


def measure(pixels, frames, repeats, work, label):
    """One table row: every number of one frame size under the current load."""
    from nbnumba import series
    fs = frameset(frames, pixels)
    few = frameset(max(2, frames // 2), pixels)
    n = 0

    def fresh():
        nonlocal n
        n += 1
        return work / ("%s-%d-%d" % (label, pixels, n))

    load0 = os.getloadavg()[0]
    lib = statistics.median(library_per_frame(few, fresh()) for _ in range(repeats))
    ser = statistics.median(series_run(few, fresh()).frame_seconds / len(few)
                            for _ in range(repeats))
    one_dirs, one = [], []
    for _ in range(repeats):
        one_dirs.append(fresh())
        one.append(len(fs) / series_run(fs, one_dirs[-1], threads=1).frame_seconds)
    with series.dask_executor(workers=2, threads=1) as (executor, what):
        series_run(frameset(2, 32), fresh(), executor=executor)   # start, load the kernels
        cluster_dirs, cluster = [], []
        for _ in range(repeats):
            cluster_dirs.append(fresh())
            report = series_run(fs, cluster_dirs[-1], executor=executor)
            cluster.append(len(fs) / report.frame_seconds)
        threads = report.frames[0].threads
    row = {"pixels": pixels, "load": label, "frames": frames,
           "loadavg_before": load0, "loadavg_after": os.getloadavg()[0],
           "library_s_per_frame": lib, "serial_s_per_frame": ser,
           "serial_over_library": ser / lib,
           "serial_1_thread_fps": statistics.median(one),
           "workers_2x1_fps": statistics.median(cluster), "worker_threads": threads,
           "workers_over_1_thread": statistics.median(cluster) / statistics.median(one),
           "identical": _same(one_dirs[0], cluster_dirs[0]), "executor": what}
    print("%5d^2 %-15s library %.3f s/frame | serial series %.3f s/frame (%.2fx) | "
          "1 thread %.2f frames/s, 2 workers x %d thread %.2f frames/s (%.2fx) | "
          "identical %s | load %.1f-%.1f"
          % (pixels, label, lib, ser, row["serial_over_library"], row["serial_1_thread_fps"],
             threads, row["workers_2x1_fps"], row["workers_over_1_thread"], row["identical"],
             load0, row["loadavg_after"]), flush=True)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m profiles.series_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pixels", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--frames", type=int, default=16,
                   help="frames of the 1-thread and worker runs (half for the per-frame costs)")
    p.add_argument("--repeats", type=int, default=3, help="runs per number (the median kept)")
    p.add_argument("--busy", type=int, default=2, help="busy-loop processes when oversubscribed")
    p.add_argument("--quick", action="store_true", help="a smoke test: small and short")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.pixels, args.frames, args.repeats = [64, 128], 4, 1

    import numba

    from nbnumba import series

    work = Path(tempfile.mkdtemp(prefix="nbnumba-series-bench-"))
    result = {
        "benchmark": "series", "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": _cpu_model(), "cores": series.available_cores(),
                    "python": platform.python_version(), "numba": numba.__version__},
        "flags": base_flags(0)[:-4] + ["--frame-osc", "0.1"], "rows": []}
    print("series per-frame cost and workers; %s, %d cores; medians of %d"
          % (result["machine"]["cpu"], result["machine"]["cores"], args.repeats))
    try:
        series_run(frameset(2, 32), work / "warm")    # load the kernels in this process
        result["machine"]["threading_layer"] = numba.threading_layer()
        for label, busy in (("idle", 0), ("oversubscribed", args.busy)):
            ctx = multiprocessing.get_context("spawn")
            loops = [ctx.Process(target=_busy, daemon=True) for _ in range(busy)]
            for proc in loops:
                proc.start()
            try:
                for pixels in args.pixels:
                    result["rows"].append(measure(pixels, args.frames, args.repeats, work,
                                                  label))
            finally:
                for proc in loops:
                    proc.terminate()
                    proc.join()
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
    return 0 if all(r["identical"] for r in result["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
