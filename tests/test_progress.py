"""Progress lines and the commands' one-line error reporting."""
import io

import pytest

from nbnumba.progress import StatusLine, clock
from nbnumba.series import SeriesProgress
from nbnumba_cli import guard
from nbnumba.progress import ProgressMeter


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("seconds, text", [
    (0, "0:00"), (59.4, "0:59"), (61, "1:01"), (3599.6, "1:00:00"), (7322, "2:02:02"),
    (float("nan"), "?"),
])
def test_clock(seconds, text):
    assert clock(seconds) == text


def test_status_line_rewrites_in_place_on_a_terminal_only():
    term = FakeTerminal()
    line = StatusLine(term)
    line.show("a")
    line.show("b", final=True)
    assert term.getvalue() == "\ra\rb\n"
    log = io.StringIO()
    line = StatusLine(log)
    line.show("a")
    line.show("b", final=True)
    assert log.getvalue() == "a\nb\n"


def test_progress_meter_is_silent_for_short_renders_then_reports_the_end():
    log = io.StringIO()
    meter = ProgressMeter(log, delay=3600.0)
    for done in (0, 10, 20):
        meter(done, 20)
    assert log.getvalue() == ""
    log = io.StringIO()
    meter = ProgressMeter(log, delay=0.0, interval=3600.0)
    meter(5, 20)          # the first block only starts the rate clock
    meter(10, 20)
    meter(15, 20)         # within the interval: not reported
    meter(20, 20)         # the end always is
    lines = log.getvalue().splitlines()
    assert [line.split("%")[0].strip() for line in lines] == ["50", "100"]
    assert all("elapsed" in line and "left" in line for line in lines)


def test_series_progress_counts_skipped_and_failed_frames():
    log = io.StringIO()
    meter = SeriesProgress(4, stream=log, interval=3600.0)
    meter(1, 0, 0)
    meter(2, 0, 0)        # within the interval: not reported
    meter(2, 1, 1)
    lines = log.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("frames 1/4 done, ")
    assert lines[1].startswith("frames 3/4 done (1 skipped), 1 failed, ")


def test_error_is_one_line_and_returns_the_error_status(capsys):
    assert guard.error("prog", "bad\nname\x00") == guard.EXIT_ERROR == 9
    err = capsys.readouterr().err
    assert err == "prog: error: bad\\nname\\x00\n"


def _crash(argv):
    raise RuntimeError("first line\nsecond line")


def _interrupt(argv):
    raise KeyboardInterrupt


def test_internal_errors_and_interrupts_are_one_line(capsys, monkeypatch):
    monkeypatch.delenv("NBNUMBA_DEBUG", raising=False)
    assert guard.run_guarded(_crash, [], "prog") == 9
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("prog: internal error: RuntimeError: first line\\nsecond line")
    assert guard.run_guarded(_interrupt, [], "prog", interrupted="stopped") == 130
    assert capsys.readouterr().err == "prog: stopped\n"
    assert guard.run_guarded(lambda argv: len(argv), ["a", "b"], "prog") == 2


def test_debug_setting_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("NBNUMBA_DEBUG", "1")
    with pytest.raises(RuntimeError):
        guard.run_guarded(_crash, [], "prog")


def test_progress_meter_shows_zero_at_once_for_a_long_render_and_always_ends_the_line():
    term = FakeTerminal()
    meter = ProgressMeter(term, delay=1.0, interval=3600.0, expected_seconds=5.0)
    assert term.getvalue() == "\r  0% done, 0:00 elapsed, at most about 0:05 left"
    meter(10, 20)         # first block: starts the rate clock, within the interval
    meter(20, 20)         # done (sooner than expected): the line is completed
    first = "  0% done, 0:00 elapsed, at most about 0:05 left"
    last = "100% done, 0:00 elapsed, 0:00 left"   # spaces over the longer first line
    assert term.getvalue().endswith("\r" + last.ljust(len(first)) + "\n")
    log = io.StringIO()
    meter = ProgressMeter(log, delay=1.0, expected_seconds=0.5)
    meter(10, 20)
    meter(20, 20)
    assert log.getvalue() == ""    # expected to be short, and it was


def _plan_setup(rows, cols, per_pixel):
    from types import SimpleNamespace

    import numpy as np
    return SimpleNamespace(fpixels=cols, spixels=rows, roi=(0, cols - 1, 0, rows - 1),
                           oversample=1, layers=1, phi_steps=1, mosaic_domains=per_pixel,
                           sources=SimpleNamespace(wavelengths=np.ones(1)))


def test_planned_seconds_is_the_work_at_the_planning_rate():
    from nbnumba.engine import planned_seconds
    from nbnumba.progress import PLANNING_RATE
    assert planned_seconds(_plan_setup(1024, 512, 1000), threads=2) == pytest.approx(
        1024 * 512 * 1000 / (2 * PLANNING_RATE))


