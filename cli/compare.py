"""``nb-compare``: run the C nanoBragg and nbnumba on the same arguments and compare.

::

    nb-compare [--c-bin PATH] [--out DIR] [--threshold R] [--sum-tolerance T]
               [--diff-tolerance T] [--threads N] [--timeout S] [--nb-cmd CMD] [--keep]
               [-q] [--] NANOBRAGG-ARGUMENTS...
    nb-compare -h | --help | --version

``-h``, ``--help`` and ``--version`` before ``--`` are nb-compare's own; the programs'
flags go after ``--``. The C program comes from ``--c-bin`` or the ``NB_C_BIN``
environment variable. Both programs run one after the other (so that their run times do
not disturb each other), each in its own empty temporary directory and process group
(``--timeout`` kills the whole group), with the same arguments, except that:

* output file flags (``-floatfile``, ``-intfile``, ``-pgmfile``, ``-noisefile`` and
  their aliases) keep only the file's base name, so each program writes into its own
  directory; when two kinds would then share a name (``-floatfile a/img.bin -intfile
  b/img.bin``), or a name equals another kind's default or a linked input, the name is
  prefixed with its kind (``int-img.bin``), so outputs never mix;
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
    the C image (so equal images look equal), each under a label naming the image and
    the values shown black and white;
``diff.png``
    nbnumba minus C: red where nbnumba is higher, blue where lower, white where equal,
    full colour at the 99.5th percentile of ``|difference|`` (the label gives it);
    non-finite pixels are black;
``c_stdout.txt``, ``nb_stdout.txt``
    what each program printed (stdout and stderr).

Reported: Pearson correlation of the float images, RMSE, maximum absolute difference
(and where), the sums and their ratio (nbnumba / C), whether the float files and each
other output written by both (SMV int/noise images, PGM) are byte-identical, and both
run times. The images agree when all three hold: the correlation is at least
``--threshold`` (default 0.999; undefined for a constant image, which fails unless the
images are equal), the sum ratio is within ``1 +- --sum-tolerance`` (default 0.001), and
the largest difference is at most ``--diff-tolerance`` (default 0.001) times the C
image's largest absolute pixel. When they differ and the command sweeps several phi
steps from phi = 0, the verdict names the documented phi = 0 difference (docs/parity.md)
and the ``-phi 1e-30`` run of the C that is comparable. ``--threads`` (default 1) sets
``OMP_NUM_THREADS`` for the C and ``NUMBA_NUM_THREADS`` for nbnumba: the
single-threaded C run is the parity reference (the C's results depend on its thread
count in a few cases); 0 leaves both unset.

Exit status: 0 the images agree; 1 usage error (bad option, no C program given, output
directory not writable); 2 a runner failed (non-zero exit, time-out, could not start, or
no float image); 3 the images differ (correlation, sum ratio or largest difference out
of tolerance: the verdict names each); 4 the images differ in size or shape; 9 an
internal error (one line on stderr; set ``NBNUMBA_DEBUG`` for the traceback); 130
interrupted.
"""
import argparse
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nbnumba.flags import FLAGS

from .guard import run_guarded, version
from .preview import (diff_preview, diff_scale, grey_preview, labelled_png,  # noqa: F401
                      percentile_range, png_bytes)

EXIT_OK, EXIT_USAGE, EXIT_RUNNER, EXIT_DIFFER, EXIT_SIZE = 0, 1, 2, 3, 4
#: nb-compare's own options wherever they stand before "--"
OWN_ANYWHERE = ("-h", "--help", "--version")
DEFAULT_FLOAT = "floatimage.bin"

#: the output-file kinds and the flags naming them (from the flag table)
_OUTPUT_KINDS = {"floatfile": "float", "intfile": "int", "pgmfile": "pgm", "noisefile": "noise"}
_DEFAULT_NAMES = {"float": DEFAULT_FLOAT, "int": "intimage.img", "pgm": "image.pgm",
                  "noise": "noiseimage.img"}


