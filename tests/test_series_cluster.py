"""nbnumba-series on a real dask cluster that fails (issue 26): a scheduler and workers
started here as `dask scheduler` / `dask worker` processes, then killed, given another
file system over the output directory (`unshare -m`), another nbnumba or none.

Whatever happens, the run ends in one line, never exits 0 with a frame missing, its run
record agrees with the files on disk, no file lands after it ends, and --resume completes
the series byte for byte as a serial run.
"""
import concurrent.futures
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

import nbnumba
from conftest import run_cli
from nbnumba import series
from nbnumba.io.nexus import compression as nexus_compression
from nbnumba.io.nexus import without_offset
from nbnumba.io.smv import read_smv
from nbnumba_cli.series import main as series_main

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

SMALL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "2",
         "-detpixels", "32", "-oversample", "1", "-nopgm", "-noprogress", "-seed", "7",
         "--frame-osc", "0.2"]
FRAMES = 24
EXTS = (".bin", ".img", "_noise.img")
PROG = "nbnumba-series"


# ------------------------------------------------------------------------- the cluster

class Cluster:
    """A `dask scheduler` and `dask worker` processes, each in its own session (so that
    a kill reaches what it started), all killed at the end."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(exist_ok=True)
        self.log = open(self.directory / "cluster.log", "w")
        self.procs = []
        self.address = None
        self.scheduler_proc = None

    def _start(self, command, env=None, cwd=None):
        proc = subprocess.Popen(command, cwd=cwd or self.directory, env=env,
                                stdout=self.log, stderr=self.log, start_new_session=True)
        self.procs.append(proc)
        return proc

    def scheduler(self):
        info = self.directory / "scheduler.json"
        self.scheduler_proc = self._start(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(info)])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                self.address = json.loads(info.read_text())["address"]
                return self.address
            except (OSError, ValueError, KeyError):
                assert self.scheduler_proc.poll() is None, "the scheduler did not start"
                time.sleep(0.1)
        pytest.fail("the scheduler did not start")

    def worker(self, python=sys.executable, nanny=True, prefix=(), env=None, cwd=None):
        return self._start(list(prefix) + [
            python, "-m", "distributed.cli.dask_worker", self.address, "--nthreads", "1",
            "--no-dashboard", "--nanny" if nanny else "--no-nanny"], env=env, cwd=cwd)

    def wait_for_workers(self, n):
        with distributed.Client(self.address, timeout=60) as client:
            client.wait_for_workers(n, timeout=180)

    def close(self):
        for proc in self.procs:
            with _suppress():
                os.killpg(proc.pid, signal.SIGKILL)
            with _suppress():
                proc.wait(timeout=30)
        self.log.close()


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], (OSError, subprocess.SubprocessError,
                                                          psutil.Error))


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "cluster")
    try:
        yield c
    finally:
        c.close()


def _env(**extra):
    env = dict(os.environ, **extra)
    env.pop(series.FAULT_ENV, None)
    return env


def _slow(tmp_path, stage="start", seconds=0.3, frames=range(FRAMES)):
    """The environment of a worker whose frames pause ``seconds`` at ``stage``."""
    return _env(**{series.FAULT_ENV: json.dumps({"frames": list(frames), "stage": stage,
                                                  "mode": "sleep", "seconds": seconds})})


def _series(args, cwd, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "nbnumba_cli.series"] + args, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_env(), **kwargs)


def _finish(proc, timeout=240):
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def _run_args(template="s/f_{:03d}", frames=FRAMES):
    return SMALL + ["--frames", str(frames), "--template", template]


# --------------------------------------------------------------------------- the disk

def _record(directory):
    found = list(Path(directory).glob(series.record.RECORD_PREFIX + "*.json"))
    assert len(found) == 1, found
    return series.record.load(str(found[0]), journal=True)


def _frame_files(directory):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.startswith("f_"))


def _record_is_the_disk(directory):
    """Every frame the record lists has its files with their checksums, and every frame
    file on disk belongs to a recorded frame; returns the recorded indices."""
    data = _record(directory)
    for entry in data["frames"].values():
        for name, digest in entry["files"].items():
            assert hashlib.sha256((Path(directory) / name).read_bytes()).hexdigest() == digest
    recorded = {int(i) for i in data["frames"]}
    on_disk = {int(n[2:5]) for n in _frame_files(directory)}
    assert on_disk == recorded, (sorted(on_disk - recorded), sorted(recorded - on_disk))
    return recorded


def _wait_for_frames(directory, n, proc, within=240):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if len(list(Path(directory).glob("f_*_noise.img"))) >= n:
            return
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.02)
    pytest.fail("no frames were written")


def _wait_for_a_frame_in_flight(directory, proc, within=240):
    """Until a worker has started a frame (its attempt marker is in the staging
    directory) that has not landed yet: with the workers pausing at a frame's start
    (:func:`_slow`), a kill that follows at once finds it running."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for marker in Path(directory).glob(series.tasks.STAGE_PREFIX + "*/attempt-*-1"):
            index = int(marker.name.split("-")[1])
            if not (Path(directory) / f"f_{index:03d}_noise.img").exists():
                return index
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.005)
    pytest.fail("no frame was seen in flight")


