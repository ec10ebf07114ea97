"""``nb-compare``: run the C nanoBragg and nbnumba on the same arguments and compare.

::

    nb-compare [--c-bin PATH] [--out DIR] [--threshold R] [--threads N] [--timeout S]
               [--nb-cmd CMD] [--keep] [-q] [--] NANOBRAGG-ARGUMENTS...

The C program comes from ``--c-bin`` or the ``NB_C_BIN`` environment variable. Both
programs run one after the other (so that their run times do not disturb each other),
each in its own empty temporary directory, with the same arguments, except that:

* output file flags (``-floatfile``, ``-intfile``, ``-pgmfile``, ``-noisefile`` and
  their aliases) keep only the file's base name, so each program writes into its own
  directory;
* input files (``-hkl``, ``-mat``, ``-sourcefile``, ``-img``, ``-mask``, ``-stol``,
  ``-4stol``, ``-Q`` and aliases) given as relative paths are symlinked into each run
  directory under the same relative path, so the argument text (and the programs'
  console text) is unchanged; a relative path that climbs out with ``..`` is replaced by
  its absolute path; absolute paths are used as they are;
* without ``-hkl``, a ``Fdump.bin`` in the current directory is symlinked too (both
  programs read it then, as they would when run here).

Nothing is written to the current directory. The output directory (``--out``, default
``nb-compare-out``) receives:

``summary.json``
    the numbers below plus both command lines, exit codes, run times and the status;
``c_float.bin``, ``nb_float.bin``
    the two float images (raw little-endian float32, as ``-floatfile``);
``c.png``, ``nb.png``
    greyscale previews, both scaled linearly between the 0.5th and 99.5th percentile of
    the C image (so equal images look equal);
``diff.png``
    nbnumba minus C: red where nbnumba is higher, blue where lower, white where equal,
    scaled to the 99.5th percentile of ``|difference|``; non-finite pixels are black;
``c_stdout.txt``, ``nb_stdout.txt``
    what each program printed (stdout and stderr).

Reported: Pearson correlation of the float images, RMSE, maximum absolute difference
(and where), the sums and their ratio (nbnumba / C), whether the float files and each
other output written by both (SMV int/noise images, PGM) are byte-identical, and both
run times. A correlation that is undefined (a constant image) counts as failing unless
the images are equal. ``--threads`` (default 1) sets ``OMP_NUM_THREADS`` for the C and
``NUMBA_NUM_THREADS`` for nbnumba: the single-threaded C run is the parity reference
(the C's results depend on its thread count in a few cases); 0 leaves both unset.

Exit status: 0 the images agree (correlation >= ``--threshold``, default 0.999);
1 usage error (bad option, no C program given, output directory not writable);
2 a runner failed (non-zero exit, time-out, could not start, or no float image);
3 correlation below the threshold; 4 the images differ in size or shape; 9 an internal
error (one line on stderr; set ``NBNUMBA_DEBUG`` for the traceback); 130 interrupted.
"""
import argparse
import json
import math
import os
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from .entry import run_guarded
from .flags import FLAGS

EXIT_OK, EXIT_USAGE, EXIT_RUNNER, EXIT_THRESHOLD, EXIT_SIZE = 0, 1, 2, 3, 4
DEFAULT_FLOAT = "floatimage.bin"

#: the output-file kinds and the flags naming them (from the flag table)
_OUTPUT_KINDS = {"floatfile": "float", "intfile": "int", "pgmfile": "pgm", "noisefile": "noise"}
_DEFAULT_NAMES = {"float": DEFAULT_FLOAT, "int": "intimage.img", "pgm": "image.pgm",
                  "noise": "noiseimage.img"}


def _file_flags():
    """(input flag names, {output flag name: kind}) from the flag table."""
    inputs, outputs = set(), {}
    for f in FLAGS:
        if f.metavar != ("FILE",) or f.names[0] == "-stolout" or f.group == "nbnumba":
            continue    # nbnumba's own files (-expt, -xds_inp) are neither read nor compared
        kind = _OUTPUT_KINDS.get(f.names[0].lstrip("-"))
        for name in f.names:
            if kind:
                outputs[name] = kind
            else:
                inputs.add(name)
    return inputs, outputs


INPUT_FLAGS, OUTPUT_FLAGS = _file_flags()
HKL_FLAGS = {n for f in FLAGS if f.names[0] == "-hkl" for n in f.names}


