"""Make the golden sets of nb-nonbragg and nb-noisify from the C programs.

Runs the C nonBragg and noisify (paths in ``NB_NONBRAGG_BIN`` and ``NB_NOISIFY_BIN``;
this script never builds them) over the cases below and stores their stdout and output
files, gzipped, in ``tests/data/toolbox/`` with the inputs they read::

    NB_NONBRAGG_BIN=/path/to/nonBragg NB_NOISIFY_BIN=/path/to/noisify \\
        python -m profiles.toolbox_golden

The inputs (two scattering tables, a source file, float images, an SMV header) are
computed here, so the set is reproducible. The C nonBragg writes 2 bytes per pixel into
its PGM (reading past its buffer): only the header and the first byte per pixel are kept.
``tests/test_toolbox_golden.py`` compares nbnumba's commands with these files.
"""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "toolbox"

NB = ["-detpixels", "48", "-pixel", "0.5", "-distance", "60"]
NONBRAGG_CASES = {
    "defaults": ["-pixel", "2", "-seed", "1"],
    "water_seed": NB + ["-seed", "5"],
    "four_stol": NB + ["-seed", "1", "-4stol", "air.stol", "-thickness", "2", "-density",
                       "0.0012", "-MW", "29"],
    "q_table": NB + ["-seed", "2", "-Q", "water.stol"],
    "missing_and_negative_F": NB + ["-seed", "3", "-stol", "gaps.stol"],
    "polar": NB + ["-seed", "4", "-polar", "0.9"],
    "nopolar": NB + ["-seed", "4", "-nopolar"],
    "oversample": NB + ["-seed", "4", "-oversample", "2"],
    "roi": NB + ["-seed", "6", "-roi", "10", "30", "5", "40"],
    "divergence_round": NB + ["-seed", "7", "-divergence", "4", "-divsteps", "3"],
    "divergence_square": NB + ["-seed", "7", "-hdivrange", "2", "-vdivrange", "1",
                               "-hdivstep", "0.5", "-vdivsteps", "2", "-square_div"],
    "dispersion": NB + ["-seed", "8", "-dispersion", "10", "-dispsteps", "3"],
    "sourcefile": NB + ["-seed", "8", "-sourcefile", "sources.txt"],
    "twotheta": NB + ["-seed", "9", "-twotheta", "20"],
    "detector_rotations": NB + ["-seed", "9", "-detector_rotx", "5", "-detector_roty", "3",
                                "-detector_rotz", "10"],
    "beam_centre": NB + ["-seed", "10", "-Xbeam", "5", "-Ybeam", "18"],
    "close_distance_org": NB + ["-seed", "10", "-close_distance", "55", "-ORGX", "20",
                                "-ORGY", "30"],
    "curved_point_pixel": NB + ["-seed", "11", "-curved_det", "-point_pixel"],
    "molecules_flux": NB + ["-seed", "12", "-molecules", "1e15", "-flux", "1e12",
                            "-exposure", "0.1", "-beamsize", "0.05"],
    "scales_adc": NB + ["-seed", "13", "-scale", "1e-9", "-pgmscale", "3e-11", "-adc", "10",
                        "-energy", "9000", "-phi", "10", "-osc", "1"],
    "rectangular_nonoise": ["-detpixels_x", "40", "-detpixels_y", "24", "-pixel", "0.8",
                            "-distance", "80", "-nonoise", "-beam_vector", "1", "0.05", "0",
                            "-polar_vector", "0", "1", "1", "-polar", "0.5"],
    "detsize_xy": ["-detsize_x", "20", "-detsize_y", "16", "-pixel", "0.5", "-distance",
                   "40", "-seed", "14", "-pivot", "sample", "-Xclose", "9", "-Yclose", "8"],
    "img_stolout": ["-img", "observed.img", "-stolout", "measured.stol", "-seed", "15"],
    "img_ignore_roi": ["-img", "observed.img", "-stolout", "measured.stol", "-ignore", "0",
                       "-ignore", "65535", "-roi", "4", "50", "6", "60", "-adc", "30",
                       "-seed", "16"],
    "img_flags_override": ["-img", "observed.img", "-distance", "90", "-pixel", "0.3",
                           "-stolout", "measured.stol", "-nonoise", "-polar", "0.8"],
    # without -stolout the C writes its table to output.stol
    "img_default_stolout": ["-img", "observed.img", "-seed", "17"],
    # the C's other spellings: -wave, -molecular (weight), -sample_den, -heigh
    "c_spellings": ["-wave", "1.3", "-molecular", "20", "-sample_den", "0.9", "-heigh",
                    "0.05", "-detpixels", "24", "-pixel", "0.5", "-seed", "18"],
}

