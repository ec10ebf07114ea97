"""Outputs are replaced together or not at all, and problems are found before rendering."""
import os

import pytest

from nbnumba import output

BASE = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5",
        "-detpixels", "16", "-seed", "1", "-noprogress"]
ARGS = BASE + ["-floatfile", "float.bin", "-intfile", "int.img", "-pgmfile", "image.pgm",
               "-noisefile", "noise.img"]
NAMES = ("float.bin", "int.img", "image.pgm", "noise.img")


def _old_files(directory):
    for name in NAMES:
        (directory / name).write_bytes(b"old " + name.encode())


def _assert_old(directory):
    for name in NAMES:
        assert (directory / name).read_bytes() == b"old " + name.encode(), name
    assert [p.name for p in directory.iterdir() if p.name.endswith(".part")] == []


@pytest.mark.parametrize("failure", [RuntimeError("disk on fire"), KeyboardInterrupt()],
                         ids=["error", "interrupt"])
def test_failure_while_writing_leaves_every_old_file(cli, tmp_path, monkeypatch, failure):
    # the float, SMV and PGM images are ready when the noise image fails: none replaces
    # its old file, and no temporary file stays behind
    _old_files(tmp_path)

    def broken(*args, **kwargs):
        raise failure

    monkeypatch.setattr(output, "make_noise_image", broken)
    if isinstance(failure, KeyboardInterrupt):
        from nbnumba_cli.main import run
        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            with pytest.raises(KeyboardInterrupt):
                run(ARGS)
        finally:
            os.chdir(cwd)
    else:
        run = cli(ARGS)
        assert run.code == 9
        assert run.err.startswith("nbnumba: internal error:") and "Traceback" not in run.err
    _assert_old(tmp_path)


def test_successful_run_replaces_every_file(cli, tmp_path):
    _old_files(tmp_path)
    run = cli(ARGS)
    assert run.code == 0, run.err
    for name in NAMES:
        assert not (tmp_path / name).read_bytes().startswith(b"old ")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_unwritable_output_is_an_error_before_rendering(cli, tmp_path, monkeypatch):
    rendered = []
    import nbnumba.engine as engine
    monkeypatch.setattr(engine, "render", lambda *a, **k: rendered.append(1))
    run = cli(BASE + ["-floatfile", str(tmp_path / "missing" / "f.bin")])
    assert run.code == 9
    assert run.err.count("\n") == 1 and "does not exist" in run.err
    assert rendered == []