class UsageError(Exception):
    pass


# ------------------------------------------------------------------------ arguments


def build_parser():
    p = argparse.ArgumentParser(
        prog="nb-compare", allow_abbrev=False,
        usage="nb-compare [OPTIONS] [--] NANOBRAGG-ARGUMENTS...",
        description="Run the C nanoBragg and nbnumba with the same arguments, each in its "
                    "own temporary directory, and compare the float images.",
        epilog="Exit status: 0 agree, 1 usage error, 2 a runner failed, 3 correlation "
               "below --threshold, 4 size mismatch. Options must come before the "
               "simulator's arguments (or end them with --).")
    p.add_argument("--c-bin", metavar="PATH",
                   help="the C nanoBragg program [default: $NB_C_BIN]")
    p.add_argument("--nb-cmd", metavar="CMD",
                   help="command that runs nbnumba (split like a shell) "
                        "[default: this Python with -m nbnumba_cli.main]")
    p.add_argument("--out", metavar="DIR", default="nb-compare-out",
                   help="output directory, created if needed [default: nb-compare-out]")
    p.add_argument("--threshold", metavar="R", type=float, default=0.999,
                   help="smallest acceptable correlation [default: 0.999]")
    p.add_argument("--threads", metavar="N", type=int, default=1,
                   help="threads for both programs (OMP_NUM_THREADS / NUMBA_NUM_THREADS); "
                        "0 leaves the environment as it is [default: 1]")
    p.add_argument("--timeout", metavar="S", type=float, default=0.0,
                   help="seconds each program may run, 0 for no limit [default: 0]")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary run directories (their path is printed)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the verdict line")
    return p


def split_argv(parser, argv):
    """Our options come first; the rest (or everything after ``--``) is the simulator's."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    ours = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if not (token.startswith("--") or token == "-q"):
            break
        name = token.split("=", 1)[0]
        action = parser._option_string_actions.get(name)
        ours.append(token)
        i += 1
        if action is not None and action.nargs != 0 and "=" not in token and i < len(argv):
            ours.append(argv[i])
            i += 1
    return ours, argv[i:]


def stage_arguments(args, cwd, run_dirs):
    """Rewrite ``args`` for running in ``run_dirs`` and link the input files there.

    Returns (rewritten args, {output kind: file name}).
    """
    out_names = dict(_DEFAULT_NAMES)
    rewritten = list(args)
    links = []
    i = 0
    while i < len(args):
        token = args[i]
        if i + 1 < len(args) and (token in OUTPUT_FLAGS or token in INPUT_FLAGS):
            value = args[i + 1]
            if token in OUTPUT_FLAGS:
                name = os.path.basename(value) or value
                rewritten[i + 1] = name
                out_names[OUTPUT_FLAGS[token]] = name
            elif not os.path.isabs(value):
                parts = Path(value).parts
                if ".." in parts:
                    rewritten[i + 1] = str((cwd / value).resolve())
                else:
                    links.append(value)
            i += 2
            continue
        i += 1
    if not any(t in HKL_FLAGS for t in args) and (cwd / "Fdump.bin").is_file():
        links.append("Fdump.bin")
    for run_dir in run_dirs:
        for rel in links:
            source = cwd / rel
            if not source.exists():
                continue  # let the programs report it
            target = run_dir / rel
            if target.exists() or target.is_symlink():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source.resolve())
    return rewritten, out_names


# -------------------------------------------------------------------------- running


def _resolve_program(name):
    found = shutil.which(name)
    if found:
        return os.path.abspath(found)
    return os.path.abspath(name) if os.sep in name else name


def run_program(label, command, run_dir, env, timeout, log_path):
    """Run one program; returns a dict with its command, exit code, seconds and error."""
    record = {"command": command, "exit_code": None, "seconds": None, "error": None,
              "log": log_path.name}
    start = time.perf_counter()
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.run(command, cwd=run_dir, env=env, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT,
                                  timeout=timeout or None)
        record["exit_code"] = proc.returncode
        if proc.returncode != 0:
            record["error"] = f"{label} exited with status {proc.returncode}"
    except subprocess.TimeoutExpired:
        record["error"] = f"{label} ran longer than {timeout:g} s"
    except OSError as exc:
        record["error"] = f"{label} could not start: {exc.strerror or exc}"
    record["seconds"] = time.perf_counter() - start
    return record


def _smv_shape(path):
    """(slow, fast) from an SMV header, or None."""
    from nbnumba.io.smv import header_value
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    head = head.split(b"}", 1)[0]
    w, h = header_value(head, "SIZE1"), header_value(head, "SIZE2")
    if not w or not h:
        return None
    return int(h), int(w)


# -------------------------------------------------------------------------- metrics


def _num(x):
    """A float for JSON: None for NaN and infinities."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def compare_images(c, nb):
    """Metrics of two equal-shape float images (any dtype); see the module docstring."""
    c64, nb64 = c.astype(np.float64).ravel(), nb.astype(np.float64).ravel()
    fin_c, fin_nb = np.isfinite(c64), np.isfinite(nb64)
    both = fin_c & fin_nb
    identical = c.tobytes() == nb.tobytes()
    a, b = c64[both], nb64[both]
    diff = b - a
    result = {
        "pixels": int(c64.size),
        "identical": identical,
        "nonfinite_c": int((~fin_c).sum()),
        "nonfinite_nbnumba": int((~fin_nb).sum()),
        "nonfinite_positions_differ": bool((fin_c != fin_nb).any()),
        "sum_c": float(a.sum()) if a.size else 0.0,
        "sum_nbnumba": float(b.sum()) if b.size else 0.0,
        "max_c": float(a.max()) if a.size else None,
        "max_nbnumba": float(b.max()) if b.size else None,
        "rmse": float(np.sqrt(np.mean(diff * diff))) if a.size else None,
        "max_abs_diff": None,
        "max_abs_diff_at": None,
        "correlation": None,
    }
    if a.size:
        k = int(np.argmax(np.abs(diff)))
        result["max_abs_diff"] = float(abs(diff[k]))
        result["max_abs_diff_at"] = int(np.flatnonzero(both)[k])
    result["sum_ratio"] = (result["sum_nbnumba"] / result["sum_c"]
                           if result["sum_c"] != 0 else None)
    if identical:
        result["correlation"] = 1.0
    elif a.size > 1 and not result["nonfinite_positions_differ"]:
        sa, sb = a.std(), b.std()
        if sa > 0 and sb > 0:
            r = float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))
            result["correlation"] = max(-1.0, min(1.0, r))
        elif np.array_equal(a, b):
            result["correlation"] = 1.0
    return result


