"""Writing a series as NXmx (HDF5) against writing it as SMV: time and size.

    python -m profiles.nexus_bench [--frames 100] [--pixels 1024] [--repeats 3] [--sync]
                                   [--no-gzip] [--out FILE]

No rendering: the frames are made once, in memory, like noise images (Poisson counts of
a weak background with a few bright spots, plus the -adc offset of 40, uint16). Then
each way of writing a series writes every frame as ``nbnumba-series`` does in its
workers, through the same atomic writing:

* **smv**: ``<name>_noise.img`` per frame (:func:`nbnumba.output.write_smv_image`'s
  header and pixels);
* **nxmx** (bitshuffle-LZ4, what nbnumba writes): ``<name>.h5`` per frame
  (:func:`nbnumba.io.nexus.frame_file_bytes`, the chunks compressed outside HDF5 on
  several threads, :mod:`nbnumba.io.bitshuffle`) and, at the end, the master file
  joining them (:func:`nbnumba.io.nexus.master_bytes`);
* **nxmx-filter**: the same files, compressed by HDF5's bitshuffle filter (one thread,
  the same bytes);
* **nxmx-gzip**: the same files with gzip (what is written without ``hdf5plugin``).

All write to the same temporary directory (on the same file system), alternating,
best of ``--repeats`` each (with ``--sync``: until ``os.sync()`` returns, the data on
disk). Then the same bytes are made in memory only (nothing written), best of
``--repeats``, with the CPU time of the process (all threads). Results: a JSON file (default ``profiles/results/nexus-DATE.json``) and a
summary on stdout, with the load average.
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "profiles" / "results"
FLAGS = ("-cell 50 60 70 90 90 90 -default_F 100 -N 5 -distance 100 -pixel 0.1 -phi 0 "
         "-osc 0.1 -seed 1").split()


def make_frames(count, pixels, seed=1):
    """``count`` distinct noise-like uint16 frames (slow, fast)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:pixels, 0:pixels]
    r = np.hypot(x - pixels / 2, y - pixels / 2) / pixels
    background = 3.0 * np.exp(-4 * r)
    frames = []
    for _ in range(count):
        lam = background.copy()
        spots = rng.integers(0, pixels, size=(200, 2))
        lam[spots[:, 0], spots[:, 1]] += rng.exponential(500.0, size=200)
        frames.append((rng.poisson(lam) + 40).astype(np.uint16))
    return frames


def _records(pixels, count):
    import nbnumba
    from nbnumba.io import nexus
    cfg, _ = nbnumba.config_from_args(FLAGS + ["-detpixels", str(pixels)])
    setup = nbnumba.prepare(cfg)
    return setup, nexus.frame_records([setup] * count)


def write_smv(directory, frames, setup):
    from nbnumba import output
    from nbnumba.io import smv
    header = output.smv_header(setup)
    paths = []
    for i, pixels in enumerate(frames):
        path = os.path.join(directory, "sim_%05d_noise.img" % i)
        smv.write_smv(path, header, pixels)
        paths.append(path)
    return paths


def write_nxmx(directory, frames, records):
    from nbnumba.io import nexus
    from nbnumba.io.atomic import write_atomic
    paths = []
    for i, pixels in enumerate(frames):
        path = os.path.join(directory, "sim_%05d.h5" % i)
        write_atomic(path, nexus.frame_file_bytes(pixels))
        paths.append(path)
    master = os.path.join(directory, "sweep.nxs")
    write_atomic(master, nexus.master_bytes(
        records, sources=nexus.relative_sources(paths, master), dtype="uint16"))
    return paths + [master]


def encode(frames, name, setup):
    """Seconds (wall, CPU of the process) to make every frame file's bytes in memory,
    nothing written: the cost of the format itself (compression, HDF5)."""
    from nbnumba import output
    from nbnumba.io import nexus, smv
    header = output.smv_header(setup)
    t0, c0 = time.perf_counter(), time.process_time()
    with _variant(name):
        for pixels in frames:
            if name == "smv":
                smv.smv_bytes(header, pixels)
            else:
                nexus.frame_file_bytes(pixels)
    return time.perf_counter() - t0, time.process_time() - c0


