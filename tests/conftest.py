"""Shared test fixtures: the golden data set and an in-process CLI runner."""
import contextlib
import io
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

# The resident renderer (tests/test_renderer.py): no test may use a renderer of the user's
# own or leave one running. Every process the tests start sees an empty runtime directory
# of this session and NBNUMBA_SERVER=off, unless a test sets them; the renderers the tests
# start are stopped by their fixtures, and any left in RENDERER_ROOTS at the end are killed.
RENDERER_ROOTS = []


def pytest_configure(config):
    """In the test session's own process (not in the processes that import this file)."""
    runtime = tempfile.mkdtemp(prefix="nbt", dir="/tmp")
    os.environ["XDG_RUNTIME_DIR"] = runtime
    os.environ["NBNUMBA_SERVER"] = "off"
    RENDERER_ROOTS.append(runtime)


def renderer_pids(root):
    """pids of the renderers running with their lock files under ``root`` (a pid read
    from a lock file counts only while that process is the renderer of that lock)."""
    folder = Path(root) / "nbnumba"
    pids = []
    for lock in folder.glob("renderer-*.lock") if folder.is_dir() else ():
        text = lock.read_text().strip()
        if not text.isdigit():
            continue
        try:
            cmdline = Path("/proc/%s/cmdline" % text).read_bytes().split(b"\0")
        except OSError:
            continue
        if os.fsencode(str(lock)) in cmdline:
            pids.append(int(text))
    return pids


def pytest_sessionfinish(session, exitstatus):
    for root in RENDERER_ROOTS:
        for pid in renderer_pids(root):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden"


@pytest.fixture(scope="session")
def golden_dir():
    """The golden reference set copied from the C program (cases.json, inputs/, cases/)."""
    return GOLDEN


@pytest.fixture(scope="session")
def golden_cases():
    """The list of case descriptions of cases.json."""
    return json.loads((GOLDEN / "cases.json").read_text())


class CliRun:
    """Result of one in-process CLI run: exit code, stdout and stderr text."""

    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err




#: a cubic cell's flags for the commands the stop tests start
STOP_CELL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
             "-oversample", "1"]
#: 2 x 2 pixels of 1e4 orientations x 2e4 sources each: every thread renders one whole
#: row in a single kernel call, minutes long
HEAVY = STOP_CELL + ["-detpixels", "2", "-mosaic", "1", "-mosaic_dom", "1000", "-phisteps",
                     "10", "-dispersion", "1", "-dispsteps", "20000"]
#: seconds from a signal to the end of the process that count as "at once"
PROMPT = 2.0


def stop_while_rendering(run, signum):
    """Send ``signum`` to ``run`` (a Popen of :data:`HEAVY`, stderr piped) a second after
    its first progress line; returns (seconds from the signal to its end, the rest of its
    stderr). The process is killed in any case."""
    try:
        first = run.stderr.readline()
        shown = first.decode() if isinstance(first, bytes) else first
        assert shown.strip().startswith("0% done"), first
        time.sleep(1.0)            # the kernel is running now (its first call is minutes)
        assert run.poll() is None
        sent = time.monotonic()
        run.send_signal(signum)
        rest = run.communicate(timeout=60)[1]
        return time.monotonic() - sent, rest
    finally:
        run.kill()
        run.communicate()   # closes the pipe

@contextlib.contextmanager
def mounted_tmpfs(folder, size):
    """A tmpfs of ``size`` (mount's units: "64k") mounted on ``folder`` (created) for the
    block; the test is skipped where mounting is not permitted (it needs root)."""
    import subprocess
    folder = Path(folder)
    folder.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs",
                               str(folder)], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip("cannot mount a small tmpfs here: %s" % exc)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): "
                    + done.stderr.decode(errors="replace").strip())
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def run_cli(args, cwd, entry=None):
    """Run a CLI entry point (default: ``nbnumba``) in-process inside ``cwd``.

    Returns a :class:`CliRun`. The working directory is restored afterwards.
    """
    if entry is None:
        from nbnumba_cli.main import main as entry
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = entry(list(args))
    finally:
        os.chdir(old)
    return CliRun(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(tmp_path):
    """Run ``nbnumba`` in-process in a fresh temporary directory: cli(args) -> CliRun."""
    def _run(args, cwd=None):
        return run_cli(args, cwd or tmp_path)
    return _run


def stage_case(case, workdir):
    """Copy a golden case's inputs (and pre-copies) into ``workdir``."""
    (workdir / "inputs").mkdir(parents=True, exist_ok=True)
    for name in case["inputs"]:
        src = GOLDEN / name
        if src.exists():
            shutil.copy(src, workdir / name)
    for a, b in case.get("pre_copy", []):
        shutil.copy(GOLDEN / a, workdir / b)
