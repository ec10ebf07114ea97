"""Many frames (issue 5): nbnumba-series and nbnumba.series.

Every frame must be byte-identical whatever runs it (in-process, a dask LocalCluster of
worker processes, a ProcessPoolExecutor), equal to the single-image CLI run with the
matching -phi/-osc/-seed flags, and survive failures: a frame that fails is retried once,
a worker killed mid-frame is replaced, a frame that keeps failing is reported with its
index and leaves no file, and --resume completes the series.
"""
import io
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from nbnumba import config_from_args, series
from nbnumba.series import frame_seed
from nbnumba_cli.series import main as series_main

SEED = 7
FRAMES = 4
OSC = 0.5
PHI = 1.25
# small and quick, with mosaic domains (the noise continues their random table) and a PGM
BASE = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
        "-detpixels", "64", "-mosaic", "0.5", "-mosaic_dom", "3", "-phi", str(PHI),
        "-seed", str(SEED), "-pgmfile", "x.pgm", "-noprogress"]
SERIES = ["--frames", str(FRAMES), "--frame-osc", str(OSC)]
EXTS = (".bin", ".img", ".pgm", "_noise.img")


def _names(n=FRAMES, stem="f_{:03d}"):
    return [stem.format(i) + e for i in range(n) for e in EXTS]


def _same_files(a, b, names):
    for name in names:
        assert (Path(a) / name).read_bytes() == (Path(b) / name).read_bytes(), name


def _leftovers(directory):
    """Hidden files other than the run's lock and record (staging or temporary files)."""
    return [p.name for p in Path(directory).iterdir() if p.name.startswith(".nbnumba")
            and not _is_run_file(p.name)]


def _is_run_file(name):
    return name == series.record.LOCK_NAME or name.startswith(series.record.RECORD_PREFIX)


def _visible(directory):
    return {p.name for p in Path(directory).iterdir() if not _is_run_file(p.name)}


