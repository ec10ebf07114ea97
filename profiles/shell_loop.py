"""A shell loop of whole processes: the C nanoBragg, ``nbnumba`` in-process (cold) and
``nbnumba`` through the resident renderer, case by case.

    python -m profiles.shell_loop [--cases P1,P4,P7,P2,README2,F4096,P5] [--repeats 5]
                                  [--threads 2] [--c-bin PATH | NB_C_BIN=PATH]
                                  [--nbnumba PATH] [--out FILE]

What a user's ``for ...; do nbnumba ...; done`` pays per image. In a private runtime
directory (the user's own renderer is never touched), a renderer is started with
``nbnumba --server start`` under the same environment as every run (``NUMBA_NUM_THREADS``
and ``OMP_NUM_THREADS`` = ``--threads``). Per case, after one warm-up run of each:

1. **with the renderer idle between runs**, interleaved ``--repeats`` times: the C,
   ``nbnumba`` with ``NBNUMBA_SERVER=off`` (cold: the whole start-up, as before the
   renderer existed) and ``nbnumba`` through the renderer; each run in a fresh
   directory, wall time of the whole process;
2. **without a renderer** (stopped), interleaved: the C again (is it as fast beside an
   idle renderer as without one?) and ``nbnumba`` with the default ``NBNUMBA_SERVER``
   (the client finds no renderer and renders in-process: unchanged from cold?).

The float images of the renderer's, the cold and the C's last runs are compared (bit
for bit between the two nbnumba runs). The renderer's served count must grow by the
number of its runs (a run it declined would have been timed as cold). The load average
is recorded before and after: only a quiet machine gives numbers to quote. Results go
to a JSON file and a Markdown table on stdout; progress to stderr.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from . import cases, images
from .bench import RESULTS_DIR, check_common_options, find_nbnumba, git_commit, log

#: the cases of the comparison, in this order
DEFAULT_CASES = "P1,P4,P7,P2,README2,F4096,P5"
NO_PROGRESS = ["-noprogress"]


def parse_args(argv):
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m profiles.shell_loop",
                                description="C, cold nbnumba and nbnumba through the "
                                            "resident renderer, process by process.")
    p.add_argument("--cases", default=DEFAULT_CASES, help="comma-separated cases (default "
                   "%s)" % DEFAULT_CASES)
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each (default 5)")
    p.add_argument("--threads", type=int, default=2, help="threads of every program "
                   "(default 2)")
    p.add_argument("--c-bin", default=os.environ.get("NB_C_BIN"),
                   help="the C nanoBragg (default $NB_C_BIN; none: nbnumba only)")
    p.add_argument("--nbnumba", default=None, help="the nbnumba command (default: beside "
                   "this Python, else on PATH)")
    p.add_argument("--out", default=None, help="JSON results (default "
                   "profiles/results/shell-loop-DATE.json)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds after which a run "
                   "is killed (default 600)")
    p.add_argument("--realtime", action="store_true",
                   help="run every process (the renderer too) under 'chrt -f 50': on a "
                   "loaded machine, an approximation of a quiet one (needs root; the runs "
                   "then pre-empt every other process, keep them few)")
    opts = p.parse_args(argv)
    check_common_options(p, opts)
    opts.nbnumba = opts.nbnumba or find_nbnumba()
    if not opts.nbnumba:
        p.error("no nbnumba command found (--nbnumba)")
    return opts


def load():
    """The 1-minute load average (None where unknown)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


class Programs:
    """The three ways to run a case, with their environment and working folders."""

    def __init__(self, opts, runtime):
        self.opts = opts
        self.env = dict(os.environ, NUMBA_NUM_THREADS=str(opts.threads),
                        OMP_NUM_THREADS=str(opts.threads), XDG_RUNTIME_DIR=runtime)
        for name in ("NBNUMBA_SERVER", "NBNUMBA_DEBUG", "NBNUMBA_TEST_PAUSE"):
            self.env.pop(name, None)
        self.scratch = tempfile.mkdtemp(prefix="shell-loop-")
        self.count = 0
        self.prefix = ["chrt", "-f", "50"] if opts.realtime else []

    def command(self, kind, name):
        if kind == "c":
            return [self.opts.c_bin] + cases.c_args(name) + NO_PROGRESS
        return [self.opts.nbnumba] + cases.case_args(name) + NO_PROGRESS

    def environment(self, kind):
        return dict(self.env, NBNUMBA_SERVER="off") if kind == "cold" else self.env

    def run(self, kind, name):
        """Wall seconds of one whole process of ``kind`` ("c", "cold", "served",
        "unserved") on case ``name``, in a fresh folder; returns (seconds, folder)."""
        self.count += 1
        folder = os.path.join(self.scratch, "%s-%s-%d" % (name, kind, self.count))
        os.mkdir(folder)
        t0 = time.perf_counter()
        done = subprocess.run(self.prefix + self.command(kind, name), cwd=folder,
                              env=self.environment(kind),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=self.opts.timeout)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError("%s %s: exit %d: %s" % (kind, name, done.returncode,
                                                      done.stderr.decode()[-400:]))
        return seconds, folder

    def server(self, *args):
        done = subprocess.run(self.prefix + [self.opts.nbnumba, "--server"] + list(args),
                              env=self.env,
                              capture_output=True, text=True, timeout=self.opts.timeout)
        if done.returncode not in (0, 3):
            raise RuntimeError("nbnumba --server %s: %s" % (" ".join(args), done.stderr))
        return done.stdout

    def served(self):
        return int(self.server("status").split("runs: ")[1].split(" served")[0])

    def renderer_pid(self):
        return int(self.server("status").split("pid ")[1].split(",")[0])

    def close(self):
        self.server("stop")
        shutil.rmtree(self.scratch, ignore_errors=True)