NZ = ["-floatfile", "spot.bin"]
NOISIFY_CASES = {
    "defaults": NZ + ["-seed", "1"],
    "nonoise": NZ + ["-nonoise"],
    "readout": NZ + ["-seed", "2", "-readout", "5"],
    "flicker": NZ + ["-seed", "3", "-flicker", "0.05"],
    "calibration_seed": NZ + ["-seed", "4", "-calibration", "0.1", "-calib_seed", "99"],
    "no_calibration": NZ + ["-seed", "4", "-calibration", "0"],
    "gain_adc": NZ + ["-seed", "5", "-gain", "2.5", "-adc", "10"],
    "scale_overloads": NZ + ["-seed", "6", "-scale", "300"],
    "fluence_large_means": NZ + ["-seed", "7", "-fluence", "3e34"],
    "psf_gauss_auto": NZ + ["-seed", "8", "-psf", "gauss", "-psf_fwhm", "150"],
    "psf_fiber_auto": NZ + ["-seed", "9", "-psf", "fiber", "-readout", "2"],
    "psf_fiber_radius": NZ + ["-seed", "9", "-psf", "fiber", "-psf_radius", "6",
                              "-psf_fwhm", "80"],
    "psf_gauss_nonoise": NZ + ["-psf", "gauss", "-psf_radius", "4", "-nonoise"],
    "psf_fiber_nonoise": ["-floatfile", "edge.bin", "-psf", "fiber", "-nonoise",
                          "-detpixels_x", "40"],
    "psf_negative_radius": NZ + ["-seed", "10", "-psf", "fiber", "-psf_radius", "-1"],
    "psf_edge_wrap": ["-floatfile", "edge.bin", "-detpixels_x", "40", "-seed", "11", "-psf",
                      "fiber", "-psf_fwhm", "120"],
    "rectangular_guess": ["-floatfile", "edge.bin", "-seed", "12"],
    "header_file": NZ + ["-seed", "13", "-header", "header.img"],
    "header_values": NZ + ["-seed", "14", "-distance", "250", "-lambda", "1.3", "-Xbeam",
                           "3", "-Ybeam", "2.5", "-phi", "5", "-osc", "0.5", "-pixel",
                           "0.172", "-nopgm"],
    "negative_pixels": ["-floatfile", "negative.bin", "-seed", "15", "-adc", "100"],
    "names": NZ + ["-seed", "16", "-intfile", "a.img", "-noisefile", "b.img", "-pgmfile",
                   "c.pgm", "-bin", "spot.bin"],
}
#: outputs of a run, by the flags that rename them
OUTPUT_FLAGS = {"floatfile": ("-floatfile", "-floatimage"), "intfile": ("-intfile", "-intimage"),
                "pgmfile": ("-pgmfile", "-pgmimage"), "noisefile": ("-noisefile", "-noiseimage")}
DEFAULT_NAMES = {"floatfile": "floatimage.bin", "intfile": "intimage.img", "pgmfile": "image.pgm",
                 "noisefile": "noiseimage.img"}


def _table(path, rows):
    path.write_text("".join(" ".join("%g" % v for v in row) + "\n" for row in rows))


