"""Old file or new file, never a mix; two outputs that are one file; append-only targets;
one-line errors for the start-up environment, a closed console and odd paths."""
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

from conftest import mounted_tmpfs
from nbnumba.io import atomic

B = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "2",
     "-detpixels", "32", "-oversample", "1", "-seed", "1", "-noprogress"]
NAMES = ("floatimage.bin", "intimage.img", "image.pgm", "noiseimage.img")
ENTRY = "from nbnumba_cli.entry import nbnumba; nbnumba()"


def _old_set(directory, names=NAMES):
    for name in names:
        (directory / name).write_bytes(b"old " + name.encode())


def _all_old(directory, names=NAMES):
    return all((directory / n).read_bytes() == b"old " + n.encode() for n in names)


def _parts(directory):
    return sorted(p for p in os.listdir(directory) if p.endswith(".part"))


def _no_render(monkeypatch):
    import nbnumba.engine as engine
    monkeypatch.setattr(engine, "render", lambda *a, **k: pytest.fail("rendered"))


def _one_error_line(run, *words):
    assert run.code == 9, run.out + run.err
    assert run.err.count("\n") == 1 and run.err.startswith("nbnumba: error: "), run.err
    for word in words:
        assert word in run.err, run.err


def _command(code_or_args, cwd, env=None, entry=False, **kwargs):
    """Run the command in a subprocess: the console script's entry (``entry``) or
    ``python -m nbnumba_cli.main``."""
    argv = ([sys.executable, "-c", ENTRY] if entry else
            [sys.executable, "-m", "nbnumba_cli.main"]) + list(code_or_args)
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=300, **kwargs)


# ---------------------------------------------------------------------------------------
# a full disk and SIGKILL: the old file or the new one


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1100 KiB tmpfs (root only; skipped where mounting is not permitted)."""
    with mounted_tmpfs(tmp_path / "full", "1100k") as mount:
        yield mount


def test_full_disk_leaves_a_hard_linked_output_whole(small_tmpfs):
    full = small_tmpfs
    (full / "f.bin").write_bytes(b"old\n")
    os.link(full / "f.bin", full / "l")
    (full / "fill").write_bytes(b"\0" * 600000)
    with pytest.raises(atomic.OutputError, match="No space left on device"):
        atomic.write_atomic(str(full / "f.bin"), [b"\1" * 524288, b"\2" * 524288])
    assert (full / "f.bin").read_bytes() == b"old\n"
    assert (full / "l").read_bytes() == b"old\n"
    assert _parts(full) == []


def test_full_disk_during_a_run_replaces_nothing(cli, small_tmpfs):
    full = small_tmpfs
    (full / "f.bin").write_bytes(b"old\n")
    os.link(full / "f.bin", full / "l")
    (full / "fill").write_bytes(b"\0" * 600000)
    run = cli(["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "2",
               "-detpixels", "512", "-oversample", "1", "-noprogress", "-nopgm",
               "-intfile", "/dev/null", "-floatfile", "full/f.bin"], cwd=full.parent)
    _one_error_line(run, "full/f.bin", "No space left on device")
    assert (full / "f.bin").read_bytes() == b"old\n" and (full / "l").read_bytes() == b"old\n"
    assert _parts(full) == []


_SLOW_WRITER = """
import os, sys, time
from nbnumba.io import atomic
real_write = os.write
def slow_write(fd, data):
    time.sleep(0.02)        # a slow disk: the kill lands inside the write
    return real_write(fd, data[:1 << 20])
