"""What happens at an output path: special files, links, permissions, partial failure,
signals during the write phase, long and odd names, a console that cannot take text."""
import contextlib
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from nbnumba.io import atomic

B = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "2",
     "-detpixels", "32", "-oversample", "1", "-seed", "1", "-noprogress"]
DEFAULT_NAMES = ("floatimage.bin", "intimage.img", "image.pgm", "noiseimage.img")


def _parts(directory):
    return sorted(p for p in os.listdir(directory) if p.endswith(".part"))


def _old_set(directory, names=DEFAULT_NAMES):
    for name in names:
        (directory / name).write_bytes(b"old " + name.encode())


def _is_old(directory, name):
    return (directory / name).read_bytes() == b"old " + name.encode()


def _command(args, cwd, env=None, **kwargs):
    """Start the ``nbnumba`` command in a subprocess (as an installed user would)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "nbnumba_cli.main"] + list(args), cwd=cwd,
                            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **kwargs)


# ---------------------------------------------------------------------------------------
# special files and links


def test_character_device_is_written_through_not_replaced(cli, tmp_path):
    os.mknod(tmp_path / "null", stat.S_IFCHR | 0o644, os.makedev(1, 3))
    run = cli(B + ["-floatfile", "null"])
    assert run.code == 0, run.err
    assert stat.S_ISCHR(os.lstat(tmp_path / "null").st_mode)
    assert _parts(tmp_path) == []


def test_symlink_target_is_written_and_the_link_kept(cli, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "real.bin").write_bytes(b"old")
    os.symlink("data/real.bin", tmp_path / "link.bin")
    os.symlink("data/new.bin", tmp_path / "dangling.bin")
    run = cli(B + ["-floatfile", "link.bin", "-intfile", "dangling.bin"])
    assert run.code == 0, run.err
    assert os.path.islink(tmp_path / "link.bin") and os.path.islink(tmp_path / "dangling.bin")
    assert (tmp_path / "data" / "real.bin").stat().st_size == 32 * 32 * 4
    assert (tmp_path / "data" / "new.bin").stat().st_size == 512 + 32 * 32 * 2


def test_fifo_with_reader_gets_the_image(tmp_path):
    os.mkfifo(tmp_path / "pipe.bin")
    reader = subprocess.Popen(["cat", "pipe.bin"], cwd=tmp_path, stdout=subprocess.PIPE)
    time.sleep(0.2)
    try:
        run = _command(B + ["-floatfile", "pipe.bin"], tmp_path)
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert len(reader.communicate(timeout=30)[0]) == 32 * 32 * 4
    finally:
        reader.kill()
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe.bin").st_mode)


def test_fifo_without_reader_is_an_error_before_rendering(cli, tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "pipe.bin")
    _old_set(tmp_path)
    import nbnumba.engine as engine
    monkeypatch.setattr(engine, "render", lambda *a, **k: pytest.fail("rendered"))
    run = cli(B + ["-floatfile", "pipe.bin"])
    assert run.code == 9
    assert run.err == "nbnumba: error: cannot write pipe.bin: FIFO has no reader " \
                      "(start the reader first)\n"
    assert all(_is_old(tmp_path, n) for n in DEFAULT_NAMES[1:])


def test_hard_linked_output_is_replaced_and_the_other_name_keeps_the_old_file(cli, tmp_path):
    # written in place, a full disk or a kill mid-write left a mix (now never: the path
    # given is replaced whole, like any regular file)
    old = b"old contents that are longer than nothing"
    (tmp_path / "a.bin").write_bytes(old)
    os.link(tmp_path / "a.bin", tmp_path / "b.bin")
    run = cli(B + ["-floatfile", "a.bin"])
    assert run.code == 0, run.err
    a, b = os.stat(tmp_path / "a.bin"), os.stat(tmp_path / "b.bin")
    assert a.st_ino != b.st_ino and a.st_nlink == b.st_nlink == 1
    assert a.st_size == 32 * 32 * 4
    assert (tmp_path / "b.bin").read_bytes() == old


def test_file_mode_is_kept(cli, tmp_path):
    _old_set(tmp_path)
    os.chmod(tmp_path / "floatimage.bin", 0o600)
    os.chmod(tmp_path / "intimage.img", 0o640)
    run = cli(B)
    assert run.code == 0, run.err
    assert stat.S_IMODE(os.stat(tmp_path / "floatimage.bin").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "intimage.img").st_mode) == 0o640
    assert not _is_old(tmp_path, "floatimage.bin")


@pytest.mark.parametrize("kind", ["directory", "socket"])
def test_directory_or_socket_is_refused(cli, tmp_path, kind):
    if kind == "directory":
        (tmp_path / "out").mkdir()
    else:
        import socket
        with contextlib.closing(socket.socket(socket.AF_UNIX)) as sock:
            sock.bind(str(tmp_path / "out"))
    run = cli(B + ["-floatfile", "out"])
    assert run.code == 9 and run.err.count("\n") == 1, run.err


# ---------------------------------------------------------------------------------------
# permissions and partial failure


def test_read_only_file_is_refused_even_for_root_and_nothing_is_replaced(cli, tmp_path):
    _old_set(tmp_path)
    os.chmod(tmp_path / "noiseimage.img", 0o444)
    run = cli(B)
    assert run.code == 9
    assert run.err == "nbnumba: error: cannot write noiseimage.img: permission denied " \
                      "(the file is read-only)\n"
    assert all(_is_old(tmp_path, n) for n in DEFAULT_NAMES)
    assert _parts(tmp_path) == []


def _chattr(path, flag):
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_immutable_output_fails_before_any_file_is_replaced(cli, tmp_path):
    # `chattr +i intimage.img` used to fail after floatimage.bin had been replaced
    _old_set(tmp_path)
    assert _chattr(tmp_path / "intimage.img", "+i"), "chattr +i is needed for this test"
    try:
        run = cli(B)
    finally:
        _chattr(tmp_path / "intimage.img", "-i")
    assert run.code == 9 and "cannot write intimage.img" in run.err
    assert all(_is_old(tmp_path, n) for n in DEFAULT_NAMES)
    assert _parts(tmp_path) == []


def test_target_made_unwritable_during_the_render_replaces_nothing(cli, tmp_path, monkeypatch):
    # the check is repeated for every file before the first rename
    _old_set(tmp_path)
    from nbnumba_cli import main
    original = main._write_outputs

    def then_lock(*args):
        original(*args)
        os.chmod(tmp_path / "noiseimage.img", 0o444)

    monkeypatch.setattr(main, "_write_outputs", then_lock)
    run = cli(B)
    assert run.code == 9 and "noiseimage.img" in run.err
    assert all(_is_old(tmp_path, n) for n in DEFAULT_NAMES)
    assert _parts(tmp_path) == []


@contextlib.contextmanager
def _as_user(uid):
    """Run the block with effective user ``uid`` (the tests run as root; see below)."""
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def shared_dir():
    """A world-writable sticky directory outside the (root-only) pytest temp tree."""
    path = tempfile.mkdtemp(prefix="nbnumba-sticky-", dir="/tmp")
    os.chmod(path, 0o1777)
    yield path
    subprocess.run(["rm", "-rf", path])


NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@needs_root
def test_sticky_directory_file_of_another_user_fails_before_any_rename(shared_dir):
    # as root the kernel would allow everything: the run switches to user "nobody"
    # (effective uid, in this process) as a user sharing /tmp would be
    from pathlib import Path

    from conftest import run_cli
    directory = Path(shared_dir)
    _old_set(directory)
    for name in DEFAULT_NAMES:
        os.chmod(directory / name, 0o666)   # writable by anyone, owned by root
    with _as_user(NOBODY):
        run = run_cli(B + ["-floatfile", "mine.bin"], directory)
    assert run.code == 9
    assert "owned by another user in a sticky directory" in run.err
    assert all(_is_old(directory, n) for n in DEFAULT_NAMES[1:])
    assert not (directory / "mine.bin").exists() and _parts(directory) == []


@needs_root
def test_file_the_user_cannot_write_is_refused(shared_dir):
    from pathlib import Path

    from conftest import run_cli
    directory = Path(shared_dir)
    (directory / "theirs.bin").write_bytes(b"old")   # root's, mode 0644
    with _as_user(NOBODY):
        run = run_cli(B + ["-floatfile", "theirs.bin", "-intfile", "mine.img"], directory)
    assert run.code == 9 and "cannot write theirs.bin: permission denied" in run.err
    assert (directory / "theirs.bin").read_bytes() == b"old"
    assert not (directory / "mine.img").exists()


# ---------------------------------------------------------------------------------------
# signals in the write phase


def _paused_run(tmp_path, point, seed):
    marker = tmp_path / "paused"
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    run = _command(B + ["-seed", str(seed)], tmp_path,
                   env={"NBNUMBA_TEST_PAUSE": f"{point}:2:{marker}"})
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return run


@pytest.mark.parametrize("signum,code,message", [
    (signal.SIGINT, 130, "nbnumba: interrupted\n"),
    (signal.SIGTERM, 143, "nbnumba: terminated\n"),
])
def test_signal_before_renaming_keeps_every_old_file(tmp_path, signum, code, message):
    _old_set(tmp_path)
    run = _paused_run(tmp_path, "staged", 7)
    run.send_signal(signum)
    out, err = run.communicate(timeout=60)
    assert (run.returncode, err.decode()) == (code, message)
    assert all(_is_old(tmp_path, n) for n in DEFAULT_NAMES)
    assert _parts(tmp_path) == []


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_renaming_completes_the_set_first(tmp_path, signum, code):
    _old_set(tmp_path)
    run = _paused_run(tmp_path, "renaming", 7)
    run.send_signal(signum)
    run.communicate(timeout=60)
    assert run.returncode == code
    assert not any(_is_old(tmp_path, n) for n in DEFAULT_NAMES)
    assert _parts(tmp_path) == []


@pytest.mark.parametrize("point", ["staged", "renaming"])
def test_sigkill_leaves_temporaries_that_the_next_run_removes(tmp_path, point):
    _old_set(tmp_path)
    (tmp_path / ".nbnumba-unrelated.part").write_bytes(b"not ours")
    run = _paused_run(tmp_path, point, 7)
    run.kill()
    run.communicate(timeout=60)
    left = [p for p in _parts(tmp_path) if p != ".nbnumba-unrelated.part"]
    assert left, "a killed run leaves its temporary files"
    rerun = _command(B + ["-seed", "7"], tmp_path)
    rerun.communicate(timeout=120)
    assert rerun.returncode == 0
    assert _parts(tmp_path) == [".nbnumba-unrelated.part"]
    assert not any(_is_old(tmp_path, n) for n in DEFAULT_NAMES)


def test_stale_temporaries_of_live_processes_and_other_files_are_kept(tmp_path):
    target = tmp_path / "float.bin"
    dead = subprocess.Popen(["true"])
    dead.wait()
    mine = atomic.temp_name(str(target), pid=os.getpid())
    live = atomic.temp_name(str(target), pid=os.getppid())
    stale = atomic.temp_name(str(target), pid=dead.pid)
    other = atomic.temp_name(str(tmp_path / "other.bin"), pid=dead.pid)
    for name in (mine, live, stale, other):
        (tmp_path / name).write_bytes(b"x")
    assert atomic.remove_stale_temporaries(str(target)) == [stale]
    assert sorted(_parts(tmp_path)) == sorted([mine, live, other])


def test_a_stop_as_a_temporary_is_created_leaves_none(tmp_path, monkeypatch):
    """A stop signal that lands as the temporary file is made is acted on once its name
    is known: the file is removed, nothing is written."""
    made = atomic._create_temp

    def made_then_interrupted(target):
        result = made(target)
        os.kill(os.getpid(), signal.SIGINT)   # arrives as the file is made
        return result

    monkeypatch.setattr(atomic, "_create_temp", made_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_atomic(str(tmp_path / "out.bin"), b"data")
    assert os.listdir(tmp_path) == []


def test_a_stop_while_a_temporary_is_announced_leaves_none(tmp_path):
    """The resident renderer's child tells its client of each temporary file (a socket
    write a stop signal can cut short): the file is removed all the same."""
    told = []

    def watcher(path, state, final):
        told.append(state)
        if state == "created":
            raise KeyboardInterrupt

    atomic.watch_temporaries(watcher)
    try:
        with pytest.raises(KeyboardInterrupt):
            atomic.write_atomic(str(tmp_path / "out.bin"), b"data")
    finally:
        atomic.watch_temporaries(None)
    assert os.listdir(tmp_path) == [] and told == ["created", "removed"]


# ---------------------------------------------------------------------------------------
# names


@pytest.mark.parametrize("length", [241, 250, 255])
def test_longest_valid_names_work(cli, tmp_path, length):
    name = "f" * (length - 4) + ".bin"
    assert len(atomic.temp_name(name)) <= 255
    run = cli(B + ["-floatfile", name])
    assert run.code == 0, run.err
    assert (tmp_path / name).stat().st_size == 32 * 32 * 4


def test_too_long_name_fails_before_rendering(cli, tmp_path, monkeypatch):
    import nbnumba.engine as engine
    monkeypatch.setattr(engine, "render", lambda *a, **k: pytest.fail("rendered"))
    run = cli(B + ["-floatfile", "f" * 256])
    assert run.code == 9 and run.err.endswith(": file name too long\n")


def test_temporary_names_fit_and_do_not_split_characters():
    for name in ("a" * 255, "\u00e9" * 127, os.fsdecode(b"\xff" * 255)):
        temp = atomic.temp_name(name, pid=4194304)
        assert len(os.fsencode(temp)) <= 255
        os.fsencode(temp).decode("utf-8", "surrogateescape")


def test_non_utf8_name_with_strict_utf8_stdout(tmp_path):
    name = os.fsdecode(b"n\xff.bin")
    run = _command(B + ["-floatfile", name], tmp_path,
                   env={"PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"})
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert b"writing n\\udcff.bin as 1024 4-byte floats" in out
    assert os.path.getsize(tmp_path / name) == 32 * 32 * 4


# ---------------------------------------------------------------------------------------
# a console that cannot take the text


def test_stdout_full_still_writes_the_images(tmp_path):
    with open("/dev/full", "w") as full:
        run = subprocess.run([sys.executable, "-m", "nbnumba_cli.main"] + B, cwd=tmp_path,
                             stdout=full, stderr=subprocess.PIPE, timeout=120)
    assert run.returncode == 0
    assert run.stderr.decode() == ("nbnumba: warning: console output was lost (No space left "
                                   "on device); the output files were written\n")
    assert sorted(p for p in os.listdir(tmp_path)) == sorted(DEFAULT_NAMES)


def test_closed_stdout_pipe_still_writes_the_images(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        run = subprocess.run([sys.executable, "-m", "nbnumba_cli.main"] + B, cwd=tmp_path,
                             stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    assert run.returncode == 0
    assert "console output was lost (Broken pipe)" in run.stderr.decode()
    assert sorted(os.listdir(tmp_path)) == sorted(DEFAULT_NAMES)


def test_console_stream_notes_the_first_failure():
    from nbnumba_cli.console import ConsoleStream, failure_note

    class Full:
        encoding = "ascii"
        calls = 0

        def write(self, text):
            Full.calls += 1
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

    stream = ConsoleStream(Full())
    stream.write("a")
    stream.write("b")
    assert Full.calls == 1
    assert "No space left on device" in failure_note("nbnumba", stream)


def test_check_writable_does_not_open_a_fifo(tmp_path):
    # opening and closing a FIFO would end its reader's input; the standalone check
    # (used by the series runner) only looks at it
    os.mkfifo(tmp_path / "pipe.bin")
    atomic.check_writable(str(tmp_path / "pipe.bin"))
    with pytest.raises(atomic.OutputError, match="it is a directory"):
        atomic.check_writable(str(tmp_path))


def test_library_writer_keeps_links_and_mode(tmp_path):
    # nbnumba.output's writers go through write_atomic: the same rules as the command
    (tmp_path / "a.bin").write_bytes(b"old")
    os.chmod(tmp_path / "a.bin", 0o600)
    os.link(tmp_path / "a.bin", tmp_path / "b.bin")
    os.symlink("c.bin", tmp_path / "link.bin")
    atomic.write_atomic(str(tmp_path / "a.bin"), [b"new", b" data"])
    atomic.write_atomic(str(tmp_path / "link.bin"), b"via link")
    assert (tmp_path / "a.bin").read_bytes() == b"new data"
    assert (tmp_path / "b.bin").read_bytes() == b"old"
    assert stat.S_IMODE(os.stat(tmp_path / "a.bin").st_mode) == 0o600
    assert os.path.islink(tmp_path / "link.bin")
    assert (tmp_path / "c.bin").read_bytes() == b"via link"
    assert _parts(tmp_path) == []