def test_the_meter_shows_compiling_as_a_state_and_leaves_it_out_of_the_rate(monkeypatch):
    import nbnumba.progress as progress
    now = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    log = io.StringIO()
    meter = ProgressMeter(log, delay=0.0, interval=1.0)
    meter.compiling(0.2)
    now[0] += 12.0
    meter.compiling(12.2)
    meter.rendering(12.2)       # 12 s of compiling, then rows
    meter(0, 100)               # starts the rate clock
    now[0] += 2.0
    meter(50, 100)              # 25 rows/s since rendering began: 2 s left
    lines = log.getvalue().splitlines()
    assert lines[0] == "compiling the kernel (once per machine) ... 0:00"
    assert lines[1] == "compiling the kernel (once per machine) ... 0:12"
    assert lines[2] == " 50% done, 0:14 elapsed, 0:02 left"


class _Bar:
    """A tqdm-like object: ``update(n)`` and ``total``."""

    def __init__(self):
        self.total = None
        self.n = 0

    def update(self, n):
        self.n += n


def _config(*flags):
    import nbnumba
    return nbnumba.config_from_args(["-cell", "100", "100", "100", "90", "90", "90",
                                     "-default_F", "100", "-N", "5", "-oversample", "1"]
                                    + list(flags), cwd=".")[0]


#: a render of a few seconds on two idle cores (64 rows of 64 pixels x 200 sources x 400
#: domains), so that the progress polls (every 0.1 s) see the rows advance many times
_SECONDS = ("-detpixels", "64", "-dispersion", "1", "-dispsteps", "200", "-mosaic", "1",
            "-mosaic_dom", "400")


def test_progress_callable_is_called_during_the_render(tmp_path, monkeypatch):
    import time

    import nbnumba
    monkeypatch.chdir(tmp_path)
    calls = []
    start = time.perf_counter()
    result = nbnumba.simulate(_config(*_SECONDS), threads=2,
                              progress=lambda done, total: calls.append((done, total)))
    took = time.perf_counter() - start
    during = [c for c in calls if c[0] < c[1]]
    assert len(during) >= 5 and len(during) >= took - 1, (took, calls)
    assert calls[-1] == (64, 64) and result.image.shape == (64, 64)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_progress_true_and_tqdm_like_objects_work(tmp_path, monkeypatch, capsys):
    import nbnumba
    import tqdm
    monkeypatch.chdir(tmp_path)
    cfg = _config(*_SECONDS)
    bar = _Bar()
    nbnumba.simulate(cfg, progress=bar)
    assert (bar.n, bar.total) == (64, 64)
    with tqdm.tqdm(file=io.StringIO(), disable=False) as real:
        nbnumba.simulate(cfg, progress=real)
        assert (real.n, real.total) == (64, 64)
    capsys.readouterr()
    nbnumba.simulate(cfg, progress=True)
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("100% done"), err


@pytest.mark.parametrize("wrong", [3, "yes", 1.0, object()])
def test_a_wrong_progress_argument_is_refused_before_any_work(wrong, monkeypatch):
    import time

    import nbnumba
    from nbnumba import engine
    monkeypatch.setattr(engine, "prepare", lambda config: pytest.fail("prepared"))
    start = time.perf_counter()
    with pytest.raises(nbnumba.ConfigError, match="progress must be"):
        nbnumba.simulate(_config("-detpixels", "4"), progress=wrong)
    assert time.perf_counter() - start < 0.5


def test_a_long_render_shows_the_meter_when_rendering_starts(cli):
    """A render planned to take over a second prints ``0% done`` before the first block."""
    res = cli(["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "2",
               "-detpixels", "16", "-mosaic", "1", "-mosaic_dom", "20000", "-nthreads", "1", "-progress",
               "-nopgm", "-nonoise", "-seed", "1"])
    assert res.code == 0, res.err
    lines = [line for line in res.err.splitlines() if "done" in line]
    assert lines[0].startswith("  0% done, 0:00 elapsed")
    assert lines[-1].startswith("100% done")


def test_a_cold_command_shows_compiling_as_the_meters_state_after_the_banner(tmp_path):
    """With an empty cache the meter's first state, after the set-up lines, is the
    compile (the process is stopped once it is there)."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    out = open(tmp_path / "stdout.txt", "w")
    run = subprocess.Popen([sys.executable, "-m", "nbnumba_cli.main", "-cell", "100", "100",
                            "100", "90", "90", "90", "-default_F", "100", "-N", "2",
                            "-detpixels", "4", "-nopgm", "-nonoise", "-seed", "1"],
                           cwd=tmp_path, env=env, stdout=out, stderr=subprocess.PIPE,
                           text=True)
    try:
        lines = []
        while not (lines and lines[-1].startswith("compiling the kernel")):
            line = run.stderr.readline()
            assert line, "no compile state: %s" % lines
            lines.append(line)
        banner = (tmp_path / "stdout.txt").read_text()
    finally:
        run.kill()
        run.communicate()   # reads what is left and closes the pipe
        out.close()
    assert lines[-1].startswith("compiling the kernel (once per machine) ... 0:0"), lines
    assert "nanoBragg-compatible diffraction simulator" in banner
    assert not any("% done" in line for line in lines)
