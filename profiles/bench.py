"""Benchmark suite: nbnumba against the nanoBragg C program, case by case.

    python -m profiles.bench [--cases P1,P5] [--repeats 3] [--threads 2]
                             [--c-bin PATH | NB_C_BIN=PATH] [--skip-c] [--skip-compile]
                             [--baseline NBNUMBA_COMMAND] [--out FILE]

Per case (see :mod:`profiles.cases`), in this order:

1. compile: a tiny (8 x 8 pixel) render in a child process with a fresh, empty
   ``NUMBA_CACHE_DIR`` (cold), then again with the same directory (warm);
2. warm-up: one tiny run of the ``nbnumba`` command (fills the ordinary numba cache) and
   of the C program;
3. whole process: ``nbnumba ARGS -noprogress`` and, with a C binary, ``C ARGS -noprogress``,
   interleaved (nb C nb C ...), each in its own temporary directory; wall time, CPU time
   and peak memory of each process; then the two float images are compared;
4. kernel: a child process imports nbnumba, prepares the case, renders once (warm-up)
   and times ``repeats`` more renders.

``--baseline`` adds a second installation of nbnumba (an older commit, say), run in the
same interleaved way, and a table comparing the two.

Both programs get ``NUMBA_NUM_THREADS`` and ``OMP_NUM_THREADS`` = ``--threads``. Results go
to a JSON file and a Markdown table on stdout; progress goes to stderr. Needs only the
standard library and NumPy (nbnumba is imported by the child processes only).
"""
import argparse
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from . import cases, images, procs

PROFILES_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(PROFILES_DIR)
RESULTS_DIR = os.path.join(PROFILES_DIR, "results")
#: nbnumba's own flag appended to every nbnumba and C run (the C accepts it too)
NO_PROGRESS = ["-noprogress"]


# --------------------------------------------------------------------------- set-up

def check_common_options(parser, opts):
    """The checks of the options every benchmark shares: ``--repeats`` and ``--threads``
    at least 1, ``--cases`` resolved into ``opts.case_names`` (``parser.error`` on a bad
    value)."""
    if opts.repeats < 1 or opts.threads < 1:
        parser.error("--repeats and --threads must be at least 1")
    try:
        opts.case_names = cases.select(opts.cases)
    except ValueError as exc:
        parser.error(str(exc))


def parse_args(argv):
    """Command-line options of the suite."""
    p = argparse.ArgumentParser(prog="python -m profiles.bench",
                                description="Benchmark nbnumba (and the C nanoBragg).")
    p.add_argument("--cases", default=None,
                   help="comma-separated cases (default: all of %s)" % ",".join(cases.CASES))
    p.add_argument("--repeats", type=int, default=3,
                   help="timed runs per case, whole process and kernel (default 3)")
    p.add_argument("--threads", type=int, default=2,
                   help="threads of both programs: NUMBA_NUM_THREADS, OMP_NUM_THREADS "
                        "(default 2)")
    p.add_argument("--c-bin", default=os.environ.get("NB_C_BIN"),
                   help="the C nanoBragg binary (default: $NB_C_BIN; none: nbnumba only)")
    p.add_argument("--skip-c", action="store_true", help="do not run the C binary")
    p.add_argument("--skip-compile", action="store_true",
                   help="skip the cold/warm cache compile timings")
    p.add_argument("--out", default=None,
                   help="JSON results file (default profiles/results/bench-DATE.json)")
    p.add_argument("--nbnumba", default=None,
                   help="the nbnumba command (default: next to this Python, else on PATH)")
    p.add_argument("--baseline", default=None, metavar="PATH",
                   help="the nbnumba command of another installation (e.g. an older commit "
                        "in its own virtual environment), timed side by side")
    p.add_argument("--timeout", type=float, default=3600.0,
                   help="seconds after which any one child process is killed (default 3600)")
    opts = p.parse_args(argv)
    check_common_options(p, opts)
    if opts.skip_c:
        opts.c_bin = None
    if opts.c_bin and not os.access(opts.c_bin, os.X_OK):
        p.error("C binary %r is not an executable file" % opts.c_bin)
    opts.nbnumba = opts.nbnumba or find_nbnumba()
    if opts.nbnumba is None:
        p.error("no nbnumba command found; install nbnumba or pass --nbnumba")
    opts.baseline_python = None
    if opts.baseline:
        opts.baseline_python = os.path.join(os.path.dirname(opts.baseline), "python")
        if not (os.access(opts.baseline, os.X_OK) and os.access(opts.baseline_python, os.X_OK)):
            p.error("--baseline %r: need an executable nbnumba command with a python beside it"
                    % opts.baseline)
    return opts