def _median(values):
    return statistics.median(values) if values else None


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name, programs, opts):
    """The runs of one case (see the module notes); returns its record."""
    kinds = (["c"] if opts.c_bin else []) + ["cold", "served"]
    times = {k: [] for k in kinds + ["c_alone", "unserved"]}
    folders = {}
    programs.server("start")                              # (a no-op when it runs)
    for kind in kinds:                                   # warm-up (caches, page cache)
        programs.run(kind, name)
    served_before = programs.served()
    pid = programs.renderer_pid()
    cpu_before = _cpu_seconds(pid)
    load_before = load()
    for _ in range(opts.repeats):
        for kind in kinds:
            seconds, folders[kind] = programs.run(kind, name)
            times[kind].append(seconds)
    renderer_cpu = _cpu_seconds(pid) - cpu_before
    served = programs.served() - served_before
    programs.server("stop")
    for _ in range(opts.repeats):
        for kind in (["c"] if opts.c_bin else []) + ["unserved"]:
            seconds, folder = programs.run(kind, name)
            times["c_alone" if kind == "c" else kind].append(seconds)
    floatfile = cases.FLOATFILE
    same = images.compare_files(os.path.join(folders["served"], floatfile),
                                os.path.join(folders["cold"], floatfile))
    record = {"median_s": {k: _median(v) for k, v in times.items()}, "runs_s": times,
              "served_runs": served, "expected_served": opts.repeats,
              "renderer_cpu_s_during_case": renderer_cpu,
              "served_equals_cold": bool(same.get("identical")), "load_before": load_before,
              "load_after": load()}
    if opts.c_bin:
        record["served_vs_c"] = images.compare_files(
            os.path.join(folders["served"], floatfile), os.path.join(folders["c"], floatfile))
    return record


def _ratio(a, b):
    return "" if a is None or b is None or b == 0 else "%.2f" % (a / b)


def markdown(report):
    """The Markdown table of a report."""
    lines = ["| case | C s | cold nbnumba s | through renderer s | cold/C | renderer/C | "
             "C, no renderer s | nbnumba, no renderer s | image |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in report["cases"].items():
        if "error" in r:
            lines.append("| %s | error: %s |" % (name, r["error"]))
            continue
        m = r["median_s"]
        fmt = lambda v: "" if v is None else "%.3f" % v  # noqa: E731
        image = "served = cold" if r["served_equals_cold"] else "SERVED DIFFERS FROM COLD"
        if "served_vs_c" in r:
            image += ", = C" if r["served_vs_c"].get("identical") else ", vs C: %s" % (
                "within 1e-6" if r["served_vs_c"].get("equal") else "DIFFERENT")
        if r["served_runs"] != r["expected_served"]:
            image += " (renderer served %d of %d)" % (r["served_runs"], r["expected_served"])
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, fmt(m.get("c")), fmt(m["cold"]), fmt(m["served"]),
            _ratio(m["cold"], m.get("c")), _ratio(m["served"], m.get("c")),
            fmt(m.get("c_alone")), fmt(m["unserved"]), image))
    meta = report["meta"]
    lines.append("")
    lines.append("threads %d, repeats %d (medians), interleaved; load average %s -> %s; %s%s"
                 % (meta["threads"], meta["repeats"], meta["load_start"], meta["load_end"],
                    meta["cpu"], "; every process under chrt -f 50" if meta.get("realtime")
                    else ""))
    return "\n".join(lines)


def main(argv=None):
    opts = parse_args(argv)
    runtime = tempfile.mkdtemp(prefix="nbl", dir="/tmp")
    os.chmod(runtime, 0o700)
    programs = Programs(opts, runtime)
    report = {"meta": {"threads": opts.threads, "repeats": opts.repeats,
                       "c_bin": opts.c_bin, "nbnumba": opts.nbnumba, "commit": git_commit(),
                       "cpu": platform.processor() or platform.machine(),
                       "python": platform.python_version(), "load_start": load(),
                       "realtime": opts.realtime,
                       "date": datetime.datetime.now().isoformat(timespec="seconds")},
              "cases": {}}
    failed = False
    try:
        programs.server("start")
        for name in opts.case_names:
            log("%s ..." % name)
            try:
                report["cases"][name] = measure(name, programs, opts)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failed = True
                report["cases"][name] = {"error": str(exc)}
            log("%s: %s" % (name, json.dumps(report["cases"][name].get("median_s"))))
    finally:
        programs.close()
        shutil.rmtree(runtime, ignore_errors=True)
    report["meta"]["load_end"] = load()
    out = opts.out or os.path.join(RESULTS_DIR, "shell-loop-%s.json"
                                   % datetime.date.today().isoformat())
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print(markdown(report))
    log("results: %s" % out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