def _base_frameset():
    cfg, out = config_from_args(BASE)
    return series.rotation_series(cfg, FRAMES, OSC, seed=SEED,
                                  outputs=series.OutputSpec.from_cli(out))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The series rendered serially in-process by nbnumba-series."""
    d = tmp_path_factory.mktemp("serial")
    r = run_cli(BASE + SERIES + ["--template", "f_{:03d}", "--manifest", "m.json"], d,
                entry=series_main)
    assert r.code == 0, r.err
    assert _visible(d) == set(_names() + ["m.json"])
    return d


# ------------------------------------------------------------------------------- basics

def test_frame_seed_is_stable_and_a_valid_seed():
    # part of the file format of a series: a change would change every noise image
    assert [frame_seed(SEED, i) for i in range(4)] == [1309233228, 233161202, 73460664,
                                                       556125591]
    seeds = {frame_seed(123, i) for i in range(2000)}
    assert len(seeds) == 2000
    assert all(1 <= s <= series.SEED_LIMIT for s in seeds)


def test_core_does_not_import_dask():
    code = ("import sys, nbnumba, nbnumba.series, nbnumba_cli.series; "
            "sys.exit(any(m == 'dask' or m.startswith(('dask.', 'distributed')) "
            "for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_degrees_round_trip():
    from nbnumba.constants import RTD
    for d in (0.1, 0.3, 1.25, 33.3, 179.99, -0.7, 1e-3):
        assert series.degrees(d / RTD) / RTD == d / RTD


def test_bad_template_and_options(tmp_path):
    r = run_cli(BASE + ["--frames", "2", "--template", "frame"], tmp_path, entry=series_main)
    assert r.code == 9 and "same name to every frame" in r.err
    r = run_cli(BASE + ["--workers", "2", "--scheduler", "tcp://x:1"], tmp_path,
                entry=series_main)
    assert r.code == 9 and "not both" in r.err
    r = run_cli(BASE + ["--frames", "0"], tmp_path, entry=series_main)
    assert r.code == 9 and "--frames" in r.err
    with pytest.raises(series.SeriesError, match="no field"):
        series.FrameSet(config_from_args(BASE)[0], [{"crystal.phi": 1.0}])
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------- equal to single images

def test_frame_equals_single_image_cli(reference, tmp_path):
    i = 2
    seed = frame_seed(SEED, i)
    flags = ["-phi", "2.25", "-osc", "0.5", "-seed", str(seed)]   # 1.25 + 2 x 0.5
    assert _base_frameset().cli_flags(i) == flags
    r = run_cli(BASE + flags + ["-floatfile", "a.bin", "-intfile", "a.img", "-pgmfile",
                                "a.pgm", "-noisefile", "a_noise.img"], tmp_path)
    assert r.code == 0, r.err
    for ext in EXTS:
        assert (tmp_path / ("a" + ext)).read_bytes() == \
            (reference / ("f_002" + ext)).read_bytes(), ext
    manifest = json.loads((reference / "m.json").read_text())
    frame = manifest["frames"][i]
    assert frame["index"] == i and frame["seed"] == seed and frame["phi"] == 2.25


def test_orientation_series_equal_single_image_cli(tmp_path):
    base = ["-cell", "70", "80", "90", "90", "90", "90", "-default_F", "100", "-N", "3",
            "-detpixels", "32", "-nonoise", "-nopgm", "-noprogress"]
    cfg, out = config_from_args(base)
    outputs = series.OutputSpec.from_cli(out)
    sets = [series.misset_series(cfg, [(10, 20, 30), (0.1, -5.5, 2)], outputs=outputs),
            series.random_orientations(cfg, 2, 99, outputs=outputs)]
    for fs in sets:
        frames = series.render_series(fs)
        assert [f.info.index for f in frames] == [0, 1]
        for i, frame in enumerate(frames):
            r = run_cli(base + fs.cli_flags(i), tmp_path)
            assert r.code == 0, r.err
            assert frame.image.astype("<f4").tobytes() == \
                (tmp_path / "floatimage.bin").read_bytes()
            assert frame.noise_pixels is None
    # orientation matrices: frame i equals -mat with that matrix
    examples = Path(__file__).resolve().parents[1] / "examples"
    mat = np.loadtxt(examples / "A_cubic.mat", max_rows=3)
    fs = series.matrix_series(cfg, [mat, mat[[1, 2, 0]]], outputs=outputs)
    frames = series.render_series(fs)
    for i, m in enumerate([mat, mat[[1, 2, 0]]]):
        np.savetxt(tmp_path / "a.mat", m, fmt="%.17g")
        r = run_cli(base + ["-mat", "a.mat"], tmp_path)
        assert r.code == 0, r.err
        assert frames[i].image.astype("<f4").tobytes() == \
            (tmp_path / "floatimage.bin").read_bytes()


# ------------------------------------------------------------ independent of the runner

def test_local_cluster_series_is_byte_identical(reference, tmp_path):
    pytest.importorskip("distributed")
    r = run_cli(BASE + SERIES + ["--template", "out/f_{:03d}", "--workers", "2",
                                 "--manifest", "m.json"], tmp_path, entry=series_main)
    assert r.code == 0, r.err
    assert "LocalCluster: 2 worker processes" in r.out
    assert re.search(r"in [0-9.]+ s \([0-9.]+ frames/s rendering; cluster start [0-9.]+ s; "
                     r"(compile|kernel loading) [0-9.]+ s; frames [0-9.]+ s \(render [0-9.]+ s, "
                     r"write [0-9.]+ s summed over the workers\); stop [0-9.]+ s\)", r.out), r.out
    _same_files(reference, tmp_path / "out", _names())
    frames = json.loads((tmp_path / "m.json").read_text())["frames"]
    assert [f["index"] for f in frames] == list(range(FRAMES))
    cores = series.available_cores()
    assert all(f["threads"] * 2 <= max(cores, 2) for f in frames)   # workers x threads


def test_workers_load_their_kernels_first_and_a_finished_resume_starts_no_cluster(
        reference, tmp_path):
    pytest.importorskip("distributed")
    template = str(tmp_path / "f_{:03d}")
    log = io.StringIO()
    meter = series.SeriesProgress(FRAMES, stream=log, interval=0.0)
    with series.dask_executor(workers=2) as (executor, what):
        assert not executor.started          # nothing starts before a frame is due
        report = series.write_series(_base_frameset(), template, executor=executor,
                                     progress=meter)
        assert executor.started
    assert report.ok and report.cluster_started and report.workers_ready == 2
    assert report.start_seconds > 0 and report.compile_seconds > 0
    assert 0 < report.frame_seconds < report.seconds
    assert report.rate == pytest.approx(FRAMES / report.frame_seconds)
    lines = log.getvalue().splitlines()
    states = [i for i, line in enumerate(lines)
              if re.match(r"(compiling|loading the kernels) on 2 workers \.\.\. ", line)]
    first_frame = next(i for i, line in enumerate(lines) if line.startswith("frames "))
    assert lines[0].startswith("starting 2 dask workers ... ")
    assert states and max(states) < first_frame
    _same_files(reference, tmp_path, _names())

    # every frame is there: a resume renders nothing and starts no cluster
    with series.dask_executor(workers=2) as (executor, what):
        report = series.write_series(_base_frameset(), template, executor=executor,
                                     resume=True, progress=False)
        assert not executor.started
    assert report.skipped == list(range(FRAMES)) and report.frames == []
    assert not report.cluster_started and report.workers_ready == 0
    assert "nothing left to render" in report.summary()


def test_ctrl_c_while_the_cluster_starts_stops_at_once(tmp_path):
    pytest.importorskip("distributed")
    args = [a for a in BASE if a != "-noprogress"] + SERIES + ["--template", "f_{:03d}",
                                                               "--workers", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "nbnumba_cli.series"] + args, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        first = proc.stderr.readline()
        os.killpg(proc.pid, signal.SIGINT)            # what a terminal's Ctrl-C does
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=60)
        seconds = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert first.startswith("starting 2 dask workers ... "), first
    assert proc.returncode == 130, err
    assert err == "nbnumba-series: interrupted (rerun with --resume to complete)\n"
    assert seconds < 5      # about 0.1 s on an idle machine: the start is not waited for
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:                # no worker process is left
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("worker processes outlived the command")
    assert not list(tmp_path.glob("f_*"))


def test_frames_are_identical_with_1_and_2_threads(reference, tmp_path):
    for threads in (1, 2):
        report = series.write_series(_base_frameset(), str(tmp_path / f"t{threads}" / "f_{:03d}"),
                                     threads=threads, progress=False)
        assert report.ok and {f.threads for f in report.frames} <= {1, threads}
        _same_files(reference, tmp_path / f"t{threads}", _names())


def test_existing_scheduler_series_is_byte_identical(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        r = run_cli(BASE + SERIES + ["--template", "f_{:03d}", "--scheduler",
                                     cluster.scheduler_address], tmp_path, entry=series_main)
    assert r.code == 0, r.err
    assert "dask scheduler tcp://" in r.out
    _same_files(reference, tmp_path, _names())


def test_process_pool_series_is_byte_identical(reference, tmp_path, monkeypatch):
    monkeypatch.setattr(series.executors, "INLINE_LIMIT", 0)  # ship the inputs via a spool file
    fs = _base_frameset()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        report = series.write_series(fs, str(tmp_path / "f_{:03d}"), executor=pool,
                                     progress=False)
    assert report.ok and [f.index for f in report.frames] == list(range(FRAMES))
    assert len({f.worker for f in report.frames}) >= 1
    assert all(f.threads == max(1, series.available_cores() // 2) for f in report.frames)
    _same_files(reference, tmp_path, _names())
    assert _leftovers(tmp_path) == []      # the spool file is gone


# ---------------------------------------------------------------------------- failures

def _fault(monkeypatch, tmp_path, **spec):
    marker = tmp_path / "markers"
    marker.mkdir(exist_ok=True)
    monkeypatch.setenv(series.FAULT_ENV, json.dumps(dict(spec, marker=str(marker))))


def test_worker_killed_mid_frame_still_completes(reference, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    # the worker rendering frame 1 dies (os._exit) after staging its first file
    _fault(monkeypatch, tmp_path, frames=[1], stage="write", mode="exit", times=1)
    out = tmp_path / "out"
    with series.dask_executor(workers=2) as (executor, _):
        report = series.write_series(_base_frameset(), str(out / "f_{:03d}"),
                                     executor=executor, progress=False)
    assert report.ok, report.failed
    assert (tmp_path / "markers" / "fault-1-0").exists()      # the fault did fire
    # dask ran frame 1 again on the worker that replaced the dead one: two starts
    assert {f.index: f.attempt for f in report.frames} == {0: 1, 1: 2, 2: 1, 3: 1}
    _same_files(reference, out, _names())
    assert _leftovers(out) == []     # the dead worker's staged file was cleaned up


def test_dead_process_pool_worker_is_reported(reference, tmp_path, monkeypatch):
    # a process pool cannot replace a dead worker: the frames it loses are reported, none
    # leaves a file, and --resume (here in-process) completes the series
    _fault(monkeypatch, tmp_path, frames=[1], stage="write", mode="exit", times=1)
    fs = _base_frameset()
    template = str(tmp_path / "f_{:03d}")
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        report = series.write_series(fs, template, executor=pool, progress=False)
    assert not report.ok and 1 in [f.index for f in report.failed]
    assert all("BrokenProcessPool" in f.error for f in report.failed)
    written = {f.index for f in report.frames}
    assert written | {f.index for f in report.failed} == set(range(FRAMES))
    for i in range(FRAMES):
        present = [(tmp_path / ("f_{:03d}".format(i) + e)).exists() for e in EXTS]
        assert all(present) if i in written else not any(present)
    assert _leftovers(tmp_path) == []
    report = series.write_series(fs, template, resume=True, progress=False)
    assert report.ok and report.skipped == sorted(written)
    _same_files(reference, tmp_path, _names())


def test_failed_frame_is_retried_once(reference, tmp_path, monkeypatch):
    _fault(monkeypatch, tmp_path, frames=[2], stage="start", mode="raise", times=1)
    report = series.write_series(_base_frameset(), str(tmp_path / "f_{:03d}"),
                                 progress=False)
    assert report.ok
    assert {f.index: f.attempt for f in report.frames} == {0: 1, 1: 1, 2: 2, 3: 1}
    _same_files(reference, tmp_path, _names())


def test_permanent_failure_is_reported_and_resume_completes(reference, tmp_path, monkeypatch):
    # frame 1 fails on every attempt after writing part of its files
    _fault(monkeypatch, tmp_path, frames=[1], stage="write", mode="raise")
    args = BASE + SERIES + ["--template", "f_{:03d}"]
    r = run_cli(args, tmp_path, entry=series_main)
    assert r.code == 9
    assert r.err.splitlines()[-1] == (
        "nbnumba-series: error: 1 of 4 frames failed; the first, frame 1, after 2 attempts: "
        "RuntimeError: injected fault in frame 1 (write) (rerun with --resume to complete the "
        "series)")
    names = _visible(tmp_path) - {"markers"}
    assert names == set(_names()) - {"f_001" + e for e in EXTS}      # nothing of frame 1
    _same_files(reference, tmp_path, sorted(names))

    # a truncated file is not complete: --resume renders that frame again
    monkeypatch.delenv(series.FAULT_ENV)
    (tmp_path / "f_002.bin").write_bytes(b"\0" * 100)
    r = run_cli(args + ["--resume"], tmp_path, entry=series_main)
    assert r.code == 0, r.err
    assert "2 frames written, 2 skipped, 0 failed" in r.out
    _same_files(reference, tmp_path, _names())
    assert _leftovers(tmp_path) == []
