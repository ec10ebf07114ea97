"""Library calls seen from Python: the compile warning of a cold cache, concurrent
renders under numba's workqueue threading layer, and the C's solid-angle line."""
import os
import subprocess
import sys
import time

import pytest

CELL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
        "-oversample", "1"]

_COLD_CALL = """
import sys, time
import nbnumba
cfg, _ = nbnumba.config_from_args(sys.argv[1:], cwd=".")
print("calling %.3f" % time.time(), flush=True)
nbnumba.simulate(cfg)
"""


def test_a_cold_cache_shows_the_compile_warning_within_a_second(tmp_path):
    """With an empty NUMBA_CACHE_DIR, simulate() says on stderr that it compiles (a
    nbnumba.CompileWarning naming nbnumba.compile()) before numba does."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.Popen([sys.executable, "-c", _COLD_CALL] + CELL + ["-detpixels", "4"],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        called = float(run.stdout.readline().split()[1])
        line = run.stderr.readline()
        seen = time.time()
    finally:
        run.kill()
        run.communicate()   # reads what is left and closes the pipes
    assert "CompileWarning: nbnumba: compiling " in line, line
    assert "nbnumba.compile()" in line and line.startswith("<string>:"), line
    assert seen - called < 1.0, "the warning came %.2f s after the call" % (seen - called)


_TWO_THREADS = """
import sys, threading
import numpy as np
import nbnumba
cfgs = [nbnumba.config_from_args(sys.argv[1:] + ["-detpixels", str(n)], cwd=".")[0]
        for n in (48, 64)]
alone = [nbnumba.simulate(c, threads=2).image for c in cfgs]
images = {}
def work(i):
    for _ in range(3):
        images[i] = nbnumba.simulate(cfgs[i], threads=2).image
threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
for t in threads:
    t.start()
for t in threads:
    t.join()
import numba
print(numba.threading_layer(), all(images[i].tobytes() == alone[i].tobytes() for i in (0, 1)))
"""


def test_two_threads_render_at_once_under_the_workqueue_layer(tmp_path):
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    run = subprocess.run([sys.executable, "-c", _TWO_THREADS] + CELL, cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["workqueue", "True"], run.stdout


def test_solid_angle_line_is_the_cs_running_total_in_raster_order(tmp_path, monkeypatch):
    """The C (run single-threaded, as for the golden files) adds each sub-pixel's solid
    angle to one running total in raster order; summing per row and then the rows gives
    0.000360938 here. The C's line for these flags (OMP_NUM_THREADS=1):"""
    c_line = "solid angle subtended by detector = 0.000360937 steradian ( 0.00287225% sphere)"
    from nbnumba_cli.main import run
    import io
    out = io.StringIO()
    monkeypatch.chdir(tmp_path)
    code = run(CELL[:-2] + ["-curved_det", "-pixel", "0.125", "-distance", "100",
                            "-detpixels_f", "21", "-detpixels_s", "11", "-oversample", "3",
                            "-nonoise", "-nopgm", "-noprogress"], stdout=out)
    assert code == 0
    assert c_line in out.getvalue().splitlines()


@pytest.mark.skipif(not os.environ.get("NB_C_BIN"), reason="needs the C program (NB_C_BIN)")
def test_the_c_prints_that_solid_angle_line(tmp_path):
    args = CELL[:-2] + ["-curved_det", "-pixel", "0.125", "-distance", "100", "-detpixels_f",
                        "21", "-detpixels_s", "11", "-oversample", "3", "-nonoise", "-nopgm"]
    run = subprocess.run([os.environ["NB_C_BIN"]] + args, cwd=tmp_path, capture_output=True,
                         text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert ("solid angle subtended by detector = 0.000360937 steradian ( 0.00287225% sphere)"
            in run.stdout.splitlines())