def _nothing_lands(directory, seconds):
    """No frame file appears or changes for ``seconds`` after the command ended."""
    before = {p.name: p.stat().st_mtime_ns for p in Path(directory).glob("f_*")}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = {p.name: p.stat().st_mtime_ns for p in Path(directory).glob("f_*")}
        assert now == before, sorted(set(now.items()) ^ set(before.items()))
        time.sleep(0.05)
    assert not list(Path(directory).glob(series.tasks.STAGE_PREFIX + "*"))


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The series rendered serially in-process (file name -> bytes)."""
    d = tmp_path_factory.mktemp("serial")
    r = run_cli(_run_args(), d, entry=series_main)
    assert r.code == 0, r.err
    return {p.name: p.read_bytes() for p in (d / "s").iterdir() if p.name.startswith("f_")}


def _same_as_serial(directory, serial):
    assert sorted(serial) == [n for n in _frame_files(directory) if not n.endswith(".h5")]
    for name, data in serial.items():
        assert (Path(directory) / name).read_bytes() == data, name


def _one_line(err):
    assert err.count("\n") == 1 and err.endswith("\n"), err
    return err


# ---------------------------------------------------------------- addresses at start

class _Silent:
    """A port that accepts connections and never says a word."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        return "tcp://127.0.0.1:%d" % self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()