def write_inputs(directory):
    """Write every input file the cases read into ``directory``."""
    d = Path(directory)
    s = np.arange(0, 1.21, 0.02)
    water = 2.4 * np.exp(-((s - 0.31) / 0.12) ** 2) + 1.3 / (1 + 30 * s * s) + 0.2
    _table(d / "water.stol", zip(s, water))
    s2 = np.arange(0, 2.01, 0.05)
    _table(d / "air.stol", zip(s2, 7.2 / (1 + 12 * s2 * s2)))
    gaps = [(0.0, 3.0), (0.1,), (0.2, 2.0), (0.35, -1.5), (0.5, 0.7), (0.7,), (0.9, 0.4),
            (1.2, 0.3)]
    _table(d / "gaps.stol", gaps)
    (d / "sources.txt").write_text("-10 0 0 1 1e-10\n-10 0.002 0.001 0.5 1.05e-10\n"
                                   "-10 -0.001 0 2\n")
    y, x = np.mgrid[0:64, 0:64]
    spot = 3.0 + 0.02 * x + 4000.0 * np.exp(-((x - 40) ** 2 + (y - 20) ** 2) / 6.0)
    spot[50, 10] = 2.5e5
    spot[:, 5] = 0.0
    spot.astype("<f4").tofile(d / "spot.bin")
    y, x = np.mgrid[0:24, 0:40]
    edge = 0.4 + 0.05 * y
    edge[10, 39] = 900.0
    edge[3, 0] = 300.0
    edge[23, 39] = 50.0
    edge[0, 20] = 0.004
    edge.astype("<f4").tofile(d / "edge.bin")
    neg = np.full((32, 32), 5.0)
    neg[4, 7] = -3.5
    neg[20, 1] = -0.25
    neg.astype("<f4").tofile(d / "negative.bin")
    head = ("{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
            "SIZE1=64;\nSIZE2=64;\nPIXEL_SIZE=0.2;\nDISTANCE=150;\nWAVELENGTH=0.9;\n"
            "BEAM_CENTER_X=6.1;\nBEAM_CENTER_Y=7.3;\nBEAMLINE=test;\n}\f").encode()
    (d / "header.img").write_bytes(head + b" " * (512 - len(head)) + bytes(2 * 64 * 64))
    y, x = np.mgrid[0:64, 0:56]
    r = np.hypot(x - 25.5, y - 33.0)
    counts = 40 + 300 * np.exp(-((r - 30) / 14) ** 2) + 60 / (1 + r / 10)
    counts = np.random.default_rng(0).poisson(counts).astype(np.uint16)
    counts[5, 5] = 0
    counts[40, 20] = 65535
    counts[10:13, 30] = 3000
    head = ("{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
            "SIZE1=56;\nSIZE2=64;\nPIXEL_SIZE=0.5;\nDISTANCE=60;\nWAVELENGTH=1.1;\n"
            "BEAM_CENTER_X=12.75;\nBEAM_CENTER_Y=15.5;\nPHI=3;\nOSC_RANGE=0.5;\n}\f").encode()
    (d / "observed.img").write_bytes(head + b" " * (512 - len(head))
                                     + counts.astype("<u2").tobytes())


def outputs(args):
    """The output file names a run writes (C defaults unless renamed)."""
    names = dict(DEFAULT_NAMES)
    for i, a in enumerate(args[:-1]):
        for key, flags in OUTPUT_FLAGS.items():
            if a in flags:
                names[key] = args[i + 1]
    return names


def run_case(binary, args, inputs, keep):
    with tempfile.TemporaryDirectory() as tmp:
        for f in Path(inputs).iterdir():
            shutil.copy(f, tmp)
        before = set(os.listdir(tmp))
        proc = subprocess.run([binary] + args, cwd=tmp, capture_output=True, text=True,
                              env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600)
        made = sorted(set(os.listdir(tmp)) - before)
        files = {}
        for name in made:
            data = (Path(tmp) / name).read_bytes()
            if name.endswith(".pgm") and keep == "nonbragg":
                data = trim_pgm(data)
            files[name] = data
        return proc.returncode, proc.stdout, files


def trim_pgm(data):
    """A PGM's header and one byte per pixel (drops what the C reads past its buffer)."""
    parts = data.split(b"\n", 4)
    w, h = map(int, parts[1].split())
    head = len(b"\n".join(parts[:4])) + 1
    return data[:head + w * h]


def _stdout(text):
    """stdout without the C's progress lines."""
    return "".join(line + "\n" for line in text.splitlines() if not line.endswith("% done"))


def main():
    bins = {"nonbragg": os.environ.get("NB_NONBRAGG_BIN"),
            "noisify": os.environ.get("NB_NOISIFY_BIN")}
    if not all(bins.values()):
        sys.exit("set NB_NONBRAGG_BIN and NB_NOISIFY_BIN to the C programs")
    inputs = DATA / "inputs"
    if inputs.exists():
        shutil.rmtree(inputs)
    inputs.mkdir(parents=True)
    write_inputs(inputs)
    for program, cases in (("nonbragg", NONBRAGG_CASES), ("noisify", NOISIFY_CASES)):
        out = DATA / program
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        index = []
        for case, args in cases.items():
            if program == "nonbragg" and not any(a in ("-stol", "-4stol", "-Q") for a in args):
                args = ["-stol", "water.stol"] + args
            rc, stdout, files = run_case(bins[program], args, inputs, program)
            d = out / case
            d.mkdir()
            (d / "stdout.txt").write_text(_stdout(stdout))
            for name, data in files.items():
                with gzip.GzipFile(d / (name + ".gz"), "wb", mtime=0) as f:
                    f.write(data)
            index.append({"id": case, "args": args, "rc": rc, "files": sorted(files)})
            print(program, case, rc, sorted(files))
        (out / "cases.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
