"""nbnumba-series under hostile conditions (issue 22): names that collide, outputs checked
late, a console that cannot take the report, SIGTERM and kills during --resume, FIFOs
where frames or the lock should be, and hand-damaged run records.

Every case ends the way the project promises: one line on stderr, nothing rendered when
the command cannot finish, and no finished frame forgotten by the run record.
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

from conftest import mounted_tmpfs, run_cli
from nbnumba import series
from nbnumba_cli.series import main as series_main

SMALL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "2",
         "-detpixels", "32", "-oversample", "1", "-nopgm", "-noprogress", "-seed", "7"]
RUN = ["--frames", "3", "--frame-osc", "0.2", "--template", "s/f_{:02d}"]
EXTS = (".bin", ".img", "_noise.img")


def _series(args, cwd, timeout=300, **kwargs):
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "nbnumba_cli.series"] + args, cwd=cwd,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, **kwargs)


def _popen(args, cwd, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "nbnumba_cli.series"] + args, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def _record(directory):
    """The run record in ``directory``, with the frames its journal adds."""
    found = list(Path(directory).glob(series.record.RECORD_PREFIX + "*.json"))
    assert len(found) == 1, found
    return series.record.load(str(found[0]), journal=True)


def _recorded_frames_intact(directory):
    """The indices the record lists, after checking each listed file's SHA-256."""
    data = _record(directory)
    for entry in data["frames"].values():
        for name, digest in entry["files"].items():
            assert hashlib.sha256((Path(directory) / name).read_bytes()).hexdigest() == digest
    return {int(i) for i in data["frames"]}


def _frames_on_disk(directory, stem="f_"):
    """Indices of the frames with at least one file on disk."""
    return {int(p.name[len(stem):].split(".")[0].split("_")[0])
            for p in Path(directory).iterdir() if p.name.startswith(stem)}