def _timed(function, sync):
    directory = tempfile.mkdtemp(prefix="nexus-bench-", dir=os.environ.get("TMPDIR"))
    os.sync()   # earlier runs' dirty pages out of the way
    try:
        t0 = time.perf_counter()
        paths = function(directory)
        if sync:
            os.sync()
        seconds = time.perf_counter() - t0
        size = sum(os.path.getsize(p) for p in paths)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return seconds, size


def _variant(name):
    """A context in which nbnumba.io.nexus writes as ``name`` says."""
    from unittest import mock
    from nbnumba.io import nexus
    if name == "nxmx-filter":
        return mock.patch.object(nexus, "DIRECT_CHUNKS", False)
    if name == "nxmx-gzip":
        return mock.patch.object(nexus, "compression", lambda: (
            "gzip", {"compression": "gzip", "compression_opts": 4, "shuffle": True}))
    return contextlib.nullcontext()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--pixels", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sync", action="store_true",
                        help="include os.sync() (the data on disk) in the timings")
    parser.add_argument("--no-gzip", action="store_true", help="leave out nxmx-gzip")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    from nbnumba.io import bitshuffle, nexus
    frames = make_frames(args.frames, args.pixels)
    setup, records = _records(args.pixels, args.frames)
    names = ["smv", "nxmx", "nxmx-filter"] + ([] if args.no_gzip else ["nxmx-gzip"])
    writers = {"smv": lambda d: write_smv(d, frames, setup)}
    for name in names[1:]:
        writers[name] = lambda d: write_nxmx(d, frames, records)
    load_before = os.getloadavg()
    times = {name: [] for name in names}
    sizes = {}
    for _ in range(args.repeats):
        for name in names:
            with _variant(name):
                seconds, size = _timed(writers[name], args.sync)
            times[name].append(seconds)
            sizes[name] = size
    encoded = {name: [] for name in names}
    for _ in range(args.repeats):
        for name in names:
            encoded[name].append(encode(frames, name, setup))
    load_after = os.getloadavg()
    best = {k: min(v) for k, v in times.items()}
    best_encode = {k: min(v) for k, v in encoded.items()}   # by wall time
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "cpus": os.cpu_count(), "frames": args.frames,
        "pixels": args.pixels, "compression": nexus.compression()[0],
        "direct_chunks": bitshuffle.available(), "sync": args.sync,
        "seconds": times, "best": best, "bytes": sizes,
        "encode_seconds_wall_cpu": encoded, "best_encode": best_encode,
        "time_ratio": {k: best[k] / best["smv"] for k in names[1:]},
        "size_ratio": {k: sizes[k] / sizes["smv"] for k in names[1:]},
        "load_before": load_before, "load_after": load_after,
    }
    out = Path(args.out) if args.out else RESULTS / (
        "nexus-%s.json" % datetime.date.today().isoformat())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("%d frames of %d x %d; NXmx as written: %s%s%s" % (
        args.frames, args.pixels, args.pixels, result["compression"],
        " (chunks compressed outside HDF5)" if result["direct_chunks"] else "",
        "; os.sync() included" if args.sync else ""))
    for name in names:
        ratio = "" if name == "smv" else "  x%.2f SMV's time, x%.3f its size" % (
            result["time_ratio"][name], result["size_ratio"][name])
        print("%-11s best %.3f s (%s), %6.1f MB%s" % (
            name, best[name], ", ".join("%.3f" % t for t in times[name]),
            sizes[name] / 1e6, ratio))
    print("in memory, nothing written (best wall time, the CPU time of all threads):")
    for name in names:
        print("%-11s %.3f s wall, %.3f s CPU (%.2f ms a frame)" % (
            name, best_encode[name][0], best_encode[name][1],
            1e3 * best_encode[name][0] / args.frames))
    print("load average before %s, after %s" % (
        " ".join("%.2f" % x for x in load_before), " ".join("%.2f" % x for x in load_after)))
    print("results: %s" % out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