# ------------------------------------------------------------------------------ PNG


def png_bytes(pixels):
    """PNG file content of uint8 pixels: (h, w) greyscale or (h, w, 3) RGB."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    colour = 0 if pixels.ndim == 2 else 2
    rows = pixels.reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter 0

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def grey_preview(image, lo, hi):
    """uint8 greyscale, linear between lo (black) and hi (white); non-finite -> black."""
    x = np.nan_to_num(image.astype(np.float64), nan=lo, posinf=lo, neginf=lo)
    span = hi - lo if hi > lo else 1.0
    return (np.clip((x - lo) / span, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def diff_preview(c, nb):
    """RGB map of nb - c: red positive, blue negative, white zero, black non-finite."""
    d = nb.astype(np.float64) - c.astype(np.float64)
    finite = np.isfinite(d)
    mags = np.abs(d[finite])
    scale = float(np.percentile(mags, 99.5)) if mags.size else 0.0
    if scale == 0.0 and mags.size:
        scale = float(mags.max())
    t = np.clip(np.where(finite, d, 0.0) / (scale if scale > 0 else 1.0), -1.0, 1.0)
    fade = ((1.0 - np.abs(t)) * 255.0 + 0.5).astype(np.uint8)
    rgb = np.empty(d.shape + (3,), np.uint8)
    rgb[..., 0] = np.where(t < 0, fade, 255)
    rgb[..., 1] = fade
    rgb[..., 2] = np.where(t > 0, fade, 255)
    rgb[~finite] = 0
    return rgb


def percentile_range(image):
    values = image[np.isfinite(image)].astype(np.float64)
    if not values.size:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
    return float(lo), float(hi)


# ----------------------------------------------------------------------------- main


def _say(quiet, text):
    if not quiet:
        print(text)


def _describe(record):
    if record["exit_code"] is None:
        return record["error"]
    return "exit %d, %.3f s" % (record["exit_code"], record["seconds"])


def run(argv):
    parser = build_parser()
    ours, sim_args = split_argv(parser, argv)
    opts = parser.parse_args(ours)
    c_bin = opts.c_bin or os.environ.get("NB_C_BIN")
    if not c_bin:
        raise UsageError("no C program: give --c-bin PATH or set NB_C_BIN")
    if not sim_args:
        raise UsageError("no simulator arguments given (nb-compare [OPTIONS] -- ARGS...)")
    if not 0 <= opts.threads:
        raise UsageError("--threads must be 0 or more")
    if not math.isfinite(opts.threshold):
        raise UsageError("--threshold must be a finite number")
    if opts.timeout < 0 or not math.isfinite(opts.timeout):
        raise UsageError("--timeout must be 0 (no limit) or a positive number of seconds")
    out_dir = Path(opts.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out_dir, prefix=".nb-compare-", delete=True)
        probe.close()
    except OSError as exc:
        raise UsageError(f"cannot write to output directory {out_dir}: "
                         f"{exc.strerror or exc}") from None

    c_cmd = [_resolve_program(c_bin)]
    nb_cmd = shlex.split(opts.nb_cmd) if opts.nb_cmd else [sys.executable, "-m",
                                                           "nbnumba_cli.main"]
    nb_cmd[0] = _resolve_program(nb_cmd[0])
    base = Path(tempfile.mkdtemp(prefix="nb-compare-"))
    c_dir, nb_dir = base / "c", base / "nbnumba"
    c_dir.mkdir()
    nb_dir.mkdir()
    summary = {"args": sim_args, "threshold": opts.threshold, "threads": opts.threads}
    try:
        run_args, names = stage_arguments(sim_args, Path.cwd(), (c_dir, nb_dir))
        summary["run_args"] = run_args
        env_c, env_nb = dict(os.environ), dict(os.environ)
        if opts.threads:
            env_c["OMP_NUM_THREADS"] = str(opts.threads)
            env_nb["NUMBA_NUM_THREADS"] = str(opts.threads)
        c_rec = run_program("C program", c_cmd + run_args, c_dir, env_c, opts.timeout,
                            out_dir / "c_stdout.txt")
        nb_rec = run_program("nbnumba", nb_cmd + run_args, nb_dir, env_nb, opts.timeout,
                             out_dir / "nb_stdout.txt")
        summary["c"], summary["nbnumba"] = c_rec, nb_rec
        _say(opts.quiet, "C:       %s (%s)" % (" ".join(c_cmd), _describe(c_rec)))
        _say(opts.quiet, "nbnumba: %s (%s)" % (" ".join(nb_cmd), _describe(nb_rec)))
        if c_rec["seconds"] and nb_rec["seconds"]:
            summary["speedup"] = c_rec["seconds"] / nb_rec["seconds"]
        code = _compare_outputs(summary, names, c_dir, nb_dir, out_dir, opts)
    finally:
        if opts.keep:
            _say(opts.quiet, f"run directories kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    summary["exit_code"] = code
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return code


def _fail(summary, status, message, code):
    summary["status"], summary["message"] = status, message
    print(f"nb-compare: {status}: {message}")
    return code


def _compare_outputs(summary, names, c_dir, nb_dir, out_dir, opts):
    quiet = opts.quiet
    c_rec, nb_rec = summary["c"], summary["nbnumba"]
    c_float, nb_float = c_dir / names["float"], nb_dir / names["float"]
    for rec, path in ((c_rec, c_float), (nb_rec, nb_float)):
        if rec["error"] is None and not path.is_file():
            rec["error"] = f"no float image {path.name} was written"
    failed = [r["error"] for r in (c_rec, nb_rec) if r["error"]]
    if failed:
        return _fail(summary, "runner-failed", "; ".join(failed) + " (see c_stdout.txt / "
                     "nb_stdout.txt)", EXIT_RUNNER)
    shutil.copyfile(c_float, out_dir / "c_float.bin")
    shutil.copyfile(nb_float, out_dir / "nb_float.bin")
    c_bytes, nb_bytes = c_float.stat().st_size, nb_float.stat().st_size
    summary["float_bytes"] = {"c": c_bytes, "nbnumba": nb_bytes}
    if c_bytes != nb_bytes or c_bytes % 4:
        return _fail(summary, "size-mismatch", f"float images have {c_bytes} (C) and "
                     f"{nb_bytes} (nbnumba) bytes", EXIT_SIZE)
    c_shape, nb_shape = _smv_shape(c_dir / names["int"]), _smv_shape(nb_dir / names["int"])
    summary["shape"] = {"c": c_shape, "nbnumba": nb_shape}
    if c_shape and nb_shape and c_shape != nb_shape:
        return _fail(summary, "size-mismatch", "images are %dx%d (C) and %dx%d (nbnumba) "
                     "pixels (fast x slow)" % (c_shape[1], c_shape[0], nb_shape[1],
                                               nb_shape[0]), EXIT_SIZE)
    n = c_bytes // 4
    shape = c_shape or nb_shape
    if not shape or shape[0] * shape[1] != n:
        shape = (1, n)
    c_img = np.fromfile(c_float, dtype="<f4").reshape(shape)
    nb_img = np.fromfile(nb_float, dtype="<f4").reshape(shape)
    metrics = compare_images(c_img, nb_img)
    if metrics["max_abs_diff_at"] is not None:
        metrics["max_abs_diff_at"] = list(divmod(metrics["max_abs_diff_at"], shape[1]))
    summary.update({k: (_num(v) if isinstance(v, float) else v) for k, v in metrics.items()})
    summary["shape"]["used"] = list(shape)
    summary["files_identical"] = {
        kind: (c_dir / names[kind]).read_bytes() == (nb_dir / names[kind]).read_bytes()
        for kind in ("int", "noise", "pgm")
        if (c_dir / names[kind]).is_file() and (nb_dir / names[kind]).is_file()}
    if n:
        lo, hi = percentile_range(c_img)
        (out_dir / "c.png").write_bytes(png_bytes(grey_preview(c_img, lo, hi)))
        (out_dir / "nb.png").write_bytes(png_bytes(grey_preview(nb_img, lo, hi)))
        (out_dir / "diff.png").write_bytes(png_bytes(diff_preview(c_img, nb_img)))
        summary["preview_range"] = [lo, hi]
    _report(summary, shape, quiet)
    r = summary["correlation"]
    if r is None or r < opts.threshold:
        return _fail(summary, "below-threshold", "correlation %s < %g" % (
            "undefined" if r is None else "%.6f" % r, opts.threshold), EXIT_THRESHOLD)
    summary["status"] = "ok"
    print("nb-compare: ok: correlation %.6f >= %g%s" % (
        r, opts.threshold, " (float images identical)" if summary["identical"] else ""))
    return EXIT_OK


def _g(x):
    return "n/a" if x is None else "%.6g" % x


def _report(s, shape, quiet):
    say = lambda text: _say(quiet, text)  # noqa: E731
    say("image:   %d x %d pixels (fast x slow)%s" % (
        shape[1], shape[0], ", float files identical" if s["identical"] else ""))
    say("correlation %s  RMSE %s  max |diff| %s%s" % (
        _g(s["correlation"]), _g(s["rmse"]), _g(s["max_abs_diff"]),
        " at (slow, fast) = (%d, %d)" % tuple(s["max_abs_diff_at"])
        if s["max_abs_diff_at"] and s["max_abs_diff"] else ""))
    say("sum C %s  nbnumba %s  ratio %s" % (_g(s["sum_c"]), _g(s["sum_nbnumba"]),
                                            _g(s["sum_ratio"])))
    if s["nonfinite_c"] or s["nonfinite_nbnumba"]:
        say("non-finite pixels: C %d, nbnumba %d" % (s["nonfinite_c"], s["nonfinite_nbnumba"]))
    if s["files_identical"]:
        say("byte-identical: " + ", ".join("%s %s" % (k, "yes" if v else "NO")
                                           for k, v in s["files_identical"].items()))
    if s.get("speedup"):
        say("time:    C %.3f s, nbnumba %.3f s (C/nbnumba = %.3g)" % (
            s["c"]["seconds"], s["nbnumba"]["seconds"], s["speedup"]))


def main(argv=None):
    """Console entry point: exit status as in the module docstring, errors in one line."""
    return run_guarded(_run_reporting_usage, sys.argv[1:] if argv is None else list(argv),
                       "nb-compare")


def _run_reporting_usage(argv):
    try:
        return run(argv)
    except UsageError as exc:
        sys.stderr.write(f"nb-compare: error: {exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # argparse: --help (0) or a bad option (2 -> usage error)
        return 0 if exc.code in (0, None) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