def _complete_frames(directory):
    return {i for i in _frames_on_disk(directory)
            if all((Path(directory) / ("f_%04d" % i + e)).exists() for e in EXTS)}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 3-frame run with -seed 7 (file name -> bytes)."""
    d = tmp_path_factory.mktemp("finished")
    r = run_cli(SMALL + RUN, d, entry=series_main)
    assert r.code == 0, r.err
    return d, {p.name: p.read_bytes() for p in (d / "s").iterdir()}


def _copy(files, target):
    (target / "s").mkdir()
    for name, data in files.items():
        if name != series.record.LOCK_NAME:
            (target / "s" / name).write_bytes(data)


def _frame_files(directory):
    return sorted(p.name for p in Path(directory).rglob("*") if p.suffix in (".bin", ".img"))


# ---------------------------------------------------------------------------------------
# names


@pytest.mark.parametrize("template, frames, clash", [
    ("{!s:.1}", 12, "frame 1 and frame 10"),
    ("f_{:.0e}", 12, "frame 10 and frame 11"),
    ("f_{:c}", 2, "NUL character"),
    ("d{}/../f", 2, "frame 0 and frame 1"),          # one file once the path is resolved
])
def test_template_that_names_two_frames_alike_is_refused(tmp_path, template, frames, clash):
    r = run_cli(SMALL + ["--frames", str(frames), "--template", template], tmp_path,
                entry=series_main)
    assert r.code == 9 and r.err.count("\n") == 1, r.err
    assert clash in r.err and "internal error" not in r.err
    assert _frame_files(tmp_path) == []
    fs = series.stills(_base(), frames, seed=1)
    with pytest.raises(series.SeriesError):
        series.write_series(fs, str(tmp_path / template), progress=False)


def _base():
    from nbnumba import config_from_args
    return config_from_args(SMALL)[0]


@pytest.mark.parametrize("extra, clash", [
    (["--expt", "run/sim_00001.img"], "--expt run/sim_00001.img is also the file of frame 1"),
    (["--xds-inp", "run/sim_00000.bin"], "--xds-inp run/sim_00000.bin is also the file of "
                                         "frame 0"),
    (["--manifest", "s.expt", "--expt", "s.expt"], "--expt s.expt is also --manifest s.expt"),
    (["--manifest", "./run/../s.json", "-xds_inp", "s.json"], "is also --manifest"),
])
def test_output_that_is_a_frame_or_another_output_is_refused(tmp_path, extra, clash):
    args = SMALL + ["--frames", "3", "--template", "run/sim_{:05d}"] + extra
    r = run_cli(args, tmp_path, entry=series_main)
    assert r.code == 9 and r.err.count("\n") == 1, r.err
    assert clash in r.err
    assert _frame_files(tmp_path) == []


def test_output_hard_linked_to_a_frame_is_refused(finished, tmp_path):
    _, files = finished
    _copy(files, tmp_path)
    os.link(tmp_path / "s" / "f_02.img", tmp_path / "m.json")
    before = (tmp_path / "s" / "f_02.img").read_bytes()
    r = run_cli(SMALL + RUN + ["--manifest", "m.json"], tmp_path, entry=series_main)
    assert r.code == 9 and r.err.count("\n") == 1, r.err
    assert "--manifest m.json is the file of frame 2" in r.err
    assert (tmp_path / "s" / "f_02.img").read_bytes() == before


@pytest.mark.parametrize("extra, reason", [
    (["--manifest", "."], "is a directory"),
    (["--manifest", "/dev/full"], "No space left on device"),
    (["--expt", "run"], "--expt run is a directory (the frames' files go in it)"),
    (["--xds-inp", "d"], "cannot write d: it is a directory"),
])
def test_other_outputs_are_checked_before_any_frame_is_rendered(tmp_path, extra, reason):
    if extra[1] == "/dev/full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    (tmp_path / "d").mkdir()
    args = SMALL + ["--frames", "3", "--template", "run/sim_{:05d}"] + extra
    r = run_cli(args, tmp_path, entry=series_main)
    assert r.code == 9 and r.err.count("\n") == 1, r.err
    assert reason in r.err
    assert _frame_files(tmp_path) == []


# ---------------------------------------------------------------------------------------
# the console


def test_full_or_closed_stdout_costs_no_frame(tmp_path):
    with open("/dev/full", "w") if os.path.exists("/dev/full") else open(os.devnull, "w") \
            as full:
        r = _series(SMALL + RUN, tmp_path, stdout=full)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("\n") <= 1 and "internal error" not in r.stderr
    assert len(_frame_files(tmp_path)) == 9

    # a reader that goes away at once (| head -1 ...)
    proc = subprocess.Popen([sys.executable, "-m", "nbnumba_cli.series"] + SMALL + RUN[:-1]
                            + ["p/f_{:02d}"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0, err
    assert "internal error" not in err and err.count("\n") <= 1
    assert len(list((tmp_path / "p").glob("f_*"))) == 9


def test_name_the_console_cannot_encode_costs_no_frame(tmp_path):
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    r = _series(SMALL + RUN[:-1] + ["s/\u00e9t\u00e9_{:02d}"], tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "\\xe9t\\xe9_00.bin" in r.stdout and r.stderr == ""
    assert len(list((tmp_path / "s").glob("\u00e9t\u00e9_*"))) == 9


# ---------------------------------------------------------------------------------------
# signals and kills


LONG = ["--frames", "2000", "--frame-osc", "0.01", "--template", "s/f_{:04d}"]


def _wait_for(predicate, proc, within=120.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    return False


def _count(directory, pattern):
    return len(list(Path(directory).glob(pattern))) if Path(directory).is_dir() else 0


def test_sigterm_stops_like_ctrl_c_and_records_every_frame_on_disk(tmp_path):
    proc = _popen(SMALL + LONG, tmp_path)
    try:
        assert _wait_for(lambda: _count(tmp_path / "s", "f_*_noise.img") >= 3, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert err == "nbnumba-series: terminated (rerun with --resume to complete)\n"
    on_disk = _frames_on_disk(tmp_path / "s")
    assert len(on_disk) >= 3
    assert _recorded_frames_intact(tmp_path / "s") == on_disk
    assert not [p for p in (tmp_path / "s").iterdir() if "stage" in p.name]


def test_sigterm_to_the_whole_job_with_workers_is_one_line(tmp_path):
    """A batch system's SIGTERM reaches every process of the job: the workers ignore it,
    the command stops them, writes the record and prints one line."""
    pytest.importorskip("distributed")
    proc = _popen(SMALL + ["-detpixels", "64", "--workers", "2"] + LONG, tmp_path,
                  start_new_session=True)
    try:
        assert _wait_for(lambda: _count(tmp_path / "s", "f_*_noise.img") >= 2, proc)
        done_before = _complete_frames(tmp_path / "s")
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143, err
    assert err == "nbnumba-series: terminated (rerun with --resume to complete)\n"
    # every frame finished before the signal is recorded (a worker may still finish one
    # while the command stops: that one is rendered again by --resume)
    assert len(done_before) >= 1 and done_before <= _recorded_frames_intact(tmp_path / "s")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:               # no worker process is left
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("worker processes outlived the command")


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_resume_loses_no_finished_frame(tmp_path, kill):
    """Kill a --resume at its first record write (while it checks the earlier frames),
    after its first new frame and after some more: every frame recorded before stays
    recorded (with matching files), every frame finished since is recorded too (even
    after SIGKILL, through the journal), and the last resume renders only what is
    missing."""
    first = ["--frames", "20"] + LONG[2:]
    r = _series(SMALL + first, tmp_path)
    assert r.returncode == 0, r.stderr
    recorded = _recorded_frames_intact(tmp_path / "s")
    assert recorded == set(range(20))
    record = next((tmp_path / "s").glob(series.record.RECORD_PREFIX + "*.json"))

    def rewritten(inode):
        def check():
            try:
                return os.stat(record).st_ino != inode
            except FileNotFoundError:
                return False
        return check

    points = [rewritten(os.stat(record).st_ino),
              lambda: (tmp_path / "s" / "f_0020_noise.img").exists(),
              lambda: _count(tmp_path / "s", "f_*_noise.img") >= len(recorded) + 3]
    for point in points:
        proc = _popen(SMALL + ["--frames", "2000"] + LONG[2:] + ["--resume"], tmp_path)
        try:
            assert _wait_for(point, proc)
            proc.send_signal(kill)
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        now = _recorded_frames_intact(tmp_path / "s")
        assert recorded <= now, sorted(recorded - now)
        # SIGTERM: every frame on disk is recorded; SIGKILL: all but the one being renamed
        assert now <= _frames_on_disk(tmp_path / "s")
        missing = _frames_on_disk(tmp_path / "s") - now
        assert len(missing) <= (1 if kill == signal.SIGKILL else 0), sorted(missing)
        recorded = now
        points[0] = rewritten(os.stat(record).st_ino)
    r = _series(SMALL + ["--frames", str(max(recorded) + 2)] + LONG[2:] + ["--resume"],
                tmp_path)
    assert r.returncode == 0, r.stderr
    assert "%d skipped, 0 failed" % len(recorded) in r.stdout


def test_resume_over_a_fifo_frame_does_not_hang(finished, tmp_path):
    _, files = finished
    _copy(files, tmp_path)
    fifo = tmp_path / "s" / "f_01.bin"
    fifo.unlink()
    os.mkfifo(fifo)
    r = _series(SMALL + RUN + ["--resume"], tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "1 frame written, 2 skipped, 0 failed" in r.stdout
    assert fifo.read_bytes() == files["f_01.bin"]         # a regular file again


# ---------------------------------------------------------------------------------------
# the record and the lock


def test_damaged_record_entries_are_rendered_again(finished, tmp_path):
    _, files = finished
    _copy(files, tmp_path)
    path = next((tmp_path / "s").glob(series.record.RECORD_PREFIX + "*.json"))
    data = json.loads(path.read_text())
    data["frames"]["0"] = None
    data["frames"]["1"] = [1, 2]
    data["frames"]["x"] = {"key": "k", "files": {}}
    path.write_text(json.dumps(data))
    r = run_cli(SMALL + RUN + ["--resume"], tmp_path, entry=series_main)
    assert r.code == 0, r.err
    assert "2 frames written, 1 skipped, 0 failed" in r.out
    assert {p.name: p.read_bytes() for p in (tmp_path / "s").glob("f_*")} == {
        n: b for n, b in files.items() if n.startswith("f_")}


def _damage_frame_0(entry):
    def damage(data):
        data["frames"]["0"] = entry(data["frames"]["0"])
    return damage


@pytest.mark.parametrize("damage, written", [
    (lambda data: data.update(frames=None), 3),
    (lambda data: data.update(kinds=5), 3),            # not a record: nothing is trusted
    (lambda data: data.update(flags={"-seed": 7}), 3),
    (_damage_frame_0(lambda e: dict(e, files=None)), 1),
    (_damage_frame_0(lambda e: dict(e, key=1)), 1),
    (_damage_frame_0(lambda e: dict(e, files={k: None for k in e["files"]})), 1),
    (lambda data: "[" * 100000 + "]" * 100000, 3),     # deeper than the JSON reader goes
])
def test_damaged_record_is_one_line_or_none(finished, tmp_path, damage, written):
    _, files = finished
    _copy(files, tmp_path)
    path = next((tmp_path / "s").glob(series.record.RECORD_PREFIX + "*.json"))
    data = json.loads(path.read_text())
    text = damage(data)
    path.write_text(text if isinstance(text, str) else json.dumps(data))
    r = run_cli(SMALL + RUN + ["--resume"], tmp_path, entry=series_main)
    assert r.code == 0, r.err
    assert "%d frame%s written, %d skipped" % (written, "s" if written > 1 else "",
                                               3 - written) in r.out
    assert {p.name: p.read_bytes() for p in (tmp_path / "s").glob("f_*")} == {
        n: b for n, b in files.items() if n.startswith("f_")}


@pytest.mark.parametrize("make", ["fifo", "devnull"])
def test_odd_lock_file_is_one_line(tmp_path, make):
    (tmp_path / "s").mkdir()
    lock = tmp_path / "s" / series.record.LOCK_NAME
    if make == "fifo":
        os.mkfifo(lock)
    else:
        lock.symlink_to("/dev/null")
    r = run_cli(SMALL + RUN, tmp_path, entry=series_main)
    assert r.code == 9 and r.err.count("\n") == 1, r.err
    assert "cannot lock" in r.err and series.record.LOCK_NAME in r.err
    assert _frame_files(tmp_path) == []


def test_resume_after_nonoise_names_the_outputs(finished, tmp_path):
    _, files = finished
    _copy(files, tmp_path)
    r = run_cli(SMALL + ["-nonoise"] + RUN + ["--resume"], tmp_path, entry=series_main)
    assert r.code == 9 and r.err.count("\n") == 1
    assert "None" not in r.err
    assert "they have the outputs float/int/noise, this run writes float/int" in r.err


def _fresh_record(directory, template="f_{:02d}"):
    return series.record.RunRecord(str(directory / template), "0", 7, ["float"], "base")


def test_journal_keeps_frames_finished_between_record_writes(tmp_path):
    run = _fresh_record(tmp_path)
    run.write()
    (tmp_path / "f_00.bin").write_bytes(b"x")
    run.add(0, "k0", [(str(tmp_path / "f_00.bin"), "h0")])     # within FLUSH_INTERVAL
    on_disk = series.record.load(run.path)
    assert on_disk["frames"] == {}                                # not in the record yet
    journal = Path(run.journal)
    with open(journal, "ab") as handle:                         # another run's line, and
        handle.write(b'{"run": "other", "frame": "1", "entry": {"key": "k", "files": {}}}\n')
        handle.write(b'{"run": "%s", "frame": "2", "entr' % run.data["run"].encode())
    # a kill now: the next run sees frame 0 (and nothing of the other run or the cut line)
    assert series.record.load(run.path, journal=True)["frames"] == {
        "0": {"key": "k0", "files": {"f_00.bin": "h0"}}}
    assert _fresh_record(tmp_path).previous["frames"].keys() == {"0"}
    run.write(final=True)
    assert not journal.exists()
    assert series.record.load(run.path)["frames"].keys() == {"0"}


def test_stopped_run_adopts_only_frames_it_put_in_place(tmp_path):
    old = tmp_path / "f_00.bin"
    old.write_bytes(b"an earlier run")
    time.sleep(0.05)
    run = _fresh_record(tmp_path)
    run.write()
    since = run.written_at()
    time.sleep(0.05)
    new = tmp_path / "f_01.bin"
    new.write_bytes(b"this run")
    run.adopt(0, "k0", [str(old)], since)
    run.adopt(1, "k1", [str(new)], since)
    run.adopt(2, "k2", [str(tmp_path / "f_02.bin")], since)    # not there
    assert run.data["frames"] == {"1": {"key": "k1", "files": {
        "f_01.bin": hashlib.sha256(b"this run").hexdigest()}}}


# ---------------------------------------------------------------------------------------
# frame files that cannot be replaced, and the run's own names


def _chattr(flag, path):
    """``chattr FLAG PATH``; skips the test where the file system or user cannot."""
    try:
        r = subprocess.run(["chattr", flag, str(path)], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        r = None
    if r is None or r.returncode != 0:
        pytest.skip("chattr %s is not available here" % flag)


def _snapshot(directory):
    """{name: (bytes, mtime_ns)} of every visible frame file (directories: None)."""
    return {p.name: (None if p.is_dir() else (p.read_bytes(), p.stat().st_mtime_ns))
            for p in Path(directory).iterdir() if p.name.startswith("f_")}


@pytest.mark.parametrize("make", ["immutable", "append-only", "directory", "read-only"])
def test_a_frame_file_that_cannot_be_replaced_refuses_the_run(finished, tmp_path, make):
    """Frame 2's noise image cannot be replaced: the rerun (another seed) is refused in
    one line before rendering, and no file of any frame (frame 2's above all) changes."""
    _, files = finished
    _copy(files, tmp_path)
    target = tmp_path / "s" / "f_02_noise.img"
    if make == "directory":
        target.unlink()
        target.mkdir()
    elif make == "read-only":
        target.chmod(0o444)
    else:
        _chattr("+i" if make == "immutable" else "+a", target)
    before = _snapshot(tmp_path / "s")
    try:
        r = run_cli([a if a != "7" else "9" for a in SMALL] + RUN, tmp_path, entry=series_main)
    finally:
        if make in ("immutable", "append-only"):
            subprocess.run(["chattr", "-i", "-a", str(target)], timeout=30)
    assert r.code == 9 and r.err.count("\n") == 1, r.err
    assert "cannot write s/f_02_noise.img" in r.err and "frame 2" in r.err
    assert "nothing was rendered" in r.err
    assert _snapshot(tmp_path / "s") == before


def test_a_resumed_frame_that_cannot_be_replaced_fails_whole(finished, tmp_path):
    """A frame --resume must render again (a file missing) whose other file cannot be
    replaced fails alone, before any of its files is renamed: its earlier files stay."""
    _, files = finished
    _copy(files, tmp_path)
    (tmp_path / "s" / "f_01.bin").unlink()
    (tmp_path / "s" / "f_01.img").chmod(0o444)
    before = _snapshot(tmp_path / "s")
    r = run_cli(SMALL + RUN + ["--resume"], tmp_path, entry=series_main)
    assert r.code == 9, r.err
    last = r.err.splitlines()[-1]
    assert last.startswith("nbnumba-series: error: 1 of 3 frames failed; the first, frame 1")
    assert "permission denied (the file is read-only)" in last and "--resume" in last
    assert _snapshot(tmp_path / "s") == before
    assert not [p for p in (tmp_path / "s").iterdir() if "stage" in p.name]


@pytest.mark.parametrize("option, name", [
    ("--nexus", "s/.nbnumba-series-{record}.journal"),
    ("--manifest", "s/.nbnumba-stage-1-2-f_01.bin"),
    ("--expt", ".nbnumba-run.expt"),
])
def test_no_output_may_take_a_name_of_the_runs_own_files(tmp_path, option, name):
    record = Path(series.record.record_path("s/f_{:02d}")).stem[len(series.record.RECORD_PREFIX):]
    args = SMALL + RUN + [option, name.format(record=record)]
    if option == "--nexus":
        pytest.importorskip("h5py")
    r = run_cli(args, tmp_path, entry=series_main)
    assert r.code == 9 and r.err.count("\n") == 1, r.err
    assert "names starting with .nbnumba- are kept for the run's own files" in r.err
    assert _frame_files(tmp_path) == []


@pytest.mark.parametrize("option, name", [
    ("--template", "s/.nbnumba-stage-0123456789abcdef/f_{:02d}"),
    ("--manifest", ".nbnumba-stage-0123456789abcdef/m.json"),
])
def test_no_output_may_lie_in_a_staging_directory(tmp_path, option, name):
    """A later run in the directory above removes such a directory as a killed run's."""
    args = SMALL + RUN + [option, name]
    r = run_cli(args, tmp_path, entry=series_main)
    assert r.code == 9 and r.err.count("\n") == 1, r.err
    assert "is named like a run's staging directory" in r.err
    assert not list(tmp_path.rglob("f_*"))


def test_a_link_to_the_journal_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    journal = series.record.journal_path(series.record.record_path(str(tmp_path / "s/f_{:02d}")))
    os.symlink(journal, tmp_path / "m.json")
    r = run_cli(SMALL + RUN + ["--manifest", "m.json"], tmp_path, entry=series_main)
    assert r.code == 9 and r.err.count("\n") == 1, r.err
    assert ".nbnumba-" in r.err
    assert _frame_files(tmp_path) == []


@pytest.mark.parametrize("option", ["--manifest", "--nexus"])
def test_a_fifo_without_a_reader_is_refused_before_rendering(tmp_path, option):
    if option == "--nexus":
        pytest.importorskip("h5py")
    os.mkfifo(tmp_path / "out")
    r = run_cli(SMALL + RUN + [option, "out"], tmp_path, entry=series_main)
    assert r.code == 9 and r.err.count("\n") == 1, r.err
    assert "FIFO has no reader" in r.err
    assert _frame_files(tmp_path) == []


def test_a_fifo_with_a_reader_gets_the_manifest_at_the_end(tmp_path):
    import threading
    os.mkfifo(tmp_path / "out")
    # the reader is there before the run starts (opened without waiting for a writer);
    # it reads until the run has written and closed its end
    fd = os.open(tmp_path / "out", os.O_RDONLY | os.O_NONBLOCK)
    received = []
    done = threading.Event()

    def read():
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:          # a writer is there, nothing written yet
                chunk = None
            if chunk:
                received.append(chunk)
            elif chunk == b"" and received:
                return                       # every writer closed after writing
            elif done.is_set():
                return                       # the run is over (and wrote nothing)
            else:
                time.sleep(0.01)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        r = run_cli(SMALL + RUN + ["--manifest", "out"], tmp_path, entry=series_main)
    finally:
        done.set()
        reader.join(60)
        os.close(fd)
    assert r.code == 0, r.err
    manifest = json.loads(b"".join(received))
    assert [f["index"] for f in manifest["frames"]] == [0, 1, 2]


@pytest.mark.parametrize("option", ["--nexus", "--manifest", "--expt", "-xds_inp"])
def test_an_empty_output_name_is_refused(tmp_path, option):
    r = run_cli(SMALL + RUN + [option, ""], tmp_path, entry=series_main)
    assert r.code == 9 and r.err == "nbnumba-series: error: %s: an empty file name names no " \
                                    "file\n" % option
    assert _frame_files(tmp_path) == []


@pytest.fixture
def small_disk(tmp_path):
    """A 300 kB file system (tmpfs) at tmp_path/disk; skips where mounting is not allowed."""
    with mounted_tmpfs(tmp_path / "disk", "300k") as disk:
        yield disk


def test_a_disk_that_fills_up_ends_with_one_line(small_disk):
    """Every frame after the disk is full fails: one closing line counts them, gives the
    first one's error and says how to complete the series (no line per frame)."""
    args = [a if a != "32" else "64" for a in SMALL] + [
        "--frames", "30", "--frame-osc", "0.2", "--template", "s/f_{:02d}", "-progress"]
    r = run_cli(args, small_disk, entry=series_main)
    assert r.code == 9
    errors = [line for line in r.err.splitlines() if "error" in line]
    assert len(errors) == 1, r.err
    assert "frames failed; the first, frame" in errors[0]
    assert "No space left on device" in errors[0] and "rerun with --resume" in errors[0]
    assert sum("retrying" in line for line in r.err.splitlines()) <= 1
    assert list((small_disk / "s").glob("f_*_noise.img"))          # some frames fit
    assert not [p for p in (small_disk / "s").iterdir() if "stage" in p.name]
