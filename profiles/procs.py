"""Child processes timed with their own resource usage.

Wall time is measured here around the child; CPU time comes from ``os.wait4`` (the rusage
of exactly that child and its waited-for descendants).

Peak memory comes from GNU time (``/usr/bin/time -f %M``) when it is installed. The
kernel's ``ru_maxrss`` of a child started directly from this process is useless: on
``exec`` Linux folds the parent's high-water mark into the child's (the child is
vfork'ed or forked from this process), so every child would report at least this
process's own peak. GNU time forks the real command from its own, tiny, process. Without
GNU time the ``wait4`` value is reported, flagged ``rss_source = "wait4"``: max(the
child's peak, this process's peak at the start).
"""
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass

#: ru_maxrss unit on Linux (KiB); macOS reports bytes
_RSS_BYTES = 1024 if os.uname().sysname != "Darwin" else 1

#: GNU time, if present
GNU_TIME = "/usr/bin/time"


def _gnu_time_works():
    """True when ``GNU_TIME -f %M -o FILE`` runs (GNU time, not BSD time)."""
    if not os.access(GNU_TIME, os.X_OK):
        return False
    try:
        with open(os.devnull, "w") as null:
            return subprocess.run([GNU_TIME, "-f", "%M", "-o", os.devnull, "true"],
                                  stdout=null, stderr=null).returncode == 0
    except OSError:
        return False


HAVE_GNU_TIME = _gnu_time_works()


@dataclass
class RunResult:
    """One finished child process.

    wall_s: wall-clock time from start to exit, s; user_s, sys_s: CPU time, s;
    max_rss_mib: peak resident memory, MiB; rss_source: "gnu-time" or "wait4" (see
    the module notes); returncode: exit status (negative or > 128: signal);
    timed_out: killed after the time limit; output: its stdout and stderr (tail).
    """
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mib: float
    rss_source: str
    returncode: int
    timed_out: bool
    output: str

    def as_dict(self):
        return asdict(self)


def _tail(path, limit=4000):
    """The last ``limit`` characters of a text file."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(fh.tell() - limit, 0))
        return fh.read().decode("utf-8", "replace")


def _read_gnu_time(path):
    """Peak RSS (KiB) from a GNU time ``-f %M -o`` file (its last line), or None."""
    try:
        with open(path) as fh:
            lines = fh.read().split()
        return int(lines[-1])
    except (OSError, ValueError, IndexError):
        return None


def _kill_group(pid, killed):
    """Kill the child's process group (GNU time and the command under it)."""
    killed.set()
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(cmd, cwd, env=None, timeout=None):
    """Run ``cmd`` (a list) in ``cwd``; stdout+stderr go to a log file in ``cwd``.

    The child runs in its own session (process group), so a time-out kills the command
    and GNU time together. timeout: seconds (None: no limit).
    Returns a :class:`RunResult`.
    """
    stem = os.path.join(cwd, ".bench-%d" % time.monotonic_ns())
    log_path, rss_path = stem + ".log", stem + ".rss"
    if HAVE_GNU_TIME:
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_path] + list(cmd)
    with open(log_path, "wb") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        killed = threading.Event()
        timer = None
        if timeout:
            timer = threading.Timer(timeout, _kill_group, (proc.pid, killed))
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer is not None:
                timer.cancel()
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
    output = _tail(log_path)
    os.remove(log_path)
    rss_kib = _read_gnu_time(rss_path) if HAVE_GNU_TIME else None
    if os.path.exists(rss_path):
        os.remove(rss_path)
    source = "gnu-time" if rss_kib is not None else "wait4"
    if rss_kib is None:
        rss_kib = usage.ru_maxrss * _RSS_BYTES / 1024
    return RunResult(wall_s=wall, user_s=usage.ru_utime, sys_s=usage.ru_stime,
                     max_rss_mib=rss_kib / 1024, rss_source=source,
                     returncode=proc.returncode, timed_out=killed.is_set(), output=output)


class ChildError(RuntimeError):
    """A child process failed; the message holds its command and output tail."""


def check(result, what):
    """Raise :class:`ChildError` unless ``result`` exited with status 0."""
    if result.returncode != 0 or result.timed_out:
        why = "timed out" if result.timed_out else "exit status %d" % result.returncode
        raise ChildError("%s failed (%s):\n%s" % (what, why, result.output[-2000:]))
    return result


def last_json(result, what):
    """The JSON object on the last non-empty output line of a successful child."""
    check(result, what)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise ChildError("%s printed no result:\n%s" % (what, result.output[-2000:])) from None