def find_nbnumba():
    """Path of the ``nbnumba`` command: beside ``sys.executable``, else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "nbnumba")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("nbnumba")


def child_env(threads, cache_dir=None, this_repo=True):
    """Environment of every child: thread counts, this repository importable (unless
    ``this_repo`` is false: the baseline's children import their own nbnumba), and
    ``NUMBA_CACHE_DIR`` when ``cache_dir`` is given (else inherited)."""
    env = dict(os.environ)
    env["NUMBA_NUM_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = str(threads)
    if this_repo:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    return env


def log(text):
    """A progress line on stderr."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- measurements

WORKER = os.path.join(PROFILES_DIR, "worker.py")


def worker_runs(opts):
    """(label, python, this_repo) of each nbnumba whose kernels are timed: this
    repository's, then the baseline's (run by its own Python) if given."""
    runs = [("nbnumba", sys.executable, True)]
    if opts.baseline:
        runs.append(("baseline", opts.baseline_python, False))
    return runs


def run_worker(mode, request, env, timeout, python=None):
    """Run :mod:`profiles.worker` (by its path, so that only the environment decides which
    nbnumba it imports) with ``python`` (default: this one) in a temporary directory;
    returns (result dict, run)."""
    with tempfile.TemporaryDirectory(prefix="nbbench-") as tmp:
        run = procs.run([python or sys.executable, WORKER, mode, json.dumps(request)],
                        cwd=tmp, env=env, timeout=timeout)
    return procs.last_json(run, "worker %s" % mode), run


def measure_compile(name, opts, python=None, this_repo=True):
    """Compile timings of the case's kernels: cold (fresh cache dir) then warm (same dir).

    Each entry: the child's process wall_s (import + set-up + two renders of 8 x 8
    pixels; the table's "cold s" / "warm s"), compile_s (first - second render),
    startup_s, import_s, prepare_s, max_rss_mib; plus the number of cache index files the
    cold run wrote. cold wall_s - warm wall_s is the compile time of the case.
    """
    out = {}
    with tempfile.TemporaryDirectory(prefix="nbbench-cache-") as cache:
        env = child_env(opts.threads, cache_dir=cache, this_repo=this_repo)
        for label in ("cold", "warm"):
            info, run = run_worker("compile", {"args": cases.tiny_args(name)}, env,
                                   opts.timeout, python)
            info.update(wall_s=run.wall_s, max_rss_mib=run.max_rss_mib)
            out[label] = info
        out["cache_index_files"] = sum(f.endswith(".nbi") for _, _, files in os.walk(cache)
                                       for f in files)
    return out


def warm_up(name, opts):
    """One untimed tiny run of each program (fills the numba cache, pages in binaries).

    Returns the wall time of each, s.
    """
    out = {}
    for label, exe in programs(opts):
        env = child_env(opts.threads, this_repo=label != "baseline")
        with tempfile.TemporaryDirectory(prefix="nbbench-") as tmp:
            run = procs.run([exe] + cases.tiny_args(name) + NO_PROGRESS, cwd=tmp, env=env,
                            timeout=opts.timeout)
        out[label] = procs.check(run, "%s warm-up of %s" % (label, name)).wall_s
    return out


def programs(opts):
    """(label, executable) of the programs to run: nbnumba, the baseline's nbnumba and
    the C, those given."""
    progs = [("nbnumba", opts.nbnumba)]
    if opts.baseline:
        progs.append(("baseline", opts.baseline))
    if opts.c_bin:
        progs.append(("c", opts.c_bin))
    return progs


def summarize_runs(runs):
    """Median/min wall time (s), median CPU time (s) and peak memory (MiB) of runs."""
    walls = [r.wall_s for r in runs]
    return {
        "wall_s": statistics.median(walls),
        "wall_min_s": min(walls),
        "cpu_s": statistics.median(r.user_s + r.sys_s for r in runs),
        "max_rss_mib": max(r.max_rss_mib for r in runs),
        "runs": [{k: v for k, v in r.as_dict().items() if k != "output"} for r in runs],
    }


def measure_cli(name, opts):
    """Whole-process runs of each program, interleaved, then the image comparison."""
    env = {label: child_env(opts.threads, this_repo=label != "baseline")
           for label in ("nbnumba", "baseline", "c")}
    args = {"nbnumba": cases.case_args(name) + NO_PROGRESS, "c": cases.c_args(name) + NO_PROGRESS}
    args["baseline"] = args["nbnumba"]
    progs = programs(opts)
    runs = {label: [] for label, _ in progs}
    with tempfile.TemporaryDirectory(prefix="nbbench-") as tmp:
        dirs = {label: os.path.join(tmp, label) for label, _ in progs}
        for d in dirs.values():
            os.mkdir(d)
        for i in range(opts.repeats):
            for label, exe in progs:
                run = procs.run([exe] + args[label], cwd=dirs[label], env=env[label],
                                timeout=opts.timeout)
                runs[label].append(procs.check(run, "%s run %d of %s" % (label, i + 1, name)))
                log("  [%s] %-7s run %d: %.3f s, %.0f MiB"
                    % (name, label, i + 1, run.wall_s, run.max_rss_mib))
        out = {label: summarize_runs(r) for label, r in runs.items()}
        if "c" in dirs:
            out["image"] = images.compare_files(os.path.join(dirs["nbnumba"], cases.FLOATFILE),
                                                os.path.join(dirs["c"], cases.FLOATFILE))
            out["ratio"] = out["nbnumba"]["wall_s"] / out["c"]["wall_s"]
            if "baseline" in dirs:
                out["baseline_image"] = images.compare_files(
                    os.path.join(dirs["baseline"], cases.FLOATFILE),
                    os.path.join(dirs["c"], cases.FLOATFILE))
                out["baseline_ratio"] = out["baseline"]["wall_s"] / out["c"]["wall_s"]
    return out


def measure_kernel(name, opts):
    """In-process render timings: per worker process a warm-up, then ``repeats`` renders
    (s); with a baseline, ``repeats`` rounds of one process each (this nbnumba, then the
    baseline), so that a change in machine load hits both. Returns {label: timings}.

    evals_per_s = evaluations (pixels x oversample^2 x sources x phi x mosaic x layers)
    / median render time.
    """
    runs = worker_runs(opts)
    rounds = opts.repeats if len(runs) > 1 else 1
    out = {}
    for _ in range(rounds):
        for label, python, this_repo in runs:
            info, run = run_worker("kernel", {"args": cases.case_args(name),
                                              "repeats": opts.repeats},
                                   child_env(opts.threads, this_repo=this_repo), opts.timeout,
                                   python)
            if label in out:
                out[label]["render_s"] += info["render_s"]
            else:
                out[label] = info
            out[label]["process_max_rss_mib"] = max(
                run.max_rss_mib, out[label].get("process_max_rss_mib", 0.0))
    for info in out.values():
        info["kernel_s"] = statistics.median(info["render_s"])
        info["kernel_min_s"] = min(info["render_s"])
        info["evals_per_s"] = info["counts"]["evaluations"] / info["kernel_s"]
    return out


def run_case(name, opts):
    """Every measurement of one case; a failure is recorded as ``error``."""
    result = {"args": cases.case_args(name)}
    try:
        if not opts.skip_compile:
            log("[%s] compile (cold, then warm cache)" % name)
            result["compile"] = measure_compile(name, opts)
            if opts.baseline:
                log("[%s] baseline compile (cold, then warm cache)" % name)
                result["baseline_compile"] = measure_compile(name, opts, opts.baseline_python,
                                                             this_repo=False)
        log("[%s] warm-up" % name)
        result["warmup_s"] = warm_up(name, opts)
        log("[%s] whole process x %d" % (name, opts.repeats))
        result["cli"] = measure_cli(name, opts)
        log("[%s] kernel x %d" % (name, opts.repeats))
        kernels = measure_kernel(name, opts)
        result["kernel"] = kernels["nbnumba"]
        if "baseline" in kernels:
            result["baseline_kernel"] = kernels["baseline"]
    except procs.ChildError as exc:
        result["error"] = str(exc)
        log("[%s] FAILED: %s" % (name, exc))
    return result


# --------------------------------------------------------------------------- report

def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def _get(d, *keys):
    """d[k0][k1]... or None when any level is missing."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def image_cell(image):
    """Markdown cell of an image comparison."""
    if image is None:
        return "-"
    if "error" in image:
        return "DIFF (%s)" % image["error"]
    if image["identical"]:
        return "identical"
    if image["equal"]:
        return "equal (%.1e)" % image["max_rel_diff"]
    return "DIFF %.1e (%d px)" % (image["max_rel_diff"], image["bad_pixels"])


TABLE_HEADER = ("| case | pixels | Meval | nb s | C s | nb/C | kernel s | Meval/s "
                "| cold s | warm s | nb MiB | C MiB | image vs C |")


BASELINE_HEADER = ("| case | nb s | base s | base/C | kernel s | base kernel s | Meval/s "
                   "| base Meval/s | kernel speed-up | cold s | base cold s | base image vs C |")


def baseline_row(name, r):
    """One Markdown row of the side-by-side table: this nbnumba against the baseline."""
    rate = _get(r, "kernel", "evals_per_s")
    base_rate = _get(r, "baseline_kernel", "evals_per_s")
    speedup = rate / base_rate if rate and base_rate else None
    cells = [
        name, _fmt(_get(r, "cli", "nbnumba", "wall_s"), ".3f"),
        _fmt(_get(r, "cli", "baseline", "wall_s"), ".3f"),
        _fmt(_get(r, "cli", "baseline_ratio"), ".2f"), _fmt(_get(r, "kernel", "kernel_s"), ".3f"),
        _fmt(_get(r, "baseline_kernel", "kernel_s"), ".3f"), _fmt(rate and rate / 1e6, ".1f"),
        _fmt(base_rate and base_rate / 1e6, ".1f"), _fmt(speedup, ".2f"),
        _fmt(_get(r, "compile", "cold", "wall_s"), ".2f"),
        _fmt(_get(r, "baseline_compile", "cold", "wall_s"), ".2f"),
        "error" if "error" in r else image_cell(_get(r, "cli", "baseline_image")),
    ]
    return "| " + " | ".join(cells) + " |"


def table_row(name, r):
    """One Markdown table row of a case result."""
    counts = _get(r, "kernel", "counts") or {}
    evals = counts.get("evaluations")
    rate = _get(r, "kernel", "evals_per_s")
    cells = [
        name, _fmt(counts.get("pixels"), "d"), _fmt(evals and evals / 1e6, ".1f"),
        _fmt(_get(r, "cli", "nbnumba", "wall_s"), ".3f"), _fmt(_get(r, "cli", "c", "wall_s"), ".3f"),
        _fmt(_get(r, "cli", "ratio"), ".2f"), _fmt(_get(r, "kernel", "kernel_s"), ".3f"),
        _fmt(rate and rate / 1e6, ".1f"), _fmt(_get(r, "compile", "cold", "wall_s"), ".2f"),
        _fmt(_get(r, "compile", "warm", "wall_s"), ".2f"),
        _fmt(_get(r, "cli", "nbnumba", "max_rss_mib"), ".0f"),
        _fmt(_get(r, "cli", "c", "max_rss_mib"), ".0f"),
        "error" if "error" in r else image_cell(_get(r, "cli", "image")),
    ]
    return "| " + " | ".join(cells) + " |"


def error_summary(text):
    """First line of an error and the last line of the child's output."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if len(lines) < 2 else "%s ... %s" % (lines[0], lines[-1])


def markdown(report):
    """The Markdown summary table (and a line on the machine) of a report."""
    meta = report["meta"]
    lines = [TABLE_HEADER, "|" + "---|" * TABLE_HEADER.count(" | ") + "---|"]
    lines += [table_row(n, r) for n, r in report["cases"].items()]
    lines.append("")
    if meta.get("baseline"):
        lines += ["Against the baseline %s:" % meta["baseline"], "",
                  BASELINE_HEADER, "|" + "---|" * BASELINE_HEADER.count(" | ") + "---|"]
        lines += [baseline_row(n, r) for n, r in report["cases"].items()]
        lines.append("")
    lines += ["%s failed: %s" % (n, error_summary(r["error"]))
              for n, r in report["cases"].items() if "error" in r]
    lines.append("threads %d, repeats %d (medians), %s, load average %s -> %s"
                 % (meta["threads"], meta["repeats"], meta["c_bin"] or "no C binary",
                    meta["loadavg_start"], meta["loadavg_end"]))
    return "\n".join(lines)


# --------------------------------------------------------------------------- output

def finite(obj):
    """``obj`` with every non-finite float replaced by its string (strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def default_out_path(today):
    """profiles/results/bench-DATE.json, with -2, -3, ... if that file already exists."""
    base = os.path.join(RESULTS_DIR, "bench-%s" % today.isoformat())
    path, n = base + ".json", 1
    while os.path.exists(path):
        n += 1
        path = "%s-%d.json" % (base, n)
    return path


def git_commit():
    """(commit hash, working tree dirty) of the repository, or (None, None)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, text=True, capture_output=True,
                               check=True).stdout.strip() != ""
        return head, dirty
    except (OSError, subprocess.CalledProcessError):
        return None, None


def metadata(opts):
    """What the numbers depend on: machine, versions, options."""
    commit, dirty = git_commit()
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(), "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "git_commit": commit, "git_dirty": dirty,
        "nbnumba_cli": opts.nbnumba, "baseline": opts.baseline, "c_bin": opts.c_bin,
        "threads": opts.threads,
        "repeats": opts.repeats, "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR"),
        "loadavg_start": "%.2f" % os.getloadavg()[0],
    }


def main(argv=None):
    """Run the selected cases; write the JSON file; print the table. Exit 1 on a failure."""
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    report = {"meta": metadata(opts), "cases": {}}
    for name in opts.case_names:
        report["cases"][name] = run_case(name, opts)
    meta = report["meta"]
    meta["loadavg_end"] = "%.2f" % os.getloadavg()[0]
    kernel = next((c["kernel"] for c in report["cases"].values() if "kernel" in c), {})
    meta.update({k: kernel.get(k) for k in ("nbnumba", "numba", "numba_threads")})
    path = opts.out or default_out_path(datetime.date.today())
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(finite(report), fh, indent=1)
        fh.write("\n")
    print(markdown(report))
    log("wrote %s" % path)
    return 1 if any("error" in c for c in report["cases"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
