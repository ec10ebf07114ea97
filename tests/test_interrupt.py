"""Ctrl-C and SIGTERM stop a render within a second, even inside one long kernel call."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from nbnumba_cli.interruptible import RenderStopped, call_interruptibly

CELL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
        "-oversample", "1"]
#: 2 x 2 pixels of 1e4 orientations x 2e4 sources each: every thread renders one whole
#: row in a single kernel call, minutes long
HEAVY = CELL + ["-detpixels", "2", "-mosaic", "1", "-mosaic_dom", "1000", "-phisteps", "10",
                "-dispersion", "1", "-dispsteps", "20000"]

#: seconds from the signal to the end of the process that count as "at once"
PROMPT = 2.0


def _command(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "nbnumba_cli.main"] + args, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def warm_kernel(tmp_path_factory):
    """Compile (or load) the kernel first, so that the signal reaches a running kernel."""
    run = _command(CELL + ["-detpixels", "2", "-noprogress"], tmp_path_factory.mktemp("warm"))
    assert run.wait(timeout=300) == 0, run.stderr.read()


@pytest.mark.parametrize("signum,code,message", [
    (signal.SIGINT, 130, "nbnumba: interrupted\n"),
    (signal.SIGTERM, 143, "nbnumba: terminated\n"),
])
def test_signal_inside_a_long_kernel_call_stops_at_once(warm_kernel, tmp_path, signum, code,
                                                        message):
    run = _command(HEAVY, tmp_path)
    try:
        first = run.stderr.readline()
        assert first.strip().startswith("0% done"), first
        time.sleep(1.0)            # the kernel is running now (its first call is minutes)
        assert run.poll() is None
        sent = time.monotonic()
        run.send_signal(signum)
        rest = run.stderr.read()
        run.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        run.kill()
        run.wait()
    assert took < PROMPT, "took %.1f s to stop" % took
    assert (run.returncode, rest) == (code, message)
    assert os.listdir(tmp_path) == []          # no output, no temporary file


def test_worker_result_and_errors_come_back():
    reports = []

    def work(progress):
        progress(1, 2)
        progress(2, 2)
        return "image"

    assert call_interruptibly(work, lambda done, total: reports.append(done)) == "image"
    assert reports == [1, 2]

    def fail(progress):
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        call_interruptibly(fail)


def test_interrupt_is_raised_at_once_and_stops_the_worker_at_its_next_block():
    stopped = threading.Event()
    blocks = []

    def slow(progress):
        try:
            while True:
                time.sleep(0.3)       # one block of rows
                progress(len(blocks), 1000)
                blocks.append(1)
        except RenderStopped:
            stopped.set()
            raise

    timer = threading.Timer(0.5, signal.raise_signal, (signal.SIGINT,))
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        call_interruptibly(slow)
    assert time.monotonic() - start < 0.5 + PROMPT
    assert stopped.wait(timeout=5)
