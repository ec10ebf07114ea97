"""Inputs that cannot block a run or exhaust the machine: only regular files are read,
reads are bounded by what the format can hold, and big allocations are checked first."""
import os
import threading

import pytest

from nbnumba import memory
from nbnumba.io import errors, hkl, matrix, sourcefile

B = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "2",
     "-detpixels", "32", "-oversample", "1", "-seed", "1", "-noprogress"]

INPUT_FLAGS = ["-hkl", "-mat", "-sourcefile", "-stol", "-img", "-mask"]


def _fail_on_render(monkeypatch):
    import nbnumba.engine as engine
    monkeypatch.setattr(engine, "render", lambda *a, **k: pytest.fail("rendered"))


@pytest.mark.parametrize("flag", INPUT_FLAGS)
def test_endless_device_input_is_refused(cli, monkeypatch, flag):
    _fail_on_render(monkeypatch)
    run = cli(B + [flag, "/dev/zero"])
    assert run.code == 9
    assert run.err.endswith("/dev/zero: it is a device, not a regular file\n"), run.err
    assert run.err.count("\n") == 1


def _with_watchdog(tmp_path, fifo):
    """Open ``fifo`` for writing after 5 s, so that a test that blocks on it ends."""
    def unblock():
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
    timer = threading.Timer(5.0, unblock)
    timer.start()
    return timer


@pytest.mark.parametrize("flag", INPUT_FLAGS + ["Fdump.bin"])
def test_fifo_input_is_refused_without_waiting(cli, tmp_path, monkeypatch, flag):
    _fail_on_render(monkeypatch)
    name = "Fdump.bin" if flag == "Fdump.bin" else "input"
    os.mkfifo(tmp_path / name)
    timer = _with_watchdog(tmp_path, str(tmp_path / name))
    try:
        run = cli(B if flag == "Fdump.bin" else B + [flag, name])
    finally:
        timer.cancel()
    assert run.code == 9
    assert run.err.endswith(f"{name}: it is a FIFO, not a regular file\n"), run.err


def test_fdump_linked_to_dev_zero_is_refused(cli, tmp_path):
    os.symlink("/dev/zero", tmp_path / "Fdump.bin")
    run = cli(B)
    assert run.code == 9 and "it is a device, not a regular file" in run.err


def test_symlink_to_a_regular_file_is_read(cli, tmp_path):
    (tmp_path / "real.hkl").write_text("1 2 3 100\n")
    os.symlink("real.hkl", tmp_path / "link.hkl")
    run = cli(B + ["-hkl", "link.hkl"])
    assert run.code == 0, run.err


@pytest.mark.parametrize("reader,limit", [
    (hkl.read_hkl, hkl.MAX_FILE_BYTES),
    (matrix.read_matrix, matrix.MAX_FILE_BYTES),
    (sourcefile.read_sources, sourcefile.MAX_FILE_BYTES),
])
def test_text_inputs_larger_than_their_format_holds_are_refused(tmp_path, reader, limit,
                                                                monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 50)
    path = tmp_path / "big.txt"
    with open(path, "wb") as handle:   # sparse: no disk space used
        handle.truncate(limit + 1)
    with pytest.raises(errors.InputFileError, match="is too large"):
        reader(str(path))


def test_bounded_read_stops_at_the_limit(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert errors.read_bytes(str(path), "file", limit=100) == b"x" * 100
    with pytest.raises(errors.InputFileError, match="too large"):
        errors.read_bytes(str(path), "file", limit=99)


def test_fdump_reads_only_what_its_header_announces(tmp_path):
    from nbnumba.io import fdump
    import numpy as np
    path = tmp_path / "Fdump.bin"
    body = np.arange(1, 28, dtype="<f8").tobytes()     # h, k, l 0..1: a 3x3x3 padded grid
    path.write_bytes(b"0 1 0 1 0 1\n\f" + body + b"\0" * 1000)
    sf = fdump.read_fdump(str(path))
    values = np.arange(1, 28, dtype=float).reshape(3, 3, 3)
    assert sf.grid.shape == (3, 3, 3)
    assert sf.grid[:2, :2, :2].tolist() == values[:2, :2, :2].tolist()
    # the padding slices, never read by a lookup, hold zeros as in a dump the C writes
    assert not sf.grid[2].any() and not sf.grid[:, 2].any() and not sf.grid[:, :, 2].any()


def test_wide_hkl_range_is_refused_when_memory_is_short(cli, tmp_path, monkeypatch):
    # 31 bytes that ask for a 641^3 grid: 2.1 GB, and as much again for Fdump.bin
    (tmp_path / "wide.hkl").write_text("-320 -320 -320 1\n320 320 320 1\n")
    assert (tmp_path / "wide.hkl").stat().st_size == 31
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 30)
    run = cli(B + ["-hkl", "wide.hkl"])
    assert run.code == 9
    assert run.err == (
        "nbnumba: error: the structure-factor grid of h -320..320, k -320..320, l -320..320 "
        "needs 2.12 GB of memory, more than the 1.07 GB available; use an HKL file with a "
        "smaller range of Miller indices\n")
    assert not (tmp_path / "Fdump.bin").exists()


def test_fdump_grid_larger_than_memory_is_refused(tmp_path, monkeypatch):
    from nbnumba.io import fdump
    path = tmp_path / "Fdump.bin"
    path.write_bytes(b"-320 320 -320 320 -320 320\n\f")
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 30)
    with pytest.raises(errors.InputFileError, match="needs 2.12 GB of memory"):
        fdump.read_fdump(str(path))


def test_image_header_announcing_huge_image_is_refused(tmp_path, monkeypatch):
    from nbnumba.io import smv
    path = tmp_path / "big.img"
    header = smv.header_text([("SIZE1", "100000", True), ("SIZE2", "100000", True)])
    path.write_bytes(header + b" " * (512 - len(header)))
    with open(path, "r+b") as handle:   # sparse 20 GB of pixels
        handle.truncate(512 + 2 * 10 ** 10)
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 30)
    with pytest.raises(errors.InputFileError, match="needs 60 GB of memory"):
        smv.read_smv(str(path))


def test_render_larger_than_memory_is_refused_before_allocating(cli, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 100 << 20)
    run = cli(B + ["-detpixels", "4000"])
    assert run.code == 9
    assert run.err == (
        "nbnumba: error: a render of 16000000 pixels, 1 sources and 1 crystal orientations "
        "(phi steps x mosaic domains) needs 768 MB of memory, more than the 105 MB available; "
        "use fewer pixels (-detpixels, or DetectorConfig.fpixels and spixels; a region of "
        "interest still allocates the whole detector), sources or orientations\n")
    # a region of interest does not lower the estimate, and the advice does not offer it
    assert cli(B + ["-detpixels", "4000", "-roi", "0", "9", "0", "9"]).err == run.err


def test_available_memory_is_known_here():
    assert memory.available_bytes() > 0
