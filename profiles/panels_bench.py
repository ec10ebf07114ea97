"""A detector of several panels against one panel of as many pixels: kernel time.

    python -m profiles.panels_bench [--repeats 5] [--threads 2] [--flags "..."] [--out FILE]

Cases (every one with the same crystal, beam and sampling flags, ``--flags``):

* **pilatus6m**: ``--detector pilatus6m`` (60 modules of 487 x 195 pixels in a 2463 x
  2527 image with its gaps), 5 697 900 pixels rendered;
* **one panel**: one C detector of 2435 x 2340 pixels (5 x 487 by 12 x 195: the same
  number of pixels), same pixel size and distance;
* **tiles**: 64 explicit panels of 487 x 195 pixels at different orientations around
  the beam (an experiment's panels: each its own corner, axes and distance) laid out
  one below the other, 6 077 760 pixels; its time is scaled to the one panel's pixel
  count for the ratio.

Each case is prepared once; then the renders alternate (pilatus6m, one panel, tiles,
pilatus6m, ...), ``--repeats`` of each after one warm-up round, and the medians are
compared, per pixel rendered. Times are the wall time of :func:`nbnumba.render`
(kernel, solid-angle sum and statistics) and the CPU time of the process meanwhile (all
threads: the work done, less sensitive than the wall time to other processes sharing
the cores). Results go to a JSON file (default
``profiles/results/panels-DATE.json``) and a table on stdout, with the load average (a
loaded machine slows every case, so only the ratios measured side by side mean much).
"""
import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "profiles", "results")

FLAGS = ("-cell 79.1 79.1 38.4 90 90 90 -default_F 100 -N 10 -lambda 0.98 -distance 250 "
         "-oversample 1 -mosaic 0.05 -mosaic_dom 2 -phi 0 -osc 0.1 -phisteps 2")


def _tiles(count=64, distance=0.25, pixel=0.172e-3):
    """``count`` panels of 487 x 195 pixels on a ring of rings around the beam (beam
    along +x: nbnumba's MOSFLM frame), each turned and tilted by its own angles."""
    from nbnumba.panels import DetectorPanels, Panel
    import numpy as np
    panels = []
    for k in range(count):
        ring, slot = divmod(k, 16)
        azimuth = 2.0 * math.pi * (slot + 0.5 * ring) / 16
        radius = 0.03 + 0.05 * ring
        radial = np.array([0.0, math.cos(azimuth), math.sin(azimuth)])
        centre = np.array([distance, 0.0, 0.0]) + radius * radial
        tilt = math.radians(2.0 + 0.1 * k)
        turn = azimuth + 0.2 * k
        fast = np.array([0.0, math.cos(turn), math.sin(turn)])
        slow = np.cross(np.array([1.0, 0.0, 0.0]), fast)
        fast = math.cos(tilt) * fast + math.sin(tilt) * np.array([1.0, 0.0, 0.0])
        slow = slow - (slow @ fast) * fast
        slow /= np.linalg.norm(slow)
        origin = centre - fast * 487 * pixel / 2 - slow * 195 * pixel / 2
        panels.append(Panel(tuple(origin), tuple(fast), tuple(slow), pixel, 487, 195,
                            "tile%02d" % k))
    return DetectorPanels(panels)


def _setups(flags):
    import nbnumba
    from nbnumba import config_from_args, prepare
    base = flags.split()
    named, _ = config_from_args(base + ["--detector", "pilatus6m"])
    one, _ = config_from_args(base + ["-pixel", "0.172", "-detpixels_f", "2435",
                                      "-detpixels_s", "2340"])
    tiles, _ = config_from_args(base + ["-pixel", "0.172"])
    tiles.detector.convention = "CUSTOM"
    tiles.detector.beam_vector = (1.0, 0.0, 0.0)
    tiles.detector.polar_vector = (0.0, 0.0, 1.0)
    tiles.detector.spindle_axis = (0.0, 0.0, 1.0)
    tiles.detector.panels = _tiles()
    del nbnumba
    return {"pilatus6m": prepare(named), "one panel": prepare(one), "tiles": prepare(tiles)}


def _rendered_pixels(setup):
    if setup.panels is None:
        return setup.fpixels * setup.spixels
    return sum(p.fpixels * p.spixels for p in setup.panels.panels)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m profiles.panels_bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--flags", default=FLAGS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))
    from nbnumba import render
    setups = _setups(args.flags)
    names = list(setups)
    times = {name: [] for name in names}
    cpu = {name: [] for name in names}
    load_before = os.getloadavg()
    for round_ in range(args.repeats + 1):
        for name in names:
            start, start_cpu = time.perf_counter(), time.process_time()
            render(setups[name], threads=args.threads)
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() - start_cpu
            if round_:                      # round 0 warms up (compiles, caches)
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
            print("round %d %-10s %.3f s (CPU %.3f s)" % (round_, name, seconds, cpu_seconds),
                  file=sys.stderr)
    load_after = os.getloadavg()
    pixels = {name: _rendered_pixels(setups[name]) for name in names}
    medians = {name: statistics.median(times[name]) for name in names}
    per_pixel = {name: medians[name] / pixels[name] for name in names}
    ratios = {name: per_pixel[name] / per_pixel["one panel"] for name in names}
    cpu_medians = {name: statistics.median(cpu[name]) for name in names}
    cpu_ratios = {name: cpu_medians[name] / pixels[name]
                  / (cpu_medians["one panel"] / pixels["one panel"]) for name in names}
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "machine": platform.platform(), "cpus": os.cpu_count(),
              "threads": args.threads, "flags": args.flags, "repeats": args.repeats,
              "load_before": load_before, "load_after": load_after, "pixels": pixels,
              "seconds": times, "median_seconds": medians, "ratio_per_pixel": ratios,
              "cpu_seconds": cpu, "median_cpu_seconds": cpu_medians,
              "cpu_ratio_per_pixel": cpu_ratios}
    out = args.out
    if out is None:
        os.makedirs(RESULTS, exist_ok=True)
        out = os.path.join(RESULTS, "panels-%s.json" % datetime.date.today().isoformat())
    with open(out, "w") as handle:
        json.dump(result, handle, indent=2)
    print("| case | pixels rendered | median s | s per Mpixel | ratio to one panel | "
          "median CPU s | CPU ratio to one panel |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        print("| %s | %d | %.3f | %.4f | %.3f | %.3f | %.3f |" % (
            name, pixels[name], medians[name], per_pixel[name] * 1e6, ratios[name],
            cpu_medians[name], cpu_ratios[name]))
    print("load average %.2f before, %.2f after; %d threads; results: %s"
          % (load_before[0], load_after[0], args.threads, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