atomic.os.write = slow_write
print("go", flush=True)
atomic.write_atomic(sys.argv[1], [b"n" * (1 << 20)] * 16)
print("done", flush=True)
"""


def test_sigkill_swept_across_the_write_leaves_old_or_new(tmp_path):
    size = 16 << 20
    target = tmp_path / "image.bin"
    seen = set()
    for step in range(18):
        target.write_bytes(b"o" * size)
        os.link(target, tmp_path / "other.bin")
        child = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(target)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "go\n"
        if step == 17:  # the last kill point: after the write
            assert child.stdout.readline() == "done\n"
        time.sleep(step * 0.025)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)   # waits, and closes the pipe
        data = target.read_bytes()
        assert data in (b"o" * size, b"n" * size), "kill point %d: a mixed file" % step
        assert (tmp_path / "other.bin").read_bytes() == b"o" * size
        seen.add(data[:1])
        os.unlink(tmp_path / "other.bin")
        atomic.remove_stale_temporaries(str(target))
        assert _parts(tmp_path) == []
    assert seen == {b"o", b"n"}, "the sweep must cover both sides of the rename"


# ---------------------------------------------------------------------------------------
# two outputs that are one file


@pytest.mark.parametrize("flags,words", [
    (["-floatfile", "x", "-intfile", "x"], ["-intfile and -floatfile are the same file"]),
    (["-floatfile", "x", "-intfile", "./x"], ["-intfile and -floatfile (x)"]),
    (["-floatfile", "x", "-pgmfile", "sub/../x"], ["-pgmfile and -floatfile"]),
    (["-floatfile", "x", "-noisefile", "link"], ["-noisefile and -floatfile"]),
    (["-floatfile", "x", "-intfile", "hard"], ["-intfile and -floatfile"]),
    (["-intfile", "sim_00001.img", "-expt", "sim_00001.img"], ["-expt and -intfile"]),
    (["-intfile", "sim_00001.img", "-xds_inp", "./sim_00001.img", "-osc", "1"],
     ["-xds_inp and -intfile"]),
])
def test_outputs_that_are_one_file_are_refused_before_rendering(cli, tmp_path, monkeypatch,
                                                                flags, words):
    _old_set(tmp_path, NAMES + ("x", "sim_00001.img"))
    (tmp_path / "sub").mkdir()
    os.symlink("x", tmp_path / "link")
    os.link(tmp_path / "x", tmp_path / "hard")
    _no_render(monkeypatch)
    run = cli(B + flags)
    _one_error_line(run, *words)
    assert _all_old(tmp_path, NAMES + ("x", "sim_00001.img"))
    assert _parts(tmp_path) == []


def test_an_output_named_like_the_dump_file_is_refused_with_hkl(cli, tmp_path, golden_dir):
    shutil.copy(golden_dir / "inputs" / "P1_small.hkl", tmp_path)
    run = cli(["-hkl", "P1_small.hkl", "-cell", "70", "80", "90", "-N", "1", "-detpixels", "8",
               "-floatfile", "Fdump.bin"])
    _one_error_line(run, "Fdump.bin", "the same file")
    assert not (tmp_path / "Fdump.bin").exists()


def test_dev_null_may_take_several_outputs(cli):
    run = cli(B + ["-floatfile", "/dev/null", "-intfile", "/dev/null", "-pgmfile",
                   "/dev/null", "-noisefile", "/dev/null"])
    assert run.code == 0, run.err


def test_fileset_refuses_one_file_under_two_names(tmp_path):
    (tmp_path / "a").write_bytes(b"old")
    os.symlink("a", tmp_path / "b")
    with atomic.FileSet() as files:
        files.reserve(str(tmp_path / "a"))
        with pytest.raises(atomic.OutputError, match="same file as"):
            files.reserve(str(tmp_path / "b"))
        files.stage(str(tmp_path / "a"), b"new")
        with pytest.raises(atomic.OutputError, match="written twice"):
            files.stage(str(tmp_path / "a"), b"newer")
        files.discard()
    assert (tmp_path / "a").read_bytes() == b"old"
    assert _parts(tmp_path) == []


# ---------------------------------------------------------------------------------------
# append-only targets


def _chattr(path, flag):
    try:
        return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("where", ["file", "directory"])
def test_append_only_target_is_refused_before_anything_is_replaced(cli, tmp_path, where,
                                                                   monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    _old_set(tmp_path)
    (out / "i.img").write_bytes(b"old i.img")
    locked = out / "i.img" if where == "file" else out
    if not _chattr(locked, "+a"):
        pytest.skip("chattr +a does not work on this file system")
    try:
        _no_render(monkeypatch)
        run = cli(B + ["-intfile", "out/i.img"])
    finally:
        _chattr(locked, "-a")
    _one_error_line(run, "out/i.img", "append-only")
    assert _all_old(tmp_path) and (out / "i.img").read_bytes() == b"old i.img"
    assert _parts(tmp_path) == [] and _parts(out) == []


def test_append_only_file_made_so_during_the_render_replaces_nothing(cli, tmp_path,
                                                                      monkeypatch):
    _old_set(tmp_path)
    from nbnumba_cli import main
    original = main._write_outputs
    locked = []

    def then_lock(result, out, files, say):
        original(result, out, files, say)
        if _chattr(tmp_path / "noiseimage.img", "+a"):
            locked.append(True)

    monkeypatch.setattr(main, "_write_outputs", then_lock)
    try:
        run = cli(B)
    finally:
        _chattr(tmp_path / "noiseimage.img", "-a")
    if not locked:
        pytest.skip("chattr +a does not work on this file system")
    _one_error_line(run, "noiseimage.img", "append-only")
    assert _all_old(tmp_path) and _parts(tmp_path) == []


# ---------------------------------------------------------------------------------------
# paths: one true line


def test_trailing_slash_is_not_a_file_name(cli, tmp_path, monkeypatch):
    _no_render(monkeypatch)
    run = cli(B + ["-floatfile", "newdir/"])
    _one_error_line(run, "newdir/", "not a file name")
    assert not (tmp_path / "newdir").exists()


@pytest.mark.parametrize("flag", ["-intfile", "-floatfile", "-nexus", "-expt", "-xds_inp"])
def test_an_empty_file_name_is_refused_not_left_out(cli, tmp_path, monkeypatch, flag):
    _no_render(monkeypatch)
    run = cli(B + [flag, ""])
    _one_error_line(run, "%s: an empty file name names no file" % flag)
    assert list(tmp_path.iterdir()) == []


def test_path_longer_than_path_max_says_so(cli, tmp_path, monkeypatch):
    _no_render(monkeypatch)
    run = cli(B + ["-floatfile", "/".join(["d" * 200] * 25) + "/x.bin"])
    _one_error_line(run, "File name too long")
    assert "does not exist" not in run.err


def test_driverless_character_device_is_not_called_a_fifo(cli, tmp_path, monkeypatch):
    os.mknod(tmp_path / "nodev", stat.S_IFCHR | 0o644, os.makedev(0, 0))
    try:
        os.close(os.open(tmp_path / "nodev", os.O_WRONLY))
        pytest.skip("this kernel has a driver for device 0:0")
    except OSError:
        pass
    _no_render(monkeypatch)
    run = cli(B + ["-floatfile", "nodev"])
    _one_error_line(run, "nodev", "device is not available")
    assert "FIFO" not in run.err


def test_dev_tty_without_a_terminal_is_not_called_a_fifo(tmp_path):
    done = _command(B + ["-floatfile", "/dev/tty"], tmp_path, start_new_session=True,
                    stdin=subprocess.DEVNULL)
    assert done.returncode == 9, done.stderr
    assert "device is not available" in done.stderr and "FIFO" not in done.stderr


def test_deleted_current_directory_is_one_line(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    done = subprocess.run(["sh", "-c", 'rmdir "$PWD" && exec "$0" -m nbnumba_cli.main "$@"',
                           sys.executable] + B, cwd=gone, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 9
    assert done.stderr == ("nbnumba: error: cannot write floatimage.bin: the current "
                           "directory no longer exists\n")


@pytest.mark.parametrize("flag,name", [("-expt", "\udcff.expt"), ("-xds_inp", "\udcfe.INP")])
def test_non_utf8_name_in_an_experiment_file_is_one_line(cli, tmp_path, monkeypatch, flag,
                                                         name):
    _no_render(monkeypatch)
    run = cli(B + ["-intfile", "\udcfe\udcff_00001.img", flag, name, "-osc", "1"])
    _one_error_line(run, flag, "not ")
    assert os.listdir(tmp_path) == []


def test_overflowing_oversampling_count_is_one_line(cli, monkeypatch):
    _no_render(monkeypatch)
    run = cli(B[:-5] + ["-distance", "1e-310", "-noprogress"])
    _one_error_line(run, "automatic oversampling", "-oversample")


# ---------------------------------------------------------------------------------------
# a closed console


def test_closed_stdout_still_writes_the_images(tmp_path):
    done = _command(B, tmp_path, pass_fds=(), preexec_fn=lambda: os.close(1))
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr
    assert (tmp_path / "floatimage.bin").stat().st_size == 32 * 32 * 4


def test_closed_stdout_and_stderr_through_the_console_script(tmp_path):
    def close_both():
        os.close(1)
        os.close(2)
    done = subprocess.run([sys.executable, "-c", ENTRY] + B, cwd=tmp_path, timeout=300,
                          preexec_fn=close_both)
    assert done.returncode == 0
    for name in NAMES:
        assert (tmp_path / name).stat().st_size > 0
    # nothing meant for the console reached an image opened on descriptor 1 or 2
    assert (tmp_path / "floatimage.bin").stat().st_size == 32 * 32 * 4


# ---------------------------------------------------------------------------------------
# numba's start-up: one line, not a traceback


@pytest.mark.parametrize("env,words", [
    ({"NUMBA_THREADING_LAYER": "bogus"}, ["NUMBA_THREADING_LAYER=bogus", "not a numba"]),
    ({"NUMBA_NUM_THREADS": ""}, ["NUMBA_NUM_THREADS="]),
    ({"NUMBA_OPT": "abc"}, ["NUMBA_OPT", "abc"]),
])
def test_bad_numba_environment_is_one_line(tmp_path, env, words):
    done = _command(["-detpixels", "8"], tmp_path, env=env, entry=True)
    assert done.returncode == 9, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr
    assert os.listdir(tmp_path) == []


def test_missing_tbb_threading_layer_is_one_line(tmp_path):
    from nbnumba_cli.guard import _layer_loads
    if _layer_loads("tbb"):
        pytest.skip("Intel TBB is installed here")
    done = _command(["-detpixels", "8"], tmp_path, env={"NUMBA_THREADING_LAYER": "tbb"},
                    entry=True)
    assert done.returncode == 9
    assert done.stderr.count("\n") == 1 and "TBB" in done.stderr, done.stderr


@pytest.mark.parametrize("text", ["a: [1, 2\n", "just text\n", "opt: abc\n"])
def test_bad_numba_config_file_is_one_line(tmp_path, text):
    (tmp_path / ".numba_config.yaml").write_text(text)
    done = _command(["-detpixels", "8"], tmp_path, entry=True)
    assert done.returncode == 9, done.stderr
    assert done.stderr.count("\n") == 1 and ".numba_config.yaml" in done.stderr, done.stderr


def test_ctrl_c_during_the_imports_is_one_line(tmp_path):
    script = ("import sys; print('up', file=sys.stderr, flush=True); " + ENTRY)
    for delay in (0.05, 0.15, 0.3):   # numba's import alone takes longer than 0.3 s
        child = subprocess.Popen([sys.executable, "-c", script] + B, cwd=tmp_path,
                                 stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        assert child.stderr.readline() == "up\n"
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
        assert child.returncode == 130, (delay, err)
        assert err == "nbnumba: interrupted\n", (delay, err)
