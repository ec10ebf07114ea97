"""Series runs that meet each other (issue 14): the run record and --resume, the directory
lock, Ctrl-C with dask workers, and the bounds of --frames and --workers.

A run records what it is (version, seed, flags, a digest of the configuration) and the
SHA-256 of every finished frame's files beside the frames; --resume keeps only frames
that match and refuses to continue another run; a second run on the same directory is
refused while the first holds the lock.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli
from nbnumba import series
from nbnumba_cli.series import MAX_FRAMES
from nbnumba_cli.series import main as series_main

SMALL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "2",
         "-detpixels", "32", "-oversample", "1", "-nopgm", "-noprogress"]
RUN = ["--frames", "3", "--frame-osc", "0.2", "--template", "s/f_{:02d}"]
EXTS = (".bin", ".img", "_noise.img")


def _frames(directory, n=3):
    return {name: (directory / "s" / name).read_bytes()
            for name in ("f_{:02d}".format(i) + e for i in range(n) for e in EXTS)}


def _series_subprocess(args, cwd, **kwargs):
    return subprocess.run([sys.executable, "-m", "nbnumba_cli.series"] + args, cwd=cwd,
                          capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def seed7(tmp_path_factory):
    """A finished 3-frame run with -seed 7, written by another process."""
    d = tmp_path_factory.mktemp("seed7")
    r = _series_subprocess(SMALL + ["-seed", "7"] + RUN, d)
    assert r.returncode == 0, r.stderr
    return d, _frames(d)


def _copy_run(source, target):
    (target / "s").mkdir()
    for p in (source / "s").iterdir():
        if p.name != series.record.LOCK_NAME:
            (target / "s" / p.name).write_bytes(p.read_bytes())


def test_record_holds_every_frame_checksum(seed7):
    d, frames = seed7
    records = list((d / "s").glob(series.record.RECORD_PREFIX + "*.json"))
    assert len(records) == 1
    data = json.loads(records[0].read_text())
    assert data["seed"] == 7 and data["kinds"] == ["float", "int", "noise"]
    assert data["flags"][-6:] == RUN and "-seed" in data["flags"]
    assert sorted(data["frames"], key=int) == ["0", "1", "2"]
    for entry in data["frames"].values():
        for name, digest in entry["files"].items():
            assert hashlib.sha256(frames[name]).hexdigest() == digest


def test_resume_of_another_run_is_refused(seed7, tmp_path):
    d, frames = seed7
    _copy_run(d, tmp_path)
    r = run_cli(SMALL + ["-seed", "8"] + RUN + ["--resume"], tmp_path, entry=series_main)
    assert r.code == 9
    assert r.err.count("\n") == 1
    assert "cannot resume" in r.err and "-seed 7, this run -seed 8" in r.err
    assert _frames(tmp_path) == frames               # nothing was touched
    r = run_cli(SMALL + ["-seed", "7", "-N", "3"] + RUN + ["--resume"], tmp_path,
                entry=series_main)
    assert r.code == 9 and "their flags differ: -N 2 -> 3" in r.err
    r = run_cli(SMALL + ["-seed", "7"] + RUN[:3] + ["0.3"] + RUN[4:] + ["--resume"], tmp_path,
                entry=series_main)
    assert r.code == 9 and "other per-frame values" in r.err
    assert _frames(tmp_path) == frames


def test_resume_rerenders_a_corrupted_frame_and_keeps_the_rest(seed7, tmp_path):
    d, frames = seed7
    _copy_run(d, tmp_path)
    damaged = tmp_path / "s" / "f_01.bin"
    data = bytearray(damaged.read_bytes())
    data[200] ^= 0x01                                # same size, one bit flipped
    damaged.write_bytes(bytes(data))
    kept = (tmp_path / "s" / "f_00.bin").stat().st_mtime_ns
    r = run_cli(SMALL + ["-seed", "7"] + RUN + ["--resume"], tmp_path, entry=series_main)
    assert r.code == 0, r.err
    assert "1 frame written, 2 skipped, 0 failed" in r.out
    assert _frames(tmp_path) == frames               # byte-identical to the first run
    assert (tmp_path / "s" / "f_00.bin").stat().st_mtime_ns == kept


def test_resume_without_seed_continues_with_the_recorded_one(seed7, tmp_path):
    d, frames = seed7
    _copy_run(d, tmp_path)
    (tmp_path / "s" / "f_02_noise.img").unlink()
    # a longer series: frames 0 and 1 are kept, 2 (incomplete) and 3 are rendered
    args = SMALL + ["--frames", "4"] + RUN[2:] + ["--resume"]
    r = run_cli(args, tmp_path, entry=series_main)
    assert r.code == 0, r.err
    assert "noise seed 7 (from the run record)" in r.out
    assert "2 frames written, 2 skipped, 0 failed" in r.out
    assert _frames(tmp_path) == frames


def test_files_without_a_record_are_rendered_again(seed7, tmp_path):
    d, frames = seed7
    _copy_run(d, tmp_path)
    for p in (tmp_path / "s").glob(series.record.RECORD_PREFIX + "*"):
        p.unlink()
    r = run_cli(SMALL + ["-seed", "7"] + RUN + ["--resume"], tmp_path, entry=series_main)
    assert r.code == 0 and "3 frames written, 0 skipped" in r.out
    assert _frames(tmp_path) == frames


_HOLDER = """
import sys, time
from nbnumba.series.record import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_second_run_on_the_directory_is_refused_until_the_first_ends(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path / "s")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        r = run_cli(SMALL + ["-seed", "7"] + RUN, tmp_path, entry=series_main)
        assert r.code == 9 and r.err.count("\n") == 1
        assert "another nbnumba-series run (process %d)" % holder.pid in r.err
        assert not list((tmp_path / "s").glob("f_*"))
    finally:
        holder.kill()                                # the kernel releases the lock
        holder.wait()
    r = run_cli(SMALL + ["-seed", "7"] + RUN, tmp_path, entry=series_main)
    assert r.code == 0, r.err


def test_frames_and_workers_are_bounded(tmp_path):
    r = run_cli(SMALL + ["--frames", str(MAX_FRAMES + 1)], tmp_path, entry=series_main)
    assert r.code == 9 and f"at most {MAX_FRAMES} per run" in r.err
    cores = series.available_cores()
    r = run_cli(SMALL + ["--workers", str(cores + 1)], tmp_path, entry=series_main)
    assert r.code == 9 and f"at most {cores} worker processes" in r.err
    assert r.err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_with_workers_prints_one_line(tmp_path):
    pytest.importorskip("distributed")
    # many frames, so that the series is still running when the interrupt comes
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbnumba_cli.series"] + SMALL
        + ["-detpixels", "64", "-seed", "1", "--frames", "400", "--frame-osc", "0.1",
           "--template", "s/f_{:03d}", "--workers", "2"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        for line in proc.stdout:                      # the cluster has started
            if line.startswith("executor:"):
                break
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)            # what a terminal's Ctrl-C does
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=60)
        seconds = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert err == "nbnumba-series: interrupted (rerun with --resume to complete)\n"
    assert seconds < 15
    assert _group_ends(proc.pid, within=10.0)         # no worker process is left


def _group_ends(pgid, within):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False