def _file_flags():
    """(input flag names, {output flag name: kind}) from the flag table."""
    inputs, outputs = set(), {}
    for f in FLAGS:
        if f.metavar != ("FILE",) or f.names[0] == "-stolout" or f.group in ("nbnumba", "files"):
            continue    # nbnumba's own files (-expt, -xds_inp, --mtz ...): not the C's
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
        epilog="Exit status: 0 agree, 1 usage error, 2 a runner failed, 3 the images "
               "differ (correlation, sum ratio or largest difference out of tolerance), "
               "4 size mismatch. Options must come before the simulator's arguments "
               "(or end them with --); -h, --help and --version before -- are always "
               "nb-compare's.")
    p.add_argument("--c-bin", metavar="PATH",
                   help="the C nanoBragg program [default: $NB_C_BIN]")
    p.add_argument("--nb-cmd", metavar="CMD",
                   help="command that runs nbnumba (split like a shell) "
                        "[default: this Python with -m nbnumba_cli.main]")
    p.add_argument("--out", metavar="DIR", default="nb-compare-out",
                   help="output directory, created if needed [default: nb-compare-out]")
    p.add_argument("--version", action="version", version=f"nb-compare {version()}",
                   help="show the version and exit")
    p.add_argument("--threshold", metavar="R", type=float, default=0.999,
                   help="smallest acceptable correlation [default: 0.999]")
    p.add_argument("--sum-tolerance", metavar="T", type=float, default=1e-3,
                   help="largest acceptable |sum ratio - 1| (nbnumba sum / C sum) "
                        "[default: 0.001]")
    p.add_argument("--diff-tolerance", metavar="T", type=float, default=1e-3,
                   help="largest acceptable |difference| of one pixel, as a fraction of "
                        "the C image's largest |pixel| [default: 0.001]")
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
    """Our options come first; the rest (or everything after ``--``) is the simulator's.
    ``-h``, ``--help`` and ``--version`` are ours wherever they stand before ``--``."""
    argv = list(argv)
    if "--" not in argv:
        own = [t for t in argv if t in OWN_ANYWHERE]
        if own:
            return own[:1], [t for t in argv if t not in OWN_ANYWHERE]
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

    Returns (rewritten args, {output kind: file name}); the file names of different
    kinds always differ (see :func:`_separate_outputs`).
    """
    rewritten = list(args)
    given = {}     # output kind -> (positions of its values in args, base name)
    links = []
    i = 0
    while i < len(args):
        token = args[i]
        if i + 1 < len(args) and (token in OUTPUT_FLAGS or token in INPUT_FLAGS):
            value = args[i + 1]
            if token in OUTPUT_FLAGS:
                kind = OUTPUT_FLAGS[token]
                positions = given.get(kind, ([], None))[0] + [i + 1]
                given[kind] = (positions, os.path.basename(value) or value)
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
    out_names = _separate_outputs(given, {Path(rel).parts[0] for rel in links})
    for kind, (positions, _) in given.items():
        for position in positions:
            rewritten[position] = out_names[kind]
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


def _separate_outputs(given, inputs):
    """{kind: file name}: the default names, and for the kinds given on the command line
    their base names, prefixed with the kind (``int-img.bin``) where a name would be
    another kind's, a linked input's (``inputs``) or ``Fdump.bin``."""
    names = {k: v for k, v in _DEFAULT_NAMES.items() if k not in given}
    taken = set(names.values()) | set(inputs) | {"Fdump.bin"}
    for kind in _DEFAULT_NAMES:
        if kind not in given:
            continue
        base = given[kind][1]
        name, n = base, 1
        while name in taken:
            name = f"{kind}-{base}" if n == 1 else f"{kind}{n}-{base}"
            n += 1
        names[kind] = name
        taken.add(name)
    return names


# -------------------------------------------------------------------------- running


def _resolve_program(name):
    found = shutil.which(name)
    if found:
        return os.path.abspath(found)
    return os.path.abspath(name) if os.sep in name else name


def run_program(label, command, run_dir, env, timeout, log_path):
    """Run one program in its own process group; returns a dict with its command, exit
    code, seconds and error. A time-out or an interrupt kills the whole group (the
    program and anything it started)."""
    record = {"command": command, "exit_code": None, "seconds": None, "error": None,
              "log": log_path.name}
    start = time.perf_counter()
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command, cwd=run_dir, env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                proc.wait(timeout=timeout or None)
            except BaseException:
                kill_group(proc)
                raise
        record["exit_code"] = proc.returncode
        if proc.returncode != 0:
            record["error"] = f"{label} exited with status {proc.returncode}"
    except subprocess.TimeoutExpired:
        record["error"] = f"{label} ran longer than {timeout:g} s"
    except OSError as exc:
        record["error"] = f"{label} could not start: {exc.strerror or exc}"
    record["seconds"] = time.perf_counter() - start
    return record


def kill_group(proc):
    """SIGKILL the process group led by ``proc`` (not yet reaped), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.wait()


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
        "peak_c": float(np.abs(a).max()) if a.size else None,
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
    for name in ("sum_tolerance", "diff_tolerance"):
        value = getattr(opts, name)
        if not (math.isfinite(value) and value >= 0):
            raise UsageError("--%s must be a finite number, 0 or more"
                             % name.replace("_", "-"))
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
    try:
        nb_cmd = shlex.split(opts.nb_cmd) if opts.nb_cmd else [sys.executable, "-m",
                                                               "nbnumba_cli.main"]
    except ValueError as exc:  # an unclosed quote
        raise UsageError(f"--nb-cmd {opts.nb_cmd!r} is not a command line: "
                         f"{str(exc).lower()}") from None
    if not nb_cmd:
        raise UsageError("--nb-cmd is empty: give the nbnumba command to run")
    nb_cmd[0] = _resolve_program(nb_cmd[0])
    base = Path(tempfile.mkdtemp(prefix="nb-compare-"))
    c_dir, nb_dir = base / "c", base / "nbnumba"
    c_dir.mkdir()
    nb_dir.mkdir()
    summary = {"args": sim_args, "threshold": opts.threshold,
               "sum_tolerance": opts.sum_tolerance, "diff_tolerance": opts.diff_tolerance,
               "threads": opts.threads}
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
        _write_previews(summary, c_img, nb_img, out_dir)
    _report(summary, shape, quiet)
    failed = _failed_checks(summary, opts)
    summary["failed_checks"] = [name for name, _ in failed]
    if failed:
        message = "; ".join(text for _, text in failed)
        if phi_zero_sweep(summary["args"]):
            summary["note"] = PHI_ZERO_NOTE
            message += " (%s)" % PHI_ZERO_NOTE
        return _fail(summary, "differ", message, EXIT_DIFFER)
    summary["status"] = "ok"
    r = summary["correlation"]
    print("nb-compare: ok: correlation %.6f >= %g, sum ratio %s, max |diff| %s%s" % (
        r, opts.threshold, _g(summary["sum_ratio"]), _g(summary["max_abs_diff"]),
        " (float images identical)" if summary["identical"] else ""))
    return EXIT_OK


