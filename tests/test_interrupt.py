"""Ctrl-C and SIGTERM stop a render within a second, even inside one long kernel call."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import HEAVY, PROMPT, STOP_CELL as CELL, stop_while_rendering


def _command(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "nbnumba_cli.main"] + args, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def warm_kernel(tmp_path_factory):
    """Compile (or load) the kernel first, so that the signal reaches a running kernel."""
    run = _command(CELL + ["-detpixels", "2", "-noprogress"], tmp_path_factory.mktemp("warm"))
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err


@pytest.mark.parametrize("signum,code,message", [
    (signal.SIGINT, 130, "nbnumba: interrupted\n"),
    (signal.SIGTERM, 143, "nbnumba: terminated\n"),
])
def test_signal_inside_a_long_kernel_call_stops_at_once(warm_kernel, tmp_path, signum, code,
                                                        message):
    run = _command(HEAVY, tmp_path)
    took, rest = stop_while_rendering(run, signum)
    assert took < PROMPT, "took %.1f s to stop" % took
    assert (run.returncode, rest) == (code, message)
    assert os.listdir(tmp_path) == []          # no output, no temporary file


#: a library render of many cheap rows (each about 0.2 s on one core), long enough to
#: be interrupted 3 s in on a fast idle machine (about 20 s on two cores): 128 x 128
#: pixels of 100 sources x 800 mosaic domains
LONG = CELL + ["-detpixels", "128", "-dispersion", "1", "-dispsteps", "100", "-mosaic", "1",
               "-mosaic_dom", "800"]

_LIBRARY_INTERRUPT = """
import sys, threading, time
import nbnumba
cfg, _ = nbnumba.config_from_args(sys.argv[1:], cwd=".")
setup = nbnumba.prepare(cfg)
print("rendering", flush=True)
try:
    nbnumba.render(setup, threads=2)
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    time.sleep(0.1)   # the render thread ends right after the kernel it waited for
    print([t.name for t in threading.enumerate() if t.name == "nbnumba-render"], flush=True)
"""


def test_library_render_stops_within_a_second_of_sigint(warm_kernel, tmp_path):
    """SIGINT 3 s into a long ``render()`` raises KeyboardInterrupt within a second, after
    the kernel itself stopped (no render thread left running)."""
    run = subprocess.Popen([sys.executable, "-c", _LIBRARY_INTERRUPT] + LONG, cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert run.stdout.readline().strip() == "rendering"
        time.sleep(3.0)
        assert run.poll() is None, "the render ended within 3 s: make it longer"
        sent = time.monotonic()
        run.send_signal(signal.SIGINT)
        line = run.stdout.readline().strip()
        took = time.monotonic() - sent
        left = run.stdout.readline().strip()
        run.wait(timeout=60)
    finally:
        run.kill()
        _, err = run.communicate()   # reads what is left and closes the pipes
    assert (line, left) == ("interrupted", "[]"), err
    assert took < 1.0, "took %.2f s to stop" % took


def test_background_work_hands_back_its_result_its_error_and_lets_a_signal_through():
    """nbnumba.running.Background (the command's noise image is drawn in one while the
    other images are written): the caller gets the value or the exception, and a signal
    reaches the waiting thread while the work goes on."""
    import threading
    from nbnumba.running import Background

    assert Background(lambda: 42).result() == 42

    def fail():
        raise ValueError("from the worker")
    with pytest.raises(ValueError, match="from the worker"):
        Background(fail).result()

    class Stopped(Exception):
        pass

    def stop(*_):
        raise Stopped

    release = threading.Event()
    previous = signal.signal(signal.SIGALRM, stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        started = time.monotonic()
        with pytest.raises(Stopped):
            Background(lambda: release.wait(30)).result()
        assert time.monotonic() - started < PROMPT
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        release.set()