class _Web:
    """A web server (as a dashboard is)."""

    def __enter__(self):
        class Quiet(BaseHTTPRequestHandler):
            def do_HEAD(self):
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Quiet)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return "tcp://127.0.0.1:%d" % self.server.server_address[1]

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class _Refused:
    def __enter__(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return "tcp://127.0.0.1:%d" % sock.getsockname()[1]

    def __exit__(self, *exc):
        pass


class _Unknown:
    def __enter__(self):
        return "tcp://no-such-scheduler.invalid:8786"

    def __exit__(self, *exc):
        pass


@pytest.mark.parametrize("place, cause", [
    (_Refused, "connection refused (nothing listens on port"),
    (_Silent, "it accepted a connection but said nothing within 3 s: not a Dask scheduler"),
    (_Web, "it is a web server, not a Dask scheduler (the dashboard?"),
    (_Unknown, "no-such-scheduler.invalid"),
])
def test_an_address_that_is_no_scheduler_is_one_line(tmp_path, place, cause):
    with place() as address:
        r = run_cli(_run_args() + ["--scheduler", address, "--connect-timeout", "3"],
                    tmp_path, entry=series_main)
    assert r.code == 9, r.err
    assert _one_line(r.err).startswith(f"{PROG}: error: cannot use the dask scheduler at "
                                       f"{address}: ")
    assert cause in r.err
    assert _frame_files(tmp_path / "s") == []


# ------------------------------------------------------------------ workers at start

@pytest.fixture(scope="module")
def python_without_nbnumba(tmp_path_factory):
    """A python that has dask, numba and NumPy (this environment's packages) but no
    nbnumba: a virtual environment whose path holds links to every package of ours but
    nbnumba's (a regular install's folder and dist-info, an editable install's finder)."""
    import site
    import venv
    home = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(home)
    python = home / "bin" / "python"
    inner = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    borrowed = home / "borrowed"
    borrowed.mkdir()
    for entry in Path(site.getsitepackages()[0]).iterdir():
        if "nbnumba" not in entry.name.lower() and entry.suffix != ".pth":
            (borrowed / entry.name).symlink_to(entry)
    (Path(inner) / "borrowed.pth").write_text(str(borrowed) + "\n")
    check = subprocess.run([str(python), "-c", "import distributed, numba; import nbnumba"],
                           capture_output=True, text=True, cwd=home)
    assert "No module named 'nbnumba'" in check.stderr, check.stderr
    return str(python)


@pytest.fixture(scope="module")
def another_nbnumba(tmp_path_factory):
    """A directory holding nbnumba with another version (for PYTHONPATH)."""
    d = tmp_path_factory.mktemp("other")
    shutil.copytree(Path(nbnumba.__file__).parent, d / "nbnumba",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (d / "nbnumba" / "_version.py").write_text('__version__ = "0.0.0+other"\n')
    return str(d)


@pytest.mark.parametrize("kind", ["missing", "another version"])
def test_a_worker_without_this_nbnumba_is_refused_by_name(
        cluster, tmp_path, kind, python_without_nbnumba, another_nbnumba):
    cluster.scheduler()
    if kind == "missing":
        cluster.worker(python=python_without_nbnumba, nanny=False, env=_env())
        said = "cannot import nbnumba (ModuleNotFoundError: No module named 'nbnumba')"
    else:
        cluster.worker(nanny=False, env=_env(PYTHONPATH=another_nbnumba))
        said = "has nbnumba 0.0.0+other, this command %s" % nbnumba.__version__
    cluster.wait_for_workers(1)
    code, err = _finish(_series(_run_args() + ["--scheduler", cluster.address], tmp_path))
    assert code == 9, err
    assert _one_line(err).startswith(f"{PROG}: error: worker tcp://127.0.0.1:"), err
    assert said in err
    assert _frame_files(tmp_path / "s") == []


def _unshare(mount):
    """A command prefix that runs a worker in its own mount namespace with ``mount`` (a
    shell command of $0, the output directory) done first; None when not allowed here."""
    prefix = ["unshare", "-m", "--propagation", "private"]
    if os.geteuid() != 0:
        prefix.insert(1, "-r")
    probe = Path(os.environ.get("TMPDIR", "/tmp"))
    try:
        ok = subprocess.run(prefix + ["sh", "-c", "mount -t tmpfs tmpfs \"$0\"", str(probe)],
                            capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    if not ok:
        return None
    return prefix + ["sh", "-c", mount + ' && exec "$@"']


@pytest.mark.parametrize("mount, said", [
    ('mount -t tmpfs tmpfs "$0"', "does not see {d} as the command does: the probe file "
     "the command wrote there is not there"),
    ('mount --bind "$0" "$0" && mount -o remount,bind,ro "$0"',
     "cannot write in {d}: Read-only file system"),
], ids=["private", "read-only"])
def test_a_worker_that_does_not_share_the_output_directory_is_refused(
        cluster, tmp_path, mount, said):
    prefix = _unshare(mount)
    if prefix is None:
        pytest.skip("unshare -m is not allowed here")
    out = tmp_path / "s"
    out.mkdir()
    cluster.scheduler()
    cluster.worker(nanny=False, env=_env())
    cluster.worker(nanny=False, env=_env(), prefix=prefix + [str(out)])
    cluster.wait_for_workers(2)
    code, err = _finish(_series(_run_args() + ["--scheduler", cluster.address], tmp_path))
    assert code == 9, err
    assert _one_line(err).startswith(f"{PROG}: error: worker tcp://127.0.0.1:"), err
    assert said.format(d=out) in err
    assert "every worker must see the output directories at the same path" in err
    assert _frame_files(out) == []


def test_a_worker_joining_later_is_probed_before_it_gets_frames(cluster, tmp_path):
    prefix = _unshare('mount -t tmpfs tmpfs "$0"')
    if prefix is None:
        pytest.skip("unshare -m is not allowed here")
    out = tmp_path / "s"
    out.mkdir()
    cluster.scheduler()
    cluster.worker(nanny=False, env=_slow(tmp_path, frames=range(400)))
    cluster.wait_for_workers(1)
    # long enough (0.3 s a frame) to be running when the second worker has started
    proc = _series(_run_args(frames=400) + ["--scheduler", cluster.address], tmp_path)
    _wait_for_frames(out, 2, proc)
    cluster.worker(nanny=False, env=_env(), prefix=prefix + [str(out)])
    code, err = _finish(proc)
    assert code == 9, err
    assert _one_line(err).startswith(f"{PROG}: error: worker tcp://127.0.0.1:"), err
    assert f"does not see {out} as the command does" in err
    _nothing_lands(out, 3.0)
    assert len(_record_is_the_disk(out)) < 400


# ------------------------------------------------------------------- faults mid-run

def test_scheduler_killed_is_one_line_and_resume_completes(cluster, tmp_path, serial):
    cluster.scheduler()
    cluster.worker(env=_slow(tmp_path))
    cluster.wait_for_workers(1)
    proc = _series(_run_args() + ["--scheduler", cluster.address, "--cluster-timeout", "8"],
                   tmp_path)
    _wait_for_frames(tmp_path / "s", 3, proc)
    os.killpg(cluster.scheduler_proc.pid, signal.SIGKILL)
    code, err = _finish(proc)
    assert code == 9, err
    assert _one_line(err) == (f"{PROG}: error: lost the dask scheduler at {cluster.address}; "
                              "rerun with --resume\n")
    _nothing_lands(tmp_path / "s", 3.0)
    assert len(_record_is_the_disk(tmp_path / "s")) >= 3
    r = run_cli(_run_args() + ["--resume"], tmp_path, entry=series_main)
    assert r.code == 0, r.err
    _same_as_serial(tmp_path / "s", serial)


def test_all_workers_killed_with_nannies_the_series_completes(cluster, tmp_path, serial):
    cluster.scheduler()
    workers = [cluster.worker(env=_slow(tmp_path, seconds=0.6)) for _ in range(2)]
    cluster.wait_for_workers(2)
    proc = _series(_run_args() + ["--scheduler", cluster.address, "--manifest", "m.json"],
                   tmp_path)
    _wait_for_frames(tmp_path / "s", 3, proc)
    # not when a frame lands: the two workers run in step, both may be between frames
    _wait_for_a_frame_in_flight(tmp_path / "s", proc)
    for w in workers:   # the processes that run the tasks; their nannies start new ones
        for p in psutil.Process(w.pid).children():
            p.kill()
    code, err = _finish(proc)
    assert code == 0, err
    _same_as_serial(tmp_path / "s", serial)
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert [f["index"] for f in manifest["frames"]] == list(range(FRAMES))
    # the frames the killed workers were rendering were started again
    assert max(f["attempt"] for f in manifest["frames"]) >= 2


def test_all_workers_killed_without_restart_is_one_line(cluster, tmp_path, serial):
    h5py = pytest.importorskip("h5py")
    if nexus_compression()[0] == "bitshuffle-lz4":
        import hdf5plugin  # noqa: F401  (reading them needs its filter)
    cluster.scheduler()
    workers = [cluster.worker(nanny=False, env=_slow(tmp_path)) for _ in range(2)]
    cluster.wait_for_workers(2)
    args = _run_args() + ["--scheduler", cluster.address, "--nexus", "s/master.h5"]
    proc = _series(args + ["--cluster-timeout", "5"], tmp_path)
    _wait_for_frames(tmp_path / "s", 3, proc)
    for w in workers:
        os.killpg(w.pid, signal.SIGKILL)
    code, err = _finish(proc)
    assert code == 9, err
    assert _one_line(err) == (f"{PROG}: error: no dask worker left at the scheduler "
                              f"{cluster.address} for 5 s; rerun with --resume once workers "
                              "are back\n")
    done = _record_is_the_disk(tmp_path / "s")
    assert len(done) < FRAMES and not (tmp_path / "s" / "master.h5").exists()
    cluster.worker(env=_env())   # workers are back
    cluster.wait_for_workers(1)
    code, err = _finish(_series(args + ["--resume"], tmp_path))
    assert code == 0, err
    _same_as_serial(tmp_path / "s", serial)
    _record_is_the_disk(tmp_path / "s")
    with h5py.File(tmp_path / "s" / "master.h5", "r") as h5:   # the master reads the frames
        data = h5["/entry/data/data"]
        assert data.shape[0] == FRAMES
        for i in range(FRAMES):
            smv = read_smv(str(tmp_path / "s" / ("f_%03d_noise.img" % i)))
            counts = without_offset(smv.data, 40)    # NXmx holds counts, no ADC offset
            assert np.array_equal(data[i].ravel(), counts) and data[i].sum() > 0


def test_sigterm_of_the_driver_lands_no_frame_afterwards(cluster, tmp_path):
    """Workers pause after staging each file: at the SIGTERM they are writing frames,
    which must not land once the command has ended."""
    cluster.scheduler()
    for _ in range(2):
        cluster.worker(nanny=False, env=_slow(tmp_path, stage="write", seconds=0.2))
    cluster.wait_for_workers(2)
    proc = _series(_run_args() + ["--scheduler", cluster.address], tmp_path)
    _wait_for_frames(tmp_path / "s", 2, proc)
    _wait_for_a_frame_in_flight(tmp_path / "s", proc)
    proc.send_signal(signal.SIGTERM)
    code, err = _finish(proc)
    assert code == 143, err
    assert err == f"{PROG}: terminated (rerun with --resume to complete)\n"
    _nothing_lands(tmp_path / "s", 10.0)
    done = _record_is_the_disk(tmp_path / "s")
    assert len(done) >= 2
    # the manifest of the resumed run lists every frame, those kept with their checksums
    code, err = _finish(_series(_run_args() + ["--scheduler", cluster.address, "--resume",
                                               "--manifest", "m.json"], tmp_path))
    assert code == 0, err
    frames = json.loads((tmp_path / "m.json").read_text())["frames"]
    assert [f["index"] for f in frames] == list(range(FRAMES))
    assert {f["index"] for f in frames if f["kept"]} == done
    for f in frames:
        assert [p for p, _ in f["checksums"]] == f["files"] and len(f["files"]) == 3
        for path, digest in f["checksums"]:
            assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
        assert f["seed"] == series.frame_seed(7, f["index"])


# ------------------------------------------------------------------ one record of all

class _Vanishing(concurrent.futures.Executor):
    """Runs frames in this process, then removes one file of frame 1 (as a worker that
    writes where this machine does not see): the files are read back before a frame is
    recorded."""

    def submit(self, fn, *args, **kwargs):
        future = concurrent.futures.Future()
        value = fn(*args, **kwargs)
        if value.index == 1:
            os.unlink(value.files[1])
        future.set_result(value)
        return future


def test_a_frame_not_on_disk_as_its_worker_wrote_it_stops_the_run(tmp_path):
    cfg, out = nbnumba.config_from_args(SMALL[:-2])   # without --frame-osc
    frames = series.rotation_series(cfg, 4, 0.2, seed=7, outputs=series.OutputSpec.from_cli(out))
    with pytest.raises(series.SeriesError) as caught:
        series.write_series(frames, str(tmp_path / "s" / "f_{:03d}"), executor=_Vanishing(),
                            progress=False)
    message = str(caught.value)
    assert message.startswith("frame 1 is not on disk as worker %s:%d wrote it: %s: No such "
                              "file or directory here; every worker must see the output "
                              "directories at the same path" % (
                                  socket.gethostname(), os.getpid(),
                                  tmp_path / "s" / "f_001.img"))
    assert 1 not in _record_is_the_disk(tmp_path / "s")   # nothing of frame 1 is left


def test_manifest_after_a_resume_lists_every_frame(tmp_path, monkeypatch):
    args = SMALL + ["--frames", "4", "--template", "s/f_{:03d}", "--manifest", "m.json"]
    marker = tmp_path / "markers"
    marker.mkdir()
    monkeypatch.setenv(series.FAULT_ENV, json.dumps({"frames": [2], "stage": "start",
                                                     "marker": str(marker)}))
    first = run_cli(args, tmp_path, entry=series_main)
    assert first.code == 9 and "the first, frame 2, after 2 attempts" in first.err
    before = {f["index"]: f for f in json.loads((tmp_path / "m.json").read_text())["frames"]}
    assert sorted(before) == [0, 1, 3]
    monkeypatch.delenv(series.FAULT_ENV)
    again = run_cli(args + ["--resume"], tmp_path, entry=series_main)
    assert again.code == 0 and "1 frame written, 3 skipped" in again.out, again.err
    frames = json.loads((tmp_path / "m.json").read_text())["frames"]
    assert [f["index"] for f in frames] == [0, 1, 2, 3]
    for f in frames:
        assert f["kept"] == (f["index"] != 2)
        assert [p for p, _ in f["checksums"]] == list(f["files"]) and len(f["files"]) == 3
        for path, digest in f["checksums"]:
            assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
        if f["kept"]:
            was = before[f["index"]]
            for name in ("seed", "phi", "osc", "max_I", "mean", "int_scale", "photons",
                         "overloads", "worker", "attempt", "checksums"):
                assert f[name] == (list(map(list, was[name])) if name == "checksums"
                                   else was[name]), name
    assert frames[2]["seed"] == series.frame_seed(7, 2)