PHI_ZERO_NOTE = ("the command sweeps several phi steps from phi = 0: this is the documented "
                 "phi = 0 difference (docs/parity.md); run the C with -phi 1e-30 instead "
                 "of -phi 0 to compare")


def _failed_checks(s, opts):
    """[(check, why)] for the correlation, sum-ratio and largest-difference checks."""
    failed = []
    r = s["correlation"]
    if r is None or r < opts.threshold:
        failed.append(("correlation", "correlation %s < %g" % (
            "undefined" if r is None else "%.6f" % r, opts.threshold)))
    if s["identical"]:
        return failed
    ratio = s["sum_ratio"]
    if ratio is None:
        if s["sum_nbnumba"]:
            failed.append(("sum_ratio", "sum ratio undefined (C sum 0, nbnumba %s)"
                           % _g(s["sum_nbnumba"])))
    elif not abs(ratio - 1.0) <= opts.sum_tolerance:
        failed.append(("sum_ratio", "sum ratio %s outside 1 +- %g" % (_g(ratio),
                                                                   opts.sum_tolerance)))
    diff, peak = s["max_abs_diff"], s["peak_c"]
    if diff is not None and not diff <= opts.diff_tolerance * (peak or 0.0):
        failed.append(("max_abs_diff", "max |diff| %s > %g (%g x the C's largest |pixel| %s)"
                       % (_g(diff), opts.diff_tolerance * (peak or 0.0), opts.diff_tolerance,
                          _g(peak))))
    return failed


def phi_zero_sweep(args):
    """True when ``args`` render several phi steps starting at phi = 0 exactly (where the
    C keeps the previous step's orientation: docs/parity.md, rule 1)."""
    from nbnumba.sampling import phi_rule

    from nbnumba.cmdline import parse_arguments
    from nbnumba.errors import NbnumbaError
    try:
        crystal = parse_arguments(list(args)).config.crystal
        steps, _, _ = phi_rule(crystal.phi_steps, crystal.osc, crystal.phi_step)
    except (NbnumbaError, OSError, ValueError):
        return False
    return crystal.phi0 == 0.0 and steps > 1


def _write_previews(summary, c_img, nb_img, out_dir):
    """c.png, nb.png (the C's percentile scale) and diff.png, each with a label."""
    lo, hi = percentile_range(c_img)
    scale = "black %s, white %s" % (_g(lo), _g(hi))
    why = ("linear grey scale from %.6g (black) to %.6g (white): the 0.5th and 99.5th "
           "percentiles of the C image" % (lo, hi))
    (out_dir / "c.png").write_bytes(labelled_png(
        grey_preview(c_img, lo, hi), "C: " + scale, "C program float image; " + why))
    (out_dir / "nb.png").write_bytes(labelled_png(
        grey_preview(nb_img, lo, hi), "nbnumba: " + scale,
        "nbnumba float image, on the C image's scale; " + why))
    full = diff_scale(c_img, nb_img)
    (out_dir / "diff.png").write_bytes(labelled_png(
        diff_preview(c_img, nb_img), "nbnumba - C: red +, blue -, full at %s" % _g(full),
        "nbnumba minus C: red where nbnumba is higher, blue where lower, white where "
        "equal, full colour at |difference| %.6g; black: non-finite" % full))
    summary["preview_range"] = [lo, hi]
    summary["diff_preview_full_scale"] = full


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
